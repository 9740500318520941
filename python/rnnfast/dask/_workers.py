"""The workers of a Dask cluster: that each can import rnnfast (else an error naming the workers that
cannot), and :class:`RnnfastThreads`, the worker plugin that gives each worker's rnnfast its share of the
threads.

Why a check before anything is sent: a worker without rnnfast fails to unpickle the first task or plugin
that names an rnnfast function, and Dask reports that as a bare ``ModuleNotFoundError`` from somewhere in
the scheduler's logs. :func:`check_workers` asks every worker in one ``Client.run`` with a function that
needs nothing but the standard library, and names the workers that failed and what they said.
"""

from __future__ import annotations

from typing import Any, Optional

from distributed import WorkerPlugin

from .._engine_common import thread_share

__all__ = ["RnnfastThreads", "check_workers", "setup_workers"]


def _rnnfast_on_worker() -> dict[str, Any]:
    """Run on a worker by :func:`check_workers`. Pickled by reference like any function, so a worker
    without rnnfast fails to unpickle it: that failure is the answer, reported per worker by Client.run."""
    import sys

    import rnnfast

    return {"version": rnnfast.__version__, "threads": rnnfast.get_num_threads(), "python": sys.executable,
            "isa": rnnfast.isa()}


def check_workers(client: Any) -> dict[str, dict[str, Any]]:
    """Check that every worker of ``client`` imports rnnfast; return what each reports.

    Parameters
    ----------
    client : distributed.Client

    Returns
    -------
    dict
        Per worker address: ``version``, ``threads``, ``python`` (its interpreter) and ``isa`` (the
        instruction set of its kernels: workers on different ones may differ in the last bits).

    Raises
    ------
    RuntimeError
        Naming each worker that cannot import rnnfast and its error (install ``rnnfast`` in the workers'
        environment), or if the cluster has no worker.
    """
    answers = client.run(_rnnfast_on_worker, on_error="return")
    if not answers:
        raise RuntimeError("the Dask cluster has no worker (wait for them with client.wait_for_workers(n))")
    failed = {addr: a for addr, a in answers.items() if isinstance(a, BaseException)}
    if failed:
        lines = "; ".join(f"{addr}: {type(e).__name__}: {e}" for addr, e in sorted(failed.items()))
        raise RuntimeError(f"{len(failed)} of {len(answers)} Dask workers cannot import rnnfast (install rnnfast in "
                           f"the workers' environment): {lines}")
    return dict(answers)


class RnnfastThreads(WorkerPlugin):  # type: ignore[misc]  # distributed is untyped
    """A Dask worker plugin setting each worker's rnnfast thread count to its share of the cores.

    Dask runs ``nthreads`` tasks at once in a worker; each rnnfast call would otherwise start as many
    kernel threads as the machine has cores. With ``threads=None`` a worker's rnnfast runs on the worker's
    ``nthreads`` (1 for ``LocalCluster(threads_per_worker=1)``: one process per core), else on ``threads``.
    The same bits either way (rnnfast's results do not depend on the thread count).

    Register it with ``client.register_plugin(RnnfastThreads())`` (workers that join later run it too) or
    with :func:`setup_workers`, which first checks that every worker imports rnnfast.

    Parameters
    ----------
    threads : int, optional
        The count for every worker; None: each worker's ``nthreads``.
    """

    name = "rnnfast-threads"

    def __init__(self, threads: Optional[int] = None) -> None:
        self.threads = None if threads is None else thread_share(threads, "threads")

    def setup(self, worker: Any) -> None:
        try:
            import rnnfast
        except Exception as exc:  # an ImportError, or a broken build's OSError: say which worker
            raise RuntimeError(f"Dask worker {worker.address} cannot import rnnfast: {type(exc).__name__}: {exc}") \
                from exc
        rnnfast.set_num_threads(self.threads if self.threads is not None else thread_share(worker.state.nthreads))


def setup_workers(client: Any, *, threads: Optional[int] = None) -> dict[str, int]:
    """Check every worker imports rnnfast (:func:`check_workers`), then register :class:`RnnfastThreads`.

    Returns
    -------
    dict
        Each worker's rnnfast thread count afterwards.

    Raises
    ------
    RuntimeError
        As :func:`check_workers`.
    """
    check_workers(client)
    client.register_plugin(RnnfastThreads(threads))
    return {addr: a["threads"] for addr, a in check_workers(client).items()}
