"""Speed of two builds of rnnfast against each other: the same calls timed on each, interleaved, as ratios
new / old (below 1: the new build is faster). Made to compare the wheels' toolchain (zig's clang and libc++,
cmake/zig-toolchain.cmake) with the default build (the system's g++ and libstdc++): docs/design.md, section 10.

    python benchmarks/toolchain_speed.py --old /tmp/old-site --new /tmp/new-site [--rounds 9] [--isa avx2]

``--old`` and ``--new`` are directories from which ``import rnnfast`` gives that build: an unpacked wheel
(``python -m zipfile -e rnnfast-*.whl DIR``) or a venv's site-packages. One module cannot be imported twice in
a process, so each build runs in a worker process of its own; the workers take turns (one waits while the
other times), the order alternating every round, so that both see the same machine. Each round, each case
is timed as ``--blocks`` blocks of the same number of calls (chosen so that a block takes about 30 ms) and
its median is that round's time; a round's ratio is new / old, and the report gives each case's median
ratio over the rounds and its range (smallest, largest). ``--isa`` sets RNNFAST_ISA in both workers.

The cases are the README's benchmark shapes (rnnfast bench): streaming one step per call at batch 1
(I=64, H=128, per step; int8 and bf16 steppers for the LSTM too), inference at B=8 (T=100, I=128, H=256)
and B=64 (T=50, I=256, H=512), and training, forward then backward (T=50, B=32, I=128, H=256), for RNN
(tanh), LSTM and GRU, float32, on the default thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CELLS = ("rnn_tanh", "lstm", "gru")
SCENARIOS = {  # name: (kind, T, B, I, H)
    "stream B=1": ("stream", 100, 1, 64, 128),
    "infer B=8": ("infer", 100, 8, 128, 256),
    "infer B=64": ("infer", 50, 64, 256, 512),
    "train B=32": ("train", 50, 32, 128, 256),
}
REDUCED = (("lstm", "int8"), ("lstm", "bf16"))  # streaming only, as the reduced-precision layers infer only


def case_names() -> list:
    names = [f"{cell} {scenario}" for scenario in SCENARIOS for cell in CELLS]
    return names + [f"{cell} {dtype} stream B=1" for cell, dtype in REDUCED]


# ------------------------------------------------------------------------------------------------
# The worker: imports one build and times calls on request (one JSON line in, one out).
# ------------------------------------------------------------------------------------------------


def make_case(rnnfast, np, name: str):
    """A function doing one unit of the case's work (one step for streaming, one call otherwise)."""
    parts = name.split(" ", 1)
    cell, rest = parts[0], parts[1]
    dtype = None
    if rest.split(" ")[0] in ("int8", "bf16"):
        dtype, rest = rest.split(" ", 1)
    kind, T, B, I, H = SCENARIOS[rest]
    cls = {"rnn_tanh": rnnfast.RNN, "lstm": rnnfast.LSTM, "gru": rnnfast.GRU}[cell]
    model = cls(I, H, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    if kind == "stream":
        if dtype is not None:
            model = rnnfast.quantize(model, dtype)
        stepper = model.stepper(batch=B)
        out = np.empty((B, H), np.float32)
        position = [0]

        def step():
            stepper.step(x[position[0]], out=out)
            position[0] = (position[0] + 1) % T
        return step
    if kind == "infer":
        return lambda: model(x)

    def train():
        y, _ = model.forward(x, training=True)
        model.backward(np.ones_like(y))
    return train


def worker(site: str) -> None:
    sys.path.insert(0, site)
    import numpy as np
    import rnnfast

    if not os.path.abspath(rnnfast.__file__).startswith(os.path.abspath(site)):
        raise SystemExit(f"rnnfast imported from {rnnfast.__file__}, not from {site}")
    cases = {name: make_case(rnnfast, np, name) for name in case_names()}
    print(json.dumps({"isa": rnnfast.isa(), "int8": rnnfast.isa("int8"), "bf16": rnnfast.isa("bf16"),
                      "threads": rnnfast.get_num_threads(), "file": rnnfast._core.__file__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        f = cases[request["case"]]
        calls = request["calls"]
        if calls == 0:  # calibration: calls for a block of about 30 ms
            for _ in range(3):
                f()
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < 0.03:
                f()
                n += 1
            print(json.dumps({"calls": n}), flush=True)
            continue
        times = []
        for _ in range(request["blocks"]):
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            times.append((time.perf_counter() - t0) / calls)
        print(json.dumps({"seconds": statistics.median(times)}), flush=True)


# ------------------------------------------------------------------------------------------------
# The controller.
# ------------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, site: str, env: dict):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", site], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("a worker stopped (its error is above)")
        return json.loads(line)

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", help="directory holding the old build's rnnfast package")
    parser.add_argument("--new", help="directory holding the new build's rnnfast package")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--isa", help="RNNFAST_ISA for both builds (default: the widest the CPU has)")
    parser.add_argument("--cases", help="comma-separated substrings: only the cases whose name has one")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return 0
    if not (args.old and args.new):
        parser.error("--old and --new are required")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if args.isa:
        env["RNNFAST_ISA"] = args.isa
    old, new = Worker(args.old, env), Worker(args.new, env)
    for label, w in (("old", old), ("new", new)):
        print(f"{label}: {w.info['file']}\n     isa {w.info['isa']} (int8 {w.info['int8']}, bf16 {w.info['bf16']}), "
              f"{w.info['threads']} threads")
    if any(old.info[k] != new.info[k] for k in ("isa", "int8", "bf16", "threads")):
        print("the two builds do not run the same kernels: their times are not comparable", file=sys.stderr)
        return 1
    names = case_names()
    if args.cases:
        names = [n for n in names if any(s in n for s in args.cases.split(","))]
    calls = {name: old.ask(case=name, calls=0)["calls"] for name in names}
    times: dict = {name: ([], []) for name in names}
    for r in range(args.rounds):
        order = ((0, old), (1, new)) if r % 2 == 0 else ((1, new), (0, old))
        for name in names:
            for i, w in order:
                times[name][i].append(w.ask(case=name, calls=calls[name], blocks=args.blocks)["seconds"])
    old.close()
    new.close()
    print(f"{args.rounds} rounds of {args.blocks} blocks each; per call (streaming: per step), medians over the rounds")
    print(f"{'case':30s} {'old':>10s} {'new':>10s}   {'new/old':>7s}  (range)")
    all_ratios = []
    for name in names:
        o, n = times[name]
        ratios = [b / a for a, b in zip(o, n)]
        all_ratios.append(statistics.median(ratios))
        print(f"{name:30s} {format_time(statistics.median(o)):>10s} {format_time(statistics.median(n)):>10s}   "
              f"{statistics.median(ratios):7.3f}  ({min(ratios):.3f}-{max(ratios):.3f})")
    geo = statistics.geometric_mean(all_ratios)
    print(f"geometric mean of the median ratios: {geo:.3f}")
    return 0


def format_time(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


if __name__ == "__main__":
    sys.exit(main())
