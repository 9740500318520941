"""What a layer holds of its parameters (:class:`LayerParameters`, a base of
:class:`~rnnfast._rnn_base.RNNBase`): their PyTorch names, the arrays one layer and direction runs on, and
``parameters``/``state_dict``/``load_state_dict``/``zero_grad``. A quantized layer's are its reduced-precision
weights (:class:`~rnnfast._quantized_layer.QuantizedLayer`, the other base, makes and checks them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._quantized import check_quantized_value
from ._validation import as_array, cast

ArrayLike = Any

__all__ = ["LayerParameters", "parameter_name"]


def parameter_name(base: str, layer: int, direction: int) -> str:
    """PyTorch's name of a parameter: ``parameter_name("weight_ih", 1, 1)`` is ``'weight_ih_l1_reverse'``."""
    return f"{base}_l{layer}" + ("_reverse" if direction == 1 else "")


class LayerParameters:
    """The parameters of a recurrent layer, by name (``_params``, made by the layer's constructor), with their
    gradients (``grads``); the layer's ``_bias`` and ``_weight_dtype`` say which there are."""

    _params: dict
    grads: dict

    def _weights(self, layer: int, direction: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh) of one layer and direction; the weights are QuantizedWeight on a
        quantized layer."""
        p = self._params
        if self._weight_dtype is not None:
            q = self._quantized_weights
            w_ih = q[parameter_name("weight_ih", layer, direction)]
            w_hh = q[parameter_name("weight_hh", layer, direction)]
            if self._bias:
                return (w_ih, w_hh, p[parameter_name("bias_ih", layer, direction)],
                        p[parameter_name("bias_hh", layer, direction)])
            return w_ih, w_hh, None, None
        w_ih = p[parameter_name("weight_ih", layer, direction)]
        w_hh = p[parameter_name("weight_hh", layer, direction)]
        if self._bias:
            b_ih = p[parameter_name("bias_ih", layer, direction)]
            return w_ih, w_hh, b_ih, p[parameter_name("bias_hh", layer, direction)]
        return w_ih, w_hh, None, None

    def _variant_weights(self, layer: int, direction: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr, w_ch) of one layer and direction of a float layer, as
        ``variant_forward`` takes them (None where the layer has no such parameter)."""
        p = self._params
        return self._weights(layer, direction) + (p.get(parameter_name("weight_hr", layer, direction)),
                                                  p.get(parameter_name("weight_ch", layer, direction)))

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays by name, in PyTorch's order (updating them in place changes the layer).

        For layer k (input size I_k = input_size for k = 0, else D*R) and each direction (suffix ``''`` or
        ``'_reverse'``; a ``direction='reverse'`` layer has only the latter): ``weight_ih_l{k}`` (G*H, I_k),
        ``weight_hh_l{k}`` (G*H, R) and, with ``bias``, ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), where
        G is 1 (RNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU, gates r, z, n) and R = proj_size or H; then an
        LSTM with ``peepholes`` has ``weight_ch_l{k}`` (3H,) (gates i, f, o) and one with ``proj_size`` P
        ``weight_hr_l{k}`` (P, H), last, as PyTorch orders it.

        A quantized layer's arrays are read-only (change them with :meth:`load_state_dict`): each weight
        is int8 followed by ``weight_..._scale``, its float32 row scales (G*H,) ('int8'), or bfloat16 bits
        as uint16 ('bf16'); the biases are float32 (see :func:`rnnfast.quantize`).
        """
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters by name (see :meth:`parameters`), loadable by :meth:`load_state_dict`."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Copy parameters into the layer (cast to its dtype); the keys and shapes must match exactly.

        A quantized layer takes its own kind of parameters (:meth:`parameters`): weights of exactly its
        weight dtype (int8, or uint16 bfloat16 bits; nothing is cast to them), int8 values in [-127, 127],
        finite non-negative scales and finite bfloat16 values; the scales and biases are cast to float32.

        Parameters
        ----------
        state_dict : mapping of str to array-like
            Exactly the names of :meth:`state_dict`, each with the same shape; e.g. a PyTorch module's
            ``{k: v.numpy() for k, v in module.state_dict().items()}``.

        Raises
        ------
        ValueError
            If keys are missing or unexpected, or a value has the wrong shape (or, quantized, a value
            quantization cannot give). Nothing is changed then.
        TypeError
            If ``state_dict`` is not a mapping, or a value cannot be cast to the layer's dtype (quantized:
            a weight of another dtype).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
        missing = [k for k in self._params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in self._params]
        problems = []
        if missing:
            problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        converted = {}
        wrong = []
        for name, target in self._params.items():
            if name not in state_dict:
                continue
            arr = as_array(f"state_dict[{name!r}]", state_dict[name])
            if arr.shape != target.shape:
                wrong.append(f"{name!r} has shape {arr.shape}, expected {target.shape}")
                continue
            converted[name] = self._converted_parameter(name, arr, target)
        if wrong:
            problems.append("shape mismatch: " + "; ".join(wrong))
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        if self._weight_dtype is not None:
            self._set_quantized_parameters(converted)
            return
        for name, value in converted.items():
            np.copyto(self._params[name], value)

    def _converted_parameter(self, name: str, arr: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``arr`` as parameter ``name`` of this layer, whose current value is ``target``."""
        label = f"state_dict[{name!r}]"
        if target.dtype.kind == "f":
            value = cast(label, arr, target.dtype)
        elif arr.dtype != target.dtype:
            # Casting to int8 would wrap and float weights would need quantizing: neither is a copy.
            raise TypeError(
                f"{label} has dtype {arr.dtype}, expected {target.dtype}: the weights of a layer quantized to "
                f"{self._weight_dtype} are {target.dtype} (quantize a float layer with rnnfast.quantize)"
            )
        else:
            value = arr
        if self._weight_dtype is not None:
            check_quantized_value(name, value, self._weight_dtype)
        return value

    def zero_grad(self) -> None:
        """Set every accumulated parameter gradient in :attr:`grads` to zero."""
        self._refuse_training("zero_grad()")
        for g in self.grads.values():
            g.fill(0)
