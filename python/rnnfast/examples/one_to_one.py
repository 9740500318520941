"""One-to-one: one input, one output - an RNN over a single time step, as a plain classifier.

The simplest arrangement in the article: each example is a sequence of length 1, so the recurrence
never runs (the initial state is zero, and ``W_hh`` multiplies it) and the RNN is one dense layer
``h = tanh(W_ih x + b)``; a dense softmax layer on ``h`` gives the class. The task: is a point of the
plane inside the unit circle or in the ring around it? No straight line separates the two, but 16
hidden units do.

The model is an :class:`rnnfast.nn.Sequential` (RNN, the last step of each sequence, dense layer),
trained by :func:`rnnfast.nn.fit`.

    python examples/one_to_one.py
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser


def make_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2): half inside radius 1 (class 0), half at radius 1.3 to 2 (class 1)."""
    label = rng.integers(0, 2, size=n)
    radius = np.where(label == 0, rng.uniform(0, 1, n), rng.uniform(1.3, 2.0, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1).astype(np.float32), label


def run(*, epochs: int = 20, hidden: int = 16, n_train: int = 2000, batch_size: int = 32, lr: float = 0.01,
        seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    x, y = make_points(np.random.default_rng(seed), n_train)
    x_test, y_test = make_points(np.random.default_rng(seed + 1000), 1000)
    model = nn.Sequential(rnnfast.RNN(2, hidden, seed=seed), nn.LastStep(), nn.Linear(hidden, 2, seed=seed + 1))
    # Each point is a sequence of one step, time-major: (1, N, 2) -> the RNN's (1, N, H) -> (N, H) -> (N, 2).
    history = nn.fit(model, x[None], y, loss="cross_entropy", optimizer=nn.Adam(model, lr=lr), epochs=epochs,
                     batch_size=batch_size, seed=seed, verbose=int(verbose))
    losses = history.history["loss"]
    acc = float(np.mean(model.predict(x_test[None]).argmax(-1) == y_test))
    summary = (f"inside or outside the circle, RNN({hidden}) over one step: loss {losses[0]:.3f} -> "
               f"{losses[-1]:.3f}, accuracy on 1000 unseen points {acc:.1%}")
    return {"losses": losses, "accuracy": acc, "summary": summary, "model": model,
            "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=20, prog=prog)
    p.add_argument("--hidden", type=int, default=16, help="RNN hidden units")
    a = p.parse_args(argv)
    result = run(epochs=a.epochs, hidden=a.hidden, seed=a.seed, verbose=not a.quiet)
    finish(result, "one-to-one", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
