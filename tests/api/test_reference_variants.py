"""Tests of the NumPy reference of the cell variants (rnnfast.reference.variant_forward / variant_backward and
the activations), the definition the native variant ops are checked against.

What makes it trustworthy:

- every activation and its derivative agree with scalar formulas written here from the table of
  rnnfast._variants (``math`` module) and with central differences, in the input's dtype, without overflow
  where the function itself does not overflow;
- the forward of every option agrees with a per-step, per-unit scalar loop written here from the equations,
  workspace layout included;
- the backward agrees with central finite differences of the forward in float64, for every gradient (d_x,
  d_h0, d_c0, every weight, both biases, w_hr, w_ch), for each option alone, a few combinations, each
  activation in each gate role, and lengths with a zero length;
- with default options it equals rnnfast.reference's lstm/gru/rnn and their backwards to rounding;
- against the frameworks that define each variant (torch, ONNX Runtime, Keras):
  interop/test_variant_reference_parity.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnfast import reference as R
from rnnfast._variants import (ACTIVATIONS, ROLES, SELU_ALPHA, SELU_SCALE, VARIANT_WORKSPACE_SLOTS, Activation,
                               CellOptions, make_options)

from helpers.finite_differences import numerical_gradient

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
H = 3  # the hidden size of every problem here but the activation sweep

# ----------------------------------------------------------------------------------------------------
# Scalar definitions (math module only), straight from the tables and equations
# ----------------------------------------------------------------------------------------------------


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def scalar_act(act: Activation, v: float) -> float:
    n, al, be = act.name, act.alpha, act.beta
    if n == "sigmoid":
        return _sig(v)
    if n == "tanh":
        return math.tanh(v)
    if n == "relu":
        return max(v, 0.0)
    if n == "affine":
        return al * v + be
    if n == "leaky_relu":
        return v if v >= 0 else al * v
    if n == "thresholded_relu":
        return v if v > al else 0.0
    if n == "scaled_tanh":
        return al * math.tanh(be * v)
    if n == "hard_sigmoid":
        return max(0.0, min(1.0, al * v + be))
    if n == "elu":
        return v if v >= 0 else al * (math.exp(v) - 1.0)
    if n == "softsign":
        return v / (1.0 + abs(v))
    if n == "softplus":
        return math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v))
    if n == "selu":
        return SELU_SCALE * (v if v >= 0 else SELU_ALPHA * (math.exp(v) - 1.0))
    if n == "exponential":
        return math.exp(v)
    if n == "silu":
        return v * _sig(v)
    if n == "relu6":
        return min(max(v, 0.0), 6.0)
    raise AssertionError(n)


def scalar_forward(opts: CellOptions, p: dict):
    """Per step, batch row and unit, from the module notes of rnnfast._reference_variants.
    Returns out, h_n, c_n (or None), workspace."""
    fam = opts.family
    x, w_ih, w_hh = p["x"], p["w_ih"], p["w_hh"]
    T, B, I = x.shape
    G = GATES[fam]
    Hh = w_hh.shape[0] // G
    Rr = w_hh.shape[1]
    b_ih = np.zeros(G * Hh) if p["b_ih"] is None else p["b_ih"]
    b_hh = np.zeros(G * Hh) if p["b_hh"] is None else p["b_hh"]
    lengths = p.get("lengths")
    lengths = [T] * B if lengths is None else list(lengths)

    def clip(v):
        return v if opts.clip is None else min(max(v, -opts.clip), opts.clip)

    def act(role, v):
        return scalar_act(opts.activations[role], clip(v))

    h = np.zeros((B, Rr)) if p["h0"] is None else np.array(p["h0"], dtype=float)
    c = np.zeros((B, Hh)) if p.get("c0") is None else np.array(p["c0"], dtype=float)
    out = np.zeros((T, B, Rr))
    ws = np.zeros((T, B, VARIANT_WORKSPACE_SLOTS[fam] * Hh))
    for t in range(T):
        for b in range(B):
            if t >= lengths[b]:
                continue

            def gi(k, j):
                return sum(w_ih[k * Hh + j, q] * x[t, b, q] for q in range(I)) + b_ih[k * Hh + j]

            def gh(k, j, v=None):
                v = h[b] if v is None else v
                return sum(w_hh[k * Hh + j, q] * v[q] for q in range(Rr)) + b_hh[k * Hh + j]

            saved = np.zeros((VARIANT_WORKSPACE_SLOTS[fam], Hh))
            if fam == "rnn":
                h_new = np.zeros(Rr)
                for j in range(Hh):
                    a = gi(0, j) + gh(0, j)
                    h_new[j] = act(0, a)
                    saved[0, j] = a
            elif fam == "lstm":
                p_i, p_f, p_o = (np.zeros(Hh),) * 3 if p.get("w_ch") is None else np.split(p["w_ch"], 3)
                m = np.zeros(Hh)
                c_new = np.zeros(Hh)
                for j in range(Hh):
                    a_i = gi(0, j) + gh(0, j) + p_i[j] * c[b, j]
                    a_f = gi(1, j) + gh(1, j) + p_f[j] * c[b, j]
                    a_g = gi(2, j) + gh(2, j)
                    i = act(0, a_i)
                    f = 1.0 - i if opts.input_forget else act(0, a_f)
                    g = act(1, a_g)
                    c_new[j] = f * c[b, j] + i * g
                    a_o = gi(3, j) + gh(3, j) + p_o[j] * c_new[j]
                    m[j] = act(0, a_o) * scalar_act(opts.activations[2], c_new[j])
                    saved[:, j] = (a_i, a_f, a_g, a_o, c_new[j], m[j])
                if opts.proj_size:
                    h_new = np.array([sum(p["w_hr"][k, j] * m[j] for j in range(Hh)) for k in range(Rr)])
                else:
                    h_new = m
                c[b] = c_new
            else:
                r = np.array([act(0, gi(0, j) + gh(0, j)) for j in range(Hh)])
                h_new = np.zeros(Hh)
                for j in range(Hh):
                    a_r, a_z = gi(0, j) + gh(0, j), gi(1, j) + gh(1, j)
                    z = act(0, a_z)
                    if opts.reset_after:
                        u = gh(2, j)
                        a_n = gi(2, j) + r[j] * u
                    else:
                        u = r[j] * h[b, j]
                        a_n = gi(2, j) + gh(2, j, r * h[b])
                    n = act(1, a_n)
                    h_new[j] = (1.0 - z) * n + z * h[b, j]
                    saved[:, j] = (a_r, a_z, a_n, u)
            h[b] = h_new
            out[t, b] = h_new
            ws[t, b] = saved.reshape(-1)
    return out, h, (c if fam == "lstm" else None), ws


# ----------------------------------------------------------------------------------------------------
# Problems
# ----------------------------------------------------------------------------------------------------


def make_problem(opts: CellOptions, T=3, B=2, I=2, Hs=H, *, seed=0, dtype=np.float64, bias=True, states=True,
                 scale=0.7, lengths=None) -> dict:
    """Random arguments of variant_forward for ``opts`` (hidden size Hs)."""
    rng = np.random.default_rng(seed)
    fam, G, P = opts.family, GATES[opts.family], opts.proj_size
    Rr = P or Hs

    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)

    return {
        "x": r(T, B, I), "h0": r(B, Rr, s=0.5) if states else None,
        "c0": r(B, Hs, s=0.5) if states and fam == "lstm" else None,
        "w_ih": r(G * Hs, I, s=scale), "w_hh": r(G * Hs, Rr, s=scale),
        "b_ih": r(G * Hs, s=scale) if bias else None, "b_hh": r(G * Hs, s=scale) if bias else None,
        "w_hr": r(P, Hs, s=scale) if P else None, "w_ch": r(3 * Hs, s=scale) if opts.peepholes else None,
        "lengths": lengths,
    }


def run(opts, p, training=True):
    return R.variant_forward(opts, p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["w_hr"],
                             p["w_ch"], training=training, lengths=p["lengths"])


def run_backward(opts, p, fw, d):
    out, _, _, ws = fw
    return R.variant_backward(opts, d["d_out"], d["d_h_n"], d["d_c_n"], p["x"], p["h0"], p["c0"], p["w_ih"],
                              p["w_hh"], p["w_hr"], p["w_ch"], out, ws, lengths=p["lengths"])


GRAD_OF = {"d_x": "x", "d_h0": "h0", "d_c0": "c0", "d_w_ih": "w_ih", "d_w_hh": "w_hh", "d_b_ih": "b_ih",
           "d_b_hh": "b_hh", "d_w_hr": "w_hr", "d_w_ch": "w_ch"}


def check_gradients(opts, p, Hs=H, seed=1, eps=1e-6, tol=2e-6):
    """variant_backward against central differences of the loss sum(out*d_out) + sum(h_n*d_h_n) (+ c_n)."""
    fw = run(opts, p)
    rng = np.random.default_rng(seed)
    B = p["x"].shape[1]
    d = {"d_out": rng.standard_normal(fw[0].shape), "d_h_n": rng.standard_normal(fw[1].shape),
         "d_c_n": rng.standard_normal((B, Hs)) if opts.family == "lstm" else None}

    def loss():
        out, h_n, c_n, _ = run(opts, p, training=False)
        total = np.sum(out * d["d_out"]) + np.sum(h_n * d["d_h_n"])
        return float(total + (np.sum(c_n * d["d_c_n"]) if c_n is not None else 0.0))

    g = run_backward(opts, p, fw, d)
    checked = []
    for field, arg in GRAD_OF.items():
        ours = getattr(g, field)
        if p.get(arg) is None:
            # absent argument: gradients the op always returns (biases) still have their shapes; the rest None
            if arg in ("b_ih", "b_hh"):
                assert ours.shape == (GATES[opts.family] * Hs,)
            elif arg == "h0" or (arg == "c0" and opts.family == "lstm"):
                assert ours is not None and not np.isnan(ours).any()
            else:
                assert ours is None, field
            continue
        num = numerical_gradient(loss, p[arg], eps)
        assert ours.shape == p[arg].shape, field
        scale = max(1.0, float(np.abs(num).max()))
        err = float(np.abs(ours - num).max()) / scale
        assert err < tol, f"{field}: max difference {err:.3g} (relative to {scale:.3g})"
        checked.append(field)
    return checked


# ----------------------------------------------------------------------------------------------------
# Activations
# ----------------------------------------------------------------------------------------------------

# Non-default parameters for the activations that take them, so that alpha and beta are exercised.
PARAMS = {"affine": (0.7, -0.3), "leaky_relu": (0.05, None), "thresholded_relu": (0.4, None),
          "scaled_tanh": (1.3, 0.6), "hard_sigmoid": (0.3, 0.4), "elu": (0.8, None)}
ALL_ACTS = [Activation(n) for n in ACTIVATIONS] + [Activation(n, *PARAMS[n]) for n in PARAMS]
# Points away from every kink (0, 6, the thresholds, hard_sigmoid's corners) for the derivative checks.
POINTS = np.array([-7.3, -3.1, -1.7, -0.45, -0.04, 0.03, 0.21, 0.55, 1.4, 2.6, 5.5, 6.6])


@pytest.mark.parametrize("act", ALL_ACTS, ids=repr)
def test_activation_values_and_derivatives(act):
    for dtype in (np.float64, np.float32):
        a = POINTS.astype(dtype)
        v, dv = R.activation_value(act, a), R.activation_derivative(act, a)
        assert v.dtype == dtype and dv.dtype == dtype and v.shape == a.shape == dv.shape
        expected = np.array([scalar_act(act, float(t)) for t in a])
        tol = 1e-14 if dtype == np.float64 else 3e-7
        np.testing.assert_allclose(v, expected, rtol=tol, atol=tol)
    a = POINTS.copy()
    eps = 1e-6
    num = (R.activation_value(act, a + eps) - R.activation_value(act, a - eps)) / (2 * eps)
    np.testing.assert_allclose(R.activation_derivative(act, a), num, rtol=1e-7, atol=1e-8)


def test_activation_kink_conventions():
    """PyTorch's derivatives at the kinks: relu'(0) = 0, leaky/elu take the a > 0 branch, relu6 is 0 at 0 and 6,
    thresholded_relu is 0 at alpha, hard_sigmoid 0 at its corners."""
    d = R.activation_derivative
    z = np.array([0.0])
    assert d(Activation("relu"), z)[0] == 0.0
    assert d(Activation("leaky_relu", 0.1), z)[0] == pytest.approx(0.1)
    assert d(Activation("elu", 0.5), z)[0] == pytest.approx(0.5)
    np.testing.assert_array_equal(d(Activation("relu6"), np.array([0.0, 3.0, 6.0])), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(d(Activation("thresholded_relu", 0.5), np.array([0.5, 0.6])), [0.0, 1.0])
    np.testing.assert_allclose(d(Activation("hard_sigmoid", 0.25, 0.5), np.array([-2.0, 0.0, 2.0])), [0, 0.25, 0])


def test_activations_are_stable_for_large_inputs():
    big = np.array([-1e4, -800.0, -90.0, 90.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        for name in ("sigmoid", "tanh", "softplus", "silu", "elu", "selu", "softsign", "hard_sigmoid", "relu6"):
            for dtype in (np.float32, np.float64):
                a = big.astype(dtype)
                v, dv = R.activation_value(Activation(name), a), R.activation_derivative(Activation(name), a)
                assert np.isfinite(v).all() and np.isfinite(dv).all(), name
    a = big
    np.testing.assert_array_equal(R.activation_value(Activation("sigmoid"), a)[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(R.activation_value(Activation("softplus"), a), np.maximum(a, 0), rtol=1e-15,
                               atol=1e-30)
    np.testing.assert_allclose(R.activation_value(Activation("softplus"), np.array([-50.0]))[0], math.exp(-50),
                               rtol=1e-14)
    with np.errstate(over="ignore"):
        assert R.activation_value(Activation("exponential"), np.array([1000.0], dtype=np.float32))[0] == np.inf


def test_activation_functions_refuse_a_name():
    with pytest.raises(TypeError, match="act must be an rnnfast.Activation"):
        R.activation_value("tanh", np.zeros(2))
    with pytest.raises(TypeError, match="act must be an rnnfast.Activation"):
        R.activation_derivative("tanh", np.zeros(2))


# ----------------------------------------------------------------------------------------------------
# The variants: scalar forward and finite differences
# ----------------------------------------------------------------------------------------------------

VARIANTS = {
    # each option alone
    "rnn-clip": make_options("rnn", H, clip=0.6),
    "lstm-clip": make_options("lstm", H, clip=0.6),
    "gru-clip": make_options("gru", H, clip=0.6),
    "lstm-input_forget": make_options("lstm", H, input_forget=True),
    "gru-reset_before": make_options("gru", H, reset_after=False),
    "lstm-proj": make_options("lstm", H, proj_size=2),
    "lstm-proj1": make_options("lstm", H, proj_size=1),
    "lstm-peepholes": make_options("lstm", H, peepholes=True),
    "rnn-softsign": make_options("rnn", H, activations=["softsign"]),
    "lstm-activations": make_options("lstm", H, activations=["hard_sigmoid", "elu", "softsign"]),
    "gru-activations": make_options("gru", H, activations=[Activation("hard_sigmoid", 0.3, 0.45), "relu"]),
    # combinations
    "lstm-proj-peepholes-clip": make_options("lstm", H, proj_size=2, peepholes=True, clip=0.7),
    "lstm-peepholes-input_forget-clip": make_options("lstm", H, peepholes=True, input_forget=True, clip=0.9),
    "lstm-all": make_options("lstm", H, proj_size=2, peepholes=True, input_forget=True, clip=1.1,
                             activations=[Activation("scaled_tanh", 0.9, 1.2), "softsign", "silu"]),
    "gru-reset_before-clip-activations": make_options("gru", H, reset_after=False, clip=0.8,
                                                      activations=["softsign", Activation("leaky_relu", 0.2)]),
    "gru-reset_before-affine": make_options("gru", H, reset_after=False,
                                            activations=["sigmoid", Activation("affine", 0.8, 0.1)]),
    "rnn-clip-selu": make_options("rnn", H, clip=1.5, activations=["selu"]),
}


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("bias,states,lengths", [(True, True, None), (False, False, None), (True, True, [3, 0])])
def test_forward_matches_scalar_definition(name, bias, states, lengths):
    opts = VARIANTS[name]
    p = make_problem(opts, seed=3, scale=0.9, bias=bias, states=states, lengths=lengths)
    out, h_n, c_n, ws = run(opts, p)
    e_out, e_h, e_c, e_ws = scalar_forward(opts, p)
    Rr = opts.proj_size or H
    assert out.shape == (3, 2, Rr) and h_n.shape == (2, Rr)
    assert ws.shape == (3, 2, VARIANT_WORKSPACE_SLOTS[opts.family] * H)
    tol = dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out, e_out, **tol)
    np.testing.assert_allclose(h_n, e_h, **tol)
    np.testing.assert_allclose(ws, e_ws, **tol)
    if opts.family == "lstm":
        assert c_n.shape == (2, H)
        np.testing.assert_allclose(c_n, e_c, **tol)
    else:
        assert c_n is None
    if lengths is not None:  # a zero-length row keeps its initial states and outputs zeros
        np.testing.assert_array_equal(h_n[1], p["h0"][1])
        assert not out[:, 1].any() and not ws[:, 1].any()
    # without training, the same results and no workspace
    o2, h2, c2, w2 = run(opts, p, training=False)
    assert w2 is None
    np.testing.assert_array_equal(o2, out)
    np.testing.assert_array_equal(h2, h_n)


def test_clip_is_active_in_the_clip_problems():
    """The clip cases above really clip: some pre-activations lie beyond the bound (else they test nothing)."""
    for name, opts in VARIANTS.items():
        if opts.clip is None:
            continue
        ws = run(opts, make_problem(opts, seed=3, scale=0.9))[3]
        pre = ws if opts.family != "lstm" else ws[..., : 4 * H]
        assert (np.abs(pre) > opts.clip).any() and (np.abs(pre) < opts.clip).any(), name


def test_lstm_clip_leaves_the_cell_state_unclipped():
    """The clip bounds the gates' pre-activations only: with h = affine (identity), m_t = o * c_t even where
    |c_t| is far beyond the clip (ONNX Runtime's behaviour)."""
    opts = make_options("lstm", H, clip=0.25, activations=["sigmoid", "tanh", "affine"])
    p = make_problem(opts, seed=16, scale=2.0)
    p["c0"] = np.full_like(p["c0"], 5.0)
    out, _, _, ws = run(opts, p)
    a_o, c = ws[..., 3 * H:4 * H], ws[..., 4 * H:5 * H]
    assert np.abs(c).max() > 1.0 and np.abs(a_o).max() > 0.25
    o = R.activation_value(Activation("sigmoid"), np.clip(a_o, -0.25, 0.25))
    np.testing.assert_allclose(out, o * c, rtol=1e-14)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("bias,states,lengths", [(True, True, None), (False, False, None), (True, True, [2, 0, 3])])
def test_backward_matches_finite_differences(name, bias, states, lengths):
    opts = VARIANTS[name]
    p = make_problem(opts, B=3 if lengths else 2, seed=4, scale=0.8, bias=bias, states=states, lengths=lengths)
    checked = check_gradients(opts, p)
    assert {"d_x", "d_w_ih", "d_w_hh"} <= set(checked)
    assert ("d_w_hr" in checked) == bool(opts.proj_size) and ("d_w_ch" in checked) == opts.peepholes


def test_input_forget_gives_the_forget_weights_no_gradient():
    opts = VARIANTS["lstm-peepholes-input_forget-clip"]
    p = make_problem(opts, seed=5)
    fw = run(opts, p)
    g = run_backward(opts, p, fw, {"d_out": np.ones_like(fw[0]), "d_h_n": None, "d_c_n": None})
    assert not g.d_w_ih[H:2 * H].any() and not g.d_w_hh[H:2 * H].any() and not g.d_b_ih[H:2 * H].any()
    assert not g.d_w_ch[H:2 * H].any()  # p_f
    assert g.d_w_ih[:H].any() and g.d_w_ch[:H].any()


@pytest.mark.parametrize("family,role", [(f, r) for f in ("rnn", "lstm", "gru") for r in range(len(ROLES[f]))])
@pytest.mark.parametrize("act", ALL_ACTS, ids=repr)
def test_each_activation_in_each_role(family, role, act):
    """Forward against the scalar loop and backward against finite differences, with ``act`` in one role
    (the other roles keep their defaults), with a clip on the LSTM so that unbounded gates stay tame."""
    acts = list(CellOptions.default(family).activations)
    acts[role] = act
    opts = make_options(family, 2, activations=acts, clip=3.0 if family == "lstm" else None)
    p = make_problem(opts, T=2, B=2, I=2, Hs=2, seed=6 + role, scale=0.6)
    out, h_n, c_n, ws = run(opts, p)
    e_out, e_h, e_c, e_ws = scalar_forward(opts, p)
    np.testing.assert_allclose(out, e_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ws, e_ws, rtol=1e-12, atol=1e-13)
    check_gradients(opts, p, Hs=2, seed=7)


def test_float32_stays_float32_and_agrees_with_float64():
    opts = VARIANTS["lstm-all"]
    p64 = make_problem(opts, seed=8, lengths=[3, 1])
    p32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v)
           for k, v in p64.items()}
    f64, f32 = run(opts, p64), run(opts, p32)
    for a, b in zip(f64, f32):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    d = {"d_out": np.ones_like(f64[0]), "d_h_n": np.ones_like(f64[1]), "d_c_n": np.ones_like(f64[2])}
    d32 = {k: v.astype(np.float32) for k, v in d.items()}
    g64, g32 = run_backward(opts, p64, f64, d), run_backward(opts, p32, f32, d32)
    for field in g64._fields:
        assert getattr(g32, field).dtype == np.float32, field
        np.testing.assert_allclose(getattr(g32, field), getattr(g64, field), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------------
# Default options: the reference's own cells
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lengths", [None, [4, 0, 2]])
def test_default_options_equal_the_reference_cells(cell, dtype, lengths):
    family = cell.split("_")[0]
    opts = CellOptions.default(family, cell[4:] if family == "rnn" else "tanh")
    p = make_problem(opts, T=4, B=3, I=3, Hs=4, seed=9, dtype=dtype, lengths=lengths)
    out, h_n, c_n, ws = run(opts, p)
    rng = np.random.default_rng(10)
    d_out, d_h_n = rng.standard_normal(out.shape).astype(dtype), rng.standard_normal(h_n.shape).astype(dtype)
    d_c_n = rng.standard_normal(h_n.shape).astype(dtype) if family == "lstm" else None
    g = run_backward(opts, p, (out, h_n, c_n, ws), {"d_out": d_out, "d_h_n": d_h_n, "d_c_n": d_c_n})
    args = (p["x"], p["h0"])
    if family == "lstm":
        r_out, r_h, r_c, r_ws = R.lstm(*args, p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], training=True,
                                       lengths=lengths)
        rg = R.lstm_backward(d_out, d_h_n, d_c_n, *args, p["c0"], p["w_ih"], p["w_hh"], r_out, r_ws, lengths=lengths)
        np.testing.assert_allclose(c_n, r_c, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
        # the workspaces hold the same cell: [i, f, g, o] are the activations of the saved pre-activations,
        # c_t the same, and m_t = o * tanh(c_t)
        i_f_g_o, c, tanh_c = r_ws[..., :16], r_ws[..., 16:20], r_ws[..., 20:]
        ran = np.arange(4)[:, None] < (np.array([4] * 3) if lengths is None else np.array(lengths))  # (T, B)
        acts = np.concatenate([R.activation_value(Activation("sigmoid"), ws[..., :8]), np.tanh(ws[..., 8:12]),
                               R.activation_value(Activation("sigmoid"), ws[..., 12:16])], axis=-1)
        np.testing.assert_allclose(acts[ran], i_f_g_o[ran], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ws[..., 16:20], c)
        np.testing.assert_allclose(ws[..., 20:], i_f_g_o[..., 12:] * tanh_c, rtol=1e-6, atol=1e-7)
    elif family == "gru":
        r_out, r_h, r_ws = R.gru(*args, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], training=True, lengths=lengths)
        rg = R.gru_backward(d_out, d_h_n, *args, p["w_ih"], p["w_hh"], r_out, r_ws, lengths=lengths)
        np.testing.assert_array_equal(ws[..., 12:], r_ws[..., 12:])  # u = W_hn h + b_hn in both
    else:
        nl = cell[4:]
        r_out, r_h, r_ws = R.rnn(*args, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity=nl, training=True,
                                 lengths=lengths)
        rg = R.rnn_backward(d_out, d_h_n, *args, p["w_ih"], p["w_hh"], r_out, r_ws, nonlinearity=nl, lengths=lengths)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(out, r_out, **tol)
    np.testing.assert_allclose(h_n, r_h, **tol)
    for field in rg._fields:
        ours = getattr(g, field)
        assert ours.dtype == dtype, field
        np.testing.assert_allclose(ours, getattr(rg, field), **tol, err_msg=field)
    assert g.d_w_hr is None and g.d_w_ch is None and (g.d_c0 is None) == (family != "lstm")


# ----------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------

PROJ = make_options("lstm", H, proj_size=2)
PEEP = make_options("lstm", H, peepholes=True)


def _call(opts, p, **change):
    q = dict(p, **change)
    return R.variant_forward(opts, q["x"], q["h0"], q["c0"], q["w_ih"], q["w_hh"], q["b_ih"], q["b_hh"], q["w_hr"],
                             q["w_ch"])


@pytest.mark.parametrize("opts,change,error,match", [
    (PROJ, {"w_hr": None}, ValueError, r"w_hr \(proj_size, hidden_size\) is required with options.proj_size=2"),
    (PROJ, {"w_hr": np.zeros((3, 3))}, ValueError, r"w_hr has shape \(3, 3\), expected \(2, 3\)"),
    (PROJ, {"w_hh": np.zeros((12, 3))}, ValueError, r"w_hh has shape \(12, 3\), expected .*\(12, 2\)"),
    (PROJ, {"h0": np.zeros((2, 3))}, ValueError, r"h0 has shape \(2, 3\), expected \(2, 2\)"),
    (PROJ, {"c0": np.zeros((2, 2))}, ValueError, r"c0 has shape \(2, 2\), expected \(2, 3\)"),
    (PEEP, {"w_ch": None}, ValueError, r"w_ch \(3\*hidden_size,\) is required with options.peepholes=True"),
    (PEEP, {"w_ch": np.zeros(12)}, ValueError, r"w_ch has shape \(12,\), expected \(9,\)"),
    (PEEP, {"w_ch": np.zeros((3, 3))}, ValueError, r"w_ch has shape \(3, 3\), expected \(9,\)"),
    (PEEP, {"w_hr": np.zeros((2, 3))}, ValueError, r"w_hr is given but options.proj_size is 0"),
    (PROJ, {"w_ch": np.zeros(9)}, ValueError, r"w_ch is given but options.peepholes is False"),
    (PEEP, {"b_hh": None}, ValueError, r"b_ih and b_hh must both be given"),
    (PEEP, {"w_ih": np.zeros((12, 5))}, ValueError, r"w_ih has shape \(12, 5\), expected \(12, 2\)"),
    (PEEP, {"w_hh": np.zeros((10, 3))}, ValueError, r"w_hh must be 2-D \(4\*hidden_size"),
    (PEEP, {"x": np.zeros((3, 2))}, ValueError, r"x must be 3-D"),
    (PEEP, {"x": None}, TypeError, r"x is required"),
    (PEEP, {"x": np.zeros((3, 2, 2), dtype=complex)}, TypeError, r"x has dtype complex128"),
    (make_options("lstm", H, proj_size=2), {"w_hh": np.zeros((8, 2)), "w_ih": np.zeros((8, 2)),
     "b_ih": np.zeros(8), "b_hh": np.zeros(8), "w_hr": np.zeros((2, 2)), "c0": None},
     ValueError, r"proj_size=2 must be smaller than hidden_size=2"),
])
def test_bad_input_names_the_argument(opts, change, error, match):
    p = make_problem(opts, seed=11)
    with pytest.raises(error, match=match):
        _call(opts, p, **change)


def test_bad_options_and_family_arguments():
    gru = make_options("gru", H)
    p = make_problem(gru, seed=12)
    with pytest.raises(TypeError, match="options must be an rnnfast CellOptions"):
        _call("gru", p)
    with pytest.raises(ValueError, match="c0 is only used by the LSTM, not by the GRU"):
        _call(gru, p, c0=np.zeros((2, H)))
    with pytest.raises(ValueError, match=r"w_hh has shape \(9, 2\), expected \(3\*hidden_size, hidden_size\)"):
        _call(gru, p, w_hh=np.zeros((9, 2)))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, seq_len\]"):
        R.variant_forward(gru, p["x"], None, None, p["w_ih"], p["w_hh"], lengths=[4, 1])
    with pytest.raises(TypeError, match="lengths must be integers"):
        R.variant_forward(gru, p["x"], None, None, p["w_ih"], p["w_hh"], lengths=[1.0, 1.0])


def test_bad_backward_input():
    opts = PROJ
    p = make_problem(opts, seed=13)
    out, h_n, c_n, ws = run(opts, p)
    args = (p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["w_hr"], p["w_ch"])
    with pytest.raises(TypeError, match="workspace is required"):
        R.variant_backward(opts, None, None, None, *args, out, None)
    with pytest.raises(ValueError, match=r"workspace has shape \(3, 2, 12\), expected \(3, 2, 18\)"):
        R.variant_backward(opts, None, None, None, *args, out, ws[..., :12])
    with pytest.raises(ValueError, match=r"out has shape \(3, 2, 3\), expected \(3, 2, 2\)"):
        R.variant_backward(opts, None, None, None, *args, np.zeros((3, 2, 3)), ws)
    with pytest.raises(TypeError, match="out has dtype float32 but the computation runs in float64"):
        R.variant_backward(opts, None, None, None, *args, out.astype(np.float32), ws)
    with pytest.raises(ValueError, match=r"d_h_n has shape \(2, 3\), expected \(2, 2\)"):
        R.variant_backward(opts, None, np.zeros((2, 3)), None, *args, out, ws)
    with pytest.raises(ValueError, match=r"w_hr \(proj_size, hidden_size\) is required"):
        R.variant_backward(opts, None, None, None, *args[:5], None, None, out, ws)
    gru = make_options("gru", H)
    q = make_problem(gru, seed=14)
    o, _, _, w = run(gru, q)
    with pytest.raises(ValueError, match="d_c_n is only used by the LSTM, not by the GRU"):
        R.variant_backward(gru, None, None, np.zeros((2, H)), q["x"], q["h0"], None, q["w_ih"], q["w_hh"], None, None,
                           o, w)


def test_empty_sequence_returns_the_initial_states():
    opts = VARIANTS["lstm-proj-peepholes-clip"]
    p = make_problem(opts, T=0, seed=15)
    out, h_n, c_n, ws = run(opts, p)
    assert out.shape == (0, 2, 2) and ws.shape == (0, 2, 6 * H)
    np.testing.assert_array_equal(h_n, p["h0"])
    np.testing.assert_array_equal(c_n, p["c0"])
    assert h_n is not p["h0"]
    g = run_backward(opts, p, (out, h_n, c_n, ws), {"d_out": None, "d_h_n": np.ones((2, 2)), "d_c_n": None})
    np.testing.assert_array_equal(g.d_h0, np.ones((2, 2)))
    assert not g.d_w_hr.any() and g.d_w_hr.shape == (2, H) and g.d_w_ch.shape == (3 * H,)
