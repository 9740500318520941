"""Keras 3: :func:`from_keras` (``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN`` of one such cell, and
``Bidirectional`` around any of them). keras is imported only inside the function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._cells import RNN_NONLINEARITIES, rnn_cell
from .._rnn_base import parameter_name
from ._conversion import Model, build_layer, gates_to_rnnfast, import_optional, permute_gates

__all__ = ["from_keras"]

# Keras's gate order per cell family, in rnnfast's gate names (Keras calls the LSTM's g 'c' and the
# GRU's n 'h'): LSTM i, f, c, o (rnnfast's own); GRU z, r, h.
_KERAS_GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "n")}


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
    allowed = RNN_NONLINEARITIES if family == "rnn" else ("tanh",)
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
    cell = rnn_cell(activation).name if family == "rnn" else family
    perm = gates_to_rnnfast(cell, _KERAS_GATES[family])
    w_ih = permute_gates(kernel.T, perm)
    w_hh = permute_gates(recurrent.T, perm)
    b_ih = b_hh = None
    use_bias = bool(cfg.get("use_bias", True))
    if use_bias:
        bias = _keras_array(keras, cell_obj.bias)
        if family == "gru":
            if bias.shape != (2, 3 * units):
                raise ValueError(f"{name} has a bias of shape {bias.shape}, expected (2, {3 * units}) for reset_after")
            b_ih, b_hh = permute_gates(bias[0], perm), permute_gates(bias[1], perm)
        else:
            b_ih, b_hh = permute_gates(bias, perm), np.zeros_like(bias)
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
    keras = import_optional("keras", "rnnfast.from_keras")
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
        params[parameter_name("weight_ih", 0, d)] = w_ih
        params[parameter_name("weight_hh", 0, d)] = w_hh
        if first.bias:
            params[parameter_name("bias_ih", 0, d)] = b_ih
            params[parameter_name("bias_hh", 0, d)] = b_hh
    return build_layer(first.cell, first.input_size, first.units, 1, bias=first.bias, batch_first=True,
                  bidirectional=len(specs) == 2, dtype=first.dtype, params=params)
