"""ONNX: :func:`rnnfast.to_onnx` of a whole model, an :class:`rnnfast.nn.Sequential`, as one graph: Embedding
-> ``Gather``, the recurrent layers -> their ``RNN``/``LSTM``/``GRU`` nodes (onnx_export.py's writer), LastStep ->
``Gather`` (or, with lengths, a selection of each sequence's last valid step), Linear -> ``Gemm`` (2-D input)
or ``MatMul`` + ``Add``, the activations -> their ONNX operators (GELU and SiLU as the formula's operators),
Dropout -> nothing (inference). With lengths, the steps past each sequence's end are zeroed after every
module, as :meth:`rnnfast.nn.Sequential.forward` zeroes them."""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Union, cast

import numpy as np

from .. import nn
from .._rnn_base import RNNBase
from ..nn.activations import SELU_ALPHA, SELU_SCALE
from ..nn.sequential import Sequential
from ._conversion import Model, import_optional
from ._onnx_builder import GraphBuilder, check_opset, finish_model
from ._onnx_layer import layer_attributes, write_layer

__all__ = ["sequential_to_onnx"]

# rnnfast's elementwise activations that are one ONNX operator without attributes.
_UNARY = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid", nn.Identity: "Identity"}
_WRITTEN = (nn.Embedding, nn.Linear, nn.Dropout, nn.LastStep, nn.GELU, nn.ELU, nn.LeakyReLU, nn.SELU, nn.Softplus,
            nn.SiLU, nn.Softmax) + tuple(_UNARY)


def _check(model: Sequential, where: str, attrs: dict[int, dict[str, Any]]) -> None:
    """Every module of ``model`` (nested Sequentials too) is one the writer writes: the recurrent layers'
    node attributes into ``attrs`` (by id); else TypeError/ValueError naming the module."""
    for name, m in model.named_children():
        what = f"{where}[{name!r}]"
        if isinstance(m, Sequential):
            _check(m, what, attrs)
        elif isinstance(m, RNNBase):
            try:
                attrs[id(m)] = layer_attributes(cast(Model, m))
            except ValueError as exc:
                raise ValueError(f"{what} ({type(m).__name__}): {exc}") from None
        elif type(m) not in _WRITTEN:   # a subclass may compute something else
            raise TypeError(f"{what} is a {type(m).__name__}, which to_onnx does not write (it writes the recurrent "
                            "layers, Embedding, Linear, Dropout, LastStep, the activations and nested Sequentials)")


def _uses_lengths(model: Any) -> bool:
    if isinstance(model, Sequential):
        return any(_uses_lengths(m) for m in model)
    return isinstance(model, (RNNBase, nn.LastStep))


def _leaves(model: Any) -> list[Any]:
    if isinstance(model, Sequential):
        return [leaf for m in model for leaf in _leaves(m)]
    return [model]


class _Writer:
    """Appends the nodes of a Sequential's modules to a :class:`GraphBuilder`, keeping the tensor's element
    type and (where known) symbolic shape as it goes."""

    def __init__(self, b: GraphBuilder, elem_of: dict[np.dtype, int], lengths: Optional[str],
                 attrs: dict[int, dict[str, Any]]) -> None:
        self.b = b
        self.elem_of = elem_of          # numpy dtype -> ONNX element type
        self.lengths = lengths          # the (B,) int32 lengths input, or None
        self.attrs = attrs              # id(recurrent layer) -> node attributes
        self._masks: dict[bool, str] = {}          # batch_first -> the (T, B, 1) / (B, T, 1) mask of valid steps
        self._lengths_int64 = False

    # --- small helpers -------------------------------------------------------------------------------------

    def scalar(self, name: str, value: float, dtype: np.dtype) -> str:
        return self.b.const(f"{name}_{dtype.name}", np.array(value, dtype=dtype))

    def ints(self, name: str, values: list[int]) -> str:
        return self.b.const(name, np.array(values, dtype=np.int64))

    def cast(self, x: str, dtype: Optional[np.dtype], to: np.dtype, prefix: str) -> str:
        if dtype is None or dtype == to:
            return x
        self.b.node("Cast", [x], [f"{prefix}cast_in"], f"{prefix}cast_in", to=self.elem_of[to])
        return f"{prefix}cast_in"

    def valid_steps(self, like: str, batch_first: bool) -> str:
        """The bool mask (T, B, 1) (or (B, T, 1)) of the steps within each sequence's length, T from the
        sequence tensor ``like``; made once per layout."""
        if batch_first in self._masks:
            return self._masks[batch_first]
        b, p = self.b, f"mask_{'bf' if batch_first else 'tm'}_"
        time_axis = 1 if batch_first else 0
        b.node("Shape", [like], [f"{p}shape"], f"{p}shape")
        b.node("Gather", [f"{p}shape", b.const("index_scalar_" + str(time_axis), np.array(time_axis, np.int64))],
               [f"{p}T"], f"{p}T", axis=0)
        b.node("Range", [b.const("int64_0", np.array(0, np.int64)), f"{p}T", b.const("int64_1", np.array(1, np.int64))],
               [f"{p}steps"], f"{p}steps")
        lengths = self.lengths_int64()
        # steps (T,) against lengths (B,): (T, 1) < (1, B) time-major, (1, T) < (B, 1) batch-first
        if batch_first:
            b.node("Unsqueeze", [lengths, self.ints("axes_1", [1])], [f"{p}lengths"], f"{p}lengths")
            b.node("Less", [f"{p}steps", f"{p}lengths"], [f"{p}valid_2d"], f"{p}valid_2d")
        else:
            b.node("Unsqueeze", [f"{p}steps", self.ints("axes_1", [1])], [f"{p}steps_col"], f"{p}steps_col")
            b.node("Less", [f"{p}steps_col", lengths], [f"{p}valid_2d"], f"{p}valid_2d")
        b.node("Unsqueeze", [f"{p}valid_2d", self.ints("axes_2", [2])], [f"{p}valid"], f"{p}valid")
        self._masks[batch_first] = f"{p}valid"
        return f"{p}valid"

    def lengths_int64(self) -> str:
        if not self._lengths_int64:
            self._lengths_int64 = True
            assert self.lengths is not None   # only called when the graph has lengths
            self.b.node("Cast", [self.lengths], ["lengths_int64"], "lengths_int64", to=self.b.onnx.TensorProto.INT64)
        return "lengths_int64"

    # --- the modules -----------------------------------------------------------------------------------------

    def sequential(self, model: Sequential, x: str, dtype: Optional[np.dtype], dims: Optional[list[Any]], prefix: str,
                   lengths: bool) -> tuple[str, Optional[np.dtype], Optional[list[Any]]]:
        """Write ``model`` from tensor ``x`` (element dtype ``dtype``, None for indices; symbolic ``dims`` or None):
        returns (output tensor, its dtype, its dims). ``lengths``: whether this Sequential is given the lengths
        (as :meth:`Sequential.forward` passes them on: only to those that use them)."""
        layout: Optional[bool] = None   # batch_first of the sequence from a recurrent layer, None if none
        for name, m in model.named_children():
            p = f"{prefix}{name}."
            if isinstance(m, Sequential):
                x, dtype, dims = self.sequential(m, x, dtype, dims, p, lengths and _uses_lengths(m))
                layout = _layout_after(m, layout)
            else:
                x, dtype, dims = self.module(m, x, dtype, dims, p, lengths)
                layout = m.batch_first if isinstance(m, RNNBase) else (None if isinstance(m, nn.LastStep) else layout)
            if lengths and layout is not None and not isinstance(m, (RNNBase, nn.Dropout)):
                # Sequential zeroes the padded steps that later modules (a Linear's bias, ...) write into.
                out = f"{p}padding_zeroed"
                zero = self.scalar("zero", 0.0, dtype or np.dtype(np.float32))
                self.b.node("Where", [self.valid_steps(x, layout), x, zero], [out], out)
                x = out
        return x, dtype, dims

    def module(self, m: Any, x: str, dtype: Optional[np.dtype], dims: Optional[list[Any]], p: str,
               lengths: bool) -> tuple[str, Optional[np.dtype], Optional[list[Any]]]:
        b = self.b
        out = f"{p}out"
        if isinstance(m, nn.Dropout):
            return x, dtype, dims          # inference: the identity
        if isinstance(m, RNNBase):
            x = self.cast(x, dtype, m.dtype, p)
            write_layer(b, cast(Model, m), self.attrs[id(m)], x, out, prefix=p,
                        lengths=self.lengths if lengths else None)
            return out, np.dtype(m.dtype), None if dims is None else dims[:-1] + [m.num_directions * m.hidden_size]
        if isinstance(m, nn.Embedding):
            b.node("Gather", [b.const(f"{p}weight", m.weight), x], [out], f"{p}gather", axis=0)
            return out, np.dtype(m.dtype), None if dims is None else dims + [m.embedding_dim]
        if isinstance(m, nn.Linear):
            return self.linear(m, x, dtype, dims, p)
        if isinstance(m, nn.LastStep):
            return self.last_step(m, x, dtype or np.dtype(np.float32), p, lengths), dtype, \
                None if dims is None else [d for i, d in enumerate(dims) if i != (1 if m.batch_first else 0)]
        if dtype is None:
            dtype = np.dtype(np.float32)
        self.activation(m, x, dtype, out, p)
        return out, dtype, dims

    def linear(self, m: nn.Linear, x: str, dtype: Optional[np.dtype], dims: Optional[list[Any]],
               p: str) -> tuple[str, Optional[np.dtype], Optional[list[Any]]]:
        b, out, to = self.b, f"{p}out", np.dtype(m.dtype)
        x = self.cast(x, dtype, to, p)
        if dims is not None and len(dims) == 2:
            inputs = [x, b.const(f"{p}weight", m.weight)]
            if m.bias is not None:
                inputs.append(b.const(f"{p}bias", m.bias))
            b.node("Gemm", inputs, [out], f"{p}gemm", transB=1)
        elif m.bias is None:
            b.node("MatMul", [x, b.const(f"{p}weight_T", m.weight.T)], [out], f"{p}matmul")
        else:
            b.node("MatMul", [x, b.const(f"{p}weight_T", m.weight.T)], [f"{p}matmul"], f"{p}matmul")
            b.node("Add", [f"{p}matmul", b.const(f"{p}bias", m.bias)], [out], f"{p}add")
        return out, to, None if dims is None else dims[:-1] + [m.out_features]

    def last_step(self, m: nn.LastStep, x: str, dtype: np.dtype, p: str, lengths: bool) -> str:
        b, out = self.b, f"{p}out"
        axis = 1 if m.batch_first else 0
        if not lengths:
            b.node("Gather", [x, b.const("index_scalar_-1", np.array(-1, np.int64))], [out], f"{p}gather", axis=axis)
            return out
        # The step lengths[b] - 1 of each sequence: selected with a one-hot mask over time and summed (a length of
        # 0 selects no step: zeros, as LastStep gives).
        lengths_64 = self.lengths_int64()
        b.node("Sub", [lengths_64, b.const("int64_1", np.array(1, np.int64))], [f"{p}last"], f"{p}last")
        b.node("Shape", [x], [f"{p}shape"], f"{p}shape")
        b.node("Gather", [f"{p}shape", b.const(f"index_scalar_{axis}", np.array(axis, np.int64))], [f"{p}T"],
               f"{p}T", axis=0)
        b.node("Range", [b.const("int64_0", np.array(0, np.int64)), f"{p}T", b.const("int64_1", np.array(1, np.int64))],
               [f"{p}steps"], f"{p}steps")
        if m.batch_first:   # (1, T) == (B, 1) -> (B, T)
            b.node("Unsqueeze", [f"{p}last", self.ints("axes_1", [1])], [f"{p}last_col"], f"{p}last_col")
            b.node("Equal", [f"{p}steps", f"{p}last_col"], [f"{p}pick_2d"], f"{p}pick_2d")
        else:               # (T, 1) == (B,) -> (T, B)
            b.node("Unsqueeze", [f"{p}steps", self.ints("axes_1", [1])], [f"{p}steps_col"], f"{p}steps_col")
            b.node("Equal", [f"{p}steps_col", f"{p}last"], [f"{p}pick_2d"], f"{p}pick_2d")
        b.node("Unsqueeze", [f"{p}pick_2d", self.ints("axes_2", [2])], [f"{p}pick"], f"{p}pick")
        b.node("Where", [f"{p}pick", x, self.scalar("zero", 0.0, dtype)], [f"{p}picked"], f"{p}picked")
        b.node("ReduceSum", [f"{p}picked", self.ints(f"axes_{axis}", [axis])], [out], f"{p}sum", keepdims=0)
        return out

    def activation(self, m: Any, x: str, dtype: np.dtype, out: str, p: str) -> None:
        b = self.b
        op = _UNARY.get(type(m))
        if op is not None:
            b.node(op, [x], [out], f"{p}{op.lower()}")
        elif isinstance(m, nn.ELU):
            b.node("Elu", [x], [out], f"{p}elu", alpha=m.alpha)
        elif isinstance(m, nn.LeakyReLU):
            b.node("LeakyRelu", [x], [out], f"{p}leaky_relu", alpha=m.negative_slope)
        elif isinstance(m, nn.SELU):
            b.node("Selu", [x], [out], f"{p}selu", alpha=SELU_ALPHA, gamma=SELU_SCALE)
        elif isinstance(m, nn.Softmax):
            b.node("Softmax", [x], [out], f"{p}softmax", axis=m.axis)
        elif isinstance(m, nn.SiLU):
            b.node("Sigmoid", [x], [f"{p}sigmoid"], f"{p}sigmoid")
            b.node("Mul", [x, f"{p}sigmoid"], [out], f"{p}mul")
        elif isinstance(m, nn.GELU):
            # x * (1 + erf(x / sqrt(2))) / 2, the exact form (ONNX's Gelu operator needs opset 20)
            b.node("Mul", [x, self.scalar("sqrt_half", math.sqrt(0.5), dtype)], [f"{p}scaled"], f"{p}scaled")
            b.node("Erf", [f"{p}scaled"], [f"{p}erf"], f"{p}erf")
            b.node("Add", [f"{p}erf", self.scalar("one", 1.0, dtype)], [f"{p}cdf2"], f"{p}cdf2")
            b.node("Mul", [x, f"{p}cdf2"], [f"{p}x_cdf2"], f"{p}x_cdf2")
            b.node("Mul", [f"{p}x_cdf2", self.scalar("half", 0.5, dtype)], [out], f"{p}mul")
        elif isinstance(m, nn.Softplus):
            # log(1 + exp(beta x)) / beta, and x where beta x > threshold (torch's)
            bx = x
            if m.beta != 1.0:
                b.node("Mul", [x, self.scalar(f"{p}beta", m.beta, dtype)], [f"{p}bx"], f"{p}bx")
                bx = f"{p}bx"
            b.node("Softplus", [bx], [f"{p}softplus"], f"{p}softplus")
            soft = f"{p}softplus"
            if m.beta != 1.0:
                b.node("Div", [soft, self.scalar(f"{p}beta", m.beta, dtype)], [f"{p}softplus_beta"], f"{p}div")
                soft = f"{p}softplus_beta"
            b.node("Greater", [bx, self.scalar(f"{p}threshold", m.threshold, dtype)], [f"{p}linear"], f"{p}greater")
            b.node("Where", [f"{p}linear", x, soft], [out], f"{p}where")
        else:  # pragma: no cover (_check lets only the modules above through)
            raise AssertionError(type(m).__name__)


def _layout_after(model: Any, layout: Optional[bool]) -> Optional[bool]:
    """The sequence layout after ``model`` (as Sequential tracks it): a recurrent layer's batch_first, None
    after LastStep, else unchanged."""
    if isinstance(model, RNNBase):
        return bool(model.batch_first)
    if isinstance(model, nn.LastStep):
        return None
    if isinstance(model, Sequential):
        for child in model:
            layout = _layout_after(child, layout)
    return layout


def _input_info(model: Sequential) -> tuple[Optional[np.dtype], Optional[list[Any]]]:
    """(dtype of x or None for indices, symbolic dims of x or None) of a Sequential."""
    leaves = _leaves(model)
    first = leaves[0]
    dtype = None if isinstance(first, nn.Embedding) else next(
        (np.dtype(m.dtype) for m in leaves if getattr(m, "dtype", None) is not None), np.dtype(np.float32))
    rnn_at = next((i for i, m in enumerate(leaves) if isinstance(m, RNNBase)), None)
    if rnn_at is None or any(isinstance(m, nn.LastStep) for m in leaves[:rnn_at]):
        return dtype, None
    seq = ["batch", "seq_len"] if leaves[rnn_at].batch_first else ["seq_len", "batch"]
    if dtype is None:
        return dtype, seq
    width = model.input_features
    return dtype, seq + [width if isinstance(width, int) else "features"]


def sequential_to_onnx(model: Sequential, path: Optional[Union[str, "os.PathLike[str]"]], *, opset: int,
                       initial_state: bool, lengths: bool) -> Any:
    """:func:`rnnfast.to_onnx` of an :class:`rnnfast.nn.Sequential` (its docstring has the details)."""
    if initial_state:
        raise ValueError("to_onnx of a Sequential takes no initial_state: inside a Sequential the recurrent layers "
                         "start at zeros and their states are dropped (use initial_state=False)")
    if lengths and not _uses_lengths(model):
        raise ValueError("to_onnx(lengths=True): this Sequential has no recurrent layer or LastStep to use lengths")
    attrs: dict[int, dict[str, Any]] = {}
    _check(model, "model", attrs)
    onnx = import_optional("onnx", "rnnfast.to_onnx")
    opset = check_opset(onnx, opset)
    T = onnx.TensorProto
    elem_of: dict[np.dtype, int] = {np.dtype(np.float32): T.FLOAT, np.dtype(np.float64): T.DOUBLE}
    b = GraphBuilder(onnx)
    dtype, dims = _input_info(model)
    inputs = [onnx.helper.make_tensor_value_info("x", T.INT64 if dtype is None else elem_of[dtype], dims)]
    if lengths:
        inputs.append(onnx.helper.make_tensor_value_info("lengths", T.INT32, ["batch"]))
    writer = _Writer(b, elem_of, "lengths" if lengths else None, attrs)
    y, y_dtype, y_dims = writer.sequential(model, "x", dtype, dims, "", lengths)
    if y == "x":   # a model of Dropouts only: the graph still needs an operator
        b.node("Identity", ["x"], ["y"], "identity")
    else:
        b.node("Identity", [y], ["y"], "y")
    outputs = [onnx.helper.make_tensor_value_info("y", elem_of[y_dtype or np.dtype(np.float32)] if y_dtype is not None
                                                  else T.INT64, y_dims)]
    return finish_model(b, "rnnfast_sequential", inputs, outputs, opset, f"rnnfast {model!r}", path)
