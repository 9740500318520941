"""Argument checks and conversion of the cell variants' ops (``variant_forward``, ``variant_backward``),
shared by the native ops (:mod:`rnnfast.functional`) and the reference (:mod:`rnnfast.reference`).

Shapes, with G gates, H hidden units, R = proj_size or H the width of h, P = proj_size: ``x`` (T, B, I),
``h0`` (B, R), ``c0`` (B, H), ``w_ih`` (G*H, I), ``w_hh`` (G*H, R), ``b_ih``/``b_hh`` (G*H,), ``w_hr`` (P, H),
``w_ch`` (3H,), ``out`` (T, B, R), ``workspace`` (T, B, slots*H).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._validation import as_array, c_aligned, cast, check_shape, prepare_lengths, result_dtype
from ._variants import VARIANT_WORKSPACE_SLOTS, CellOptions

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass
class VariantArgs:
    """Checked arguments of a variant op: C-contiguous aligned arrays of ``dtype``, None where absent."""

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
    lengths: Optional[np.ndarray]

    @property
    def workspace_width(self) -> int:
        return VARIANT_WORKSPACE_SLOTS[self.options.family] * self.H


def _check_options(options: Any) -> CellOptions:
    if not isinstance(options, CellOptions):
        raise TypeError(f"options must be an rnnfast CellOptions, got {type(options).__name__}")
    return options


def prepare_variant_forward(options, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch, lengths,
                            promote_with: tuple = ()) -> VariantArgs:
    """Check and convert a variant forward's arguments (clear TypeError/ValueError naming the argument).

    ``promote_with``: further arrays whose dtypes take part in choosing the computation's dtype.
    """
    opts = _check_options(options)
    family, G = opts.family, _GATES[opts.family]
    title = family.upper()
    lstm = family == "lstm"
    if not lstm and c0 is not None:
        raise ValueError(f"c0 is only used by the LSTM, not by the {title}")
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih and b_hh must both be given or both be None (no bias)")
    if opts.proj_size > 0 and w_hr is None:
        raise ValueError(f"w_hr (proj_size, hidden_size) is required with proj_size={opts.proj_size}")
    if opts.proj_size == 0 and w_hr is not None:
        raise ValueError("w_hr is only used with a projection (proj_size > 0); the options have proj_size=0")
    if opts.peepholes and w_ch is None:
        raise ValueError("w_ch (3*hidden_size,) is required with peepholes=True")
    if not opts.peepholes and w_ch is not None:
        raise ValueError("w_ch is only used with peepholes=True")
    named = {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh, "w_hr": w_hr,
             "w_ch": w_ch}
    for required in ("x", "w_ih", "w_hh"):
        if named[required] is None:
            raise TypeError(f"{required} is required, got None")
    arrays = {k: as_array(k, v) for k, v in named.items() if v is not None}
    dtype = result_dtype(list(arrays.values()) + list(promote_with))
    xa, wih, whh = arrays["x"], arrays["w_ih"], arrays["w_hh"]
    if xa.ndim != 3:
        raise ValueError(f"x must be 3-D (seq_len, batch, input_size), got shape {xa.shape}")
    T, B, I = xa.shape
    if wih.ndim != 2 or wih.shape[0] % G != 0 or wih.shape[0] == 0:
        raise ValueError(f"w_ih has shape {wih.shape}, expected ({G}*hidden_size, input_size) for the {title}")
    H = wih.shape[0] // G
    R = opts.proj_size or H
    if opts.proj_size >= H and opts.proj_size:
        raise ValueError(f"proj_size={opts.proj_size} must be smaller than hidden_size={H} (from w_ih {wih.shape})")
    check_shape("w_ih", wih, (G * H, I), f"= ({G}*hidden_size, input_size) with input_size {I} from x {xa.shape}")
    check_shape("w_hh", whh, (G * H, R), f"= ({G}*hidden_size, {'proj_size' if opts.proj_size else 'hidden_size'}) "
                f"for hidden_size {H} (from w_ih)")
    for b in ("b_ih", "b_hh"):
        if b in arrays:
            check_shape(b, arrays[b], (G * H,), f"= ({G}*hidden_size,) for hidden_size {H}")
    if "h0" in arrays:
        check_shape("h0", arrays["h0"], (B, R), f"= (batch, {'proj_size' if opts.proj_size else 'hidden_size'})")
    if "c0" in arrays:
        check_shape("c0", arrays["c0"], (B, H), "= (batch, hidden_size)")
    if "w_hr" in arrays:
        check_shape("w_hr", arrays["w_hr"], (R, H), "= (proj_size, hidden_size)")
    if "w_ch" in arrays:
        check_shape("w_ch", arrays["w_ch"], (3 * H,), "= (3*hidden_size,), the peepholes of i, f, o")
    conv = {k: cast(k, v, dtype) for k, v in arrays.items()}
    return VariantArgs(opts, dtype, T, B, I, H, R, G, conv["x"], conv.get("h0"), conv.get("c0"), conv["w_ih"],
                       conv["w_hh"], conv.get("b_ih"), conv.get("b_hh"), conv.get("w_hr"), conv.get("w_ch"),
                       prepare_lengths(lengths, T, B))


@dataclass
class VariantBackwardArgs:
    """Checked backward arguments: the forward's, what it saved, and the incoming gradients (None: zeros)."""

    fwd: VariantArgs
    out: np.ndarray
    workspace: np.ndarray
    d_out: Optional[np.ndarray]
    d_h_n: Optional[np.ndarray]
    d_c_n: Optional[np.ndarray]


def prepare_variant_backward(options, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, w_hr, w_ch, out, workspace,
                             lengths) -> VariantBackwardArgs:
    """Check and convert a variant backward's arguments; ``out`` and ``workspace`` must come from the forward
    with ``training=True`` on the same inputs (their dtype is the computation's)."""
    for required, value in (("out", out), ("workspace", workspace)):
        if value is None:
            raise TypeError(f"{required} is required (from variant_forward with training=True), got None")
    out_arr, ws_arr = as_array("out", out), as_array("workspace", workspace)
    fwd = prepare_variant_forward(options, x, h0, c0, w_ih, w_hh, None, None, w_hr, w_ch, lengths,
                                  promote_with=(out_arr, ws_arr))
    if fwd.options.family != "lstm" and d_c_n is not None:
        raise ValueError(f"d_c_n is only used by the LSTM, not by the {fwd.options.family.upper()}")
    T, B, H, R, W = fwd.T, fwd.B, fwd.H, fwd.R, fwd.workspace_width
    saved = {}
    for name, arr, shape, meaning in (
        ("out", out_arr, (T, B, R), "= (seq_len, batch, R), the forward output"),
        ("workspace", ws_arr, (T, B, W), f"= (seq_len, batch, {W}) as saved by the forward with training=True"),
    ):
        check_shape(name, arr, shape, meaning)
        if arr.dtype != fwd.dtype:
            raise TypeError(f"{name} has dtype {arr.dtype} but the computation runs in {fwd.dtype}: pass the arrays "
                            "the forward op returned with training=True")
        saved[name] = c_aligned(np.ascontiguousarray(arr))
    grads = {}
    for name, value, shape in (("d_out", d_out, (T, B, R)), ("d_h_n", d_h_n, (B, R)), ("d_c_n", d_c_n, (B, H))):
        if value is None:
            grads[name] = None
            continue
        arr = as_array(name, value)
        check_shape(name, arr, shape, "(the shape of the matching forward result)")
        grads[name] = cast(name, arr, fwd.dtype)
    return VariantBackwardArgs(fwd, saved["out"], saved["workspace"], **grads)
