"""The small training problems of the fit tests (tests/api/test_fit.py, test_parallel.py) and their parameter
comparisons: one definition, so that nn.fit and rnnfast.parallel are tested on the same data."""

from __future__ import annotations

import numpy as np

# Steps, sequences, input features, hidden units, classes.
T, N, I, H, C = 7, 45, 3, 8, 3


def sequences(seed: int = 0, n: int = N, batch_first: bool = False, dtype: str = "float32"):
    """(T, n, I) inputs (or (n, T, I)), lengths in [1, T], labels per sequence (n,) and per step (T, n) (or
    (n, T)): class of the sign of the running sum of the first feature (0 negative, 1 small, 2 positive)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, n, I)).astype(dtype)
    lengths = rng.integers(1, T + 1, size=n)
    per_step = np.digitize(np.cumsum(x[..., 0], axis=0), [-0.5, 0.5])
    per_seq = per_step[lengths - 1, np.arange(n)]
    if batch_first:
        return x.transpose(1, 0, 2).copy(), lengths, per_seq, per_step.T.copy()
    return x, lengths, per_seq, per_step


def snapshot(model) -> dict:
    """Copies of the model's parameters."""
    return {k: v.copy() for k, v in model.parameters().items()}


def assert_same_parameters(a: dict, b: dict) -> None:
    """The same names and the same bits."""
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
