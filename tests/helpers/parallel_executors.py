"""Shard executors for the tests of rnnfast.parallel: one that passes everything through pickle (as an engine
sends it between processes) and returns the results in reverse order, and one on a pool of spawned processes
(real workers, at their own thread count), whose results come back in the order they finish."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import rnnfast
from rnnfast import parallel


class PickledExecutor:
    """Every rank on one ShardWorker, but the model, data, parameters, tasks and results all go through
    pickle, and the results come back in reverse rank order. ``log`` records what happened."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.log: list[str] = []
        self._worker = None

    def start(self, spec, x, y, lengths, config) -> None:
        self.log.append("start")
        self._worker = parallel.ShardWorker(*pickle.loads(pickle.dumps((spec, x, y, lengths, config))))

    def gradients(self, params, tasks):
        params, tasks = pickle.loads(pickle.dumps((dict(params), list(tasks))))
        results = self._worker.gradients(params, tasks)
        return pickle.loads(pickle.dumps(results))[::-1]

    def close(self) -> None:
        self.log.append("close")
        self._worker = None


_worker = None


def _init(threads, spec, x, y, lengths, config) -> None:
    global _worker
    rnnfast.set_num_threads(threads)
    _worker = parallel.ShardWorker(spec, x, y, lengths, config)


def _shard(params, task):
    return _worker.gradients(params, [task])[0]


class ProcessExecutor:
    """The ranks' tasks spread over ``processes`` spawned processes, each with its own ShardWorker at
    ``threads`` threads; results returned as they complete (any order)."""

    def __init__(self, world_size: int, processes: int = 2, threads: int = 1) -> None:
        self.world_size = world_size
        self._processes, self._threads = processes, threads
        self._pool = None

    def start(self, spec, x, y, lengths, config) -> None:
        self._pool = ProcessPoolExecutor(self._processes, mp_context=get_context("spawn"), initializer=_init,
                                         initargs=(self._threads, spec, x, y, lengths, config))

    def gradients(self, params, tasks):
        params = {k: v.copy() for k, v in params.items()}
        futures = [self._pool.submit(_shard, params, task) for task in tasks]
        return [f.result() for f in as_completed(futures)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
