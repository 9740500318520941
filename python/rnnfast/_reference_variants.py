"""The NumPy reference of the cell variants: every activation, and one direction of any variant cell.

This is the definition the native variant ops (:func:`rnnfast.functional.variant_forward` and
:func:`rnnfast.functional.variant_backward`) are tested against, re-exported by :mod:`rnnfast.reference`.
A variant is one of PyTorch's cells with :class:`rnnfast._variants.CellOptions` (activations per gate role,
ONNX's ``clip`` and ``input_forget``, the GRU's ``reset_after``, the LSTM's ``proj_size`` and peepholes);
the formulas of the activations and the training workspace layout are in :mod:`rnnfast._variants`.

Cells, for one layer and one direction (gate blocks in PyTorch's row order; ``W v`` means ``v @ W.T``;
``clip(a)`` clamps to [-clip, clip] when ``options.clip`` is set, else is ``a``; the LSTM's cell state is no
gate pre-activation and goes into h unclipped, as in ONNX Runtime):

- RNN: ``a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``; ``h_t = act(clip(a))``.
- LSTM, gates i, f, g, o, activations f (gates), g (candidate), h (cell output), peepholes ``p_i, p_f, p_o``
  (zero without peepholes)::

      a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
      i = f(clip(a_i + p_i * c_{t-1}))      forget = 1 - i if input_forget else f(clip(a_f + p_f * c_{t-1}))
      g = g(clip(a_g))                      c_t = forget * c_{t-1} + i * g
      o = f(clip(a_o + p_o * c_t))          m_t = o * h(c_t)
      h_t = m_t W_hr^T with a projection (proj_size P > 0), else m_t

- GRU, gates r, z, n, activations f (r, z) and g (n); ``gi = W_ih x_t + b_ih``, ``gh = W_hh h_{t-1} + b_hh``::

      r = f(clip(gi_r + gh_r))              z = f(clip(gi_z + gh_z))
      reset_after=True:  u = W_hn h_{t-1} + b_hn      a_n = gi_n + r * u
      reset_after=False: u = r * h_{t-1}              a_n = gi_n + W_hn u + b_hn
      n = g(clip(a_n))                      h_t = (1 - z) * n + z * h_{t-1}

The workspace saves the pre-activations before clipping (the LSTM's with their peephole terms; with
``input_forget`` the unused ``a_f`` is still saved, computed as without it), ``c_t`` and ``m_t`` for the
LSTM and ``u`` for the GRU. Backward recomputes every activation and its derivative from them; a clipped
pre-activation (``|a| > clip``) passes no gradient.

Backward (BPTT) has the structure of :mod:`rnnfast.reference`'s: a reverse loop over time computes the
gradients of the pre-activations ``dG_t`` and of the previous states, then the weight gradients are single
products over all T*B rows. With a projection, the gradient of ``h_t`` is kept per step too
(``d_w_hr = sum_t dh_t^T m_t``).

Lengths have PyTorch's packed-sequence meaning, written with a mask per step as in
:mod:`rnnfast.reference`: row b runs steps ``t < lengths[b]``; past its end its output and workspace rows
are zero and its states stay those after its last step (``h0``, ``c0`` for a zero length).

Everything is computed in the dtype of the inputs (float32 or float64, by NumPy's promotion, as
:func:`rnnfast._validation.result_dtype` chooses), without upcasting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import ArrayLike

from . import _validation
from ._reference_recurrence import keep, running_rows, sigmoid, split_gates, zeros_or_copy
from ._types import VariantGrads
from ._variants import ACTIVATIONS, SELU_ALPHA, SELU_SCALE, VARIANT_WORKSPACE_SLOTS, Activation, CellOptions

__all__ = ["activation_value", "activation_derivative", "variant_forward", "variant_backward", "VariantGrads"]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_TITLE = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


# ----------------------------------------------------------------------------------------------------
# Activations
# ----------------------------------------------------------------------------------------------------


def _param(value: Optional[float], a: np.ndarray):
    """An activation parameter as a scalar of ``a``'s dtype, so that float32 stays float32."""
    return a.dtype.type(value)


def _check_activation(act: Any) -> Activation:
    if not isinstance(act, Activation):
        raise TypeError(f"act must be an rnnfast.Activation, got {type(act).__name__}")
    return act


def activation_value(act: Activation, a: np.ndarray) -> np.ndarray:
    """``act`` applied elementwise to the pre-activation ``a`` (float32 or float64, kept).

    Sigmoid, softplus and silu are evaluated without overflow for any ``a``; ``exponential`` overflows to
    inf as ``np.exp`` does. The formulas are those of :mod:`rnnfast._variants`.
    """
    act = _check_activation(act)
    a = np.asarray(a)
    name = act.name
    one, zero = a.dtype.type(1.0), a.dtype.type(0.0)
    if name == "sigmoid":
        return sigmoid(a)
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, zero)
    if name == "affine":
        return _param(act.alpha, a) * a + _param(act.beta, a)
    if name == "leaky_relu":
        return np.where(a >= 0, a, _param(act.alpha, a) * a)
    if name == "thresholded_relu":
        return np.where(a > _param(act.alpha, a), a, zero)
    if name == "scaled_tanh":
        return _param(act.alpha, a) * np.tanh(_param(act.beta, a) * a)
    if name == "hard_sigmoid":
        return np.clip(_param(act.alpha, a) * a + _param(act.beta, a), zero, one)
    if name == "elu":
        # expm1 of the negative part only: no overflow warning from the branch np.where discards
        return np.where(a >= 0, a, _param(act.alpha, a) * np.expm1(np.minimum(a, zero)))
    if name == "softsign":
        return a / (one + np.abs(a))
    if name == "softplus":
        # log(1 + e^a) = max(a, 0) + log(1 + e^-|a|): exact in both tails
        return np.maximum(a, zero) + np.log1p(np.exp(-np.abs(a)))
    if name == "selu":
        scale, alpha = _param(SELU_SCALE, a), _param(SELU_ALPHA, a)
        return scale * np.where(a >= 0, a, alpha * np.expm1(np.minimum(a, zero)))
    if name == "exponential":
        return np.exp(a)
    if name == "silu":
        return a * sigmoid(a)
    if name == "relu6":
        return np.clip(a, zero, a.dtype.type(6.0))
    raise AssertionError(f"activation {name!r} missing from the reference (ACTIVATIONS: {ACTIVATIONS})")


def activation_derivative(act: Activation, a: np.ndarray) -> np.ndarray:
    """The derivative of ``act`` with respect to its pre-activation, at ``a`` (same dtype).

    At the kinks, PyTorch's conventions: relu, leaky_relu, elu and selu take the branch of ``a > 0``
    (so relu'(0) = 0), relu6 passes where ``0 < a < 6``, thresholded_relu where ``a > alpha``, hard_sigmoid
    where ``0 < alpha*a + beta < 1``.
    """
    act = _check_activation(act)
    a = np.asarray(a)
    name = act.name
    one, zero = a.dtype.type(1.0), a.dtype.type(0.0)
    if name == "sigmoid":
        s = sigmoid(a)
        return s * (one - s)
    if name == "tanh":
        t = np.tanh(a)
        return one - t * t
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "affine":
        return np.full_like(a, _param(act.alpha, a))
    if name == "leaky_relu":
        return np.where(a > 0, one, _param(act.alpha, a))
    if name == "thresholded_relu":
        return (a > _param(act.alpha, a)).astype(a.dtype)
    if name == "scaled_tanh":
        alpha, beta = _param(act.alpha, a), _param(act.beta, a)
        t = np.tanh(beta * a)
        return alpha * beta * (one - t * t)
    if name == "hard_sigmoid":
        alpha = _param(act.alpha, a)
        y = alpha * a + _param(act.beta, a)
        return np.where((y > 0) & (y < 1), alpha, zero)
    if name == "elu":
        return np.where(a > 0, one, _param(act.alpha, a) * np.exp(np.minimum(a, zero)))
    if name == "softsign":
        d = one + np.abs(a)
        return one / (d * d)
    if name == "softplus":
        return sigmoid(a)
    if name == "selu":
        scale, alpha = _param(SELU_SCALE, a), _param(SELU_ALPHA, a)
        return scale * np.where(a > 0, one, alpha * np.exp(np.minimum(a, zero)))
    if name == "exponential":
        return np.exp(a)
    if name == "silu":
        s = sigmoid(a)
        return s * (one + a * (one - s))
    if name == "relu6":
        return ((a > 0) & (a < 6)).astype(a.dtype)
    raise AssertionError(f"activation {name!r} missing from the reference (ACTIVATIONS: {ACTIVATIONS})")


class _Gate:
    """One gate role's activation behind ONNX's clip: the value and the derivative w.r.t. the unclipped
    pre-activation (zero where the clip cut it)."""

    def __init__(self, act: Activation, clip: Optional[float]):
        self.act, self.clip = act, clip

    def value(self, a: np.ndarray) -> np.ndarray:
        if self.clip is not None:
            c = a.dtype.type(self.clip)
            a = np.clip(a, -c, c)
        return activation_value(self.act, a)

    def derivative(self, a: np.ndarray) -> np.ndarray:
        if self.clip is None:
            return activation_derivative(self.act, a)
        c = a.dtype.type(self.clip)
        return np.where(np.abs(a) <= c, activation_derivative(self.act, np.clip(a, -c, c)), a.dtype.type(0.0))


def _gates_of(options: CellOptions) -> list[_Gate]:
    """The gate roles of ``options``, clipped where ONNX clips: every gate pre-activation, but not the
    LSTM's cell state ``c_t`` on its way into h (not a gate's pre-activation; ONNX Runtime leaves it)."""
    gates = [_Gate(act, options.clip) for act in options.activations]
    if options.family == "lstm":
        gates[2] = _Gate(options.activations[2], None)
    return gates


# ----------------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------------


@dataclass
class _VariantArgs:
    """Checked arguments of a variant op: C-contiguous arrays of ``dtype``; R = proj_size or H."""

    options: CellOptions
    dtype: np.dtype
    T: int
    B: int
    I: int
    H: int
    R: int
    G: int
    x: np.ndarray
    h0: Optional[np.ndarray]
    c0: Optional[np.ndarray]
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray]
    b_hh: Optional[np.ndarray]
    w_hr: Optional[np.ndarray]
    w_ch: Optional[np.ndarray]


def _check_options(options: Any) -> CellOptions:
    if not isinstance(options, CellOptions):
        raise TypeError(f"options must be an rnnfast CellOptions, got {type(options).__name__}")
    if options.family not in _GATES:
        raise ValueError(f"options.family must be 'rnn', 'lstm' or 'gru', got {options.family!r}")
    return options


def _prepare(options, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch, promote_with: tuple = ()) -> _VariantArgs:
    """Check and convert the arguments of a variant op; errors name the argument, the shapes and the option."""
    options = _check_options(options)
    family = options.family
    title, G = _TITLE[family], _GATES[family]
    P = options.proj_size
    if family != "lstm" and c0 is not None:
        raise ValueError(f"c0 is only used by the LSTM, not by the {title}")
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih and b_hh must both be given or both be None (no bias)")
    if P > 0 and w_hr is None:
        raise ValueError(f"w_hr (proj_size, hidden_size) is required with options.proj_size={P}, got None")
    if P == 0 and w_hr is not None:
        raise ValueError("w_hr is given but options.proj_size is 0 (no projection): pass w_hr=None")
    if options.peepholes and w_ch is None:
        raise ValueError("w_ch (3*hidden_size,) is required with options.peepholes=True, got None")
    if not options.peepholes and w_ch is not None:
        raise ValueError("w_ch is given but options.peepholes is False: pass w_ch=None")
    named = {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh,
             "w_hr": w_hr, "w_ch": w_ch}
    for required in ("x", "w_ih", "w_hh"):
        if named[required] is None:
            raise TypeError(f"{required} is required, got None")
    arrays = {k: _validation.as_array(k, v) for k, v in named.items() if v is not None}
    dtype = _validation.result_dtype(list(arrays.values()) + list(promote_with))

    xa, wih, whh = arrays["x"], arrays["w_ih"], arrays["w_hh"]
    if xa.ndim != 3:
        raise ValueError(f"x must be 3-D (seq_len, batch, input_size), got shape {xa.shape}")
    T, B, I = xa.shape
    r_name = "proj_size" if P else "hidden_size"
    if whh.ndim != 2 or whh.shape[0] % G != 0 or whh.shape[0] == 0:
        raise ValueError(f"w_hh must be 2-D ({G}*hidden_size, {r_name}) for the {title}, got shape {whh.shape}")
    H, R = whh.shape[0] // G, whh.shape[1]
    if P:
        if P >= H:
            raise ValueError(f"options.proj_size={P} must be smaller than hidden_size={H} "
                             f"(from w_hh {whh.shape} = (4*hidden_size, proj_size))")
        if R != P:
            raise ValueError(f"w_hh has shape {whh.shape}, expected (4*hidden_size, proj_size) = ({G * H}, {P}) "
                             f"for options.proj_size={P}")
    elif R != H:
        raise ValueError(f"w_hh has shape {whh.shape}, expected ({G}*hidden_size, hidden_size) = ({G * H}, {H})"
                         f" for the {title} (hidden_size {H} from w_hh.shape[0] / {G})")
    _validation.check_shape("w_ih", wih, (G * H, I),
                            f"= ({G}*hidden_size, input_size) with hidden_size {H}, input_size {I} from x {xa.shape}")
    for b in ("b_ih", "b_hh"):
        if b in arrays:
            _validation.check_shape(b, arrays[b], (G * H,), f"= ({G}*hidden_size,) for hidden_size {H}")
    if "h0" in arrays:
        _validation.check_shape("h0", arrays["h0"], (B, R),
                                f"= (batch, {r_name}) for x {xa.shape} and {r_name} {R}")
    if "c0" in arrays:
        _validation.check_shape("c0", arrays["c0"], (B, H),
                                f"= (batch, hidden_size) for x {xa.shape} and hidden_size {H}")
    if "w_hr" in arrays:
        _validation.check_shape("w_hr", arrays["w_hr"], (P, H),
                                f"= (proj_size, hidden_size) for options.proj_size={P} and hidden_size {H}")
    if "w_ch" in arrays:
        _validation.check_shape("w_ch", arrays["w_ch"], (3 * H,),
                                f"= (3*hidden_size,) (peepholes i, f, o) for hidden_size {H}")

    conv = {k: _validation.cast(k, v, dtype) for k, v in arrays.items()}
    return _VariantArgs(options=options, dtype=dtype, T=T, B=B, I=I, H=H, R=R, G=G,
                        x=conv["x"], h0=conv.get("h0"), c0=conv.get("c0"), w_ih=conv["w_ih"], w_hh=conv["w_hh"],
                        b_ih=conv.get("b_ih"), b_hh=conv.get("b_hh"), w_hr=conv.get("w_hr"), w_ch=conv.get("w_ch"))


# ----------------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------------


def _peepholes(a: _VariantArgs) -> tuple:
    """``(p_i, p_f, p_o)``, each (H,), or three None without peepholes."""
    if a.w_ch is None:
        return None, None, None
    return tuple(split_gates(a.w_ch, 3))


def _rnn_step(a: _VariantArgs, gates, gx_t, h, c):
    pre = gx_t + h @ a.w_hh.T
    return gates[0].value(pre), None, (pre,)


def _lstm_step(a: _VariantArgs, gates, gx_t, h, c):
    act_f, act_g, act_h = gates
    p_i, p_f, p_o = _peepholes(a)
    a_i, a_f, a_g, a_o = split_gates(gx_t + h @ a.w_hh.T, 4)
    if p_i is not None:
        a_i, a_f = a_i + p_i * c, a_f + p_f * c
    i = act_f.value(a_i)
    f = 1.0 - i if a.options.input_forget else act_f.value(a_f)
    g = act_g.value(a_g)
    c_new = f * c + i * g
    if p_o is not None:
        a_o = a_o + p_o * c_new  # the output gate sees the new cell state
    o = act_f.value(a_o)
    m = o * act_h.value(c_new)
    h_new = m @ a.w_hr.T if a.w_hr is not None else m
    return h_new, c_new, (a_i, a_f, a_g, a_o, c_new, m)


def _gru_step(a: _VariantArgs, gates, gx_t, h, c):
    act_f, act_g = gates
    H = a.H
    gi_r, gi_z, gi_n = split_gates(gx_t, 3)  # gx_t holds b_ih only
    gh_rz = h @ a.w_hh[: 2 * H].T
    if a.b_hh is not None:
        gh_rz += a.b_hh[: 2 * H]
    gh_r, gh_z = split_gates(gh_rz, 2)
    a_r, a_z = gi_r + gh_r, gi_z + gh_z
    r, z = act_f.value(a_r), act_f.value(a_z)
    w_hn = a.w_hh[2 * H:]
    b_hn = None if a.b_hh is None else a.b_hh[2 * H:]
    if a.options.reset_after:
        u = h @ w_hn.T
        if b_hn is not None:
            u += b_hn
        a_n = gi_n + r * u
    else:
        u = r * h
        a_n = gi_n + u @ w_hn.T
        if b_hn is not None:
            a_n += b_hn
    n = act_g.value(a_n)
    h_new = (1.0 - z) * n + z * h
    return h_new, None, (a_r, a_z, a_n, u)


_STEPS = {"rnn": _rnn_step, "lstm": _lstm_step, "gru": _gru_step}


def variant_forward(
    options: CellOptions,
    x: ArrayLike,
    h0: Optional[ArrayLike],
    c0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: Optional[ArrayLike] = None,
    b_hh: Optional[ArrayLike] = None,
    w_hr: Optional[ArrayLike] = None,
    w_ch: Optional[ArrayLike] = None,
    *,
    training: bool = False,
    lengths: Optional[ArrayLike] = None,
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """One layer, one direction, of the cell ``options`` describes (see the module notes for the formulas).

    Parameters
    ----------
    options : CellOptions
        The cell family and its variant options (:func:`rnnfast._variants.make_options`).
    x : array_like, (T, B, I)
        Input sequence, time-major.
    h0 : array_like, (B, R), or None
        Initial hidden state, R = ``options.proj_size`` or H; None means zeros.
    c0 : array_like, (B, H), or None
        Initial cell state (LSTM only; None means zeros, and must be None for the RNN and the GRU).
    w_ih : array_like, (G*H, I)
        Input weights, row blocks in PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n).
    w_hh : array_like, (G*H, R)
        Recurrent weights; H is ``w_hh.shape[0] / G``.
    b_ih, b_hh : array_like, (G*H,), or both None
        Biases; None (both) means no bias.
    w_hr : array_like, (P, H), or None
        The LSTM's projection (PyTorch's ``weight_hr``), given exactly when ``options.proj_size`` P > 0.
    w_ch : array_like, (3H,), or None
        The LSTM's peephole weights, blocks i, f, o, given exactly when ``options.peepholes``.
    training : bool
        Also return the workspace :func:`variant_backward` needs.
    lengths : array_like of int, (B,), optional
        Per-sequence lengths in [0, T] with PyTorch's packed-sequence meaning; None means all T.

    Returns
    -------
    out : (T, B, R)
        ``h_t`` of every step (zero past a sequence's end).
    h_n : (B, R)
        The hidden state after each sequence's last step.
    c_n : (B, H) or None
        The LSTM's cell state after the last step; None for the RNN and the GRU.
    workspace : (T, B, S*H) or None
        With ``training=True``, S = ``VARIANT_WORKSPACE_SLOTS[family]`` blocks per (t, b) row as
        :mod:`rnnfast._variants` describes; else None.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, naming the argument, the shapes and the option involved.
    """
    a = _prepare(options, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch)
    family = a.options.family
    T, B, H, R = a.T, a.B, a.H, a.R
    steps = _validation.prepare_lengths(lengths, T, B)

    # Input projection of all steps at once. The GRU keeps b_hh on the recurrent side (b_hn sits inside the
    # reset gate's reach); the other cells add both biases to the same pre-activation.
    gx = (a.x.reshape(T * B, a.I) @ a.w_ih.T).reshape(T, B, a.G * H)
    if a.b_ih is not None:
        gx += a.b_ih if family == "gru" else a.b_ih + a.b_hh

    out = np.empty((T, B, R), dtype=a.dtype)
    workspace = np.empty((T, B, VARIANT_WORKSPACE_SLOTS[family] * H), dtype=a.dtype) if training else None
    h = zeros_or_copy(a.h0, (B, R), a.dtype)
    c = zeros_or_copy(a.c0, (B, H), a.dtype) if family == "lstm" else None
    step, gates = _STEPS[family], _gates_of(a.options)
    for t in range(T):
        running = running_rows(steps, t)
        h_new, c_new, saved = step(a, gates, gx[t], h, c)
        out[t] = keep(running, h_new, 0.0)
        if workspace is not None:
            for block, value in zip(split_gates(workspace[t], len(saved)), saved):
                block[...] = keep(running, value, 0.0)
        h = keep(running, h_new, h)
        if c is not None:
            c = keep(running, c_new, c)
    return out, h, c, workspace


# ----------------------------------------------------------------------------------------------------
# Backward
# ----------------------------------------------------------------------------------------------------


def _rows_product(d: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``sum_{t,b} d[t,b]^T rows[t,b]``: one (K, T*B) x (T*B, N) product."""
    return d.reshape(-1, d.shape[-1]).T @ rows.reshape(-1, rows.shape[-1])


def _previous(seq: np.ndarray, first: Optional[np.ndarray]) -> np.ndarray:
    """``[first, seq_0, ..., seq_{T-2}]`` (the state each step started from); ``first`` None is zeros."""
    prev = np.empty_like(seq)
    if seq.shape[0] > 0:
        prev[0] = 0.0 if first is None else first
        prev[1:] = seq[:-1]
    return prev


def _prepare_backward(options, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, w_hr, w_ch, out, workspace):
    for required, value in (("out", out), ("workspace", workspace)):
        if value is None:
            raise TypeError(f"{required} is required (from variant_forward with training=True), got None")
    out_arr, ws_arr = _validation.as_array("out", out), _validation.as_array("workspace", workspace)
    # The forward's dtype may have been set by its biases, which backward does not see; the saved arrays carry it.
    a = _prepare(options, x, h0, c0, w_ih, w_hh, None, None, w_hr, w_ch, promote_with=(out_arr, ws_arr))
    family = a.options.family
    if family != "lstm" and d_c_n is not None:
        raise ValueError(f"d_c_n is only used by the LSTM, not by the {_TITLE[family]}")
    T, B, H, R = a.T, a.B, a.H, a.R
    S = VARIANT_WORKSPACE_SLOTS[family]
    saved = {}
    for name, arr, shape, meaning in (
        ("out", out_arr, (T, B, R), "= (seq_len, batch, proj_size or hidden_size), the forward output"),
        ("workspace", ws_arr, (T, B, S * H),
         f"= (seq_len, batch, {S}*hidden_size) as saved by variant_forward with training=True"),
    ):
        _validation.check_shape(name, arr, shape, meaning)
        if arr.dtype != a.dtype:
            raise TypeError(f"{name} has dtype {arr.dtype} but the computation runs in {a.dtype}: pass the arrays "
                            "variant_forward returned with training=True")
        saved[name] = _validation.c_aligned(np.ascontiguousarray(arr))
    grads = {}
    for name, value, shape in (("d_out", d_out, (T, B, R)), ("d_h_n", d_h_n, (B, R)), ("d_c_n", d_c_n, (B, H))):
        if value is None:
            grads[name] = None
            continue
        arr = _validation.as_array(name, value)
        _validation.check_shape(name, arr, shape, "(the shape of the matching forward result)")
        grads[name] = _validation.cast(name, arr, a.dtype)
    return a, saved["out"], saved["workspace"], grads["d_out"], grads["d_h_n"], grads["d_c_n"]


def variant_backward(
    options: CellOptions,
    d_out: Optional[ArrayLike],
    d_h_n: Optional[ArrayLike],
    d_c_n: Optional[ArrayLike],
    x: ArrayLike,
    h0: Optional[ArrayLike],
    c0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    w_hr: Optional[ArrayLike],
    w_ch: Optional[ArrayLike],
    out: ArrayLike,
    workspace: ArrayLike,
    *,
    lengths: Optional[ArrayLike] = None,
) -> VariantGrads:
    """Backward (BPTT) of :func:`variant_forward`.

    Parameters
    ----------
    options : CellOptions
        As given to the forward.
    d_out : array_like, (T, B, R), or None
        Gradient of the loss with respect to ``out``; None means zeros (ignored past a sequence's end).
    d_h_n : array_like, (B, R), or None
        Gradient with respect to ``h_n``; None means zeros.
    d_c_n : array_like, (B, H), or None
        Gradient with respect to ``c_n`` (LSTM only); None means zeros.
    x, h0, c0, w_ih, w_hh, w_hr, w_ch
        As given to the forward (biases are not needed: what backward needs of them is in the workspace).
    out, workspace
        What the forward returned with ``training=True``, in the computation's dtype.
    lengths : array_like of int, (B,), optional
        As given to the forward.

    Returns
    -------
    VariantGrads
        ``d_x`` (T, B, I), ``d_h0`` (B, R), ``d_c0`` (B, H) or None, ``d_w_ih`` (G*H, I), ``d_w_hh``
        (G*H, R), ``d_b_ih``, ``d_b_hh`` (G*H,) (returned even if the forward had no bias), ``d_w_hr`` (P, H)
        or None, ``d_w_ch`` (3H,) or None.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, naming the argument, the shapes and the option involved.
    """
    a, out_arr, ws, g_out, g_h_n, g_c_n = _prepare_backward(options, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh,
                                                            w_hr, w_ch, out, workspace)
    steps = _validation.prepare_lengths(lengths, a.T, a.B)
    family = a.options.family
    if family == "lstm":
        return _lstm_backward(a, out_arr, ws, g_out, g_h_n, g_c_n, steps)
    if family == "gru":
        return _gru_backward(a, out_arr, ws, g_out, g_h_n, steps)
    return _rnn_backward(a, out_arr, ws, g_out, g_h_n, steps)


def _input_side_grads(a: _VariantArgs, dG: np.ndarray):
    """``d_w_ih``, ``d_b_ih``, ``d_x`` from the gradient (T, B, G*H) of ``W_ih x_t + b_ih``."""
    dG2 = dG.reshape(a.T * a.B, a.G * a.H)
    return _rows_product(dG, a.x), dG2.sum(axis=0), (dG2 @ a.w_ih).reshape(a.T, a.B, a.I)


def _rnn_backward(a: _VariantArgs, out, ws, d_out, d_h_n, steps) -> VariantGrads:
    T, B, H = a.T, a.B, a.H
    gate = _gates_of(a.options)[0]
    dG = np.empty((T, B, H), dtype=a.dtype)
    dh = zeros_or_copy(d_h_n, (B, H), a.dtype)  # gradient w.r.t. h_t from later steps
    for t in reversed(range(T)):
        running = running_rows(steps, t)
        if d_out is not None:
            dh = dh + keep(running, d_out[t], 0.0)
        dG[t] = keep(running, dh * gate.derivative(ws[t]), 0.0)
        dh = keep(running, dG[t] @ a.w_hh, dh)  # gradient w.r.t. h_{t-1}
    d_w_ih, d_b, d_x = _input_side_grads(a, dG)
    d_w_hh = _rows_product(dG, _previous(out, a.h0))
    return VariantGrads(d_x=d_x, d_h0=dh, d_c0=None, d_w_ih=d_w_ih, d_w_hh=d_w_hh, d_b_ih=d_b, d_b_hh=d_b.copy(),
                        d_w_hr=None, d_w_ch=None)


def _lstm_backward(a: _VariantArgs, out, ws, d_out, d_h_n, d_c_n, steps) -> VariantGrads:
    """Per step, going backwards, with ``dh`` the total gradient w.r.t. ``h_t`` and ``dc`` w.r.t. ``c_t``
    from step t+1 (``f'``, ``g'``, ``h'`` the derivatives, zero where the clip cut)::

        dm = dh @ W_hr (projection) or dh          d_a_o = dm * h(c_t) * f'(a_o)
        dc += dm * o * h'(c_t) + d_a_o * p_o
        d_a_i = dc * (g - c_{t-1} if input_forget else g) * f'(a_i)
        d_a_f = dc * c_{t-1} * f'(a_f)   (zero with input_forget)
        d_a_g = dc * i * g'(a_g)
        dc_{t-1} = dc * forget + d_a_i * p_i + d_a_f * p_f     dh_{t-1} = dG_t @ W_hh
    """
    T, B, H, R = a.T, a.B, a.H, a.R
    act_f, act_g, act_h = _gates_of(a.options)
    input_forget = a.options.input_forget
    p_i, p_f, p_o = _peepholes(a)
    ws_i, ws_f, ws_g, ws_o, ws_c, ws_m = split_gates(ws, 6)
    c_prev_all = _previous(ws_c, a.c0)

    dG = np.empty((T, B, 4 * H), dtype=a.dtype)
    dH = np.empty((T, B, R), dtype=a.dtype) if a.w_hr is not None else None  # total gradient w.r.t. h_t
    dh = zeros_or_copy(d_h_n, (B, R), a.dtype)
    dc = zeros_or_copy(d_c_n, (B, H), a.dtype)
    for t in reversed(range(T)):
        running = running_rows(steps, t)
        if d_out is not None:
            dh = dh + keep(running, d_out[t], 0.0)
        if dH is not None:
            dH[t] = keep(running, dh, 0.0)
        dm = dh @ a.w_hr if a.w_hr is not None else dh

        a_i, a_f, a_g, a_o, c, c_prev = ws_i[t], ws_f[t], ws_g[t], ws_o[t], ws_c[t], c_prev_all[t]
        i, g, o, hc = act_f.value(a_i), act_g.value(a_g), act_f.value(a_o), act_h.value(c)
        forget = 1.0 - i if input_forget else act_f.value(a_f)

        d_i, d_f, d_g, d_o = split_gates(dG[t], 4)
        d_o[...] = keep(running, dm * hc * act_f.derivative(a_o), 0.0)
        dc_t = dc + dm * o * act_h.derivative(c)
        if p_o is not None:
            dc_t = dc_t + d_o * p_o
        d_i_value = dc_t * (g - c_prev) if input_forget else dc_t * g  # through f = 1 - i too
        d_i[...] = keep(running, d_i_value * act_f.derivative(a_i), 0.0)
        d_f[...] = 0.0 if input_forget else keep(running, dc_t * c_prev * act_f.derivative(a_f), 0.0)
        d_g[...] = keep(running, dc_t * i * act_g.derivative(a_g), 0.0)

        dc_new = dc_t * forget
        if p_i is not None:
            dc_new = dc_new + d_i * p_i + d_f * p_f
        dc = keep(running, dc_new, dc)  # gradient w.r.t. c_{t-1}
        dh = keep(running, dG[t] @ a.w_hh, dh)  # gradient w.r.t. h_{t-1}

    d_w_ih, d_b, d_x = _input_side_grads(a, dG)
    d_w_hh = _rows_product(dG, _previous(out, a.h0))
    d_w_hr = _rows_product(dH, ws_m) if dH is not None else None
    d_w_ch = None
    if p_i is not None:
        d_i_all, d_f_all, _, d_o_all = split_gates(dG, 4)
        d_w_ch = np.concatenate([(d_i_all * c_prev_all).sum(axis=(0, 1)), (d_f_all * c_prev_all).sum(axis=(0, 1)),
                                 (d_o_all * ws_c).sum(axis=(0, 1))])
    return VariantGrads(d_x=d_x, d_h0=dh, d_c0=dc, d_w_ih=d_w_ih, d_w_hh=d_w_hh, d_b_ih=d_b, d_b_hh=d_b.copy(),
                        d_w_hr=d_w_hr, d_w_ch=d_w_ch)


def _gru_backward(a: _VariantArgs, out, ws, d_out, d_h_n, steps) -> VariantGrads:
    """Per step, going backwards, with ``dh`` the total gradient w.r.t. ``h_t``::

        d_a_n = dh * (1 - z) * g'(a_n)              d_a_z = dh * (h_{t-1} - n) * f'(a_z)
        reset_after=True:  d_a_r = d_a_n * u * f'(a_r);       recurrent n gradient d_a_n * r
                           dh_{t-1} = dh * z + [d_a_r, d_a_z, d_a_n * r] @ W_hh
        reset_after=False: d_u = d_a_n @ W_hn;  d_a_r = d_u * h_{t-1} * f'(a_r)
                           dh_{t-1} = dh * z + d_u * r + [d_a_r, d_a_z] @ W_h{r,z}

    The recurrent-side gradient ``dGh`` multiplies ``h_{t-1}`` in the r, z blocks and ``u`` in the n block
    when ``reset_after=False`` (``W_hn`` acts on ``u = r * h_{t-1}``).
    """
    T, B, H = a.T, a.B, a.H
    act_f, act_g = _gates_of(a.options)
    reset_after = a.options.reset_after
    ws_r, ws_z, ws_n, ws_u = split_gates(ws, 4)
    h_prev_all = _previous(out, a.h0)
    w_hrz, w_hn = a.w_hh[: 2 * H], a.w_hh[2 * H:]

    dGi = np.empty((T, B, 3 * H), dtype=a.dtype)  # gradient of gi = W_ih x_t + b_ih
    dGh = np.empty((T, B, 3 * H), dtype=a.dtype)  # gradient of the recurrent products (and b_hh)
    dh = zeros_or_copy(d_h_n, (B, H), a.dtype)
    for t in reversed(range(T)):
        running = running_rows(steps, t)
        if d_out is not None:
            dh = dh + keep(running, d_out[t], 0.0)
        a_r, a_z, a_n, u, h_prev = ws_r[t], ws_z[t], ws_n[t], ws_u[t], h_prev_all[t]
        r, z, n = act_f.value(a_r), act_f.value(a_z), act_g.value(a_n)

        d_a_n = keep(running, dh * (1.0 - z) * act_g.derivative(a_n), 0.0)
        d_a_z = keep(running, dh * (h_prev - n) * act_f.derivative(a_z), 0.0)
        if reset_after:
            d_a_r = d_a_n * u * act_f.derivative(a_r)
            dh_n = d_a_n * r  # r multiplies the whole recurrent n product, b_hn included
        else:
            d_u = d_a_n @ w_hn
            d_a_r = d_u * h_prev * act_f.derivative(a_r)
            dh_n = d_a_n

        di_r, di_z, di_n = split_gates(dGi[t], 3)
        gh_r, gh_z, gh_n = split_gates(dGh[t], 3)
        di_r[...] = gh_r[...] = d_a_r
        di_z[...] = gh_z[...] = d_a_z
        di_n[...] = d_a_n
        gh_n[...] = dh_n

        if reset_after:
            dh_new = dh * z + dGh[t] @ a.w_hh
        else:
            dh_new = dh * z + d_u * r + dGh[t, :, : 2 * H] @ w_hrz
        dh = keep(running, dh_new, dh)  # a finished row passes its gradient through unchanged

    d_w_ih, d_b_ih, d_x = _input_side_grads(a, dGi)
    d_b_hh = dGh.reshape(T * B, 3 * H).sum(axis=0)
    if reset_after:
        d_w_hh = _rows_product(dGh, h_prev_all)
    else:
        d_w_hh = np.concatenate([_rows_product(dGh[..., : 2 * H], h_prev_all), _rows_product(dGh[..., 2 * H:], ws_u)])
    return VariantGrads(d_x=d_x, d_h0=dh, d_c0=None, d_w_ih=d_w_ih, d_w_hh=d_w_hh, d_b_ih=d_b_ih, d_b_hh=d_b_hh,
                        d_w_hr=None, d_w_ch=None)
