"""The thread count the environment asks for at import: ``RNNFAST_NUM_THREADS``, else ``OMP_NUM_THREADS``.

Why both: engines that run several workers on one machine (Dask, Ray, Spark, job schedulers) give each
worker its share of the cores by setting ``OMP_NUM_THREADS`` (usually to 1); a library that read only the
affinity mask would run as many threads as the machine has cores in every worker and oversubscribe it.
``RNNFAST_NUM_THREADS`` sets rnnfast alone (and wins over ``OMP_NUM_THREADS``); ``set_num_threads`` after
import wins over both.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Optional

__all__ = ["threads_from_environment"]


def _positive(text: str) -> Optional[int]:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 1 else None


def threads_from_environment(environ: Mapping[str, str], max_threads: int) -> Optional[int]:
    """The thread count ``environ`` asks for, or None for the default (the CPUs of the affinity mask).

    ``RNNFAST_NUM_THREADS`` must be an integer from 1 to ``max_threads``: anything else is ignored with a
    RuntimeWarning naming it (a typo should not silently change the speed). ``OMP_NUM_THREADS`` follows
    OpenMP's syntax, a list of counts per nesting level ("4,2"): its first entry is the one that applies
    to rnnfast's single level; a value OpenMP itself would reject is left to OpenMP and ignored here.
    """
    own = environ.get("RNNFAST_NUM_THREADS", "").strip()
    if own:
        n = _positive(own)
        if n is not None and n <= max_threads:
            return n
        warnings.warn(f"RNNFAST_NUM_THREADS={own!r} is ignored: it must be an integer from 1 to {max_threads}",
                      RuntimeWarning, stacklevel=3)
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        n = _positive(omp.split(",")[0])
        if n is not None:
            return min(n, max_threads)
    return None
