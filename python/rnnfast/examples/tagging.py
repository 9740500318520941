"""Many-to-many (synced): a label for every step, with a stacked bidirectional GRU.

Sequence tagging, as in named-entity recognition or part-of-speech tagging, gives every input step its
own label. Here the inputs are digit strings and each digit is tagged PEAK (greater than its neighbours),
VALLEY (smaller than its neighbours) or OTHER. Whether a digit is a peak depends on the digit *after* it
as much as on the one before, so a unidirectional RNN - which has not seen the next digit yet when it
must answer - cannot do it; a bidirectional one reads the string both ways and can. The model stacks
two bidirectional GRU layers (with dropout between them) under a dense softmax layer applied at every
step.

The strings have variable lengths, padded at the end and passed with ``lengths=`` (so the reverse
direction starts at each string's own end). The model is an :class:`rnnfast.nn.Sequential` trained by
:func:`rnnfast.nn.fit`, which, given per-step labels and ``lengths``, masks the loss so that padding
counts for nothing.

    python examples/tagging.py
    python examples/tagging.py --unidirectional      # see it fail to look ahead
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser

TAGS = ("PEAK", "VALLEY", "OTHER")


def tag(digits: Sequence[int]) -> list[int]:
    """The tag index of every digit: PEAK if greater than each neighbour it has, VALLEY if smaller."""
    tags = []
    for i, d in enumerate(digits):
        neighbours = [digits[j] for j in (i - 1, i + 1) if 0 <= j < len(digits)]
        if neighbours and all(d > n for n in neighbours):
            tags.append(0)
        elif neighbours and all(d < n for n in neighbours):
            tags.append(1)
        else:
            tags.append(2)
    return tags


def make_batch(rng: np.random.Generator, batch: int, min_len: int,
               max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-hot digit strings (T, B, 10) padded with zeros, their lengths (B,), tags (T, B) (as :func:`tag`,
    for all strings at once) and the mask of real steps (T, B)."""
    lengths = rng.integers(min_len, max_len + 1, size=batch)
    digits = rng.integers(0, 10, size=(max_len, batch))
    t = np.arange(max_len)[:, None]
    valid = t < lengths
    has_left, has_right = t > 0, t < lengths - 1
    left, right = np.roll(digits, 1, axis=0), np.roll(digits, -1, axis=0)
    peak = (~has_left | (digits > left)) & (~has_right | (digits > right)) & (has_left | has_right)
    valley = (~has_left | (digits < left)) & (~has_right | (digits < right)) & (has_left | has_right)
    tags = np.where(peak & valid, 0, np.where(valley & valid, 1, 2))
    x = nn.one_hot(digits, 10) * valid[..., None]
    return x, lengths, tags, valid


def run(*, epochs: int = 6, hidden: int = 32, bidirectional: bool = True, min_len: int = 3, max_len: int = 20,
        batches_per_epoch: int = 60, batch_size: int = 64, lr: float = 0.005, test_size: int = 1000,
        seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    x, lengths, y, _ = make_batch(np.random.default_rng(seed), batches_per_epoch * batch_size, min_len, max_len)
    x_test, len_test, y_test, valid_test = make_batch(np.random.default_rng(seed + 1000), test_size, min_len,
                                                      max_len)
    rnn = rnnfast.GRU(10, hidden, num_layers=2, bidirectional=bidirectional, dropout=0.1, seed=seed)
    model = nn.Sequential(rnn, nn.Linear(rnn.num_directions * hidden, len(TAGS), seed=seed + 1))
    # Per-step targets (T, N) with lengths: fit masks the padding out of the loss and the accuracy.
    history = nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer=nn.Adam(model, lr=lr),
                     epochs=epochs, batch_size=batch_size, clip_norm=1.0, seed=seed,
                     validation_data=(x_test, y_test, len_test), verbose=int(verbose))
    losses = history.history["loss"]
    right = (model.predict(x_test, lengths=len_test).argmax(-1) == y_test) | ~valid_test
    step_acc, seq_acc = float(right[valid_test].mean()), float(right.all(axis=0).mean())
    kind = "bidirectional" if bidirectional else "unidirectional"
    summary = (f"tagging peaks and valleys, 2-layer {kind} GRU({hidden}): loss {losses[0]:.3f} -> "
               f"{losses[-1]:.3f}; on {test_size} unseen strings: {step_acc:.1%} of tags right, "
               f"{seq_acc:.1%} of strings tagged entirely right")
    x_show, len_show, _, _ = make_batch(np.random.default_rng(seed + 7), 1, 12, 12)
    shown = "".join(str(int(d)) for d in x_show[:, 0].argmax(-1))
    predicted = model(x_show, len_show).argmax(-1)[:, 0]
    summary += f"\n  {shown}\n  " + "".join("^v."[t] for t in predicted) + "   (^ peak, v valley)"
    return {"losses": losses, "accuracy": step_acc, "sequence_accuracy": seq_acc, "summary": summary,
            "model": model, "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=6, prog=prog)
    p.add_argument("--hidden", type=int, default=32, help="GRU hidden units per direction")
    p.add_argument("--unidirectional", action="store_true", help="forward-only GRU layers, for comparison")
    a = p.parse_args(argv)
    result = run(epochs=a.epochs, hidden=a.hidden, bidirectional=not a.unidirectional, seed=a.seed,
                 verbose=not a.quiet)
    finish(result, "tagging (many-to-many)", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
