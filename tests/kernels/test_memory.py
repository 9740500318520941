"""Memory: long runs must not grow the process.

Each workload runs in a fresh interpreter (a process whose heap earlier tests have fragmented reuses its
free memory for leaked blocks, hiding them from the resident set). After a warm-up (first-touch of buffers,
the allocators' caches) the resident set (``/proc/self/statm``) is measured, the workload runs, and it is
measured again; then, with ``tracemalloc`` on (not before: its own tables grow the resident set), the same
for the Python heap, NumPy's array data included, where one leaked object per call shows:

- 1,000 forward-backward calls of a two-layer bidirectional LSTM (T=20, B=16, I=H=64): every buffer the
  kernels allocate per call is at least 4 KiB (the (B, H) zero state; the input projection is 320 KiB), so a
  leaked one would grow the resident set by about 4 MiB or more. Bound: ``FORWARD_BACKWARD_BOUND``. Measured
  (after 200 warm-up calls): 0.2 MiB without a leak, 3.2 MiB with a written 4 KiB block leaked per call.
- 100,000 stepper steps: any leaked allocation (16 bytes or more with malloc's header) would be 1.6 MB or
  more. Bound: ``STEPPER_BOUND``.
- 10,000 refused calls (errors raised in the binding and in the Python checks): exception paths release
  what they took. Bound: ``ERROR_PATH_BOUND``.
- 100 save/load round trips, and no file descriptor left open.

Python heap: ``PYTHON_HEAP_BOUND`` over 250 forward-backward calls, 25,000 steps, 2,000 refused calls (a
leaked NumPy array, 112 bytes or more, per call would exceed it). Smaller native leaks are the business of
valgrind (docs/building.md, "Reliability") and the sanitizer build. Skipped under AddressSanitizer, whose quarantine
keeps freed memory resident on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import rnnfast

MiB = 1 << 20
FORWARD_BACKWARD_BOUND = 2 * MiB
STEPPER_BOUND = 1 * MiB
ERROR_PATH_BOUND = 1 * MiB
SAVE_LOAD_BOUND = 2 * MiB
PYTHON_HEAP_BOUND = 16 * 1024
SAVE_LOAD_HEAP_BOUND = 64 * 1024  # NumPy's and the standard library's caches fill up to ~18 KiB

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)"),
    pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                       reason="AddressSanitizer keeps freed memory resident (quarantine)"),
]

_HARNESS = """
import gc, json, os, sys, tracemalloc
import numpy as np
import rnnfast

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

{setup}

def workload():
{step}

fds0 = len(os.listdir("/proc/self/fd"))
# The resident set, without tracemalloc (whose own tables would grow it).
for _ in range({warmup}):
    workload()
gc.collect()
rss0 = rss()
for _ in range({calls}):
    workload()
gc.collect()
rss1 = rss()
# The Python heap, with tracemalloc (a warm-up of its own first).
tracemalloc.start()
for _ in range(max(1, {heap_calls} // 4)):
    workload()
gc.collect()
heap0 = tracemalloc.get_traced_memory()[0]
for _ in range({heap_calls}):
    workload()
gc.collect()
heap1 = tracemalloc.get_traced_memory()[0]
print(json.dumps({{"rss": rss1 - rss0, "heap": heap1 - heap0, "fds": len(os.listdir("/proc/self/fd")) - fds0}}))
"""


def measure(setup: str, step: str, calls: int, warmup: int, heap_calls: int) -> dict:
    """In a fresh interpreter, after ``setup``: the growth of the resident set over ``calls`` runs of ``step``
    (after ``warmup`` runs), of the Python heap over ``heap_calls`` further runs, and of the number of open
    file descriptors over all of them."""
    script = _HARNESS.format(setup=textwrap.dedent(setup), step=textwrap.indent(textwrap.dedent(step), "    "),
                             calls=calls, warmup=warmup, heap_calls=heap_calls)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rnnfast.__file__)),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_forward_backward_1000_calls():
    r = measure(
        setup="""
            m = rnnfast.LSTM(64, 64, num_layers=2, bidirectional=True, seed=0)
            x = np.random.default_rng(0).standard_normal((20, 16, 64)).astype(np.float32)
            d_out = np.ones((20, 16, 128), np.float32)
        """,
        step="""
            m.forward(x, training=True)
            m.backward(d_out)
        """, calls=1000, warmup=200, heap_calls=250)
    assert r["rss"] < FORWARD_BACKWARD_BOUND, f"1000 forward-backward calls grew the resident set by {r['rss']} B"
    assert r["heap"] < PYTHON_HEAP_BOUND, f"1000 forward-backward calls grew the Python heap by {r['heap']} B"


def test_functional_ops_with_lengths_1000_calls():
    r = measure(
        setup="""
            import inspect
            rng = np.random.default_rng(1)
            T, B, I, H = 30, 8, 32, 48
            x = rng.standard_normal((T, B, I))
            w_ih, w_hh = rng.standard_normal((3 * H, I)) * 0.2, rng.standard_normal((3 * H, H)) * 0.2
            has_lengths = "lengths" in inspect.signature(rnnfast.gru).parameters
            kw = {"lengths": [30, 3, 7, 0, 30, 9, 1, 12]} if has_lengths else {}
        """,
        step="""
            out, h_n, ws = rnnfast.gru(x, None, w_ih, w_hh, training=True, **kw)
            rnnfast.gru_backward(out, h_n, x, None, w_ih, w_hh, out, ws, **kw)
        """, calls=1000, warmup=200, heap_calls=250)
    assert r["rss"] < FORWARD_BACKWARD_BOUND, f"grew the resident set by {r['rss']} B"
    assert r["heap"] < PYTHON_HEAP_BOUND, f"grew the Python heap by {r['heap']} B"


@pytest.mark.skipif(not hasattr(rnnfast.LSTM, "stepper"), reason="the stepper is not in this build yet")
@pytest.mark.parametrize("with_out", [True, False])
def test_stepper_100000_steps(with_out):
    r = measure(
        setup=f"""
            s = rnnfast.GRU(16, 32, num_layers=2, seed=0).stepper(batch=1)
            x_t = np.random.default_rng(2).standard_normal((1, 16)).astype(np.float32)
            out = np.empty((1, 32), np.float32) if {with_out} else None
        """,
        step="""
            for _ in range(1000):
                s.step(x_t, out=out)
        """, calls=100, warmup=3, heap_calls=25)  # 100,000 steps
    assert r["rss"] < STEPPER_BOUND, f"100,000 steps grew the resident set by {r['rss']} B"
    assert r["heap"] < PYTHON_HEAP_BOUND, f"100,000 steps grew the Python heap by {r['heap']} B"


def test_refused_calls_release_what_they_took():
    """Errors raised in the binding after it has looked at the arrays, and in the Python checks."""
    r = measure(
        setup="""
            from rnnfast import _core
            x = np.zeros((10, 4, 8))
            w_ih, w_hh = np.zeros((32, 8)), np.zeros((32, 8))
            out_bad, h_n, c_n = np.empty((10, 4, 9)), np.empty((4, 8)), np.empty((4, 8))
            calls = [
                lambda: _core.forward("lstm", x, None, None, w_ih, w_hh, None, None, out_bad, h_n, c_n, None),
                lambda: _core.testing.gemm(np.zeros((30, 40)), np.zeros((41, 5))),
                lambda: rnnfast.lstm(x, None, None, w_ih[:, :7], w_hh),
                lambda: rnnfast.LSTM(8, 8)(np.zeros((3, 2, 9))),
            ]
        """,
        step="""
            for call in calls:
                try:
                    call()
                except (TypeError, ValueError):
                    pass
                else:
                    raise AssertionError("the call was expected to be refused")
        """, calls=2500, warmup=100, heap_calls=500)  # 10,000 refused calls
    assert r["rss"] < ERROR_PATH_BOUND, f"10,000 refused calls grew the resident set by {r['rss']} B"
    assert r["heap"] < PYTHON_HEAP_BOUND, f"10,000 refused calls grew the Python heap by {r['heap']} B"


def test_save_load_100_times(tmp_path):
    r = measure(
        setup=f"""
            m = rnnfast.GRU(16, 32, num_layers=2, seed=0)
            path = {str(tmp_path / "m.npz")!r}
        """,
        step="""
            rnnfast.save(path, m)
            rnnfast.load(path)
        """, calls=100, warmup=10, heap_calls=50)
    assert r["rss"] < SAVE_LOAD_BOUND, f"grew the resident set by {r['rss']} B"
    assert r["heap"] < SAVE_LOAD_HEAP_BOUND, f"grew the Python heap by {r['heap']} B"
    assert r["fds"] <= 0, f"{r['fds']} more file descriptors open after the round trips"
