"""ONNX: :func:`from_onnx` reads the ``RNN``, ``LSTM`` and ``GRU`` nodes of a graph (and ONNX Runtime's
``DynamicQuantizeLSTM``, into an int8 LSTM), :func:`to_onnx` writes an rnnfast layer as one node per layer.
onnx is imported only inside the functions."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from typing import Any, Optional, Union

import numpy as np

from .._quantized import SCALE_SUFFIX
from .._rnn_base import parameter_name
from ._conversion import (SUPPORTED_DTYPES, Model, build_layer, check_model, gates_from_rnnfast, gates_to_rnnfast,
                          import_optional, permute_gates)
from ._onnx_plumbing import PLUMBING, Axes, Graph, follow_connectors, normal_axes
from ._onnx_variants import (activation_attributes, attribute_float, peepholes_to_onnx, peepholes_to_rnnfast,
                             read_activations)
from ._variant import DIRECTIONS, LayerVariant, family_of

__all__ = ["from_onnx", "to_onnx"]

# The gate count of each cell family.
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# ONNX's gate order per cell family, in rnnfast's gate names (ONNX calls the LSTM's g 'c' and the
# GRU's n 'h'): LSTM i, o, f, c; GRU z, r, h.
_ONNX_GATES = {"rnn": ("h",), "lstm": ("i", "o", "f", "g"), "gru": ("z", "r", "n")}

# The ONNX operator of each cell family, and the set of them.
_ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_ONNX_OPS = set(_ONNX_OP.values())
_ONNX_ATTRIBUTES = {
    "RNN": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "output_sequence"},
    "LSTM": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
             "input_forget", "output_sequence"},
    "GRU": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "linear_before_reset", "output_sequence"},
}

# ONNX Runtime's contrib operator for an LSTM with int8 (or uint8) weights, which its quantize_dynamic
# writes for every LSTM node: the LSTM's inputs (W and R quantized and transposed to (D, K, 4*H)), then
# W_scale, W_zero_point, R_scale, R_zero_point ((D,) per tensor or (D, 4*H) per output row); the
# activations are quantized by the operator at run time. It has the LSTM's attributes except layout
# (always 0). ONNX itself has no quantized recurrent operator; ONNX Runtime none for the GRU or the RNN.
_QUANTIZED_LSTM = "DynamicQuantizeLSTM"
_MS_DOMAIN = "com.microsoft"
_ONNX_ATTRIBUTES[_QUANTIZED_LSTM] = _ONNX_ATTRIBUTES["LSTM"] - {"layout"}


def _is_recurrent(node) -> bool:
    """Whether ``node`` is one that :func:`from_onnx` converts."""
    if node.op_type in _ONNX_OPS:
        return node.domain in ("", "ai.onnx")
    return node.op_type == _QUANTIZED_LSTM and node.domain == _MS_DOMAIN


@dataclass
class _OnnxLayer:
    """One recurrent ONNX node read into rnnfast's terms."""

    node: Any
    key: str
    variant: LayerVariant
    D: int
    H: int
    I: int
    layout: int
    bias: bool
    dtype: np.dtype
    params: list            # per direction (variant.directions): (w_ih, w_hh, b_ih or None, b_hh or None,
    #                         w_ch or None) in rnnfast's gate order
    sequence_lens: str      # '' or the name of the tensor giving the lengths
    weight_dtype: str       # dtype's name, or 'int8' (DynamicQuantizeLSTM)
    scales: Optional[list] = None   # int8: per direction (w_ih's, w_hh's row scales), rnnfast's gate order

    def x_axes(self) -> Axes:
        T, B, I = (("T", None),), (("B", None),), (("I", self.I),)
        return (B, T, I) if self.layout else (T, B, I)

    def y_axes(self) -> Axes:
        T, B, D, H = (("T", None),), (("B", None),), (("D", self.D),), (("H", self.H),)
        return (B, T, D, H) if self.layout else (T, D, B, H)


def _onnx_layer(g: Graph, node, key: str) -> _OnnxLayer:
    """Read one RNN/LSTM/GRU (or DynamicQuantizeLSTM) node, or raise naming what does not map exactly."""
    op = node.op_type
    where = f"ONNX {op} node {key!r}"
    quantized = op == _QUANTIZED_LSTM
    if quantized:
        op = "LSTM"   # the same attributes (but layout), activations and optional inputs
    attrs = g.attrs(node)
    unknown = sorted(set(attrs) - _ONNX_ATTRIBUTES[node.op_type])
    if unknown:
        raise NotImplementedError(f"{where} has the attribute(s) {unknown}, which rnnfast does not implement")
    family = op.lower()
    variant = _onnx_variant(where, family, attrs)
    if quantized and not variant.is_pytorch:
        raise NotImplementedError(
            f"{where} is a DynamicQuantizeLSTM with {_variant_attributes(variant)}: rnnfast's int8 LSTM is "
            "PyTorch's cell; convert the float model and run it in float")
    D = variant.num_directions
    direction = variant.direction
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{where} has an invalid layout={layout} (attribute 'layout')")

    G = _GATES[family]
    inputs = list(node.input) + [""] * (12 - len(node.input))
    scales = None
    if quantized:
        W, R, scales = _quantized_weights(g, where, inputs, D)
    else:
        consts = {}
        for idx, label in ((1, "W"), (2, "R")):
            value = g.const(inputs[idx])
            if value is None:
                raise ValueError(f"{where}: its input {label} ({inputs[idx]!r}) is not a constant of the graph; "
                                 "rnnfast needs the weights at conversion time")
            consts[label] = value
        W, R = consts["W"], consts["R"]
    B = None
    if inputs[3]:
        B = g.const(inputs[3])
        if B is None:
            raise ValueError(f"{where}: its input B ({inputs[3]!r}) is not a constant of the graph; rnnfast needs "
                             "the biases at conversion time")
    dtype = np.dtype(np.float32) if quantized else np.dtype(W.dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{where} has weights W of dtype {dtype}; rnnfast computes in float32 or float64")
    if W.ndim != 3 or R.ndim != 3:
        raise ValueError(f"{where}: W must be 3-D (D, G*H, I) and R 3-D (D, G*H, H); got {W.shape} and {R.shape}")
    H = int(R.shape[-1])
    if "hidden_size" in attrs and int(attrs["hidden_size"]) != H:
        raise ValueError(f"{where}: hidden_size={attrs['hidden_size']} but R has shape {R.shape}")
    I = int(W.shape[-1])
    if W.shape != (D, G * H, I) or R.shape != (D, G * H, H):
        raise ValueError(f"{where}: expected W (D, G*H, I) = {(D, G * H, I)} and R (D, G*H, H) = {(D, G * H, H)} "
                         f"for direction={direction!r}, G={G}; got W {W.shape} and R {R.shape}")
    if B is not None and B.shape != (D, 2 * G * H):
        raise ValueError(f"{where}: expected B (D, 2*G*H) = {(D, 2 * G * H)}, got {B.shape}")
    if quantized and B is not None and B.dtype != dtype:
        raise TypeError(f"{where}: B must be float32 (the operator computes in float32), got {B.dtype}")
    if not quantized and (R.dtype != dtype or (B is not None and B.dtype != dtype)):
        raise TypeError(f"{where}: W, R and B must have the same dtype; got {W.dtype}, {R.dtype}"
                        + ("" if B is None else f", {B.dtype}"))

    P = None
    if op == "LSTM" and inputs[7]:
        P = g.const(inputs[7])
        if P is None:
            raise ValueError(f"{where}: its input P ({inputs[7]!r}) is not a constant of the graph; rnnfast needs "
                             "the peephole weights at conversion time")
        if P.shape != (D, 3 * H) or P.dtype != dtype:
            raise ValueError(f"{where}: expected P (D, 3*H) = {(D, 3 * H)} of dtype {dtype}, got {P.shape} "
                             f"{P.dtype}")
        if not np.any(P):
            P = None   # zero peepholes add nothing: PyTorch's cell computes the same (on the fast path)
        elif quantized:
            raise NotImplementedError(f"{where} is a DynamicQuantizeLSTM with peephole weights (input P "
                                      f"{inputs[7]!r}): rnnfast's int8 LSTM is PyTorch's cell")
        else:
            variant = replace(variant, peepholes=True)
    for idx, label in ((5, "initial_h"), (6, "initial_c")):
        if idx == 6 and op != "LSTM":
            continue
        value = g.const(inputs[idx]) if inputs[idx] else None
        if value is not None and np.any(value):
            raise NotImplementedError(
                f"{where}: its input {label} ({inputs[idx]!r}) is a non-zero constant of the graph; rnnfast "
                "layers take the initial state per call (pass it as state=), so the converted model would start "
                "from zeros instead"
            )
    seq = inputs[4]
    if seq:
        lens = g.const(seq)
        if lens is not None:
            T = g.shapes.get(inputs[0], (None, None))[1 if layout else 0] if inputs[0] in g.shapes else None
            if not (T and lens.size and np.all(lens == T)):
                raise NotImplementedError(
                    f"{where}: its input sequence_lens ({seq!r}) is a constant of the graph; rnnfast takes the "
                    "lengths per call (pass them as lengths=)"
                )
            seq = ""   # constant full lengths: the same as none

    params = []
    perm = gates_to_rnnfast(family, _ONNX_GATES[family])
    for d in range(D):
        b_ih = b_hh = None
        if B is not None:
            b_ih, b_hh = permute_gates(B[d, :G * H], perm), permute_gates(B[d, G * H:], perm)
        w_ch = peepholes_to_rnnfast(P[d]) if P is not None else None
        params.append((permute_gates(W[d], perm), permute_gates(R[d], perm), b_ih, b_hh, w_ch))
    if scales is not None:
        scales = [(permute_gates(scales[0][d], perm), permute_gates(scales[1][d], perm)) for d in range(D)]
    return _OnnxLayer(node, key, variant, D, H, I, layout, B is not None, dtype, params, seq,
                      "int8" if quantized else dtype.name, scales)


def _onnx_variant(where: str, family: str, attrs: dict) -> LayerVariant:
    """The cell variant a node's attributes give (peepholes aside, which its input P gives), or raise naming
    the attribute rnnfast cannot take."""
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction not in DIRECTIONS:
        raise ValueError(f"{where} has an invalid direction {direction!r} (attribute 'direction')")
    D = len(DIRECTIONS[direction])
    acts = read_activations(where, family, attrs, D)
    clip = None
    if "clip" in attrs:
        clip = attribute_float(attrs["clip"])
        if not clip > 0:
            raise ValueError(f"{where} has clip={attrs['clip']}; it must be positive (attribute 'clip')")
        if clip >= float(np.finfo(np.float32).max):
            clip = None   # no bound: ONNX Runtime's default is FLT_MAX, which some exporters write
    flags = {}
    for name, attr, default in (("input_forget", "input_forget", 0), ("reset_after", "linear_before_reset", 0)):
        value = int(attrs.get(attr, default))
        if value not in (0, 1):
            raise ValueError(f"{where} has {attr}={value}; it must be 0 or 1 (attribute {attr!r})")
        flags[name] = bool(value)
    return LayerVariant(family, acts, direction, clip=clip,
                        input_forget=flags["input_forget"] if family == "lstm" else False,
                        reset_after=flags["reset_after"] if family == "gru" else True)


def _variant_attributes(variant: LayerVariant) -> str:
    """The options of ``variant`` that differ from PyTorch's cell, for messages."""
    parts = [f"{k}={v!r}" for k, v in variant.non_default_options().items()]
    if not variant.default_activations:
        parts.append(f"activations={[list(per) for per in variant.activations]}")
    if variant.direction == "reverse":
        parts.append("direction='reverse'")
    return ", ".join(parts) or "PyTorch's cell"


def _quantized_weights(g: Graph, where: str, inputs: list, D: int) -> tuple:
    """W (D, 4*H, I) and R (D, 4*H, H) int8 in ONNX's gate order (rows as the LSTM's W and R), and their row
    scales ((D, 4*H), (D, 4*H)) float32 of a DynamicQuantizeLSTM node, whose inputs are ``inputs``; or raise
    naming what an rnnfast int8 layer cannot hold exactly: its weights are int8 in [-127, 127] with zero
    point 0 and one float32 scale per output row (a per-tensor scale is that scale on every row)."""
    consts = {}
    for idx, label in ((1, "W"), (2, "R"), (8, "W_scale"), (9, "W_zero_point"), (10, "R_scale"),
                       (11, "R_zero_point")):
        if not inputs[idx]:
            raise ValueError(f"{where} has no input {label} (input {idx}), which the operator requires")
        value = g.const(inputs[idx])
        if value is None:
            raise ValueError(f"{where}: its input {label} ({inputs[idx]!r}) is not a constant of the graph; "
                             "rnnfast needs the quantized weights, scales and zero points at conversion time")
        consts[label] = value
    W, R = consts["W"], consts["R"]
    if W.ndim != 3 or R.ndim != 3:
        raise ValueError(f"{where}: W must be 3-D (D, I, 4*H) and R 3-D (D, H, 4*H); got {W.shape} and {R.shape}")
    H = int(R.shape[1])
    if W.shape[0] != D or W.shape[2] != 4 * H or R.shape != (D, H, 4 * H):
        raise ValueError(f"{where}: expected W (D, I, 4*H) and R (D, H, 4*H) with D = {D} and H = {H}; got W "
                         f"{W.shape} and R {R.shape}")
    rows = []
    for label, w in (("W", W), ("R", R)):
        name = inputs[1 if label == "W" else 2]
        if w.dtype == np.uint8:
            raise NotImplementedError(
                f"{where}: its input {label} ({name!r}) holds uint8 weights, with a zero point: rnnfast's int8 "
                "weights are signed and symmetric (zero point 0), so they cannot be kept exactly. Quantize with "
                "int8 weights (onnxruntime's quantize_dynamic writes them for LSTMs), or convert the float model "
                "and quantize it with rnnfast.quantize(model, 'int8')"
            )
        if w.dtype != np.int8:
            raise TypeError(f"{where}: its input {label} ({name!r}) has dtype {w.dtype}; the operator takes int8 "
                            "(or uint8) weights")
        scale, zero = consts[label + "_scale"], consts[label + "_zero_point"]
        scale_name, zero_name = inputs[8 if label == "W" else 10], inputs[9 if label == "W" else 11]
        if scale.dtype != np.float32:
            raise TypeError(f"{where}: its input {label}_scale ({scale_name!r}) has dtype {scale.dtype}, expected "
                            "float32")
        if scale.shape not in ((D,), (D, 4 * H)):
            raise ValueError(f"{where}: its input {label}_scale ({scale_name!r}) has shape {scale.shape}; expected "
                             f"(D,) = {(D,)} (per tensor) or (D, 4*H) = {(D, 4 * H)} (per output row)")
        if zero.shape != scale.shape or zero.dtype != w.dtype:
            raise ValueError(f"{where}: its input {label}_zero_point ({zero_name!r}) must have the shape of "
                             f"{label}_scale {scale.shape} and the dtype of {label} ({w.dtype}); got {zero.shape} "
                             f"{zero.dtype}")
        if np.any(zero != 0):
            raise NotImplementedError(
                f"{where}: its input {label}_zero_point ({zero_name!r}) holds non-zero zero points "
                f"({int(np.count_nonzero(zero))} of {zero.size}): rnnfast's int8 weights are symmetric, with zero "
                "point 0, so they cannot be kept exactly (onnxruntime's quantize_dynamic writes zeros unless "
                "asked for asymmetric weights with WeightSymmetric=False)"
            )
        bad = ~(np.isfinite(scale) & (scale >= 0))
        if bad.any():
            raise ValueError(f"{where}: its input {label}_scale ({scale_name!r}) holds {float(scale[bad].ravel()[0])}; "
                             "scales must be finite and non-negative")
        if w.size and int(w.min()) == -128:
            raise NotImplementedError(
                f"{where}: its input {label} ({name!r}) holds -128: rnnfast's int8 weights are symmetric, in "
                "[-127, 127] (as onnxruntime's symmetric int8 quantization writes them), so they cannot be kept "
                "exactly"
            )
        rows.append(np.ascontiguousarray(np.broadcast_to(scale.reshape(D, -1), (D, 4 * H)), dtype=np.float32))
    return W.transpose(0, 2, 1), R.transpose(0, 2, 1), tuple(rows)


def _stack_params(layers: list) -> dict:
    params = {}
    bias = any(layer.bias for layer in layers)
    peepholes = any(layer.variant.peepholes for layer in layers)
    for k, layer in enumerate(layers):
        for i_d, (d, (w_ih, w_hh, b_ih, b_hh, w_ch)) in enumerate(zip(layer.variant.directions, layer.params)):
            for i, (base, w) in enumerate((("weight_ih", w_ih), ("weight_hh", w_hh))):
                params[parameter_name(base, k, d)] = w
                if layer.scales is not None:   # int8: each weight's row scales follow it
                    params[parameter_name(base, k, d) + SCALE_SUFFIX] = layer.scales[i_d][i]
            if bias:
                G_H = w_ih.shape[0]
                params[parameter_name("bias_ih", k, d)] = b_ih if b_ih is not None else np.zeros(G_H, layer.dtype)
                params[parameter_name("bias_hh", k, d)] = b_hh if b_hh is not None else np.zeros(G_H, layer.dtype)
            if peepholes:   # a node of the stack without P (or a zero P) has zero peepholes
                H = w_hh.shape[1]
                params[parameter_name("weight_ch", k, d)] = w_ch if w_ch is not None else np.zeros(3 * H, layer.dtype)
    return params


def _stack_variant(layers: list) -> LayerVariant:
    """The variant of a stack of nodes: the first node's, with peepholes where any node has them."""
    variant = layers[0].variant
    return replace(variant, peepholes=any(layer.variant.peepholes for layer in layers))


def _compatible(a: _OnnxLayer, b: _OnnxLayer) -> bool:
    """Whether node b can be the layer after node a in one rnnfast model."""
    return (replace(a.variant, peepholes=False) == replace(b.variant, peepholes=False) and a.D == b.D
            and a.H == b.H and a.layout == b.layout and a.dtype == b.dtype
            and a.weight_dtype == b.weight_dtype and a.sequence_lens == b.sequence_lens and b.I == a.D * a.H)


def _batch_first(g: Graph, first: _OnnxLayer, last: _OnnxLayer) -> bool:
    """Whether the stack should run batch-first: the node layout, unless the graph's plumbing shows that
    the data enters and leaves the stack in the other layout (as torch.onnx.export writes for batch_first
    modules: a Transpose before the first node and after the last)."""
    def major(axes: Axes) -> Optional[str]:
        n = normal_axes(axes)
        return n[0][0] if len(n) == 3 and len(n[0]) == 1 and n[0][0] in "TB" else None

    x = first.node.input[0]
    x_axes = first.x_axes()
    producer = g.producer.get(x)
    while producer is not None and producer.op_type in ("Transpose", "Identity") \
            and len(g.data_users(x)) == 1 and x not in g.outputs:
        if producer.op_type == "Transpose":
            perm = g.attrs(producer).get("perm", [2, 1, 0])
            if sorted(perm) != list(range(len(x_axes))):
                break
            inverse = np.argsort(perm)
            x_axes = tuple(x_axes[i] for i in inverse)
        x = producer.input[0]
        producer = g.producer.get(x)
    y = last.node.output[0] if last.node.output else ""
    y_axes = follow_connectors(g, y, last.y_axes())[-1][1] if y else last.y_axes()
    src, dst = major(x_axes), major(y_axes)
    if src is not None and src == dst:
        return src == "B"
    return bool(first.layout)


def from_onnx(path_or_model: Any) -> Union[Model, "dict[str, Model]"]:
    """Read the ``RNN``, ``LSTM`` and ``GRU`` nodes of an ONNX model into rnnfast layers, and ONNX Runtime's
    ``DynamicQuantizeLSTM`` nodes (domain ``com.microsoft``, what ``onnxruntime.quantization.quantize_dynamic``
    makes of an ``LSTM``) into int8 LSTMs.

    Parameters
    ----------
    path_or_model : str, os.PathLike, bytes or onnx.ModelProto
        An ONNX file (external data is read from beside it), its serialized bytes, or a loaded model.

    Returns
    -------
    model or dict of models
        If the graph's recurrent nodes form one plain stack (each node's output ``Y`` reaches the next
        node's input ``X`` only through layout operators, ``Transpose``/``Reshape``/``Squeeze``, as
        ``torch.onnx.export`` and :func:`to_onnx` write them, all with the same cell, direction, hidden
        size, ``sequence_lens`` and weight dtype), one rnnfast layer with ``num_layers`` = the number of
        nodes (a single node gives a one-layer model). Otherwise a dict of one-layer models keyed by node
        name (the first output's name where a node has none).

    The models follow rnnfast's conventions, not ONNX's output layout:

    - ONNX ``X`` (T, B, I) (``layout=0``) or (B, T, I) (``layout=1``, then ``batch_first=True``) is ``x``;
      a ``Transpose`` from batch-major data before the first node and back after the last (what
      torch.onnx.export writes for ``batch_first`` modules) also gives ``batch_first=True``;
    - ONNX ``Y`` (T, D, B, H) (or (B, T, D, H)) is ``out`` (T, B, D*H) (or (B, T, D*H)): the directions
      concatenated on the last axis, forward first;
    - ``initial_h``/``initial_c`` of node k, (D, B, H) (or (B, D, H)), are ``state[k*D:(k+1)*D]`` of the
      (L*D, B, H) state, and ``Y_h``/``Y_c`` likewise ``h_n``/``c_n``; inputs that are zeros (or absent)
      need no state at all;
    - ``sequence_lens`` (B,) is the ``lengths=`` argument of the call (the same semantics: outputs past a
      sequence's end are zero, the final state is the one at its last step).
    - Gate orders (LSTM i,o,f,c; GRU z,r,h) are converted to rnnfast's (i,f,g,o; r,z,n) and
      ``B`` = [Wb, Rb] split into ``bias_ih``/``bias_hh``; without ``B`` the model has ``bias=False``.

    The cell variants are the layer's options (see :class:`rnnfast.LSTM`):

    - GRU ``linear_before_reset`` 1 is ``reset_after=True`` (PyTorch's GRU), 0 (ONNX's default)
      ``reset_after=False``;
    - ``direction='reverse'`` is ``direction='reverse'`` (parameters suffixed ``_reverse``; the sequence
      reversed within each length, as ONNX's);
    - ``clip`` is ``clip`` (every gate pre-activation clamped), ``input_forget=1`` is ``input_forget=True``;
    - a non-zero peephole input ``P`` (D, 3*H), gates i, o, f, is ``peepholes=True`` with ``weight_ch_l{k}``
      (3*H,), gates i, f, o (an all-zero ``P`` adds nothing and gives PyTorch's cell);
    - ``activations`` (names case-insensitive, as ONNX Runtime reads them) with ``activation_alpha`` and
      ``activation_beta`` are the layer's ``activations`` per direction (the RNN's ``nonlinearity`` where
      both directions have the same),
      the values read as ONNX Runtime reads them: one per activation that takes it, in order
      (rnnfast.interop._onnx_variants). ONNX's float attributes are float32: ``clip`` and the activations'
      parameters are read as the shortest decimal of that float32 (0.3, not 0.30000001192092896).

    A ``DynamicQuantizeLSTM`` becomes an LSTM quantized to int8 (``weight_dtype='int8'``, as
    :func:`rnnfast.quantize` makes; float32 in and out) holding the node's own int8 weights and scales
    exactly: ``W`` (D, I, 4*H) and ``R`` (D, H, 4*H) are transposed to rows and put in rnnfast's gate order,
    ``W_scale``/``R_scale`` per output row ((D, 4*H), ``quantize_dynamic(per_channel=True)``) are the row
    scales, and a per-tensor scale ((D,), the default) is repeated on every row of its direction; ``B`` stays
    float32. Only symmetric int8 weights map exactly onto rnnfast's (values in [-127, 127], zero points 0,
    which ``quantize_dynamic`` writes, with or without ``reduce_range``); others are refused, not
    requantized. The operator quantizes the activations at run time itself, as rnnfast does (rnnfast per
    row, ONNX Runtime per tensor: the input sequence, then each step's hidden state), so the model's
    outputs agree with ONNX Runtime's within the quantization error, not bit for bit; the float model the
    file came from is reproduced at least as closely as by ONNX Runtime (tests/interop/test_onnx_quantized.py).
    A stack mixing quantized and float nodes becomes a dict of models.

    Operators other than the recurrent nodes and the layout plumbing around them are not converted;
    a UserWarning names them.

    Raises
    ------
    NotImplementedError
        Naming the attribute or input, for what rnnfast does not compute exactly: an activation
        rnnfast does not have; ``Affine``, ``ScaledTanh`` or ``ThresholdedRelu`` without their
        ``activation_alpha``/``activation_beta`` (ONNX Runtime's defaults, 0, are not the ONNX operators');
        more ``activation_alpha``/``activation_beta`` values than the activations take, or parameters
        with one direction's activations for a bidirectional node (both ambiguous); non-zero constant
        initial states, constant ``sequence_lens`` (unless they equal the static sequence length), unknown
        attributes; for a ``DynamicQuantizeLSTM``, what an int8 layer cannot hold exactly: uint8 weights,
        non-zero zero points, int8 weights holding -128, and any cell variant (rnnfast's int8 LSTM is
        PyTorch's cell).
    ValueError
        If the graph has no recurrent node, or weights, peepholes (or a ``DynamicQuantizeLSTM``'s scales and
        zero points) that are not constants or have wrong shapes, or negative or non-finite scales; for an
        invalid ``direction``, ``layout``, ``clip`` (not positive), ``linear_before_reset`` or
        ``input_forget`` (not 0 or 1), or a wrong number of ``activations``.
    TypeError
        For an argument of another type, or weights that are neither float32 nor float64 (int8 or uint8 for
        a ``DynamicQuantizeLSTM``, with float32 scales and biases).
    ImportError
        If the ``onnx`` package is not importable (``pip install 'rnnfast[onnx]'``).
    """
    onnx = import_optional("onnx", "rnnfast.from_onnx")
    if isinstance(path_or_model, (str, os.PathLike)):
        model = onnx.load(os.fspath(path_or_model))
    elif isinstance(path_or_model, (bytes, bytearray, memoryview)):
        model = onnx.load_from_string(bytes(path_or_model))
    elif isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
    else:
        raise TypeError("path_or_model must be a path, the bytes of an ONNX model or an onnx.ModelProto, got "
                        f"{type(path_or_model).__name__}")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape information only helps to recognise constant full-length sequence_lens
        pass
    g = Graph(onnx, model)

    nodes = [n for n in g.graph.node if _is_recurrent(n)]
    if not nodes:
        ops = sorted({n.op_type for n in g.graph.node})
        raise ValueError(f"the ONNX graph has no RNN, LSTM or GRU node, nor ONNX Runtime's DynamicQuantizeLSTM "
                         f"(domain com.microsoft) (its operators: {ops})")
    keys: list = []
    for i, n in enumerate(nodes):
        key = n.name or (n.output[0] if n.output and n.output[0] else f"{n.op_type}_{i}")
        while key in keys:
            key += f"_{i}"
        keys.append(key)
    layers = [_onnx_layer(g, n, k) for n, k in zip(nodes, keys)]

    other = sorted({n.op_type for n in g.graph.node if not _is_recurrent(n) and n.op_type not in PLUMBING})
    if other:
        warnings.warn(
            f"from_onnx converts the RNN, LSTM, GRU and DynamicQuantizeLSTM nodes only; the graph also computes "
            f"{other}, which the returned model does not include",
            UserWarning, stacklevel=2,
        )

    # Edges: node a's Y reaches node b's X through connector plumbing with the right axes.
    by_node = {id(layer.node): i for i, layer in enumerate(layers)}
    nxt: dict = {}
    prev: dict = {}
    for i, layer in enumerate(layers):
        y = layer.node.output[0] if layer.node.output else ""
        if not y:
            continue
        name, axes = follow_connectors(g, y, layer.y_axes())[-1]
        users = g.data_users(name)
        if name in g.outputs or len(users) != 1:
            continue
        user, idx = users[0]
        j = by_node.get(id(user))
        if j is None or idx != 0 or not _compatible(layer, layers[j]):
            continue
        if normal_axes(axes) != normal_axes(layers[j].x_axes()[:2] + ((("D", layer.D), ("H", layer.H)),)):
            continue
        nxt[i], prev[j] = j, i
    heads = [i for i in range(len(layers)) if i not in prev]
    if len(heads) == 1:
        chain = [heads[0]]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        if len(chain) == len(layers):
            stack = [layers[i] for i in chain]
            first = stack[0]
            return _build(g, stack)
    return {layer.key: _build(g, [layer]) for layer in layers}


def _build(g: Graph, stack: list) -> Model:
    """The rnnfast model of a stack of compatible nodes (one node: a one-layer model)."""
    first = stack[0]
    return build_layer(_stack_variant(stack), first.I, first.H, len(stack), bias=any(s.bias for s in stack),
                       batch_first=_batch_first(g, first, stack[-1]), dtype=first.dtype, params=_stack_params(stack),
                       weight_dtype="int8" if first.weight_dtype == "int8" else None)


def to_onnx(model: Model, path: Optional[Union[str, os.PathLike]] = None, *, opset: int = 14,
            initial_state: bool = True, lengths: bool = False) -> Any:
    """Write an rnnfast layer as a standard ONNX model: one ``RNN``/``LSTM``/``GRU`` node per layer (for an
    LSTM quantized to int8, ONNX Runtime's ``DynamicQuantizeLSTM``).

    The graph computes what ``model(x, state)`` computes (inference: no dropout), with rnnfast's layouts:

    - inputs ``x`` (T, B, I) (or (B, T, I) with ``batch_first``), and unless ``initial_state=False``,
      ``h0`` (and for the LSTM ``c0``) (L*D, B, H); with ``lengths=True`` also ``lengths`` (B,) int32,
      the ONNX ``sequence_lens`` of every node (PyTorch's packed-sequence semantics);
    - outputs ``out`` (T, B, D*H) (or (B, T, D*H)), ``h_n`` (and ``c_n``) (L*D, B, H).

    T and B are symbolic ('seq_len', 'batch'). Gates are reordered to ONNX's (LSTM i,o,f,c; GRU z,r,h), the
    biases concatenated into ``B`` = [Wb, Rb] (omitted without bias), the GRU written with
    ``linear_before_reset`` 1 (``reset_after=True``, PyTorch's) or 0. The cell variants ONNX expresses are
    written as its attributes (``direction='reverse'``, ``clip``, ``input_forget``, peepholes as ``P`` (D,
    3*H) in ONNX's gate order i, o, f, and ``activations`` per direction with every ``activation_alpha``
    and ``activation_beta`` value written, one per activation that takes it, in order); a layer with
    ``proj_size`` or an activation ONNX lacks (selu, exponential, silu, relu6) is refused. Between layers
    and at the end, ``Squeeze`` (D=1) or ``Transpose`` + ``Reshape``
    (D=2) turn ONNX's (T, D, B, H) into (T, B, D*H); :func:`from_onnx` reads the file back as one model (the
    same, but that peephole weights that are all zero read back as no peepholes). ONNX's float attributes are
    float32: ``clip`` and the activations' alpha and beta are rounded to float32 in the file.
    Nodes use ``layout=0`` (what ONNX Runtime supports), with a ``Transpose`` for ``batch_first``. A
    float64 model gives a float64 graph (valid ONNX; ONNX Runtime's CPU kernels run float32 only).

    An LSTM quantized to int8 (:func:`rnnfast.quantize`) is written with ONNX Runtime's contrib operator
    ``DynamicQuantizeLSTM`` (domain ``com.microsoft`` version 1, also imported by the model), which ONNX
    Runtime runs and onnx's checker accepts (other runtimes may not know it): its int8 weights and row
    scales exactly, ``W`` (D, I, 4*H) and ``R`` (D, H, 4*H) in ONNX's gate order, per-row ``W_scale`` and
    ``R_scale`` (D, 4*H) float32, zero points 0 (int8), ``B`` float32 as above. ONNX Runtime quantizes the
    activations itself, per tensor where rnnfast quantizes per row, so its outputs agree with the model's
    within the quantization error, not bit for bit (in the tests rnnfast's are as close to the float model
    as ONNX Runtime's, or closer); :func:`from_onnx` reads the file back as the same int8 model, bit for bit.

    Nothing else quantized is written: ONNX has no quantized recurrent operator and ONNX Runtime none for
    the GRU or the RNN, and ONNX's bfloat16 RNN/LSTM/GRU (opset 22) compute in bfloat16 throughout (biases,
    states and outputs rounded at every step, where rnnfast's bf16 keeps them float32), which ONNX Runtime
    does not run. A float graph would compute something else than the model, so these raise a ValueError;
    export the float model instead.

    Parameters
    ----------
    model : rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU
        A float32 or float64 layer, or an LSTM quantized to int8.
    path : str or os.PathLike, optional
        Where to save the model; if None, it is only returned.
    opset : int, default 14
        The ai.onnx opset version, at least 14 and at most what the installed ``onnx`` knows.
    initial_state : bool, default True
        Whether the graph takes the initial states as inputs (else they are zeros).
    lengths : bool, default False
        Whether the graph takes per-sequence lengths.

    Returns
    -------
    onnx.ModelProto
        The model, checked with ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    TypeError
        If ``model`` is not an rnnfast layer, or ``opset`` not an int.
    ValueError
        If ``opset`` is out of range; for a GRU or RNN quantized to int8 or any layer quantized to bf16
        (above), the message naming why; for an LSTM with ``proj_size`` (ONNX's LSTM has no projection) or a
        layer with an activation ONNX's recurrent operators lack (selu, exponential, silu, relu6), naming
        the option.
    ImportError
        If the ``onnx`` package is not importable (``pip install 'rnnfast[onnx]'``).
    """
    model = check_model(model, quantized=True)
    family = family_of(model)
    variant = LayerVariant.of_layer(model)
    quantized = model.weight_dtype == "int8"
    if model.weight_dtype == "bf16":
        raise ValueError(
            f"to_onnx cannot write this {type(model).__name__} quantized to bf16: no ONNX or ONNX Runtime operator "
            "computes it. ONNX's bfloat16 RNN/LSTM/GRU (opset 22) compute in bfloat16 throughout (biases, states "
            "and outputs rounded to bfloat16 at every step, where rnnfast keeps them float32), and ONNX Runtime's "
            "CPU provider does not run them; a float32 graph would compute something else than this model. "
            "Export the float model it was made from (rnnfast.to_onnx(float_model)), or an int8 LSTM "
            "(written as ONNX Runtime's DynamicQuantizeLSTM)"
        )
    if quantized and family != "lstm":
        raise ValueError(
            f"to_onnx cannot write this {type(model).__name__} quantized to int8: ONNX has no quantized recurrent "
            "operator, and ONNX Runtime's contrib operators quantize only the LSTM (DynamicQuantizeLSTM; its "
            "quantize_dynamic leaves GRU and RNN nodes in float), so no runtime would compute it. Export the float "
            "model it was made from (rnnfast.to_onnx(float_model)); only an int8 LSTM is written quantized"
        )
    if variant.proj_size:
        raise ValueError(f"to_onnx cannot write this LSTM with proj_size={variant.proj_size}: ONNX's LSTM has no "
                         "projection of h (option 'proj_size')")
    # The node attributes of the variant (a ValueError names an activation ONNX does not have).
    node_attrs: dict = dict(direction=variant.direction)
    if family == "gru":
        node_attrs["linear_before_reset"] = 1 if variant.reset_after else 0
    if family == "rnn" or not variant.default_activations:
        try:
            node_attrs.update(activation_attributes(variant.activations))
        except ValueError as exc:
            raise ValueError(f"to_onnx cannot write this {type(model).__name__}: {exc}") from None
    if variant.clip is not None:
        node_attrs["clip"] = variant.clip
    if variant.input_forget:
        node_attrs["input_forget"] = 1
    onnx = import_optional("onnx", "rnnfast.to_onnx")
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int, got {type(opset).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not 14 <= int(opset) <= newest:
        raise ValueError(f"opset must be between 14 and {newest} (the newest the installed onnx knows), got {opset}")

    op = _QUANTIZED_LSTM if quantized else _ONNX_OP[family]
    L, D, H, I = model.num_layers, variant.num_directions, model.hidden_size, model.input_size
    directions = variant.directions
    elem = TensorProto.DOUBLE if model.dtype == np.float64 else TensorProto.FLOAT
    lstm, bf = family == "lstm", model.batch_first
    perm = gates_from_rnnfast(family, _ONNX_GATES[family])
    params = model.parameters()

    nodes: list = []
    inits: list = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    data_dims = ["batch", "seq_len", I] if bf else ["seq_len", "batch", I]
    inputs = [helper.make_tensor_value_info("x", elem, data_dims)]
    state_names = ["h0", "c0"] if lstm else ["h0"]
    if initial_state:
        inputs += [helper.make_tensor_value_info(s, elem, [L * D, "batch", H]) for s in state_names]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]))

    cur = "x"
    if bf:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_time_major"], name="x_to_time_major", perm=[1, 0, 2]))
        cur = "x_time_major"
    if D == 2:
        const("reshape_T_B_DH", np.array([0, 0, -1], dtype=np.int64))
    else:
        const("squeeze_axis_1", np.array([1], dtype=np.int64))
    if initial_state and L > 1:
        const("axis_0", np.array([0], dtype=np.int64))
        for k in range(L + 1):
            const(f"index_{k * D}", np.array([k * D], dtype=np.int64))

    final_states: list = [[] for _ in state_names]

    def weights(base: str, k: int, suffix: str = "") -> np.ndarray:
        return np.stack([permute_gates(params[parameter_name(base, k, d) + suffix], perm) for d in directions])

    for k in range(L):
        W, R = weights("weight_ih", k), weights("weight_hh", k)
        if quantized:   # DynamicQuantizeLSTM's W (D, I, 4*H) and R (D, H, 4*H)
            W, R = W.transpose(0, 2, 1), R.transpose(0, 2, 1)
        node_in = [cur, const(f"W_l{k}", W), const(f"R_l{k}", R), ""]
        if model.bias:
            B = np.stack([np.concatenate([permute_gates(params[parameter_name("bias_ih", k, d)], perm),
                                          permute_gates(params[parameter_name("bias_hh", k, d)], perm)])
                          for d in directions])
            node_in[3] = const(f"B_l{k}", B)
        node_in.append("lengths" if lengths else "")
        for s in state_names:
            if not initial_state:
                node_in.append("")
            elif L == 1:
                node_in.append(s)
            else:
                nodes.append(helper.make_node("Slice", [s, f"index_{k * D}", f"index_{(k + 1) * D}", "axis_0"],
                                              [f"{s}_l{k}"], name=f"{s}_l{k}_slice"))
                node_in.append(f"{s}_l{k}")
        if variant.peepholes:   # input 7: P (D, 3*H), gates i, o, f
            node_in += [""] * (7 - len(node_in))
            node_in.append(const(f"P_l{k}", np.stack([peepholes_to_onnx(params[parameter_name("weight_ch", k, d)])
                                                      for d in directions])))
        if quantized:
            # per-output-row scales, exactly the model's, with zero points 0
            node_in += [""] * (8 - len(node_in))
            for w, base in (("W", "weight_ih"), ("R", "weight_hh")):
                node_in.append(const(f"{w}_scale_l{k}", weights(base, k, SCALE_SUFFIX)))
                node_in.append(const(f"{w}_zero_point_l{k}", np.zeros((D, 4 * H), dtype=np.int8)))
        while node_in and node_in[-1] == "":
            node_in.pop()
        outs = [f"Y_l{k}"] + [f"{s.replace('0', '_n')}_l{k}" if L > 1 else s.replace("0", "_n") for s in state_names]
        for i, o in enumerate(outs[1:]):
            final_states[i].append(o)
        attrs: dict = dict(hidden_size=H, **node_attrs)
        if quantized:
            attrs["domain"] = _MS_DOMAIN
        nodes.append(helper.make_node(op, node_in, outs, name=f"{_ONNX_OP[family].lower()}_l{k}", **attrs))
        last = k == L - 1
        nxt = ("out" if not bf else "out_time_major") if last else f"x_l{k + 1}"
        if D == 2:
            nodes.append(helper.make_node("Transpose", [f"Y_l{k}"], [f"Y_l{k}_T_B_D_H"], name=f"Y_l{k}_transpose",
                                          perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Reshape", [f"Y_l{k}_T_B_D_H", "reshape_T_B_DH"], [nxt],
                                          name=f"Y_l{k}_reshape"))
        else:
            nodes.append(helper.make_node("Squeeze", [f"Y_l{k}", "squeeze_axis_1"], [nxt], name=f"Y_l{k}_squeeze"))
        cur = nxt
    if bf:
        nodes.append(helper.make_node("Transpose", [cur], ["out"], name="out_to_batch_first", perm=[1, 0, 2]))
    if L > 1:
        for s, finals in zip(state_names, final_states):
            final = s.replace("0", "_n")
            nodes.append(helper.make_node("Concat", finals, [final], name=f"{final}_concat", axis=0))

    out_dims = ["batch", "seq_len", D * H] if bf else ["seq_len", "batch", D * H]
    outputs = [helper.make_tensor_value_info("out", elem, out_dims)]
    outputs += [helper.make_tensor_value_info(s.replace("0", "_n"), elem, [L * D, "batch", H]) for s in state_names]
    graph = helper.make_graph(nodes, f"rnnfast_{family}", inputs, outputs, inits)
    from rnnfast import __version__

    opsets = [helper.make_opsetid("", int(opset))]
    if quantized:
        opsets.append(helper.make_opsetid(_MS_DOMAIN, 1))
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="rnnfast", producer_version=__version__,
                              doc_string=f"rnnfast {model!r}")
    proto.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto
