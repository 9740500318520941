"""What a saved recurrent layer records (the format of :mod:`rnnfast.io`, versions 1 to 3): the layer's
configuration as JSON, and its checks when read back.

:func:`layer_record` gives the class name, the format version and the configuration of a layer;
:func:`layer_builder` checks a recorded configuration and makes the layer, returning what parameters the
file must hold for it and how to put them in. Everything wrong in a file raises :class:`InvalidFile`, whose
message says what (the reader adds the file's name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from ._quantized import quantized_parameter_spec
from ._reference_reduced import REDUCED_WEIGHT_DTYPES
from ._cells import cell_facts
from ._rnn_base import RNNBase, parameter_count
from ._variants import Activation
from .layers import GRU, LSTM, RNN
from .quantization import quantize

__all__ = ["InvalidFile", "LAYER_CLASSES", "LAYER_FORMAT_VERSION", "layer_record", "layer_builder", "is_number",
           "layer_values", "check_values_fit",
           "Expected", "Finish"]

#: The parameters a file must hold for a model: name -> (shape, dtype).
Expected = dict[str, tuple[tuple[int, ...], np.dtype]]
#: What makes the model once its parameters (checked against Expected) are read: arrays by name -> model.
Finish = Callable[[dict[str, np.ndarray]], Any]

LAYER_CLASSES = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
# Configuration keys and the JSON types each must have (bool is checked before int: JSON true is not 1),
# by format version.
_CONFIG_TYPES_V1 = {
    "input_size": int, "hidden_size": int, "num_layers": int, "bias": bool, "batch_first": bool,
    "bidirectional": bool, "dropout": float, "dtype": str,
}
_CONFIG_TYPES_V2 = {**_CONFIG_TYPES_V1, "weight_dtype": str}
# Markers of the version-3 keys whose JSON value is not one plain type.
_OPTIONAL_NUMBER = "null or a number"
_LIST = "list"
_CONFIG_TYPES: dict[int, dict[str, Any]] = {1: _CONFIG_TYPES_V1, 2: _CONFIG_TYPES_V2,
                 3: {**_CONFIG_TYPES_V2, "direction": str, "clip": _OPTIONAL_NUMBER, "activations": _LIST}}
# The version-3 keys of one class only.
_CLASS_CONFIG_TYPES: dict[str, dict[str, Any]] = {
    "LSTM": {"proj_size": int, "peepholes": bool, "input_forget": bool}, "GRU": {"reset_after": bool}, "RNN": {}}
_FLOAT_DTYPES = ("float32", "float64")
#: The newest format version of a layer's own configuration (the files of whole models are newer).
LAYER_FORMAT_VERSION = 3


class InvalidFile(ValueError):
    """A file that is not a valid rnnfast model; the message says why."""


def is_number(value: Any) -> bool:
    """Whether a JSON value is a number (a bool is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def base_class_name(model: RNNBase[Any]) -> str:
    """The rnnfast class a subclass of a layer is saved as (it loads as that class)."""
    for name, cls in LAYER_CLASSES.items():
        if isinstance(model, cls):
            return name
    raise TypeError(f"model must be an rnnfast RNN, LSTM or GRU layer, got {type(model).__name__}")


def layer_record(model: RNNBase[Any]) -> tuple[str, int, dict[str, Any]]:
    """(class name, format version, configuration) of ``model``: the oldest version that holds it, 3 for a cell
    variant or a reverse direction, else 2 (which an rnnfast without the cell variants reads)."""
    version = 3 if model.variant_options() or model.direction == "reverse" else 2
    config: dict[str, Any] = {
        "input_size": model.input_size, "hidden_size": model.hidden_size, "num_layers": model.num_layers,
        "bias": model.bias, "batch_first": model.batch_first, "bidirectional": model.bidirectional,
        "dropout": float(model.dropout), "dtype": model.dtype.name, "weight_dtype": model.weight_dtype,
    }
    if isinstance(model, RNN):
        config["nonlinearity"] = model.nonlinearity
    if version >= 3:
        config["direction"] = model.direction
        config["clip"] = model.clip
        config["activations"] = [[{"name": a.name, "alpha": a.alpha, "beta": a.beta} for a in acts]
                                 for acts in model.activations]
        for key in _CLASS_CONFIG_TYPES[base_class_name(model)]:
            config[key] = getattr(model, key)
    return base_class_name(model), version, config


def layer_builder(class_name: Any, config: Any, version: int, rng: np.random.Generator,
                  max_values: Optional[int] = None) -> tuple[Expected, Finish]:
    """Check a layer's recorded configuration and make the layer.

    Returns
    -------
    (expected, finish)
        ``expected``: the parameters the file must hold, name -> (shape, dtype); ``finish(params)`` takes them
        (checked against ``expected``) and returns the layer, quantized if it was saved so.

    Raises
    ------
    InvalidFile
        If the configuration is not one this version describes, or the layer refuses it.
    """
    cls, config, weight_dtype = _check_config(class_name, config, version)
    check_values_fit(layer_values(class_name, config), max_values, config)
    try:
        model = cls(**config, seed=rng)
    except (TypeError, ValueError, MemoryError) as exc:
        raise InvalidFile(f"invalid configuration {config}: {exc}") from None
    shapes = {name: value.shape for name, value in model.parameters().items()}
    if weight_dtype in REDUCED_WEIGHT_DTYPES:
        expected = quantized_parameter_spec(shapes, weight_dtype)
    else:
        expected = {name: (tuple(shape), model.dtype) for name, shape in shapes.items()}

    def finish(params: dict[str, np.ndarray]) -> RNNBase[Any]:
        layer: RNNBase[Any] = model
        try:
            if weight_dtype in REDUCED_WEIGHT_DTYPES:
                # The quantized layer of this configuration, then the saved parameters in place of its own (what
                # they may hold is checked there).
                layer = quantize(model, weight_dtype)
            layer.load_state_dict(params)
        except (TypeError, ValueError) as exc:
            raise InvalidFile(f"invalid parameters: {exc}") from None
        return layer

    return expected, finish


_CELL_OF_CLASS = {"RNN": "rnn_tanh", "LSTM": "lstm", "GRU": "gru"}


def layer_values(class_name: str, config: dict[str, Any]) -> int:
    """The number of parameter values a layer of the checked ``config`` has, computed without making it."""
    return parameter_count(config["input_size"], config["hidden_size"], config["num_layers"],
                           cell_facts(_CELL_OF_CLASS[class_name]).gates, 2 if config["bidirectional"] else 1,
                           config["bias"], config.get("proj_size", 0), config.get("peepholes", False))


def check_values_fit(values: int, max_values: Optional[int], config: Any) -> None:
    """Refuse a configuration with more parameter values than the file can hold (``max_values``, None: no bound).

    Every value is stored in the file, in at least one byte: a damaged or edited configuration claiming a
    huge layer would otherwise allocate (and draw) all of it before its missing parameters are noticed.
    """
    if max_values is not None and values > max_values:
        raise InvalidFile(f"config {config} describes {values} parameter values, more than the file's "
                          f"{max_values} bytes can hold: the file was damaged or edited")


def _check_config(class_name: Any, config: Any, version: int) -> tuple[type[RNNBase[Any]], dict[str, Any], str]:
    """The layer class, the constructor's keyword arguments and the weight dtype of a recorded configuration."""
    cls = LAYER_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise InvalidFile(f"class must be one of {sorted(LAYER_CLASSES)}, got {class_name!r}")
    if not isinstance(config, dict):
        raise InvalidFile(f"config must be a JSON object, got {type(config).__name__}")
    version = min(version, LAYER_FORMAT_VERSION)  # a layer's config in version 4 is version 3's
    types = dict(_CONFIG_TYPES[version])
    if cls is RNN:
        types["nonlinearity"] = str
    if version >= 3:
        types.update(_CLASS_CONFIG_TYPES[class_name])
    if set(config) != set(types):
        raise InvalidFile(
            f"config of a {class_name} must have exactly the keys {sorted(types)}, got {sorted(config)}"
        )
    for key, want in types.items():
        value = config[key]
        if want is _OPTIONAL_NUMBER:
            ok = value is None or is_number(value)
        elif want is _LIST:
            ok = isinstance(value, list)
        else:
            ok = isinstance(value, bool) if want is bool else (
                is_number(value) if want is float else isinstance(value, want) and not isinstance(value, bool))
        if not ok:
            raise InvalidFile(f"config[{key!r}] must be a {getattr(want, '__name__', want)}, got {value!r}")
    config = dict(config.items())
    if version >= 3:
        config["activations"] = _activations(config["activations"])
        if cls is RNN:
            # Redundant with activations (kept for the reader): it must agree with them.
            nonlinearity = config.pop("nonlinearity")
            first = config["activations"][0][0].name if config["activations"] and config["activations"][0] else None
            if nonlinearity != first:
                raise InvalidFile(f"config['nonlinearity'] is {nonlinearity!r} but the forward direction's "
                                  f"activation is {first!r}")
    weight_dtype = config.pop("weight_dtype", config["dtype"])
    if weight_dtype in REDUCED_WEIGHT_DTYPES:
        if config["dtype"] != "float32":
            raise InvalidFile(f"config['dtype'] must be 'float32' with weight_dtype {weight_dtype!r}, got "
                              f"{config['dtype']!r}")
    elif weight_dtype != config["dtype"]:
        raise InvalidFile(f"config['weight_dtype'] must be one of {_FLOAT_DTYPES + REDUCED_WEIGHT_DTYPES} and "
                          f"equal config['dtype'] for a float layer, got {weight_dtype!r} with dtype "
                          f"{config['dtype']!r}")
    return cls, config, weight_dtype


def _activations(value: list[Any]) -> list[list[Activation]]:
    """The ``activations`` of a version-3 config as lists of :class:`~rnnfast.Activation` (the constructor
    checks their number and roles)."""
    result = []
    for d, acts in enumerate(value):
        if not isinstance(acts, list):
            raise InvalidFile(f"config['activations'][{d}] must be a list (one activation per gate role), got "
                              f"{acts!r}")
        row = []
        for r, item in enumerate(acts):
            label = f"config['activations'][{d}][{r}]"
            if not isinstance(item, dict) or set(item) != {"name", "alpha", "beta"}:
                raise InvalidFile(f"{label} must be an object with exactly name, alpha and beta, got {item!r}")
            if not isinstance(item["name"], str) or not all(
                    item[p] is None or is_number(item[p]) for p in ("alpha", "beta")):
                raise InvalidFile(f"{label} must have a str name and null or numeric alpha and beta, got {item!r}")
            try:
                row.append(Activation(item["name"], item["alpha"], item["beta"]))
            except ValueError as exc:
                raise InvalidFile(f"{label}: {exc}") from None
        result.append(row)
    return result
