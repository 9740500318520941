"""Data-parallel training on Ray actors: :func:`fit`, which runs :func:`rnnfast.parallel.run_data_parallel`
with a :class:`RayExecutor` (no Ray Train, no collective library).

How the executor uses Ray:

- **Once** (``start``): :func:`~rnnfast.ray.check_workers` asks a worker on every node, in the actors'
  runtime environment, to import rnnfast (a node without it is named, instead of an actor dying in Ray's
  stand-in class with a ``ModuleNotFoundError`` deep in its report; once per job, nodes and runtime
  environment). Then the model's :class:`~rnnfast.parallel.ModelSpec`, the checked data and the
  :class:`~rnnfast.parallel.ShardConfig` are put in the object store (``ray.put``, once); one actor per rank
  is made with references to them and builds its :class:`~rnnfast.parallel.ShardWorker` in its constructor
  (NumPy arrays are read from the store without a copy on the same node).
- **Every step**: the parameters are put in the store once; each actor's ``gradient`` is called with that
  reference and its rank's task; the results are taken with ``ray.get`` in rank order.
- **An actor lost mid-step**: the actors are made with ``max_restarts`` and ``max_task_retries``: Ray
  restarts the actor (its constructor builds the ShardWorker again from the same references) and reruns the
  call, from the same inputs, so with the same bits. Each rank's result comes from its own call, taken once,
  and :func:`~rnnfast.parallel.reduce_gradients` refuses a duplicate rank: a retry can never count a gradient
  twice. When the restarts are exhausted the fit fails with a RuntimeError naming the step; the model then
  holds the parameters of the last completed step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from .._engine_common import thread_share
from .._validation import positive_int
from ..nn.fit import History
from ..parallel import ModelSpec, ShardConfig, ShardResult, ShardTask, ShardWorker, run_data_parallel
from ._workers import ensure_workers, missing_rnnfast

__all__ = ["RayExecutor", "ShardActor", "fit"]


class ShardActor:
    """One rank's actor (made remote by :class:`RayExecutor`): a ShardWorker built in the constructor, so that
    a restarted actor rebuilds it from the same references."""

    def __init__(self, threads: int, spec: ModelSpec, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray],
                 config: ShardConfig) -> None:
        import rnnfast

        rnnfast.set_num_threads(threads)
        self.worker = ShardWorker(spec, x, y, lengths, config)

    def gradient(self, params: Mapping[str, np.ndarray], task: ShardTask) -> ShardResult:
        return self.worker.gradients(params, [task])[0]

    def threads(self) -> int:
        import rnnfast

        return rnnfast.get_num_threads()


class RayExecutor:
    """The :class:`~rnnfast.parallel.ShardExecutor` of the connected Ray cluster (see the module notes).

    Parameters
    ----------
    world_size : int
        Ranks per step: one actor each.
    num_cpus : float, default 1
        CPUs per actor (its rnnfast threads: at least 1).
    max_restarts : int, default 3
        How often an actor lost mid-fit is restarted (and its call retried) before the fit fails.
    runtime_env : dict, optional
        Ray's runtime environment for the actors (merged with the job's), e.g. ``{"pip": ["rnnfast"]}``.

    Attributes
    ----------
    bytes_started, bytes_sent, bytes_received : int
        What was put in the store once (model and data), the parameters put every step, and the gradients
        returned (each step's parameters are read by every actor: on one node from shared memory).
    """

    def __init__(self, world_size: int, *, num_cpus: float = 1, max_restarts: int = 3,
                 runtime_env: Optional[dict[str, Any]] = None) -> None:
        self._world_size = positive_int("world_size", world_size)
        self._num_cpus = float(num_cpus)
        self._threads = thread_share(num_cpus, "num_cpus")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be a non-negative int, got {max_restarts!r}")
        self._max_restarts = max_restarts
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict or None, got {type(runtime_env).__name__}")
        self._runtime_env = runtime_env
        self._actors: list[Any] = []
        self._refs: list[Any] = []
        self.bytes_started = self.bytes_sent = self.bytes_received = 0

    @property
    def world_size(self) -> int:
        return self._world_size

    def start(self, spec: ModelSpec, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray],
              config: ShardConfig) -> None:
        import ray

        if not ray.is_initialized():
            raise RuntimeError("rnnfast.ray.fit needs a connected Ray: call ray.init(...) first")
        ensure_workers(self._runtime_env)  # before anything is put: a node without rnnfast named, not a dead actor
        # Kept referenced for the whole fit: a restarted actor reads its constructor's arguments again.
        self._refs = [ray.put(spec), ray.put(x), ray.put(y), ray.put(lengths), ray.put(config)]
        options: dict[str, Any] = {"num_cpus": self._num_cpus, "max_restarts": self._max_restarts,
                                   "max_task_retries": self._max_restarts}
        if self._runtime_env is not None:
            options["runtime_env"] = self._runtime_env
        remote = ray.remote(ShardActor).options(**options)
        self._actors = [remote.remote(self._threads, *self._refs) for _ in range(self._world_size)]
        self.bytes_started = spec.nbytes + x.nbytes + y.nbytes + (0 if lengths is None else lengths.nbytes)

    def gradients(self, params: Mapping[str, np.ndarray], tasks: Sequence[ShardTask]) -> list[ShardResult]:
        import ray
        from ray.exceptions import RayActorError

        if not self._actors:
            raise RuntimeError("RayExecutor.gradients before start()")
        sent = ray.put(dict(params))  # a copy in the store, once for all actors
        ordered = sorted(tasks, key=lambda t: t.rank)
        calls = [self._actors[t.rank % len(self._actors)].gradient.remote(sent, t) for t in ordered]
        try:
            results: list[ShardResult] = [ray.get(c) for c in calls]  # in rank order
        except RayActorError as exc:
            # An actor (re)started on a node that joined after the check, without rnnfast: say so, not "died".
            missing = missing_rnnfast(exc, "rnnfast.ray.fit")
            if missing is not None:
                raise missing from exc
            first = ordered[0] if ordered else None
            where = f" at epoch {first.epoch} step {first.step}" if first is not None else ""
            raise RuntimeError(f"rnnfast.ray.fit: a shard's actor died{where} more often than it is restarted "
                               f"({self._max_restarts}); the model holds the parameters of the last completed "
                               f"step ({type(exc).__name__}: {exc})") from exc
        self.bytes_sent += sum(int(p.nbytes) for p in params.values())
        self.bytes_received += sum(r.nbytes for r in results)
        return results

    def actor_threads(self) -> list[int]:
        """Each actor's rnnfast thread count (after :meth:`start`)."""
        import ray

        return [int(ray.get(a.threads.remote())) for a in self._actors]

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors, self._refs = [], []


def fit(model: Any, x: Any, y: Any, *, world_size: int, num_cpus: float = 1, max_restarts: int = 3,
        runtime_env: Optional[dict[str, Any]] = None, loss: Any,
        optimizer: Any, epochs: int = 1, batch_size: int = 32, seed: Optional[int] = None, lengths: Any = None,
        validation_data: Any = None, clip_norm: Optional[float] = None, verbose: int = 1,
        shuffle: bool = True) -> History:
    """Train ``model`` data-parallel on ``world_size`` Ray actors, as :func:`rnnfast.nn.fit` trains it in process.

    Each step takes the batch :func:`rnnfast.nn.fit` would take, splits it into ``world_size`` shards, computes
    each shard's gradient on its actor with the step's parameters, sums them in rank order here and applies
    the optimiser once (:func:`rnnfast.parallel.run_data_parallel`; the module notes say how Ray runs it). The
    model is trained in place, here. Needs a connected Ray (``ray.init(...)``).

    Guarantees: as ``rnnfast.dask.fit``: equal to ``rnnfast.parallel.fit_local(..., world_size=k)`` bit for bit
    (on actors of the same instruction set), repeatable, equal to :func:`rnnfast.nn.fit` to float rounding.

    Parameters
    ----------
    model, x, y, loss, optimizer, epochs, batch_size, seed, lengths, validation_data, clip_norm, verbose, shuffle
        As :func:`rnnfast.nn.fit` (NumPy arrays).
    world_size : int
        Ranks, one actor each.
    num_cpus : float, default 1
        CPUs per actor (and its rnnfast threads).
    max_restarts : int, default 3
        Restarts of a lost actor (each retrying its call) before the fit fails.
    runtime_env : dict, optional
        Ray's runtime environment for the actors (merged with the job's), e.g. ``{"pip": ["rnnfast"]}``.

    Returns
    -------
    History
        As :func:`rnnfast.nn.fit`'s, with ``params['world_size']``.

    Raises
    ------
    TypeError, ValueError
        What :func:`rnnfast.nn.fit` raises, before any actor is made; a bad ``world_size``/``num_cpus``.
    RuntimeError
        Ray not initialised; a node whose workers cannot import rnnfast (naming the node, or the actor, and the
        import error: rnnfast must be installed in the workers' environment), before the first step; an actor
        lost more often than ``max_restarts``.
    """
    executor = RayExecutor(world_size, num_cpus=num_cpus, max_restarts=max_restarts, runtime_env=runtime_env)
    return run_data_parallel(executor, model, x, y, loss=loss, optimizer=optimizer, epochs=epochs,
                             batch_size=batch_size, seed=seed, lengths=lengths, validation_data=validation_data,
                             clip_norm=clip_norm, verbose=verbose, shuffle=shuffle)
