"""Keras 3: :func:`rnnfast.from_keras` of a whole model, a ``keras.Sequential`` or a Functional model that is
a linear chain (each layer feeding only the next), as an :class:`rnnfast.nn.Sequential` (batch-first, as
Keras). The recurrent layers go through :mod:`.keras3`'s converter. keras is imported by the caller.

Every layer is converted before the model is built, so a layer that does not convert refuses the whole model,
naming the layer (its name and class) and the option: nothing is half-converted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .. import nn
from ..nn.sequential import Sequential
from ._keras_layer import keras_array, layer_from_keras

__all__ = ["model_from_keras"]


def _label(layer: Any) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


def _activation_modules(keras: Any, fn: Any, label: str) -> list[Any]:
    """The rnnfast modules computing the Keras activation function ``fn`` (none for 'linear'), else
    NotImplementedError naming it."""
    A = keras.activations
    table: list[tuple[Any, Any]] = [(A.linear, list), (A.relu, lambda: [nn.ReLU()]), (A.tanh, lambda: [nn.Tanh()]),
             (A.sigmoid, lambda: [nn.Sigmoid()]), (A.softmax, lambda: [nn.Softmax(axis=-1)]),
             (A.gelu, lambda: [nn.GELU()]),   # Keras's gelu defaults to the exact erf form, as rnnfast's
             (A.elu, lambda: [nn.ELU(1.0)]), (A.selu, lambda: [nn.SELU()]), (A.softplus, lambda: [nn.Softplus()]),
             (A.silu, lambda: [nn.SiLU()]), (A.leaky_relu, lambda: [nn.LeakyReLU(0.2)])]
    for keras_fn, build in table:
        if fn is keras_fn:
            modules: list[Any] = build()
            return modules
    name = getattr(fn, "__name__", repr(fn))
    raise NotImplementedError(
        f"{label} has activation {name!r}, which rnnfast's modules do not compute (option 'activation'); they "
        "compute linear, relu, tanh, sigmoid, softmax, gelu, elu, selu, softplus, silu/swish and leaky_relu")


def _check_dtype(layer: Any, label: str) -> np.dtype:
    """The layer's compute dtype (float32 or float64, its weights the same, not quantized), else TypeError."""
    policy = getattr(layer, "dtype_policy", None)
    compute = str(getattr(layer, "compute_dtype", None) or getattr(policy, "compute_dtype", "float32"))
    quantized = getattr(policy, "quantization_mode", None) or getattr(layer, "quantization_mode", None)
    variables = {str(v.dtype) for v in layer.weights}
    if compute not in ("float32", "float64") or quantized or variables - {compute}:
        raise TypeError(f"{label} computes in {compute} with weights of dtype {', '.join(sorted(variables))} (its "
                        f"dtype policy {getattr(policy, 'name', policy)!r}); rnnfast converts layers that compute in "
                        "float32 or float64 with weights of the same dtype")
    return np.dtype(compute)


def _recurrent(keras: Any, layer: Any, label: str) -> list[Any]:
    """A Keras recurrent layer (or Bidirectional) as [rnnfast layer] or [layer, LastStep]."""
    bidirectional = isinstance(layer, keras.layers.Bidirectional)
    for option in ("return_state", "stateful"):
        inner = layer.forward_layer if bidirectional else layer
        if getattr(inner, option, False) or getattr(layer, option, False):
            raise NotImplementedError(
                f"{label} has {option}=True, which a model of rnnfast's Sequential does not express (inside it a "
                f"layer starts at zeros and passes on its output sequence only) (option {option!r})")
    if not bidirectional and layer.go_backwards:
        raise NotImplementedError(
            f"{label} has go_backwards=True: Keras returns its outputs from the last step to the first, which no "
            "rnnfast module reverses back inside a Sequential (option 'go_backwards'); convert the layer on its own "
            "with rnnfast.from_keras (a reverse layer)")
    if bidirectional and not layer.return_sequences:
        raise NotImplementedError(
            f"{label} has return_sequences=False: Keras then returns the forward direction's last output with the "
            "backward direction's final state (its output at the first step), which LastStep does not pick (it "
            "takes both directions at the last step) (option 'return_sequences'); use return_sequences=True, or "
            "convert the layer on its own with rnnfast.from_keras and take h_n")
    try:
        rnn = layer_from_keras(keras, layer)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise type(exc)(f"{label}: {exc}") from None
    return [rnn] if layer.return_sequences else [rnn, nn.LastStep(batch_first=True)]


def _layer_modules(keras: Any, layer: Any) -> list[Any]:
    """The rnnfast modules computing the Keras layer ``layer`` (at inference), in order."""
    L, label = keras.layers, _label(layer)
    if isinstance(layer, L.InputLayer):
        return []
    if isinstance(layer, (L.Bidirectional, L.RNN)):   # SimpleRNN, LSTM and GRU are keras.layers.RNN
        return _recurrent(keras, layer, label)
    if isinstance(layer, (L.Dense, L.Embedding, L.Dropout, L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax)):
        for cls in (L.Dense, L.Embedding, L.Dropout, L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax):
            if isinstance(layer, cls) and type(layer).call is not cls.call:
                raise TypeError(f"{label} is a subclass of keras.layers.{cls.__name__} that overrides call; only "
                                "Keras's own computation converts exactly")
    else:
        raise TypeError(f"{label} has no rnnfast module: from_keras converts InputLayer, Embedding, SimpleRNN, "
                        "LSTM, GRU, RNN, Bidirectional, Dense, Dropout and the activation layers (Activation, "
                        "ReLU, LeakyReLU, ELU, Softmax)")
    if not layer.built:
        raise ValueError(f"{label} has no weights yet: build the model (call it on an input, or give it an Input) "
                         "first")
    if isinstance(layer, L.Dense):
        dtype = _check_dtype(layer, label)
        kernel = keras_array(keras, layer.kernel)
        linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=layer.use_bias, dtype=dtype)
        params = {"weight": kernel.T}   # Keras's kernel is (in, out), Linear's weight (out, in)
        if layer.use_bias:
            params["bias"] = keras_array(keras, layer.bias)
        linear.load_state_dict(params)
        return [linear] + _activation_modules(keras, layer.activation, label)
    if isinstance(layer, L.Embedding):
        if layer.mask_zero:
            raise NotImplementedError(
                f"{label} has mask_zero=True: Keras then skips the steps of token 0 wherever they are (the state "
                "held, and the outputs repeated at those steps unless a Bidirectional zeroes them), which rnnfast's "
                "lengths= (zeros past each sequence's end) do not compute (option 'mask_zero'); rebuild the model "
                "with mask_zero=False to convert it (for post-padded input, then give rnnfast lengths=)")
        dtype = _check_dtype(layer, label)
        table = keras_array(keras, layer.embeddings)
        emb = nn.Embedding(table.shape[0], table.shape[1], dtype=dtype)
        emb.load_state_dict({"weight": table})
        return [emb]
    if isinstance(layer, L.Dropout):
        if layer.noise_shape is not None:
            raise NotImplementedError(f"{label} has noise_shape={layer.noise_shape}: its mask is shared along axes, "
                                      "rnnfast's Dropout draws one per element (option 'noise_shape')")
        return [nn.Dropout(float(layer.rate))]
    if isinstance(layer, L.Activation):
        return _activation_modules(keras, layer.activation, label)
    if isinstance(layer, L.Softmax):
        return [nn.Softmax(axis=int(layer.axis))] if isinstance(layer.axis, int) else _refuse(
            label, "axis", layer.axis, "one axis")
    if isinstance(layer, L.ELU):
        return [nn.ELU(float(layer.alpha))]
    if isinstance(layer, L.LeakyReLU):
        return [nn.LeakyReLU(float(layer.negative_slope))]
    cfg = layer.get_config()   # ReLU: max(x, 0) only with its defaults
    for option, default in (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0)):
        if cfg.get(option, default) != default:
            _refuse(label, option, cfg[option], f"{default} (plain relu)")
    return [nn.ReLU()]


def _refuse(label: str, option: str, value: Any, wanted: str) -> list[Any]:
    raise NotImplementedError(f"{label} has {option}={value!r}; rnnfast converts {wanted} (option {option!r})")


def _chain(keras: Any, model: Any, label: str) -> list[Any]:
    """The layers of a Keras Sequential, or of a Functional model that is a linear chain, input to output."""
    if isinstance(model, keras.Sequential):
        if type(model).call is not keras.Sequential.call:
            raise TypeError(f"{label} is a subclass of keras.Sequential that overrides call")
        return list(model.layers)
    from keras.src.models.functional import Functional  # type: ignore[import-untyped]

    if not isinstance(model, Functional) or type(model).call is not Functional.call:
        raise TypeError(f"{label} is a subclassed keras.Model (its call is Python code rnnfast cannot read); "
                        "from_keras converts keras.Sequential and Functional models that are a chain of layers")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NotImplementedError(f"{label} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; rnnfast's "
                                  "Sequential has one of each")
    chain: list[Any] = []
    tensor = model.outputs[0]
    start = model.inputs[0]
    while tensor is not start:
        history = tensor._keras_history
        layer = history.operation
        node = layer._inbound_nodes[history.node_index]
        inputs = list(node.input_tensors)
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"{label} applies the operation {type(layer).__name__} {getattr(layer, 'name', '')!r}, "
                            "which is not a layer rnnfast converts")
        if len(inputs) != 1:
            raise NotImplementedError(f"{label} is not a chain: {_label(layer)} takes {len(inputs)} inputs; rnnfast's "
                                      "Sequential passes one tensor from each layer to the next")
        chain.append(layer)
        tensor = inputs[0]
    chain.reverse()
    on_path = {id(layer) for layer in chain}
    extra = [layer for layer in model.layers
             if id(layer) not in on_path and not isinstance(layer, keras.layers.InputLayer)]
    if extra:
        raise NotImplementedError(f"{label} is not a chain: {', '.join(_label(layer) for layer in extra)} are not on "
                                  "the path from its input to its output")
    return chain


def _flatten(keras: Any, model: Any, label: str) -> list[Any]:
    """The layers of ``model``, nested Sequential and Functional models replaced by their layers."""
    out = []
    for layer in _chain(keras, model, label):
        if isinstance(layer, keras.Model):
            out += _flatten(keras, layer, f"{_label(layer)} in {label}")
        else:
            out.append(layer)
    return out


def model_from_keras(keras: Any, model: Any) -> Sequential:
    """:func:`rnnfast.from_keras` of a Keras model (its docstring has the details)."""
    label = f"model {model.name!r} ({type(model).__name__})"
    children: OrderedDict[str, Any] = OrderedDict()
    data_dtype = None   # the dtype of the floats between layers, once a layer with weights set it
    for layer in _flatten(keras, model, label):
        modules = _layer_modules(keras, layer)
        compute = np.dtype(str(getattr(layer, "compute_dtype", None) or "float32"))
        if layer.weights:
            data_dtype = compute
        elif modules and data_dtype is not None and compute != data_dtype:
            # Keras casts the layer's input to its compute dtype; rnnfast's modules without parameters compute in
            # their input's dtype, so the rounding would be missing.
            raise TypeError(f"{_label(layer)} computes in {compute.name} between layers that compute in "
                            f"{data_dtype.name} (Keras casts to it); give the layer dtype={data_dtype.name!r}")
        base = layer.name.replace(".", "_") or "layer"
        for i, module in enumerate(modules):
            # the layer's own module under its name, what follows it (an activation, LastStep) after it
            name = base if i == 0 else f"{base}_{type(module).__name__.lower()}"
            unique, k = name, 1
            while unique in children:
                unique, k = f"{name}_{k}", k + 1
            children[unique] = module
    if not children:
        raise ValueError(f"{label} computes nothing rnnfast has a module for (it has only input or linear layers)")
    return Sequential(children)
