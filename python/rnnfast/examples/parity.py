"""Many-to-one: classify a whole sequence - is the number of ones in a bit string odd?

Parity is the textbook sequence-classification task that no bag-of-features model can solve: the
answer flips with every single bit, so the network must carry one bit of memory through the whole
string. A GRU reads the bits one per step; its final hidden state goes to a dense softmax layer with two
classes (even, odd). Training is backpropagation through time with Adam and gradient clipping, on fresh
random strings every batch; accuracy is measured on strings never seen in training.

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
from typing import Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples._common import Progress, finish, parser


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
        verbose: bool = True) -> dict:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    rnn = rnnfast.GRU(1, hidden, seed=seed)
    head = nn.Linear(hidden, 2, seed=seed + 1)
    opt = nn.Adam([rnn, head], lr=lr)
    progress = Progress(epochs, verbose=verbose)
    x_test, len_test, y_test = make_batch(np.random.default_rng(seed + 1000), test_size, length)

    def accuracy() -> float:
        _, h_n = rnn(x_test, lengths=len_test)
        return float(np.mean(head(h_n[-1]).argmax(-1) == y_test))

    for epoch in range(1, epochs + 1):
        progress.start_epoch(epoch)
        for _ in range(batches_per_epoch):
            x, lengths, y = make_batch(rng, batch_size, length)
            _, h_n = rnn.forward(x, lengths=lengths, training=True)   # h_n: after each string's last bit
            loss, d_logits = nn.softmax_cross_entropy(head.forward(h_n[-1], training=True), y)
            opt.zero_grad()
            rnn.backward(None, head.backward(d_logits)[None])  # the gradient enters through h_n only
            nn.clip_grad_norm([rnn, head], 1.0)
            opt.step()
            progress.step(loss, batch_size)
        progress.end_epoch(test_accuracy=accuracy())
    progress.close()
    acc = accuracy()
    summary = (f"parity of 1- to {length}-bit strings, GRU({hidden}): loss {progress.losses[0]:.3f} -> "
               f"{progress.losses[-1]:.3f}, accuracy on {test_size} unseen strings {acc:.1%} (chance 50%)")
    return {"losses": progress.losses, "accuracy": acc, "summary": summary,
            "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(__doc__.splitlines()[0], epochs=10, prog=prog)
    p.add_argument("--length", type=int, default=20, help="longest string (bits)")
    p.add_argument("--hidden", type=int, default=32, help="GRU hidden units")
    a = p.parse_args(argv)
    result = run(length=a.length, hidden=a.hidden, epochs=a.epochs, seed=a.seed, verbose=not a.quiet)
    finish(result, "parity (many-to-one)", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
