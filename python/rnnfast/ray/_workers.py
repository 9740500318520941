"""The workers of a Ray cluster: that each node's workers can import rnnfast (else an error naming the nodes
that cannot and what they said), and the translation of Ray's report of an actor that could not import it.

Why: rnnfast's actors (:class:`~rnnfast.ray.Predictor`, :class:`~rnnfast.ray.ShardActor`) are pickled by
reference, so a worker without rnnfast cannot even load their class. Ray then runs a stand-in class whose
constructor raises, and reports an ``ActorDiedError`` carrying the worker's traceback; on Ray Data that surfaces
only when the lazy Dataset is consumed, somewhere in Ray's executor. :func:`check_workers` asks one worker per
node first, with a task that needs no CPU (so it never waits behind busy actors), in the runtime environment the
actors will have, and names the nodes that failed.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Optional

__all__ = ["check_workers", "ensure_workers", "import_failure", "missing_rnnfast"]

INSTALL_HINT = ("rnnfast must be installed in the Ray workers' environment (the same Python packages on every node, "
                "or a runtime_env such as {'pip': ['rnnfast']})")

# The checks that passed, per (job, nodes, runtime environment): predict on an unchanged cluster asks once.
_PASSED: set[tuple[str, tuple[str, ...], str]] = set()
_LOCK = threading.Lock()

# The import error in the text of Ray's report: the worker's traceback ends with it.
_IMPORT_LINE = re.compile(r"^\s*((?:ModuleNotFoundError|ImportError)\b.*)$", re.MULTILINE)


def _rnnfast_on_worker() -> dict[str, Any]:
    """Run on one worker per node by :func:`check_workers`. Pickled by reference, so a worker without rnnfast
    fails to load it: that failure, with the worker's import error, is the answer."""
    import sys

    import rnnfast

    return {"version": rnnfast.__version__, "threads": rnnfast.get_num_threads(), "python": sys.executable,
            "isa": rnnfast.isa()}


def import_failure(exc: BaseException) -> Optional[str]:
    """The import error in Ray's report ``exc`` of a worker that could not load an rnnfast task or actor
    (``"ModuleNotFoundError: No module named 'rnnfast'"``), or None if ``exc`` reports something else."""
    if isinstance(exc, ImportError):  # a task whose own import failed: RayTaskError(ModuleNotFoundError)
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ImportError):
            return f"{type(cause).__name__}: {cause}"
    # Otherwise the worker's traceback is in the text: of Ray's stand-in for a class it could not load, or of
    # the actor's arguments it could not unpickle (a RaySystemError inside an ActorDiedError).
    text = str(exc)
    lines = _IMPORT_LINE.findall(text)
    ours = [line for line in lines if "rnnfast" in line]
    if ours:
        return str(ours[-1]).strip()
    if "failed to import on the worker" in text:
        return str(lines[-1]).strip() if lines else text.strip().splitlines()[-1]
    return None


def _where(exc: BaseException) -> str:
    """The actor and node named in Ray's report, as far as it names them."""
    text = str(exc)
    actor = getattr(exc, "actor_id", None) or (m.group(1) if (m := re.search(r"actor_id=(\w+)", text)) else None)
    ip = m.group(1) if (m := re.search(r"\bip=([^,)\s]+)", text)) else None
    parts = ([f"actor {actor}"] if actor else []) + ([f"on node {ip}"] if ip else [])
    return " ".join(parts) or "a Ray worker"


def missing_rnnfast(exc: BaseException, what: str) -> Optional[RuntimeError]:
    """A RuntimeError for ``what`` (``"rnnfast.ray.fit"``) if ``exc`` is Ray's report of a worker that could
    not import rnnfast, naming the actor and node and the import error; None otherwise."""
    detail = import_failure(exc)
    if detail is None:
        return None
    return RuntimeError(f"{what}: {_where(exc)} cannot import rnnfast ({detail}); {INSTALL_HINT}")


def _nodes() -> list[tuple[str, str]]:
    """(node id, ip) of the alive nodes with CPUs (where actors run), sorted."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("rnnfast.ray needs a connected Ray: call ray.init(...) first")
    nodes = sorted((n["NodeID"], n.get("NodeManagerAddress", "?")) for n in ray.nodes()
                   if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0)
    if not nodes:
        raise RuntimeError("the Ray cluster has no alive node with CPUs")
    return nodes


def ensure_workers(runtime_env: Optional[dict[str, Any]] = None) -> None:
    """:func:`check_workers`, once per job, set of nodes and ``runtime_env`` (what predict and fit call: a
    check costs a task per node, about a second where a new worker must start)."""
    import ray

    key = (ray.get_runtime_context().get_job_id(), tuple(node for node, _ in _nodes()),
           json.dumps(runtime_env, sort_keys=True, default=repr))
    with _LOCK:
        if key in _PASSED:
            return
    check_workers(runtime_env)
    with _LOCK:
        _PASSED.add(key)


def check_workers(runtime_env: Optional[dict[str, Any]] = None) -> dict[str, dict[str, Any]]:
    """Check that a worker on every node of the connected Ray cluster with CPUs imports rnnfast; return what
    each reports.

    Parameters
    ----------
    runtime_env : dict, optional
        The runtime environment the actors will have (as Ray's ``runtime_env``, merged with the job's).

    Returns
    -------
    dict
        Per node (``"<ip> <node id>"``): ``version``, ``threads``, ``python``
        and ``isa``.

    Raises
    ------
    RuntimeError
        Ray not initialised, no node with CPUs, or naming each node whose worker cannot import rnnfast and
        its import error.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = _nodes()
    options: dict[str, Any] = {"num_cpus": 0, "max_retries": 0}  # no CPU: never queued behind busy actors
    if runtime_env is not None:
        options["runtime_env"] = runtime_env
    probe = ray.remote(_rnnfast_on_worker)
    calls = [probe.options(**options, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
             for node, _ in nodes]
    answers: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    first: Optional[BaseException] = None
    for (node, ip), call in zip(nodes, calls):
        name = f"{ip} {node}"
        try:
            answers[name] = ray.get(call)
        except Exception as exc:  # Ray's report: the import error, or the runtime environment's failure
            failed[name] = import_failure(exc) or f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"
            first = first or exc
    if failed:
        lines = "; ".join(f"node {name}: {error}" for name, error in sorted(failed.items()))
        raise RuntimeError(f"{len(failed)} of {len(nodes)} Ray nodes cannot import rnnfast in their workers: "
                           f"{lines}. {INSTALL_HINT}") from first
    return answers
