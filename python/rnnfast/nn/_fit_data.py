"""What :func:`rnnfast.nn.fit` checks and works out about its data before the first training step.

Where the batch axis of ``x`` is (the first recurrent layer's ``batch_first``), where that of the
model's output and so of ``y`` is (found by running the model on one and two samples), whether the
output is per step (so that ``lengths`` masks the loss), and that the labels, lengths and validation set
fit: every mistake is a TypeError/ValueError naming the argument and the shapes, raised before training
changes anything.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .._rnn_base import RNNBase
from .._validation import as_array

__all__ = ["LossKind", "Dataset", "prepare_data", "prepare_validation", "input_batch_axis"]

LOSS_NAMES = ("cross_entropy", "mse")


class LossKind(enum.Enum):
    CROSS_ENTROPY = "cross_entropy"
    MSE = "mse"
    CALLABLE = "callable"


@dataclass
class Dataset:
    """Arrays checked against the model, and how to cut batches and loss masks out of them."""

    x: np.ndarray
    y: np.ndarray
    lengths: Optional[np.ndarray]
    x_axis: int                 # batch axis of x
    out_axis: int               # batch axis of the model's output, and of y
    time_axis: Optional[int]    # time axis of a per-step output (masked by lengths), else None
    mask_ndim: int              # rank the loss mask broadcasts to (y's for cross-entropy, the output's else)
    loss_kind: LossKind
    loss: Optional[Callable[..., Any]]
    probabilities: bool         # the model ends in Softmax: its output is probabilities
    out_shape: tuple[int, ...]  # the output's shape for one sample

    @property
    def n(self) -> int:
        return int(self.x.shape[self.x_axis])

    def batch_x(self, idx: np.ndarray) -> np.ndarray:
        return _take(self.x, idx, self.x_axis)

    def batch_y(self, idx: np.ndarray) -> np.ndarray:
        return _take(self.y, idx, self.out_axis)

    def batch_lengths(self, idx: np.ndarray) -> Optional[np.ndarray]:
        return None if self.lengths is None else self.lengths[idx]

    def mask(self, idx: np.ndarray) -> Optional[np.ndarray]:
        """The loss mask of the samples ``idx``: True at the real steps of per-step targets, else None."""
        if self.lengths is None or self.time_axis is None:
            return None
        steps = np.arange(self.out_shape[self.time_axis])
        valid = steps[:, None] < self.lengths[idx][None, :]          # (T, B)
        if self.time_axis > self.out_axis:
            valid = valid.T                                          # (B, T)
        mask: np.ndarray = valid.reshape(valid.shape + (1,) * (self.mask_ndim - 2))
        return mask


def _take(a: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``a``'s entries ``idx`` on ``axis``, as a new C-contiguous array. Indexing, not ``np.take``: take first
    copies a whole array that is not C-contiguous (a transposed view), at every batch."""
    return np.ascontiguousarray(a[(slice(None),) * axis + (idx,)])


def _children(model: Any) -> Iterator[Any]:
    """The model's modules in order, nested Sequentials flattened (nothing for a model without children)."""
    named = getattr(model, "named_children", None)
    if not callable(named):
        return
    for _, child in named():
        yield child
        yield from _children(child)


def input_batch_axis(model: Any) -> int:
    """The batch axis of the model's input: the first recurrent layer's (1 time-major, 0 batch_first);
    for a model without children (not a Sequential), its own ``batch_first`` attribute if it has one;
    else 0."""
    for m in _children(model):
        if isinstance(m, RNNBase):
            return 0 if m.batch_first else 1
    if not callable(getattr(model, "named_children", None)):
        batch_first = getattr(model, "batch_first", None)
        if isinstance(batch_first, (bool, np.bool_)):
            return 0 if batch_first else 1
    return 0


def _recurrent(model: Any) -> bool:
    """Whether the model's input has a time axis beside the batch axis (a recurrent layer reads it)."""
    if any(isinstance(m, RNNBase) for m in _children(model)):
        return True
    return not callable(getattr(model, "named_children", None)) and hasattr(model, "batch_first")


def _ends_in_softmax(model: Any, out_ndim: int) -> bool:
    """Whether the model's last module is a Softmax over the class (last) axis; another axis is refused."""
    from .activations import Softmax

    last = None
    for last in _children(model):
        pass
    if not isinstance(last, Softmax):
        return False
    axis = int(getattr(last, "axis"))
    if axis not in (-1, out_ndim - 1):
        raise ValueError(f"loss 'cross_entropy' needs the classes on the last axis, but the model ends in "
                         f"Softmax(axis={axis}) of an output of rank {out_ndim}")
    return True


def _probe(model: Any, x: np.ndarray, x_axis: int, lengths: Optional[np.ndarray], k: int) -> np.ndarray:
    """The model's inference output for the first ``k`` samples."""
    idx = np.arange(k)
    out = model.forward(_take(x, idx, x_axis), training=False,
                        lengths=None if lengths is None else lengths[idx], rng=None)
    if isinstance(out, tuple):
        raise TypeError(f"model ({type(model).__name__}).forward returned a tuple of {len(out)}; fit needs one "
                        "output array (a recurrent layer returns (out, state): train it as nn.Sequential(layer))")
    return np.asarray(out)


def _output_layout(model: Any, x: np.ndarray, x_axis: int, lengths: Optional[np.ndarray]) -> tuple[int, tuple[int, ...]]:
    """(batch axis of the output, output shape for one sample), by running the model on 1 and 2 samples:
    the axis whose size follows the number of samples is the batch axis."""
    one = _probe(model, x, x_axis, lengths, 1)
    if x.shape[x_axis] < 2:
        # One sample only: per-step outputs keep x's batch axis, per-sequence ones have it first.
        return (x_axis if one.ndim >= 3 else 0), one.shape
    two = _probe(model, x, x_axis, lengths, 2)
    differ = [a for a in range(one.ndim) if one.ndim == two.ndim and one.shape[a] != two.shape[a]]
    if one.ndim != two.ndim or len(differ) != 1 or (one.shape[differ[0]], two.shape[differ[0]]) != (1, 2):
        raise ValueError(f"the model's output has no batch axis: {one.shape} for one sample of x, {two.shape} "
                         "for two")
    return differ[0], one.shape


def _with_batch(shape: tuple[int, ...], axis: int, n: int) -> tuple[int, ...]:
    return shape[:axis] + (n,) + shape[axis + 1:]


def _check_lengths(name: str, lengths: Any, x: np.ndarray, x_axis: int, recurrent: bool) -> Optional[np.ndarray]:
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    n = x.shape[x_axis]
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer sequence lengths, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},): one length per sample of x "
                         f"(x has shape {x.shape}, samples on axis {x_axis})")
    if recurrent and x.ndim >= 2:
        T = x.shape[1 - x_axis]
        if arr.size and (arr.min() < 0 or arr.max() > T):
            raise ValueError(f"{name} must be in [0, {T}] (x has {T} steps, shape {x.shape}), got values in "
                             f"[{arr.min()}, {arr.max()}]")
    elif arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative, got a minimum of {arr.min()}")
    return arr.astype(np.int64)


def _check_targets(name: str, y: Any, out_shape: tuple[int, ...], out_axis: int, n: int, kind: LossKind,
                   x_name: str) -> np.ndarray:
    """``y`` checked against the model's output (``out_shape`` for one sample, batch on ``out_axis``)."""
    if kind is LossKind.CROSS_ENTROPY:
        arr = np.asarray(y)
        C = out_shape[-1]
        expected = _with_batch(out_shape[:-1], out_axis, n) if out_axis < len(out_shape) - 1 else None
        if expected is None:
            raise ValueError(f"loss 'cross_entropy' needs a class axis after the batch axis, but the model's "
                             f"output has shape {out_shape} for one sample (batch axis {out_axis})")
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer class indices in [0, {C}) for loss 'cross_entropy' (the "
                             f"model has {C} outputs), got dtype {arr.dtype}"
                             + (" (one-hot targets? pass their argmax)" if arr.shape == _with_batch(out_shape, out_axis, n) else ""))
        if arr.shape != expected:
            raise ValueError(f"{name} has shape {arr.shape}, expected {expected}: class indices, the shape of the "
                             f"model's output without its class axis ({n} samples of {x_name} on axis {out_axis})")
        if arr.size and (arr.min() < 0 or arr.max() >= C):
            raise ValueError(f"{name} must be class indices in [0, {C}) (the model has {C} outputs), got values in "
                             f"[{arr.min()}, {arr.max()}]")
        return arr
    arr = as_array(name, y)
    if kind is LossKind.MSE:
        expected = _with_batch(out_shape, out_axis, n)
        if arr.shape != expected:
            raise ValueError(f"{name} has shape {arr.shape}, expected {expected} for loss 'mse': the shape of the "
                             f"model's output ({n} samples of {x_name} on axis {out_axis})")
        return arr
    if arr.ndim <= out_axis or arr.shape[out_axis] != n:
        raise ValueError(f"{name} has shape {arr.shape}, expected {n} samples on axis {out_axis} (the batch axis "
                         f"of the model's output, which has shape {out_shape} for one sample; {x_name} has {n})")
    return arr


def _loss_kind(loss: Any) -> LossKind:
    if isinstance(loss, str):
        if loss not in LOSS_NAMES:
            raise ValueError(f"loss must be 'cross_entropy', 'mse' or a callable returning (loss, gradient), got {loss!r}")
        return LossKind(loss)
    if not callable(loss):
        raise TypeError(f"loss must be 'cross_entropy', 'mse' or a callable returning (loss, gradient), got "
                        f"{type(loss).__name__}")
    return LossKind.CALLABLE


def _dataset(model: Any, x: Any, y: Any, lengths: Any, kind: LossKind, loss: Any, names: tuple[str, str, str],
             x_axis: int) -> Dataset:
    x_name, y_name, l_name = names
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{x_name} has dtype {arr.dtype}; expected real numbers or integer indices")
    if arr.ndim <= x_axis or arr.shape[x_axis] == 0:
        raise ValueError(f"{x_name} has shape {arr.shape}: expected at least one sample on axis {x_axis} (the "
                         f"batch axis{', time-major' if x_axis == 1 else ''})")
    n = arr.shape[x_axis]
    lens = _check_lengths(l_name, lengths, arr, x_axis, _recurrent(model))
    out_axis, out_shape = _output_layout(model, arr, x_axis, lens)
    targets = _check_targets(y_name, y, out_shape, out_axis, n, kind, x_name)
    # A per-step output has a time axis beside the batch axis and the features: the first two axes.
    time_axis = (1 - out_axis) if len(out_shape) >= 3 and out_axis < 2 else None
    probabilities = kind is LossKind.CROSS_ENTROPY and _ends_in_softmax(model, len(out_shape))
    mask_ndim = len(out_shape) - (1 if kind is LossKind.CROSS_ENTROPY else 0)
    return Dataset(arr, targets, lens, x_axis, out_axis, time_axis, mask_ndim, kind,
                   loss if kind is LossKind.CALLABLE else None, probabilities, out_shape)


def prepare_data(model: Any, x: Any, y: Any, lengths: Any, loss: Any) -> Dataset:
    """The training data checked against the model (running it on two samples of ``x``)."""
    return _dataset(model, x, y, lengths, _loss_kind(loss), loss, ("x", "y", "lengths"), input_batch_axis(model))


def prepare_validation(model: Any, train: Dataset, validation_data: Any) -> Dataset:
    """``validation_data`` (x_val, y_val[, lengths_val]) checked against the training data and the model."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, lengths_val), got "
                        f"{type(validation_data).__name__}"
                        + (f" of {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
    x_val, y_val = validation_data[0], validation_data[1]
    l_val = validation_data[2] if len(validation_data) == 3 else None
    if (l_val is None) != (train.lengths is None):
        raise ValueError("validation_data must give lengths_val (as a third item) exactly when fit is given "
                         "lengths: the training data has " + ("lengths" if train.lengths is not None else "none"))
    xv = np.asarray(x_val)
    # Samples may differ, and so may the steps of a recurrent model; the features may not.
    free = {train.x_axis} | ({1 - train.x_axis} if _recurrent(model) else set())
    same = xv.ndim == train.x.ndim and all(xv.shape[a] == train.x.shape[a] for a in range(xv.ndim) if a not in free)
    if not same:
        raise ValueError(f"validation_data x_val has shape {xv.shape}, which does not match x's shape "
                         f"{train.x.shape} (only the samples, axis {train.x_axis}"
                         + (", and the steps may differ)" if len(free) > 1 else ", may differ)"))
    val = _dataset(model, xv, y_val, l_val, train.loss_kind, train.loss, ("x_val", "y_val", "lengths_val"),
                   train.x_axis)
    if val.out_axis != train.out_axis:
        raise ValueError(f"validation_data: the model's output for x_val has its samples on axis {val.out_axis}, "
                         f"for x on axis {train.out_axis}")
    return val
