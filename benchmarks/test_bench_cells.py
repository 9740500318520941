"""pytest-benchmark suites: every cell (RNN tanh, LSTM, GRU) in every scenario of ``rnnfast bench``, for
rnnfast and for the NumPy reference (:mod:`rnnfast.reference`), float32.

    pip install pytest-benchmark
    PYTHONPATH=python pytest benchmarks/ --benchmark-only                        # all 36
    PYTHONPATH=python pytest benchmarks/ --benchmark-only -k "lstm and edge"      # a subset
    PYTHONPATH=python pytest benchmarks/ --benchmark-only --benchmark-group-by=group --benchmark-sort=mean

Each benchmark's group is ``scenario-cell``, so pytest-benchmark's table puts rnnfast next to the reference.
The streaming scenario times one ``step(x_t, out=y)`` (rnnfast's stepper) or one call of the reference on a
single step; the others time one call on the whole sequence (training: forward + backward). ``extra_info``
carries the shape and the GFLOP/s of the mean. The shapes and the problems are those of
:mod:`rnnfast._bench` (``rnnfast bench`` compares against PyTorch, ONNX Runtime and Keras too, interleaved).

Threads: rnnfast's default (the usable CPUs); ``RNNFAST_BENCH_THREADS=n`` sets another. These files are
not part of the default ``pytest`` run (``testpaths = ["tests"]``), and pytest-benchmark is not a
dependency of rnnfast.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

import rnnfast  # noqa: E402
from rnnfast import reference  # noqa: E402
from rnnfast._bench import peers, scenarios  # noqa: E402

IMPLEMENTATIONS = ("rnnfast", "reference")


@pytest.fixture(scope="module", autouse=True)
def _threads():
    saved = rnnfast.get_num_threads()
    wanted = os.environ.get("RNNFAST_BENCH_THREADS")
    if wanted:
        rnnfast.set_num_threads(int(wanted))
    yield
    rnnfast.set_num_threads(saved)


def _single_step(p: scenarios.Problem, impl: str):
    """One streaming step: rnnfast's stepper with ``out=``, or the reference on a sequence of length 1."""
    x_t = p.x[0]
    if impl == "rnnfast":
        s = p.model.stepper(batch=p.scenario.B)
        y = np.empty((p.scenario.B, p.scenario.H), dtype=np.float32)
        step = s.step
        return lambda: step(x_t, out=y)
    w = p.params
    args = (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"])
    x1 = p.x[:1]
    h = np.zeros((p.scenario.B, p.scenario.H), dtype=np.float32)
    if p.cell == "lstm":
        return lambda: reference.lstm(x1, h, h, *args)
    if p.cell == "gru":
        return lambda: reference.gru(x1, h, *args)
    return lambda: reference.rnn(x1, h, *args)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("cell", list(scenarios.CELLS))
@pytest.mark.parametrize("scenario", list(scenarios.SCENARIOS))
def test_cell(benchmark, scenario, cell, impl):
    s = scenarios.SCENARIOS[scenario]
    p = scenarios.make_problem(s, cell)
    if s.kind == "stream":
        fn = _single_step(p, impl)
    else:
        fn = (peers.rnnfast_impl if impl == "rnnfast" else peers.numpy_impl)(p).fn
    benchmark.group = f"{scenario}-{cell}"
    benchmark.extra_info.update({"T": 1 if s.kind == "stream" else s.T, "B": s.B, "I": s.I, "H": s.H,
                                 "threads": rnnfast.get_num_threads(), "isa": rnnfast.isa()})
    benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    mean = getattr(getattr(stats, "stats", None), "mean", None)
    if mean:
        benchmark.extra_info["gflops"] = scenarios.flops(s, cell) / mean / 1e9
