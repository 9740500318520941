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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union

import numpy as np

from .._validation import positive_int
from ._fit_data import Dataset, LossKind, prepare_data, prepare_validation
from ._fit_loss import LossFunction, batch_gradient, correct, loss_function
from ._progress import ProgressBar
from .optim import SGD, Adam, clip_grad_norm

__all__ = ["fit", "History"]

ArrayLike = Any


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
        right, counted = correct(pred, data.y, mask)
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
    run = prepare_fit(model, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed,
                      lengths=lengths, validation_data=validation_data, clip_norm=clip_norm, verbose=verbose,
                      shuffle=shuffle)

    def gradient(epoch: int, step: int, idx: np.ndarray) -> tuple[float, Optional[tuple[int, int]]]:
        return batch_gradient(model, run.data, run.loss_fn, idx, step_rng(run.seed, epoch, step))

    return train(run, gradient)


@dataclass
class FitRun:
    """Everything :func:`fit` checked and built before its first step: what its loop (:func:`train`) runs on,
    whoever computes the gradients (:func:`fit` itself, or the shards of :mod:`rnnfast.parallel`)."""

    model: Any
    data: Dataset
    validation: Optional[Dataset]
    optimizer: Any
    loss_fn: LossFunction
    epochs: int
    batch_size: int
    seed: int                   # the one given, or the one drawn
    clip: Optional[float]
    verbose: int
    shuffle: bool

    @property
    def steps(self) -> int:
        """Batches per epoch (the last one may be smaller)."""
        return -(-self.data.n // self.batch_size)

    def batches(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(epoch, step, sample indices)`` of every step in turn: the epochs' orders are permutations drawn
        in turn from ``np.random.default_rng(seed)`` (or the samples in order, without shuffling), cut into
        ``batch_size`` samples."""
        order_rng = np.random.default_rng(self.seed)
        for epoch in range(self.epochs):
            order = order_rng.permutation(self.data.n) if self.shuffle else np.arange(self.data.n)
            for step in range(self.steps):
                yield epoch, step, order[step * self.batch_size:(step + 1) * self.batch_size]


def prepare_fit(model: Any, x: ArrayLike, y: ArrayLike, *, loss: Any, optimizer: Any, epochs: Any = 1,
                batch_size: Any = 32, seed: Any = None, lengths: Any = None, validation_data: Any = None,
                clip_norm: Any = None, verbose: Any = 1, shuffle: Any = True) -> FitRun:
    """:func:`fit`'s arguments checked (everything :func:`fit` refuses is refused here, before any step) and
    what its loop needs built: the data, the validation set, the optimiser, the loss function."""
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
    return FitRun(model, data, validation, opt, loss_function(data), epochs, batch_size, run_seed, clip, verbose,
                  bool(shuffle))


#: ``gradient(epoch, step, sample indices) -> (the batch's loss, (labels right, labels counted) or None)``:
#: leaves the batch's gradients in the model's ``grads``.
BatchGradient = Callable[[int, int, np.ndarray], tuple[float, Optional[tuple[int, int]]]]


def train(run: FitRun, gradient: BatchGradient, params: Optional[Mapping[str, Any]] = None) -> History:
    """:func:`fit`'s loop: for every step of :meth:`FitRun.batches`, the gradients (``gradient``), clipping,
    the optimiser's step, the progress bar; after every epoch the metrics, validation, the history.
    ``params`` adds to :attr:`History.params`."""
    model, data = run.model, run.data
    history = History({"epochs": run.epochs, "steps": run.steps, "batch_size": run.batch_size, "samples": data.n,
                       "seed": run.seed, **(params or {})})
    bar = ProgressBar(run.epochs, run.steps, verbose=run.verbose)
    right = counted = 0
    for epoch, step, idx in run.batches():
        if step == 0:
            bar.start_epoch(epoch + 1)
            right = counted = 0
        value, counts = gradient(epoch, step, idx)
        if run.clip is not None:
            clip_grad_norm(model, run.clip)
        run.optimizer.step()
        bar.step(value, len(idx))
        if counts is not None:
            right, counted = right + counts[0], counted + counts[1]
        if step == run.steps - 1:
            metrics = {"loss": bar.mean_loss}
            if data.loss_kind is LossKind.CROSS_ENTROPY:
                metrics["accuracy"] = right / max(counted, 1)
            if run.validation is not None:
                metrics.update(_evaluate(model, run.validation, run.batch_size, run.loss_fn))
            bar.end_epoch(**{k: v for k, v in metrics.items() if k != "loss"})
            history._append(epoch, metrics)
    bar.close()
    return history
