"""Keras 3's recurrent layers: ``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN`` of one such cell, and ``Bidirectional``
around any of them -> rnnfast's layers (:func:`layer_from_keras`), below both the public :mod:`.keras3` and the
whole-model :mod:`._keras_models`. keras is imported by the callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._rnn_base import parameter_name
from .._variants import Activation, activation_from_keras
from ._conversion import Model, build_layer, gates_to_rnnfast, permute_gates
from ._variant import LayerVariant

__all__ = ["layer_from_keras", "keras_array"]

# Keras's gate order per cell family, in rnnfast's gate names (Keras calls the LSTM's g 'c' and the
# GRU's n 'h'): LSTM i, f, c, o (rnnfast's own); GRU z, r, h.
_KERAS_GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n")}


@dataclass
class _KerasSpec:
    family: str
    units: int
    input_size: int
    bias: bool
    dtype: np.dtype
    go_backwards: bool
    activations: tuple   # one Activation per gate role, in ONNX's role order (rnnfast._variants.ROLES)
    reset_after: bool
    params: tuple   # (w_ih, w_hh, b_ih or None, b_hh or None) in rnnfast's gate order


def _keras_name(value: Any) -> str:
    """A serialized Keras activation as a plain name ('tanh'), or a description of what it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("config", value.get("class_name", value)))
    return getattr(value, "__name__", repr(value))


def keras_array(keras: Any, variable: Any) -> np.ndarray:
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
        f"{what} must be a Keras 3 SimpleRNN, LSTM, GRU, RNN (of one such cell) or Bidirectional layer, or a "
        f"keras.Sequential or Functional model, got {type(layer).__name__}"
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

    keras_major = int(str(getattr(keras, "version", lambda: "3")()).split(".")[0])
    activation = _keras_activation(cfg, "activation", name, keras_major)
    if family == "rnn":
        activations: tuple = (activation,)
    else:
        recurrent = _keras_activation(cfg, "recurrent_activation", name, keras_major)
        # Keras's activation is the candidate's (role g) and, in the LSTM, the cell output's (role h);
        # recurrent_activation is the gates' (role f).
        activations = (recurrent, activation, activation) if family == "lstm" else (recurrent, activation)
    reset_after = bool(cfg.get("reset_after", True)) if family == "gru" else True

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
    kernel = keras_array(keras, cell_obj.kernel)
    recurrent = keras_array(keras, cell_obj.recurrent_kernel)
    units = int(recurrent.shape[0])
    perm = gates_to_rnnfast(family, _KERAS_GATES[family])
    w_ih = permute_gates(kernel.T, perm)
    w_hh = permute_gates(recurrent.T, perm)
    b_ih = b_hh = None
    use_bias = bool(cfg.get("use_bias", True))
    if use_bias:
        bias = keras_array(keras, cell_obj.bias)
        if family == "gru" and reset_after:
            if bias.shape != (2, 3 * units):
                raise ValueError(f"{name} has a bias of shape {bias.shape}, expected (2, {3 * units}) for "
                                 "reset_after=True")
            b_ih, b_hh = permute_gates(bias[0], perm), permute_gates(bias[1], perm)
        else:
            # one bias, added with the input's product (the GRU with reset_after=False has no recurrent bias)
            b_ih, b_hh = permute_gates(bias, perm), np.zeros_like(bias)
    return _KerasSpec(family, units, int(kernel.shape[0]), use_bias, compute, bool(layer.go_backwards),
                      activations, reset_after, (w_ih, w_hh, b_ih, b_hh))


def _keras_activation(cfg: dict, option: str, name: str, keras_major: int) -> Activation:
    """The Activation of the cell's option ``option`` ('activation' or 'recurrent_activation'), or
    NotImplementedError naming the option."""
    value = _keras_name(cfg.get(option))
    try:
        return activation_from_keras(value, keras_major)
    except ValueError as exc:
        raise NotImplementedError(f"{name} has {option}={value!r}, which rnnfast cannot compute (option "
                                  f"{option!r}): {exc}") from None


def layer_from_keras(keras: Any, layer: Any) -> Model:
    """:func:`rnnfast.from_keras` of one recurrent layer (or Bidirectional); :mod:`.keras3` has the details."""
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
        for field in ("family", "units", "input_size", "bias", "dtype", "reset_after"):
            if getattr(fwd, field) != getattr(bwd, field):
                raise NotImplementedError(
                    f"Bidirectional layer {layer.name!r} has different {field} in its forward ({getattr(fwd, field)}) "
                    f"and backward ({getattr(bwd, field)}) layers; rnnfast's two directions share one configuration"
                )
        specs, direction = [fwd, bwd], "bidirectional"
    else:
        spec = _keras_spec(keras, layer, "layer")
        # go_backwards runs over the time-reversed input: rnnfast's reverse-only direction (whose out[:, t]
        # is aligned with x[:, t], where Keras returns the outputs in the order it computed them).
        specs, direction = [spec], "reverse" if spec.go_backwards else "forward"
    first = specs[0]
    variant = LayerVariant(first.family, tuple(spec.activations for spec in specs), direction,
                           reset_after=first.reset_after)
    params = {}
    for d, spec in zip(variant.directions, specs):
        w_ih, w_hh, b_ih, b_hh = spec.params
        params[parameter_name("weight_ih", 0, d)] = w_ih
        params[parameter_name("weight_hh", 0, d)] = w_hh
        if first.bias:
            params[parameter_name("bias_ih", 0, d)] = b_ih
            params[parameter_name("bias_hh", 0, d)] = b_hh
    return build_layer(variant, first.input_size, first.units, 1, bias=first.bias, batch_first=True,
                       dtype=first.dtype, params=params)
