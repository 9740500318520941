"""``nn.fit``: the training loop of Keras' ``Model.fit`` over rnnfast's explicit forward and backward.

:func:`fit` shuffles the data, walks it in mini-batches and runs, for each batch, exactly the steps a
hand-written loop would (see :func:`fit` for the order), with a progress bar and a :class:`History` of
per-epoch metrics. Everything it checks about the data (shapes, labels, lengths, the validation set, the
optimiser) is checked before the first training step, in :mod:`._fit_data`.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from typing import Any, Callable, Optional, Protocol, Union

import numpy as np

from .._validation import positive_int
from ._fit_data import Dataset, LossKind, prepare_data, prepare_validation
from ._progress import ProgressBar
from .losses import mse, softmax_cross_entropy
from .optim import SGD, Adam, clip_grad_norm

__all__ = ["fit", "History"]

ArrayLike = Any
LossFunction = Callable[..., tuple[float, np.ndarray]]


class Model(Protocol):
    """What :func:`fit` needs of a model (:class:`rnnfast.nn.Sequential` has all of it)."""

    def forward(self, x: Any, *, training: bool = ..., lengths: Any = ..., rng: Any = ...) -> Any: ...

    def backward(self, d_y: Any) -> Any: ...

    def parameters(self) -> Mapping[str, np.ndarray]: ...

    @property
    def grads(self) -> Mapping[str, np.ndarray]: ...

    def zero_grad(self) -> None: ...


class History:
    """What :func:`fit` returns: the metrics of every epoch, as Keras' ``History``.

    Attributes
    ----------
    history : dict of str to list of float
        One value per epoch for each metric: ``'loss'`` (the mean training loss of the epoch, each batch's
        loss weighted by its number of sequences), ``'accuracy'`` with loss ``'cross_entropy'`` (the share
        of training labels predicted right during the epoch, padded steps not counted), and with
        ``validation_data`` ``'val_loss'`` (and ``'val_accuracy'``), measured on the whole validation set
        after the epoch's last step.
    epoch : list of int
        The epochs run, 0-based (``[0, 1, ..., epochs - 1]``).
    params : dict
        The settings of the run: ``epochs``, ``steps`` (batches per epoch), ``batch_size``, ``samples``
        and ``seed`` (the one given, or the one drawn when ``seed=None``: pass it to repeat the run).
    """

    def __init__(self, params: Optional[dict[str, Any]] = None) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = dict(params or {})

    def _append(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epoch.append(epoch)
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History(epochs={len(self.epoch)}{', ' + last if last else ''})"


def step_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The generator handed to the model's forward (its Dropout) at ``step`` of ``epoch`` (both 0-based).

    ``np.random.default_rng([seed, epoch, step])``: every step has a stream of its own, independent of
    how many numbers earlier steps drew and of the shuffling (which has ``default_rng(seed)``), so that a
    run can be repeated, or resumed at any step, from ``seed`` alone.
    """
    return np.random.default_rng([seed, epoch, step])


def _check_seed(seed: Any) -> int:
    """``seed`` as a non-negative int; None draws one from the operating system's entropy."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None or a non-negative int, got {seed!r} of type {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be None or a non-negative int, got {seed}")
    return int(seed)


def _check_verbose(verbose: Any) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, numbers.Integral) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch), got {verbose!r}")
    return int(verbose)


def _check_clip_norm(clip_norm: Any) -> Optional[float]:
    if clip_norm is None:
        return None
    if isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real):
        raise TypeError(f"clip_norm must be None or a positive number, got {clip_norm!r} of type "
                        f"{type(clip_norm).__name__}")
    value = float(clip_norm)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"clip_norm must be None or a positive finite number, got {clip_norm!r}")
    return value


def _check_model(model: Any) -> None:
    """Refuse what is not a model fit can train, before anything runs, saying what is missing."""
    missing = [f"{name}()" for name in ("forward", "backward", "parameters", "zero_grad")
               if not callable(getattr(model, name, None))]
    if not isinstance(getattr(model, "grads", None), Mapping):
        missing.append("a grads dict")
    if missing:
        raise TypeError(f"model ({type(model).__name__}) is not a model fit can train: it lacks "
                        f"{', '.join(missing)} (build it as nn.Sequential(...))")
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): trust it
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    lacking = [k for k in ("training", "lengths", "rng") if k not in params]
    if lacking:
        raise TypeError(f"model ({type(model).__name__}).forward does not take the keyword(s) {', '.join(lacking)}: "
                        "fit calls forward(x, training=True, lengths=..., rng=...) and needs one output array; a "
                        "single layer (whose forward returns (out, state)) trains as nn.Sequential(layer)")


def _optimizer(optimizer: Any, model: Any) -> Any:
    """The optimiser to step: the one given (checked to update the model's parameters) or one built."""
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "adam":
            return Adam(model)              # Keras' and PyTorch's defaults: lr 1e-3
        if name == "sgd":
            return SGD(model, lr=0.01)      # Keras' default learning rate
        raise ValueError(f"optimizer must be 'adam', 'sgd' or an optimiser object (nn.Adam(model, lr=...)), "
                         f"got {optimizer!r}")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must be 'adam', 'sgd' or an optimiser with a step() method (nn.Adam(model)), "
                        f"got {type(optimizer).__name__}")
    modules = getattr(optimizer, "modules", None)
    if modules is not None:
        # An optimiser built on other modules would step nothing of this model: every epoch would be wasted.
        updated = {id(p) for m in modules for p in m.parameters().values()}
        missing = [name for name, p in model.parameters().items() if id(p) not in updated]
        if missing:
            shown = ", ".join(repr(n) for n in missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise ValueError(f"optimizer does not update {len(missing)} of the model's parameters ({shown}): "
                             "build it on the model, as nn.Adam(model, lr=...)")
    return optimizer


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


def _loss_function(data: Dataset) -> LossFunction:
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


def _correct(pred: np.ndarray, target: np.ndarray, mask: Optional[np.ndarray]) -> tuple[int, int]:
    """(labels predicted right, labels counted): the arg-max class against the target, padding not counted."""
    right = pred.argmax(axis=-1) == target
    if mask is None:
        return int(right.sum()), int(right.size)
    m = np.broadcast_to(mask, target.shape) > 0
    return int((right & m).sum()), int(m.sum())


def _evaluate(model: Any, data: Dataset, batch_size: int, loss_fn: LossFunction) -> dict[str, float]:
    """Validation metrics over the whole set at once (inference: no dropout, nothing saved)."""
    predict = getattr(model, "predict", None)
    if callable(predict):
        pred = np.asarray(predict(data.x, batch_size=batch_size, lengths=data.lengths))
    else:
        parts = [np.asarray(model.forward(data.batch_x(idx), training=False, lengths=data.batch_lengths(idx)))
                 for idx in np.array_split(np.arange(data.n), range(batch_size, data.n, batch_size))]
        pred = np.concatenate(parts, axis=data.out_axis)
    mask = data.mask(np.arange(data.n))
    value, _ = loss_fn(pred, data.y, mask)
    metrics = {"val_loss": value}
    if data.loss_kind is LossKind.CROSS_ENTROPY:
        right, counted = _correct(pred, data.y, mask)
        metrics["val_accuracy"] = right / max(counted, 1)
    return metrics


def fit(model: Model, x: ArrayLike, y: ArrayLike, *, loss: Union[str, LossFunction], optimizer: Any,
        epochs: int = 1, batch_size: int = 32, seed: Optional[int] = None, lengths: Optional[ArrayLike] = None,
        validation_data: Optional[tuple[Any, ...]] = None, clip_norm: Optional[float] = None, verbose: int = 1,
        shuffle: bool = True) -> History:
    """Train ``model`` on ``(x, y)`` in mini-batches for ``epochs`` epochs, as Keras' ``Model.fit``.

    Each step takes the next ``batch_size`` samples of the epoch's order and runs, in this order::

        model.zero_grad()
        pred = model.forward(x_batch, training=True, lengths=lengths_batch, rng=step_rng(seed, epoch, step))
        loss_value, d_pred = loss(pred, y_batch)       # masked over padded steps, see y below
        model.backward(d_pred)
        nn.clip_grad_norm(model, clip_norm)           # only with clip_norm
        optimizer.step()

    so a hand-written loop doing the same reproduces ``fit`` bit for bit.

    Parameters
    ----------
    model : nn.Sequential or a model with the same interface
        Needs ``forward(x, *, training, lengths, rng) -> y`` (one array), ``backward(d_y)``,
        ``parameters()``, ``grads`` and ``zero_grad()``; ``predict(x, *, batch_size, lengths)`` is used for
        validation when present. A single recurrent layer (whose forward returns ``(out, state)``) trains
        as ``nn.Sequential(layer)``; a many-to-one classifier as ``nn.Sequential(layer, nn.LastStep(),
        nn.Linear(...))``.
    x : array-like
        All training inputs. The batch axis follows the first recurrent layer of the model: axis 0 with
        ``batch_first=True``, else axis 1 (time-major (T, N, ...), the layers' default); a Sequential with
        no recurrent layer takes axis 0; a model that is not a Sequential says its layout with a
        ``batch_first`` attribute (as the layers do), else takes axis 0. After an ``nn.Embedding``, ``x``
        holds integer indices, (T, N) or (N, T).
    y : array-like
        Targets. Their batch axis is that of the model's output (found by running it on one and two
        samples of ``x`` before training). With ``loss='cross_entropy'``: integer class indices in
        [0, C), the output's shape without its class axis: (N,) per sequence (many-to-one, output (N, C)),
        (T, N) or (N, T) per step (output (T, N, C) or (N, T, C)). With ``'mse'``: the output's shape.
        Per-step targets of sequences with ``lengths`` are masked: steps past a sequence's end count for
        nothing in the loss, its gradient or the accuracy.
    loss : 'cross_entropy', 'mse' or callable
        ``'cross_entropy'``: softmax cross-entropy on the output as logits; if the model ends in
        ``nn.Softmax`` (over the class axis) its output is taken as probabilities, and the loss is
        ``-log p[target]``, with the gradient that the Softmax turns into that of the logits.
        ``'mse'``: mean squared error. A callable ``loss(pred, target) -> (loss, d_pred)`` (called as
        ``loss(pred, target, mask=mask)`` when per-step outputs are masked by ``lengths``; ``nn.mse`` and
        ``nn.softmax_cross_entropy`` are such callables).
    optimizer : optimiser, 'adam' or 'sgd'
        An ``nn.Adam``/``nn.SGD`` built on the model (checked: it must update all of the model's
        parameters), or any object with ``step()``; ``'adam'`` is ``nn.Adam(model)`` (lr 1e-3) and
        ``'sgd'`` is ``nn.SGD(model, lr=0.01)``, Keras' defaults; for another learning rate build it.
    epochs, batch_size : int, default 1 and 32
        Positive ints. The last batch of an epoch may be smaller.
    seed : int, optional
        Makes the run repeatable: the epochs' orders are permutations drawn in turn from
        ``np.random.default_rng(seed)``, and step ``s`` of epoch ``e`` (both 0-based) gives the model's
        forward ``rng=np.random.default_rng([seed, e, s])`` (for its Dropout). None draws a seed (kept in
        ``History.params['seed']``). The initial weights are the model's: seed it when building it.
    lengths : array-like of int (N,), optional
        Each sequence's length, for padded sequences (passed to the recurrent layers and ``nn.LastStep``,
        and masking per-step targets).
    validation_data : (x_val, y_val) or (x_val, y_val, lengths_val), optional
        Evaluated after every epoch; shaped as ``x`` and ``y`` but for the number of samples (and the
        number of steps, for a recurrent model).
    clip_norm : float, optional
        Clip the gradients to this global norm before each step (``nn.clip_grad_norm``).
    verbose : 0, 1 or 2, default 1
        0 silent; 1 a progress bar (epoch, step of steps, loss, rate, ETA) redrawn in place on a
        terminal, one line per epoch otherwise; 2 one line per epoch.
    shuffle : bool, default True
        Shuffle the samples every epoch (False: in order).

    Returns
    -------
    History
        ``history.history['loss']`` (and ``'accuracy'``, ``'val_loss'``, ``'val_accuracy'``) per epoch.

    Raises
    ------
    TypeError, ValueError
        Before the first step, for anything that would fail later: a model without the interface, labels
        that are not integers or out of [0, C) (ValueError naming y and the range), x and y with different
        numbers of samples, lengths or a validation set of the wrong shape, epochs or batch_size not
        positive ints, an unknown loss or optimiser. Errors of the model on ``x`` itself (the wrong
        feature size) come from its layers, naming the shapes.
    """
    _check_model(model)
    epochs = positive_int("epochs", epochs)
    batch_size = positive_int("batch_size", batch_size)
    verbose = _check_verbose(verbose)
    clip = _check_clip_norm(clip_norm)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    run_seed = _check_seed(seed)
    data = prepare_data(model, x, y, lengths, loss)
    validation = None if validation_data is None else prepare_validation(model, data, validation_data)
    opt = _optimizer(optimizer, model)
    loss_fn = _loss_function(data)

    steps = -(-data.n // batch_size)
    history = History({"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": data.n,
                       "seed": run_seed})
    bar = ProgressBar(epochs, steps, verbose=verbose)
    order_rng = np.random.default_rng(run_seed)
    for epoch in range(epochs):
        order = order_rng.permutation(data.n) if shuffle else np.arange(data.n)
        bar.start_epoch(epoch + 1)
        right = counted = 0
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            target, mask = data.batch_y(idx), data.mask(idx)
            model.zero_grad()
            pred = np.asarray(model.forward(data.batch_x(idx), training=True, lengths=data.batch_lengths(idx),
                                            rng=step_rng(run_seed, epoch, step)))
            value, d_pred = loss_fn(pred, target, mask)
            model.backward(d_pred)
            if clip is not None:
                clip_grad_norm(model, clip)
            opt.step()
            bar.step(value, len(idx))
            if data.loss_kind is LossKind.CROSS_ENTROPY:
                r, c = _correct(pred, target, mask)
                right, counted = right + r, counted + c
        metrics = {"loss": bar.mean_loss}
        if data.loss_kind is LossKind.CROSS_ENTROPY:
            metrics["accuracy"] = right / max(counted, 1)
        if validation is not None:
            metrics.update(_evaluate(model, validation, batch_size, loss_fn))
        bar.end_epoch(**{k: v for k, v in metrics.items() if k != "loss"})
        history._append(epoch, metrics)
    bar.close()
    return history
