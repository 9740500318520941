"""Reduced-precision inference in plain NumPy: the definition of the int8 and bf16 kernels (issue 14).

Re-exported by :mod:`rnnfast.reference`, which documents the float ops. This module is the contract the
reduced-precision kernels implement, written out in NumPy, every operation in float32 arithmetic
("f32(...)" below: the float32 result of one NumPy float32 operation, rounded to nearest even).

int8: weights symmetric per row, activations asymmetric per row (as ONNX Runtime's dynamic quantization)
----------------------------------------------------------------------------------------------------------
Weights, once (:func:`quantize_int8_rows`): each row ``w`` of W (G*H, K) (PyTorch's layout: one row per output
unit of a gate), with ``m = max_k |w[k]|``:

- ``m == 0``: scale 0 and ``q = 0``;
- else ``scale = f32(m / 127)``, ``inv = f32(127 / m)``, ``q[k] = clip(rint(f32(w[k] * inv)), -127, 127)`` as
  int8 (``rint`` rounds half to even). Below ``m = 127 / FLT_MAX`` (about 3.7e-37) ``inv`` is infinite:
  zero elements stay 0, the others go to +-127. (:func:`rnnfast.quantize` refuses NaN and infinite weights.)

Activations, at run time (:func:`quantize_uint8_rows`): each row ``a`` of ``x`` (the input projection) and
of ``h_{t-1}`` (every step), with ``lo = min(0, min_k a[k])``, ``hi = max(0, max_k a[k])``,
``range = f32(hi - lo)``:

- a NaN or an infinity in the row, or an infinite ``range``: scale NaN, zero point 0, ``q = 0``, so the
  row's products are NaN, as float32 would make them;
- ``range == 0``: scale 0, zero point 0, ``q = 0``;
- else ``inv = f32(255 / range)``, ``zero_point = min(rint(f32(-lo * inv)), 255)``, ``scale = f32(range / 255)``,
  ``q[k] = clip(rint(f32(a[k] * inv)) + zero_point, 0, 255)`` as uint8. (A range below ``255 / FLT_MAX``,
  about 7.5e-37, makes ``inv`` infinite; this definition takes such a row as zero: scale 0, zero point 0,
  ``q = 0``.)

``scale * (q - zero_point)`` is within ``scale / 2`` of ``a`` (the zero point shifts the grid so that 0 is
on it; ``range`` covers the row's own span, not ``2 max|a|``, so a one-signed row gets twice the
resolution of a symmetric one).

The product (:func:`int8_product`) is ``acc[i, n] = sum_k (q[i, k] - zero_point[i]) * qw[n, k]``, exact
(``|acc| <= K * 255 * 128``, within int32 up to K = 65,793, :data:`INT8_MAX_DEPTH`), then ``y[i, n] = f32(f32(acc) * f32(sa[i] * sw[n]))``
(:func:`int8_dequantize`).

bf16, weights stored in bfloat16, activations rounded to it
-----------------------------------------------------------
:func:`bf16_round` rounds float32 to bfloat16, to nearest even (NaN to a quiet NaN), returning the 16 bits
as uint16; :func:`bf16_to_float32` widens them back exactly. The product (:func:`bf16_product`) is one
float32 chain per output element, over the pairs of k in order, odd element first: for j = 0, 1, ...,
``acc = f32(acc + A[2j+1] W[2j+1])`` (skipped past K), then ``acc = f32(acc + A[2j] W[2j])``, from
``acc = +0``. The products of two bfloat16 values are exact in float32. This is what AVX512_BF16's
``vdpbf16ps`` computes (verified bit for bit on this machine's Zen 4); hardware may flush denormals, so
results involving them may differ from this definition.

A layer, one direction (:func:`reduced_forward`)
------------------------------------------------
- Input projection of every step: ``gx = y(x, W_ih) + bias`` with ``bias = f32(b_ih + b_hh)``, except in
  the GRU's n block, where it is ``b_ih`` alone (float32 addition).
- Each step: ``gh = y(h_{t-1}, W_hh)``, plus ``b_hn`` in the GRU's n block (the reset gate multiplies it),
  then the cell's float32 update on ``(gx_t, gh)``, exactly the float reference's
  (:mod:`rnnfast._reference_recurrence`). Gates, the cell state, the hidden state and the outputs are
  float32; lengths as in the float ops.
- The kernels may contract ``y + bias`` into one fused multiply-add, so they agree with this definition to
  float32 rounding, not bit for bit; their integer products (int8) and product chains (bf16) agree bit for
  bit.

Error against float32 (:func:`int8_product_error_bound`, :func:`bf16_product_error_bound`) is derived in
those functions' docstrings.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _validation
from ._cells import cell_facts
from ._reference_recurrence import recurrence

__all__ = [
    "REDUCED_WEIGHT_DTYPES", "INT8_MAX_DEPTH",
    "quantize_int8_rows", "quantize_uint8_rows", "int8_product", "int8_dequantize",
    "bf16_round", "bf16_to_float32", "bf16_product",
    "quantize_weight", "quantize_rows", "reduced_product", "reduced_forward",
    "int8_product_error_bound", "bf16_product_error_bound",
]

#: The weight dtypes of reduced-precision inference.
REDUCED_WEIGHT_DTYPES = ("int8", "bf16")

#: The deepest int8 product whose sums fit the kernels' int32 accumulators whatever the values:
#: K * 255 * 128 <= 2^31 - 1.
INT8_MAX_DEPTH = (2 ** 31 - 1) // (255 * 128)

_F32 = np.float32
_EPS = 2.0 ** -24  # unit roundoff of float32 (round to nearest)


def check_weight_dtype(weight_dtype: Any) -> str:
    """``weight_dtype`` itself if it is 'int8' or 'bf16'; TypeError if not a str, ValueError for another."""
    if not isinstance(weight_dtype, str):
        raise TypeError(f"weight_dtype must be one of {REDUCED_WEIGHT_DTYPES}, got {weight_dtype!r} of type "
                        f"{type(weight_dtype).__name__}")
    if weight_dtype not in REDUCED_WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype must be one of {REDUCED_WEIGHT_DTYPES}, got {weight_dtype!r}")
    return weight_dtype


def _rows_f32(name: str, a: Any) -> np.ndarray:
    """``a`` as a C-contiguous 2-D float32 array (float64 is rounded to float32 by NumPy's cast)."""
    arr = _validation.as_array(name, a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, depth), got shape {arr.shape}")
    return _validation.cast(name, arr, np.dtype(_F32))


def _exact_dtype(name: str, a: Any, dtype: type, shape: Optional[tuple] = None) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        raise TypeError(f"{name} must be a numpy array of dtype {np.dtype(dtype)}, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return np.ascontiguousarray(a)


# ----------------------------------------------------------------------------------------------------
# int8
# ----------------------------------------------------------------------------------------------------


def quantize_int8_rows(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """Quantize each row of ``a`` (M, K) symmetrically to int8, as weights are: ``(q int8 (M, K), scale
    float32 (M,))``.

    The rule of the module docstring: ``scale = f32(m / 127)`` and ``q = clip(rint(f32(a * f32(127 / m))),
    -127, 127)`` with ``m`` the row's largest magnitude; a zero row gets scale 0 and ``q = 0``, a row with a
    NaN or an infinity (never a weight's) scale NaN and ``q = 0``. ``scale * q`` is within ``scale / 2`` of
    ``a`` (plus float32 rounding of the scales, a relative 2e-7): the nearest point of the grid.

    A float64 ``a`` is rounded to float32 first.
    """
    a = _rows_f32("a", a)
    m = np.max(np.abs(a), axis=1, initial=_F32(0))  # NaN propagates: a row with a NaN has m = NaN
    finite = np.isfinite(m)
    scaled = finite & (m > 0)
    safe_m = np.where(scaled, m, _F32(1))  # divide only where the rule divides
    scale = np.where(scaled, safe_m / _F32(127), np.where(finite, _F32(0), _F32(np.nan))).astype(_F32)
    # 0 < m < 127 / FLT_MAX (about 3.7e-37) makes inv infinite: a zero element stays 0 (not 0 * inf = NaN),
    # every other element goes to +-127. (Such rows are below float32's useful range.)
    with np.errstate(invalid="ignore", over="ignore"):
        inv = (_F32(127) / safe_m).astype(_F32)
        q = np.clip(np.rint(a * inv[:, None]), -127, 127)
    q = np.where(scaled[:, None] & (a != 0), q, _F32(0)).astype(np.int8)
    return q, scale


def quantize_uint8_rows(a: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize each row of ``a`` (M, K) asymmetrically to uint8, as activations are: ``(q uint8 (M, K),
    scale float32 (M,), zero_point int32 (M,))``, with ``scale * (q - zero_point)`` standing for ``a``.

    The rule of the module docstring: the row's span ``[min(0, min a), max(0, max a)]`` in 255 steps, 0 on
    the grid. A row with a NaN or an infinity, or whose span overflows float32, gets scale NaN (its products
    are NaN); a zero row, or one whose span is below ``255 / FLT_MAX``, scale 0; both zero point 0 and
    ``q = 0``. A float64 ``a`` is rounded to float32 first.
    """
    a = _rows_f32("a", a)
    M = a.shape[0]
    finite_rows = np.isfinite(a).all(axis=1)
    safe_a = np.where(finite_rows[:, None], a, _F32(0))
    lo = np.min(safe_a, axis=1, initial=_F32(0))
    hi = np.max(safe_a, axis=1, initial=_F32(0))
    with np.errstate(over="ignore", invalid="ignore"):
        span = (hi - lo).astype(_F32)  # may overflow to infinity
        inv = np.where(span > 0, _F32(255) / np.where(span > 0, span, _F32(1)), _F32(np.inf)).astype(_F32)
    measurable = finite_rows & np.isfinite(span)
    scaled = measurable & np.isfinite(inv)  # excludes span == 0 and spans whose 255 / span overflows
    inv = np.where(scaled, inv, _F32(0))
    scale = np.where(scaled, span / _F32(255), np.where(measurable, _F32(0), _F32(np.nan))).astype(_F32)
    zero_point = np.minimum(np.rint(-lo * inv), _F32(255)).astype(_F32)
    q = np.clip(np.rint(safe_a * inv[:, None]) + zero_point[:, None], 0, 255)
    q = np.where(scaled[:, None], q, _F32(0)).astype(np.uint8)
    zero_point = np.where(scaled, zero_point, _F32(0)).astype(np.int32)
    assert q.shape == a.shape and scale.shape == zero_point.shape == (M,)
    return q, scale, zero_point


def int8_product(qa: np.ndarray, zero_points: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """The exact integer products ``acc[i, n] = sum_k (qa[i, k] - zero_points[i]) * qw[n, k]``, int64 (M, N).

    ``qa`` uint8 (M, K) and ``zero_points`` int32 (M,) (quantized activation rows), ``qw`` int8 (N, K)
    (quantized weight rows). Computed as a float64 matrix product, which is exact here: every term is an
    integer of magnitude at most 255 * 128 < 2^15 and every partial sum an integer below K * 2^15 < 2^53,
    so no addition rounds, in any order.
    """
    qa = _exact_dtype("qa", qa, np.uint8)
    qw = _exact_dtype("qw", qw, np.int8)
    if qa.ndim != 2 or qw.ndim != 2 or qa.shape[1] != qw.shape[1]:
        raise ValueError(f"qa (M, K) and qw (N, K) must be 2-D with the same K, got {qa.shape} and {qw.shape}")
    zero_points = _exact_dtype("zero_points", zero_points, np.int32, (qa.shape[0],))
    if qa.shape[1] >= 2 ** 38:
        raise ValueError(f"depth K = {qa.shape[1]} is too large for exact float64 sums")
    centred = qa.astype(np.float64) - zero_points.astype(np.float64)[:, None]
    return (centred @ qw.astype(np.float64).T).astype(np.int64)


def int8_dequantize(acc: np.ndarray, a_scales: np.ndarray, w_scales: np.ndarray) -> np.ndarray:
    """``y[i, n] = f32(f32(acc[i, n]) * f32(a_scales[i] * w_scales[n]))``, float32 (M, N).

    ``acc`` the integer products (M, N), ``a_scales`` float32 (M,), ``w_scales`` float32 (N,).
    ``f32(acc)`` rounds to nearest even (exact below 2^24 in magnitude).
    """
    acc = np.asarray(acc)
    a_scales = _exact_dtype("a_scales", a_scales, _F32, (acc.shape[0],))
    w_scales = _exact_dtype("w_scales", w_scales, _F32, (acc.shape[1],))
    return acc.astype(_F32) * (a_scales[:, None] * w_scales[None, :])


# ----------------------------------------------------------------------------------------------------
# bf16
# ----------------------------------------------------------------------------------------------------


def bf16_round(a: Any) -> np.ndarray:
    """float32 (any shape) -> bfloat16 bits (uint16, same shape), rounded to nearest even.

    Overflow rounds to infinity, as IEEE rounding does; a NaN becomes a quiet NaN with the same sign and
    the upper payload bits. A float64 ``a`` is rounded to float32 first.
    """
    arr = _validation.as_array("a", a)
    bits = np.ascontiguousarray(arr, dtype=_F32).view(np.uint32)
    # Adding 0x7FFF plus the lowest kept bit carries into the kept bits exactly when the dropped half is
    # above one half, or exactly one half with the kept part odd: round to nearest, ties to even.
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))
    quiet_nan = (bits >> np.uint32(16)) | np.uint32(0x0040)
    is_nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(is_nan, quiet_nan, rounded).astype(np.uint16)


def bf16_to_float32(bits: Any) -> np.ndarray:
    """bfloat16 bits (uint16) -> their float32 values (exact: the bits become the upper half)."""
    b = np.asarray(bits)
    if b.dtype != np.uint16:
        raise TypeError(f"bits must have dtype uint16 (bfloat16 bits), got {b.dtype}")
    return (b.astype(np.uint32) << np.uint32(16)).view(_F32)


def bf16_product(a_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """The bf16 product chain, float32 (M, N): ``a_bits`` (M, K) and ``w_bits`` (N, K) bfloat16 bits.

    For each (i, n) one float32 accumulator from +0 takes the terms ``A[i, k] * W[n, k]`` (exact in
    float32) in the order k = 1, 0, 3, 2, 5, 4, ... (the odd element of each pair first; an odd K's last
    pair has only its even element), rounding after every addition.
    """
    a_bits = _exact_dtype("a_bits", a_bits, np.uint16)
    w_bits = _exact_dtype("w_bits", w_bits, np.uint16)
    if a_bits.ndim != 2 or w_bits.ndim != 2 or a_bits.shape[1] != w_bits.shape[1]:
        raise ValueError(f"a_bits (M, K) and w_bits (N, K) must be 2-D with the same K, got {a_bits.shape} and "
                         f"{w_bits.shape}")
    A, W = bf16_to_float32(a_bits), bf16_to_float32(w_bits)
    M, K = A.shape
    acc = np.zeros((M, W.shape[0]), dtype=_F32)
    with np.errstate(over="ignore", invalid="ignore"):  # infinities and NaNs propagate as in float32
        for j in range((K + 1) // 2):
            for k in (2 * j + 1, 2 * j):
                if k < K:
                    acc += A[:, k, None] * W[None, :, k]  # exact product, one float32 rounding in the add
    return acc


# ----------------------------------------------------------------------------------------------------
# One product, as the kernels form it from float32 activations
# ----------------------------------------------------------------------------------------------------


def quantize_weight(w: Any, weight_dtype: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """A weight (N, K) in ``weight_dtype``: ``(q int8, scales float32)`` for 'int8' (symmetric per row,
    :func:`quantize_int8_rows`), ``(bits uint16, None)`` for 'bf16' (:func:`bf16_round`)."""
    check_weight_dtype(weight_dtype)
    w = _rows_f32("w", w)
    if weight_dtype == "int8":
        return quantize_int8_rows(w)
    return bf16_round(w), None


def quantize_rows(a: Any, weight_dtype: str) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Activation rows ``a`` (M, K) as the products with ``weight_dtype`` weights take them:
    ``(q uint8, scales float32, zero_points int32)`` for 'int8' (:func:`quantize_uint8_rows`),
    ``(bits uint16, None, None)`` for 'bf16' (:func:`bf16_round`). What ``_core.testing.reduced_quantize_rows``
    returns from the kernels' own code."""
    check_weight_dtype(weight_dtype)
    a = _rows_f32("a", a)
    if weight_dtype == "int8":
        return quantize_uint8_rows(a)
    return bf16_round(a), None, None


def reduced_product(a: Any, weight_dtype: str, w_values: np.ndarray, w_scales: Optional[np.ndarray] = None
                    ) -> np.ndarray:
    """``y ~= a @ W.T`` in reduced precision, float32 (M, N), from float32 activations ``a`` (M, K).

    ``w_values``: the quantized weight (N, K), int8 for 'int8' (with ``w_scales`` float32 (N,)) or bf16 bits
    (uint16) for 'bf16' (``w_scales`` None), as :func:`quantize_weight` makes them. int8 quantizes the rows
    of ``a`` at run time (:func:`quantize_uint8_rows`) and dequantizes the exact integer products; bf16 rounds
    ``a`` to bfloat16 and runs the product chain.
    """
    qa, sa, zero_points = quantize_rows(a, weight_dtype)
    if weight_dtype == "int8":
        qw = _exact_dtype("w_values", w_values, np.int8)
        sw = _exact_dtype("w_scales", w_scales, _F32, (qw.shape[0],))
        return int8_dequantize(int8_product(qa, zero_points, qw), sa, sw)
    if w_scales is not None:
        raise ValueError("w_scales must be None for bf16 weights (they have no scales)")
    return bf16_product(qa, _exact_dtype("w_values", w_values, np.uint16))


# ----------------------------------------------------------------------------------------------------
# A layer, one direction
# ----------------------------------------------------------------------------------------------------


def _check_weight(name: str, weight_dtype: str, values: Any, scales: Any, shape: tuple) -> tuple:
    want = np.int8 if weight_dtype == "int8" else np.uint16
    values = _exact_dtype(name, values, want, shape)
    if weight_dtype == "int8":
        scales = _exact_dtype(f"{name}_scales", scales, _F32, (shape[0],))
    elif scales is not None:
        raise ValueError(f"{name}_scales must be None for bf16 weights, got an array")
    return values, scales


def reduced_forward(
    cell: str,
    x: Any,
    h0: Optional[Any],
    c0: Optional[Any],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[Any] = None,
    b_hh: Optional[Any] = None,
    *,
    weight_dtype: str,
    w_ih_scales: Optional[np.ndarray] = None,
    w_hh_scales: Optional[np.ndarray] = None,
    lengths: Optional[Any] = None,
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """One layer in one direction with reduced-precision weights; the definition of ``_core.reduced_forward``.

    Parameters
    ----------
    cell : 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru'
    x : array_like, (T, B, I)
        Input sequence, time-major; computed in float32 (float64 input is rounded to float32).
    h0, c0 : array_like, (B, H), or None
        Initial states (``c0`` for the LSTM only); None means zeros.
    w_ih, w_hh : ndarray, (G*H, I) and (G*H, H)
        The quantized weights: int8 for 'int8', bfloat16 bits (uint16) for 'bf16'.
    b_ih, b_hh : array_like, (G*H,), or both None
        The float biases (float32).
    weight_dtype : 'int8' or 'bf16'
    w_ih_scales, w_hh_scales : ndarray float32 (G*H,), or None
        The weights' row scales, for 'int8' only.
    lengths : array_like of int, (B,), optional
        Per-sequence lengths in [0, T], any order (as the float ops).

    Returns
    -------
    out : (T, B, H) float32; h_n : (B, H); c_n : (B, H) for the LSTM, else None.
    """
    check_weight_dtype(weight_dtype)
    facts = cell_facts(_validation.check_cell(cell))
    G = facts.gates
    if not facts.cell_state and c0 is not None:
        raise ValueError(f"c0 is only used by the LSTM, not by the {facts.layer_class}")
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih and b_hh must both be given or both be None (no bias)")
    xa = _validation.as_array("x", x)
    if xa.ndim != 3:
        raise ValueError(f"x must be 3-D (seq_len, batch, input_size), got shape {xa.shape}")
    f32 = np.dtype(_F32)
    xa = _validation.cast("x", xa, f32)
    T, B, I = xa.shape
    if not isinstance(w_hh, np.ndarray) or w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] != G * w_hh.shape[1]:
        raise ValueError(f"w_hh must be a 2-D array ({G}*hidden_size, hidden_size), got "
                         f"{getattr(w_hh, 'shape', type(w_hh).__name__)}")
    H = w_hh.shape[1]
    w_ih, w_ih_scales = _check_weight("w_ih", weight_dtype, w_ih, w_ih_scales, (G * H, I))
    w_hh, w_hh_scales = _check_weight("w_hh", weight_dtype, w_hh, w_hh_scales, (G * H, H))
    biases = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            arr = _validation.as_array(name, b)
            _validation.check_shape(name, arr, (G * H,), f"= ({G}*hidden_size,) for hidden_size {H}")
            b = _validation.cast(name, arr, f32)
        biases.append(b)
    b_ih, b_hh = biases
    states = []
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None:
            arr = _validation.as_array(name, s)
            _validation.check_shape(name, arr, (B, H), f"= (batch, hidden_size) for x {xa.shape} and hidden_size {H}")
            s = _validation.cast(name, arr, f32)
        states.append(s)
    h0, c0 = states
    steps = _validation.prepare_lengths(lengths, T, B)

    gru = cell == "gru"
    n_block = slice(2 * H, 3 * H)
    bias = None
    if b_ih is not None:
        bias = b_ih + b_hh
        if gru:
            bias[n_block] = b_ih[n_block]  # b_hn stays with the recurrent product: r multiplies it
    gx = reduced_product(xa.reshape(T * B, I), weight_dtype, w_ih, w_ih_scales)
    if bias is not None:
        gx += bias
    gx = gx.reshape(T, B, G * H)

    def recurrent(h_prev: np.ndarray) -> np.ndarray:
        gh = reduced_product(h_prev, weight_dtype, w_hh, w_hh_scales)
        if gru and b_hh is not None:
            gh[:, n_block] += b_hh[n_block]
        return gh

    out = np.empty((T, B, H), dtype=f32)
    with np.errstate(over="ignore", invalid="ignore"):  # a NaN row (NaN scale) propagates as in float32
        h_n, c_n = recurrence(cell, gx, recurrent, h0, c0, steps, out, None)
    return out, h_n, c_n


# ----------------------------------------------------------------------------------------------------
# Error against float32
# ----------------------------------------------------------------------------------------------------


def int8_product_error_bound(a: Any, w: Any) -> np.ndarray:
    """A bound, float64 (M, N), on ``|reduced_product(a, 'int8', *quantize_int8_rows(w)) - a @ w.T|``, where
    ``a @ w.T`` is the exact product of the float32 values of ``a`` (M, K) and ``w`` (N, K) (finite).

    Derivation. With ``sa`` the activation row's scale (``range / 255``, range the row's span with 0) and
    ``sw`` the weight row's (``max|w| / 127``), let ``ea = a - sa (q - zero_point)`` and ``ew = w - sw qw`` be
    the quantization errors. Rounding to the nearest grid point gives ``|ea| <= sa/2`` and ``|ew| <= sw/2``
    up to float32 rounding: ``sa * f32(a * inv) = a (1 + d1)(1 + d2)(1 + d3)`` with ``|d| <= 2^-24`` (the
    product, ``inv`` and the scale), and ``|a| <= range <= 255 sa (1 + 2^-24)``, so
    ``|ea| <= sa/2 + 3.0001 * 255 * 2^-24 sa <= sa/2 (1 + 2^-12)``; the zero point moves every grid point by
    the same integer, and the clip at 255 (when ``rint(hi * inv) + zero_point`` reaches 256) moves the
    largest element by at most that same ``sa/2 (1 + 2^-12)``. Likewise ``|ew| <= sw/2 (1 + 2^-14)``. Since
    ``a w - (a - ea)(w - ew) = a ew + ea w - ea ew``, per element of the result

        ``|sa sw acc - a @ w.T| <= sum_k |a_k| sw/2 + |w_k| sa/2 + sa sw/4``   (times ``1 + 2^-11``).

    The epilogue ``f32(f32(acc) * f32(sa * sw))`` rounds at most three times, a relative ``3.0001 * 2^-24``
    of ``|sa sw acc| <= sum_k |a_k||w_k| + the bound``: ``2^-22 sum_k |a_k||w_k|`` covers the first part,
    the slack the second. A row of ``a`` with a NaN or an infinity has no bound (NaN).
    """
    a = _rows_f32("a", a)
    w = _rows_f32("w", w)
    _, sa, _ = quantize_uint8_rows(a)
    _, sw = quantize_int8_rows(w)
    sa, sw = sa.astype(np.float64), sw.astype(np.float64)
    abs_a, abs_w = np.abs(a.astype(np.float64)), np.abs(w.astype(np.float64))
    K = a.shape[1]
    quantization = (abs_a.sum(1)[:, None] * sw[None, :] / 2 + sa[:, None] * abs_w.sum(1)[None, :] / 2
                    + K * sa[:, None] * sw[None, :] / 4)
    return quantization * (1 + 2.0 ** -11) + 2.0 ** -22 * (abs_a @ abs_w.T)


def bf16_product_error_bound(a: Any, w: Any) -> np.ndarray:
    """A bound, float64 (M, N), on ``|reduced_product(a, 'bf16', bf16_round(w)) - a @ w.T|`` (the exact
    product of the float32 values of ``a`` (M, K) and ``w`` (N, K), finite and not denormal).

    Derivation. Rounding to bfloat16 (8 significant bits, 7 stored) moves each element by at most a relative
    ``u = 2^-8``, so each exact term moves by at most ``((1 + u)^2 - 1) |a_k w_k| = (2u + u^2) |a_k w_k|``.
    The chain of K float32 additions of those terms errs by at most ``gamma_K sum_k |terms|`` with
    ``gamma_K = K 2^-24 / (1 - K 2^-24)`` (the standard bound for recursive summation, any order). Together

        ``|y - a @ w.T| <= (2u + u^2 + gamma_K (1 + u)^2) sum_k |a_k| |w_k|``,

    plus ``K * 2^-125`` for products the hardware may flush to zero when they fall below float32's normal
    range (each such term is below ``2^-126``).
    """
    a = _rows_f32("a", a).astype(np.float64)
    w = _rows_f32("w", w).astype(np.float64)
    K = a.shape[1]
    u = 2.0 ** -8
    gamma = K * _EPS / (1 - K * _EPS)
    return (2 * u + u * u + gamma * (1 + u) ** 2) * (np.abs(a) @ np.abs(w).T) + K * 2.0 ** -125
