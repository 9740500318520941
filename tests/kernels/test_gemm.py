"""The packed GEMM kernel against NumPy over every remainder of its register tile and cache blocks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnfast import _core

# Around the tile (6 rows; 8 float / 4 double columns) and the 256-deep and 96/48-row cache blocks.
MS = [1, 5, 6, 7, 13, 49, 97]
NS = [1, 3, 4, 8, 9, 17]
KS = [1, 7, 255, 256, 257, 600]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_t,b_t", list(itertools.product([False, True], repeat=2)))
def test_gemm_every_tail(dtype, a_t, b_t):
    rng = np.random.default_rng(1)
    eps = np.finfo(dtype).eps
    for m, n, k in itertools.product(MS, NS, KS):
        a = rng.uniform(-1, 1, (k, m) if a_t else (m, k)).astype(dtype)
        b = rng.uniform(-1, 1, (n, k) if b_t else (k, n)).astype(dtype)
        want = (a.astype(np.float64).T if a_t else a.astype(np.float64)) @ (
            b.astype(np.float64).T if b_t else b.astype(np.float64))
        got = _core.testing.gemm(a, b, a_t, b_t)
        assert got.shape == (m, n) and got.dtype == dtype
        # Each entry sums k products of magnitude <= 1: rounding grows at most like k * eps.
        tol = 2 * k * eps
        err = float(np.max(np.abs(got - want)))
        assert err <= tol, f"m={m} n={n} k={k} a_t={a_t} b_t={b_t} {np.dtype(dtype).name}: error {err:.2e} > {tol:.2e}"


def test_gemm_empty_dimensions():
    assert _core.testing.gemm(np.zeros((0, 3)), np.zeros((3, 4))).shape == (0, 4)
    np.testing.assert_array_equal(_core.testing.gemm(np.zeros((2, 0)), np.zeros((0, 4))), np.zeros((2, 4)))


def test_gemm_refuses_mismatch():
    with pytest.raises(ValueError, match="inner dimensions differ"):
        _core.testing.gemm(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(TypeError, match="dtype float64"):
        _core.testing.gemm(np.zeros((2, 3)), np.zeros((3, 5), dtype=np.float32))
