"""The output of a run: the progress line of a row, the Markdown table and summary, the chart."""

from __future__ import annotations

import numpy as np

from .scenarios import CELLS, SCENARIOS, TINY_SCENARIOS


def _label(key: str, found: dict) -> str:
    return "rnnfast" if key == "rnnfast" else found[key].label


def write_row(row: dict, found: dict, write) -> None:
    title = f"{row['scenario']:6s} {CELLS[row['cell']]:8s}"
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
        cells = [f"{scenario.title} ({scenario.shape_text()})", CELLS[row["cell"]],
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
            lines.append(f"| {CELLS[o['cell']]} | {o['step_us']:.2f} | {o['run_us']:.2f} | {o['wrapper_us']:.2f} "
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
    names = [f"{r['scenario']} {CELLS[r['cell']]}" for r in rows]
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
