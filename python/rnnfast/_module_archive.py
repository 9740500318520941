"""What a saved model records beyond a single recurrent layer (format version 4 of :mod:`rnnfast.io`): the
configuration of each :mod:`rnnfast.nn` module, and of a :class:`~rnnfast.nn.Sequential` its children in
order; and their checks when read back.

:func:`record` gives, for any model rnnfast saves, its class name, its configuration (JSON) and its
parameters under the names the file stores them; :func:`builder` checks a recorded class and configuration
and returns what parameters the file must hold and how to make the model from them. A file's problems raise
:class:`~rnnfast._layer_archive.InvalidFile`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from ._layer_archive import (LAYER_CLASSES, LAYER_FORMAT_VERSION, Expected, Finish, InvalidFile, check_values_fit,
                             is_number, layer_builder, layer_record)
from ._rnn_base import RNNBase
from .nn import _linear, activations, dropout, embedding, last_step, sequential

__all__ = ["MODEL_FORMAT_VERSION", "MODULE_CLASSES", "record", "builder"]

#: The format version of a file holding anything but a single recurrent layer.
MODEL_FORMAT_VERSION = 4

_INT_OR_NULL = "int or null"
# Per class: the class, its configuration keys with their JSON types, and the configuration of a module (its
# constructor's keyword arguments).
_SPECS: dict[str, tuple[type, dict[str, Any], Callable[[Any], dict[str, Any]]]] = {
    "Linear": (_linear.Linear, {"in_features": int, "out_features": int, "bias": bool, "dtype": str},
               lambda m: {"in_features": m.in_features, "out_features": m.out_features,
                          "bias": m.bias is not None, "dtype": m.dtype.name}),
    "Embedding": (embedding.Embedding,
                  {"num_embeddings": int, "embedding_dim": int, "padding_idx": _INT_OR_NULL, "dtype": str},
                  lambda m: {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
                             "padding_idx": m.padding_idx, "dtype": m.dtype.name}),
    "Dropout": (dropout.Dropout, {"p": float}, lambda m: {"p": m.p}),
    "LastStep": (last_step.LastStep, {"batch_first": bool}, lambda m: {"batch_first": m.batch_first}),
    "ELU": (activations.ELU, {"alpha": float}, lambda m: {"alpha": m.alpha}),
    "LeakyReLU": (activations.LeakyReLU, {"negative_slope": float}, lambda m: {"negative_slope": m.negative_slope}),
    "Softplus": (activations.Softplus, {"beta": float, "threshold": float},
                 lambda m: {"beta": m.beta, "threshold": m.threshold}),
    "Softmax": (activations.Softmax, {"axis": int}, lambda m: {"axis": m.axis}),
}
for _name, _cls in activations.ACTIVATIONS.items():
    _SPECS.setdefault(_name, (_cls, {}, lambda m: {}))

#: Every class a file may name, layers and Sequential included.
MODULE_CLASSES = sorted([*LAYER_CLASSES, *_SPECS, "Sequential"])


def _class_name(module: Any) -> str:
    """The class ``module`` is saved as (a subclass as the rnnfast class it derives from)."""
    for name, (cls, _, _) in _SPECS.items():
        if type(module) is cls:
            return name
    for name, (cls, _, _) in _SPECS.items():
        if isinstance(module, cls):
            return name
    raise TypeError(f"rnnfast.save stores rnnfast's layers, nn modules and Sequential models; "
                    f"{type(module).__name__} is none of them")


def record(model: Any) -> tuple[str, dict[str, Any], dict[str, np.ndarray], int]:
    """(class name, configuration, parameters by stored name, format version) of ``model``.

    A layer keeps its own format (version 2 or 3, see :mod:`rnnfast.io`); anything else is version 4. In a
    Sequential's configuration, ``modules`` lists each child as ``{"name", "class", "config"}`` (a layer also
    ``"format_version"``, its own), and the parameters are stored under ``'<child name>.<parameter>'``.

    Raises
    ------
    TypeError
        If ``model`` (or a module inside it) is not something rnnfast saves.
    """
    if isinstance(model, RNNBase):
        name, version, config = layer_record(model)
        return name, config, model.state_dict(), version
    if isinstance(model, sequential.Sequential):
        modules, params = [], {}
        for child_name, child in model.named_children():
            try:
                cls_name, config, child_params, version = record(child)
            except TypeError as exc:
                raise TypeError(f"cannot save module {child_name!r} of the Sequential: {exc}") from None
            entry: dict[str, Any] = {"name": child_name, "class": cls_name, "config": config}
            if version < MODEL_FORMAT_VERSION:
                entry["format_version"] = version
            modules.append(entry)
            params.update({f"{child_name}.{k}": v for k, v in child_params.items()})
        return "Sequential", {"modules": modules}, params, MODEL_FORMAT_VERSION
    name = _class_name(model)
    return name, _SPECS[name][2](model), model.state_dict(), MODEL_FORMAT_VERSION


def builder(class_name: Any, config: Any, version: int, rng: np.random.Generator,
            path: str = "", max_values: Optional[int] = None) -> tuple[Expected, Finish]:
    """Check a recorded model and make it (see :func:`rnnfast._layer_archive.layer_builder`).

    ``path`` is where in a Sequential the model sits ('' at the top, else e.g. ``"modules[2] '2'"``), for the
    messages; the names in the returned ``expected`` are those stored in the file for this model alone (a
    Sequential prefixes its children's). ``max_values`` bounds the parameter values the model may have (the
    file's size: each is stored in at least one byte), checked before anything is allocated.
    """
    where = f"{path}: " if path else ""
    if class_name in LAYER_CLASSES:
        try:
            return layer_builder(class_name, config, version, rng, max_values)
        except InvalidFile as exc:
            raise InvalidFile(f"{where}{exc}") from exc.__cause__
    if version < MODEL_FORMAT_VERSION:
        raise InvalidFile(f"{where}class must be one of {sorted(LAYER_CLASSES)} in format version {version}, got "
                          f"{class_name!r}")
    if class_name == "Sequential":
        return _sequential_builder(config, rng, path, max_values)
    if not isinstance(class_name, str) or class_name not in _SPECS:
        raise InvalidFile(f"{where}class must be one of {MODULE_CLASSES}, got {class_name!r}")
    cls, types, _ = _SPECS[class_name]
    kwargs = _checked_config(class_name, config, types, where)
    try:
        check_values_fit(_module_values(cls, kwargs), max_values, config)
    except InvalidFile as exc:
        raise InvalidFile(f"{where}{exc}") from None
    if cls in (embedding.Embedding, dropout.Dropout):
        kwargs["seed"] = rng
    try:
        module = cls(**kwargs)
    except (TypeError, ValueError, MemoryError) as exc:
        raise InvalidFile(f"{where}invalid configuration {config} of a {class_name}: {exc}") from None
    expected: Expected = {k: (tuple(v.shape), v.dtype) for k, v in module.parameters().items()}

    def finish(params: dict[str, np.ndarray]) -> Any:
        try:
            module.load_state_dict(params)
        except (TypeError, ValueError) as exc:
            raise InvalidFile(f"{where}invalid parameters: {exc}") from None
        return module

    return expected, finish


def _checked_config(class_name: str, config: Any, types: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InvalidFile(f"{where}config must be a JSON object, got {type(config).__name__}")
    if set(config) != set(types):
        raise InvalidFile(f"{where}config of a {class_name} must have exactly the keys {sorted(types)}, got "
                          f"{sorted(config)}")
    for key, want in types.items():
        value = config[key]
        if want is _INT_OR_NULL:
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        elif want is bool:
            ok = isinstance(value, bool)
        elif want is float:
            ok = is_number(value)
        else:
            ok = isinstance(value, want) and not isinstance(value, bool)
        if not ok:
            raise InvalidFile(f"{where}config[{key!r}] of a {class_name} must be a "
                              f"{getattr(want, '__name__', want)}, got {value!r}")
    return dict(config)


def _module_values(cls: type, kwargs: dict[str, Any]) -> int:
    """The number of parameter values of the nn module ``cls(**kwargs)``, computed without making it."""
    if cls is _linear.Linear:
        return int(kwargs["in_features"]) * int(kwargs["out_features"]) + (
            int(kwargs["out_features"]) if kwargs["bias"] else 0)
    if cls is embedding.Embedding:
        return int(kwargs["num_embeddings"]) * int(kwargs["embedding_dim"])
    return 0  # the other modules have no parameters


def _sequential_builder(config: Any, rng: np.random.Generator, path: str,
                        max_values: Optional[int]) -> tuple[Expected, Finish]:
    where = f"{path}: " if path else ""
    if not isinstance(config, dict) or set(config) != {"modules"} or not isinstance(config["modules"], list):
        raise InvalidFile(f"{where}config of a Sequential must be an object with exactly the key 'modules', a list")
    children: list[tuple[str, Finish]] = []
    expected: Expected = {}
    for i, entry in enumerate(config["modules"]):
        label = f"{path}.modules[{i}]" if path else f"modules[{i}]"
        if not isinstance(entry, dict) or not {"name", "class", "config"} <= set(entry) <= {
                "name", "class", "config", "format_version"}:
            raise InvalidFile(f"{label} must be an object with name, class, config (and a layer's format_version), "
                              f"got {entry!r:.200}")
        name = entry["name"]
        if not isinstance(name, str) or not name or "." in name:
            raise InvalidFile(f"{label}: the name must be a non-empty str without '.', got {name!r}")
        if any(name == other for other, _ in children):
            raise InvalidFile(f"{label}: duplicate module name {name!r}")
        layer = entry["class"] in LAYER_CLASSES
        recorded_version = entry.get("format_version")
        version = MODEL_FORMAT_VERSION
        if layer:
            if (isinstance(recorded_version, bool) or not isinstance(recorded_version, int)
                    or not 1 <= recorded_version <= LAYER_FORMAT_VERSION):
                raise InvalidFile(f"{label}: a layer needs its format_version, an int from 1 to "
                                  f"{LAYER_FORMAT_VERSION}, got {recorded_version!r}")
            version = recorded_version
        elif recorded_version is not None:
            raise InvalidFile(f"{label}: only a layer records a format_version")
        # What the children before this one took leaves less for it: the bound holds for the whole model.
        remaining = None if max_values is None else max_values - sum(math.prod(s) for s, _ in expected.values())
        child_expected, child_finish = builder(entry["class"], entry["config"], version, rng, f"{label} {name!r}",
                                               remaining)
        expected.update({f"{name}.{k}": v for k, v in child_expected.items()})
        children.append((name, child_finish))
    if not children:
        raise InvalidFile(f"{where}a Sequential needs at least one module, the file lists none")

    def finish(params: dict[str, np.ndarray]) -> sequential.Sequential:
        modules = {}
        for name, child_finish in children:
            prefix = name + "."
            modules[name] = child_finish({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})
        try:
            return sequential.Sequential(modules)
        except (TypeError, ValueError) as exc:
            raise InvalidFile(f"{where}the modules do not make a Sequential: {exc}") from None

    return expected, finish
