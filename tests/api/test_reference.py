"""Tests of :mod:`rnnfast.reference`, the plain-NumPy definition the native kernels are checked against.

What makes the reference trustworthy:

- its forward agrees with an independent per-step, per-unit scalar loop written here from the equations
  (including the exact training-workspace layout and explicit gate-order checks);
- its analytical backward agrees with central finite differences of its forward, in float64, for every
  cell and every gradient, with all gradient paths (d_out, d_h_n, d_c_n) active, with lengths too;
- where torch is installed, forward and gradients agree with torch.nn.RNN/LSTM/GRU autograd
  (interop/test_torch_reference_parity.py).

Its API contract (dtypes, ``out=``, aliasing, empty sizes, bad input) is in test_reference_contract.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnfast import reference as R

from helpers.cells import CELLS, GATES
from helpers.finite_differences import numerical_gradient
from helpers.native_problems import LENGTHS, make_problem, run_with_lengths
from helpers.reference_harness import (GRAD_OF, WS_UNITS, backward, forward, loss, make_cotangents, make_params,
                                       pre_activations)


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
# Finite differences with per-sequence lengths (the harness of the native-op tests: helpers.native_problems)
# ----------------------------------------------------------------------------------------------------


def loss_with_lengths(cell, p, lengths):
    """The scalar whose gradients the backward with lengths returns (the cotangents are in p)."""
    r = run_with_lengths(R, cell, p, lengths)
    total = np.sum(r["out"] * p["d_out"]) + np.sum(r["h_n"] * p["d_h_n"])
    if cell == "lstm":
        total += np.sum(r["c_n"] * p["d_c_n"])
    return total


@pytest.mark.parametrize("kind", ["sorted", "unsorted", "with_zero"])
@pytest.mark.parametrize("cell", CELLS)
def test_reference_with_lengths_matches_finite_differences(cell, kind):
    lengths = np.array(LENGTHS[kind])
    p = make_problem(cell, 6, 5, 3, 4, seed=3)
    if cell == "rnn_relu":  # keep pre-activations off relu's kink, where a difference is not a derivative
        p["w_ih"] *= 0.5
    grads = run_with_lengths(R, cell, p, lengths)
    names = {"x": "d_x", "h0": "d_h0", "w_ih": "d_w_ih", "w_hh": "d_w_hh", "b_ih": "d_b_ih", "b_hh": "d_b_hh"}
    if cell == "lstm":
        names["c0"] = "d_c0"
    eps = 1e-6
    for arg, grad_name in names.items():
        value = p[arg]
        numeric = np.empty_like(value)
        for idx in np.ndindex(value.shape):
            keep = value[idx]
            value[idx] = keep + eps
            up = loss_with_lengths(cell, p, lengths)
            value[idx] = keep - eps
            down = loss_with_lengths(cell, p, lengths)
            value[idx] = keep
            numeric[idx] = (up - down) / (2 * eps)
        scale = max(1.0, float(np.max(np.abs(numeric))))
        err = float(np.max(np.abs(grads[grad_name] - numeric)))
        assert err <= 1e-6 * scale, f"{cell} {kind}: {grad_name} differs from finite differences by {err:.2e}"
