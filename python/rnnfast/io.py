"""Saving and loading models: ``rnnfast.save(path, model)`` and ``model = rnnfast.load(path)``, for the
recurrent layers, every module of :mod:`rnnfast.nn` and :class:`~rnnfast.nn.Sequential` models.

File format, version 4
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

Version 4 (whole models) adds the classes of :mod:`rnnfast.nn`: ``"class"`` is also ``"Linear"``,
``"Embedding"``, ``"Dropout"``, ``"LastStep"``, an activation (``"ReLU"``, ``"ELU"``, ``"Softmax"``, ...) or
``"Sequential"``, with ``"config"`` the module's constructor arguments::

    "Linear":    {"in_features": 64, "out_features": 5, "bias": true, "dtype": "float32"}
    "Embedding": {"num_embeddings": 1000, "embedding_dim": 32, "padding_idx": null, "dtype": "float32"}
    "Dropout":   {"p": 0.5}            "LastStep": {"batch_first": false}
    "ELU": {"alpha": 1.0}   "LeakyReLU": {"negative_slope": 0.01}   "Softplus": {"beta": 1.0, "threshold": 20.0}
    "Softmax": {"axis": -1}            the other activations: {}

and a Sequential's the list of its children in order, each its name, class and config (a layer also its own
``"format_version"``, 2 or 3, which says what its config holds as above; a nested Sequential lists its own)::

    "config": {"modules": [{"name": "0", "class": "Embedding", "config": {...}},
                           {"name": "1", "class": "LSTM", "format_version": 2, "config": {...}},
                           {"name": "2", "class": "LastStep", "config": {"batch_first": false}}, ...]}

Parameters are stored under the model's :meth:`state_dict` names, a Sequential's ``'<child>.<parameter>'``
(``1.weight_ih_l0``, ``3.weight``): PyTorch's keys. A quantized layer inside a Sequential is stored as on
its own (its int8 or bf16 weights and scales). A single layer is still written in version 2 or 3 (what it
needs), so that an rnnfast before version 4 reads it; anything else is version 4.

Version 2 (rnnfast before the cell variants) is version 3 without the cell options: PyTorch's cells only.
Version 1 (rnnfast before quantization) is version 2 without ``weight_dtype``: float layers only. Files of
every version load as they always did. :func:`save` writes the oldest version that holds the layer:
version 2 for PyTorch's cells in the forward or both directions (so that an rnnfast without the cell
variants reads them), version 3 for a cell variant or ``direction='reverse'``.

What is not saved: accumulated gradients, what a training forward keeps for backward, and the state of
the generators that draw dropout masks (a loaded model starts a fresh one, shared by its layers and Dropout
modules; pass ``seed=`` to :func:`load` to fix it).

Safety: loading never executes code. The file is read with ``allow_pickle=False`` (an object array,
the only way a ``.npy`` carries a pickle, is refused), the configuration is JSON, and everything in it is
checked before it is used: a truncated, damaged or edited file raises ``ValueError`` saying what is wrong;
a file from a newer format version raises ``ValueError`` naming both versions. :func:`save` writes to a
temporary file in the same directory and renames it over ``path``, so an interrupted save never leaves a
truncated model behind.
"""

from __future__ import annotations

import os
import zlib
from typing import Any, BinaryIO, Optional, Union

import numpy as np

from ._layer_archive import Expected, InvalidFile
from ._module_archive import MODEL_FORMAT_VERSION, builder, record
from .layers import GRU, LSTM, RNN
from .nn._linear import Linear
from .nn._modules import Module
from .nn.sequential import Sequential

__all__ = ["save", "load", "FORMAT_VERSION", "Model"]

#: The newest format version :func:`save` writes; :func:`load` reads this version and every earlier one.
FORMAT_VERSION = MODEL_FORMAT_VERSION

#: What :func:`load` returns: a recurrent layer, a module of :mod:`rnnfast.nn` (Linear, or an
#: :class:`~rnnfast.nn.Module`: Embedding, Dropout, LastStep, an activation) or a Sequential model.
Model = Union[RNN, LSTM, GRU, Linear, Module, Sequential]

_META_KEY = "__rnnfast__"
_ZIP_MAGIC = b"PK\x03\x04"
# What reading a damaged archive can raise, from the zip and npy readers: besides the obvious, an unsupported
# compression method or zip version (NotImplementedError), an "encrypted" member (RuntimeError), and a mangled
# .npy header that NumPy's header parser tokenizes before it checks it (SyntaxError, tokenize.TokenError): all
# found by fuzzing load with mutated valid files.
# (The standard modules that saving and loading need are imported where they are used: zipfile, tempfile,
# hashlib and json took 20 of the 55 ms `import rnnfast` cost beyond NumPy; .ci/wheel allows 50.)
def _read_errors() -> tuple[type[BaseException], ...]:
    import tokenize
    import zipfile

    return (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError,
            NotImplementedError, RuntimeError, SyntaxError, tokenize.TokenError, MemoryError)

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]


def _digest(arr: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) or hasattr(value, "write")


def save(path: PathOrFile, model: Model) -> None:
    """Write ``model`` to ``path`` in the format above.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        Written exactly as given (no ``.npz`` suffix is added). A path is written atomically: to a
        temporary file in the same directory, renamed over ``path`` when complete.
    model : RNN, LSTM, GRU, an rnnfast.nn module or Sequential
        Its configuration and current parameters are saved; a quantized layer (:func:`rnnfast.quantize`)
        with its reduced-precision parameters, also inside a Sequential.

    Raises
    ------
    TypeError
        If ``model`` is not something rnnfast saves (for a Sequential: a module inside it; the message names
        it), the arguments are swapped (``save(model, path)``), or ``path`` is neither a path nor a writable
        binary file.
    OSError
        If the file cannot be written (e.g. its directory does not exist).
    """
    if _is_path(model) and not _is_path(path):
        raise TypeError(f"rnnfast.save(path, model): the path comes first; got a {type(path).__name__} as path and "
                        f"a {type(model).__name__} as model")
    try:
        class_name, config, state, version = record(model)
    except TypeError as exc:
        raise TypeError(f"model: {exc}") from None
    params = {name: np.ascontiguousarray(value) for name, value in state.items()}
    meta = {
        "format": "rnnfast",
        "format_version": version,
        "rnnfast_version": _package_version(),
        "class": class_name,
        "config": config,
        "parameters": {
            name: {"shape": list(arr.shape), "dtype": arr.dtype.name, "sha256": _digest(arr)}
            for name, arr in params.items()
        },
    }
    import json

    arrays: dict[str, Any] = {_META_KEY: np.array(json.dumps(meta, sort_keys=True))}
    arrays.update(params)

    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or a binary file object, got {type(path).__name__}")
    import tempfile

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


def load(path: PathOrFile, *, seed: Optional[int] = None) -> Model:
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
    seed : int or None
        Seed of the generator the loaded model's layers and Dropout modules draw dropout masks from.

    Returns
    -------
    Model
        A new model of the saved class, configuration and parameters (and zero gradients): an RNN, LSTM or
        GRU (quantized if one was saved), an :mod:`rnnfast.nn` module or a Sequential.

    Raises
    ------
    ValueError
        If the file is not an rnnfast model, is truncated or damaged, was edited (a parameter that does not
        match its recorded shape, dtype or checksum, missing or extra entries, an invalid configuration), or
        has a newer format version than this rnnfast reads. The message starts with the file's name; the
        reader's own error, where there was one, is chained as the cause.
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
    if not isinstance(path, (str, os.PathLike)) and hasattr(path, "read"):
        label = getattr(path, "name", "<file object>")
        return _load_from(path, str(label), rng)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or a binary file object, got {type(path).__name__}")
    with open(path, "rb") as f:
        return _load_from(f, os.fspath(path), rng)


def _load_from(f: BinaryIO, label: str, rng: np.random.Generator) -> Model:
    try:
        return _read(f, rng)
    except InvalidFile as exc:
        raise ValueError(f"{label}: {exc}") from exc.__cause__  # the reader's own error, where there was one


def _read(f: BinaryIO, rng: np.random.Generator) -> Model:
    start = f.tell() if f.seekable() else None
    magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        raise InvalidFile("not an rnnfast model file (it is not a .npz archive)")
    if start is None:
        raise TypeError("load needs a seekable file object (a .npz is a zip archive, read out of order)")
    f.seek(0, os.SEEK_END)
    size = f.tell() - start  # every parameter value is stored in the file: a bound on what it may describe
    f.seek(start)
    try:
        archive = np.load(f, allow_pickle=False)
    except _read_errors() as exc:
        raise InvalidFile(f"truncated or damaged model file ({type(exc).__name__}: {exc})") from exc
    with archive:
        names = set(archive.files)
        if _META_KEY not in names:
            raise InvalidFile(f"not an rnnfast model file (no {_META_KEY!r} entry)")
        meta = _read_meta(_member(archive, _META_KEY))
        version = _check_meta(meta)
        recorded = meta["parameters"]
        expected, finish = builder(meta["class"], meta["config"], version, rng, max_values=size)
        _check_names("entries", names - {_META_KEY}, expected)
        _check_names("parameters recorded in the metadata", set(recorded), expected)
        params = {name: _parameter(archive, name, shape, dtype, recorded[name])
                  for name, (shape, dtype) in expected.items()}
    model: Model = finish(params)
    return model


def _parameter(archive: Any, name: str, shape: tuple[int, ...], dtype: np.dtype, info: Any) -> np.ndarray:
    """The entry ``name``, checked against the configuration's ``shape`` and ``dtype`` and its record ``info``."""
    arr = _member(archive, name)
    if not isinstance(info, dict) or set(info) != {"shape", "dtype", "sha256"}:
        raise InvalidFile(f"metadata of parameter {name!r} must have exactly shape, dtype and sha256")
    if arr.shape != shape or list(arr.shape) != info["shape"]:
        raise InvalidFile(
            f"parameter {name!r} has shape {arr.shape}, expected {shape} for the configuration "
            f"(recorded: {info['shape']})"
        )
    if arr.dtype != dtype or arr.dtype.name != info["dtype"]:
        raise InvalidFile(f"parameter {name!r} has dtype {arr.dtype}, expected {dtype} (recorded: {info['dtype']})")
    if _digest(arr) != info["sha256"]:
        raise InvalidFile(f"parameter {name!r} does not match its recorded checksum: the file was modified or damaged")
    return arr


def _member(archive: Any, name: str) -> np.ndarray:
    try:
        value = archive[name]
    except _read_errors() as exc:
        raise InvalidFile(f"entry {name!r} cannot be read: truncated or damaged ({type(exc).__name__}: {exc})"
                          ) from exc
    if not isinstance(value, np.ndarray):
        # NumPy's NpzFile hands back a member that does not start with the .npy magic as its raw bytes (found by
        # tests/fuzz/fuzz_load.py: a zip directory giving the entry a stored size of 0).
        raise InvalidFile(f"entry {name!r} cannot be read: it is not a .npy array (truncated or damaged)")
    return value


def _read_meta(arr: np.ndarray) -> dict[str, Any]:
    if arr.shape != () or arr.dtype.kind != "U":
        raise InvalidFile(f"entry {_META_KEY!r} must be a 0-d str array, got dtype {arr.dtype} shape {arr.shape}")
    import json

    try:
        meta = json.loads(str(arr[()]))
    except ValueError as exc:
        raise InvalidFile(f"entry {_META_KEY!r} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InvalidFile(f"entry {_META_KEY!r} must be a JSON object, got {type(meta).__name__}")
    return meta


def _check_meta(meta: dict[str, Any]) -> int:
    """The format version of a metadata record, after checking what every version has."""
    if meta.get("format") != "rnnfast":
        raise InvalidFile(f"not an rnnfast model file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidFile(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise InvalidFile(
            f"format version {version} was written by a newer rnnfast ({meta.get('rnnfast_version')}); this "
            f"rnnfast reads format versions up to {FORMAT_VERSION}"
        )
    missing = {"class", "config", "parameters"} - set(meta)
    if missing:
        raise InvalidFile(f"metadata lacks {sorted(missing)}")
    if not isinstance(meta["parameters"], dict):
        raise InvalidFile(f"parameters must be a JSON object, got {type(meta['parameters']).__name__}")
    return version


def _check_names(what: str, names: set[str], expected: Expected) -> None:
    missing = [k for k in expected if k not in names]
    extra = sorted(str(k) for k in names if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(repr(k) for k in missing))
        if extra:
            parts.append("unexpected " + ", ".join(repr(k) for k in extra))
        raise InvalidFile(f"{what} do not match the configuration: " + "; ".join(parts))
