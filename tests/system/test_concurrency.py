"""Concurrency: the GIL is released in every kernel call, Python threads share models safely, the thread
count can change while kernels run, and a process that used rnnfast can fork a child that uses it too.

Expected results are computed first on one thread, serially; concurrent runs must reproduce them bit for bit
(the kernels are deterministic and, by design, independent of the thread count).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import rnnfast
from rnnfast import _core



@pytest.fixture
def one_kernel_thread():
    """Kernels on the calling thread only, restored afterwards."""
    before = rnnfast.get_num_threads()
    rnnfast.set_num_threads(1)
    yield
    rnnfast.set_num_threads(before)


def _run_threads(target, n: int, timeout: float = 120.0) -> list:
    """Run ``target(k)`` in ``n`` threads started together; re-raise the first failure; results by k."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def body(k):
        try:
            barrier.wait(timeout)
            results[k] = target(k)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"threads still running after {timeout} s: a hang"
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------------------------------------------
# The GIL is released while a kernel runs
# ---------------------------------------------------------------------------------------------------

def _lstm_problem(T=600, B=16, I=192, H=192, dtype=np.float32):
    rng = np.random.default_rng(0)
    f = lambda *s: rng.uniform(-0.1, 0.1, s).astype(dtype)  # noqa: E731
    return dict(x=f(T, B, I), h0=f(B, H), c0=f(B, H), w_ih=f(4 * H, I), w_hh=f(4 * H, H), b_ih=f(4 * H),
                b_hh=f(4 * H))


def _kernel_calls() -> dict:
    """Long native calls with their arrays prepared beforehand: each runs only the binding and the kernel."""
    p = _lstm_problem()
    T, B, H = p["x"].shape[0], p["x"].shape[1], p["w_hh"].shape[1]
    out, h_n, c_n = np.empty((T, B, H), np.float32), np.empty((B, H), np.float32), np.empty((B, H), np.float32)
    ws = np.empty((T, B, 6 * H), np.float32)

    def forward():
        _core.forward("lstm", p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], out, h_n, c_n, ws)

    forward()
    grads = [np.empty_like(a) for a in (p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])]

    def backward():
        _core.backward("lstm", p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], out, ws, out, None, None, *grads)

    a = np.random.default_rng(1).standard_normal((1500, 1500)).astype(np.float32)

    def gemm():
        _core.testing.gemm(a, a)

    s = rnnfast.LSTM(p["x"].shape[2], H, seed=0).stepper(batch=B)
    y = np.empty_like(out)
    return {"forward": forward, "backward": backward, "gemm": gemm, "stepper": lambda: s._impl.run(p["x"], y)}


def _largest_pause(call) -> tuple[float, float]:
    """Run ``call`` in a thread while this thread counts; return (call duration, longest pause of this thread
    during the call). Holding the GIL for the whole call would make the pause as long as the call."""
    window = {}
    done = threading.Event()

    def worker():
        window["start"] = time.perf_counter()
        call()
        window["stop"] = time.perf_counter()
        done.set()

    stamps = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # hand the GIL over quickly around the call, so only the kernel counts
    try:
        t = threading.Thread(target=worker)
        t.start()
        while not done.is_set():
            stamps.append(time.perf_counter())
        t.join()
    finally:
        sys.setswitchinterval(interval)
    start, stop = window["start"], window["stop"]
    inside = [start] + [s for s in stamps if start < s < stop] + [stop]
    return stop - start, float(np.max(np.diff(inside)))


@pytest.mark.parametrize("kernel", ["forward", "backward", "gemm", "stepper"])
def test_gil_released_during_kernel(kernel, one_kernel_thread):
    calls = _kernel_calls()
    if kernel not in calls:
        pytest.skip(f"{kernel} is not in this build yet")
    call = calls[kernel]
    attempts = []
    for _ in range(3):  # a busy machine can pause this thread too; holding the GIL fails every attempt
        duration, pause = _largest_pause(call)
        attempts.append((duration, pause))
        assert duration > 0.05, f"the {kernel} call took only {duration * 1e3:.1f} ms: too short to measure"
        if pause < 0.25 * duration:
            return
    pytest.fail(f"while the {kernel} kernel ran, the main thread stalled: (duration, longest pause) = {attempts}")


# ---------------------------------------------------------------------------------------------------
# Several Python threads, one model
# ---------------------------------------------------------------------------------------------------

def _parts(state) -> tuple:
    """An LSTM state (h, c) or an RNN/GRU state h, as a tuple of arrays."""
    return state if isinstance(state, tuple) else (state,)


def _inputs(n: int, I: int, seed: int = 0) -> list:
    """Inputs of different shapes (T, B vary), so threads exercise different work splits."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((5 + k % 7, 1 + k % 5, I)).astype(np.float32) for k in range(n)]


@pytest.mark.parametrize("cls", [rnnfast.LSTM, rnnfast.GRU, rnnfast.RNN])
def test_threads_share_one_model(cls, restore_threads):
    """Eight threads run inference on one model at once; every output equals the serial one."""
    rnnfast.set_num_threads(2)
    m = cls(24, 40, num_layers=2, bidirectional=True, seed=0)
    xs = _inputs(48, 24)
    expected = [m(x) for x in xs]

    def work(k):
        for j in range(k, len(xs), 8):
            out, state = m(xs[j])
            np.testing.assert_array_equal(out, expected[j][0], err_msg=f"thread {k}, input {j}")
            for got, want in zip(_parts(state), _parts(expected[j][1])):
                np.testing.assert_array_equal(got, want, err_msg=f"thread {k}, input {j}: final state")
        return True

    assert all(_run_threads(work, 8))


def test_threads_train_their_own_copies(restore_threads):
    """Threads train copies of one model (forward + backward) at once; gradients equal the serial ones."""
    rnnfast.set_num_threads(2)
    base = rnnfast.LSTM(16, 24, num_layers=2, bidirectional=True, seed=1)
    xs = _inputs(6, 16, seed=1)

    def train(model, x):
        out, _ = model.forward(x, training=True)
        d_x, _ = model.backward(np.ones_like(out))
        return d_x, {k: v.copy() for k, v in model.grads.items()}

    expected = [train(pickle.loads(pickle.dumps(base)), x) for x in xs]

    def work(k):
        model = pickle.loads(pickle.dumps(base))
        for _ in range(5):
            model.zero_grad()
            d_x, grads = train(model, xs[k])
            np.testing.assert_array_equal(d_x, expected[k][0])
            for name, g in grads.items():
                np.testing.assert_array_equal(g, expected[k][1][name], err_msg=name)
        return True

    assert all(_run_threads(work, len(xs)))


def test_threads_each_with_a_stepper():
    m = rnnfast.GRU(12, 20, num_layers=2, seed=2)
    xs = _inputs(6, 12, seed=2)
    expected = [m(x)[0] for x in xs]

    def work(k):
        x = xs[k]
        s = m.stepper(batch=x.shape[1])
        for _ in range(20):
            s.reset()
            got = np.stack([s.step(x[t]) for t in range(x.shape[0])])
            np.testing.assert_array_equal(got, expected[k])
        return True

    assert all(_run_threads(work, len(xs)))


def test_one_stepper_shared_by_threads():
    """Steps on one stepper from several threads are serialised: with the same input at every step, any
    interleaving of 6 x 50 steps leaves the state of 300 serial steps; reading the state meanwhile is safe."""
    m = rnnfast.LSTM(8, 16, seed=3)
    x_t = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)
    serial = m.stepper(batch=2)
    for _ in range(300):
        serial.step(x_t)
    shared = m.stepper(batch=2)

    def work(k):
        for _ in range(50):
            if k == 0:
                _ = shared.state  # a reader among the writers
            shared.step(x_t)
        return True

    _run_threads(work, 6)
    for got, want in zip(shared.state, serial.state):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------------
# Changing the thread count while kernels run
# ---------------------------------------------------------------------------------------------------

def test_set_num_threads_while_others_run(restore_threads):
    """Four threads run models while a fifth keeps changing the thread count: every result is still exact."""
    m = rnnfast.LSTM(32, 48, num_layers=2, seed=4)
    xs = _inputs(8, 32, seed=4)
    rnnfast.set_num_threads(1)
    expected = [m(x)[0] for x in xs]
    stop = threading.Event()
    counts = []

    def toggler():
        n = 1
        while not stop.is_set():
            n = n % 4 + 1
            rnnfast.set_num_threads(n)
            counts.append(n)
            time.sleep(0.001)

    t = threading.Thread(target=toggler, daemon=True)
    t.start()
    try:
        def work(k):
            for rep in range(25):
                j = (k + rep) % len(xs)
                np.testing.assert_array_equal(m(xs[j])[0], expected[j], err_msg=f"thread {k}, repeat {rep}")
            return True
        assert all(_run_threads(work, 4))
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert len(set(counts)) > 1, "the thread count never changed during the test"


# ---------------------------------------------------------------------------------------------------
# fork
# ---------------------------------------------------------------------------------------------------

FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing, sys, threading, warnings
    import numpy as np
    import rnnfast

    warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns about fork with threads
    if hasattr(rnnfast, "set_num_threads"):
        rnnfast.set_num_threads(2)
    m = rnnfast.LSTM(32, 64, num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 8, 32)).astype(np.float32)
    want, _ = m(x)                       # the pool (if any) has started and worked
    from rnnfast import _core
    _core.testing.set_split("hidden")            # a stepper whose steps the pool's threads share
    u = rnnfast.LSTM(32, 128, seed=1)
    xs = x[:, :2]
    want_stream, _ = u(xs)
    stepper = u.stepper(batch=2)
    first_steps = [stepper.step(x_t).copy() for x_t in xs[:20]]

    busy = threading.Event()
    stop = threading.Event()
    def background():                    # keep kernels running in the parent while it forks
        while not stop.is_set():
            m(x)
            busy.set()
    if MODE == "busy":
        threading.Thread(target=background, daemon=True).start()
        busy.wait(30)

    def child(q):
        got, _ = m(x)
        streamed = np.stack(first_steps + [stepper.step(x_t).copy() for x_t in xs[20:]])
        if hasattr(rnnfast, "set_num_threads"):
            rnnfast.set_num_threads(3)
            again, _ = m(x)
        else:
            again = got
        q.put(bool(np.array_equal(got, want) and np.array_equal(again, want) and
                   np.array_equal(streamed, want_stream)))

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    p.join(60)
    stop.set()
    if p.is_alive():
        p.kill()
        print("child hung", flush=True)
        sys.exit(3)
    ok = q.get(timeout=5) if p.exitcode == 0 else False
    print("child exit", p.exitcode, "results equal", ok, flush=True)
    sys.exit(0 if ok else 1)
""")


@pytest.mark.parametrize("mode", ["idle", "busy"])
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_child_can_use_rnnfast(mode):
    """After rnnfast ran (and, in 'busy' mode, while another thread is inside a kernel), a forked child runs the
    same model to the same result, goes on with a stepper the parent's pool shared steps of (its kept
    step schedulers made anew), and can change the thread count. A hang fails the test (timeout)."""
    script = f"MODE = {mode!r}\n" + FORK_SCRIPT
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rnnfast.__file__)),
                                         env.get("PYTHONPATH", "")])
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the fork test hung for 120 s")
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-2000:]}"
    assert "results equal True" in proc.stdout


# ---------------------------------------------------------------------------------------------------
# Exit while a daemon thread is inside a kernel
# ---------------------------------------------------------------------------------------------------

EXIT_SCRIPT = textwrap.dedent("""
    import sys, threading
    import numpy as np
    import rnnfast

    if hasattr(rnnfast, "set_num_threads"):
        rnnfast.set_num_threads(THREADS)
    m = rnnfast.LSTM(32, 64, num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 8, 32)).astype(np.float32)
    busy = threading.Event()
    def background():
        while True:
            m(x)
            busy.set()
    threading.Thread(target=background, daemon=True).start()
    busy.wait(30)
    sys.exit(0)                          # the daemon thread is (almost always) inside a kernel now
""")


@pytest.mark.parametrize("threads", [1, 2])
def test_exit_while_a_daemon_thread_runs_a_kernel(threads):
    """The interpreter exits cleanly while a daemon thread is in a kernel (it used to abort: 'terminate called
    without an active exception', when the thread came back for the GIL during finalization)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rnnfast.__file__)),
                                         env.get("PYTHONPATH", "")])
    for attempt in range(3):
        proc = subprocess.run([sys.executable, "-c", f"THREADS = {threads}\n" + EXIT_SCRIPT], capture_output=True,
                              text=True, timeout=120, env=env)
        assert proc.returncode == 0, f"attempt {attempt}: exit {proc.returncode}, stderr: {proc.stderr[-2000:]}"
        assert "terminate" not in proc.stderr


STEPPING_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import rnnfast

    rnnfast.set_num_threads(1)
    model = rnnfast.GRU(4, 8, seed=0)
    started = threading.Barrier(5)
    def stepping():
        stepper = model.stepper(batch=1)
        x = np.ones((1, 4), np.float32)
        started.wait()
        while True:                      # tiny steps: each releases the GIL and asks for it back
            stepper.step(x)
    for _ in range(4):
        threading.Thread(target=stepping, daemon=True).start()
    started.wait()
    time.sleep(0.05)
    sys.exit(0)                          # threads are waiting for the GIL as finalization starts
""")


def test_exit_while_daemon_threads_wait_for_the_gil():
    """The interpreter exits cleanly while daemon threads, back from a kernel, wait for the GIL: finalization
    starts after their check of it, and CPython ends them with pthread_exit's unwind from inside the binding.
    Over libc++ (the wheels) pybind11's catch-all swallowed that unwind and glibc aborted the process ('FATAL:
    exception not rethrown'): 27 of 30 runs of this script before the binding caught it itself."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(rnnfast.__file__)),
                                         env.get("PYTHONPATH", "")])
    for attempt in range(3):
        proc = subprocess.run([sys.executable, "-c", STEPPING_SCRIPT], capture_output=True, text=True, timeout=120,
                              env=env)
        assert proc.returncode == 0, f"attempt {attempt}: exit {proc.returncode}, stderr: {proc.stderr[-2000:]}"
