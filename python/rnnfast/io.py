"""Saving and loading layers: ``rnnfast.save(path, model)`` and ``model = rnnfast.load(path)``.

File format, version 3
----------------------
An uncompressed ``.npz`` file: a zip archive of ``.npy`` files, NumPy's own format, readable by
``numpy.load(path, allow_pickle=False)`` anywhere without rnnfast. It holds:

- ``__rnnfast__``: a 0-d array of ``str`` (NumPy's fixed-width unicode, not an object array) holding one
  JSON document::

      {"format": "rnnfast", "format_version": 3, "rnnfast_version": "0.1.0",
       "class": "LSTM",                         # "RNN", "LSTM" or "GRU"
       "config": {"input_size": 32, "hidden_size": 64, "num_layers": 2, "bias": true,
                  "batch_first": false, "bidirectional": true, "dropout": 0.0, "dtype": "float32",
                  "weight_dtype": "int8",       # RNN also has "nonlinearity": "tanh", "relu", ...
                  "direction": "bidirectional", "clip": null,
                  "activations": [[{"name": "sigmoid", "alpha": null, "beta": null}, ...], ...],
                  "proj_size": 0, "peepholes": false, "input_forget": false},   # GRU: "reset_after"
       "parameters": {"weight_ih_l0": {"shape": [256, 32], "dtype": "int8", "sha256": "..."},
                      "weight_ih_l0_scale": {"shape": [256], "dtype": "float32", "sha256": "..."}, ...}}

- one array per parameter, under its :meth:`state_dict` name (``weight_ih_l0``, ``bias_hh_l1_reverse``,
  ``weight_hr_l0``, ``weight_ch_l1``, ...); ``sha256`` is the digest of its C-ordered bytes.

The cell options (version 3): ``direction`` ('forward', 'reverse' or 'bidirectional', agreeing with
``bidirectional``), ``clip`` (null or a positive number), ``activations`` (one list per direction, forward
first, of one activation per gate role in ONNX's order, :data:`rnnfast._variants.ROLES`, each its name and
its ``alpha`` and ``beta``, null where the activation takes none); the LSTM's ``proj_size`` (int),
``peepholes`` and ``input_forget`` (bool); the GRU's ``reset_after`` (bool). An RNN's ``nonlinearity`` is
the name of its forward direction's activation.

``weight_dtype`` says what the parameters are:

- ``"float32"`` or ``"float64"`` (equal to ``dtype``): a float layer; every parameter in that dtype.
- ``"int8"`` (``dtype`` ``"float32"``): a layer made by :func:`rnnfast.quantize`; each weight is int8, in
  [-127, 127], followed by its row scales ``<weight name>_scale``, float32 (G*H,), finite and >= 0; the
  biases are float32.
- ``"bf16"`` (``dtype`` ``"float32"``): each weight is its bfloat16 bits, uint16, finite values; the
  biases are float32.

Version 2 (rnnfast before the cell variants) is version 3 without the cell options: PyTorch's cells only.
Version 1 (rnnfast before quantization) is version 2 without ``weight_dtype``: float layers only. Files of
every version load as they always did. :func:`save` writes the oldest version that holds the layer:
version 2 for PyTorch's cells in the forward or both directions (so that an rnnfast without the cell
variants reads them), version 3 for a cell variant or ``direction='reverse'``.

What is not saved: accumulated gradients, what a training forward keeps for backward, and the state of
the generator that draws dropout masks (a loaded layer starts a fresh one; pass ``seed=`` to :func:`load`
to fix it).

Safety: loading never executes code. The file is read with ``allow_pickle=False`` (an object array,
the only way a ``.npy`` carries a pickle, is refused), the configuration is JSON, and everything in it is
checked before it is used: a truncated, damaged or edited file raises ``ValueError`` saying what is wrong;
a file from a newer format version raises ``ValueError`` naming both versions. :func:`save` writes to a
temporary file in the same directory and renames it over ``path``, so an interrupted save never leaves a
truncated model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import tokenize
import zipfile
import zlib
from typing import Any, BinaryIO, Optional, Union

import numpy as np

from ._quantized import quantized_parameter_spec
from ._reference_reduced import REDUCED_WEIGHT_DTYPES
from ._rnn_base import RNNBase
from .layers import GRU, LSTM, RNN
from .quantization import quantize
from ._variants import Activation

__all__ = ["save", "load", "FORMAT_VERSION"]

#: The newest format version :func:`save` writes; :func:`load` reads this version and every earlier one.
FORMAT_VERSION = 3

_META_KEY = "__rnnfast__"
_CLASSES = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
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
_CONFIG_TYPES = {1: _CONFIG_TYPES_V1, 2: _CONFIG_TYPES_V2,
                 3: {**_CONFIG_TYPES_V2, "direction": str, "clip": _OPTIONAL_NUMBER, "activations": _LIST}}
# The version-3 keys of one class only.
_CLASS_CONFIG_TYPES = {"LSTM": {"proj_size": int, "peepholes": bool, "input_forget": bool},
                       "GRU": {"reset_after": bool}, "RNN": {}}
_FLOAT_DTYPES = ("float32", "float64")
_ZIP_MAGIC = b"PK\x03\x04"
# What reading a damaged archive or member can raise, from zipfile, zlib and numpy.lib.format.
# What reading a damaged archive can raise, from the zip and npy readers: besides the obvious, an unsupported
# compression method or zip version (NotImplementedError), an "encrypted" member (RuntimeError), and a mangled
# .npy header that NumPy's header parser tokenizes before it checks it (SyntaxError, tokenize.TokenError): all
# found by fuzzing load with mutated valid files.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError,
                NotImplementedError, RuntimeError, SyntaxError, tokenize.TokenError, MemoryError)

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


def _format_version(model: RNNBase) -> int:
    """The oldest format version that holds ``model``: 3 for a cell variant or a reverse direction, else 2."""
    return 3 if model.variant_options() or model.direction == "reverse" else 2


def _config(model: RNNBase, version: int) -> dict:
    config = {
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
        for key in _CLASS_CONFIG_TYPES[_base_class_name(model)]:
            config[key] = getattr(model, key)
    return config


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def save(path: PathOrFile, model: Any) -> None:
    """Write ``model`` (an :class:`RNN`, :class:`LSTM` or :class:`GRU`) to ``path`` in the format above.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        Written exactly as given (no ``.npz`` suffix is added). A path is written atomically: to a
        temporary file in the same directory, renamed over ``path`` when complete.
    model : RNN, LSTM or GRU
        Its configuration and current parameters are saved; a quantized layer (:func:`rnnfast.quantize`)
        with its reduced-precision parameters.

    Raises
    ------
    TypeError
        If ``model`` is not an rnnfast layer or ``path`` is neither a path nor a writable binary file.
    OSError
        If the file cannot be written (e.g. its directory does not exist).
    """
    if not isinstance(model, RNNBase):
        raise TypeError(f"model must be an rnnfast RNN, LSTM or GRU layer, got {type(model).__name__}")
    params = {name: np.ascontiguousarray(value) for name, value in model.state_dict().items()}
    version = _format_version(model)
    meta = {
        "format": "rnnfast",
        "format_version": version,
        "rnnfast_version": _package_version(),
        "class": _base_class_name(model),
        "config": _config(model, version),
        "parameters": {
            name: {"shape": list(arr.shape), "dtype": arr.dtype.name, "sha256": _digest(arr)}
            for name, arr in params.items()
        },
    }
    arrays = {_META_KEY: np.array(json.dumps(meta, sort_keys=True))}
    arrays.update(params)

    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or a binary file object, got {type(path).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rnnfast-save-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it what open() would have: an existing file's mode, or
        # 0666 less the umask.
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _mode_for(path: str) -> int:
    """The permissions a file written at ``path`` gets from ``open(path, "w")``: those of the file already there,
    else 0666 less the process's umask (read by setting it and putting it back, as nothing else reads it)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _package_version() -> str:
    from . import __version__

    return __version__


def _base_class_name(model: RNNBase) -> str:
    """The rnnfast class a subclass of a layer is saved as (it loads as that class)."""
    for name, cls in _CLASSES.items():
        if isinstance(model, cls):
            return name
    raise TypeError(f"model must be an rnnfast RNN, LSTM or GRU layer, got {type(model).__name__}")


class _Invalid(ValueError):
    """A file that is not a valid rnnfast model; the message says why."""


def load(path: PathOrFile, *, seed: Optional[int] = None) -> RNNBase:
    """Read a layer written by :func:`save`.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
    seed : int or None
        Seed of the new layer's generator for dropout masks (see the layers' ``seed``).

    Returns
    -------
    RNN, LSTM or GRU
        A new layer with the saved configuration and parameters (and zero gradients); a quantized layer
        if one was saved.

    Raises
    ------
    ValueError
        If the file is not an rnnfast model, is truncated or damaged, was edited (a parameter that does not
        match its recorded shape, dtype or checksum, missing or extra entries, an invalid configuration), or
        has a newer format version than this rnnfast reads. The message starts with the file's name.
    TypeError
        If ``path`` is neither a path nor a readable binary file.
    OSError
        If the file cannot be opened (e.g. it does not exist).
    """
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"seed must be None, a non-negative int, a SeedSequence or a Generator, got {seed!r} ({exc})"
        ) from None
    if hasattr(path, "read"):
        label = getattr(path, "name", "<file object>")
        return _load_from(path, str(label), rng)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or a binary file object, got {type(path).__name__}")
    with open(path, "rb") as f:
        return _load_from(f, os.fspath(path), rng)


def _load_from(f: BinaryIO, label: str, rng: np.random.Generator) -> RNNBase:
    try:
        return _read(f, rng)
    except _Invalid as exc:
        raise ValueError(f"{label}: {exc}") from exc.__cause__  # the reader's own error, where there was one


def _read(f: BinaryIO, rng: np.random.Generator) -> RNNBase:
    start = f.tell() if f.seekable() else None
    magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        raise _Invalid("not an rnnfast model file (it is not a .npz archive)")
    if start is None:
        raise TypeError("load needs a seekable file object (a .npz is a zip archive, read out of order)")
    f.seek(start)
    try:
        archive = np.load(f, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _Invalid(f"truncated or damaged model file ({type(exc).__name__}: {exc})") from exc
    with archive:
        names = set(archive.files)
        if _META_KEY not in names:
            raise _Invalid(f"not an rnnfast model file (no {_META_KEY!r} entry)")
        meta = _read_meta(_member(archive, _META_KEY))
        cls, config, recorded, weight_dtype = _check_meta(meta)
        try:
            model = cls(**config, seed=rng)
        except (TypeError, ValueError, MemoryError) as exc:
            raise _Invalid(f"invalid configuration {config}: {exc}") from None
        shapes = {name: value.shape for name, value in model.parameters().items()}
        if weight_dtype in REDUCED_WEIGHT_DTYPES:
            expected = quantized_parameter_spec(shapes, weight_dtype)
        else:
            expected = {name: (shape, model.dtype) for name, shape in shapes.items()}
        _check_names("entries", names - {_META_KEY}, expected)
        _check_names("parameters recorded in the metadata", set(recorded), expected)
        params = {}
        for name, (shape, dtype) in expected.items():
            arr = _member(archive, name)
            info = recorded[name]
            if not isinstance(info, dict) or set(info) != {"shape", "dtype", "sha256"}:
                raise _Invalid(f"metadata of parameter {name!r} must have exactly shape, dtype and sha256")
            if arr.shape != shape or list(arr.shape) != info["shape"]:
                raise _Invalid(
                    f"parameter {name!r} has shape {arr.shape}, expected {shape} for the configuration "
                    f"(recorded: {info['shape']})"
                )
            if arr.dtype != dtype or arr.dtype.name != info["dtype"]:
                raise _Invalid(
                    f"parameter {name!r} has dtype {arr.dtype}, expected {dtype} (recorded: {info['dtype']})"
                )
            if _digest(arr) != info["sha256"]:
                raise _Invalid(f"parameter {name!r} does not match its recorded checksum: the file was modified "
                               "or damaged")
            params[name] = arr
    try:
        if weight_dtype in REDUCED_WEIGHT_DTYPES:
            # The quantized layer of this configuration, then the saved parameters in place of its own (what
            # they may hold is checked there).
            model = quantize(model, weight_dtype)
        model.load_state_dict(params)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"invalid parameters: {exc}") from None
    return model


def _member(archive: Any, name: str) -> np.ndarray:
    try:
        value = archive[name]
    except _READ_ERRORS as exc:
        raise _Invalid(f"entry {name!r} cannot be read: truncated or damaged ({type(exc).__name__}: {exc})") from exc
    if not isinstance(value, np.ndarray):
        # NumPy's NpzFile hands back a member that does not start with the .npy magic as its raw bytes (found by
        # tests/fuzz/fuzz_load.py: a zip directory giving the entry a stored size of 0).
        raise _Invalid(f"entry {name!r} cannot be read: it is not a .npy array (truncated or damaged)")
    return value


def _read_meta(arr: np.ndarray) -> dict:
    if arr.shape != () or arr.dtype.kind != "U":
        raise _Invalid(f"entry {_META_KEY!r} must be a 0-d str array, got dtype {arr.dtype} shape {arr.shape}")
    try:
        meta = json.loads(str(arr[()]))
    except ValueError as exc:
        raise _Invalid(f"entry {_META_KEY!r} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _Invalid(f"entry {_META_KEY!r} must be a JSON object, got {type(meta).__name__}")
    return meta


def _check_meta(meta: dict) -> tuple:
    """The layer class, the constructor's keyword arguments, the recorded parameter table and the weight dtype."""
    if meta.get("format") != "rnnfast":
        raise _Invalid(f"not an rnnfast model file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Invalid(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise _Invalid(
            f"format version {version} was written by a newer rnnfast ({meta.get('rnnfast_version')}); this "
            f"rnnfast reads format versions up to {FORMAT_VERSION}"
        )
    missing = {"class", "config", "parameters"} - set(meta)
    if missing:
        raise _Invalid(f"metadata lacks {sorted(missing)}")
    cls = _CLASSES.get(meta["class"]) if isinstance(meta["class"], str) else None
    if cls is None:
        raise _Invalid(f"class must be one of {sorted(_CLASSES)}, got {meta['class']!r}")
    config = meta["config"]
    if not isinstance(config, dict):
        raise _Invalid(f"config must be a JSON object, got {type(config).__name__}")
    types = dict(_CONFIG_TYPES[version])
    if cls is RNN:
        types["nonlinearity"] = str
    if version >= 3:
        types.update(_CLASS_CONFIG_TYPES[meta["class"]])
    if set(config) != set(types):
        raise _Invalid(
            f"config of a {meta['class']} must have exactly the keys {sorted(types)}, got {sorted(config)}"
        )
    for key, want in types.items():
        value = config[key]
        if want is _OPTIONAL_NUMBER:
            ok = value is None or _is_number(value)
        elif want is _LIST:
            ok = isinstance(value, list)
        else:
            ok = isinstance(value, bool) if want is bool else (
                _is_number(value) if want is float else isinstance(value, want) and not isinstance(value, bool))
        if not ok:
            raise _Invalid(f"config[{key!r}] must be a {getattr(want, '__name__', want)}, got {value!r}")
    config = dict(config)
    if version >= 3:
        config["activations"] = _activations(config["activations"])
        if cls is RNN:
            # Redundant with activations (kept for the reader): it must agree with them.
            nonlinearity = config.pop("nonlinearity")
            first = config["activations"][0][0].name if config["activations"] and config["activations"][0] else None
            if nonlinearity != first:
                raise _Invalid(f"config['nonlinearity'] is {nonlinearity!r} but the forward direction's activation "
                               f"is {first!r}")
    weight_dtype = config.pop("weight_dtype", config["dtype"])
    if weight_dtype in REDUCED_WEIGHT_DTYPES:
        if config["dtype"] != "float32":
            raise _Invalid(f"config['dtype'] must be 'float32' with weight_dtype {weight_dtype!r}, got "
                           f"{config['dtype']!r}")
    elif weight_dtype != config["dtype"]:
        raise _Invalid(f"config['weight_dtype'] must be one of {_FLOAT_DTYPES + REDUCED_WEIGHT_DTYPES} and equal "
                       f"config['dtype'] for a float layer, got {weight_dtype!r} with dtype {config['dtype']!r}")
    recorded = meta["parameters"]
    if not isinstance(recorded, dict):
        raise _Invalid(f"parameters must be a JSON object, got {type(recorded).__name__}")
    return cls, config, recorded, weight_dtype


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _activations(value: list) -> list:
    """The ``activations`` of a version-3 config as lists of :class:`~rnnfast.Activation` (the constructor
    checks their number and roles)."""
    result = []
    for d, acts in enumerate(value):
        if not isinstance(acts, list):
            raise _Invalid(f"config['activations'][{d}] must be a list (one activation per gate role), got {acts!r}")
        row = []
        for r, item in enumerate(acts):
            label = f"config['activations'][{d}][{r}]"
            if not isinstance(item, dict) or set(item) != {"name", "alpha", "beta"}:
                raise _Invalid(f"{label} must be an object with exactly name, alpha and beta, got {item!r}")
            if not isinstance(item["name"], str) or not all(
                    item[p] is None or _is_number(item[p]) for p in ("alpha", "beta")):
                raise _Invalid(f"{label} must have a str name and null or numeric alpha and beta, got {item!r}")
            try:
                row.append(Activation(item["name"], item["alpha"], item["beta"]))
            except ValueError as exc:
                raise _Invalid(f"{label}: {exc}") from None
        result.append(row)
    return result


def _check_names(what: str, names: set, expected: dict) -> None:
    missing = [k for k in expected if k not in names]
    extra = sorted(str(k) for k in names if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(k) for k in missing))
        if extra:
            parts.append("unexpected " + ", ".join(repr(k) for k in extra))
        raise _Invalid(f"{what} do not match the configuration: " + "; ".join(parts))
