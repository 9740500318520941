"""Writing an ONNX graph: the nodes and initializers a writer appends (:class:`GraphBuilder`), the opset check
and the finished, checked model (:func:`finish_model`), shared by the layer writer (onnx_export.py) and the
whole-model writer (_onnx_models.py). onnx is imported by the caller (through ``import_optional``)."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._onnx_ops import MS_DOMAIN

__all__ = ["GraphBuilder", "check_opset", "finish_model"]


class GraphBuilder:
    """The nodes and initializers of a graph being written, in order.

    ``onnx`` is the imported module (the caller imported it, with the install hint if it is missing).
    """

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._init_names: set[str] = set()
        # whether a node of ONNX Runtime's contrib domain (DynamicQuantizeLSTM) was written
        self.uses_ms_domain = False

    def const(self, name: str, value: np.ndarray) -> str:
        """An initializer ``name`` holding ``value`` (written once: a second call with the name reuses it)."""
        if name not in self._init_names:
            self._init_names.add(name)
            # np.ascontiguousarray would make a 0-d value 1-d: scalars (Range's bounds, Gather's index) stay 0-d
            self.inits.append(self.onnx.numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], name: str, **attrs: Any) -> None:
        """Append the node ``op`` (with ``domain=`` among ``attrs`` for a contrib operator)."""
        if attrs.get("domain") == MS_DOMAIN:
            self.uses_ms_domain = True
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))


def check_opset(onnx: Any, opset: Any) -> int:
    """``opset`` as an int between 14 and the newest the installed onnx knows, else TypeError/ValueError."""
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int, got {type(opset).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not 14 <= int(opset) <= newest:
        raise ValueError(f"opset must be between 14 and {newest} (the newest the installed onnx knows), got {opset}")
    return int(opset)


def finish_model(b: GraphBuilder, name: str, inputs: list[Any], outputs: list[Any], opset: int, doc: str,
                 path: Optional[Union[str, "os.PathLike[str]"]]) -> Any:
    """The ``onnx.ModelProto`` of the graph ``b`` with ``inputs`` and ``outputs`` (value infos), producer
    rnnfast, checked with ``onnx.checker.check_model(full_check=True)``, saved at ``path`` unless None."""
    onnx, helper = b.onnx, b.helper
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    from rnnfast import __version__

    opsets = [helper.make_opsetid("", opset)]
    if b.uses_ms_domain:
        opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="rnnfast", producer_version=__version__,
                              doc_string=doc)
    proto.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto
