"""A shard's gradient (what a worker computes each step), the reduction of the shards' gradients in rank
order (what the driver computes), and :class:`ShardWorker`, the state a worker keeps between steps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._validation import positive_int
from ..nn._fit_data import LossKind
from ..nn._fit_loss import batch_gradient, loss_function
from ._plan import ShardConfig, ShardTask, step_rng
from ._spec import ModelSpec, set_parameters

__all__ = ["ShardResult", "shard_gradient", "reduce_gradients", "ShardWorker"]


@dataclass(frozen=True, eq=False)
class ShardResult:
    """What a rank sends back for one step.

    Attributes
    ----------
    rank : int
    count : int
        The shard's number of samples.
    loss_sum : float
        The shard's loss times its weight: summed over the ranks (in rank order), the batch's loss.
    correct : (int, int) or None
        With loss 'cross_entropy', (labels predicted right, labels counted) in the shard; else None.
    grads : dict of str to ndarray
        The gradients of the model's parameters (names of ``model.parameters()``), already multiplied by the
        shard's weight, so that the batch's gradients are their plain sum.
    epoch, step : int
        The step this answers (so that a result of another step, an engine's late retry, is refused).
    """

    rank: int
    count: int
    loss_sum: float
    correct: Optional[tuple[int, int]]
    grads: dict[str, np.ndarray]
    epoch: int
    step: int

    @property
    def nbytes(self) -> int:
        """The bytes of :attr:`grads`: what the shard sends back each step."""
        return sum(int(g.nbytes) for g in self.grads.values())


def shard_gradient(model: Any, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray], task: ShardTask,
                   config: ShardConfig) -> ShardResult:
    """The gradient of shard ``task`` with the model's current parameters: the training forward (its Dropout
    drawing from ``step_rng(config.seed, task.epoch, task.step, task.rank)``), the loss and backward on the
    task's samples of ``x``/``y``/``lengths``, exactly as :func:`rnnfast.nn.fit` runs them on a batch; the loss
    and gradients then multiplied by ``task.weight``.

    An empty shard runs nothing and gives zero gradients. The model's own ``grads`` are overwritten (the
    result holds copies).

    Parameters
    ----------
    model : the worker's replica (:meth:`ModelSpec.build`), its parameters the step's
    x, y, lengths : the checked training data (:attr:`FitPlan.x`, ...), all of it: the task indexes it
    task : ShardTask
    config : ShardConfig
    """
    idx = np.asarray(task.indices)
    if idx.size == 0:
        grads = {name: np.zeros_like(g) for name, g in model.grads.items()}
        counts = (0, 0) if config.loss_kind is LossKind.CROSS_ENTROPY else None
        return ShardResult(task.rank, 0, 0.0, counts, grads, task.epoch, task.step)
    data = config.dataset(x, y, lengths)
    value, counts = batch_gradient(model, data, loss_function(data), idx,
                                   step_rng(config.seed, task.epoch, task.step, task.rank))
    weight = float(task.weight)
    if weight == 1.0:  # one shard: the batch's own bits
        grads = {name: g.copy() for name, g in model.grads.items()}
    else:
        grads = {name: g * g.dtype.type(weight) for name, g in model.grads.items()}
    return ShardResult(task.rank, int(idx.size), value * weight, counts, grads, task.epoch, task.step)


def reduce_gradients(results: Sequence[ShardResult], *, world_size: Optional[int] = None) -> dict[str, np.ndarray]:
    """The batch's gradients: the sum of the shards' (already weighted) gradients, in rank order.

    Exactly one result per rank ``0 .. world_size-1`` is required: a duplicate (an engine that ran a task
    twice, say on retrying a lost worker) or a missing rank is an error, never counted twice or skipped. The
    sum keeps the gradients' dtype (float32 stays float32), and its order is fixed by the ranks, whatever
    order the results arrive in: the same results always give the same bits.

    Parameters
    ----------
    results : sequence of ShardResult, in any order
    world_size : int, optional
        The number of ranks; without it ``max(rank) + 1`` (then a missing last rank cannot be seen: engines
        pass it).

    Raises
    ------
    ValueError
        Duplicate, missing or out-of-range ranks (naming them); results whose gradients differ in names,
        shapes or dtypes.
    """
    results = list(results)
    if not results:
        raise ValueError("reduce_gradients needs one result per rank, got none")
    if not all(isinstance(r, ShardResult) for r in results):
        bad = next(r for r in results if not isinstance(r, ShardResult))
        raise TypeError(f"results must be ShardResult objects, got a {type(bad).__name__}")
    ranks = [r.rank for r in results]
    k = max(ranks) + 1 if world_size is None else positive_int("world_size", world_size)
    duplicate = sorted(rank for rank, n in Counter(ranks).items() if n > 1)
    missing = sorted(set(range(k)) - set(ranks))
    unexpected = sorted(set(ranks) - set(range(k)))
    if duplicate or missing or unexpected:
        problems = [f"{what} rank(s) {ranks_}" for what, ranks_ in
                    (("duplicate", duplicate), ("missing", missing), ("unexpected", unexpected)) if ranks_]
        raise ValueError(f"reduce_gradients needs exactly one result per rank 0..{k - 1}: "
                         + ", ".join(problems))
    ordered = sorted(results, key=lambda r: r.rank)
    first = ordered[0].grads
    for r in ordered[1:]:
        if r.grads.keys() != first.keys():
            raise ValueError(f"rank {r.rank}'s gradients name {sorted(r.grads)}, rank 0's {sorted(first)}")
        for name, g in r.grads.items():
            if g.shape != first[name].shape or g.dtype != first[name].dtype:
                raise ValueError(f"rank {r.rank}'s gradient {name!r} is {g.dtype} {g.shape}, rank 0's "
                                 f"{first[name].dtype} {first[name].shape}")
    total = {name: np.array(g, copy=True) for name, g in first.items()}
    for r in ordered[1:]:
        for name, g in r.grads.items():
            total[name] += g
    return total


class ShardWorker:
    """A worker's side of a data-parallel fit: the model replica and the data, kept between steps.

    Made once (:meth:`ShardExecutor.start`'s arguments); each step, :meth:`gradients` loads the broadcast
    parameters and computes its tasks' shards in turn. :class:`LocalExecutor` holds one for all ranks; an
    engine holds one per worker process (a Dask actor, a Ray actor).

    Parameters
    ----------
    spec : ModelSpec
    x, y, lengths : ndarray
        The checked training data (:attr:`FitPlan.x`, :attr:`FitPlan.y`, :attr:`FitPlan.lengths`).
    config : ShardConfig
    """

    def __init__(self, spec: ModelSpec, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray],
                 config: ShardConfig) -> None:
        self.model = spec.build()
        self.x, self.y, self.lengths, self.config = x, y, lengths, config

    def gradients(self, params: Mapping[str, np.ndarray], tasks: Sequence[ShardTask]) -> list[ShardResult]:
        """The results of ``tasks`` (in their order) with the parameters ``params``."""
        set_parameters(self.model, params)
        return [shard_gradient(self.model, self.x, self.y, self.lengths, task, self.config) for task in tasks]
