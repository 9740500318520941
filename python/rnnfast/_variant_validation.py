"""Argument checks and conversion of the cell variants' ops (``variant_forward``, ``variant_backward``),
shared by the native ops (:mod:`rnnfast.functional`) and the reference (:mod:`rnnfast._reference_variants`).

Shapes, with G gates, H hidden units, R = proj_size or H the width of h, P = proj_size: ``x`` (T, B, I),
``h0`` (B, R), ``c0`` (B, H), ``w_ih`` (G*H, I), ``w_hh`` (G*H, R), ``b_ih``/``b_hh`` (G*H,), ``w_hr`` (P, H),
``w_ch`` (3H,), ``out`` (T, B, R), ``workspace`` (T, B, slots*H). Errors name the argument, the shapes and
the option involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._validation import ForwardArgs, as_array, c_aligned, cast, check_shape, given_arrays
from ._variants import VARIANT_WORKSPACE_SLOTS, CellOptions

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_TITLE = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
KERNEL_CELL = {"rnn": "rnn_tanh", "lstm": "lstm", "gru": "gru"}  # the kernels' cell of each family


# ----------------------------------------------------------------------------------------------------


@dataclass
class VariantArgs(ForwardArgs):
    """Checked arguments of a variant op: :class:`~rnnfast._validation.ForwardArgs` (``cell`` the family's
    kernel cell, 'rnn_tanh' for the RNN whatever its activation) and the variant's own: its options, R =
    proj_size or H (the width of h; ``w_hh`` is (G*H, R)), ``w_hr`` and ``w_ch`` (None where absent)."""

    options: Optional[CellOptions] = None
    R: int = 0
    w_hr: Optional[np.ndarray] = None
    w_ch: Optional[np.ndarray] = None

    @property
    def workspace_width(self) -> int:
        """Width of the training workspace: the family's slots (rnnfast._variants) times H."""
        return VARIANT_WORKSPACE_SLOTS[self.options.family] * self.H


def _check_options(options: Any) -> CellOptions:
    if not isinstance(options, CellOptions):
        raise TypeError(f"options must be an rnnfast CellOptions, got {type(options).__name__}")
    if options.family not in _GATES:
        raise ValueError(f"options.family must be 'rnn', 'lstm' or 'gru', got {options.family!r}")
    return options


def prepare_variant_forward(options, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch,
                            promote_with: tuple = ()) -> VariantArgs:
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
    arrays, dtype = given_arrays(named, promote_with)

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
    check_shape("w_ih", wih, (G * H, I),
                            f"= ({G}*hidden_size, input_size) with hidden_size {H}, input_size {I} from x {xa.shape}")
    for b in ("b_ih", "b_hh"):
        if b in arrays:
            check_shape(b, arrays[b], (G * H,), f"= ({G}*hidden_size,) for hidden_size {H}")
    if "h0" in arrays:
        check_shape("h0", arrays["h0"], (B, R),
                                f"= (batch, {r_name}) for x {xa.shape} and {r_name} {R}")
    if "c0" in arrays:
        check_shape("c0", arrays["c0"], (B, H),
                                f"= (batch, hidden_size) for x {xa.shape} and hidden_size {H}")
    if "w_hr" in arrays:
        check_shape("w_hr", arrays["w_hr"], (P, H),
                                f"= (proj_size, hidden_size) for options.proj_size={P} and hidden_size {H}")
    if "w_ch" in arrays:
        check_shape("w_ch", arrays["w_ch"], (3 * H,),
                                f"= (3*hidden_size,) (peepholes i, f, o) for hidden_size {H}")

    conv = {k: cast(k, v, dtype) for k, v in arrays.items()}
    return VariantArgs(cell=KERNEL_CELL[family], options=options, dtype=dtype, T=T, B=B, I=I, H=H, R=R, G=G,
                        x=conv["x"], h0=conv.get("h0"), c0=conv.get("c0"), w_ih=conv["w_ih"], w_hh=conv["w_hh"],
                        b_ih=conv.get("b_ih"), b_hh=conv.get("b_hh"), w_hr=conv.get("w_hr"), w_ch=conv.get("w_ch"))


def prepare_variant_backward(options, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, w_hr, w_ch, out, workspace):
    """Check and convert a variant backward's arguments: ``(args, out, workspace, d_out, d_h_n, d_c_n)``, the
    gradients None where not given. ``out`` and ``workspace`` must come from the forward with ``training=True``
    on the same inputs (their dtype is the computation's)."""
    for required, value in (("out", out), ("workspace", workspace)):
        if value is None:
            raise TypeError(f"{required} is required (from variant_forward with training=True), got None")
    out_arr, ws_arr = as_array("out", out), as_array("workspace", workspace)
    # The forward's dtype may have been set by its biases, which backward does not see; the saved arrays carry it.
    a = prepare_variant_forward(options, x, h0, c0, w_ih, w_hh, None, None, w_hr, w_ch, promote_with=(out_arr, ws_arr))
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
        check_shape(name, arr, shape, meaning)
        if arr.dtype != a.dtype:
            raise TypeError(f"{name} has dtype {arr.dtype} but the computation runs in {a.dtype}: pass the arrays "
                            "variant_forward returned with training=True")
        saved[name] = c_aligned(np.ascontiguousarray(arr))
    grads = {}
    for name, value, shape in (("d_out", d_out, (T, B, R)), ("d_h_n", d_h_n, (B, R)), ("d_c_n", d_c_n, (B, H))):
        if value is None:
            grads[name] = None
            continue
        arr = as_array(name, value)
        check_shape(name, arr, shape, "(the shape of the matching forward result)")
        grads[name] = cast(name, arr, a.dtype)
    return a, saved["out"], saved["workspace"], grads["d_out"], grads["d_h_n"], grads["d_c_n"]
