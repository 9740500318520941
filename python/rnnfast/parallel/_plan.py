"""How a data-parallel fit splits its work: the shards of a batch, their tasks and weights, and their dropout
streams. Everything here is decided on the driver, from the arguments of :func:`rnnfast.nn.fit`."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .._validation import positive_int
from ..nn._fit_data import Dataset, LossKind
from ..nn._fit_loss import loss_terms
from ..nn.fit import FitRun, prepare_fit
from ..nn.fit import step_rng as fit_step_rng

__all__ = ["shard_bounds", "step_rng", "ShardTask", "ShardConfig", "FitPlan", "plan_fit"]


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {value!r} of type {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def shard_bounds(n: int, world_size: int) -> list[tuple[int, int]]:
    """The contiguous split of ``n`` samples among ``world_size`` ranks: ``[(start, stop), ...]`` by rank.

    Sizes differ by at most one, earlier ranks taking the larger ones (``n = 10``, ``world_size = 3``:
    ``[(0, 4), (4, 7), (7, 10)]``); with ``n < world_size`` the last ranks get empty shards.

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not a non-negative int or ``world_size`` not a positive int.
    """
    n = _count("n", n)
    world_size = positive_int("world_size", world_size)
    base, extra = divmod(n, world_size)
    bounds = []
    start = 0
    for rank in range(world_size):
        stop = start + base + (1 if rank < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def step_rng(seed: int, epoch: int, step: int, rank: int) -> np.random.Generator:
    """The generator of the Dropout masks of shard ``rank`` at ``step`` of ``epoch`` (all 0-based).

    Rank 0 draws :func:`rnnfast.nn.fit`'s stream of the step, ``np.random.default_rng([seed, epoch,
    step])`` (so that one worker is :func:`~rnnfast.nn.fit`, dropout included); rank ``r > 0`` draws
    ``np.random.default_rng([seed, epoch, step, r])``. Every (step, rank) has a stream of its own, which
    depends on nothing but these four numbers: not on the engine, the worker, or retries.

    Raises
    ------
    TypeError, ValueError
        If an argument is not a non-negative int.
    """
    seed, epoch, step, rank = (_count(name, value) for name, value in
                               (("seed", seed), ("epoch", epoch), ("step", step), ("rank", rank)))
    if rank == 0:
        return fit_step_rng(seed, epoch, step)
    return np.random.default_rng([seed, epoch, step, rank])


@dataclass(frozen=True, eq=False)
class ShardTask:
    """One rank's share of one step: which samples, and the weight of its loss in the batch's.

    Attributes
    ----------
    epoch, step, rank : int
        0-based; the step's dropout stream is ``step_rng(seed, epoch, step, rank)``.
    indices : ndarray of int
        The shard's samples (global indices into ``x``, on its batch axis), in the batch's order; may be empty.
    weight : float
        The shard's share of the loss terms of the batch (:func:`shard_gradient` multiplies its loss and
        gradients by it, so that the batch's are the plain sum over ranks): its samples' share for a loss
        that is a mean over samples; for per-step targets with ``lengths``, its share of the unpadded steps.
    """

    epoch: int
    step: int
    rank: int
    indices: np.ndarray
    weight: float


@dataclass(frozen=True)
class ShardConfig:
    """What a worker needs besides the model and the data to compute shard gradients: the loss, the seed, and
    the layout of the data that :func:`rnnfast.nn.fit` worked out on the driver. Picklable (with a loss
    function that pickles, as a module-level function does)."""

    seed: int
    loss_kind: LossKind
    loss: Optional[Callable[..., Any]]  # the callable loss, None for 'cross_entropy' and 'mse'
    x_axis: int
    out_axis: int
    time_axis: Optional[int]
    mask_ndim: int
    probabilities: bool
    out_shape: tuple[int, ...]

    @classmethod
    def of(cls, data: Dataset, seed: int) -> ShardConfig:
        """The configuration of the driver's checked data ``data`` (:attr:`FitPlan.run`'s) and the run's seed."""
        return cls(seed, data.loss_kind, data.loss, data.x_axis, data.out_axis, data.time_axis, data.mask_ndim,
                   data.probabilities, data.out_shape)

    def dataset(self, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray]) -> Dataset:
        """The driver's checked data again, around the arrays it shipped (``x``, ``y``, ``lengths``)."""
        return Dataset(x, y, lengths, self.x_axis, self.out_axis, self.time_axis, self.mask_ndim, self.loss_kind,
                       self.loss, self.probabilities, self.out_shape)


class FitPlan:
    """The steps of a data-parallel fit and every rank's task in each: :func:`rnnfast.nn.fit`'s batches (the
    same permutations, drawn in turn from ``np.random.default_rng(seed)``), each cut by :func:`shard_bounds`.

    Made by :func:`plan_fit`.

    Attributes
    ----------
    run : the checked settings of :func:`rnnfast.nn.fit` (model, data, optimiser, epochs, seed, ...)
    world_size : int
    config : ShardConfig
    """

    def __init__(self, run: FitRun, world_size: int) -> None:
        self.run = run
        self.world_size = positive_int("world_size", world_size)
        self.config = ShardConfig.of(run.data, run.seed)

    @property
    def x(self) -> np.ndarray:
        """All training inputs, checked (samples on axis ``config.x_axis``)."""
        return self.run.data.x

    @property
    def y(self) -> np.ndarray:
        """All targets, checked (samples on axis ``config.out_axis``)."""
        return self.run.data.y

    @property
    def lengths(self) -> Optional[np.ndarray]:
        """The sequences' lengths (int64, one per sample) or None."""
        return self.run.data.lengths

    def tasks(self, epoch: int, step: int, indices: np.ndarray) -> list[ShardTask]:
        """The tasks of ranks 0 .. world_size-1 for the batch ``indices`` at ``step`` of ``epoch``."""
        parts = [indices[a:b] for a, b in shard_bounds(len(indices), self.world_size)]
        terms = [loss_terms(self.run.data, part) for part in parts]
        total = sum(terms)
        return [ShardTask(epoch, step, rank, part, terms[rank] / total if total else 0.0)
                for rank, part in enumerate(parts)]

    def schedule(self) -> Iterator[tuple[int, int, np.ndarray, list[ShardTask]]]:
        """``(epoch, step, batch indices, tasks)`` of every step in turn."""
        for epoch, step, indices in self.run.batches():
            yield epoch, step, indices, self.tasks(epoch, step, indices)


def plan_fit(model: Any, x: Any, y: Any, *, world_size: int, loss: Any, optimizer: Any, epochs: int = 1,
             batch_size: int = 32, seed: Optional[int] = None, lengths: Any = None, validation_data: Any = None,
             clip_norm: Optional[float] = None, verbose: int = 1, shuffle: bool = True) -> FitPlan:
    """The :class:`FitPlan` of a data-parallel fit over ``world_size`` ranks: the keywords are
    :func:`rnnfast.nn.fit`'s, checked as it checks them (every error before any step).

    ``world_size`` may exceed ``batch_size``: the extra ranks get empty shards (weight 0), as do the last ranks
    on an epoch's short last batch.

    Raises
    ------
    TypeError, ValueError
        What :func:`rnnfast.nn.fit` raises; ``world_size`` not a positive int.
    """
    world_size = positive_int("world_size", world_size)
    run = prepare_fit(model, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed,
                      lengths=lengths, validation_data=validation_data, clip_norm=clip_norm, verbose=verbose,
                      shuffle=shuffle)
    return FitPlan(run, world_size)
