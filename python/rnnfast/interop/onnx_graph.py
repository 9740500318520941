"""ONNX: :func:`from_onnx` reads the ``RNN``, ``LSTM`` and ``GRU`` nodes of a graph (and ONNX Runtime's
``DynamicQuantizeLSTM``, into an int8 LSTM); :mod:`.onnx_export` writes them. onnx is imported only inside the
functions."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from typing import Any, Optional, Union

import numpy as np

from .._quantized import SCALE_SUFFIX
from .._rnn_base import parameter_name
from ._conversion import SUPPORTED_DTYPES, Model, build_layer, gates_to_rnnfast, import_optional, permute_gates
from ._onnx_plumbing import PLUMBING, Axes, Graph, follow_connectors, normal_axes
from ._onnx_variants import attribute_float, peepholes_to_rnnfast, read_activations
from ._onnx_ops import GATES, MS_DOMAIN, ONNX_ATTRIBUTES, ONNX_GATES, ONNX_OPS, QUANTIZED_LSTM
from ._variant import DIRECTIONS, LayerVariant

__all__ = ["from_onnx"]

def _is_recurrent(node) -> bool:
    """Whether ``node`` is one that :func:`from_onnx` converts."""
    if node.op_type in ONNX_OPS:
        return node.domain in ("", "ai.onnx")
    return node.op_type == QUANTIZED_LSTM and node.domain == MS_DOMAIN


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
    quantized = op == QUANTIZED_LSTM
    if quantized:
        op = "LSTM"   # the same attributes (but layout), activations and optional inputs
    attrs = g.attrs(node)
    unknown = sorted(set(attrs) - ONNX_ATTRIBUTES[node.op_type])
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

    G = GATES[family]
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
    perm = gates_to_rnnfast(family, ONNX_GATES[family])
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

    Notes
    -----
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
