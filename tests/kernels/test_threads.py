"""Thread count: results are bit-identical for every number of threads (work is divided by shape
alone, each output element computed by one thread in one order)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

from helpers.native_problems import CELLS, make_problem, run_with_lengths


def assert_close_to_reference(got, expected, dtype):
    """The forward's results within float32 (float64) rounding of the NumPy reference's."""
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for name in ("out", "h_n", "workspace"):
        np.testing.assert_allclose(got[name], expected[name], rtol=tol, atol=tol, err_msg=name)


def assert_same_bits(got, want, label):
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{label}: {name}")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(cell, dtype, restore_threads):
    # B = 7 splits unevenly; the sizes make the GEMMs large enough to be cut into several tasks.
    p = make_problem(cell, 5, 7, 70, 90, dtype=dtype, seed=2)
    lengths = np.array([5, 2, 5, 0, 3, 4, 1])
    results = {}
    for threads in (1, 2, 3, 5):
        rnnfast.set_num_threads(threads)
        results[threads] = (run_with_lengths(rnnfast.functional, cell, p, None),
                            run_with_lengths(rnnfast.functional, cell, p, lengths))
    for threads in (2, 3, 5):
        for got, want in zip(results[threads], results[1]):
            assert_same_bits(got, want, f"{threads} threads")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3, 9])
def test_every_split_gives_the_same_bits(cell, dtype, batch, restore_threads, restore_split):
    """The forward's time loop shared by hidden units (the step scheduler) or by batch slices, on any
    number of threads, computes every element with the same arithmetic: the same bits, which match
    the NumPy reference. H = 150 leaves a partial unit block on every instruction set; the sizes make
    each step large enough for the pool to be used."""
    from rnnfast import reference

    p = make_problem(cell, 6, batch, 20, 150, dtype=dtype, seed=3)
    lengths = np.array([6, 6, 5, 5, 3, 3, 2, 1, 0][:batch]) if batch > 1 else None
    _core.testing.set_split("auto")
    rnnfast.set_num_threads(1)
    want = run_with_lengths(rnnfast.functional, cell, p, lengths)
    assert_close_to_reference(want, run_with_lengths(reference, cell, p, lengths), dtype)
    for split in ("auto", "batch", "hidden"):
        _core.testing.set_split(split)
        for threads in (2, 3, 4):
            rnnfast.set_num_threads(threads)
            assert_same_bits(run_with_lengths(rnnfast.functional, cell, p, lengths), want,
                             f"{split}, {threads} threads")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("input_size", [8, 300])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 9])
def test_every_projection_gives_the_same_bits(cell, dtype, input_size, bias, batch, restore_threads, restore_split,
                                              restore_projection):
    """The input projection computed up front (one GEMM), per step (a GEMM per step inside each slice's
    loop) or in the fused step (block by block, on the recurrent tiles) gives the same bits for every
    split and thread count, and the reference's numbers, with ragged lengths too. I = 300 is deeper
    than the GEMM's k blocks on every instruction set (256 float, 128 double on AVX-512), which the
    step's projection reproduces chunk by chunk; H = 150 leaves a partial unit block; without
    biases, the first chunk stands alone. 'ahead' projects runs of four steps (7 = 4 + 3; at batch 1,
    a length of 5 leaves a run of one step)."""
    from rnnfast import reference

    p = make_problem(cell, 7, batch, input_size, 150, dtype=dtype, seed=4, bias=bias)
    lengths = np.array([7, 6, 7, 3, 0, 5, 1, 7, 2]) if batch > 1 else np.array([5])
    rnnfast.set_num_threads(1)
    for lens in (None, lengths):
        _core.testing.set_projection("up_front")
        _core.testing.set_split("auto")
        want = run_with_lengths(rnnfast.functional, cell, p, lens)
        assert_close_to_reference(want, run_with_lengths(reference, cell, p, lens), dtype)
        for projection in ("per_step", "in_step", "ahead", "auto"):
            _core.testing.set_projection(projection)
            for split in ("batch", "hidden"):
                _core.testing.set_split(split)
                for threads in (1, 2, 3):
                    rnnfast.set_num_threads(threads)
                    assert_same_bits(run_with_lengths(rnnfast.functional, cell, p, lens), want,
                                     f"{projection}, {split}, {threads} threads")


def test_batch_one_streams_the_same_bits_as_every_projection(restore_projection):
    """The stepper (whose projection is gemm's) matches a whole-sequence call whatever the projection."""
    layer = rnnfast.LSTM(300, 150, num_layers=2, seed=6)
    xs = np.random.default_rng(2).standard_normal((5, 3, 300)).astype(np.float32)
    s = layer.stepper(batch=3)
    streamed = np.stack([s.step(x).copy() for x in xs])
    for projection in ("up_front", "per_step", "in_step", "ahead"):
        _core.testing.set_projection(projection)
        np.testing.assert_array_equal(layer(xs)[0], streamed, err_msg=projection)


def test_set_split_validates(restore_split):
    with pytest.raises(ValueError, match="'auto', 'batch' or 'hidden'"):
        _core.testing.set_split("diagonal")
    _core.testing.set_split("hidden")
    assert _core.testing.get_split() == "hidden"


def test_set_projection_validates(restore_projection):
    with pytest.raises(ValueError, match="'auto', 'up_front', 'per_step', 'in_step' or 'ahead'"):
        _core.testing.set_projection("sideways")
    for name in ("up_front", "per_step", "in_step", "ahead", "auto"):
        _core.testing.set_projection(name)
        assert _core.testing.get_projection() == name


def test_large_gemm_is_thread_count_independent(restore_threads):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 1000)).astype(np.float32)
    rnnfast.set_num_threads(1)
    want = _core.testing.gemm(a, b)
    for threads in (2, 4):
        rnnfast.set_num_threads(threads)
        np.testing.assert_array_equal(_core.testing.gemm(a, b), want)


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
