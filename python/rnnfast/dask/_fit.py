"""Data-parallel training on a Dask cluster: :func:`fit`, which runs :func:`rnnfast.parallel.run_data_parallel`
with a :class:`DaskExecutor`.

How the executor uses Dask:

- **Once** (``start``): the model's :class:`~rnnfast.parallel.ModelSpec`, the checked data and the
  :class:`~rnnfast.parallel.ShardConfig` are scattered to every worker (``broadcast=True``) as one object;
  a worker builds its :class:`~rnnfast.parallel.ShardWorker` from it on its first shard and keeps it.
- **Every step**: one task per rank, rank ``r`` placed on worker ``r mod workers`` of the sorted worker list
  (the same mapping every step), the results gathered in rank order. The parameters travel inside the tasks
  while a step's copies of them total at most ``INLINE_BYTES`` (one message per task, no round trip of
  their own: 13 ms against 19 ms a step for a small LSTM on two local workers), else they are scattered
  once to every worker first (one copy per worker, however many ranks it runs).
- **A worker lost mid-step**: its task is rerun by the scheduler on another worker (placement is a
  preference, ``allow_other_workers=True``), from the same inputs: the same plan, the same parameters, the
  same dropout stream, so the same bits. Each rank's result comes from its own future, gathered once, and
  :func:`~rnnfast.parallel.reduce_gradients` refuses a duplicate rank: a retry can never count a gradient
  twice. A task whose retries are exhausted (Dask's ``allowed-failures``) fails the fit with a RuntimeError
  naming the step; the model then holds the parameters of the last completed step.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from .._validation import positive_int
from ..parallel import ModelSpec, ShardConfig, ShardResult, ShardTask, ShardWorker, run_data_parallel
from ..nn.fit import History
from ._workers import check_workers

__all__ = ["DaskExecutor", "fit", "INLINE_BYTES"]

#: Up to this many bytes of parameters per step (their size times the ranks), they go inside the tasks.
INLINE_BYTES = 8 << 20

# A worker's ShardWorkers, by the fit's token: built on the first shard of a fit that the worker runs.
_workers: dict[str, ShardWorker] = {}
_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def _shard(token: str, bundle: tuple[Any, ...], params: Mapping[str, np.ndarray], task: ShardTask) -> ShardResult:
    """One rank's task of one step, on a worker. The worker's ShardWorker is shared by the tasks of a fit that
    land on it (two ranks on one worker, or a retry): a lock makes them take turns on its one replica."""
    with _registry_lock:
        lock = _locks.setdefault(token, threading.Lock())
    with lock:
        worker = _workers.get(token)
        if worker is None:
            spec, x, y, lengths, config = bundle
            worker = _workers[token] = ShardWorker(spec, x, y, lengths, config)
        return worker.gradients(params, [task])[0]


def _forget(token: str) -> None:
    with _registry_lock:
        _workers.pop(token, None)
        _locks.pop(token, None)


class DaskExecutor:
    """The :class:`~rnnfast.parallel.ShardExecutor` of a Dask client (see the module notes).

    Parameters
    ----------
    client : distributed.Client
    world_size : int, optional
        Ranks per step; None: one per worker of the client now.

    Attributes
    ----------
    bytes_started, bytes_sent, bytes_received : int
        What was shipped: once by ``start`` (model and data to every worker), by the steps so far (the
        parameters, times the tasks or workers they went to), and back (the shards' gradients).
    """

    #: The function a rank's task runs on its worker (a benchmark swaps it to time the communication alone).
    _task = staticmethod(_shard)

    def __init__(self, client: Any, world_size: Optional[int] = None) -> None:
        self.client = client
        self._addresses = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if not self._addresses:
            raise RuntimeError("the Dask cluster has no worker (wait for them with client.wait_for_workers(n))")
        self._world_size = len(self._addresses) if world_size is None else positive_int("world_size", world_size)
        self._token = ""
        self._bundle: Any = None
        self.bytes_started = self.bytes_sent = self.bytes_received = 0

    @property
    def world_size(self) -> int:
        return self._world_size

    def start(self, spec: ModelSpec, x: np.ndarray, y: np.ndarray, lengths: Optional[np.ndarray],
              config: ShardConfig) -> None:
        self._token = f"rnnfast-fit-{uuid.uuid4().hex}"
        bundle = (spec, x, y, lengths, config)
        # One object, one key: every worker gets the whole bundle (each rank's samples change every step).
        [self._bundle] = self.client.scatter([bundle], broadcast=True, hash=False)
        workers = len(self._addresses)
        self.bytes_started = workers * (spec.nbytes + x.nbytes + y.nbytes + (0 if lengths is None else lengths.nbytes))

    def gradients(self, params: Mapping[str, np.ndarray], tasks: Sequence[ShardTask]) -> list[ShardResult]:
        if self._bundle is None:
            raise RuntimeError("DaskExecutor.gradients before start()")
        from distributed import KilledWorker

        size = sum(int(p.nbytes) for p in params.values())
        # The driver's live arrays: unchanged until gather returns, when every task has its parameters.
        copies = dict(params)
        inline = size * len(tasks) <= INLINE_BYTES
        sent: Any = copies if inline else self.client.scatter([copies], broadcast=True, hash=False)[0]
        futures = []
        for task in sorted(tasks, key=lambda t: t.rank):
            where = self._addresses[task.rank % len(self._addresses)]
            futures.append(self.client.submit(
                self._task, self._token, self._bundle, sent, task, pure=False, workers=[where],
                allow_other_workers=True, key=f"{self._token}-e{task.epoch}-s{task.step}-r{task.rank}"))
        try:
            results: list[ShardResult] = self.client.gather(futures)
        except KilledWorker as exc:
            first = tasks[0] if tasks else None
            where = f" at epoch {first.epoch} step {first.step}" if first is not None else ""
            raise RuntimeError(f"rnnfast.dask.fit: a shard's task killed its workers{where} more often than Dask "
                               f"retries ({exc}); the model holds the parameters of the last completed step") \
                from exc
        finally:
            del sent, futures
        self.bytes_sent += size * (len(tasks) if inline else len(self._addresses))
        self.bytes_received += sum(r.nbytes for r in results)
        return results

    def close(self) -> None:
        if self._token:
            try:
                self.client.run(_forget, self._token)
            except Exception:  # noqa: BLE001  # a closing cluster: its workers' state goes with it
                pass
        self._bundle = None


def _local(name: str, value: Any) -> Any:
    """A dask array computed here (the workers need all of the data: every step's batch is drawn from all of
    it); anything else as it is."""
    import dask.array as da

    if isinstance(value, da.Array):
        if any(np.isnan(c) for chunks in value.chunks for c in chunks):
            raise ValueError(f"{name} has chunks of unknown size; call {name}.compute_chunk_sizes() first")
        return value.compute()
    return value


def _check_partitions(x: Any, y: Any, lengths: Any, x_axis: int) -> None:
    """Dask arrays given for x and y (and lengths) must pair up partition by partition along the batch axis:
    differently cut arrays usually mean rows built or filtered apart, which would pair the wrong samples."""
    import dask.array as da

    arrays = [(n, a) for n, a in (("x", x), ("y", y), ("lengths", lengths)) if isinstance(a, da.Array)]
    if len(arrays) < 2 or not isinstance(x, da.Array):
        return
    reference = x.chunks[x_axis] if x.ndim > x_axis else None
    for name, a in arrays[1:]:
        axis = _batch_axis_of(name, a, x, x_axis)
        if a.chunks[axis] != reference:
            raise ValueError(f"x and {name} are dask arrays cut into different partitions along the batch axis "
                             f"(x: {reference}, {name}: {a.chunks[axis]}): their rows may not pair up; rechunk "
                             f"{name} to x's chunks ({name}.rechunk(...)) if they do")


def _batch_axis_of(name: str, a: Any, x: Any, x_axis: int) -> int:
    """The batch axis of y or lengths: the axis of x's sample count (axis 0 for lengths and per-sequence y)."""
    n = x.shape[x_axis]
    candidates = [i for i, s in enumerate(a.shape) if s == n]
    if not candidates:
        raise ValueError(f"{name} (shape {a.shape}) has no axis of x's {n} samples (x has shape {x.shape}, batch "
                         f"axis {x_axis})")
    return x_axis if x_axis in candidates and a.ndim >= 2 else candidates[0]


def fit(client: Any, model: Any, x: Any, y: Any, *, world_size: Optional[int] = None, loss: Any, optimizer: Any,
        epochs: int = 1, batch_size: int = 32, seed: Optional[int] = None, lengths: Any = None,
        validation_data: Any = None, clip_norm: Optional[float] = None, verbose: int = 1,
        shuffle: bool = True) -> History:
    """Train ``model`` data-parallel on the workers of ``client``, as :func:`rnnfast.nn.fit` trains it in process.

    Each step takes the batch :func:`rnnfast.nn.fit` would take, splits it into ``world_size`` shards, computes
    each shard's gradient on a worker with the step's parameters, sums them in rank order on this machine and
    applies the optimiser once (:func:`rnnfast.parallel.run_data_parallel`; the module notes say how Dask runs
    it). The model is trained in place, here.

    Guarantees: the result (parameters and history) equals ``rnnfast.parallel.fit_local(..., world_size=k)``
    bit for bit, on workers of the same instruction set; two runs with the same seed are identical; it equals
    :func:`rnnfast.nn.fit` to float rounding (bit for bit with one worker), dropout masks aside.

    Parameters
    ----------
    client : distributed.Client
        Its workers must import rnnfast (checked first). Each holds all of the data.
    model, x, y, loss, optimizer, epochs, batch_size, seed, lengths, validation_data, clip_norm, verbose, shuffle
        As :func:`rnnfast.nn.fit`. ``x``, ``y`` and ``lengths`` may be dask arrays (computed here, once); given
        as dask arrays, x and y must be cut into the same partitions along the batch axis.
    world_size : int, optional
        Ranks per step; None: one per worker. Ranks beyond the workers share them (in turn).

    Returns
    -------
    History
        As :func:`rnnfast.nn.fit`'s, with ``params['world_size']``.

    Raises
    ------
    TypeError, ValueError
        What :func:`rnnfast.nn.fit` raises (x and y of different sample counts, ...), before anything is
        shipped; dask arrays of x and y cut differently.
    RuntimeError
        A worker cannot import rnnfast (naming it); a shard's task failed on more workers than Dask retries.
    """
    from ..nn._fit_data import input_batch_axis

    _check_partitions(x, y, lengths, input_batch_axis(model))
    x, y, lengths = _local("x", x), _local("y", y), _local("lengths", lengths)
    check_workers(client)
    executor = DaskExecutor(client, world_size)
    return run_data_parallel(executor, model, x, y, loss=loss, optimizer=optimizer, epochs=epochs,
                             batch_size=batch_size, seed=seed, lengths=lengths, validation_data=validation_data,
                             clip_norm=clip_norm, verbose=verbose, shuffle=shuffle)
