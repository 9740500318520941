"""Thread count: results are bit-identical for every number of threads (work is divided by shape
alone, each output element computed by one thread in one order)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

from test_lengths import run
from test_native import CELLS, make_problem


@pytest.fixture
def restore_threads():
    before = rnnfast.get_num_threads()
    yield
    rnnfast.set_num_threads(before)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(cell, dtype, restore_threads):
    # B = 7 splits unevenly; the sizes make the GEMMs large enough to be cut into several tasks.
    p = make_problem(cell, 5, 7, 70, 90, dtype=dtype, seed=2)
    lengths = np.array([5, 2, 5, 0, 3, 4, 1])
    results = {}
    for threads in (1, 2, 3, 5):
        rnnfast.set_num_threads(threads)
        results[threads] = (run(rnnfast.functional, cell, p, None), run(rnnfast.functional, cell, p, lengths))
    for threads in (2, 3, 5):
        for got, want in zip(results[threads], results[1]):
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], err_msg=f"{threads} threads: {name}")


def test_large_gemm_is_thread_count_independent(restore_threads):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 1000)).astype(np.float32)
    rnnfast.set_num_threads(1)
    want = _core.gemm(a, b)
    for threads in (2, 4):
        rnnfast.set_num_threads(threads)
        np.testing.assert_array_equal(_core.gemm(a, b), want)


def test_set_num_threads_validates(restore_threads):
    rnnfast.set_num_threads(3)
    assert rnnfast.get_num_threads() == 3
    with pytest.raises(ValueError, match="between 1 and 4096"):
        rnnfast.set_num_threads(0)
    with pytest.raises(TypeError, match="must be an int"):
        rnnfast.set_num_threads(2.0)


def test_set_num_threads_refuses_absurd_counts(restore_threads):
    for n in (2**62, 4097, -3):
        with pytest.raises(ValueError, match="between 1 and 4096"):
            rnnfast.set_num_threads(n)
    with pytest.raises(ValueError, match="between 1 and 4096"):
        _core.set_num_threads(2**40)
