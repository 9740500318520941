"""Plain-NumPy reference implementation of the rnnfast functional ops.

This module is the *definition* of what the native kernels in :mod:`rnnfast.functional` compute: the same
signatures, the same argument checks (:mod:`rnnfast._validation`), the same training workspace layout and the
same results up to rounding. It is written to be read first and to be reasonably fast second: every
operation is vectorised over the batch, and the input projection of all time steps is one matrix product
done before the time loop, as the kernels do in their up-front placement (docs/design.md, section 2.3; every
placement gives the same bits).

Cells, for one layer and one direction, in PyTorch's conventions (gate blocks in the row order of the
weights; a missing bias is a zero bias). ``x_t`` is (B, I), ``h_t`` and ``c_t`` are (B, H), and
``W x`` means ``x @ W.T``:

- RNN:  ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` with ``act`` tanh or relu.
- LSTM, gates i, f, g, o: ``pre = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``;
  ``i = sigmoid(pre_i)``, ``f = sigmoid(pre_f)``, ``g = tanh(pre_g)``, ``o = sigmoid(pre_o)``;
  ``c_t = f * c_{t-1} + i * g``; ``h_t = o * tanh(c_t)``.
- GRU, gates r, z, n, "linear before reset": ``gi = W_ih x_t + b_ih``, ``gh = W_hh h_{t-1} + b_hh``;
  ``r = sigmoid(gi_r + gh_r)``, ``z = sigmoid(gi_z + gh_z)``, ``n = tanh(gi_n + r * gh_n)``;
  ``h_t = (1 - z) * n + z * h_{t-1}``.

Training workspace: with ``training=True`` the forward ops also return an array of shape (T, B, W),
``W = _validation.workspace_width(cell, H)``, holding per (t, b) row, in blocks of H:

- RNN:  nothing (W = 0); the activation's derivative comes from ``out`` (tanh' = 1 - h^2, relu' = [h > 0]).
- LSTM: ``[i, f, g, o, c_t, tanh(c_t)]`` (W = 6H), gates after their activation.
- GRU:  ``[r, z, n, W_hn h_{t-1} + b_hn]`` (W = 4H), gates after their activation; the last block is the
  recurrent n pre-activation *before* ``r`` multiplies it.

Backward (BPTT) uses only ``out``, the workspace, ``x``, the initial states and the weights: no forward
re-run and no transcendental function. A reverse loop over time computes the pre-activation gate
gradients ``dG_t`` and ``dh_{t-1} = dG_t @ W_hh`` (plus the direct paths through ``c`` and, for the GRU,
``z * h_{t-1}``); afterwards, the weight gradients are single matrix products over all T*B rows:
``d_w_ih = dG^T X``, ``d_w_hh = dG^T H_prev``, ``d_x = dG @ W_ih``, and bias gradients are sums over the
T*B rows. For the GRU the input-side and recurrent-side gradients differ in the n block, so both are kept.

Variable lengths (``lengths``, shape (B,), each in [0, T], any order) follow PyTorch's packed sequences:
row b runs steps ``t < lengths[b]`` only. Past its end its output (and workspace) is zero and its state
stays the state after its last step, which is what ``h_n``/``c_n`` return. Here that is written with a
mask per step (:func:`_running`, :func:`_keep`); backward lets the gradient of a finished row pass
through the masked steps unchanged and ignores ``d_out`` there.

Everything is computed in the dtype chosen by :func:`rnnfast._validation.prepare_forward` (float32 or
float64), without upcasting. Results never alias inputs (unless the caller passed an input as ``out``).

Reduced precision (inference with int8 or bf16 weights, :func:`rnnfast.quantize`): :func:`reduced_forward`
runs one layer in one direction on quantized weights, with the cells' float32 updates of the ops above on
reduced-precision products; the quantization rules (:func:`quantize_int8_rows` for weights,
:func:`quantize_uint8_rows` for activations, :func:`bf16_round`), the exact products (:func:`int8_product`,
:func:`bf16_product`) and the error bounds against float32 (:func:`int8_product_error_bound`,
:func:`bf16_product_error_bound`) are defined and derived in :mod:`rnnfast._reference_reduced` and
re-exported here.

Cell variants (activations per gate role, ONNX's clip and input_forget, the GRU's reset_after, the LSTM's
projection and peepholes; :mod:`rnnfast._variants`): :func:`variant_forward`, :func:`variant_backward` and
the activations with their derivatives (:func:`activation_value`, :func:`activation_derivative`) are defined
in :mod:`rnnfast._reference_variants` and re-exported here.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _validation
from ._reference_recurrence import keep, recurrence, running_rows, sigmoid, split_gates, zeros_or_copy
from ._reference_reduced import (
    INT8_MAX_DEPTH,
    REDUCED_WEIGHT_DTYPES,
    bf16_product,
    bf16_product_error_bound,
    bf16_round,
    bf16_to_float32,
    int8_dequantize,
    int8_product,
    int8_product_error_bound,
    quantize_int8_rows,
    quantize_rows,
    quantize_uint8_rows,
    quantize_weight,
    reduced_forward,
    reduced_product,
)
from ._reference_variants import activation_derivative, activation_value, variant_backward, variant_forward
from ._types import GRUGrads, LSTMGrads, RNNGrads, VariantGrads

__all__ = [
    "rnn",
    "lstm",
    "gru",
    "rnn_backward",
    "lstm_backward",
    "gru_backward",
    "RNNGrads",
    "LSTMGrads",
    "GRUGrads",
    # Reduced precision (int8 and bf16 weights, inference only), defined in rnnfast._reference_reduced:
    "REDUCED_WEIGHT_DTYPES",
    "INT8_MAX_DEPTH",
    "quantize_int8_rows",
    "quantize_uint8_rows",
    "int8_product",
    "int8_dequantize",
    "bf16_round",
    "bf16_to_float32",
    "bf16_product",
    "quantize_weight",
    "quantize_rows",
    "reduced_product",
    "reduced_forward",
    "int8_product_error_bound",
    "bf16_product_error_bound",
    # Cell variants, defined in rnnfast._reference_variants:
    "variant_forward",
    "variant_backward",
    "VariantGrads",
    "activation_value",
    "activation_derivative",
]


# ----------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------


# The helpers shared with the reduced-precision reference, under the names this module has always used.
_sigmoid = sigmoid
_running = running_rows
_keep = keep
_gates = split_gates
_zeros_or_copy = zeros_or_copy


def _input_projection(args: _validation.ForwardArgs, bias: Optional[np.ndarray]) -> np.ndarray:
    """``x_t @ W_ih^T + bias`` for all T steps at once: one (T*B, I) x (I, G*H) product, shape (T, B, G*H)."""
    T, B, I = args.T, args.B, args.I
    gx = args.x.reshape(T * B, I) @ args.w_ih.T
    if bias is not None:
        gx += bias
    return gx.reshape(T, B, args.G * args.H)


def _previous_states(out: np.ndarray, h0: Optional[np.ndarray]) -> np.ndarray:
    """``H_prev``, shape (T, B, H): the state each step started from, ``[h0, h_0, ..., h_{T-2}]``."""
    h_prev = np.empty_like(out)
    if out.shape[0] > 0:
        h_prev[0] = 0.0 if h0 is None else h0
        h_prev[1:] = out[:-1]
    return h_prev


def _start_output(args: _validation.ForwardArgs, out, training: bool):
    """Output buffer (possibly the caller's ``out``), whether it must be copied back, and the workspace."""
    T, B, H = args.T, args.B, args.H
    inputs = [args.x, args.h0, args.c0, args.w_ih, args.w_hh, args.b_ih, args.b_hh]
    buf, copy_back = _validation.output_buffer(out, (T, B, H), args.dtype, inputs)
    workspace = None
    if training:
        workspace = np.empty((T, B, _validation.workspace_width(args.cell, H)), dtype=args.dtype)
    return buf, copy_back, workspace


def _finish_output(buf: np.ndarray, copy_back: bool, out) -> np.ndarray:
    """The array returned as ``out``: ``buf``, or the caller's ``out`` after copying ``buf`` into it."""
    if copy_back:
        np.copyto(out, buf, casting="same_kind")
        return out
    return buf


def _weight_grads(dG: np.ndarray, rows_in: np.ndarray, w: np.ndarray):
    """Gradients through one projection ``G = rows_in @ w.T + b``, over all T*B rows at once.

    Parameters
    ----------
    dG : (T, B, G*H) gradient of the pre-activations.
    rows_in : (T, B, K) what the projection multiplied (``x`` or ``H_prev``).
    w : (G*H, K) the weight.

    Returns
    -------
    d_w : (G*H, K) ``dG^T @ rows_in``.
    d_b : (G*H,) ``dG`` summed over all T*B rows.
    d_in : (T, B, K) ``dG @ w``.
    """
    T, B, GH = dG.shape
    K = rows_in.shape[-1]
    dG2 = dG.reshape(T * B, GH)
    d_w = dG2.T @ rows_in.reshape(T * B, K)
    d_b = dG2.sum(axis=0)
    d_in = (dG2 @ w).reshape(T, B, K)
    return d_w, d_b, d_in


# ----------------------------------------------------------------------------------------------------
# Vanilla RNN
# ----------------------------------------------------------------------------------------------------


def rnn(
    x: ArrayLike,
    h0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: Optional[ArrayLike] = None,
    b_hh: Optional[ArrayLike] = None,
    *,
    nonlinearity: str = "tanh",
    training: bool = False,
    out: Optional[np.ndarray] = None,
    lengths: Optional[ArrayLike] = None,
) -> Union[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Vanilla (Elman) RNN layer, one direction: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Parameters
    ----------
    x : array_like, (T, B, I)
        Input sequence, time-major.
    h0 : array_like, (B, H), or None
        Initial hidden state; None means zeros.
    w_ih : array_like, (H, I)
        Input-to-hidden weight.
    w_hh : array_like, (H, H)
        Hidden-to-hidden weight; H is taken from its second dimension.
    b_ih, b_hh : array_like, (H,), or both None
        Biases; None (both) means no bias.
    nonlinearity : {'tanh', 'relu'}
        The activation ``act``.
    training : bool
        Also return the workspace the backward needs (for the RNN it is empty: (T, B, 0)).
    out : numpy.ndarray, (T, B, H), optional
        Where to write the output sequence; it is returned. Any dtype that the result can be cast to by
        the 'same_kind' rule, any memory layout.
    lengths : array_like of int, (B,), optional
        Per-sequence lengths in [0, T] (see the module notes); None means every sequence has length T.

    Returns
    -------
    out : (T, B, H)
        ``h_t`` for every step.
    h_n : (B, H)
        The final hidden state (a new array; ``h0`` or zeros copied when T == 0).
    workspace : (T, B, 0)
        Only with ``training=True``.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, naming the argument (see :mod:`rnnfast._validation`).
    """
    cell = _validation.rnn_cell_name(nonlinearity)
    args = _validation.prepare_forward(cell, x, h0, None, w_ih, w_hh, b_ih, b_hh)
    buf, copy_back, workspace = _start_output(args, out, training)

    # Both biases are added to the same pre-activation: fold them into the input projection.
    bias = None if args.b_ih is None else args.b_ih + args.b_hh
    gx = _input_projection(args, bias)  # (T, B, H)

    steps = _validation.prepare_lengths(lengths, args.T, args.B)
    h, _ = recurrence(cell, gx, lambda h_prev: h_prev @ args.w_hh.T, args.h0, None, steps, buf, workspace)

    result = _finish_output(buf, copy_back, out)
    if training:
        return result, h, workspace
    return result, h


def rnn_backward(
    d_out: Optional[ArrayLike],
    d_h_n: Optional[ArrayLike],
    x: ArrayLike,
    h0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    out: ArrayLike,
    workspace: ArrayLike,
    *,
    nonlinearity: str = "tanh",
    lengths: Optional[ArrayLike] = None,
) -> RNNGrads:
    """Backward (BPTT) of :func:`rnn`.

    Parameters
    ----------
    d_out : array_like, (T, B, H), or None
        Gradient of the loss with respect to ``out``; None means zeros.
    d_h_n : array_like, (B, H), or None
        Gradient with respect to ``h_n``; None means zeros.
    x, h0, w_ih, w_hh
        As given to the forward (biases are not needed).
    out : array_like, (T, B, H)
        The forward output, in the computation's dtype.
    workspace : array_like, (T, B, 0)
        As returned by the forward with ``training=True``.
    nonlinearity : {'tanh', 'relu'}
        As given to the forward.
    lengths : array_like of int, (B,), optional
        As given to the forward.

    Returns
    -------
    RNNGrads
        ``d_x`` (T, B, I), ``d_h0`` (B, H), ``d_w_ih`` (H, I), ``d_w_hh`` (H, H), ``d_b_ih`` (H,),
        ``d_b_hh`` (H,) (equal values, separate arrays). Bias gradients are returned even if the forward
        had no bias.

    Notes
    -----
    The activation's derivative is read from the output: ``tanh'(pre) = 1 - h_t^2``,
    ``relu'(pre) = 1 if h_t > 0 else 0``.
    """
    cell = _validation.rnn_cell_name(nonlinearity)
    a = _validation.prepare_backward(cell, d_out, d_h_n, None, x, h0, None, w_ih, w_hh, out, workspace)
    f = a.fwd
    T, B, H = f.T, f.B, f.H

    dG = np.empty((T, B, H), dtype=f.dtype)  # gradient of the pre-activation at every step
    steps = _validation.prepare_lengths(lengths, T, B)
    dh = _zeros_or_copy(a.d_h_n, (B, H), f.dtype)  # running gradient w.r.t. h_t from later steps
    for t in reversed(range(T)):
        running = _running(steps, t)
        if a.d_out is not None:
            dh = dh + _keep(running, a.d_out[t], 0.0)  # total gradient w.r.t. h_t
        h = a.out[t]
        if nonlinearity == "tanh":
            dG[t] = _keep(running, dh * (1.0 - h * h), 0.0)
        else:
            dG[t] = _keep(running, dh * (h > 0), 0.0)
        dh = _keep(running, dG[t] @ f.w_hh, dh)  # gradient w.r.t. h_{t-1}

    d_w_ih, d_b, d_x = _weight_grads(dG, f.x, f.w_ih)
    d_w_hh, _, _ = _weight_grads(dG, _previous_states(a.out, f.h0), f.w_hh)
    return RNNGrads(d_x=d_x, d_h0=dh, d_w_ih=d_w_ih, d_w_hh=d_w_hh, d_b_ih=d_b, d_b_hh=d_b.copy())


# ----------------------------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------------------------


def lstm(
    x: ArrayLike,
    h0: Optional[ArrayLike],
    c0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: Optional[ArrayLike] = None,
    b_hh: Optional[ArrayLike] = None,
    *,
    training: bool = False,
    out: Optional[np.ndarray] = None,
    lengths: Optional[ArrayLike] = None,
) -> Union[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """LSTM layer, one direction, gates i, f, g, o (PyTorch's order).

    ``pre = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh``; ``i, f, o = sigmoid(pre_i, pre_f, pre_o)``,
    ``g = tanh(pre_g)``; ``c_t = f * c_{t-1} + i * g``; ``h_t = o * tanh(c_t)``.

    Parameters
    ----------
    x : array_like, (T, B, I)
        Input sequence, time-major.
    h0, c0 : array_like, (B, H), or None
        Initial hidden and cell states; None means zeros.
    w_ih : array_like, (4H, I)
        Input-to-hidden weights, row blocks i, f, g, o.
    w_hh : array_like, (4H, H)
        Hidden-to-hidden weights, row blocks i, f, g, o.
    b_ih, b_hh : array_like, (4H,), or both None
        Biases; None (both) means no bias.
    training : bool
        Also return the workspace the backward needs.
    out : numpy.ndarray, (T, B, H), optional
        Where to write the output sequence; it is returned.
    lengths : array_like of int, (B,), optional
        Per-sequence lengths in [0, T]; None means every sequence has length T.

    Returns
    -------
    out : (T, B, H)
        ``h_t`` for every step.
    h_n, c_n : (B, H)
        Final hidden and cell states (new arrays).
    workspace : (T, B, 6H)
        Only with ``training=True``: ``[i, f, g, o, c_t, tanh(c_t)]`` per (t, b) row.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, naming the argument.
    """
    args = _validation.prepare_forward("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    buf, copy_back, workspace = _start_output(args, out, training)

    bias = None if args.b_ih is None else args.b_ih + args.b_hh
    gx = _input_projection(args, bias)  # (T, B, 4H)

    steps = _validation.prepare_lengths(lengths, args.T, args.B)
    h, c = recurrence("lstm", gx, lambda h_prev: h_prev @ args.w_hh.T, args.h0, args.c0, steps, buf, workspace)

    result = _finish_output(buf, copy_back, out)
    if training:
        return result, h, c, workspace
    return result, h, c


def lstm_backward(
    d_out: Optional[ArrayLike],
    d_h_n: Optional[ArrayLike],
    d_c_n: Optional[ArrayLike],
    x: ArrayLike,
    h0: Optional[ArrayLike],
    c0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    out: ArrayLike,
    workspace: ArrayLike,
    *,
    lengths: Optional[ArrayLike] = None,
) -> LSTMGrads:
    """Backward (BPTT) of :func:`lstm`.

    Parameters
    ----------
    d_out : array_like, (T, B, H), or None
        Gradient with respect to ``out``; None means zeros.
    d_h_n, d_c_n : array_like, (B, H), or None
        Gradients with respect to ``h_n`` and ``c_n``; None means zeros.
    x, h0, c0, w_ih, w_hh
        As given to the forward (biases are not needed).
    out : array_like, (T, B, H)
        The forward output, in the computation's dtype.
    workspace : array_like, (T, B, 6H)
        As returned by the forward with ``training=True``.
    lengths : array_like of int, (B,), optional
        As given to the forward.

    Returns
    -------
    LSTMGrads
        ``d_x`` (T, B, I), ``d_h0`` (B, H), ``d_c0`` (B, H), ``d_w_ih`` (4H, I), ``d_w_hh`` (4H, H),
        ``d_b_ih`` (4H,), ``d_b_hh`` (4H,) (equal values, separate arrays).

    Notes
    -----
    Per step, going backwards, with ``dh`` the total gradient w.r.t. ``h_t`` and ``dc`` the gradient
    w.r.t. ``c_t`` coming from step t+1::

        dc  += dh * o * (1 - tanh(c_t)^2)
        d_i  = dc * g * i * (1 - i)         d_f = dc * c_{t-1} * f * (1 - f)
        d_g  = dc * i * (1 - g^2)           d_o = dh * tanh(c_t) * o * (1 - o)
        dc_{t-1} = dc * f                   dh_{t-1} = [d_i, d_f, d_g, d_o] @ W_hh
    """
    a = _validation.prepare_backward("lstm", d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, out, workspace)
    fa = a.fwd
    T, B, H = fa.T, fa.B, fa.H
    ws_i, ws_f, ws_g, ws_o, ws_c, ws_tanh_c = _gates(a.workspace, 6)  # each (T, B, H)

    dG = np.empty((T, B, 4 * H), dtype=fa.dtype)
    steps = _validation.prepare_lengths(lengths, T, B)
    dh = _zeros_or_copy(a.d_h_n, (B, H), fa.dtype)
    dc = _zeros_or_copy(a.d_c_n, (B, H), fa.dtype)
    for t in reversed(range(T)):
        running = _running(steps, t)
        if a.d_out is not None:
            dh = dh + _keep(running, a.d_out[t], 0.0)
        i, f, g, o, tanh_c = ws_i[t], ws_f[t], ws_g[t], ws_o[t], ws_tanh_c[t]
        if t > 0:
            c_prev = ws_c[t - 1]
        else:
            c_prev = np.zeros((B, H), dtype=fa.dtype) if fa.c0 is None else fa.c0

        dc_t = dc + dh * o * (1.0 - tanh_c * tanh_c)  # h_t = o * tanh(c_t)
        d_i, d_f, d_g, d_o = _gates(dG[t], 4)
        d_i[...] = _keep(running, dc_t * g * i * (1.0 - i), 0.0)
        d_f[...] = _keep(running, dc_t * c_prev * f * (1.0 - f), 0.0)
        d_g[...] = _keep(running, dc_t * i * (1.0 - g * g), 0.0)
        d_o[...] = _keep(running, dh * tanh_c * o * (1.0 - o), 0.0)

        dc = _keep(running, dc_t * f, dc)  # gradient w.r.t. c_{t-1}
        dh = _keep(running, dG[t] @ fa.w_hh, dh)  # gradient w.r.t. h_{t-1}

    d_w_ih, d_b, d_x = _weight_grads(dG, fa.x, fa.w_ih)
    d_w_hh, _, _ = _weight_grads(dG, _previous_states(a.out, fa.h0), fa.w_hh)
    return LSTMGrads(
        d_x=d_x, d_h0=dh, d_c0=dc, d_w_ih=d_w_ih, d_w_hh=d_w_hh, d_b_ih=d_b, d_b_hh=d_b.copy()
    )


# ----------------------------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------------------------


def gru(
    x: ArrayLike,
    h0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    b_ih: Optional[ArrayLike] = None,
    b_hh: Optional[ArrayLike] = None,
    *,
    training: bool = False,
    out: Optional[np.ndarray] = None,
    lengths: Optional[ArrayLike] = None,
) -> Union[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """GRU layer, one direction, gates r, z, n (PyTorch's order), linear before reset.

    ``gi = W_ih x_t + b_ih``, ``gh = W_hh h_{t-1} + b_hh``; ``r = sigmoid(gi_r + gh_r)``,
    ``z = sigmoid(gi_z + gh_z)``, ``n = tanh(gi_n + r * gh_n)``; ``h_t = (1 - z) * n + z * h_{t-1}``.
    The reset gate multiplies only the recurrent part of n, bias ``b_hn`` included.

    Parameters
    ----------
    x : array_like, (T, B, I)
        Input sequence, time-major.
    h0 : array_like, (B, H), or None
        Initial hidden state; None means zeros.
    w_ih : array_like, (3H, I)
        Input-to-hidden weights, row blocks r, z, n.
    w_hh : array_like, (3H, H)
        Hidden-to-hidden weights, row blocks r, z, n.
    b_ih, b_hh : array_like, (3H,), or both None
        Biases; None (both) means no bias.
    training : bool
        Also return the workspace the backward needs.
    out : numpy.ndarray, (T, B, H), optional
        Where to write the output sequence; it is returned.
    lengths : array_like of int, (B,), optional
        Per-sequence lengths in [0, T]; None means every sequence has length T.

    Returns
    -------
    out : (T, B, H)
        ``h_t`` for every step.
    h_n : (B, H)
        Final hidden state (a new array).
    workspace : (T, B, 4H)
        Only with ``training=True``: ``[r, z, n, W_hn h_{t-1} + b_hn]`` per (t, b) row.

    Raises
    ------
    TypeError, ValueError
        For bad arguments, naming the argument.
    """
    args = _validation.prepare_forward("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh)
    buf, copy_back, workspace = _start_output(args, out, training)

    # Biases cannot all be folded: b_hn sits inside r * (W_hn h + b_hn). Keep the two sides apart.
    gi_all = _input_projection(args, args.b_ih)  # (T, B, 3H)

    steps = _validation.prepare_lengths(lengths, args.T, args.B)

    def recurrent(h_prev: np.ndarray) -> np.ndarray:
        gh = h_prev @ args.w_hh.T
        if args.b_hh is not None:
            gh += args.b_hh
        return gh

    h, _ = recurrence("gru", gi_all, recurrent, args.h0, None, steps, buf, workspace)

    result = _finish_output(buf, copy_back, out)
    if training:
        return result, h, workspace
    return result, h


def gru_backward(
    d_out: Optional[ArrayLike],
    d_h_n: Optional[ArrayLike],
    x: ArrayLike,
    h0: Optional[ArrayLike],
    w_ih: ArrayLike,
    w_hh: ArrayLike,
    out: ArrayLike,
    workspace: ArrayLike,
    *,
    lengths: Optional[ArrayLike] = None,
) -> GRUGrads:
    """Backward (BPTT) of :func:`gru`.

    Parameters
    ----------
    d_out : array_like, (T, B, H), or None
        Gradient with respect to ``out``; None means zeros.
    d_h_n : array_like, (B, H), or None
        Gradient with respect to ``h_n``; None means zeros.
    x, h0, w_ih, w_hh
        As given to the forward (biases are not needed: ``b_hn`` is inside the saved ``gh_n``).
    out : array_like, (T, B, H)
        The forward output, in the computation's dtype.
    workspace : array_like, (T, B, 4H)
        As returned by the forward with ``training=True``.
    lengths : array_like of int, (B,), optional
        As given to the forward.

    Returns
    -------
    GRUGrads
        ``d_x`` (T, B, I), ``d_h0`` (B, H), ``d_w_ih`` (3H, I), ``d_w_hh`` (3H, H), ``d_b_ih`` (3H,),
        ``d_b_hh`` (3H,). The bias gradients differ in the n block.

    Notes
    -----
    Per step, going backwards, with ``dh`` the total gradient w.r.t. ``h_t``::

        d_n_pre = dh * (1 - z) * (1 - n^2)
        d_z_pre = dh * (h_{t-1} - n) * z * (1 - z)
        d_r_pre = d_n_pre * gh_n * r * (1 - r)
        dGi = [d_r_pre, d_z_pre, d_n_pre]          (gradient of gi = W_ih x_t + b_ih)
        dGh = [d_r_pre, d_z_pre, d_n_pre * r]      (gradient of gh = W_hh h_{t-1} + b_hh)
        dh_{t-1} = dh * z + dGh @ W_hh
    """
    a = _validation.prepare_backward("gru", d_out, d_h_n, None, x, h0, None, w_ih, w_hh, out, workspace)
    fa = a.fwd
    T, B, H = fa.T, fa.B, fa.H
    ws_r, ws_z, ws_n, ws_gh_n = _gates(a.workspace, 4)  # each (T, B, H)
    h_prev_all = _previous_states(a.out, fa.h0)

    dGi = np.empty((T, B, 3 * H), dtype=fa.dtype)  # gradient of the input-side pre-activations gi
    dGh = np.empty((T, B, 3 * H), dtype=fa.dtype)  # gradient of the recurrent pre-activations gh
    steps = _validation.prepare_lengths(lengths, T, B)
    dh = _zeros_or_copy(a.d_h_n, (B, H), fa.dtype)
    for t in reversed(range(T)):
        running = _running(steps, t)
        if a.d_out is not None:
            dh = dh + _keep(running, a.d_out[t], 0.0)
        r, z, n, gh_n, h_prev = ws_r[t], ws_z[t], ws_n[t], ws_gh_n[t], h_prev_all[t]

        d_n_pre = _keep(running, dh * (1.0 - z) * (1.0 - n * n), 0.0)
        d_z_pre = _keep(running, dh * (h_prev - n) * z * (1.0 - z), 0.0)
        d_r_pre = d_n_pre * gh_n * r * (1.0 - r)

        di_r, di_z, di_n = _gates(dGi[t], 3)
        dh_r, dh_z, dh_n = _gates(dGh[t], 3)
        di_r[...] = d_r_pre
        di_z[...] = d_z_pre
        di_n[...] = d_n_pre
        dh_r[...] = d_r_pre
        dh_z[...] = d_z_pre
        dh_n[...] = d_n_pre * r  # r multiplies only the recurrent n part

        # direct path through z * h_{t-1}, plus through gh; a finished row passes dh through unchanged
        dh = _keep(running, dh * z + dGh[t] @ fa.w_hh, dh)

    d_w_ih, d_b_ih, d_x = _weight_grads(dGi, fa.x, fa.w_ih)
    d_w_hh, d_b_hh, _ = _weight_grads(dGh, h_prev_all, fa.w_hh)
    return GRUGrads(d_x=d_x, d_h0=dh, d_w_ih=d_w_ih, d_w_hh=d_w_hh, d_b_ih=d_b_ih, d_b_hh=d_b_hh)
