"""What :mod:`rnnfast.dask` and :mod:`rnnfast.ray` share, engine-neutral (NumPy only): which models they run,
where a model's batch axis is in its input and its output, one inference call on a worker, the models a worker
has built from their :class:`~rnnfast.parallel.ModelSpec` (built once, not once per chunk), and a worker's
share of the threads.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._rnn_base import RNNBase
from ._validation import positive_int
from .nn._fit_data import input_batch_axis
from .parallel import ModelSpec

__all__ = ["InferenceLayout", "check_inference_model", "inference_layout", "run_inference", "SpecRef",
           "spec_ref", "cached_model", "thread_share", "feature_width", "input_dtype", "input_batch_axis"]


def check_inference_model(model: Any) -> None:
    """Refuse what rnnfast's engines cannot run: they ship a model as the bytes of ``rnnfast.save``, so it
    must be something rnnfast saves (a layer, an ``rnnfast.nn`` module, a Sequential) and have ``forward``."""
    if not callable(getattr(model, "forward", None)):
        raise TypeError(f"model must be an rnnfast layer, an rnnfast.nn module or an nn.Sequential, got "
                        f"{type(model).__name__}")


def run_inference(model: Any, x: np.ndarray, lengths: Optional[np.ndarray], batch_size: Optional[int]) -> np.ndarray:
    """The model's inference output on ``x``: ``model.predict`` for a Sequential, the output sequence of a
    recurrent layer (in batches of ``batch_size``), ``forward(x)`` for another module. Rows do not interact,
    so this is the bits of one in-process call on all of ``x``, whatever the split.

    Arrays an engine deserialised from a message may start at any byte (pickle's out-of-band buffers): the
    layers' own argument checks copy such input for the kernels, as for any caller."""
    if isinstance(model, RNNBase):
        axis = 0 if model.batch_first else 1
        n = x.shape[axis] if x.ndim == 3 else 0
        if batch_size is None or n <= batch_size:
            return np.asarray(model.forward(x, lengths=lengths)[0])
        parts = []
        for start in range(0, n, batch_size):
            index: list[Any] = [slice(None)] * x.ndim
            index[axis] = slice(start, start + batch_size)
            part = np.ascontiguousarray(x[tuple(index)])
            parts.append(model.forward(part, lengths=None if lengths is None else lengths[start:start + batch_size])[0])
        return np.concatenate(parts, axis=axis)
    predict = getattr(model, "predict", None)
    if callable(predict):
        return np.asarray(predict(x, batch_size=batch_size, lengths=lengths))
    if lengths is not None:
        raise ValueError(f"lengths were given, but {type(model).__name__} takes none (only recurrent layers and "
                         "Sequentials with one do)")
    return np.asarray(model.forward(x))


@dataclass(frozen=True)
class InferenceLayout:
    """Where the batch axis is in the model's input and output, and the output for one sequence."""

    in_axis: int
    out_axis: int
    out_shape: tuple[int, ...]  # the output's shape for one sample (size 1 on out_axis)
    dtype: np.dtype


def inference_layout(model: Any, sample_shape: Sequence[int], dtype: Any, *, with_lengths: bool) -> InferenceLayout:
    """The layout of the model's output for input of shape ``sample_shape`` (its batch axis of size 1),
    found by running the model on zeros of one and of two samples: the output axis whose size follows the
    number of samples is the batch axis (the way :func:`rnnfast.nn.fit` finds it on the data)."""
    in_axis = input_batch_axis(model)
    shape = list(sample_shape)
    if len(shape) <= in_axis:
        raise ValueError(f"x has {len(shape)} axes, but the model's batch axis is axis {in_axis}: engines run batched "
                         "input only")

    def probe(k: int) -> np.ndarray:
        shape[in_axis] = k
        lengths = None
        if with_lengths:
            steps = shape[1 - in_axis] if len(shape) >= 2 else 1
            lengths = np.full(k, steps, dtype=np.int64)
        return run_inference(model, np.zeros(shape, dtype=dtype), lengths, None)

    one, two = probe(1), probe(2)
    differ = [a for a in range(one.ndim) if one.ndim == two.ndim and one.shape[a] != two.shape[a]]
    if one.ndim != two.ndim or len(differ) != 1 or (one.shape[differ[0]], two.shape[differ[0]]) != (1, 2):
        raise ValueError(f"the model's output has no batch axis: {one.shape} for one sample, {two.shape} for two")
    return InferenceLayout(in_axis, differ[0], one.shape, one.dtype)


def feature_width(model: Any) -> Optional[int]:
    """The width of the last axis of the model's input (None: indices into an Embedding, or any width)."""
    if isinstance(model, RNNBase):
        return model.input_size
    width = getattr(model, "input_features", None)
    return width if isinstance(width, int) else None


def input_dtype(model: Any) -> np.dtype:
    """The dtype the model's input is converted to: int64 indices for an Embedding first (no input width),
    else the dtype of the model's first parameter (float32 for a model without any)."""
    if feature_width(model) is None and not isinstance(model, RNNBase):
        first = next(iter(getattr(model, "named_children", lambda: iter(()))()), None)
        if first is not None and type(first[1]).__name__ == "Embedding":
            return np.dtype(np.int64)
    for value in model.parameters().values():
        return np.dtype(value.dtype) if np.dtype(value.dtype).kind == "f" else np.dtype(np.float32)
    return np.dtype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# A worker's models
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecRef:
    """A :class:`ModelSpec` with the digest of its bytes: the key under which a worker keeps the model it
    built from it, so that every chunk of one call (and later calls with the same model) reuse one build."""

    digest: str
    spec: ModelSpec


def spec_ref(spec: ModelSpec) -> SpecRef:
    # The digest of the pickled spec: its bytes (the saved model) are all it holds, so equal models share it.
    return SpecRef(hashlib.sha256(pickle.dumps(spec, protocol=4)).hexdigest(), spec)


_CACHE_SIZE = 4  # the models of the last few calls: a worker serving several models does not rebuild each time
_cache: OrderedDict[str, Any] = OrderedDict()
_cache_lock = threading.Lock()


def cached_model(ref: SpecRef) -> Any:
    """The model of ``ref`` built in this process, once: inference shares it between threads (kernel calls
    only read the parameters), so the threads of a worker use one copy."""
    with _cache_lock:
        model = _cache.get(ref.digest)
        if model is not None:
            _cache.move_to_end(ref.digest)
            return model
    model = ref.spec.build()  # outside the lock: a build takes milliseconds, two racing builds are equal
    with _cache_lock:
        _cache[ref.digest] = model
        _cache.move_to_end(ref.digest)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def thread_share(cpus: Any, what: str = "threads") -> int:
    """A worker's rnnfast thread count from the CPUs the engine gave it: at least 1, fractions rounded
    down (a Ray actor with num_cpus=0.5 runs one thread)."""
    if isinstance(cpus, (bool, np.bool_)):
        raise TypeError(f"{what} must be a positive number, got {cpus!r}")
    if isinstance(cpus, float):
        if not cpus > 0:
            raise ValueError(f"{what} must be positive, got {cpus!r}")
        return max(1, int(cpus))
    return positive_int(what, cpus)
