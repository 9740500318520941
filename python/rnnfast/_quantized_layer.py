"""What a layer made by :func:`rnnfast.quantize` adds to :class:`~rnnfast._rnn_base.RNNBase` (a base
class of it): its weight dtype, how it holds its reduced-precision parameters, how it runs one layer
direction through the reduced-precision op, and the refusal of every training call.

A quantized layer is the same class as the float layer it came from, holding the parameters of
:mod:`rnnfast._quantized` and computing in float32; a float layer has ``_weight_dtype`` None and none of
this applies to it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Optional

import numpy as np

from ._quantized import SCALE_SUFFIX, QuantizedWeight, inference_only_error, is_weight, read_only_copy
from ._reduced_native import reduced_forward as native_reduced_forward


class QuantizedLayer:
    """The reduced-precision side of a recurrent layer (a base of RNNBase, which supplies ``_cell``,
    ``_dtype``, ``_params``, ``_rng``, ``_cache`` and ``grads``)."""

    # Set on layers made by rnnfast.quantize only (class defaults keep float layers pickled before them loadable).
    _weight_dtype: Optional[str] = None  # 'int8' or 'bf16'
    _quantized_weights: Optional[dict] = None  # QuantizedWeight by weight name

    @property
    def weight_dtype(self) -> str:
        """The weights' dtype: 'float32' or 'float64' (as :attr:`dtype`), or 'int8' or 'bf16' for a layer
        made by :func:`rnnfast.quantize`."""
        return self._weight_dtype or self._dtype.name

    def _refuse_training(self, call: str) -> None:
        """Raises the inference-only error for the training call ``call`` on a quantized layer."""
        if self._weight_dtype is not None:
            raise inference_only_error(type(self).__name__, self._weight_dtype, call)

    def _set_quantized_parameters(self, params: Mapping[str, np.ndarray]) -> None:
        """Hold ``params`` (checked, every name of the layer) as this quantized layer's parameters."""
        weights, values = {}, {}
        for name, value in params.items():
            if name.endswith(SCALE_SUFFIX):
                continue
            if is_weight(name):
                w = QuantizedWeight(self._cell, self._weight_dtype, value, params.get(name + SCALE_SUFFIX))
                weights[name] = w
                values[name] = w.values
                if w.scales is not None:
                    values[name + SCALE_SUFFIX] = w.scales
            else:
                values[name] = read_only_copy(value)
        self._params = {name: values[name] for name in params}  # the caller's order (PyTorch's)
        self._quantized_weights = weights

    def _quantized_copy(self, weight_dtype: str, params: Mapping[str, np.ndarray]):
        """A new layer of this class and configuration, quantized to ``weight_dtype``, holding ``params``
        (:func:`rnnfast._quantized.quantize_parameters` of this layer's, or checked ones of its kind)."""
        q = copy.copy(self)  # the class (a subclass too) and the configuration; nothing of it is shared below
        q._weight_dtype = weight_dtype
        q._dtype = np.dtype(np.float32)
        q._rng = copy.deepcopy(self._rng)
        q._cache = None
        q.grads = {}  # nothing to train
        q._set_quantized_parameters(params)
        return q

    def _run_reduced_direction(self, native: bool, ops, x: np.ndarray, h0, c0, weights: tuple, lengths) -> tuple:
        """(out, h_n, c_n or None) of one layer and direction of this quantized layer: the native op, or
        ``ops.reduced_forward`` (the reference, when the tests swap the ops)."""
        w_ih, w_hh, b_ih, b_hh = weights
        if native:
            return native_reduced_forward(self._cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths)
        return ops.reduced_forward(self._cell, x, h0, c0, w_ih.values, w_hh.values, b_ih, b_hh,
                                   weight_dtype=self._weight_dtype, w_ih_scales=w_ih.scales,
                                   w_hh_scales=w_hh.scales, lengths=lengths)
