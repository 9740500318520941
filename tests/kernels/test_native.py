"""The native functional ops against rnnfast.reference: every op, every gradient, both dtypes, shapes
that hit every tail of the kernels (sizes 1, sizes off the vector width and the register tile)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import _core, functional as F, reference as R

from helpers.native_problems import CELLS, GATES, assert_close, make_problem, run

# (T, B, I, H): 1s everywhere; sizes below, at and above the float32 tile (6 rows x 8 columns) and the
# 256-deep cache block; an input size of 1; a batch larger than one row block of the GEMM.
SHAPES = [
    (1, 1, 1, 1),
    (1, 1, 3, 5),
    (3, 1, 17, 16),
    (4, 2, 16, 33),
    (5, 7, 9, 13),
    (2, 3, 1, 1),
    (3, 13, 260, 9),
    (2, 100, 6, 7),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-B%d-I%d-H%d" % s)
@pytest.mark.parametrize("cell", CELLS)
def test_native_matches_reference_float64(cell, shape):
    p = make_problem(cell, *shape)
    assert_close(run(F, cell, p), run(R, cell, p), 1e-12, f"{cell} {shape} float64")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-B%d-I%d-H%d" % s)
@pytest.mark.parametrize("cell", CELLS)
def test_native_float32_matches_float64_reference(cell, shape):
    p64 = make_problem(cell, *shape)
    p32 = {k: (None if v is None else v.astype(np.float32)) for k, v in p64.items()}
    got = run(F, cell, p32)
    assert all(v.dtype == np.float32 for v in got.values())
    # float32 rounding of the inputs alone moves results by ~1e-7 relative; the sums over up to 260
    # terms add a few ulps each: 1e-5 of the largest magnitude is what docs/design.md promises (section 3.9).
    assert_close(got, run(R, cell, p64), 1e-5, f"{cell} {shape} float32")


@pytest.mark.parametrize("cell", CELLS)
def test_no_bias_and_no_initial_state(cell):
    p = make_problem(cell, 4, 3, 5, 6, bias=False)
    p["h0"] = None
    if cell == "lstm":
        p["c0"] = None
    assert_close(run(F, cell, p), run(R, cell, p), 1e-12, f"{cell} without bias or state")


@pytest.mark.parametrize("cell", CELLS)
def test_missing_output_gradients_are_zeros(cell):
    p = make_problem(cell, 3, 2, 4, 5)
    zeros = dict(p, d_h_n=np.zeros_like(p["d_h_n"]))
    p["d_h_n"] = None
    if cell == "lstm":
        zeros["d_c_n"] = np.zeros_like(p["d_c_n"])
        p["d_c_n"] = None
    assert_close(run(F, cell, p), run(F, cell, zeros), 0.0, f"{cell} None gradients")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T,B", [(0, 3), (4, 0), (0, 0)])
def test_empty_sequence_or_batch(cell, T, B):
    p = make_problem(cell, T, B, 4, 5)
    got, want = run(F, cell, p), run(R, cell, p)
    assert_close(got, want, 1e-12, f"{cell} T={T} B={B}")
    np.testing.assert_array_equal(got["h_n"], p["h0"])
    if T == 0:
        np.testing.assert_array_equal(got["d_h0"], p["d_h_n"])
        assert not np.any(got["d_w_ih"]) and not np.any(got["d_w_hh"])


def test_inference_equals_training_forward():
    p = make_problem("lstm", 5, 3, 4, 6)
    args = (p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    inference = F.lstm(*args)
    training = F.lstm(*args, training=True)
    assert len(inference) == 3 and len(training) == 4
    for a, b in zip(inference, training):
        np.testing.assert_array_equal(a, b)


def test_non_contiguous_and_fortran_inputs():
    p = make_problem("gru", 5, 3, 4, 6)
    want = F.gru(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    x_strided = np.zeros((5, 6, 8))[:, ::2, ::2]
    x_strided[...] = p["x"]
    got = F.gru(x_strided, np.asfortranarray(p["h0"]), np.asfortranarray(p["w_ih"]), p["w_hh"][:, ::-1][:, ::-1],
                p["b_ih"][::-1][::-1], p["b_hh"].tolist())
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_out_argument():
    p = make_problem("rnn_tanh", 4, 2, 3, 5)
    args = (p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    want, _ = F.rnn(*args)
    out = np.empty((4, 2, 5))
    got, _ = F.rnn(*args, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    # a strided out is filled through a temporary
    big = np.zeros((4, 2, 10))
    got, _ = F.rnn(*args, out=big[:, :, ::2])
    np.testing.assert_array_equal(big[:, :, ::2], want)
    assert not np.any(big[:, :, 1::2])
    # a float32 out receives the float64 result by same_kind casting
    out32 = np.empty((4, 2, 5), dtype=np.float32)
    F.rnn(*args, out=out32)
    np.testing.assert_allclose(out32, want, rtol=1e-6)


def test_out_aliasing_an_input_is_safe():
    # H == I, so the output sequence has x's shape and can be the same memory.
    p = make_problem("rnn_tanh", 4, 2, 5, 5)
    args = (p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    want, _ = F.rnn(p["x"].copy(), *args)
    x = p["x"].copy()
    got, _ = F.rnn(x, *args, out=x)
    assert got is x
    np.testing.assert_array_equal(x, want)


def test_results_do_not_alias_inputs():
    p = make_problem("lstm", 0, 2, 3, 4)
    out, h_n, c_n = F.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"])
    assert not np.shares_memory(h_n, p["h0"]) and not np.shares_memory(c_n, p["c0"])


def test_mixed_dtypes_promote_like_numpy():
    p = make_problem("rnn_relu", 3, 2, 4, 5, dtype=np.float32)
    out, _ = F.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], nonlinearity="relu")
    assert out.dtype == np.float32
    out64, _ = F.rnn(p["x"].astype(np.float64), p["h0"], p["w_ih"], p["w_hh"], nonlinearity="relu")
    assert out64.dtype == np.float64
    out16, _ = F.rnn(p["x"].astype(np.float16), p["h0"].astype(np.float16), p["w_ih"].astype(np.float16),
                     p["w_hh"].astype(np.float16), nonlinearity="relu")
    assert out16.dtype == np.float32


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(x=np.zeros((3, 4))), ValueError, r"x must be 3-D.*\(3, 4\)"),
        (dict(w_ih=np.zeros((16, 3))), ValueError, r"w_ih has shape \(16, 3\), expected \(16, 4\)"),
        (dict(w_hh=np.zeros((12, 4))), ValueError, r"w_hh has shape \(12, 4\)"),
        (dict(h0=np.zeros((3, 4))), ValueError, r"h0 has shape \(3, 4\), expected \(2, 4\)"),
        (dict(c0=np.zeros((2, 5))), ValueError, r"c0 has shape"),
        (dict(b_ih=np.zeros(15)), ValueError, r"b_ih has shape \(15,\), expected \(16,\)"),
        (dict(b_hh=None), ValueError, r"b_ih and b_hh"),
        (dict(x=np.zeros((3, 2, 4), dtype=complex)), TypeError, r"x has dtype complex128"),
        (dict(h0=np.array([["a"] * 4] * 2)), TypeError, r"h0 has dtype <U1"),
        (dict(w_hh=np.zeros((16, 4), dtype=np.longdouble)), TypeError, r"w_hh has dtype"),
        (dict(x=[[[1.0]], [[1.0, 2.0]]]), TypeError, r"x could not be converted"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(change, error, match):
    p = make_problem("lstm", 3, 2, 4, 4)
    p.update(change)
    if np.dtype(getattr(p["w_hh"], "dtype", float)) == np.longdouble and np.finfo(np.longdouble).bits <= 64:
        pytest.skip("long double is double on this platform")
    with pytest.raises(error, match=match):
        F.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])


def test_backward_refuses_mismatched_saved_arrays():
    p = make_problem("gru", 3, 2, 4, 5)
    out, h_n, ws = F.gru(p["x"], p["h0"], p["w_ih"], p["w_hh"], training=True)
    with pytest.raises(ValueError, match=r"workspace has shape \(3, 2, 15\), expected \(3, 2, 20\)"):
        F.gru_backward(None, None, p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws[:, :, :15])
    with pytest.raises(TypeError, match=r"workspace has dtype float32"):
        F.gru_backward(None, None, p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws.astype(np.float32))
    with pytest.raises(ValueError, match=r"d_out has shape"):
        F.gru_backward(np.zeros((3, 2, 4)), None, p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws)
    with pytest.raises(ValueError, match=r"nonlinearity must be 'tanh' or 'relu'"):
        F.rnn(p["x"], p["h0"], p["w_ih"][:5], p["w_hh"][:5], nonlinearity="sigmoid")


def test_core_refuses_what_would_read_out_of_bounds():
    """The binding is the last line of defence: every mismatch is an exception, never a wild read."""
    x = np.zeros((3, 2, 4))
    w_ih, w_hh = np.zeros((20, 4)), np.zeros((20, 5))
    out, h_n, c_n = np.zeros((3, 2, 5)), np.zeros((2, 5)), np.zeros((2, 5))
    _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out, h_n, c_n, None)
    with pytest.raises(TypeError, match="w_ih must have dtype float64"):
        _core.forward("lstm", x, None, None, w_ih.astype(np.float32), w_hh, None, None, out, h_n, c_n, None)
    with pytest.raises(ValueError, match=r"out has shape \(3, 2, 4\), expected \(3, 2, 5\)"):
        _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out[:, :, :4], h_n, c_n, None)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _core.forward("lstm", x, None, None, np.asfortranarray(w_ih), w_hh, None, None, out, h_n, c_n, None)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros((2, 5))
        ro.flags.writeable = False
        _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out, ro, c_n, None)
    with pytest.raises(ValueError, match="c_n is required"):
        _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out, h_n, None, None)
    with pytest.raises(ValueError, match="cell must be"):
        _core.forward("lstn", x, None, None, w_ih, w_hh, None, None, out, h_n, c_n, None)
    with pytest.raises(ValueError, match=r"workspace has shape"):
        _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out, h_n, c_n, np.zeros((3, 2, 5)))


def _forward(cell, p):
    """Inference forward of the native ops: (out, h_n)."""
    if cell == "lstm":
        return F.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])[:2]
    if cell == "gru":
        return F.gru(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    return F.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity=cell[4:])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_weights_edited_in_place_are_seen(cell, batch, threads, restore_threads):
    """The kernels keep packed weights between calls (csrc/rnnfast/weight_cache.h) and compare the weights
    with a kept copy on each call, in chunks shared by the threads when large: an edit anywhere in the
    same arrays (first, middle or last element, and the GRU's b_hn, which is packed with W_hh) must give
    the numbers of a fresh copy of the edited weights, never those of the stale pack."""
    _core.set_num_threads(threads)
    # W_hh of 512 KiB (float32, the LSTM) to 256 KiB: several compare chunks of 64 KiB.
    p = make_problem(cell, 3, batch, 200, 160, dtype=np.float32, seed=5)
    if cell == "rnn_relu":  # every pre-activation positive, so that every edit shows in the output
        p["b_ih"] += np.float32(4.0)
    n = GATES[cell] * 160
    edits = [("w_hh", (0, 0)), ("w_hh", (n // 2, 77)), ("w_hh", (n - 1, 159)), ("w_ih", (n - 1, 199)),
             ("b_hh", (n - 1,)), ("b_ih", (0,))]
    previous = _forward(cell, p)
    for name, index in edits:
        p[name][index] += np.float32(0.25)
        got = _forward(cell, p)
        fresh = _forward(cell, {k: (None if v is None else v.copy()) for k, v in p.items()})
        for g, f in zip(got, fresh):
            np.testing.assert_array_equal(g, f, err_msg=f"{cell}: {name}{list(index)} edited in place")
        assert not np.array_equal(got[0], previous[0]), f"{cell}: the edit of {name}{list(index)} changed nothing"
        previous = got
