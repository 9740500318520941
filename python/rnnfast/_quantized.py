"""The parameters of a quantized layer (:func:`rnnfast.quantize`): their names, their checks, how float
parameters become them, and :class:`QuantizedWeight`, one weight matrix with its native pack.

Parameters of a layer quantized to ``weight_dtype`` (PyTorch's names; G*H rows, K = I_k or H):

- ``'int8'``: ``weight_ih_l{k}[_reverse]`` and ``weight_hh_l{k}[_reverse]`` int8 (G*H, K), each followed
  by its row scales ``weight_..._scale`` float32 (G*H,): row n stands for ``scale[n] * weight[n, :]``;
- ``'bf16'``: the same weights as bfloat16 bits, uint16 (G*H, K), without scales;
- either way ``bias_ih_l{k}``, ``bias_hh_l{k}`` float32 (G*H,), as in a float32 layer.

The quantization rules are :mod:`rnnfast._reference_reduced`'s (the contract with the kernels).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from ._reference_reduced import INT8_MAX_DEPTH, REDUCED_WEIGHT_DTYPES, bf16_to_float32, quantize_weight

__all__ = ["REDUCED_WEIGHT_DTYPES", "QuantizedWeight", "SCALE_SUFFIX", "is_weight", "quantized_parameter_spec",
           "quantize_parameters", "check_quantized_value", "inference_only_error", "read_only_copy"]

#: The suffix of a weight's row scales: ``weight_ih_l0`` has ``weight_ih_l0_scale`` (int8 only).
SCALE_SUFFIX = "_scale"

_VALUE_DTYPES = {"int8": np.dtype(np.int8), "bf16": np.dtype(np.uint16)}
_F32 = np.dtype(np.float32)


def is_weight(name: str) -> bool:
    """Whether the float parameter ``name`` is a weight matrix (quantized) rather than a bias (kept float32)."""
    return name.startswith("weight_")


def quantized_parameter_spec(float_shapes: dict[str, tuple], weight_dtype: str) -> dict[str, tuple]:
    """``{name: (shape, dtype)}`` of the quantized parameters of a layer whose float parameters have the
    shapes ``float_shapes`` (in the layer's order); every weight's scales follow it (int8)."""
    spec: dict[str, tuple] = {}
    for name, shape in float_shapes.items():
        shape = tuple(shape)
        if is_weight(name):
            spec[name] = (shape, _VALUE_DTYPES[weight_dtype])
            if weight_dtype == "int8":
                spec[name + SCALE_SUFFIX] = ((shape[0],), _F32)
        else:
            spec[name] = (shape, _F32)
    return spec


def check_quantized_value(name: str, arr: np.ndarray, weight_dtype: str) -> None:
    """A ValueError naming ``name`` unless ``arr`` (of the spec's dtype) is a value quantization can give:
    int8 weights in [-127, 127], finite non-negative scales, finite bfloat16 weights. (Biases are not
    checked here, as a float layer's are not.)"""
    if name.endswith(SCALE_SUFFIX):
        bad = ~(np.isfinite(arr) & (arr >= 0))
        if bad.any():
            raise ValueError(f"{name} must hold finite non-negative row scales, got {arr[bad][0]!r} at row "
                             f"{int(np.flatnonzero(bad)[0])}")
    elif is_weight(name) and weight_dtype == "int8":
        if arr.size and arr.min() < -127:
            raise ValueError(f"{name} holds -128: int8 weights are symmetric, in [-127, 127]")
    elif is_weight(name):
        finite = np.isfinite(bf16_to_float32(arr))
        if not finite.all():
            raise ValueError(f"{name} holds {int((~finite).sum())} NaN or infinite bfloat16 values")


def quantize_parameters(float_params: dict[str, np.ndarray], weight_dtype: str) -> dict[str, np.ndarray]:
    """The quantized parameters (see the module docstring) of a layer's float parameters, in its order.

    Every parameter is first rounded to float32 (a float64 layer's values are cast, round to nearest);
    weights are then quantized by row, biases kept. A parameter with a NaN or an infinity, or with values
    that float32 (or bfloat16) cannot hold, is a ValueError naming it; so is an int8 weight deeper than
    :data:`~rnnfast._reference_reduced.INT8_MAX_DEPTH` (its sums could overflow the kernels' int32).
    """
    params: dict[str, np.ndarray] = {}
    for name, value in float_params.items():
        value = np.asarray(value)
        if weight_dtype == "int8" and is_weight(name) and value.shape[1] > INT8_MAX_DEPTH:
            raise ValueError(f"{name} has {value.shape[1]} columns: int8 products accumulate in int32, which holds "
                             f"any sum of at most {INT8_MAX_DEPTH} (input_size and hidden_size must not exceed it); "
                             "use 'bf16'")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} has {int((~np.isfinite(value)).sum())} NaN or infinite values: only finite "
                             "parameters can be quantized")
        with np.errstate(over="ignore"):
            value32 = value.astype(np.float32)
        if not np.isfinite(value32).all():
            raise ValueError(f"{name} has values beyond float32's range (largest magnitude "
                             f"{float(np.abs(value).max()):.6g}): they cannot be quantized")
        if not is_weight(name):
            params[name] = value32
            continue
        values, scales = quantize_weight(value32, weight_dtype)
        if weight_dtype == "bf16" and not np.isfinite(bf16_to_float32(values)).all():
            raise ValueError(f"{name} has values beyond bfloat16's range (largest magnitude "
                             f"{float(np.abs(value32).max()):.6g}): they round to infinity")
        params[name] = values
        if scales is not None:
            params[name + SCALE_SUFFIX] = scales
    return params


def inference_only_error(layer: str, weight_dtype: str, call: str) -> RuntimeError:
    """The error a training call (``call``) on a layer quantized to ``weight_dtype`` raises."""
    return RuntimeError(
        f"{call} is a training call, and this {layer} quantized to {weight_dtype} is inference-only: quantized "
        "layers have no float weights or gradients to train. Train the float model and quantize it again "
        "with rnnfast.quantize(model, weight_dtype)."
    )


class QuantizedWeight:
    """One quantized weight matrix of a cell, and the kernels' pack of it, made on first use and kept.

    ``values``: int8 (G*H, K) for 'int8' with ``scales`` float32 (G*H,); bfloat16 bits uint16 (G*H, K) for
    'bf16' with ``scales`` None. The arrays are read-only, so the pack can never go stale.
    """

    __slots__ = ("cell", "weight_dtype", "values", "scales", "_native")

    def __init__(self, cell: str, weight_dtype: str, values: np.ndarray, scales: Optional[np.ndarray]) -> None:
        self.cell = cell
        self.weight_dtype = weight_dtype
        self.values = read_only_copy(values)
        self.scales = None if scales is None else read_only_copy(scales)
        self._native: Any = None

    def native(self) -> Any:
        """The ``_core.ReducedWeights`` of these values, packed on the first call.

        Two threads calling at once may both pack; either pack is the same, and one is kept.
        """
        native = self._native
        if native is None:
            native = _core.ReducedWeights(self.cell, self.weight_dtype, self.values, self.scales)
            self._native = native
        return native

    # The native pack cannot be pickled: it is dropped and remade from the arrays on first use.
    def __getstate__(self) -> tuple:
        return self.cell, self.weight_dtype, self.values, self.scales

    def __setstate__(self, state: tuple) -> None:
        # The arrays are fresh from the pickle, shared only with the layer's parameters (which the memo
        # keeps the same objects): made read-only in place rather than copied.
        self.cell, self.weight_dtype, self.values, self.scales = state
        for a in (self.values, self.scales):
            if a is not None:
                a.flags.writeable = False
        self._native = None


def read_only_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` that cannot be written (the layer owns it; nobody else has it)."""
    copy = np.array(a, order="C", copy=True)
    copy.flags.writeable = False
    return copy
