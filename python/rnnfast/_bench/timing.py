"""Timing: implementations taking turns (:func:`time_interleaved`), the BLAS reference rate
(:func:`sgemm_peak`), and NumPy's OpenBLAS thread count (:class:`OpenBLAS`)."""

from __future__ import annotations

import ctypes
import gc
import math
import time
from typing import Callable, Optional, Sequence

import numpy as np


class OpenBLAS:
    """NumPy's OpenBLAS thread count, set through its C API (Linux; None where it cannot be found)."""

    _SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                ("openblas_set_num_threads", "openblas_get_num_threads"))

    def __init__(self) -> None:
        self._pairs: list = []
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.rsplit("/", 1)[-1].lower()}
        except OSError:
            paths = set()
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in self._SYMBOLS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    self._pairs.append((setter, getter))
                    break

    def get(self) -> Optional[int]:
        return int(self._pairs[0][1]()) if self._pairs else None

    def set(self, n: Optional[int]) -> None:
        if n is not None:
            for setter, _ in self._pairs:
                setter(int(n))


def _calibrate(fn: Callable[[], object], min_seconds: float) -> int:
    """Calls per timed sample so that a sample lasts about ``min_seconds``."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(10_000, math.ceil(min_seconds / once)))


#: Pause before each turn of :func:`time_interleaved`. Thread pools keep their idle threads spinning
#: for a while after a call, and on a machine with as many threads as cores a spinning thread takes a
#: core from whoever runs next: NumPy's OpenBLAS was measured spinning for about 100 ms after a matrix
#: product (PyTorch's OpenMP about 10 ms), which halved the next implementation's two-thread speed.
SETTLE_SECONDS = 0.12
#: Untimed calls after the pause, before the timed sample: after 0.12 s idle, a thread pool's workers
#: (and, in a virtual machine, their CPUs) take a while to be back at full speed. Measured on a 2-vCPU
#: Zen 4 VM, a two-thread LSTM call at B=1, T=100, I=64, H=128 (median of 9 samples after the pause):
#: 0.62 ms after 3 ms of warm calls, 0.44 after 10 ms, 0.37 after 30 ms, 0.36 after 100 ms, and 0.35
#: without a pause; so every implementation runs 30 ms of untimed calls before its sample.
WARM_SECONDS = 0.03


def time_interleaved(fns: Sequence[Callable[[], object]], repeat: int, min_seconds: float = 1e-3,
                     settle: float = SETTLE_SECONDS) -> list:
    """Seconds per call of each function in each of its ``repeat`` samples, the functions taking turns.

    Each turn is a pause of ``settle`` seconds (so that the previous implementation's idle threads have
    stopped spinning), untimed calls for at least ``WARM_SECONDS`` (at least one call; so that cold
    caches, parked thread pools and idle CPUs coming back up to speed cost nobody) and one timed sample
    of ``number`` calls; the function starting a round rotates. Returns, per function, the list of its
    samples' per-call times (the caller takes the median).
    """
    numbers, warm = [], []
    for fn in fns:
        fn()  # warm up: first touch, lazy initialisation, thread pools
        numbers.append(_calibrate(fn, min_seconds))
        warm.append(_calibrate(fn, WARM_SECONDS) if settle > 0 else 1)
    samples: list = [[] for _ in fns]
    was_enabled = gc.isenabled()
    gc.disable()  # no collection inside a sample (a full collect here costs 0.1 s once torch is loaded)
    try:
        for r in range(repeat):
            for k in range(len(fns)):
                i = (r + k) % len(fns)
                fn, number = fns[i], numbers[i]
                if settle > 0:
                    time.sleep(settle)
                for _ in range(warm[i]):
                    fn()
                start = time.perf_counter()
                for _ in range(number):
                    fn()
                samples[i].append((time.perf_counter() - start) / number)
    finally:
        if was_enabled:
            gc.enable()
    return samples


def sgemm_peak(n: int, repeat: int = 5) -> float:
    """Best float32 GFLOP/s of NumPy's ``a @ b`` on n x n matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    start = time.perf_counter()
    for _ in range(100):  # warm up (BLAS threads start on the first call) for at least 0.1 s
        np.matmul(a, b, out=c)
        if time.perf_counter() - start > 0.1:
            break
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9
