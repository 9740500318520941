"""Reading an ONNX graph: constants, producers and consumers of tensors, inferred shapes
(:class:`Graph`), and the layout plumbing (``Transpose``, ``Reshape``, ``Squeeze``, ...) that exporters
put between and around recurrent nodes, followed symbolically (:func:`follow_connectors`)."""

from __future__ import annotations

from typing import Optional

import numpy as np

# Operators that only move data around or compute shapes and zero states (as exporters emit around
# recurrent nodes); anything else in a graph is computation the converted model does not include.
PLUMBING = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Constant", "ConstantOfShape",
            "Shape", "Gather", "Concat", "Slice", "Expand", "Cast", "Split"}
# Connector operators allowed between two stacked nodes (output Y of one, input X of the next).
CONNECTORS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity"}


class Graph:
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

Atom = tuple
Axes = tuple


def _axis_size(axis: tuple) -> Optional[int]:
    size = 1
    for _, s in axis:
        if s is None:
            return None
        size *= s
    return size


def normal_axes(axes: Axes) -> tuple:
    """Axes without size-1 atoms and size-1 axes, for comparing layouts."""
    out = []
    for axis in axes:
        kept = tuple(name for name, s in axis if s != 1)
        if kept:
            out.append(kept)
    return tuple(out)


def _apply_connector(g: Graph, node, axes: Axes) -> Optional[Axes]:
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


def follow_connectors(g: Graph, name: str, axes: Axes) -> list:
    """From tensor ``name`` with ``axes``, follow a chain of connector ops, each the only consumer of the
    tensor before it (which is no graph output); returns [(tensor, axes), ...] starting with ``name``."""
    chain = [(name, axes)]
    while True:
        users = g.data_users(name)
        if name in g.outputs or len(users) != 1:
            return chain
        node, idx = users[0]
        if node.op_type not in CONNECTORS or idx != 0 or len(node.output) != 1:
            return chain
        new = _apply_connector(g, node, axes)
        if new is None:
            return chain
        name, axes = node.output[0], new
        chain.append((name, axes))
