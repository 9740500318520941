"""Many-to-one: classify a whole sequence - is the number of ones in a bit string odd?

Parity is the textbook sequence-classification task that no bag-of-features model can solve: the
answer flips with every single bit, so the network must carry one bit of memory through the whole
string. A GRU reads the bits one per step; :class:`rnnfast.nn.LastStep` takes each string's output after
its last bit, and a dense layer gives two classes (even, odd). :func:`rnnfast.nn.fit` trains it
(backpropagation through time, Adam, gradient clipping) and reports the accuracy on strings never seen in
training after every epoch (``validation_data``).

The strings have variable lengths, 1 to ``--length`` bits, padded at the end to a common length and
passed with ``lengths=``: the layer treats them as PyTorch's packed sequences, so each string's final
state is the one after its own last bit and the padding is never read. (The short strings are also what
makes parity learnable: fixed-length strings of 12 random bits give gradient descent nothing to start
from.)

    python examples/parity.py
    rnnfast demo parity --length 20
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser


def make_batch(rng: np.random.Generator, batch: int, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random bit strings of 1 to max_length bits: (T, B, 1) inputs (+-1 for a bit, 0 past the end),
    their lengths (B,) and their parity (B,) as 0/1."""
    lengths = rng.integers(1, max_length + 1, size=batch)
    valid = np.arange(max_length)[:, None] < lengths[None, :]        # (T, B)
    bits = rng.integers(0, 2, size=(max_length, batch)) * valid
    x = np.where(valid, 2.0 * bits - 1.0, 0.0)[..., None].astype(np.float32)
    return x, lengths, bits.sum(axis=0) % 2


def run(*, length: int = 20, hidden: int = 32, epochs: int = 10, batches_per_epoch: int = 50,
        batch_size: int = 64, lr: float = 0.01, test_size: int = 2000, seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    x, lengths, y = make_batch(np.random.default_rng(seed), batches_per_epoch * batch_size, length)
    x_test, len_test, y_test = make_batch(np.random.default_rng(seed + 1000), test_size, length)
    model = nn.Sequential(rnnfast.GRU(1, hidden, seed=seed), nn.LastStep(), nn.Linear(hidden, 2, seed=seed + 1))
    history = nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer=nn.Adam(model, lr=lr),
                     epochs=epochs, batch_size=batch_size, clip_norm=1.0, seed=seed,
                     validation_data=(x_test, y_test, len_test), verbose=int(verbose))
    losses = history.history["loss"]
    acc = history.history["val_accuracy"][-1]
    summary = (f"parity of 1- to {length}-bit strings, GRU({hidden}): loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
               f"accuracy on {test_size} unseen strings {acc:.1%} (chance 50%)")
    return {"losses": losses, "accuracy": acc, "summary": summary, "model": model,
            "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=10, prog=prog)
    p.add_argument("--length", type=int, default=20, help="longest string (bits)")
    p.add_argument("--hidden", type=int, default=32, help="GRU hidden units")
    a = p.parse_args(argv)
    result = run(length=a.length, hidden=a.hidden, epochs=a.epochs, seed=a.seed, verbose=not a.quiet)
    finish(result, "parity (many-to-one)", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
