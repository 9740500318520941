"""Keras 3: :func:`from_keras` (``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN`` of one such cell, and
``Bidirectional`` around any of them; whole models in :mod:`._keras_models`). keras is imported only inside
the function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._rnn_base import parameter_name
from .._variants import Activation, activation_from_keras
from ._conversion import build_layer, gates_to_rnnfast, import_optional, permute_gates
from ._variant import LayerVariant

__all__ = ["from_keras"]

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
    kernel = _keras_array(keras, cell_obj.kernel)
    recurrent = _keras_array(keras, cell_obj.recurrent_kernel)
    units = int(recurrent.shape[0])
    perm = gates_to_rnnfast(family, _KERAS_GATES[family])
    w_ih = permute_gates(kernel.T, perm)
    w_hh = permute_gates(recurrent.T, perm)
    b_ih = b_hh = None
    use_bias = bool(cfg.get("use_bias", True))
    if use_bias:
        bias = _keras_array(keras, cell_obj.bias)
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


def from_keras(layer: Any) -> Any:
    """Convert a built Keras 3 recurrent layer into an rnnfast layer with ``batch_first=True``, and a built
    ``keras.Sequential`` or Functional model that is a chain of layers into an :class:`rnnfast.nn.Sequential`.

    Supported: ``keras.layers.SimpleRNN``, ``LSTM`` and ``GRU`` (``reset_after`` True or False), a
    ``keras.layers.RNN`` around one ``SimpleRNNCell``/``LSTMCell``/``GRUCell``, ``go_backwards=True``
    (``direction='reverse'``), and ``Bidirectional`` around any of them with ``merge_mode='concat'``.
    ``activation`` and ``recurrent_activation`` are any Keras activation rnnfast has
    (:func:`rnnfast._variants.activation_from_keras`: linear, sigmoid, tanh, relu, relu6, elu, selu,
    softsign, softplus, exponential, silu/swish, hard_sigmoid (Keras 3's ``relu6(x + 3) / 6``),
    leaky_relu): ``activation`` is the RNN's activation, the LSTM's roles g and h and the GRU's role g,
    ``recurrent_activation`` the gates' role f (``rnnfast.LSTM(activation=..., recurrent_activation=...)``
    are the same). Kernels (I, G*H) are transposed and the gates reordered (GRU z,r,h to r,z,n; the LSTM's
    i,f,c,o is already rnnfast's i,f,g,o); the single bias of SimpleRNN, LSTM and GRU with
    ``reset_after=False`` becomes ``bias_ih`` (``bias_hh`` zeros); the GRU's (2, 3H) bias with
    ``reset_after=True`` is [``bias_ih``, ``bias_hh``]. ``reset_after=False`` is rnnfast's
    ``GRU(reset_after=False)``: the reset gate multiplies h before the recurrent product.

    How the Keras call maps to ``out, state = model(x, state)``, x (B, T, I):

    - ``return_sequences=True`` output is ``out`` (B, T, D*H); without it, Keras returns the last output,
      which is ``out[:, -1]`` for one direction and ``np.concatenate([h_n[0], h_n[1]], -1)`` for
      ``Bidirectional`` (``h_n`` (D, B, H));
    - ``go_backwards=True`` (outside ``Bidirectional``): Keras returns the outputs in the order it computes
      them, from the last time step to the first, where rnnfast's reverse direction aligns ``out[:, t]``
      with ``x[:, t]``: Keras's ``return_sequences`` output is ``out[:, ::-1]``, and its last output
      ``out[:, 0]`` (= ``h_n[0]``);
    - ``return_state`` states are ``h_n[d]`` (and ``c_n[d]``) for direction d; Keras's ``initial_state``
      [h, (c)] per direction is ``state`` stacked on axis 0;
    - ``dropout``/``recurrent_dropout`` act only in training; ``unroll``, ``unit_forget_bias`` and the
      initializers do not change the computation; ``stateful`` layers keep the state between calls,
      which here is passed explicitly (``state=`` or ``model.stepper``);
    - Keras masks (from ``Masking`` or ``mask_zero``) repeat the previous state at masked steps, a different
      rule from rnnfast's ``lengths=`` (zeros past each sequence's end): the converted model sees no mask.

    Whole models: a ``keras.Sequential``, or a Functional model with one input and one output in which each
    layer feeds only the next (nested such models are flattened), becomes an :class:`rnnfast.nn.Sequential`
    whose ``model.predict(x)`` gives Keras's ``predict(x)`` (x batch-first, as in Keras), the modules named
    after the Keras layers (e.g. ``'lstm'``; what a layer adds after its own module, ``'dense_softmax'``,
    ``'lstm_laststep'``). Layer by layer: ``InputLayer`` -> nothing; ``Embedding`` -> :class:`~rnnfast.nn.Embedding`;
    ``SimpleRNN``/``LSTM``/``GRU``/``RNN`` -> the layer converted as above, followed by
    :class:`~rnnfast.nn.LastStep` when ``return_sequences=False``; ``Bidirectional`` (``merge_mode='concat'``,
    ``return_sequences=True``) -> the bidirectional layer; ``Dense`` -> :class:`~rnnfast.nn.Linear` (the kernel
    (in, out) transposed into ``weight`` (out, in)) followed by its activation's module; ``Dropout`` ->
    :class:`~rnnfast.nn.Dropout` (``rate``); ``Activation``, ``ReLU`` (plain), ``LeakyReLU``, ``ELU``,
    ``Softmax`` -> their modules. The activations: linear (nothing), relu, tanh, sigmoid, softmax (last axis),
    gelu (Keras's default exact form), elu, selu, softplus, silu/swish, leaky_relu (slope 0.2). Every layer is
    converted before the model is built: one that does not convert refuses the whole model, the message naming
    the layer (name and class) and the option. Refused, and why:

    - ``Embedding(mask_zero=True)`` (and ``Masking``): Keras skips the masked steps wherever they are, holding
      the state and (outside Bidirectional) repeating the previous output; rnnfast's ``lengths=`` zero the
      steps past each sequence's end. They agree only on post-padded input and outputs read at valid steps
      (e.g. ``return_sequences=False``), which the converter cannot know, so it does not guess: rebuild the
      model with ``mask_zero=False`` to convert it, and give rnnfast ``lengths=`` for post-padded input;
    - ``Bidirectional`` with ``return_sequences=False``: Keras returns the backward direction's final state
      (its output at the first step) with the forward one's last output, which no module picks; use
      ``return_sequences=True`` and reduce after, or convert the layer alone and take ``h_n``;
    - ``go_backwards=True`` outside Bidirectional (Keras returns its outputs reversed in time),
      ``return_state``, ``stateful``; a ``Dropout`` with ``noise_shape``; an activation other than those
      above; a layer without parameters computing in another dtype than the layers around it (Keras casts
      there); branches, several inputs or outputs, subclassed models; any other layer.

    Raises
    ------
    NotImplementedError
        Naming the option (and for a model the layer), for what does not map exactly: the refusals of a
        model above; an ``activation`` or ``recurrent_activation``
        rnnfast does not have (e.g. 'gelu', 'mish', 'softmax', a custom function), ``merge_mode`` other
        than 'concat', a ``Bidirectional`` whose two layers differ (but in their activations, which rnnfast
        holds per direction) or whose forward layer has ``go_backwards=True``.
    TypeError
        For anything but the supported layers and models (or subclasses overriding ``call``), or a dtype
        policy that does not compute in float32 or float64.
    ValueError
        If the layer is not built (has no weights yet).
    ImportError
        If keras is not importable.
    """
    keras = import_optional("keras", "rnnfast.from_keras")
    if isinstance(layer, keras.Model):
        from ._keras_models import model_from_keras

        return model_from_keras(keras, layer)
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
