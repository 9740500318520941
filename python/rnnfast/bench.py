"""``rnnfast bench``: rnnfast against the other CPU implementations a user could run instead.

For every (scenario, cell) row it builds one rnnfast model with a fixed seed and gives exactly its
weights to every peer that is importable:

- ``numpy``: :mod:`rnnfast.reference`, plain NumPy, which is the "naive NumPy" way to write an RNN
  (the input projection of all steps as one matrix product, then ``h @ W_hh.T`` and the gate math per step);
- ``torch``: ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (inference under ``torch.no_grad``; training with
  autograd), and for streaming ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` called once per step;
- ``onnxruntime``: the model exported with :func:`rnnfast.to_onnx`, run by an ONNX Runtime CPU session;
  for streaming the same graph is called once per step with T = 1, the state passed in and out;
- ``keras``: Keras 3 ``SimpleRNN`` / ``LSTM`` / ``GRU`` (on whichever backend Keras is configured for, the
  torch backend unless ``KERAS_BACKEND`` says otherwise), sequence inference only.

TensorFlow and JAX are not measured on their own (Keras covers them when it runs on them).

Before timing a row, every implementation runs once on the same input and its results (outputs and
final states; for training also the input and parameter gradients; for streaming every step's output)
are compared with rnnfast's: the largest absolute difference is printed, and a row whose peer differs
by more than 1e-4 relative to the magnitude of the result is flagged and makes the command exit 1.

Timing: the implementations of a row take turns (round robin, the starting one rotating), each turn a
pause of ``SETTLE_SECONDS`` (so that the previous implementation's idle threads have stopped spinning),
untimed calls for ``WARM_SECONDS`` and a timed sample of enough calls to last about a millisecond; a row reports the
median of its samples per call (per step for streaming). Sequence scenarios report milliseconds per
call, streaming reports microseconds per step. GFLOP/s counts ``2*T*B*G*H*(I+H)`` floating-point
operations for a forward pass (G gates), three times that for forward + backward, and it is given as a
fraction of the float32 matrix-multiply rate NumPy's BLAS reaches in the same run (the best of a few
``n x n @ n x n`` products, n = 2048, at the start and again at the end; the better of the two). Every framework gets the same thread count (``--threads``;
NumPy's OpenBLAS too where it can be set at run time).

``python -m rnnfast bench --help`` lists the options; :func:`run` is the programmatic entry point and
returns what ``--json`` writes.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import _core, reference

# --------------------------------------------------------------------------------------------------
# Scenarios and cells
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "stream" (one step per call), "infer" (whole sequence) or "train" (forward + backward)
    T: int  # sequence length; for streaming, the steps in one timed sample
    B: int
    I: int
    H: int
    title: str

    @property
    def unit(self) -> str:
        return "us/step" if self.kind == "stream" else "ms"

    def shape_text(self) -> str:
        if self.kind == "stream":
            return f"B={self.B}, I={self.I}, H={self.H}"
        return f"T={self.T}, B={self.B}, I={self.I}, H={self.H}"


SCENARIOS: dict[str, Scenario] = {
    "stream": Scenario("stream", "stream", 100, 1, 64, 128, "stream, one step per call"),
    "edge": Scenario("edge", "infer", 100, 1, 64, 128, "edge"),
    "small": Scenario("small", "infer", 100, 8, 128, 256, "small batch"),
    "batch": Scenario("batch", "infer", 50, 64, 256, 512, "batch"),
    "large": Scenario("large", "infer", 25, 64, 512, 1024, "large"),
    "train": Scenario("train", "train", 50, 32, 128, 256, "train (forward+backward)"),
}

#: The same scenarios at toy sizes (sizes off every vector width): the smoke test's ``--tiny``.
TINY_SCENARIOS: dict[str, Scenario] = {
    "stream": Scenario("stream", "stream", 6, 1, 5, 7, "stream, one step per call"),
    "edge": Scenario("edge", "infer", 7, 1, 5, 7, "edge"),
    "small": Scenario("small", "infer", 7, 3, 6, 9, "small batch"),
    "batch": Scenario("batch", "infer", 5, 4, 7, 10, "batch"),
    "large": Scenario("large", "infer", 4, 5, 9, 11, "large"),
    "train": Scenario("train", "train", 6, 3, 5, 7, "train (forward+backward)"),
}

CELLS: dict[str, tuple[str, int]] = {"rnn_tanh": ("RNN tanh", 1), "lstm": ("LSTM", 4), "gru": ("GRU", 3)}
_CELL_ALIASES = {"rnn": "rnn_tanh", "rnn_tanh": "rnn_tanh", "tanh": "rnn_tanh", "lstm": "lstm", "gru": "gru"}

PEERS: dict[str, str] = {
    "numpy": "NumPy reference",
    "torch": "PyTorch",
    "onnxruntime": "ONNX Runtime",
    "keras": "Keras",
}
_PEER_ALIASES = {"numpy": "numpy", "reference": "numpy", "torch": "torch", "pytorch": "torch",
                 "onnxruntime": "onnxruntime", "ort": "onnxruntime", "onnx": "onnxruntime", "keras": "keras"}

DESCRIPTION = ("Time rnnfast against the NumPy reference and the installed frameworks (PyTorch, ONNX Runtime, "
               "Keras) on identical weights: six scenarios (stream, edge, small, batch, large, train) x three "
               "cells (RNN tanh, LSTM, GRU), float32, the implementations interleaved. Prints a Markdown table "
               "of times, GFLOP/s, the fraction of NumPy's sgemm rate and rnnfast's speed-up over each peer.")

#: Largest difference from rnnfast tolerated, relative to the largest magnitude of rnnfast's result.
AGREEMENT_TOLERANCE = 1e-4


def flops(scenario: Scenario, cell: str) -> float:
    """Floating-point operations of one call (one step for streaming): 2 per multiply-add of the
    ``x @ W_ih^T`` and ``h @ W_hh^T`` products; backward counted as twice the forward."""
    G = CELLS[cell][1]
    steps = 1 if scenario.kind == "stream" else scenario.T
    forward = 2.0 * steps * scenario.B * G * scenario.H * (scenario.I + scenario.H)
    return 3.0 * forward if scenario.kind == "train" else forward


class NotMeasured(Exception):
    """A peer that cannot run a scenario; the message says why."""


# --------------------------------------------------------------------------------------------------
# Thread counts
# --------------------------------------------------------------------------------------------------


class _OpenBLAS:
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


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Problems and implementations
# --------------------------------------------------------------------------------------------------


@dataclass
class Problem:
    scenario: Scenario
    cell: str
    model: Any  # the rnnfast layer whose weights every implementation uses
    x: np.ndarray  # (T, B, I) float32
    d_out: Optional[np.ndarray]  # (T, B, H) for training

    @property
    def params(self) -> dict:
        return {k: np.ascontiguousarray(v) for k, v in self.model.state_dict().items()}


def make_problem(scenario: Scenario, cell: str, seed: int = 0) -> Problem:
    I, H = scenario.I, scenario.H
    if cell == "lstm":
        model = rnnfast.LSTM(I, H, seed=seed)
    elif cell == "gru":
        model = rnnfast.GRU(I, H, seed=seed)
    else:
        model = rnnfast.RNN(I, H, nonlinearity="tanh", seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((scenario.T, scenario.B, I)).astype(np.float32)
    d_out = rng.standard_normal((scenario.T, scenario.B, H)).astype(np.float32) \
        if scenario.kind == "train" else None
    return Problem(scenario, cell, model, x, d_out)


@dataclass
class Impl:
    """One implementation of one row: ``fn`` is what is timed (one call, or for streaming ``T`` steps);
    ``check`` runs it from the zero state and returns its results in the canonical order:
    inference ``[out, h_n(, c_n)]``, streaming ``[outputs of every step]``, training
    ``[out, d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh]``; shapes as in rnnfast."""

    fn: Callable[[], object]
    check: Callable[[], list]
    steps: int = 1  # calls to the model per fn() (streaming: the steps of a sample)


def _stepwise_impl(run_steps: Callable, state: dict, zeros, steps: int) -> Impl:
    """A streaming peer driven one step per call: ``run_steps(outs)`` advances every step from
    ``state`` (appending each output to ``outs`` when given); the check runs them from the zero
    state and leaves the state at zero again."""

    def check():
        state["h"] = state["c"] = zeros
        outs: list = []
        run_steps(outs)
        state["h"] = state["c"] = zeros
        return [np.stack(outs)]

    return Impl(run_steps, check, steps=steps)


def _rnnfast_impl(p: Problem) -> Impl:
    kind, m, x = p.scenario.kind, p.model, p.x
    if kind == "infer":
        return Impl(lambda: m(x), lambda: _flat(m(x)))
    if kind == "train":
        d_out = p.d_out

        def train():
            m.zero_grad()
            out, _ = m.forward(x, training=True)
            d_x, _ = m.backward(d_out)
            return out, d_x

        def check():
            out, d_x = train()
            g = m.grads
            return [out, d_x, g["weight_ih_l0"], g["weight_hh_l0"], g["bias_ih_l0"], g["bias_hh_l0"]]

        return Impl(train, check)
    s = m.stepper(batch=p.scenario.B)
    xs = list(x)  # (B, I) views: what a caller feeding a stream holds
    y = np.empty((p.scenario.B, p.scenario.H), dtype=np.float32)
    step = s.step

    def stream():
        for x_t in xs:
            step(x_t, out=y)

    def check():
        s.reset()
        outs = [step(x_t, out=y).copy() for x_t in xs]
        s.reset()
        return [np.stack(outs)]

    return Impl(stream, check, steps=len(xs))


def _numpy_impl(p: Problem) -> Impl:
    kind, cell, x = p.scenario.kind, p.cell, p.x
    w = p.params
    w_ih, w_hh, b_ih, b_hh = w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]
    lstm = cell == "lstm"
    if cell == "lstm":
        forward = lambda x, h, c, **kw: reference.lstm(x, h, c, w_ih, w_hh, b_ih, b_hh, **kw)  # noqa: E731
    elif cell == "gru":
        forward = lambda x, h, c, **kw: reference.gru(x, h, w_ih, w_hh, b_ih, b_hh, **kw)  # noqa: E731
    else:
        forward = lambda x, h, c, **kw: reference.rnn(x, h, w_ih, w_hh, b_ih, b_hh, **kw)  # noqa: E731
    if kind == "infer":
        def infer():
            r = forward(x, None, None)
            return [r[0], r[1][None]] + ([r[2][None]] if lstm else [])

        return Impl(infer, infer)
    if kind == "train":
        d_out = p.d_out

        def train():
            if lstm:
                out, _, _, ws = forward(x, None, None, training=True)
                g = reference.lstm_backward(d_out, None, None, x, None, None, w_ih, w_hh, out, ws)
            elif cell == "gru":
                out, _, ws = forward(x, None, None, training=True)
                g = reference.gru_backward(d_out, None, x, None, w_ih, w_hh, out, ws)
            else:
                out, _, ws = forward(x, None, None, training=True)
                g = reference.rnn_backward(d_out, None, x, None, w_ih, w_hh, out, ws)
            return [out, g.d_x, g.d_w_ih, g.d_w_hh, g.d_b_ih, g.d_b_hh]

        return Impl(train, train)
    B, H = p.scenario.B, p.scenario.H
    xs = [x[t:t + 1] for t in range(x.shape[0])]  # (1, B, I): one step of the functional op
    zeros = np.zeros((B, H), dtype=np.float32)
    state = {"h": zeros, "c": zeros}

    def run_steps(outs=None):
        h, c = state["h"], state["c"]
        for x_t in xs:
            r = forward(x_t, h, c)
            h = r[1]
            if lstm:
                c = r[2]
            if outs is not None:
                outs.append(r[0][0])
        state["h"], state["c"] = h, c

    return _stepwise_impl(run_steps, state, zeros, len(xs))


def _torch_impl(p: Problem, torch) -> Impl:
    kind, cell, x = p.scenario.kind, p.cell, p.x
    I, H = p.scenario.I, p.scenario.H
    sd = {k: torch.from_numpy(v.copy()) for k, v in p.params.items()}
    lstm = cell == "lstm"
    if kind == "stream":
        cls = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn_tanh": torch.nn.RNNCell}[cell]
        module = cls(I, H).eval()
        module.load_state_dict({k[:-3]: v for k, v in sd.items()})  # weight_ih_l0 -> weight_ih
        xs = list(torch.from_numpy(x))
        zeros = torch.zeros(p.scenario.B, H)
        state = {"h": zeros, "c": zeros}

        def run_steps(outs=None):
            with torch.no_grad():
                h, c = state["h"], state["c"]
                for x_t in xs:
                    if lstm:
                        h, c = module(x_t, (h, c))
                    else:
                        h = module(x_t, h)
                    if outs is not None:
                        outs.append(h.numpy().copy())
                state["h"], state["c"] = h, c

        return _stepwise_impl(run_steps, state, zeros, len(xs))

    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}[cell]
    module = cls(I, H)
    module.load_state_dict(sd)
    if kind == "infer":
        module.eval()
        xt = torch.from_numpy(x)

        def infer():
            with torch.no_grad():
                return module(xt)

        def check():
            out, state = infer()
            states = list(state) if lstm else [state]
            return [out.numpy()] + [s.numpy() for s in states]

        return Impl(infer, check)

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    d = torch.from_numpy(p.d_out)

    def train():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        out, _ = module(xt)
        out.backward(d)
        return out

    def check():
        out = train()
        return [out.detach().numpy(), xt.grad.numpy(), module.weight_ih_l0.grad.numpy(),
                module.weight_hh_l0.grad.numpy(), module.bias_ih_l0.grad.numpy(), module.bias_hh_l0.grad.numpy()]

    return Impl(train, check)


def _onnxruntime_impl(p: Problem, ort, threads: int) -> Impl:
    kind, lstm, x = p.scenario.kind, p.cell == "lstm", p.x
    if kind == "train":
        raise NotMeasured("inference only")
    try:
        proto = rnnfast.to_onnx(p.model)
    except Exception as exc:  # a converter that refuses or is missing: skip the peer, say why
        raise NotMeasured(f"rnnfast.to_onnx failed: {type(exc).__name__}: {exc}") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    B, H = p.scenario.B, p.scenario.H
    zeros = np.zeros((1, B, H), dtype=np.float32)
    run = sess.run
    if kind == "infer":
        feed = {"x": x, "h0": zeros}
        if lstm:
            feed["c0"] = zeros

        def infer():
            return run(None, feed)

        return Impl(infer, lambda: list(infer()))

    xs = [x[t:t + 1] for t in range(x.shape[0])]
    state = {"h": zeros, "c": zeros}

    def run_steps(outs=None):
        h, c = state["h"], state["c"]
        for x_t in xs:
            if lstm:
                y, h, c = run(None, {"x": x_t, "h0": h, "c0": c})
            else:
                y, h = run(None, {"x": x_t, "h0": h})
            if outs is not None:
                outs.append(y[0])
        state["h"], state["c"] = h, c

    return _stepwise_impl(run_steps, state, zeros, len(xs))


def _keras_impl(p: Problem, keras) -> Impl:
    kind, cell = p.scenario.kind, p.cell
    if kind == "train":
        raise NotMeasured("training not measured (Keras trains through its fit loop)")
    if kind == "stream":
        raise NotMeasured("streaming not measured")
    H = p.scenario.H
    w = p.params
    w_ih, w_hh, b_ih, b_hh = w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]
    kw = dict(return_sequences=True, return_state=True)
    if cell == "lstm":  # Keras gates i, f, c, o: PyTorch's order; one bias
        layer = keras.layers.LSTM(H, **kw)
        weights = [w_ih.T, w_hh.T, b_ih + b_hh]
    elif cell == "gru":  # Keras gates z, r, h; reset_after=True is PyTorch's GRU; biases (2, 3H)
        layer = keras.layers.GRU(H, reset_after=True, **kw)
        perm = np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])
        weights = [w_ih[perm].T, w_hh[perm].T, np.stack([b_ih[perm], b_hh[perm]])]
    else:
        layer = keras.layers.SimpleRNN(H, activation="tanh", **kw)
        weights = [w_ih.T, w_hh.T, b_ih + b_hh]
    xb = np.ascontiguousarray(p.x.transpose(1, 0, 2))  # Keras is batch-major
    layer(xb[:, :1])  # build
    layer.set_weights([np.ascontiguousarray(a, dtype=np.float32) for a in weights])
    xk = keras.ops.convert_to_tensor(xb)
    no_grad = _keras_no_grad(keras)

    def infer():
        with no_grad():
            return layer(xk, training=False)

    def check():
        r = [keras.ops.convert_to_numpy(a) for a in infer()]
        return [r[0].transpose(1, 0, 2)] + [a[None] for a in r[1:]]

    return Impl(infer, check)


def _keras_no_grad(keras):
    """The context Keras's own ``predict`` runs in: ``torch.no_grad`` on the torch backend."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad
    import contextlib

    return contextlib.nullcontext


# --------------------------------------------------------------------------------------------------
# Peer detection
# --------------------------------------------------------------------------------------------------


@dataclass
class Peer:
    key: str
    label: str
    module: Any = None
    version: str = ""
    reason: str = ""  # why it is not measured, when module is None

    @property
    def available(self) -> bool:
        return self.module is not None


def detect_peers(wanted: Sequence[str]) -> dict:
    """The peers in ``wanted`` (keys of :data:`PEERS`), each with its module or the reason it is absent."""
    peers: dict = {}
    for key in wanted:
        peer = Peer(key, PEERS[key])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if key == "numpy":
                    peer.module, peer.version = reference, np.__version__
                elif key == "torch":
                    import torch

                    peer.module, peer.version = torch, torch.__version__.split("+")[0]
                elif key == "onnxruntime":
                    import onnxruntime
                    import onnx  # noqa: F401  (rnnfast.to_onnx needs it)

                    if not hasattr(rnnfast, "to_onnx"):
                        raise ImportError("rnnfast.to_onnx is not available")
                    peer.module, peer.version = onnxruntime, onnxruntime.__version__
                elif key == "keras":
                    os.environ.setdefault("KERAS_BACKEND", "torch")
                    import keras

                    if int(keras.__version__.split(".")[0]) < 3:
                        raise ImportError(f"Keras 3 is needed, found {keras.__version__}")
                    peer.module = keras
                    peer.version = keras.__version__
                    peer.label = f"Keras ({keras.backend.backend()})"
        except Exception as exc:  # ImportError, or a broken installation: not measured, say why
            peer.module = None
            peer.reason = f"not installed ({exc})" if isinstance(exc, ImportError) else \
                f"unusable ({type(exc).__name__}: {exc})"
        peers[key] = peer
    return peers


def _build(key: str, peer: Optional[Peer], p: Problem, threads: int) -> Impl:
    if key == "rnnfast":
        return _rnnfast_impl(p)
    if key == "numpy":
        return _numpy_impl(p)
    if key == "torch":
        return _torch_impl(p, peer.module)
    if key == "onnxruntime":
        return _onnxruntime_impl(p, peer.module, threads)
    if key == "keras":
        return _keras_impl(p, peer.module)
    raise KeyError(key)


# --------------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------------


def _flat(result) -> list:
    """rnnfast's layer result ``(out, h_n)`` or ``(out, (h_n, c_n))`` as a flat list."""
    out, state = result
    return [out] + (list(state) if isinstance(state, tuple) else [state])


def compare(got: list, want: list) -> tuple:
    """(largest absolute difference, largest difference relative to the magnitude of ``want``)."""
    if len(got) != len(want):
        raise ValueError(f"{len(got)} results to compare with {len(want)}")
    worst_abs = worst_rel = 0.0
    for g, w in zip(got, want):
        g = np.asarray(g, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if g.shape != w.shape:
            raise ValueError(f"result of shape {g.shape} to compare with {w.shape}")
        if not w.size:
            continue
        diff = float(np.max(np.abs(g - w)))
        scale = max(float(np.max(np.abs(w))), 1e-30)
        worst_abs, worst_rel = max(worst_abs, diff), max(worst_rel, diff / scale)
    return worst_abs, worst_rel


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def _measure_overhead(scenario: Scenario, cell: str, repeat: int, calls: int) -> dict:
    """Per-call cost, in microseconds, of the streaming stepper's Python ``step(x_t, out=y)``, of the
    bare binding ``_core.Stepper.run(x_t, y)`` it wraps, of a pybind11 method with two array arguments
    that does almost nothing (``get_state`` of a single-layer stepper: copies B*H floats), and of a
    pybind11 function without arguments (``_core.get_num_threads``); each after subtracting the cost of
    the empty Python loop around it."""
    p = make_problem(scenario, cell)
    s = p.model.stepper(batch=scenario.B)
    xs = [p.x[t % p.x.shape[0]] for t in range(calls)]
    y = np.empty((scenario.B, scenario.H), dtype=np.float32)
    h = np.empty((1, scenario.B, scenario.H), dtype=np.float32)
    c = h.copy() if cell == "lstm" else None
    step, run, get_state, noop = s.step, s._impl.run, s._impl.get_state, _core.get_num_threads

    def loop():
        for x_t in xs:
            pass

    def steps():
        for x_t in xs:
            step(x_t, out=y)

    def runs():
        for x_t in xs:
            run(x_t, y)

    def array_calls():
        for x_t in xs:
            get_state(h, c)

    def noops():
        for x_t in xs:
            noop()

    fns = [loop, steps, runs, array_calls, noops]
    samples = time_interleaved(fns, repeat, min_seconds=0.0, settle=0.0)  # rnnfast alone: nothing spins
    med = [statistics.median(t) / calls * 1e6 for t in samples]
    base = med[0]
    r = {"cell": cell, "B": scenario.B, "I": scenario.I, "H": scenario.H, "calls_per_sample": calls,
         "loop_us": base,
         "step_us": med[1] - base,
         "run_us": med[2] - base,
         "array_call_us": med[3] - base,
         "noop_call_us": med[4] - base}
    r["wrapper_us"] = r["step_us"] - r["run_us"]
    return r


def run(cells: Sequence[str] = tuple(CELLS), scenarios: Sequence[str] = tuple(SCENARIOS), *,
        peers: Optional[Sequence[str]] = None, threads: Optional[int] = None, repeat: int = 15,
        quick: bool = False, tiny: bool = False, seed: int = 0,
        write: Callable[[str], None] = print) -> dict:
    """Run the comparison and return the results (what ``--json`` writes). ``write`` gets progress lines."""
    table = TINY_SCENARIOS if tiny else SCENARIOS
    threads = rnnfast.get_num_threads() if threads is None else int(threads)
    wanted = list(PEERS) if peers is None else list(peers)
    found = detect_peers(wanted)
    blas = _OpenBLAS()
    saved = {"rnnfast": rnnfast.get_num_threads(), "blas": blas.get()}
    torch = sys.modules.get("torch")  # imported by the torch peer, or by Keras on the torch backend
    if torch is not None:
        saved["torch"] = torch.get_num_threads()
    try:
        rnnfast.set_num_threads(threads)
        blas.set(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        return _run(table, cells, scenarios, found, threads, blas, repeat, quick, tiny, seed, write)
    finally:
        rnnfast.set_num_threads(saved["rnnfast"])
        blas.set(saved["blas"])
        if torch is not None:
            torch.set_num_threads(saved["torch"])


def _run(table, cells, scenarios, found, threads, blas, repeat, quick, tiny, seed, write) -> dict:
    peak_n = 128 if tiny else (1024 if quick else 2048)
    peak = sgemm_peak(peak_n, repeat=3 if (tiny or quick) else 5)
    result: dict = {
        "rnnfast": rnnfast.__version__, "isa": rnnfast.isa(), "threads": threads,
        "numpy_blas_threads": blas.get(),
        "machine": {"processor": _cpu_name(), "machine": platform.machine(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "repeat": repeat, "quick": quick, "tiny": tiny, "seed": seed,
        "sgemm_peak": {"n": peak_n, "gflops": peak, "start": peak},
        "peers": {k: {"label": p.label, "available": p.available, "version": p.version, "reason": p.reason}
                  for k, p in found.items()},
        "not_measured": {"tensorflow": "no TensorFlow peer (Keras on the TensorFlow backend covers it)",
                         "jax": "no JAX peer (Keras on the JAX backend covers it)"},
        "rows": [], "overhead": [], "agree": True,
    }
    write(f"rnnfast {rnnfast.__version__}  isa={rnnfast.isa()}  threads={threads}  "
          f"({_cpu_name()}, {os.cpu_count()} CPUs)")
    if result["load_average"] is not None:
        write(f"load average {result['load_average'][0]:.2f} on {os.cpu_count()} CPUs"
              + (" (other processes compete for the CPUs: expect noisy figures)"
                 if result["load_average"][0] > 0.5 * (os.cpu_count() or 1) else ""))
    write(f"float32 sgemm (NumPy {np.__version__}, {peak_n}^3, best of runs) at the start: {peak:.1f} GFLOP/s")
    for k, p in found.items():
        write(f"  peer {p.label:22s} " + (p.version if p.available else f"not measured: {p.reason}"))
    active = [k for k, p in found.items() if p.available]
    for sname in scenarios:
        scenario = table[sname]
        for cell in cells:
            row = _run_row(scenario, cell, active, found, threads, repeat, quick, tiny, seed, write)
            result["rows"].append(row)
            result["agree"] &= row["agree"]
    if "stream" in scenarios:
        write("per-call overhead of the streaming step (us per call):")
        for cell in cells:
            o = _measure_overhead(table["stream"], cell, max(3, repeat) if tiny else max(5, repeat),
                                  50 if tiny else 2000)
            result["overhead"].append(o)
            write(f"  {CELLS[cell][0]:8s} step(x, out=y) {o['step_us']:6.2f}   _core.Stepper.run {o['run_us']:6.2f}"
                  f"   Python wrapper {o['wrapper_us']:5.2f}   pybind11 call with 2 arrays {o['array_call_us']:5.2f}"
                  f"   pybind11 no-op {o['noop_call_us']:5.2f}")
    # The peak again at the end, the better of the two kept: a neighbour busy at the start would
    # otherwise inflate every fraction of it.
    end = sgemm_peak(peak_n, repeat=3 if (tiny or quick) else 5)
    write(f"float32 sgemm at the end: {end:.1f} GFLOP/s")
    peak = max(peak, end)
    result["sgemm_peak"].update(gflops=peak, end=end)
    for row in result["rows"]:
        for r in row["results"].values():
            r["peak_fraction"] = r["gflops"] / peak
    result["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return result


def _run_row(scenario, cell, active, found, threads, repeat, quick, tiny, seed, write) -> dict:
    p = make_problem(scenario, cell, seed)
    f = flops(scenario, cell)
    row: dict = {"scenario": scenario.name, "kind": scenario.kind, "cell": cell, "T": scenario.T, "B": scenario.B,
                 "I": scenario.I, "H": scenario.H, "unit": scenario.unit, "flops": f,
                 "results": {}, "not_measured": {}, "agree": True}
    impls: dict = {}
    for key in ["rnnfast"] + active:
        try:
            impls[key] = _build(key, found.get(key), p, threads)
        except NotMeasured as exc:
            row["not_measured"][key] = str(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        want = impls["rnnfast"].check()
        diffs = {}
        for key, impl in impls.items():
            diffs[key] = (0.0, 0.0) if key == "rnnfast" else compare(impl.check(), want)
        keys = list(impls)
        min_seconds = 0.0 if tiny else (5e-4 if quick else 1e-3)
        samples = time_interleaved([impls[k].fn for k in keys], repeat, min_seconds=min_seconds,
                                   settle=0.0 if tiny else SETTLE_SECONDS)  # --tiny is the smoke test
    scale = 1e6 if scenario.kind == "stream" else 1e3
    for key, s in zip(keys, samples):
        seconds = statistics.median(s) / impls[key].steps
        gflops = f / seconds / 1e9
        row["results"][key] = {
            "seconds": seconds, "time": seconds * scale, "gflops": gflops,
            "max_abs_diff": diffs[key][0], "max_rel_diff": diffs[key][1],
            "samples": len(s), "spread": (max(s) - min(s)) / impls[key].steps * scale,
        }
    ours = row["results"]["rnnfast"]["seconds"]
    for key, r in row["results"].items():
        r["speedup"] = r["seconds"] / ours  # how many times faster rnnfast is than this implementation
        r["agrees"] = r["max_rel_diff"] <= AGREEMENT_TOLERANCE
        row["agree"] &= r["agrees"]
    _write_row(row, found, write)
    return row


def _label(key: str, found: dict) -> str:
    return "rnnfast" if key == "rnnfast" else found[key].label


def _write_row(row: dict, found: dict, write) -> None:
    title = f"{row['scenario']:6s} {CELLS[row['cell']][0]:8s}"
    parts = []
    for key, r in row["results"].items():
        if key == "rnnfast":
            parts.append(f"rnnfast {_fmt_time(r['time'])} {row['unit']} ({r['gflops']:.1f} GFLOP/s)")
        else:
            flag = "" if r["agrees"] else " DISAGREES"
            parts.append(f"{_label(key, found)} {_fmt_time(r['time'])} ({r['speedup']:.2f}x, "
                         f"|diff| {r['max_abs_diff']:.1e}{flag})")
    write(f"  {title} " + "; ".join(parts))


def _fmt_time(t: float) -> str:
    if t >= 100:
        return f"{t:.0f}"
    if t >= 10:
        return f"{t:.1f}"
    if t >= 1:
        return f"{t:.2f}"
    return f"{t:.3f}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------------------------------
# Output: table, chart
# --------------------------------------------------------------------------------------------------


def markdown_table(result: dict) -> str:
    """The README's table: one row per (scenario, cell); rnnfast's time, GFLOP/s and fraction of the sgemm
    peak, then each peer's time with rnnfast's speed-up over it in parentheses."""
    peers = [k for k, p in result["peers"].items() if p["available"]]
    labels = [result["peers"][k]["label"] for k in peers]
    head = ["scenario", "cell", "rnnfast", "GFLOP/s", "% of sgemm peak"] + labels
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    table = TINY_SCENARIOS if result.get("tiny") else SCENARIOS
    for row in result["rows"]:
        scenario = table[row["scenario"]]
        ours = row["results"]["rnnfast"]
        unit = " us/step" if scenario.kind == "stream" else " ms"
        cells = [f"{scenario.title} ({scenario.shape_text()})", CELLS[row["cell"]][0],
                 _fmt_time(ours["time"]) + unit, f"{ours['gflops']:.1f}", f"{100 * ours['peak_fraction']:.0f}%"]
        for key in peers:
            r = row["results"].get(key)
            if r is None:
                cells.append("n/m")
            else:
                flag = " (DISAGREES)" if not r["agrees"] else ""
                cells.append(f"{_fmt_time(r['time'])} ({r['speedup']:.1f}x){flag}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(result: dict) -> str:
    peak = result["sgemm_peak"]
    load = result.get("load_average")
    lines = [
        "",
        f"rnnfast {result['rnnfast']} ({result['isa']}), {result['threads']} threads for every framework; "
        f"float32; median of {result['repeat']} interleaved samples; sgemm peak "
        f"{peak['gflops']:.0f} GFLOP/s (NumPy, {peak['n']}^3, best of the start and the end of the run)"
        + (f"; load average {load[0]:.2f} at the start" if load else "")
        + (f", {result['load_average_end'][0]:.2f} at the end" if result.get("load_average_end") else ""),
        "Peer columns: time, and in parentheses how many times faster rnnfast is (below 1: slower). "
        "n/m: not measured.",
        "",
        markdown_table(result),
    ]
    missing = [f"{p['label']}: {p['reason']}" for p in result["peers"].values() if not p["available"]]
    missing += [f"{k}: {v}" for k, v in result["not_measured"].items()]
    notes = sorted({f"{result['peers'][k]['label']}: {why}" for row in result["rows"]
                    for k, why in row["not_measured"].items()})
    if missing or notes:
        lines += ["", "Not measured: " + "; ".join(missing + notes) + "."]
    if result["overhead"]:
        lines += ["", "Streaming call overhead (us per call, loop cost subtracted):",
                  "| cell | step(x_t, out=y) | _core.Stepper.run | Python wrapper | pybind11 call, 2 arrays | "
                  "pybind11 no-op |", "|---|---:|---:|---:|---:|---:|"]
        for o in result["overhead"]:
            lines.append(f"| {CELLS[o['cell']][0]} | {o['step_us']:.2f} | {o['run_us']:.2f} | {o['wrapper_us']:.2f} "
                         f"| {o['array_call_us']:.2f} | {o['noop_call_us']:.2f} |")
    if not result["agree"]:
        lines += ["", "SOME IMPLEMENTATIONS DISAGREE WITH RNNFAST (marked above)."]
    return "\n".join(lines)


def plot(result: dict, path: str) -> bool:
    """A PNG of rnnfast's speed-up over each peer per row (log scale). False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    peers = [k for k, p in result["peers"].items() if p["available"]]
    rows = result["rows"]
    names = [f"{r['scenario']} {CELLS[r['cell']][0]}" for r in rows]
    fig, ax = plt.subplots(figsize=(8, len(rows) * (0.12 * len(peers) + 0.2) + 1.4))
    height = 0.8 / max(1, len(peers))
    for j, key in enumerate(peers):
        ys = [i + (j - (len(peers) - 1) / 2) * height for i in range(len(rows))]
        vals = [r["results"][key]["speedup"] if key in r["results"] else np.nan for r in rows]
        ax.barh(ys, vals, height=height, label=result["peers"][key]["label"])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("rnnfast speed-up over the peer (x, log scale; right of 1: rnnfast faster)")
    threads = f"{result['threads']} thread" + ("s" if result["threads"] != 1 else "")
    ax.set_title(f"rnnfast {result['rnnfast']}, float32, {threads}, {_short_cpu(result)}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _short_cpu(result: dict) -> str:
    return f"{result['machine']['cpus']} CPUs ({result['isa']})"


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _choices(text: str, aliases: dict, what: str) -> list:
    out = []
    for item in (s.strip().lower() for s in text.split(",")):
        if not item:
            continue
        if item not in aliases:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {item!r}: choose from {', '.join(sorted(set(aliases.values())))}")
        if aliases[item] not in out:
            out.append(aliases[item])
    if not out:
        raise argparse.ArgumentTypeError(f"no {what} given")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rnnfast bench``."""
    parser.add_argument("--cells", type=lambda s: _choices(s, _CELL_ALIASES, "cell"), default=list(CELLS),
                        metavar="LIST", help="comma-separated cells: rnn_tanh, lstm, gru (default all)")
    parser.add_argument("--scenarios", type=lambda s: _choices(s, {k: k for k in SCENARIOS}, "scenario"),
                        default=list(SCENARIOS), metavar="LIST",
                        help="comma-separated scenarios: " + ", ".join(SCENARIOS) + " (default all)")
    parser.add_argument("--peers", type=lambda s: _choices(s, _PEER_ALIASES, "peer"), default=None,
                        metavar="LIST", help="comma-separated peers: " + ", ".join(PEERS)
                        + " (default every one that is installed)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every framework (default rnnfast's default: the usable CPUs)")
    parser.add_argument("--repeat", type=int, default=None, help="timed samples per implementation (default 15; "
                        "5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer samples and a smaller sgemm peak run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--plot", metavar="PATH", help="also draw the speed-ups as a PNG (needs matplotlib)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # toy shapes, for the tests


def command(args: argparse.Namespace, parser: Optional[argparse.ArgumentParser] = None) -> int:
    """``rnnfast bench``: run, print the table, write JSON and the chart; exit 1 if a peer disagrees."""
    def error(message: str) -> int:
        if parser is not None:
            parser.error(message)  # exits 2
        print(f"rnnfast bench: {message}", file=sys.stderr)
        return 2

    if args.threads is not None and args.threads < 1:
        return error(f"--threads must be at least 1, got {args.threads}")
    repeat = args.repeat if args.repeat is not None else (5 if args.quick else 15)
    if repeat < 1:
        return error(f"--repeat must be at least 1, got {repeat}")
    if args.seed < 0:
        return error(f"--seed must be a non-negative integer, got {args.seed}")
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            folder = os.path.dirname(os.path.abspath(path))
            if not path or os.path.isdir(path) or not os.path.isdir(folder):
                return error(f"{option} needs a file path in an existing directory, got {path!r}")
    result = run(args.cells, args.scenarios, peers=args.peers, threads=args.threads, repeat=repeat,
                 quick=args.quick, tiny=args.tiny, seed=args.seed, write=lambda s: print(s, flush=True))
    print(summary(result))
    print("\nreproduce: rnnfast bench" + _reproduce_args(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"results written to {args.json}")
    if args.plot:
        if plot(result, args.plot):
            print(f"chart written to {args.plot}")
        else:
            print("--plot: matplotlib is not installed (pip install matplotlib); no chart written")
    return 0 if result["agree"] else 1


def _reproduce_args(args: argparse.Namespace) -> str:
    parts = []
    if args.cells != list(CELLS):
        parts.append("--cells " + ",".join(args.cells))
    if args.scenarios != list(SCENARIOS):
        parts.append("--scenarios " + ",".join(args.scenarios))
    if args.peers is not None:
        parts.append("--peers " + ",".join(args.peers))
    if args.threads is not None:
        parts.append(f"--threads {args.threads}")
    if args.repeat is not None:
        parts.append(f"--repeat {args.repeat}")
    if args.quick:
        parts.append("--quick")
    return "".join(" " + p for p in parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnfast bench", description=DESCRIPTION)
    add_arguments(parser)
    return command(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
