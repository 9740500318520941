"""Memory: long runs must not grow the process.

The resident set (``/proc/self/statm``) is measured after a warm-up (first-touch of buffers, NumPy's and
Python's allocator caches) and again after many calls. The bounds are chosen so that leaking any buffer the
kernels or the binding allocate per call would exceed them many times over, while allocator noise stays far
below:

- 1,000 forward-backward calls of a two-layer bidirectional LSTM (T=20, B=8, I=H=32): the smallest per-call
  allocation of the kernels (a (B, H) state, 1 KiB) leaked per call is 1 MiB; the largest (the input
  projection, 80 KiB) is 80 MiB. Bound: ``FORWARD_BACKWARD_BOUND``.
- 100,000 stepper steps: 32 bytes leaked per step would be 3.2 MB. Bound: ``STEPPER_BOUND``.
- 10,000 refused calls (errors raised in the binding and in the Python checks): exception paths release
  what they took. Bound: ``ERROR_PATH_BOUND``.

``tracemalloc`` additionally checks the Python heap (NumPy's array data included), where a leaked reference
to one small array per call would show.

Skipped under AddressSanitizer, whose quarantine keeps freed memory resident on purpose.
"""

from __future__ import annotations

import gc
import inspect
import os
import tracemalloc

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

MiB = 1 << 20
FORWARD_BACKWARD_BOUND = 4 * MiB
STEPPER_BOUND = 2 * MiB
ERROR_PATH_BOUND = 2 * MiB
PYTHON_HEAP_BOUND = 256 * 1024

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)"),
    pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                       reason="AddressSanitizer keeps freed memory resident (quarantine)"),
]


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(fn, calls: int, warmup: int) -> tuple[int, int]:
    """(resident-set growth, Python-heap growth) over ``calls`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    gc.collect()
    tracemalloc.start()
    heap_before = tracemalloc.get_traced_memory()[0]
    before = rss()
    for _ in range(calls):
        fn()
    gc.collect()
    after = rss()
    heap_after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, heap_after - heap_before


def test_forward_backward_1000_calls():
    m = rnnfast.LSTM(32, 32, num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((20, 8, 32)).astype(np.float32)
    d_out = np.ones((20, 8, 64), np.float32)

    def step():
        m.forward(x, training=True)
        m.backward(d_out)

    grown, heap = growth(step, calls=1000, warmup=100)
    assert grown < FORWARD_BACKWARD_BOUND, f"1000 forward-backward calls grew the resident set by {grown / MiB:.2f} MiB"
    assert heap < PYTHON_HEAP_BOUND, f"1000 forward-backward calls grew the Python heap by {heap / 1024:.0f} KiB"


def test_functional_ops_with_lengths_1000_calls():
    rng = np.random.default_rng(1)
    T, B, I, H = 15, 6, 16, 24
    x = rng.standard_normal((T, B, I))
    w_ih, w_hh = rng.standard_normal((3 * H, I)) * 0.2, rng.standard_normal((3 * H, H)) * 0.2
    has_lengths = "lengths" in inspect.signature(rnnfast.gru).parameters
    kw = {"lengths": [15, 3, 7, 0, 15, 9]} if has_lengths else {}

    def step():
        out, h_n, ws = rnnfast.gru(x, None, w_ih, w_hh, training=True, **kw)
        rnnfast.gru_backward(out, h_n, x, None, w_ih, w_hh, out, ws, **kw)

    grown, heap = growth(step, calls=1000, warmup=100)
    assert grown < FORWARD_BACKWARD_BOUND, f"grew the resident set by {grown / MiB:.2f} MiB"
    assert heap < PYTHON_HEAP_BOUND, f"grew the Python heap by {heap / 1024:.0f} KiB"


@pytest.mark.skipif(not hasattr(rnnfast.LSTM, "stepper"), reason="the stepper is not in this build yet")
@pytest.mark.parametrize("with_out", [True, False])
def test_stepper_100000_steps(with_out):
    s = rnnfast.GRU(16, 32, num_layers=2, seed=0).stepper(batch=1)
    x_t = np.random.default_rng(2).standard_normal((1, 16)).astype(np.float32)
    out = np.empty((1, 32), np.float32) if with_out else None

    def run_steps(n):
        for _ in range(n):
            s.step(x_t, out=out)

    run_steps(2000)
    grown, heap = growth(lambda: run_steps(1000), calls=100, warmup=0)  # 100,000 steps
    assert np.isfinite(s.step(x_t)).all()
    assert grown < STEPPER_BOUND, f"100,000 steps grew the resident set by {grown / MiB:.2f} MiB"
    assert heap < PYTHON_HEAP_BOUND, f"100,000 steps grew the Python heap by {heap / 1024:.0f} KiB"


def test_refused_calls_release_what_they_took():
    """Errors raised in the binding after it has looked at the arrays, and in the Python checks."""
    x = np.zeros((10, 4, 8))
    w_ih, w_hh = np.zeros((32, 8)), np.zeros((32, 8))
    out_bad = np.empty((10, 4, 9))
    h_n, c_n = np.empty((4, 8)), np.empty((4, 8))

    def refused():
        for call in (
            lambda: _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out_bad, h_n, c_n, None),
            lambda: _core.gemm(np.zeros((30, 40)), np.zeros((41, 5))),
            lambda: rnnfast.lstm(x, None, None, w_ih[:, :7], w_hh),
            lambda: rnnfast.LSTM(8, 8)(np.zeros((3, 2, 9))),
        ):
            try:
                call()
            except (TypeError, ValueError):
                pass
            else:
                raise AssertionError("the call was expected to be refused")

    grown, heap = growth(refused, calls=2500, warmup=100)  # 10,000 refused calls
    assert grown < ERROR_PATH_BOUND, f"10,000 refused calls grew the resident set by {grown / MiB:.2f} MiB"
    assert heap < PYTHON_HEAP_BOUND, f"10,000 refused calls grew the Python heap by {heap / 1024:.0f} KiB"


def test_save_load_100_times(tmp_path):
    m = rnnfast.GRU(16, 32, num_layers=2, seed=0)
    path = tmp_path / "m.npz"
    fds = len(os.listdir("/proc/self/fd"))

    def round_trip():
        rnnfast.save(path, m)
        rnnfast.load(path)

    grown, heap = growth(round_trip, calls=100, warmup=10)
    assert grown < FORWARD_BACKWARD_BOUND, f"grew the resident set by {grown / MiB:.2f} MiB"
    assert len(os.listdir("/proc/self/fd")) <= fds + 1, "file descriptors leaked"
