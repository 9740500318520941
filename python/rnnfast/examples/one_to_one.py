"""One-to-one: one input, one output - an RNN over a single time step, as a plain classifier.

The simplest arrangement in the article: each example is a sequence of length 1, so the recurrence
never runs (the initial state is zero, and ``W_hh`` multiplies it) and the RNN is one dense layer
``h = tanh(W_ih x + b)``; a dense softmax layer on ``h`` gives the class. The task: is a point of the
plane inside the unit circle or in the ring around it? No straight line separates the two, but 16
hidden units do.

    python examples/one_to_one.py
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples._common import Progress, batches, finish, parser


def make_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2): half inside radius 1 (class 0), half at radius 1.3 to 2 (class 1)."""
    label = rng.integers(0, 2, size=n)
    radius = np.where(label == 0, rng.uniform(0, 1, n), rng.uniform(1.3, 2.0, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1).astype(np.float32), label


def run(*, epochs: int = 20, hidden: int = 16, n_train: int = 2000, batch_size: int = 32, lr: float = 0.01,
        seed: int = 0, verbose: bool = True) -> dict:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    x, y = make_points(rng, n_train)
    x_test, y_test = make_points(np.random.default_rng(seed + 1000), 1000)
    rnn = rnnfast.RNN(2, hidden, seed=seed)
    head = nn.Linear(hidden, 2, seed=seed + 1)
    opt = nn.Adam([rnn, head], lr=lr)

    def predict(points: np.ndarray) -> np.ndarray:
        out, _ = rnn(points[None])          # a sequence of one step: (1, B, 2) -> (1, B, H)
        return head(out[0]).argmax(-1)

    progress = Progress(epochs, verbose=verbose)
    for epoch in range(1, epochs + 1):
        progress.start_epoch(epoch)
        for idx in batches(n_train, batch_size, rng):
            out, _ = rnn.forward(x[idx][None], training=True)
            loss, d_logits = nn.softmax_cross_entropy(head.forward(out[0], training=True), y[idx])
            opt.zero_grad()
            rnn.backward(head.backward(d_logits)[None])
            opt.step()
            progress.step(loss, len(idx))
        progress.end_epoch()
    progress.close()
    acc = float(np.mean(predict(x_test) == y_test))
    summary = (f"inside or outside the circle, RNN({hidden}) over one step: loss {progress.losses[0]:.3f} -> "
               f"{progress.losses[-1]:.3f}, accuracy on 1000 unseen points {acc:.1%}")
    return {"losses": progress.losses, "accuracy": acc, "summary": summary, "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(__doc__.splitlines()[0], epochs=20, prog=prog)
    p.add_argument("--hidden", type=int, default=16, help="RNN hidden units")
    a = p.parse_args(argv)
    result = run(epochs=a.epochs, hidden=a.hidden, seed=a.seed, verbose=not a.quiet)
    finish(result, "one-to-one", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
