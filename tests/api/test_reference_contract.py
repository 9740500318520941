"""The API contract of :mod:`rnnfast.reference`: float32 stays float32, dtype promotion, ``out=``, no aliasing,
T == 0, B == 0, None gradients, no overflow, and bad input refused with the right exception naming the argument.
(Its numbers against the equations and finite differences: test_reference.py; against PyTorch:
interop/test_torch_reference_parity.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import reference as R

from helpers.cells import CELLS, GATES
from helpers.reference_harness import WS_UNITS, backward, forward, make_cotangents, make_params


# ----------------------------------------------------------------------------------------------------
# dtypes, out=, aliasing, empty sizes
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_float32_computes_in_float32_close_to_float64(cell):
    T, B, I, H = 5, 3, 4, 6
    p64 = make_params(cell, T, B, I, H, seed=16)
    p32 = {k: (None if v is None else v.astype(np.float32)) for k, v in p64.items()}
    d64 = make_cotangents(cell, T, B, H)
    d32 = {k: (None if v is None else v.astype(np.float32)) for k, v in d64.items()}
    # the float64 run starts from the float32-rounded values, so only the computation's rounding differs
    p64 = {k: (None if v is None else v.astype(np.float64)) for k, v in p32.items()}
    d64 = {k: (None if v is None else v.astype(np.float64)) for k, v in d32.items()}

    f32, f64 = forward(cell, p32), forward(cell, p64)
    for k in f32:
        assert f32[k].dtype == np.float32, k
        scale = max(np.abs(f64[k]).max(initial=0.0), 1e-30)
        np.testing.assert_allclose(f32[k], f64[k], rtol=1e-5, atol=1e-5 * scale, err_msg=k)
    g32 = backward(cell, p32, f32, d32["d_out"], d32["d_h_n"], d32["d_c_n"])
    g64 = backward(cell, p64, f64, d64["d_out"], d64["d_h_n"], d64["d_c_n"])
    for name, a, b in zip(g32._fields, g32, g64):
        assert a.dtype == np.float32, name
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_dtype_promotion():
    p = make_params("gru", 2, 2, 3, 4, seed=17, dtype=np.float32)
    # one float64 argument makes the computation float64; integer input is computed in float64
    assert forward("gru", dict(p, h0=p["h0"].astype(np.float64)))["out"].dtype == np.float64
    assert forward("gru", dict(p, x=np.ones((2, 2, 3), dtype=np.int32)))["out"].dtype == np.float64
    # float16 input is computed in float32; lists are accepted
    q = {k: (None if v is None else v.astype(np.float16)) for k, v in p.items()}
    assert forward("gru", q)["out"].dtype == np.float32
    lst = {k: (None if v is None else v.astype(np.float64).tolist()) for k, v in p.items()}
    np.testing.assert_allclose(
        forward("gru", lst)["out"], forward("gru", {k: np.asarray(v, dtype=float) for k, v in lst.items()})["out"]
    )


@pytest.mark.parametrize("cell", CELLS)
def test_out_argument(cell):
    T, B, I, H = 3, 2, 3, 4
    p = make_params(cell, T, B, I, H, seed=18)
    expect = forward(cell, p)
    # contiguous, right dtype: written directly
    out = np.full((T, B, H), np.nan)
    res = forward(cell, p, out=out)
    assert res["out"] is out
    np.testing.assert_array_equal(out, expect["out"])
    # non-contiguous
    big = np.full((T, B, 2 * H), np.nan)
    out = big[:, :, ::2]
    res = forward(cell, p, out=out)
    assert res["out"] is out
    np.testing.assert_array_equal(out, expect["out"])
    assert np.isnan(big[:, :, 1::2]).all()
    # Fortran order
    out = np.asfortranarray(np.zeros((T, B, H)))
    assert forward(cell, p, out=out)["out"] is out
    np.testing.assert_array_equal(out, expect["out"])
    # another float dtype (same_kind cast)
    out = np.zeros((T, B, H), dtype=np.float32)
    assert forward(cell, p, out=out)["out"] is out
    np.testing.assert_allclose(out, expect["out"], rtol=1e-6)
    # the other results are unaffected by out= and do not alias it
    assert not np.shares_memory(res["h_n"], res["out"])
    np.testing.assert_array_equal(res["h_n"], expect["h_n"])


@pytest.mark.parametrize("cell", CELLS)
def test_out_may_be_an_input(cell):
    """out= overlapping an input: the result is as if the input had been read before out was written."""
    T, B, H = 3, 2, 4
    p = make_params(cell, T, B, H, H, seed=19)
    expect = forward(cell, p)["out"]
    x = p["x"].copy()
    res = forward(cell, dict(p, x=x), out=x)
    assert res["out"] is x
    np.testing.assert_array_equal(x, expect)


def test_out_errors():
    p = make_params("gru", 2, 2, 3, 4, seed=20)
    with pytest.raises(ValueError, match="out"):
        forward("gru", p, out=np.zeros((2, 2, 5)))
    with pytest.raises(TypeError, match="out"):
        forward("gru", p, out=np.zeros((2, 2, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="out"):
        forward("gru", p, out=[[[0.0] * 4] * 2] * 2)
    ro = np.zeros((2, 2, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        forward("gru", p, out=ro)


def _all_arrays(obj):
    if isinstance(obj, dict):
        return [v for v in obj.values() if isinstance(v, np.ndarray)]
    return [v for v in obj if isinstance(v, np.ndarray)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T", [0, 1, 3])
def test_results_do_not_alias_inputs(cell, T):
    p = make_params(cell, T, 2, 3, 4, seed=21)
    d = make_cotangents(cell, T, 2, 4)
    before = {k: (None if v is None else v.copy()) for k, v in {**p, **d}.items()}
    fw = forward(cell, p)
    g = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
    inputs = _all_arrays(p) + _all_arrays(d)
    results = _all_arrays(fw) + list(g)
    for r in results:
        for a in inputs:
            assert not np.shares_memory(r, a)
    for i, r in enumerate(results):
        for s in results[i + 1 :]:
            assert r.size == 0 or s.size == 0 or not np.shares_memory(r, s)
    # inputs are not modified
    for k, v in {**p, **d}.items():
        if v is not None:
            np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
def test_zero_length_sequence(cell):
    B, I, H = 2, 3, 4
    G = GATES[cell]
    p = make_params(cell, 0, B, I, H, seed=22)
    fw = forward(cell, p)
    assert fw["out"].shape == (0, B, H)
    assert fw["ws"].shape == (0, B, WS_UNITS[cell] * H)
    np.testing.assert_array_equal(fw["h_n"], p["h0"])
    assert not np.shares_memory(fw["h_n"], p["h0"])
    if cell == "lstm":
        np.testing.assert_array_equal(fw["c_n"], p["c0"])
        assert not np.shares_memory(fw["c_n"], p["c0"])
    d = make_cotangents(cell, 0, B, H)
    g = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
    assert g.d_x.shape == (0, B, I)
    np.testing.assert_array_equal(g.d_h0, d["d_h_n"])
    assert not np.shares_memory(g.d_h0, d["d_h_n"])
    if cell == "lstm":
        np.testing.assert_array_equal(g.d_c0, d["d_c_n"])
        assert not np.shares_memory(g.d_c0, d["d_c_n"])
    expected = {"d_w_ih": (G * H, I), "d_w_hh": (G * H, H), "d_b_ih": (G * H,), "d_b_hh": (G * H,)}
    for name, shape in expected.items():
        arr = getattr(g, name)
        assert arr.shape == shape and not arr.any(), name
    # no states and no gradients: zeros
    q = make_params(cell, 0, B, I, H, states=False)
    fq = forward(cell, q)
    assert fq["h_n"].shape == (B, H) and not fq["h_n"].any()
    gq = backward(cell, q, fq, None, None, None)
    assert gq.d_h0.shape == (B, H) and not gq.d_h0.any()


@pytest.mark.parametrize("cell", CELLS)
def test_zero_batch(cell):
    T, I, H = 3, 3, 4
    G = GATES[cell]
    p = make_params(cell, T, 0, I, H, seed=23)
    fw = forward(cell, p)
    assert fw["out"].shape == (T, 0, H)
    assert fw["h_n"].shape == (0, H)
    assert fw["ws"].shape == (T, 0, WS_UNITS[cell] * H)
    d = make_cotangents(cell, T, 0, H)
    g = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
    assert g.d_x.shape == (T, 0, I) and g.d_h0.shape == (0, H)
    assert g.d_w_ih.shape == (G * H, I) and not g.d_w_ih.any()
    assert g.d_w_hh.shape == (G * H, H) and not g.d_w_hh.any()
    assert g.d_b_ih.shape == (G * H,) and not g.d_b_ih.any()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("cell", CELLS)
def test_large_pre_activations_do_not_overflow(cell):
    for dtype in (np.float32, np.float64):
        p = make_params(cell, 3, 2, 3, 4, seed=24, scale=300.0, dtype=dtype)
        fw = forward(cell, p)
        assert all(np.isfinite(v).all() for v in fw.values())
        if cell != "rnn_relu":
            assert np.abs(fw["out"]).max() <= 1.0
        d = make_cotangents(cell, 3, 2, 4, dtype=dtype)
        g = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
        assert all(np.isfinite(v).all() for v in g)


def test_grads_are_namedtuples_reexported():
    assert R.RNNGrads._fields == ("d_x", "d_h0", "d_w_ih", "d_w_hh", "d_b_ih", "d_b_hh")
    assert R.LSTMGrads._fields == ("d_x", "d_h0", "d_c0", "d_w_ih", "d_w_hh", "d_b_ih", "d_b_hh")
    assert R.GRUGrads._fields == ("d_x", "d_h0", "d_w_ih", "d_w_hh", "d_b_ih", "d_b_hh")
    p = make_params("lstm", 2, 1, 2, 3)
    g = backward("lstm", p, forward("lstm", p), None, None, None)
    assert isinstance(g, R.LSTMGrads)


def test_training_flag_changes_only_the_extra_result():
    p = make_params("lstm", 3, 2, 3, 4, seed=25)
    a = R.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    b = R.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], training=True)
    assert len(a) == 3 and len(b) == 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------


def _gru_args():
    return make_params("gru", 2, 3, 4, 5, seed=26)


def test_bad_input_forward():
    p = _gru_args()
    with pytest.raises(ValueError, match=r"x must be 3-D"):
        forward("gru", dict(p, x=p["x"][0]))
    with pytest.raises(ValueError, match=r"w_ih has shape \(15, 3\)"):
        forward("gru", dict(p, w_ih=p["w_ih"][:, :3]))
    with pytest.raises(ValueError, match=r"w_hh has shape \(14, 5\)"):
        forward("gru", dict(p, w_hh=p["w_hh"][:14]))
    with pytest.raises(ValueError, match=r"w_hh has shape \(20, 5\)"):  # an LSTM's w_hh given to the GRU
        forward("gru", dict(p, w_hh=np.zeros((20, 5))))
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 5\)"):
        forward("gru", dict(p, h0=p["h0"][:2]))
    with pytest.raises(ValueError, match=r"b_hh has shape"):
        forward("gru", dict(p, b_hh=p["b_hh"][:5]))
    with pytest.raises(TypeError, match=r"x has dtype complex128"):
        forward("gru", dict(p, x=p["x"].astype(complex)))
    with pytest.raises(TypeError, match=r"w_hh has dtype"):
        forward("gru", dict(p, w_hh=p["w_hh"].astype(str)))
    with pytest.raises(ValueError, match=r"b_ih and b_hh"):
        forward("gru", dict(p, b_hh=None))
    with pytest.raises(ValueError, match=r"b_ih and b_hh"):
        forward("gru", dict(p, b_ih=None))
    lp = make_params("lstm", 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"c0 has shape"):
        forward("lstm", dict(lp, c0=lp["c0"].T))
    with pytest.raises(ValueError, match=r"w_hh"):
        forward("lstm", dict(lp, w_hh=np.zeros((0, 0))))


def test_bad_nonlinearity():
    p = make_params("rnn_tanh", 2, 3, 4, 5)
    with pytest.raises(ValueError, match="nonlinearity"):
        R.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        R.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], nonlinearity="TANH")
    out, _, ws = R.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], training=True)
    with pytest.raises(ValueError, match="nonlinearity"):
        R.rnn_backward(None, None, p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws, nonlinearity="gelu")


def test_bad_input_backward():
    p = _gru_args()
    fw = forward("gru", p)
    args = dict(
        d_out=None, d_h_n=None, x=p["x"], h0=p["h0"], w_ih=p["w_ih"], w_hh=p["w_hh"], out=fw["out"], workspace=fw["ws"]
    )
    with pytest.raises(ValueError, match=r"workspace has shape \(2, 3, 15\)"):
        R.gru_backward(**dict(args, workspace=fw["ws"][..., :15]))
    with pytest.raises(ValueError, match=r"workspace has shape"):  # an LSTM-sized workspace
        R.gru_backward(**dict(args, workspace=np.zeros((2, 3, 30))))
    with pytest.raises(TypeError, match=r"workspace has dtype float32"):
        R.gru_backward(**dict(args, workspace=fw["ws"].astype(np.float32)))
    with pytest.raises(ValueError, match=r"out has shape"):
        R.gru_backward(**dict(args, out=fw["out"][:1]))
    with pytest.raises(ValueError, match=r"d_out has shape"):
        R.gru_backward(**dict(args, d_out=np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match=r"d_h_n has shape"):
        R.gru_backward(**dict(args, d_h_n=np.zeros((3, 4))))
    with pytest.raises(TypeError, match=r"d_h_n has dtype complex"):
        R.gru_backward(**dict(args, d_h_n=np.zeros((3, 5), dtype=complex)))
    with pytest.raises(ValueError, match=r"x must be 3-D"):
        R.gru_backward(**dict(args, x=p["x"][0]))
    lp = make_params("lstm", 2, 3, 4, 5)
    lf = forward("lstm", lp)
    with pytest.raises(ValueError, match=r"d_c_n has shape"):
        R.lstm_backward(
            None, None, np.zeros((5, 3)), lp["x"], lp["h0"], lp["c0"], lp["w_ih"], lp["w_hh"], lf["out"], lf["ws"]
        )
    rp = make_params("rnn_tanh", 2, 3, 4, 5)
    rf = forward("rnn_tanh", rp)
    with pytest.raises(ValueError, match=r"workspace has shape"):
        R.rnn_backward(None, None, rp["x"], rp["h0"], rp["w_ih"], rp["w_hh"], rf["out"], np.zeros((2, 3, 5)))


def test_backward_after_bias_promoted_forward():
    p = make_params("gru", 2, 2, 3, 4, seed=29, dtype=np.float32)
    p = dict(p, b_ih=p["b_ih"].astype(np.float64), b_hh=p["b_hh"].astype(np.float64))
    fw = forward("gru", p)
    assert fw["out"].dtype == np.float64
    g = backward("gru", p, fw, None, None)
    assert g.d_x.dtype == np.float64
