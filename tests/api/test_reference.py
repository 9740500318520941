"""Tests of :mod:`rnnfast.reference`, the plain-NumPy definition the native kernels are checked against.

What makes the reference trustworthy:

- its forward agrees with an independent per-step, per-unit scalar loop written here from the equations
  (including the exact training-workspace layout and explicit gate-order checks);
- its analytical backward agrees with central finite differences of its forward, in float64, for every
  cell and every gradient, with all gradient paths (d_out, d_h_n, d_c_n) active;
- where torch is installed, forward and gradients agree with torch.nn.RNN/LSTM/GRU autograd.

Plus the API contract: float32 stays float32, ``out=``, no aliasing, T == 0, B == 0, None gradients, and
bad input refused with the right exception naming the argument.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnfast import reference as R

from helpers.cells import CELLS, GATES
from helpers.finite_differences import numerical_gradient

WS_UNITS = {"rnn_tanh": 0, "rnn_relu": 0, "lstm": 6, "gru": 4}


# ----------------------------------------------------------------------------------------------------
# Harness: one calling convention for every cell
# ----------------------------------------------------------------------------------------------------


def make_params(cell, T, B, I, H, *, seed=0, scale=0.5, dtype=np.float64, bias=True, states=True):
    """Random arguments for ``cell``: dict with x, h0, c0 (LSTM only), w_ih, w_hh, b_ih, b_hh."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)

    p = {
        "x": r(T, B, I),
        "h0": r(B, H, s=0.5) if states else None,
        "w_ih": r(G * H, I, s=scale),
        "w_hh": r(G * H, H, s=scale),
        "b_ih": r(G * H, s=scale) if bias else None,
        "b_hh": r(G * H, s=scale) if bias else None,
    }
    if cell == "lstm":
        p["c0"] = r(B, H, s=0.5) if states else None
    return p


def forward(cell, p, *, training=True, out=None):
    """Run the reference forward; returns dict with out, h_n, c_n (LSTM) and ws (when training)."""
    kw = dict(training=training, out=out)
    if cell == "lstm":
        res = R.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], **kw)
        names = ["out", "h_n", "c_n"]
    elif cell == "gru":
        res = R.gru(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], **kw)
        names = ["out", "h_n"]
    else:
        nl = cell.split("_")[1]
        res = R.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity=nl, **kw)
        names = ["out", "h_n"]
    if training:
        names = names + ["ws"]
    assert len(res) == len(names)
    return dict(zip(names, res))


def backward(cell, p, fw, d_out, d_h_n, d_c_n=None):
    if cell == "lstm":
        return R.lstm_backward(
            d_out, d_h_n, d_c_n, p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], fw["out"], fw["ws"]
        )
    if cell == "gru":
        return R.gru_backward(d_out, d_h_n, p["x"], p["h0"], p["w_ih"], p["w_hh"], fw["out"], fw["ws"])
    nl = cell.split("_")[1]
    return R.rnn_backward(
        d_out, d_h_n, p["x"], p["h0"], p["w_ih"], p["w_hh"], fw["out"], fw["ws"], nonlinearity=nl
    )


def make_cotangents(cell, T, B, H, *, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    d = {
        "d_out": rng.standard_normal((T, B, H)).astype(dtype),
        "d_h_n": rng.standard_normal((B, H)).astype(dtype),
    }
    d["d_c_n"] = rng.standard_normal((B, H)).astype(dtype) if cell == "lstm" else None
    return d


def loss(cell, p, d):
    """sum(out * d_out) + sum(h_n * d_h_n) (+ sum(c_n * d_c_n)): its gradients are what backward returns."""
    fw = forward(cell, p, training=False)
    total = np.sum(fw["out"] * d["d_out"]) + np.sum(fw["h_n"] * d["d_h_n"])
    if cell == "lstm":
        total += np.sum(fw["c_n"] * d["d_c_n"])
    return float(total)


GRAD_OF = {
    "d_x": "x", "d_h0": "h0", "d_c0": "c0", "d_w_ih": "w_ih", "d_w_hh": "w_hh", "d_b_ih": "b_ih", "d_b_hh": "b_hh"
}


def pre_activations(p, out):
    """RNN pre-activations ``W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` recomputed from the output."""
    h_prev = np.concatenate([p["h0"][None], out[:-1]], axis=0)
    return p["x"] @ p["w_ih"].T + p["b_ih"] + h_prev @ p["w_hh"].T + p["b_hh"]


# ----------------------------------------------------------------------------------------------------
# Independent scalar definition (tiny sizes only)
# ----------------------------------------------------------------------------------------------------


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def scalar_forward(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Per step, per batch row, per hidden unit, straight from the equations. Returns out, h_n, c_n, ws."""
    T, B, I = x.shape
    H = w_hh.shape[1]
    G = GATES[cell]
    b_ih = np.zeros(G * H) if b_ih is None else b_ih
    b_hh = np.zeros(G * H) if b_hh is None else b_hh
    h = np.zeros((B, H)) if h0 is None else np.array(h0, dtype=float)
    c = np.zeros((B, H)) if c0 is None else np.array(c0, dtype=float)
    out = np.zeros((T, B, H))
    ws = np.zeros((T, B, WS_UNITS[cell] * H))
    for t in range(T):
        h_new = np.zeros((B, H))
        c_new = np.zeros((B, H))
        for b in range(B):
            for j in range(H):

                def gi(k):  # input-side pre-activation of gate block k, unit j
                    return sum(w_ih[k * H + j, m] * x[t, b, m] for m in range(I)) + b_ih[k * H + j]

                def gh(k):  # recurrent-side pre-activation of gate block k, unit j
                    return sum(w_hh[k * H + j, m] * h[b, m] for m in range(H)) + b_hh[k * H + j]

                if cell == "rnn_tanh":
                    h_new[b, j] = math.tanh(gi(0) + gh(0))
                elif cell == "rnn_relu":
                    h_new[b, j] = max(gi(0) + gh(0), 0.0)
                elif cell == "lstm":
                    i = _sig(gi(0) + gh(0))
                    f = _sig(gi(1) + gh(1))
                    g = math.tanh(gi(2) + gh(2))
                    o = _sig(gi(3) + gh(3))
                    c_new[b, j] = f * c[b, j] + i * g
                    h_new[b, j] = o * math.tanh(c_new[b, j])
                    for k, v in enumerate((i, f, g, o, c_new[b, j], math.tanh(c_new[b, j]))):
                        ws[t, b, k * H + j] = v
                else:  # gru
                    r = _sig(gi(0) + gh(0))
                    z = _sig(gi(1) + gh(1))
                    n = math.tanh(gi(2) + r * gh(2))
                    h_new[b, j] = (1.0 - z) * n + z * h[b, j]
                    for k, v in enumerate((r, z, n, gh(2))):
                        ws[t, b, k * H + j] = v
        h, c = h_new, c_new
        out[t] = h
    return out, h, (c if cell == "lstm" else None), ws


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias,states", [(True, True), (False, False), (True, False)])
def test_forward_matches_scalar_definition(cell, bias, states):
    p = make_params(cell, 3, 2, 3, 2, seed=3, scale=0.8, bias=bias, states=states)
    fw = forward(cell, p)
    out, h_n, c_n, ws = scalar_forward(
        cell, p["x"], p["h0"], p.get("c0"), p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]
    )
    np.testing.assert_allclose(fw["out"], out, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(fw["h_n"], h_n, rtol=1e-13, atol=1e-14)
    assert fw["ws"].shape == (3, 2, WS_UNITS[cell] * 2)
    np.testing.assert_allclose(fw["ws"], ws, rtol=1e-13, atol=1e-14)
    if cell == "lstm":
        np.testing.assert_allclose(fw["c_n"], c_n, rtol=1e-13, atol=1e-14)
    # h_n is the last output
    np.testing.assert_array_equal(fw["h_n"], fw["out"][-1])


@pytest.mark.parametrize("cell", CELLS)
def test_bias_none_equals_zero_bias(cell):
    p = make_params(cell, 4, 3, 2, 3, seed=4, bias=False)
    q = dict(p, b_ih=np.zeros(GATES[cell] * 3), b_hh=np.zeros(GATES[cell] * 3))
    a, b = forward(cell, p), forward(cell, q)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _gate_bias(cell, H, values):
    """A bias vector whose gate block k is the constant values[k]."""
    return np.concatenate([np.full(H, v, dtype=float) for v in values])


def test_lstm_gate_order():
    """i, f, g, o row blocks: saturate the sigmoid gates through the bias and see which one does what."""
    T, B, I, H = 3, 2, 3, 4
    p = make_params("lstm", T, B, I, H, seed=5)
    p["w_hh"][:] = 0.0
    gx = p["x"] @ p["w_ih"].T  # (T, B, 4H) input projection, no bias
    g_pre = gx[..., 2 * H : 3 * H]
    zero = np.zeros(4 * H)
    # i = 1, f = 0, o = 1: c_t = g, h_t = tanh(g)
    fw = forward("lstm", dict(p, b_ih=_gate_bias("lstm", H, [40, -40, 0, 40]), b_hh=zero))
    np.testing.assert_allclose(fw["out"], np.tanh(np.tanh(g_pre)), rtol=1e-14)
    # i = 0, f = 1, o = 1: the cell state never changes, h_t = tanh(c0)
    fw = forward("lstm", dict(p, b_ih=zero, b_hh=_gate_bias("lstm", H, [-40, 40, 0, 40])))
    np.testing.assert_allclose(fw["c_n"], p["c0"], rtol=1e-14)
    np.testing.assert_allclose(fw["out"], np.broadcast_to(np.tanh(p["c0"]), (T, B, H)), rtol=1e-14)
    # o = 0: h_t = 0 while c_t still evolves
    fw = forward("lstm", dict(p, b_ih=_gate_bias("lstm", H, [0, 0, 0, -40]), b_hh=zero))
    assert np.abs(fw["out"]).max() < 1e-15
    assert np.abs(fw["c_n"] - p["c0"]).max() > 1e-3


def test_gru_gate_order_and_reset_on_recurrent_part_only():
    T, B, I, H = 3, 2, 3, 4
    p = make_params("gru", T, B, I, H, seed=6)
    gx = p["x"] @ p["w_ih"].T  # (T, B, 3H), no bias
    zero = np.zeros(3 * H)
    # z = 1: the state is carried unchanged
    fw = forward("gru", dict(p, b_ih=_gate_bias("gru", H, [0, 40, 0]), b_hh=zero))
    np.testing.assert_allclose(fw["out"], np.broadcast_to(p["h0"], (T, B, H)), rtol=1e-14)
    # z = 0, r = 0: h_t = n = tanh(W_in x_t + b_in); the recurrent n part, bias included, is reset away
    b_ih = _gate_bias("gru", H, [-40, -40, 0.3])
    base = forward("gru", dict(p, b_ih=b_ih, b_hh=zero))
    np.testing.assert_allclose(base["out"], np.tanh(gx[..., 2 * H :] + 0.3), rtol=1e-14)
    moved = forward("gru", dict(p, b_ih=b_ih, b_hh=_gate_bias("gru", H, [0, 0, 5.0])))
    np.testing.assert_allclose(moved["out"], base["out"], rtol=1e-14)
    # ... while the input-side n bias is not reset
    moved = forward("gru", dict(p, b_ih=b_ih + _gate_bias("gru", H, [0, 0, 5.0]), b_hh=zero))
    assert np.abs(moved["out"] - base["out"]).max() > 1e-3
    # r = 1: b_in and b_hn enter n the same way, so shifting one or the other gives the same result
    b_r1 = _gate_bias("gru", H, [40, 0, 0])
    a = forward("gru", dict(p, b_ih=b_r1 + _gate_bias("gru", H, [0, 0, 0.7]), b_hh=zero))
    b = forward("gru", dict(p, b_ih=b_r1, b_hh=_gate_bias("gru", H, [0, 0, 0.7])))
    np.testing.assert_allclose(a["out"], b["out"], rtol=1e-14)
    # the workspace's last block is W_hn h_{t-1} + b_hn, before r multiplies it
    fw = forward("gru", dict(p, b_ih=b_ih, b_hh=_gate_bias("gru", H, [0, 0, 5.0])))
    h_prev = np.concatenate([p["h0"][None], fw["out"][:-1]])
    np.testing.assert_allclose(fw["ws"][..., 3 * H :], h_prev @ p["w_hh"][2 * H :].T + 5.0, rtol=1e-14)


def test_rnn_relu_and_tanh_differ_only_in_activation():
    p = make_params("rnn_tanh", 1, 3, 4, 5, seed=7, states=False)
    pre = p["x"][0] @ p["w_ih"].T + p["b_ih"] + p["b_hh"]
    np.testing.assert_allclose(forward("rnn_tanh", p)["out"][0], np.tanh(pre), rtol=1e-15)
    np.testing.assert_allclose(forward("rnn_relu", p)["out"][0], np.maximum(pre, 0), rtol=1e-15)


# ----------------------------------------------------------------------------------------------------
# Finite differences
# ----------------------------------------------------------------------------------------------------


def relu_safe_params(T, B, I, H, margin=1e-3):
    """RNN-relu parameters whose pre-activations are all at least ``margin`` away from the kink at 0,
    with both signs present (so both branches of relu' are exercised)."""
    for seed in range(100):
        p = make_params("rnn_relu", T, B, I, H, seed=seed, scale=0.6)
        pre = pre_activations(p, forward("rnn_relu", p)["out"])
        if np.abs(pre).min() > margin and (pre > 0).any() and ((pre < 0).any() or pre.size == 1):
            return p
    raise AssertionError("no suitable seed")


SHAPES = [(1, 1, 1, 1), (1, 2, 3, 4), (3, 1, 2, 1), (4, 3, 5, 7)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T,B,I,H", SHAPES)
def test_backward_matches_finite_differences(cell, T, B, I, H):
    if cell == "rnn_relu":
        p = relu_safe_params(T, B, I, H)
    else:
        p = make_params(cell, T, B, I, H, seed=11, scale=0.6)
    d = make_cotangents(cell, T, B, H, seed=12)
    fw = forward(cell, p)
    grads = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
    assert set(grads._fields) == {k for k in GRAD_OF if cell == "lstm" or k != "d_c0"}

    for gname, pname in GRAD_OF.items():
        if gname not in grads._fields:
            continue
        analytic = getattr(grads, gname)
        assert analytic.shape == p[pname].shape, gname
        numeric = numerical_gradient(lambda: loss(cell, p, d), p[pname])
        # Central differences with eps = 1e-6: truncation error ~eps^2 and rounding error
        # ~1e-16 * |loss| / eps ~ 1e-9 here; 1e-7 relative to the gradient's scale leaves a wide margin
        # while any real mistake (a wrong gate, a missing path) is off by O(1).
        scale = max(1.0, np.abs(numeric).max())
        err = np.abs(analytic - numeric).max()
        assert err <= 1e-7 * scale, f"{cell} {gname}: max error {err:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("cell", CELLS)
def test_bias_gradient_structure(cell):
    p = make_params(cell, 3, 2, 3, 4, seed=13)
    d = make_cotangents(cell, 3, 2, 4)
    g = backward(cell, p, forward(cell, p), d["d_out"], d["d_h_n"], d["d_c_n"])
    assert not np.shares_memory(g.d_b_ih, g.d_b_hh)
    if cell == "gru":
        H = 4  # r and z blocks agree, the n block differs (r multiplies only the recurrent side)
        np.testing.assert_array_equal(g.d_b_ih[: 2 * H], g.d_b_hh[: 2 * H])
        assert np.abs(g.d_b_ih[2 * H :] - g.d_b_hh[2 * H :]).max() > 1e-6
    else:
        np.testing.assert_array_equal(g.d_b_ih, g.d_b_hh)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_without_bias_and_states(cell):
    """Forward without bias and with None states; backward still returns every gradient (zeros states)."""
    p = make_params(cell, 3, 2, 3, 4, seed=14, bias=False, states=False)
    q = dict(p, h0=np.zeros((2, 4)), b_ih=np.zeros(GATES[cell] * 4), b_hh=np.zeros(GATES[cell] * 4))
    if cell == "lstm":
        q["c0"] = np.zeros((2, 4))
    d = make_cotangents(cell, 3, 2, 4)
    g1 = backward(cell, p, forward(cell, p), d["d_out"], d["d_h_n"], d["d_c_n"])
    g2 = backward(cell, q, forward(cell, q), d["d_out"], d["d_h_n"], d["d_c_n"])
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)
    assert g1.d_b_ih.shape == (GATES[cell] * 4,)


@pytest.mark.parametrize("cell", CELLS)
def test_none_cotangents_equal_zeros(cell):
    T, B, I, H = 3, 2, 3, 4
    p = make_params(cell, T, B, I, H, seed=15)
    fw = forward(cell, p)
    d = make_cotangents(cell, T, B, H)
    z_out, z_state = np.zeros((T, B, H)), np.zeros((B, H))
    cases = [
        ((None, d["d_h_n"], d["d_c_n"]), (z_out, d["d_h_n"], d["d_c_n"])),
        ((d["d_out"], None, d["d_c_n"]), (d["d_out"], z_state, d["d_c_n"])),
        ((None, None, None), (z_out, z_state, z_state if cell == "lstm" else None)),
    ]
    if cell == "lstm":
        cases.append(((d["d_out"], d["d_h_n"], None), (d["d_out"], d["d_h_n"], z_state)))
    for given, explicit in cases:
        a = backward(cell, p, fw, *given)
        b = backward(cell, p, fw, *explicit)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    zero = backward(cell, p, fw, None, None, None)
    assert all(not np.any(g) for g in zero)


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


# ----------------------------------------------------------------------------------------------------
# PyTorch parity
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch(cell, bias):
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 3, 4, 6
    p = make_params(cell, T, B, I, H, seed=27, scale=0.6, bias=bias)
    d = make_cotangents(cell, T, B, H, seed=28)

    if cell == "lstm":
        m = torch.nn.LSTM(I, H, bias=bias)
    elif cell == "gru":
        m = torch.nn.GRU(I, H, bias=bias)
    else:
        m = torch.nn.RNN(I, H, nonlinearity=cell.split("_")[1], bias=bias)
    m = m.double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(p["w_ih"]))
        m.weight_hh_l0.copy_(torch.from_numpy(p["w_hh"]))
        if bias:
            m.bias_ih_l0.copy_(torch.from_numpy(p["b_ih"]))
            m.bias_hh_l0.copy_(torch.from_numpy(p["b_hh"]))
    x = torch.from_numpy(p["x"]).requires_grad_()
    h0 = torch.from_numpy(p["h0"][None].copy()).requires_grad_()
    if cell == "lstm":
        c0 = torch.from_numpy(p["c0"][None].copy()).requires_grad_()
        t_out, (t_h, t_c) = m(x, (h0, c0))
    else:
        t_out, t_h = m(x, h0)
    total = (t_out * torch.from_numpy(d["d_out"])).sum() + (t_h[0] * torch.from_numpy(d["d_h_n"])).sum()
    if cell == "lstm":
        total = total + (t_c[0] * torch.from_numpy(d["d_c_n"])).sum()
    total.backward()

    fw = forward(cell, p)
    tol = dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fw["out"], t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(fw["h_n"], t_h.detach().numpy()[0], **tol)
    if cell == "lstm":
        np.testing.assert_allclose(fw["c_n"], t_c.detach().numpy()[0], **tol)

    g = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
    tol = dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(g.d_x, x.grad.numpy(), **tol)
    np.testing.assert_allclose(g.d_h0, h0.grad.numpy()[0], **tol)
    if cell == "lstm":
        np.testing.assert_allclose(g.d_c0, c0.grad.numpy()[0], **tol)
    np.testing.assert_allclose(g.d_w_ih, m.weight_ih_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(g.d_w_hh, m.weight_hh_l0.grad.numpy(), **tol)
    if bias:
        np.testing.assert_allclose(g.d_b_ih, m.bias_ih_l0.grad.numpy(), **tol)
        np.testing.assert_allclose(g.d_b_hh, m.bias_hh_l0.grad.numpy(), **tol)


def test_backward_after_bias_promoted_forward():
    p = make_params("gru", 2, 2, 3, 4, seed=29, dtype=np.float32)
    p = dict(p, b_ih=p["b_ih"].astype(np.float64), b_hh=p["b_hh"].astype(np.float64))
    fw = forward("gru", p)
    assert fw["out"].dtype == np.float64
    g = backward("gru", p, fw, None, None)
    assert g.d_x.dtype == np.float64
