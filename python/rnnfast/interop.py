"""Bring recurrent models in from PyTorch, ONNX and Keras, and send them out to PyTorch and ONNX.

Every converter is exact or refuses: a model that rnnfast cannot compute with the same numbers (up to
floating-point round-off) raises an error naming the attribute or option that does not map, never a
silent approximation. The frameworks are imported only inside these functions, so ``import rnnfast``
needs none of them.

- :func:`from_torch` / :func:`to_torch`: ``torch.nn.RNN``, ``LSTM``, ``GRU`` <-> :class:`rnnfast.RNN`,
  :class:`rnnfast.LSTM`, :class:`rnnfast.GRU` (the same parameter names, shapes and gate order).
- :func:`from_onnx`: the ``RNN``, ``LSTM`` and ``GRU`` nodes of an ONNX graph.
- :func:`to_onnx`: an ONNX model of one node per layer (opset 14 or newer) that ONNX Runtime runs.
- :func:`from_keras`: Keras 3 ``SimpleRNN``, ``LSTM``, ``GRU`` (``reset_after=True``), ``RNN`` around one
  of their cells, and ``Bidirectional`` around any of them (``merge_mode='concat'``).

Gate orders and bias layouts (DESIGN.md section 4), G the gate count, H the hidden size, D the number of
directions:

======== ================ ============== =================================================
source   LSTM gates        GRU gates      weights and biases
======== ================ ============== =================================================
rnnfast  i, f, g, o        r, z, n        w_ih (G*H, I), w_hh (G*H, H), b_ih, b_hh (G*H,)
ONNX     i, o, f, c        z, r, h        W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb]
Keras 3  i, f, c, o        z, r, h        kernel (I, G*H), recurrent_kernel (H, G*H), bias
======== ================ ============== =================================================

The returned models follow rnnfast's conventions (DESIGN.md section 2): ``out`` is (T, B, D*H) (or
(B, T, D*H) with ``batch_first``) with the directions concatenated, states are (L*D, B, H).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from ._rnn_base import RNNBase
from .layers import GRU, LSTM, RNN

__all__ = ["from_torch", "to_torch", "from_onnx", "to_onnx", "from_keras"]

#: A recurrent model of rnnfast.
Model = Union[RNN, LSTM, GRU]

_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
_CLASSES = {"rnn_tanh": RNN, "rnn_relu": RNN, "lstm": LSTM, "gru": GRU}
_SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Gate permutations: rnnfast's (PyTorch's) gate block j is the source's gate block perm[j].
_ONNX_TO_RNNFAST = {"lstm": (0, 2, 3, 1), "gru": (1, 0, 2), "rnn": (0,)}   # ONNX i,o,f,c / z,r,h
_RNNFAST_TO_ONNX = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
_KERAS_TO_RNNFAST = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "rnn": (0,)}  # Keras i,f,c,o / z,r,h


def _family(cell: str) -> str:
    """'rnn' for both vanilla RNN cells, else the cell name."""
    return "rnn" if cell.startswith("rnn_") else cell


def _permute_gates(a: np.ndarray, perm: tuple) -> np.ndarray:
    """Reorder the len(perm) equal gate blocks along axis 0 of ``a``: block j of the result is block perm[j]."""
    if len(perm) == 1:
        return np.array(a, copy=True)
    blocks = np.split(np.asarray(a), len(perm), axis=0)
    return np.concatenate([blocks[p] for p in perm], axis=0)


def _param_name(base: str, layer: int, direction: int) -> str:
    return f"{base}_l{layer}" + ("_reverse" if direction == 1 else "")


def _build(cell: str, input_size: int, hidden_size: int, num_layers: int, *, bias: bool, batch_first: bool,
           bidirectional: bool, dtype: np.dtype, params: dict, dropout: float = 0.0) -> Model:
    """An rnnfast layer of the given configuration loaded with ``params`` (rnnfast names, shapes, gate order)."""
    kwargs: dict = dict(bias=bias, batch_first=batch_first, bidirectional=bidirectional, dropout=dropout,
                        dtype=dtype)
    if _family(cell) == "rnn":
        kwargs["nonlinearity"] = cell[4:]
    with warnings.catch_warnings():
        # The dropout-with-one-layer warning is about training the source model, not about this conversion.
        warnings.simplefilter("ignore", UserWarning)
        model = _CLASSES[cell](input_size, hidden_size, num_layers, **kwargs)
    model.load_state_dict(params)
    return model


def _check_model(model: Any, argument: str = "model") -> RNNBase:
    if not isinstance(model, RNNBase):
        raise TypeError(
            f"{argument} must be an rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU, got {type(model).__name__}"
        )
    return model


def _import(name: str, purpose: str):
    """Import an optional framework, or raise an ImportError that says how to install it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        hint = {
            "torch": "pip install torch",
            "onnx": "pip install 'rnnfast[onnx]'",
            "keras": "pip install keras (with a backend: torch, jax or tensorflow)",
        }[name]
        raise ImportError(f"{purpose} needs the optional package '{name}', which is not importable ({e}); "
                          f"install it with: {hint}") from e


# ====================================================================================================
# PyTorch
# ====================================================================================================

def from_torch(module: Any) -> Model:
    """Convert a ``torch.nn.RNN``, ``torch.nn.LSTM`` or ``torch.nn.GRU`` into the rnnfast layer of the same class.

    Every option rnnfast implements carries over: ``input_size``, ``hidden_size``, ``num_layers``,
    ``nonlinearity`` ('tanh' or 'relu'), ``bias``, ``batch_first``, ``bidirectional`` and ``dropout`` (which
    acts only in training). The parameters are copied (``weight_ih_l{k}`` (G*H, I_k), ``weight_hh_l{k}``
    (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), suffix ``_reverse``): the names, shapes and gate
    orders are the same in both. Parametrized weights (``torch.nn.utils.parametrize``) are read as the
    module computes them. The dtype (float32 or float64) is the module's.

    ``model(x, state)`` then gives what ``module(x, state)`` gives in eval mode: ``out`` (T, B, D*H) or
    (B, T, D*H) with ``batch_first``, and ``h_n`` (or ``(h_n, c_n)``) (L*D, B, H).

    Raises
    ------
    TypeError
        If ``module`` is not one of the three classes, is a subclass that overrides ``forward``, or has
        parameters that are neither float32 nor float64 (or of mixed dtypes).
    NotImplementedError
        For an LSTM with ``proj_size`` > 0 (rnnfast has no projection).
    ImportError
        If torch is not importable.
    """
    torch = _import("torch", "rnnfast.from_torch")
    if not isinstance(module, torch.nn.RNNBase):
        raise TypeError(f"module must be a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got {type(module).__name__}")
    mode = getattr(module, "mode", None)
    cells = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}
    if mode not in cells:
        raise TypeError(f"module has mode {mode!r}; rnnfast converts the modes {sorted(cells)}")
    cell = cells[mode]
    base = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    if not isinstance(module, base) or type(module).forward is not base.forward:
        raise TypeError(
            f"module is a {type(module).__name__}, which is not torch.nn.{base.__name__} or overrides its "
            "forward; only the computation of the torch class itself converts exactly"
        )
    proj_size = int(getattr(module, "proj_size", 0) or 0)
    if proj_size > 0:
        raise NotImplementedError(f"module has proj_size={proj_size}: rnnfast's LSTM has no projection of h")

    H, L, D = module.hidden_size, module.num_layers, 2 if module.bidirectional else 1
    bases = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if module.bias else ("weight_ih", "weight_hh")
    names = [_param_name(base_name, k, d) for k in range(L) for d in range(D) for base_name in bases]
    tensors = {n: getattr(module, n) for n in names}
    dtypes = {str(t.dtype).replace("torch.", "") for t in tensors.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in ("float32", "float64"):
        raise TypeError(
            f"module parameters have dtype {', '.join(sorted(dtypes))}; rnnfast computes in float32 or float64 "
            "(convert the module with .float() or .double() first)"
        )
    params = {n: t.detach().cpu().numpy().copy() for n, t in tensors.items()}
    return _build(cell, module.input_size, H, L, bias=bool(module.bias), batch_first=bool(module.batch_first),
                  bidirectional=D == 2, dtype=np.dtype(next(iter(dtypes))), params=params,
                  dropout=float(module.dropout))


def to_torch(model: Model) -> Any:
    """Convert an rnnfast layer into the ``torch.nn.RNN``, ``LSTM`` or ``GRU`` of the same configuration.

    The module has the same options (including ``dropout``), dtype and parameter values, and is returned
    in eval mode, so ``module(x, state)`` gives what ``model(x, state)`` gives; call ``.train()`` to train
    it (inter-layer dropout then acts, as in ``model.forward(..., training=True)``).

    Raises
    ------
    TypeError
        If ``model`` is not an rnnfast layer.
    ImportError
        If torch is not importable.
    """
    model = _check_model(model)
    torch = _import("torch", "rnnfast.to_torch")
    cell = model._cell
    kwargs: dict = dict(num_layers=model.num_layers, bias=model.bias, batch_first=model.batch_first,
                        dropout=model.dropout, bidirectional=model.bidirectional,
                        dtype=torch.float64 if model.dtype == np.float64 else torch.float32)
    if _family(cell) == "rnn":
        cls = torch.nn.RNN
        kwargs["nonlinearity"] = cell[4:]
    else:
        cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # dropout with num_layers=1, as rnnfast allows
        module = cls(model.input_size, model.hidden_size, **kwargs)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    return module.eval()


# ====================================================================================================
# ONNX: reading
# ====================================================================================================

_ONNX_OPS = {"RNN": 1, "LSTM": 4, "GRU": 3}
_ONNX_ATTRIBUTES = {
    "RNN": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "output_sequence"},
    "LSTM": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
             "input_forget", "output_sequence"},
    "GRU": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "linear_before_reset", "output_sequence"},
}
# Operators that only move data around or compute shapes and zero states (as exporters emit around
# recurrent nodes); anything else in a graph is computation the converted model does not include.
_ONNX_PLUMBING = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Constant", "ConstantOfShape",
                  "Shape", "Gather", "Concat", "Slice", "Expand", "Cast", "Split"}
# Connector operators allowed between two stacked nodes (output Y of one, input X of the next).
_ONNX_CONNECTORS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity"}


class _Graph:
    """Look-ups over an ONNX graph: constants, producers and consumers of tensors, inferred shapes."""

    def __init__(self, onnx_mod, model) -> None:
        self.onnx = onnx_mod
        self.numpy_helper = onnx_mod.numpy_helper
        graph = model.graph
        self.graph = graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.inputs = [i.name for i in graph.input if i.name not in self.initializers]
        self.outputs = {o.name for o in graph.output}
        self.producer: dict = {}
        self.consumers: dict = {}
        for node in graph.node:
            for name in node.output:
                if name:
                    self.producer[name] = node
            for idx, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, idx))
        self.shapes: dict = {}
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)

    def data_users(self, name: str) -> list:
        """The (node, input index) pairs that read tensor ``name``'s values (not only its shape, as the
        ``Shape`` nodes exporters add to size zero states do)."""
        return [(n, i) for n, i in self.consumers.get(name, []) if n.op_type not in ("Shape", "Size")]

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str) -> Optional[np.ndarray]:
        """The value of tensor ``name`` if the graph fixes it (initializer, Constant, Identity of those)."""
        if not name:
            return None
        if name in self.initializers:
            return self.numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is None:
            return None
        if node.op_type == "Identity":
            return self.const(node.input[0])
        if node.op_type == "Constant":
            a = self.attrs(node)
            if "value" in a:
                return self.numpy_helper.to_array(a["value"])
            for key in ("value_float", "value_floats", "value_int", "value_ints"):
                if key in a:
                    return np.asarray(a[key])
        return None

    def is_zeros(self, name: str) -> bool:
        """Whether tensor ``name`` is zeros whatever the inputs (a zero constant, or an exporter's
        ``Expand`` or ``ConstantOfShape`` of zeros)."""
        value = self.const(name)
        if value is not None:
            return value.size == 0 or not np.any(value)
        node = self.producer.get(name)
        if node is None:
            return False
        if node.op_type in ("Identity", "Cast", "Expand", "Reshape", "Unsqueeze", "Squeeze", "Transpose"):
            return self.is_zeros(node.input[0])
        if node.op_type == "ConstantOfShape":
            a = self.attrs(node)
            return "value" not in a or not np.any(self.numpy_helper.to_array(a["value"]))
        return False

    def ints(self, node, attr: str, input_index: int) -> Optional[list]:
        """An integer list given as attribute ``attr`` (older opsets) or constant input ``input_index``."""
        a = self.attrs(node)
        if attr in a:
            return [int(v) for v in a[attr]]
        if len(node.input) > input_index and node.input[input_index]:
            value = self.const(node.input[input_index])
            return None if value is None else [int(v) for v in np.ravel(value)]
        return None


# --- symbolic axes, to recognise exporters' layout plumbing between and around recurrent nodes --------
# A tensor is described by its axes; each axis is a tuple of atoms (name, size) whose product is the
# axis length, size None when unknown (the sequence length T and the batch B).

_Atom = tuple
_Axes = tuple


def _axis_size(axis: tuple) -> Optional[int]:
    size = 1
    for _, s in axis:
        if s is None:
            return None
        size *= s
    return size


def _normal(axes: _Axes) -> tuple:
    """Axes without size-1 atoms and size-1 axes, for comparing layouts."""
    out = []
    for axis in axes:
        kept = tuple(name for name, s in axis if s != 1)
        if kept:
            out.append(kept)
    return tuple(out)


def _apply_connector(g: _Graph, node, axes: _Axes) -> Optional[_Axes]:
    """The axes of ``node``'s output given its data input's axes, or None if the op is not understood."""
    op, rank = node.op_type, len(axes)
    if op == "Identity":
        return axes
    if op == "Transpose":
        perm = g.attrs(node).get("perm", list(range(rank))[::-1])
        if sorted(perm) != list(range(rank)):
            return None
        return tuple(axes[p] for p in perm)
    if op == "Squeeze":
        sq = g.ints(node, "axes", 1)
        if sq is None:
            if len(node.input) > 1 and node.input[1]:
                return None
            sq = [i for i, ax in enumerate(axes) if _axis_size(ax) == 1]
        sq = {a % rank for a in sq}
        if any(_axis_size(axes[a]) != 1 for a in sq):
            return None
        return tuple(ax for i, ax in enumerate(axes) if i not in sq)
    if op == "Unsqueeze":
        us = g.ints(node, "axes", 1)
        if us is None:
            return None
        new_rank = rank + len(us)
        us = {a % new_rank for a in us}
        it = iter(axes)
        return tuple(() if i in us else next(it) for i in range(new_rank))
    if op == "Reshape":
        shape = g.const(node.input[1]) if len(node.input) > 1 else None
        if shape is None:
            return None
        shape = [int(v) for v in np.ravel(shape)]
        allowzero = int(g.attrs(node).get("allowzero", 0))
        atoms = [atom for axis in axes for atom in axis]
        starts = np.cumsum([0] + [len(ax) for ax in axes]).tolist()
        if shape.count(-1) > 1:
            return None
        split = shape.index(-1) if -1 in shape else len(shape)
        left: list = []
        pos = 0
        for i, n in enumerate(shape[:split]):
            if n == 0 and not allowzero:
                if i >= rank or pos != starts[i]:
                    return None
                left.append(axes[i])
                pos = starts[i + 1]
            elif n > 0:
                taken, size = [], 1
                while size < n and pos < len(atoms) and atoms[pos][1] is not None and size * atoms[pos][1] <= n:
                    size *= atoms[pos][1]
                    taken.append(atoms[pos])
                    pos += 1
                if size != n:
                    return None
                left.append(tuple(taken))
            else:
                return None
        right: list = []
        end = len(atoms)
        for n in reversed(shape[split + 1:]):
            if n <= 0:
                return None
            taken, size = [], 1
            while size < n and end > pos and atoms[end - 1][1] is not None and size * atoms[end - 1][1] <= n:
                size *= atoms[end - 1][1]
                taken.insert(0, atoms[end - 1])
                end -= 1
            if size != n:
                return None
            right.insert(0, tuple(taken))
        if -1 in shape:
            middle = [tuple(atoms[pos:end])]
        elif any(s != 1 for _, s in atoms[pos:end]):
            return None
        else:
            middle = []
        return tuple(left + middle + right)
    return None


def _follow(g: _Graph, name: str, axes: _Axes) -> list:
    """From tensor ``name`` with ``axes``, follow a chain of connector ops, each the only consumer of the
    tensor before it (which is no graph output); returns [(tensor, axes), ...] starting with ``name``."""
    chain = [(name, axes)]
    while True:
        users = g.data_users(name)
        if name in g.outputs or len(users) != 1:
            return chain
        node, idx = users[0]
        if node.op_type not in _ONNX_CONNECTORS or idx != 0 or len(node.output) != 1:
            return chain
        new = _apply_connector(g, node, axes)
        if new is None:
            return chain
        name, axes = node.output[0], new
        chain.append((name, axes))


@dataclass
class _OnnxLayer:
    """One recurrent ONNX node read into rnnfast's terms."""

    node: Any
    key: str
    cell: str
    D: int
    H: int
    I: int
    layout: int
    bias: bool
    dtype: np.dtype
    params: list            # per direction: (w_ih, w_hh, b_ih or None, b_hh or None) in rnnfast's gate order
    sequence_lens: str      # '' or the name of the tensor giving the lengths

    def x_axes(self) -> _Axes:
        T, B, I = (("T", None),), (("B", None),), (("I", self.I),)
        return (B, T, I) if self.layout else (T, B, I)

    def y_axes(self) -> _Axes:
        T, B, D, H = (("T", None),), (("B", None),), (("D", self.D),), (("H", self.H),)
        return (B, T, D, H) if self.layout else (T, D, B, H)


def _onnx_layer(g: _Graph, node, key: str) -> _OnnxLayer:
    """Read one RNN/LSTM/GRU node, or raise naming what does not map exactly."""
    op = node.op_type
    where = f"ONNX {op} node {key!r}"
    attrs = g.attrs(node)
    unknown = sorted(set(attrs) - _ONNX_ATTRIBUTES[op])
    if unknown:
        raise NotImplementedError(f"{where} has the attribute(s) {unknown}, which rnnfast does not implement")
    if "clip" in attrs:
        raise NotImplementedError(
            f"{where} has clip={attrs['clip']}: rnnfast does not clip gate pre-activations (attribute 'clip')"
        )
    if int(attrs.get("input_forget", 0)) != 0:
        raise NotImplementedError(
            f"{where} has input_forget={attrs['input_forget']}: rnnfast's LSTM has no coupled input-forget gate "
            "(attribute 'input_forget')"
        )
    if op == "GRU" and int(attrs.get("linear_before_reset", 0)) != 1:
        raise NotImplementedError(
            f"{where} has linear_before_reset={int(attrs.get('linear_before_reset', 0))}: rnnfast implements the "
            "GRU with the reset gate applied after the recurrent matrix product (PyTorch's, ONNX's "
            "linear_before_reset=1); the ONNX default (0) is a different cell (attribute 'linear_before_reset')"
        )
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if direction == "reverse":
        raise NotImplementedError(
            f"{where} has direction='reverse': rnnfast layers run forward or bidirectional, not reverse only "
            "(attribute 'direction'); a reverse-only layer equals a forward layer on the time-reversed input"
        )
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"{where} has an invalid direction {direction!r} (attribute 'direction')")
    D = 2 if direction == "bidirectional" else 1
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{where} has an invalid layout={layout} (attribute 'layout')")

    defaults = {"RNN": ["tanh"], "LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}[op]
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in attrs.get("activations", [])]
    acts_l = [a.lower() for a in acts]
    if not acts_l:
        acts_l = defaults * D
    elif len(acts_l) == len(defaults) and D == 2:
        acts_l = acts_l * 2
    if len(acts_l) != len(defaults) * D:
        raise ValueError(f"{where} has {len(acts)} activations {acts}; expected {len(defaults) * D} "
                         "(attribute 'activations')")
    per_dir = [acts_l[d * len(defaults):(d + 1) * len(defaults)] for d in range(D)]
    if op == "RNN":
        if per_dir[0][0] not in ("tanh", "relu") or any(p != per_dir[0] for p in per_dir):
            raise NotImplementedError(
                f"{where} has activations={acts}: rnnfast's RNN uses Tanh or Relu, the same in both directions "
                "(attribute 'activations')"
            )
        cell = "rnn_" + per_dir[0][0]
    else:
        if any(p != defaults for p in per_dir):
            names = {"LSTM": "['Sigmoid', 'Tanh', 'Tanh']", "GRU": "['Sigmoid', 'Tanh']"}[op]
            raise NotImplementedError(
                f"{where} has activations={acts}: rnnfast's {op} implements only the default activations "
                f"{names} per direction (attribute 'activations')"
            )
        cell = op.lower()

    G = _ONNX_OPS[op]
    inputs = list(node.input) + [""] * (8 - len(node.input))
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
    dtype = np.dtype(W.dtype)
    if dtype not in _SUPPORTED_DTYPES:
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
    if R.dtype != dtype or (B is not None and B.dtype != dtype):
        raise TypeError(f"{where}: W, R and B must have the same dtype; got {W.dtype}, {R.dtype}"
                        + ("" if B is None else f", {B.dtype}"))

    if op == "LSTM" and inputs[7]:
        P = g.const(inputs[7])
        if P is None or np.any(P):
            raise NotImplementedError(
                f"{where} has peephole weights (input P {inputs[7]!r}): rnnfast's LSTM has no peepholes"
            )
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
    perm = _ONNX_TO_RNNFAST[_family(cell)]
    for d in range(D):
        b_ih = b_hh = None
        if B is not None:
            b_ih, b_hh = _permute_gates(B[d, :G * H], perm), _permute_gates(B[d, G * H:], perm)
        params.append((_permute_gates(W[d], perm), _permute_gates(R[d], perm), b_ih, b_hh))
    return _OnnxLayer(node, key, cell, D, H, I, layout, B is not None, dtype, params, seq)


def _stack_params(layers: list) -> dict:
    params = {}
    bias = any(layer.bias for layer in layers)
    for k, layer in enumerate(layers):
        for d, (w_ih, w_hh, b_ih, b_hh) in enumerate(layer.params):
            params[_param_name("weight_ih", k, d)] = w_ih
            params[_param_name("weight_hh", k, d)] = w_hh
            if bias:
                G_H = w_ih.shape[0]
                params[_param_name("bias_ih", k, d)] = b_ih if b_ih is not None else np.zeros(G_H, layer.dtype)
                params[_param_name("bias_hh", k, d)] = b_hh if b_hh is not None else np.zeros(G_H, layer.dtype)
    return params


def _compatible(a: _OnnxLayer, b: _OnnxLayer) -> bool:
    """Whether node b can be the layer after node a in one rnnfast model."""
    return (a.cell == b.cell and a.D == b.D and a.H == b.H and a.layout == b.layout and a.dtype == b.dtype
            and a.sequence_lens == b.sequence_lens and b.I == a.D * a.H)


def _batch_first(g: _Graph, first: _OnnxLayer, last: _OnnxLayer) -> bool:
    """Whether the stack should run batch-first: the node layout, unless the graph's plumbing shows that
    the data enters and leaves the stack in the other layout (as torch.onnx.export writes for batch_first
    modules: a Transpose before the first node and after the last)."""
    def major(axes: _Axes) -> Optional[str]:
        n = _normal(axes)
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
    y_axes = _follow(g, y, last.y_axes())[-1][1] if y else last.y_axes()
    src, dst = major(x_axes), major(y_axes)
    if src is not None and src == dst:
        return src == "B"
    return bool(first.layout)


def from_onnx(path_or_model: Any) -> Union[Model, "dict[str, Model]"]:
    """Read the ``RNN``, ``LSTM`` and ``GRU`` nodes of an ONNX model into rnnfast layers.

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
        size and ``sequence_lens``), one rnnfast layer with ``num_layers`` = the number of nodes (a single
        node gives a one-layer model). Otherwise a dict of one-layer models keyed by node name (the first
        output's name where a node has none).

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

    Operators other than the recurrent nodes and the layout plumbing around them are not converted;
    a UserWarning names them.

    Raises
    ------
    NotImplementedError
        Naming the attribute or input, for what rnnfast does not compute exactly: ``clip``,
        ``input_forget``, peepholes (a non-zero ``P``), non-default ``activations`` (the RNN may use Tanh
        or Relu), GRU ``linear_before_reset=0``, ``direction='reverse'``, non-zero constant initial states,
        constant ``sequence_lens`` (unless they equal the static sequence length), unknown attributes.
    ValueError
        If the graph has no recurrent node, or weights that are not constants or have wrong shapes.
    TypeError
        For an argument of another type, or weights that are neither float32 nor float64.
    ImportError
        If the ``onnx`` package is not importable (``pip install 'rnnfast[onnx]'``).
    """
    onnx = _import("onnx", "rnnfast.from_onnx")
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
    g = _Graph(onnx, model)

    nodes = [n for n in g.graph.node if n.op_type in _ONNX_OPS and n.domain in ("", "ai.onnx")]
    if not nodes:
        ops = sorted({n.op_type for n in g.graph.node})
        raise ValueError(f"the ONNX graph has no RNN, LSTM or GRU node (its operators: {ops})")
    keys: list = []
    for i, n in enumerate(nodes):
        key = n.name or (n.output[0] if n.output and n.output[0] else f"{n.op_type}_{i}")
        while key in keys:
            key += f"_{i}"
        keys.append(key)
    layers = [_onnx_layer(g, n, k) for n, k in zip(nodes, keys)]

    other = sorted({n.op_type for n in g.graph.node if n.op_type not in _ONNX_OPS and n.op_type not in _ONNX_PLUMBING})
    if other:
        warnings.warn(
            f"from_onnx converts the RNN, LSTM and GRU nodes only; the graph also computes {other}, which the "
            "returned model does not include",
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
        name, axes = _follow(g, y, layer.y_axes())[-1]
        users = g.data_users(name)
        if name in g.outputs or len(users) != 1:
            continue
        user, idx = users[0]
        j = by_node.get(id(user))
        if j is None or idx != 0 or not _compatible(layer, layers[j]):
            continue
        if _normal(axes) != _normal(layers[j].x_axes()[:2] + ((("D", layer.D), ("H", layer.H)),)):
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
            return _build(first.cell, first.I, first.H, len(stack), bias=any(s.bias for s in stack),
                          batch_first=_batch_first(g, first, stack[-1]), bidirectional=first.D == 2,
                          dtype=first.dtype, params=_stack_params(stack))
    return {
        layer.key: _build(layer.cell, layer.I, layer.H, 1, bias=layer.bias,
                          batch_first=_batch_first(g, layer, layer), bidirectional=layer.D == 2,
                          dtype=layer.dtype, params=_stack_params([layer]))
        for layer in layers
    }


# ====================================================================================================
# ONNX: writing
# ====================================================================================================

def to_onnx(model: Model, path: Optional[Union[str, os.PathLike]] = None, *, opset: int = 14,
            initial_state: bool = True, lengths: bool = False) -> Any:
    """Write an rnnfast layer as a standard ONNX model: one ``RNN``/``LSTM``/``GRU`` node per layer.

    The graph computes what ``model(x, state)`` computes (inference: no dropout), with rnnfast's layouts:

    - inputs ``x`` (T, B, I) (or (B, T, I) with ``batch_first``), and unless ``initial_state=False``,
      ``h0`` (and for the LSTM ``c0``) (L*D, B, H); with ``lengths=True`` also ``lengths`` (B,) int32,
      the ONNX ``sequence_lens`` of every node (PyTorch's packed-sequence semantics);
    - outputs ``out`` (T, B, D*H) (or (B, T, D*H)), ``h_n`` (and ``c_n``) (L*D, B, H).

    T and B are symbolic ('seq_len', 'batch'). Gates are reordered to ONNX's (LSTM i,o,f,c; GRU z,r,h), the
    biases concatenated into ``B`` = [Wb, Rb] (omitted without bias), the GRU written with
    ``linear_before_reset=1``. Between layers and at the end, ``Squeeze`` (D=1) or ``Transpose`` + ``Reshape``
    (D=2) turn ONNX's (T, D, B, H) into (T, B, D*H); :func:`from_onnx` reads the file back as one model.
    Nodes use ``layout=0`` (what ONNX Runtime supports), with a ``Transpose`` for ``batch_first``. A
    float64 model gives a float64 graph (valid ONNX; ONNX Runtime's CPU kernels run float32 only).

    Parameters
    ----------
    model : rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU
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
    """
    model = _check_model(model)
    onnx = _import("onnx", "rnnfast.to_onnx")
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int, got {type(opset).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not 14 <= int(opset) <= newest:
        raise ValueError(f"opset must be between 14 and {newest} (the newest the installed onnx knows), got {opset}")

    cell, family = model._cell, _family(model._cell)
    op = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[family]
    L, D, H, I = model.num_layers, model.num_directions, model.hidden_size, model.input_size
    elem = TensorProto.DOUBLE if model.dtype == np.float64 else TensorProto.FLOAT
    lstm, bf = cell == "lstm", model.batch_first
    perm = _RNNFAST_TO_ONNX[family]
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
    for k in range(L):
        W = np.stack([_permute_gates(params[_param_name("weight_ih", k, d)], perm) for d in range(D)])
        R = np.stack([_permute_gates(params[_param_name("weight_hh", k, d)], perm) for d in range(D)])
        node_in = [cur, const(f"W_l{k}", W), const(f"R_l{k}", R), ""]
        if model.bias:
            B = np.stack([np.concatenate([_permute_gates(params[_param_name("bias_ih", k, d)], perm),
                                          _permute_gates(params[_param_name("bias_hh", k, d)], perm)])
                          for d in range(D)])
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
        while node_in and node_in[-1] == "":
            node_in.pop()
        outs = [f"Y_l{k}"] + [f"{s.replace('0', '_n')}_l{k}" if L > 1 else s.replace("0", "_n") for s in state_names]
        for i, o in enumerate(outs[1:]):
            final_states[i].append(o)
        attrs: dict = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
        if family == "gru":
            attrs["linear_before_reset"] = 1
        if family == "rnn":
            attrs["activations"] = [cell[4:].capitalize()] * D
        nodes.append(helper.make_node(op, node_in, outs, name=f"{op.lower()}_l{k}", **attrs))
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
    graph = helper.make_graph(nodes, f"rnnfast_{cell}", inputs, outputs, inits)
    from . import __version__

    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="rnnfast", producer_version=__version__,
                              doc_string=f"rnnfast {model!r}")
    proto.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


# ====================================================================================================
# Keras 3
# ====================================================================================================

@dataclass
class _KerasSpec:
    cell: str
    units: int
    input_size: int
    bias: bool
    dtype: np.dtype
    go_backwards: bool
    params: tuple   # (w_ih, w_hh, b_ih or None, b_hh or None) in rnnfast's gate order


def _keras_name(value: Any) -> str:
    """A serialized Keras activation as a plain name ('tanh'), or a description of what it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("config", value.get("class_name", value)))
    return getattr(value, "__name__", repr(value))


def _keras_array(keras, variable) -> np.ndarray:
    """A Keras variable's value as a new NumPy array (directly from a torch tensor on the torch backend,
    which avoids NumPy 2's deprecation warning for ``np.array(tensor)``)."""
    value = getattr(variable, "value", variable)
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy().copy()
    return np.array(keras.ops.convert_to_numpy(value), copy=True)


def _keras_kind(L, layer, what: str) -> tuple:
    """(cell class, 'lstm' | 'gru' | 'rnn') of a supported Keras layer, or raise TypeError/NotImplementedError."""
    kinds = ((L.LSTM, L.LSTMCell, "lstm"), (L.GRU, L.GRUCell, "gru"), (L.SimpleRNN, L.SimpleRNNCell, "rnn"))
    for layer_cls, cell_cls, family in kinds:
        if isinstance(layer, layer_cls):
            if type(layer).call is not layer_cls.call:
                raise TypeError(f"{what} is a {type(layer).__name__}, a subclass of keras.layers.{layer_cls.__name__} "
                                "that overrides call; only Keras's own computation converts exactly")
            return cell_cls, family
    if isinstance(layer, L.RNN):
        if type(layer).call is not L.RNN.call:
            raise TypeError(f"{what} is a {type(layer).__name__} that overrides call")
        for _, cell_cls, family in kinds:
            if type(layer.cell) is cell_cls:
                return cell_cls, family
        raise NotImplementedError(
            f"{what} is a keras.layers.RNN around a {type(layer.cell).__name__}; rnnfast converts RNN layers "
            "around one LSTMCell, GRUCell or SimpleRNNCell"
        )
    raise TypeError(
        f"{what} must be a Keras 3 SimpleRNN, LSTM, GRU, RNN (of one such cell) or Bidirectional layer, "
        f"got {type(layer).__name__}"
    )


def _keras_spec(keras, layer, what: str) -> _KerasSpec:
    """Read one Keras recurrent layer (not Bidirectional), or raise naming what does not map exactly."""
    cell_cls, family = _keras_kind(keras.layers, layer, what)
    cell_obj = layer.cell
    if type(cell_obj).call is not cell_cls.call:
        raise TypeError(f"{what}'s cell is a {type(cell_obj).__name__} that overrides call")
    if not layer.built or not getattr(cell_obj, "built", False):
        raise ValueError(f"{what} ({layer.name!r}) has no weights yet: build it (call it on an input) first")
    cfg = cell_obj.get_config()
    name = f"{what} ({type(layer).__name__} {layer.name!r})"

    activation = _keras_name(cfg.get("activation"))
    allowed = ("tanh", "relu") if family == "rnn" else ("tanh",)
    if activation not in allowed:
        raise NotImplementedError(
            f"{name} has activation={activation!r}: rnnfast's {family.upper() if family != 'rnn' else 'RNN'} "
            f"uses {' or '.join(repr(a) for a in allowed)} (option 'activation')"
        )
    if family != "rnn":
        rec = _keras_name(cfg.get("recurrent_activation"))
        if rec != "sigmoid":
            raise NotImplementedError(
                f"{name} has recurrent_activation={rec!r}: rnnfast's gates use the exact logistic sigmoid "
                "(option 'recurrent_activation' must be 'sigmoid')"
            )
    if family == "gru" and not cfg.get("reset_after", True):
        raise NotImplementedError(
            f"{name} has reset_after=False: rnnfast implements the GRU with the reset gate applied after the "
            "recurrent matrix product (Keras's reset_after=True, PyTorch's GRU); reset_after=False is a "
            "different cell (option 'reset_after')"
        )

    policy = getattr(layer, "dtype_policy", None)
    compute = str(getattr(layer, "compute_dtype", None) or getattr(policy, "compute_dtype", "float32"))
    variables = str(cell_obj.kernel.dtype)
    if compute not in ("float32", "float64") or variables != compute:
        raise TypeError(
            f"{name} computes in {compute} with {variables} weights (its dtype policy "
            f"{getattr(policy, 'name', policy)!r}); rnnfast converts layers that compute in float32 or float64 with "
            "weights of the same dtype"
        )
    compute = np.dtype(compute)
    kernel = _keras_array(keras, cell_obj.kernel)
    recurrent = _keras_array(keras, cell_obj.recurrent_kernel)
    units = int(recurrent.shape[0])
    perm = _KERAS_TO_RNNFAST[family]
    w_ih = _permute_gates(kernel.T, perm)
    w_hh = _permute_gates(recurrent.T, perm)
    b_ih = b_hh = None
    use_bias = bool(cfg.get("use_bias", True))
    if use_bias:
        bias = _keras_array(keras, cell_obj.bias)
        if family == "gru":
            if bias.shape != (2, 3 * units):
                raise ValueError(f"{name} has a bias of shape {bias.shape}, expected (2, {3 * units}) for reset_after")
            b_ih, b_hh = _permute_gates(bias[0], perm), _permute_gates(bias[1], perm)
        else:
            b_ih, b_hh = _permute_gates(bias, perm), np.zeros_like(bias)
    cell = "rnn_" + activation if family == "rnn" else family
    return _KerasSpec(cell, units, int(kernel.shape[0]), use_bias, compute, bool(layer.go_backwards),
                      (w_ih, w_hh, b_ih, b_hh))


def from_keras(layer: Any) -> Model:
    """Convert a built Keras 3 recurrent layer into an rnnfast layer with ``batch_first=True``.

    Supported: ``keras.layers.SimpleRNN`` (activation 'tanh' or 'relu'), ``LSTM`` (activation 'tanh',
    recurrent_activation 'sigmoid'), ``GRU`` (the same, ``reset_after=True``), ``keras.layers.RNN`` around one
    ``SimpleRNNCell``/``LSTMCell``/``GRUCell``, and ``Bidirectional`` around any of them with
    ``merge_mode='concat'``. Kernels (I, G*H) are transposed and the gates reordered (GRU z,r,h to r,z,n;
    the LSTM's i,f,c,o is already rnnfast's i,f,g,o); the single bias of SimpleRNN and LSTM becomes
    ``bias_ih`` (``bias_hh`` zeros); the GRU's (2, 3H) bias is [``bias_ih``, ``bias_hh``].

    How the Keras call maps to ``out, state = model(x, state)``, x (B, T, I):

    - ``return_sequences=True`` output is ``out`` (B, T, D*H); without it, Keras returns the last output,
      which is ``out[:, -1]`` for one direction and ``np.concatenate([h_n[0], h_n[1]], -1)`` for
      ``Bidirectional`` (``h_n`` (D, B, H));
    - ``return_state`` states are ``h_n[d]`` (and ``c_n[d]``) for direction d; Keras's ``initial_state``
      [h, (c)] per direction is ``state`` stacked on axis 0;
    - ``dropout``/``recurrent_dropout`` act only in training; ``unroll``, ``unit_forget_bias`` and the
      initializers do not change the computation; ``stateful`` layers keep the state between calls,
      which here is passed explicitly (``state=`` or ``model.stepper``);
    - Keras masks (from ``Masking`` or ``mask_zero``) repeat the previous state at masked steps, a different
      rule from rnnfast's ``lengths=`` (zeros past each sequence's end): the converted model sees no mask.

    Raises
    ------
    NotImplementedError
        Naming the option, for what does not map exactly: another ``activation``, a
        ``recurrent_activation`` other than 'sigmoid' (e.g. 'hard_sigmoid'), GRU ``reset_after=False``,
        ``go_backwards=True`` outside ``Bidirectional``, ``merge_mode`` other than 'concat', a
        ``Bidirectional`` whose two layers differ.
    TypeError
        For anything but the supported layers (or subclasses overriding ``call``), or a dtype policy that
        does not compute in float32 or float64.
    ValueError
        If the layer is not built (has no weights yet).
    ImportError
        If keras is not importable.
    """
    keras = _import("keras", "rnnfast.from_keras")
    if isinstance(layer, keras.layers.Bidirectional):
        merge_mode = layer.merge_mode
        if merge_mode != "concat":
            raise NotImplementedError(
                f"Bidirectional layer {layer.name!r} has merge_mode={merge_mode!r}: rnnfast concatenates the two "
                "directions (merge_mode='concat')"
            )
        fwd = _keras_spec(keras, layer.forward_layer, "the forward layer of Bidirectional")
        bwd = _keras_spec(keras, layer.backward_layer, "the backward layer of Bidirectional")
        if fwd.go_backwards or not bwd.go_backwards:
            raise NotImplementedError(
                f"Bidirectional layer {layer.name!r} wraps a layer with go_backwards=True: its forward output runs "
                "backwards in time, which rnnfast's bidirectional layer does not do (option 'go_backwards')"
            )
        for field in ("cell", "units", "input_size", "bias", "dtype"):
            if getattr(fwd, field) != getattr(bwd, field):
                raise NotImplementedError(
                    f"Bidirectional layer {layer.name!r} has different {field} in its forward ({getattr(fwd, field)}) "
                    f"and backward ({getattr(bwd, field)}) layers; rnnfast's two directions share one configuration"
                )
        specs = [fwd, bwd]
    else:
        spec = _keras_spec(keras, layer, "layer")
        if spec.go_backwards:
            raise NotImplementedError(
                f"layer {layer.name!r} has go_backwards=True: rnnfast layers run forward or bidirectional, not "
                "reverse only (option 'go_backwards'); it equals a forward layer on the time-reversed input, "
                "with the outputs in reversed time order"
            )
        specs = [spec]
    first = specs[0]
    params = {}
    for d, spec in enumerate(specs):
        w_ih, w_hh, b_ih, b_hh = spec.params
        params[_param_name("weight_ih", 0, d)] = w_ih
        params[_param_name("weight_hh", 0, d)] = w_hh
        if first.bias:
            params[_param_name("bias_ih", 0, d)] = b_ih
            params[_param_name("bias_hh", 0, d)] = b_hh
    return _build(first.cell, first.input_size, first.units, 1, bias=first.bias, batch_first=True,
                  bidirectional=len(specs) == 2, dtype=first.dtype, params=params)
