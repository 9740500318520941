"""The one loop of every data-parallel fit (:func:`run_data_parallel`), the protocol of what runs the shards
(:class:`ShardExecutor`), and :func:`fit_local`, which runs them all in this process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Protocol

import numpy as np

from .._validation import positive_int
from ..nn.fit import History, train
from ._plan import FitPlan, ShardConfig, ShardTask, plan_fit
from ._shard import ShardResult, ShardWorker, reduce_gradients
from ._spec import ModelSpec, model_spec

__all__ = ["ShardExecutor", "run_data_parallel", "LocalExecutor", "fit_local"]


class ShardExecutor(Protocol):
    """What runs the shards of a data-parallel fit: :class:`LocalExecutor` in this process, the engines of
    :mod:`rnnfast.dask` and :mod:`rnnfast.ray` on workers. :func:`run_data_parallel` calls :meth:`start`
    once, :meth:`gradients` every step, :meth:`close` at the end (also after an error)."""

    @property
    def world_size(self) -> int:
        """The number of ranks (shards per step)."""
        ...

    def start(self, spec: ModelSpec, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray],
              config: ShardConfig) -> None:
        """Ship the model and the data, once (each worker then holds a :class:`ShardWorker` of them)."""
        ...

    def gradients(self, params: Mapping[str, np.ndarray], tasks: Sequence[ShardTask]) -> list[ShardResult]:
        """Broadcast ``params`` (the step's parameters; the arrays are the driver's live ones, so copy or send
        them before returning) and return the result of every task, one per rank, in any order."""
        ...

    def close(self) -> None:
        """Release the workers' state."""
        ...


def _check_results(results: Any, tasks: Sequence[ShardTask]) -> list[ShardResult]:
    """The executor's results, checked to answer exactly these tasks (reduce_gradients checks the ranks)."""
    if not isinstance(results, (list, tuple)):
        raise TypeError(f"the executor's gradients() must return a list of ShardResult, got {type(results).__name__}")
    by_rank = {t.rank: t for t in tasks}
    for r in results:
        task = by_rank.get(r.rank) if isinstance(r, ShardResult) else None
        if task is None:
            continue  # reduce_gradients names what is wrong
        if (r.epoch, r.step, r.count) != (task.epoch, task.step, len(task.indices)):
            raise ValueError(f"rank {r.rank} answered epoch {r.epoch} step {r.step} with {r.count} samples, but "
                             f"its task was epoch {task.epoch} step {task.step} with {len(task.indices)}")
    return list(results)


def run_data_parallel(executor: ShardExecutor, model: Any, x: Any, y: Any, *, loss: Any, optimizer: Any,
                      epochs: int = 1, batch_size: int = 32, seed: Optional[int] = None, lengths: Any = None,
                      validation_data: Any = None, clip_norm: Optional[float] = None, verbose: int = 1,
                      shuffle: bool = True) -> History:
    """Train ``model`` as :func:`rnnfast.nn.fit` does, each batch's gradient computed in ``world_size`` shards by
    ``executor``: the one loop of :func:`fit_local`, ``rnnfast.dask.fit`` and ``rnnfast.ray.fit``.

    Once: the arguments are checked as :func:`rnnfast.nn.fit` checks them (:func:`plan_fit`), and the model
    (:func:`model_spec`) and the checked data are handed to ``executor.start``. Every step, on the batch
    :func:`rnnfast.nn.fit` would take: the model's parameters go to ``executor.gradients`` with the ranks'
    :class:`ShardTask`; the results are checked (one per rank, each answering its task) and summed in rank
    order (:func:`reduce_gradients`) into the model's ``grads``; then, as in :func:`rnnfast.nn.fit`,
    ``nn.clip_grad_norm`` (with ``clip_norm``), the optimiser's step (once, here), the progress bar, and after
    every epoch the metrics and the validation (here, on ``model``). ``executor.close()`` is called at the end,
    also after an error.

    The result depends only on the arguments and ``world_size``: the same for every executor, run after run
    (see :mod:`rnnfast.parallel` for why).

    Parameters
    ----------
    executor : ShardExecutor
    model, x, y, loss, optimizer, epochs, batch_size, seed, lengths, validation_data, clip_norm, verbose, shuffle
        As :func:`rnnfast.nn.fit`; the model must be one :func:`rnnfast.save` writes (an nn.Sequential).

    Returns
    -------
    History
        As :func:`rnnfast.nn.fit`'s, with ``params['world_size']``.

    Raises
    ------
    TypeError, ValueError
        What :func:`rnnfast.nn.fit` raises, before anything is shipped; a model rnnfast cannot save; results
        that do not answer the step's tasks (a duplicate or missing rank, another step's result).
    """
    world_size = positive_int("executor.world_size", executor.world_size)
    plan = plan_fit(model, x, y, world_size=world_size, loss=loss, optimizer=optimizer, epochs=epochs,
                    batch_size=batch_size, seed=seed, lengths=lengths, validation_data=validation_data,
                    clip_norm=clip_norm, verbose=verbose, shuffle=shuffle)
    return _run(executor, plan, model_spec(model))


def _run(executor: ShardExecutor, plan: FitPlan, spec: ModelSpec) -> History:
    model = plan.run.model
    grads = model.grads
    executor.start(spec, plan.x, plan.y, plan.lengths, plan.config)
    try:
        def gradient(epoch: int, step: int, indices: np.ndarray) -> tuple[float, Optional[tuple[int, int]]]:
            tasks = plan.tasks(epoch, step, indices)
            results = _check_results(executor.gradients(model.parameters(), tasks), tasks)
            total = reduce_gradients(results, world_size=plan.world_size)
            if total.keys() != grads.keys():
                raise ValueError(f"the shards' gradients name {sorted(total)}, the model's parameters "
                                 f"{sorted(grads)}")
            for name, g in grads.items():
                np.copyto(g, total[name])
            ordered = sorted(results, key=lambda r: r.rank)
            value = 0.0
            for r in ordered:
                value += r.loss_sum
            counts = [r.correct for r in ordered]
            if any(c is None for c in counts):
                return value, None
            return value, (sum(c[0] for c in counts if c), sum(c[1] for c in counts if c))

        return train(plan.run, gradient, {"world_size": plan.world_size})
    finally:
        executor.close()


class LocalExecutor:
    """Runs the shards of every rank in turn, in this process, on one replica of the model built from its
    :class:`ModelSpec`: ``world_size`` workers simulated, with the bits real workers give.

    Parameters
    ----------
    world_size : int
        Ranks per step (any positive int; more than ``batch_size`` gives empty shards).
    """

    def __init__(self, world_size: int) -> None:
        self._world_size = positive_int("world_size", world_size)
        self._worker: Optional[ShardWorker] = None

    @property
    def world_size(self) -> int:
        return self._world_size

    def start(self, spec: ModelSpec, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray],
              config: ShardConfig) -> None:
        self._worker = ShardWorker(spec, x, y, lengths, config)

    def gradients(self, params: Mapping[str, np.ndarray], tasks: Sequence[ShardTask]) -> list[ShardResult]:
        if self._worker is None:
            raise RuntimeError("LocalExecutor.gradients before start()")
        return self._worker.gradients(params, tasks)

    def close(self) -> None:
        self._worker = None


def fit_local(model: Any, x: Any, y: Any, *, world_size: int, loss: Any, optimizer: Any, epochs: int = 1,
              batch_size: int = 32, seed: Optional[int] = None, lengths: Any = None, validation_data: Any = None,
              clip_norm: Optional[float] = None, verbose: int = 1, shuffle: bool = True) -> History:
    """:func:`rnnfast.nn.fit` as ``world_size`` data-parallel workers would run it, in this process: a
    distributed fit with ``world_size`` workers (``rnnfast.dask.fit``, ``rnnfast.ray.fit``) gives these bits.

    :func:`run_data_parallel` with a :class:`LocalExecutor`. With ``world_size=1`` it is :func:`rnnfast.nn.fit`
    bit for bit (dropout included); with more, the batch's gradient is the weighted sum of its shards', equal
    to :func:`rnnfast.nn.fit`'s to float rounding, and dropout masks differ (each rank draws its own).

    Parameters
    ----------
    world_size : int
        Simulated workers; any positive int (ranks beyond a batch's samples get empty shards).
    model, x, y, loss, optimizer, epochs, batch_size, seed, lengths, validation_data, clip_norm, verbose, shuffle
        As :func:`rnnfast.nn.fit`.

    Returns
    -------
    History
        As :func:`rnnfast.nn.fit`'s, with ``params['world_size']``.

    Raises
    ------
    TypeError, ValueError
        ``world_size`` not a positive int; what :func:`rnnfast.nn.fit` raises.
    """
    return run_data_parallel(LocalExecutor(world_size), model, x, y, loss=loss, optimizer=optimizer, epochs=epochs,
                             batch_size=batch_size, seed=seed, lengths=lengths, validation_data=validation_data,
                             clip_norm=clip_norm, verbose=verbose, shuffle=shuffle)
