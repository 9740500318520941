"""The output of a run: the progress line of a row, the Markdown tables and summary, the chart.

Every time is the median of the samples with their interquartile range in brackets (``0.352 [0.349-0.361]``),
and the chart's bars have error bars: the speed-ups' range over those quartiles."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .peers import IMPLEMENTATIONS, implementation_label
from .scenarios import CELLS, SCENARIOS, TINY_SCENARIOS, cell_label


def _label(key: str, found: dict) -> str:
    framework = IMPLEMENTATIONS[key].framework
    return implementation_label(key, found[framework].label if framework in found else None)


def write_row(row: dict, found: dict, write) -> None:
    title = f"{row['scenario']:6s} {cell_label(row['cell']):8s}"
    parts = []
    for key, r in row["results"].items():
        flag = "" if r["agrees"] else " DISAGREES"
        if key == "rnnfast":
            parts.append(f"rnnfast {_fmt_timed(r)} {row['unit']} ({r['gflops']:.1f} GFLOP/s)")
        elif IMPLEMENTATIONS[key].framework == "rnnfast":
            parts.append(f"{_label(key, found)} {_fmt_timed(r)} ({_fmt_ratio(r['vs_fastest_peer'])} the "
                         f"fastest peer, {_fmt_ratio(r['vs_float32'])} float32, |err| {r['max_abs_diff']:.1e}{flag})")
        else:
            what = "diff" if r["precision"] == "float32" else "err"
            parts.append(f"{_label(key, found)} {_fmt_timed(r)} ({r['speedup']:.2f}x, "
                         f"|{what}| {r['max_abs_diff']:.1e}{flag})")
    write(f"  {title} " + "; ".join(parts))


def _fmt_ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _fmt_time(t: float) -> str:
    if t >= 100:
        return f"{t:.0f}"
    if t >= 10:
        return f"{t:.1f}"
    if t >= 1:
        return f"{t:.2f}"
    return f"{t:.3f}"


def _fmt_timed(r: dict) -> str:
    """A result's median time with the interquartile range of its samples, ``0.352 [0.349-0.361]`` (the median
    alone for a result written before the quartiles were)."""
    if "time_q1" not in r:
        return _fmt_time(r["time"])
    return f"{_fmt_time(r['time'])} [{_fmt_time(r['time_q1'])}-{_fmt_time(r['time_q3'])}]"


def speedup_range(r: dict, ours: dict) -> tuple:
    """(low, high) of rnnfast's speed-up over the result ``r`` across the samples' quartiles: the peer's first
    quartile over rnnfast's third, and its third over rnnfast's first; ``(speedup, speedup)`` for a result
    written without quartiles."""
    if "time_q1" not in r or "time_q1" not in ours:
        return r["speedup"], r["speedup"]
    return r["time_q1"] / ours["time_q3"], r["time_q3"] / ours["time_q1"]


def _implementations(result: dict) -> dict:
    """key -> {label, framework, precision} of the run's implementations (a result written before there were
    several precisions: its available peers, in float32)."""
    if "implementations" in result:
        return result["implementations"]
    impls = {"rnnfast": {"label": "rnnfast", "framework": "rnnfast", "precision": "float32"}}
    for k, p in result["peers"].items():
        if p["available"]:
            impls[k] = {"label": p["label"], "framework": k, "precision": "float32"}
    return impls


def _peer_keys(result: dict) -> list:
    """The peers' implementation keys of the run (every precision), in the output's order."""
    return [k for k, i in _implementations(result).items() if i["framework"] != "rnnfast"]


def _cell(row: dict, key: str) -> str:
    """What a table says of an implementation that has no result in a row: n/a (it has no such operator) or
    n/m (not measured; the summary says why)."""
    return "n/a" if key in row.get("not_applicable", ()) else "n/m"


def markdown_table(result: dict) -> str:
    """The README's table: one row per (scenario, cell); rnnfast's (float32) time, GFLOP/s and fraction of the
    sgemm peak, then each peer's time (every precision) with rnnfast float32's speed-up over it in
    parentheses."""
    impls = _implementations(result)
    peers = _peer_keys(result)
    labels = [impls[k]["label"] for k in peers]
    head = ["scenario", "cell", "rnnfast", "GFLOP/s", "% of sgemm peak"] + labels
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    table = TINY_SCENARIOS if result.get("tiny") else SCENARIOS
    for row in result["rows"]:
        scenario = table[row["scenario"]]
        ours = row["results"]["rnnfast"]
        unit = " us/step" if scenario.kind == "stream" else " ms"
        cells = [f"{scenario.title} ({scenario.shape_text()})", cell_label(row["cell"]),
                 _fmt_timed(ours) + unit, f"{ours['gflops']:.1f}", f"{100 * ours['peak_fraction']:.0f}%"]
        for key in peers:
            r = row["results"].get(key)
            if r is None:
                cells.append(_cell(row, key))
            else:
                flag = " (DISAGREES)" if not r["agrees"] else ""
                cells.append(f"{_fmt_timed(r)} ({r['speedup']:.1f}x){flag}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _reduced_keys(result: dict) -> list:
    return [k for k, i in _implementations(result).items() if i["precision"] != "float32"]


def reduced_table(result: dict) -> str:
    """One row per inference or streaming (scenario, cell) (not the cell variants'): the fastest peer of any
    precision, and for rnnfast in each precision its time and how many times faster it is than that peer, than the
    fastest peer of its own precision, and than rnnfast float32 (below 1: slower). Empty without reduced
    precisions."""
    impls = _implementations(result)
    ours = [k for k in ("rnnfast_int8", "rnnfast_bf16") if k in impls]
    if not ours:
        return ""
    head = ["scenario", "cell", "fastest peer", "rnnfast float32"]
    for key in ours:
        p = impls[key]["precision"]
        head += [impls[key]["label"], "x fastest peer", f"x fastest {p} peer", "x float32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    table = TINY_SCENARIOS if result.get("tiny") else SCENARIOS
    for row in result["rows"]:
        scenario = table[row["scenario"]]
        if scenario.kind == "train" or "variant" in row:  # no reduced precision for either
            continue
        unit = " us/step" if scenario.kind == "stream" else " ms"
        best = row.get("fastest_peer")
        cells = [f"{scenario.title} ({scenario.shape_text()})", cell_label(row["cell"]),
                 f"{impls[best]['label']} {_fmt_timed(row['results'][best])}{unit}" if best else "none",
                 _fmt_timed(row["results"]["rnnfast"]) + unit]
        for key in ours:
            r = row["results"].get(key)
            if r is None:
                cells += [_cell(row, key), "", "", ""]
                continue
            same = r.get("same_precision_peer")
            flag = " (DISAGREES)" if not r["agrees"] else ""
            cells += [_fmt_timed(r) + unit + flag, _fmt_ratio(r["vs_fastest_peer"]),
                      (f"{_fmt_ratio(r['vs_same_precision_peer'])} ({impls[same]['label']})" if same else "none"),
                      _fmt_ratio(r["vs_float32"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_table(result: dict) -> str:
    """One row per inference or streaming (scenario, cell) (not the cell variants'): each reduced-precision
    implementation's largest absolute difference of the output (every step) from rnnfast float32's on the same
    input and weights, and
    rnnfast int8's error over ONNX Runtime int8's. Empty without reduced precisions."""
    impls = _implementations(result)
    keys = _reduced_keys(result)
    if not keys:
        return ""
    keys = [k for k in keys if impls[k]["precision"] == "int8"] + [k for k in keys if impls[k]["precision"] != "int8"]
    both = "rnnfast_int8" in keys and "onnxruntime_int8" in keys
    head = ["scenario", "cell"] + [impls[k]["label"] for k in keys] + (
        ["rnnfast int8 / ONNX Runtime int8"] if both else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    table = TINY_SCENARIOS if result.get("tiny") else SCENARIOS
    for row in result["rows"]:
        scenario = table[row["scenario"]]
        if scenario.kind == "train" or "variant" in row:  # no reduced precision for either
            continue
        cells = [f"{scenario.title} ({scenario.shape_text()})", cell_label(row["cell"])]
        for key in keys:
            r = row["results"].get(key)
            cells.append(_cell(row, key) if r is None else
                         f"{r['max_abs_diff']:.1e}" + ("" if r["agrees"] else " (DISAGREES)"))
        if both:
            ratio = row.get("int8_error_vs_onnxruntime")
            cells.append("" if ratio is None else f"{ratio:.2f}" + (" (worse)" if ratio > 1 else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(result: dict) -> str:
    peak = result["sgemm_peak"]
    load = result.get("load_average")
    lines = [
        "",
        f"rnnfast {result['rnnfast']} ({result['isa']}), {result['threads']} threads for every framework; "
        f"{_precisions_text(result)}; median of {result['repeat']} interleaved samples [their interquartile "
        f"range]; sgemm peak "
        f"{peak['gflops']:.0f} GFLOP/s (NumPy, {peak['n']}^3, best of the start and the end of the run)"
        + (f"; load average {load[0]:.2f} at the start" if load else "")
        + (f", {result['load_average_end'][0]:.2f} at the end" if result.get("load_average_end") else ""),
        "Peer columns: time, and in parentheses how many times faster rnnfast (float32) is (below 1: slower). "
        "n/m: not measured; n/a: the peer has no such operator.",
        "",
        markdown_table(result),
    ]
    reduced = reduced_table(result)
    if reduced:
        lines += ["", "Reduced precision (weights int8 or bf16; inputs, outputs and states float32): how many times "
                      "faster rnnfast in each precision is than the fastest peer of any precision, than the fastest "
                      "peer of its precision, and than rnnfast float32 (below 1: slower).", "", reduced]
        lines += ["", "Accuracy: largest absolute difference of the output (every step) from rnnfast float32's on "
                      "the same input and weights (float32 peers agree with it to 1e-5).", "",
                  accuracy_table(result)]
    impls = _implementations(result)
    missing = [f"{p['label']}: {p['reason']}" for p in result["peers"].values() if not p["available"]]
    missing += [f"rnnfast {dtype}: {s['reason']}" for dtype, s in result.get("reduced", {}).items()
                if not s["available"]]
    missing += [f"{k}: {v}" for k, v in result["not_measured"].items()]
    absent = {f"rnnfast_{dtype}" for dtype, s in result.get("reduced", {}).items() if not s["available"]}
    by_reason: dict = {}
    for row in result["rows"]:
        for k, why in row["not_measured"].items():
            if k not in absent:  # said once above
                by_reason.setdefault(why, set()).add(impls[k]["label"] if k in impls else k)
    notes = sorted(f"{', '.join(sorted(labels))}: {why}" for why, labels in by_reason.items())
    if missing or notes:
        lines += ["", "Not measured: " + "; ".join(missing + notes) + "."]
    if result["overhead"]:
        lines += ["", "Streaming call overhead (us per call, loop cost subtracted):",
                  "| cell | step(x_t, out=y) | _core.Stepper.run | Python wrapper | pybind11 call, 2 arrays | "
                  "pybind11 no-op |", "|---|---:|---:|---:|---:|---:|"]
        for o in result["overhead"]:
            lines.append(f"| {CELLS[o['cell']]} | {o['step_us']:.2f} | {o['run_us']:.2f} | {o['wrapper_us']:.2f} "
                         f"| {o['array_call_us']:.2f} | {o['noop_call_us']:.2f} |")
    if not result["agree"]:
        lines += ["", "SOME IMPLEMENTATIONS DISAGREE WITH RNNFAST (marked above)."]
    return "\n".join(lines)


def _precisions_text(result: dict) -> str:
    precisions = result.get("precisions", ["float32"])
    if precisions == ["float32"]:
        return "float32"
    return "weights in " + ", ".join(precisions) + " (rnnfast float32 always)"


#: What ``--plot`` needs, and the extra that installs it.
PLOT_EXTRA = "plot"


def matplotlib_missing() -> Optional[str]:
    """None if matplotlib can be imported, else why not (what --plot says before the run starts)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        return f"{exc}"
    return None


def plot(result: dict, path: str) -> bool:
    """A PNG of rnnfast's (float32) speed-up over each peer per row (log scale), each bar with an error bar from
    the quartiles of both implementations' samples (:func:`speedup_range`). False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    peers = _peer_keys(result)
    labels = _implementations(result)
    rows = result["rows"]
    names = [f"{r['scenario']} {cell_label(r['cell'])}" for r in rows]
    fig, ax = plt.subplots(figsize=(8, len(rows) * (0.12 * len(peers) + 0.2) + 1.4))
    height = 0.8 / max(1, len(peers))
    for j, key in enumerate(peers):
        ys = [i + (j - (len(peers) - 1) / 2) * height for i in range(len(rows))]
        vals, below, above = [], [], []
        for r in rows:
            res = r["results"].get(key)
            if res is None:
                vals.append(np.nan)
                below.append(0.0)
                above.append(0.0)
                continue
            low, high = speedup_range(res, r["results"]["rnnfast"])
            vals.append(res["speedup"])
            # The range holds the median's ratio but for rounding; clamped so that an error bar is never negative.
            below.append(max(0.0, res["speedup"] - low))
            above.append(max(0.0, high - res["speedup"]))
        ax.barh(ys, vals, height=height, label=labels[key]["label"], xerr=[below, above],
                error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "black"})
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("rnnfast speed-up over the peer (x, log scale; right of 1: rnnfast faster)\n"
                  "error bars: the speed-up between both implementations' sample quartiles")
    threads = f"{result['threads']} thread" + ("s" if result["threads"] != 1 else "")
    ax.set_title(f"rnnfast {result['rnnfast']}, float32, {threads}, {_short_cpu(result)}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _short_cpu(result: dict) -> str:
    return f"{result['machine']['cpus']} CPUs ({result['isa']})"
