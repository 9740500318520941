"""The loss :func:`rnnfast.nn.fit` computes on a batch, and the gradient part of a training step.

Shared by :func:`~rnnfast.nn.fit` (a batch at a time) and :mod:`rnnfast.parallel` (a shard of a batch at a
time), so that both run the same forward, loss and backward: the loss function of the loss fit was given, the
accuracy count, the number of terms a loss averages over (which weights a shard's share of a batch), and
:func:`batch_gradient`, the step up to (not including) clipping and the optimiser.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ._fit_data import Dataset, LossKind
from .losses import mse, softmax_cross_entropy

__all__ = ["LossFunction", "loss_function", "correct", "loss_terms", "batch_gradient"]

LossFunction = Callable[..., tuple[float, np.ndarray]]


def _nll_of_probabilities(p: np.ndarray, targets: np.ndarray,
                          mask: Optional[np.ndarray]) -> tuple[float, np.ndarray]:
    """Cross-entropy of probabilities ``p`` (a model ending in Softmax): ``mean(-log p[target])``, and its
    gradient with respect to ``p``.

    The gradient, ``-w / (sum(w) * p[target])`` at the target and 0 elsewhere, is what the Softmax's
    backward turns into ``w * (p - one_hot) / sum(w)``: exactly the gradient of the cross-entropy on the
    logits. A probability that underflowed to 0 is taken as the smallest normal number, so the loss stays
    finite (about 87 in float32) and that sequence's gradient is 0, as with Keras' clipping.
    """
    idx = targets[..., None].astype(np.intp)
    p_t = np.maximum(np.take_along_axis(p, idx, axis=-1)[..., 0], np.finfo(p.dtype).tiny)
    if mask is None:
        w = np.ones(targets.shape, dtype=p.dtype)
    else:
        w = np.broadcast_to(mask, targets.shape).astype(p.dtype)
    total = float(w.sum(dtype=np.float64))
    if total == 0.0:
        return 0.0, np.zeros_like(p)
    loss = float((w * -np.log(p_t)).sum(dtype=np.float64)) / total
    grad = np.zeros_like(p)
    np.put_along_axis(grad, idx, (-w / (p.dtype.type(total) * p_t))[..., None], axis=-1)
    return loss, grad


def loss_function(data: Dataset) -> LossFunction:
    """``(pred, target, mask) -> (loss, d_pred)`` for the loss fit was given."""
    if data.loss_kind is LossKind.CROSS_ENTROPY:
        if data.probabilities:
            return _nll_of_probabilities
        return lambda pred, target, mask: softmax_cross_entropy(pred, target, mask=mask)
    if data.loss_kind is LossKind.MSE:
        return lambda pred, target, mask: mse(pred, target, mask=mask)
    user = data.loss
    assert user is not None  # a callable loss kind always carries its function
    def call(pred: np.ndarray, target: np.ndarray, mask: Optional[np.ndarray]) -> tuple[float, np.ndarray]:
        result = user(pred, target) if mask is None else user(pred, target, mask=mask)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"loss {getattr(user, '__name__', user)!r} must return (loss, gradient), got "
                            f"{type(result).__name__}")
        value, grad = result
        grad = np.asarray(grad)
        if grad.shape != pred.shape:
            raise ValueError(f"loss {getattr(user, '__name__', user)!r} returned a gradient of shape {grad.shape}, "
                             f"expected the prediction's shape {pred.shape}")
        return float(value), grad

    return call


def correct(pred: np.ndarray, target: np.ndarray, mask: Optional[np.ndarray]) -> tuple[int, int]:
    """(labels predicted right, labels counted): the arg-max class against the target, padding not counted."""
    right = pred.argmax(axis=-1) == target
    if mask is None:
        return int(right.sum()), int(right.size)
    m = np.broadcast_to(mask, target.shape) > 0
    return int((right & m).sum()), int(m.sum())


def loss_terms(data: Dataset, idx: np.ndarray) -> int:
    """A count proportional to the number of terms the loss of the samples ``idx`` averages over: the samples,
    or, for per-step targets with ``lengths`` (a masked loss), the unpadded steps.

    The losses fit computes are means over their terms (each sample has as many elements or targets as
    another, padded steps not counted), so a batch's loss is the sum over any split of its samples of each
    part's loss times its share of these counts; so are the gradients. A callable loss is taken to be such a
    mean (as :func:`~rnnfast.nn.mse` and :func:`~rnnfast.nn.softmax_cross_entropy` are, weighted by the mask).
    """
    mask = data.mask(idx)
    if mask is None:
        return len(idx)
    return int(np.count_nonzero(mask))


def batch_gradient(model: Any, data: Dataset, loss_fn: LossFunction, idx: np.ndarray,
                   rng: Optional[np.random.Generator]) -> tuple[float, Optional[tuple[int, int]]]:
    """The gradient part of a training step on the samples ``idx``: ``zero_grad``, the training forward (its
    Dropout drawing from ``rng``), the loss and ``backward``, which leaves the gradients in ``model.grads``.

    Returns
    -------
    (the batch's loss, (labels right, labels counted) with loss 'cross_entropy' else None)
    """
    target, mask = data.batch_y(idx), data.mask(idx)
    model.zero_grad()
    pred = np.asarray(model.forward(data.batch_x(idx), training=True, lengths=data.batch_lengths(idx), rng=rng))
    value, d_pred = loss_fn(pred, target, mask)
    model.backward(d_pred)
    counts = correct(pred, target, mask) if data.loss_kind is LossKind.CROSS_ENTROPY else None
    return value, counts
