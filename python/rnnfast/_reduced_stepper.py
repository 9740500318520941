"""The engine of a quantized layer's :class:`~rnnfast.stepper.Stepper`: :class:`ReducedStepper`.

It has the interface of the native ``_core.Stepper`` that float layers stream on (``run``, ``step``,
``reset``, ``get_state``) and runs each call as the layer does, one ``_core.reduced_forward`` per layer
over the steps given (one step for ``step``, the whole chunk for ``step_many``), the state carried between
calls. The kernels have no reduced-precision stepper of their own (yet); this costs a Python call and
the kernels' per-call setup per layer and step, but computes exactly what the layer computes.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._quantized import SCALE_SUFFIX, QuantizedWeight
from ._reduced_native import reduced_forward

__all__ = ["ReducedStepper"]


class ReducedStepper:
    """Streaming state and weights of a stack of unidirectional quantized layers.

    Parameters
    ----------
    cell : 'rnn_tanh', 'rnn_relu', 'lstm' or 'gru'
    weight_dtype : 'int8' or 'bf16'
    hidden_size, batch : int
    params : dict
        The layer's parameters (:meth:`RNNBase.parameters` of a quantized layer), copied here.
    num_layers : int
    """

    def __init__(self, cell: str, weight_dtype: str, hidden_size: int, batch: int, params: dict,
                 num_layers: int) -> None:
        self._cell = cell
        self._lstm = cell == "lstm"
        self._shape = (num_layers, batch, hidden_size)
        self._layers = []
        for k in range(num_layers):
            weights = []
            for base in ("weight_ih", "weight_hh"):
                name = f"{base}_l{k}"
                # QuantizedWeight copies the arrays: later changes of the layer do not reach the stepper.
                weights.append(QuantizedWeight(cell, weight_dtype, params[name], params.get(name + SCALE_SUFFIX)))
            biases = [None if params.get(f"{b}_l{k}") is None else np.array(params[f"{b}_l{k}"], np.float32)
                      for b in ("bias_ih", "bias_hh")]
            self._layers.append((*weights, *biases))
        self._h = np.zeros(self._shape, np.float32)
        self._c = np.zeros(self._shape, np.float32) if self._lstm else None

    def step(self, x: Any, out: Optional[np.ndarray], unbatched: bool) -> None:
        """No fast path: the Stepper's checks convert and call :meth:`run`."""
        return None

    def run(self, x: np.ndarray, out: np.ndarray) -> None:
        """Advance over ``x`` (steps, batch, I), or one step (batch, I), writing the top layer's outputs
        into ``out`` ((steps, batch, H) or (batch, H)); both float32, checked by the Stepper."""
        one_step = x.ndim == 2
        inp = x[None] if one_step else x
        for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(self._layers):
            c0 = self._c[k] if self._lstm else None
            inp, h_n, c_n = reduced_forward(self._cell, inp, self._h[k], c0, w_ih, w_hh, b_ih, b_hh, None)
            self._h[k] = h_n
            if self._lstm:
                self._c[k] = c_n
        out[...] = inp[0] if one_step else inp

    def reset(self, h0: Optional[np.ndarray], c0: Optional[np.ndarray]) -> None:
        """Set the state: (num_layers, batch, H) float32 arrays, None for zeros."""
        self._h[...] = 0 if h0 is None else h0
        if self._lstm:
            self._c[...] = 0 if c0 is None else c0

    def get_state(self, h: np.ndarray, c: Optional[np.ndarray]) -> None:
        """Copy the state into ``h`` (and ``c`` for the LSTM), (num_layers, batch, H)."""
        h[...] = self._h
        if c is not None:
            c[...] = self._c
