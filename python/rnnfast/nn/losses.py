"""Mean losses returning ``(loss, d_input)``: softmax cross-entropy and squared error, with optional masks
for padded steps; the :func:`softmax` and :func:`one_hot` helpers."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._validation import as_array, float_dtype, positive_int

__all__ = ["softmax", "softmax_cross_entropy", "mse", "one_hot"]

ArrayLike = Any


def _float_input(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as a float32/float64 array (float32 stays float32; anything else real goes to float64)."""
    arr = as_array(name, value)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype.kind == "f":  # float16
        return arr.astype(np.float32)
    return arr.astype(np.float64)


def softmax(logits: ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (float32 stays float32, other input runs in float64)."""
    z = _float_input("logits", logits)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    probabilities: np.ndarray = e / e.sum(axis=axis, keepdims=True)
    return probabilities


def one_hot(indices: ArrayLike, num_classes: int, dtype: Any = "float32") -> np.ndarray:
    """``indices`` (any shape, ints in [0, num_classes)) -> (..., num_classes) one-hot array."""
    num_classes = positive_int("num_classes", num_classes)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"indices must be in [0, {num_classes}), got values in [{idx.min()}, {idx.max()}]")
    out = np.zeros(idx.shape + (num_classes,), dtype=float_dtype(dtype))
    np.put_along_axis(out, idx[..., None].astype(np.intp), 1, axis=-1)
    return out


def _mask_weights(mask: Optional[ArrayLike], shape: tuple[int, ...], dtype: np.dtype, what: str) -> Optional[np.ndarray]:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"mask has dtype {m.dtype}; expected booleans or 0/1 weights")
    try:
        m = np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(f"mask has shape {m.shape}, which does not broadcast to {shape} ({what})") from None
    if m.dtype.kind == "f" and m.size and m.min() < 0:
        raise ValueError("mask weights must be non-negative")
    return m.astype(dtype)


def softmax_cross_entropy(logits: ArrayLike, targets: ArrayLike, *,
                          mask: Optional[ArrayLike] = None) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over classes on the last axis, and its gradient.

    Keras' ``categorical_crossentropy`` after a softmax, or PyTorch's ``cross_entropy`` on logits.

    Parameters
    ----------
    logits : array-like (..., C)
        Unnormalised scores; float32 stays float32, other real input runs in float64.
    targets : array-like of ints (...)
        Class indices in [0, C), the shape of ``logits`` without its last axis.
    mask : array-like (...), optional
        Booleans (or non-negative weights) broadcastable to ``targets``: the loss is the weighted mean over
        the positions, so padded steps (mask 0) contribute neither loss nor gradient. If every weight is
        zero the loss is 0.

    Returns
    -------
    loss : float
        ``sum(w * -log softmax(logits)[target]) / sum(w)`` (w = 1 without a mask).
    d_logits : ndarray (..., C)
        Gradient of ``loss`` with respect to ``logits``: ``w * (softmax - one_hot(target)) / sum(w)``.
    """
    z = _float_input("logits", logits)
    if z.ndim < 1:
        raise ValueError(f"logits must have a class axis, got shape {z.shape}")
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
    if t.shape != z.shape[:-1]:
        raise ValueError(f"targets has shape {t.shape}, expected {z.shape[:-1]} (logits' shape {z.shape} "
                         "without its class axis)")
    C = z.shape[-1]
    if t.size and (t.min() < 0 or t.max() >= C):
        raise ValueError(f"targets must be class indices in [0, {C}) for logits of shape {z.shape}, got values "
                         f"in [{t.min()}, {t.max()}]")
    w = _mask_weights(mask, t.shape, z.dtype, "the shape of targets")
    shifted = z - z.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_p = shifted - log_sum
    t_idx = t[..., None].astype(np.intp)
    nll = -np.take_along_axis(log_p, t_idx, axis=-1)[..., 0]
    grad = np.exp(log_p)
    np.put_along_axis(grad, t_idx, np.take_along_axis(grad, t_idx, axis=-1) - 1, axis=-1)
    if w is None:
        count = max(t.size, 1)
        loss = float(nll.sum(dtype=np.float64)) / count
        grad /= z.dtype.type(count)
    else:
        total = float(w.sum(dtype=np.float64))
        if total == 0.0:
            return 0.0, np.zeros_like(z)
        loss = float((w * nll).sum(dtype=np.float64)) / total
        grad *= w[..., None] / z.dtype.type(total)
    return loss, grad


def mse(pred: ArrayLike, target: ArrayLike, *, mask: Optional[ArrayLike] = None) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient: ``mean((pred - target)**2)``.

    Parameters
    ----------
    pred, target : array-like, the same shape
        float32 stays float32, other real input runs in float64.
    mask : array-like, optional
        Booleans or non-negative weights broadcastable to ``pred``; the mean is then weighted by it (a
        (T, B, 1) mask drops whole padded steps of a (T, B, F) prediction). All-zero weights give loss 0.

    Returns
    -------
    loss : float
    d_pred : ndarray, the shape of ``pred``
        ``2 * w * (pred - target) / sum(w)``.
    """
    p = _float_input("pred", pred)
    t = as_array("target", target)
    if t.shape != p.shape:
        raise ValueError(f"target has shape {t.shape}, expected the shape of pred {p.shape}")
    diff = p - t.astype(p.dtype, copy=False)
    w = _mask_weights(mask, p.shape, p.dtype, "the shape of pred")
    if w is None:
        count = max(p.size, 1)
        return float(np.square(diff).sum(dtype=np.float64)) / count, diff * p.dtype.type(2.0 / count)
    total = float(w.sum(dtype=np.float64))
    if total == 0.0:
        return 0.0, np.zeros_like(p)
    loss = float((w * np.square(diff)).sum(dtype=np.float64)) / total
    return loss, diff * w * p.dtype.type(2.0 / total)
