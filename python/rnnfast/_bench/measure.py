"""The run: every (scenario, cell) row timed for rnnfast and each peer after checking that they agree
(:func:`run`, what ``--json`` writes), and the streaming step's per-call overhead."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import warnings
from typing import Callable, Optional, Sequence

import numpy as np

import rnnfast
from .. import _core

from . import reduced, variants
from .peers import IMPLEMENTATIONS, PEERS, NotApplicable, NotMeasured, build_impl, detect_peers, \
    implementation_label, select_implementations
from .progress import RowProgress
from .report import write_row
from .scenarios import CELLS, SCENARIOS, TINY_SCENARIOS, VARIANT_CELLS, Scenario, VariantProblem, cell_label, flops, \
    make_problem
from .timing import SETTLE_SECONDS, OpenBLAS, sgemm_peak, time_interleaved

#: Largest difference from rnnfast tolerated, relative to the largest magnitude of rnnfast's result.
AGREEMENT_TOLERANCE = 1e-4


def _build(key: str, peer, p, threads: int):
    """The implementation ``key`` of the row ``p``: a cell variant's (variants.build), a reduced-precision one
    (reduced.build), or else a float one (peers.build_impl); raises NotMeasured or NotApplicable with the
    reason where it cannot run."""
    if isinstance(p, VariantProblem):
        return variants.build(key, peer, p, threads)
    impl = reduced.build(key, peer, p, threads)
    return impl if impl is not None else build_impl(key, peer, p, threads)


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
        precisions: Sequence[str] = reduced.PRECISIONS, write: Callable[[str], None] = print,
        progress: Optional[Callable[[str], None]] = None) -> dict:
    """Run the comparison and return the results (what ``--json`` writes). ``write`` gets the results as they
    come; ``progress``, if given, a row counter and the estimated time left as each row starts
    (:class:`.progress.RowProgress`; the command writes them to stderr).
    ``cells``: keys of :data:`.scenarios.CELLS` and :data:`.scenarios.VARIANT_CELLS`. ``precisions``: the
    weight precisions measured (rnnfast float32 always is: it is every comparison's reference)."""
    for cell in cells:
        if cell not in CELLS and cell not in VARIANT_CELLS:
            raise ValueError(f"unknown cell {cell!r}: choose from {', '.join(list(CELLS) + list(VARIANT_CELLS))}")
    for precision in precisions:
        if precision not in reduced.PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}: choose from {', '.join(reduced.PRECISIONS)}")
    table = TINY_SCENARIOS if tiny else SCENARIOS
    threads = rnnfast.get_num_threads() if threads is None else int(threads)
    wanted = list(PEERS) if peers is None else list(peers)
    found = detect_peers(wanted)
    blas = OpenBLAS()
    saved = {"rnnfast": rnnfast.get_num_threads(), "blas": blas.get()}
    torch = sys.modules.get("torch")  # imported by the torch peer, or by Keras on the torch backend
    if torch is not None:
        saved["torch"] = torch.get_num_threads()
    try:
        rnnfast.set_num_threads(threads)
        blas.set(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        return _run(table, cells, scenarios, found, list(precisions), threads, blas, repeat, quick, tiny, seed,
                    write, progress)
    finally:
        rnnfast.set_num_threads(saved["rnnfast"])
        blas.set(saved["blas"])
        if torch is not None:
            torch.set_num_threads(saved["torch"])


def _run(table, cells, scenarios, found, precisions, threads, blas, repeat, quick, tiny, seed, write,
         progress) -> dict:
    stepper_cells = [c for c in cells if c in CELLS]  # the variants have no stepper
    overhead_cells = stepper_cells if "stream" in scenarios else []
    # The streaming overhead's measurements count as rows of their own (they take about as long).
    counter = RowProgress(len(scenarios) * len(cells) + len(overhead_cells), progress or (lambda line: None))
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
        "precisions": precisions,
        "implementations": {},
        "reduced": {dtype: reduced.rnnfast_status(dtype) for dtype in precisions if dtype != "float32"},
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
    for dtype, status in result["reduced"].items():
        write(f"  rnnfast {dtype:14s} " + (f"isa={status['isa']}" if status["available"] else
                                            f"not measured: {status['reason']}"))
    active = select_implementations(found, precisions)
    for key in active:
        impl = IMPLEMENTATIONS[key]
        peer = found.get(impl.framework)
        result["implementations"][key] = {"label": implementation_label(key, peer.label if peer else None),
                                          "framework": impl.framework, "precision": impl.precision}
    for sname in scenarios:
        scenario = table[sname]
        for cell in cells:
            counter.start(f"{scenario.name:6s} {cell_label(cell):8s} T={scenario.T} B={scenario.B} I={scenario.I} "
                          f"H={scenario.H}")
            row = _run_row(scenario, cell, active, found, threads, repeat, quick, tiny, seed, write)
            result["rows"].append(row)
            result["agree"] &= row["agree"]
    if overhead_cells:
        write("per-call overhead of the streaming step (us per call):")
        for cell in overhead_cells:
            counter.start(f"stream {cell_label(cell):8s} per-call overhead of the streaming step")
            o = _measure_overhead(table["stream"], cell, max(3, repeat) if tiny else max(5, repeat),
                                  50 if tiny else 2000)
            result["overhead"].append(o)
            write(f"  {CELLS[cell]:8s} step(x, out=y) {o['step_us']:6.2f}   _core.Stepper.run {o['run_us']:6.2f}"
                  f"   Python wrapper {o['wrapper_us']:5.2f}   pybind11 call with 2 arrays {o['array_call_us']:5.2f}"
                  f"   pybind11 no-op {o['noop_call_us']:5.2f}")
    # The peak again at the end, the better of the two kept: a neighbour busy at the start would
    # otherwise inflate every fraction of it.
    counter.finish()
    result["row_seconds"] = counter.row_seconds  # each row's wall time (what the ETA is made of)
    end = sgemm_peak(peak_n, repeat=3 if (tiny or quick) else 5)
    write(f"float32 sgemm at the end: {end:.1f} GFLOP/s")
    peak = max(peak, end)
    result["sgemm_peak"].update(gflops=peak, end=end)
    for row in result["rows"]:
        for r in row["results"].values():
            r["peak_fraction"] = r["gflops"] / peak
    result["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["run_seconds"] = counter.finish()  # the whole run, the sgemm peaks included
    return result


def _run_row(scenario, cell, active, found, threads, repeat, quick, tiny, seed, write) -> dict:
    p = make_problem(scenario, cell, seed)
    f = flops(scenario, cell)
    row: dict = {"scenario": scenario.name, "kind": scenario.kind, "cell": cell, "T": scenario.T, "B": scenario.B,
                 "I": scenario.I, "H": scenario.H, "unit": scenario.unit, "flops": f,
                 "results": {}, "not_measured": {}, "not_applicable": [], "agree": True}
    if isinstance(p, VariantProblem):
        o = p.options
        row["variant"] = {"family": o.family, "reset_after": o.reset_after, "proj_size": o.proj_size,
                          "peepholes": o.peepholes, "clip": o.clip, "input_forget": o.input_forget,
                          "activations": [repr(a) for a in o.activations]}
    impls: dict = {}
    diffs: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        impls["rnnfast"] = _build("rnnfast", None, p, threads)
        want = impls["rnnfast"].check()
        diffs["rnnfast"] = (0.0, 0.0)
        for key in active:
            if key == "rnnfast":
                continue
            reduced_precision = IMPLEMENTATIONS[key].precision != "float32"
            try:
                impl = _build(key, found.get(IMPLEMENTATIONS[key].framework), p, threads)
                # A reduced-precision row compares the output (every step's) with float32's.
                diffs[key] = compare(impl.check(), want[:1] if reduced_precision else want)
                impls[key] = impl
            except NotMeasured as exc:
                row["not_measured"][key] = str(exc)
                if isinstance(exc, NotApplicable):
                    row["not_applicable"].append(key)
            except Exception as exc:
                if not reduced_precision:
                    raise
                # The newer implementations (rnnfast's own in development, peers of other versions) may fail
                # to build or run: the row says so and the others are measured.
                row["not_measured"][key] = f"failed: {type(exc).__name__}: {exc}"
        keys = list(impls)
        min_seconds = 0.0 if tiny else (5e-4 if quick else 1e-3)
        samples = time_interleaved([impls[k].fn for k in keys], repeat, min_seconds=min_seconds,
                                   settle=0.0 if tiny else SETTLE_SECONDS)  # --tiny is the smoke test
    scale = 1e6 if scenario.kind == "stream" else 1e3
    for key, s in zip(keys, samples):
        seconds = statistics.median(s) / impls[key].steps
        gflops = f / seconds / 1e9
        # The spread of the samples, in the unit of "time": the interquartile range (what the tables and the
        # chart's error bars show) and the extremes.
        per_step = np.asarray(s) / impls[key].steps * scale
        q1, q3 = (float(v) for v in np.percentile(per_step, [25, 75]))
        row["results"][key] = {
            "seconds": seconds, "time": seconds * scale, "gflops": gflops,
            "max_abs_diff": diffs[key][0], "max_rel_diff": diffs[key][1],
            "samples": len(s), "spread": (max(s) - min(s)) / impls[key].steps * scale,
            "time_q1": q1, "time_q3": q3, "time_min": float(per_step.min()), "time_max": float(per_step.max()),
        }
    ours = row["results"]["rnnfast"]["seconds"]
    for key, r in row["results"].items():
        r["precision"] = IMPLEMENTATIONS[key].precision
        r["speedup"] = r["seconds"] / ours  # how many times faster rnnfast (float32) is than this implementation
        tolerance = AGREEMENT_TOLERANCE if r["precision"] == "float32" else reduced.TOLERANCE
        r["agrees"] = r["max_rel_diff"] <= tolerance
        row["agree"] &= r["agrees"]
    ratios(row)
    write_row(row, found, write)
    return row


def ratios(row: dict) -> None:
    """The row's fastest peer (of any precision) and, for each rnnfast precision, how many times faster it is
    than that peer (``vs_fastest_peer``), than the fastest peer of its own precision (``vs_same_precision_peer``)
    and than rnnfast float32 (``vs_float32``); for reduced precisions also the error of rnnfast int8 over ONNX
    Runtime int8's (``int8_error_vs_onnxruntime``, the issue's accuracy criterion: at most 1)."""
    results = row["results"]

    def fastest(keys):
        keys = list(keys)
        return min(keys, key=lambda k: results[k]["seconds"]) if keys else None

    peers = [k for k in results if IMPLEMENTATIONS[k].framework != "rnnfast"]
    row["fastest_peer"] = fastest(peers)
    for key, r in results.items():
        if IMPLEMENTATIONS[key].framework != "rnnfast":
            continue
        best = row["fastest_peer"]
        r["vs_fastest_peer"] = results[best]["seconds"] / r["seconds"] if best else None
        same = fastest(k for k in peers if IMPLEMENTATIONS[k].precision == r["precision"])
        r["same_precision_peer"] = same
        r["vs_same_precision_peer"] = results[same]["seconds"] / r["seconds"] if same else None
        r["vs_float32"] = results["rnnfast"]["seconds"] / r["seconds"]
    if "rnnfast_int8" in results and "onnxruntime_int8" in results:
        theirs = results["onnxruntime_int8"]["max_abs_diff"]
        ours = results["rnnfast_int8"]["max_abs_diff"]
        row["int8_error_vs_onnxruntime"] = ours / theirs if theirs > 0 else None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
