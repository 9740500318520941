"""The ``rnnfast`` command (also ``python -m rnnfast``).

``rnnfast check`` (the default): prints the version, the instruction set and thread count, checks the
native kernels against :mod:`rnnfast.reference` for every cell, forward and backward, in float32 and
float64, and times rnnfast against the reference on a standard LSTM shape. Exits 1 if a check fails.

``rnnfast demo`` lists the runnable examples of :mod:`rnnfast.examples`; ``rnnfast demo NAME [options]`` runs
one (see :mod:`rnnfast.demos`).

``rnnfast bench`` times rnnfast against the NumPy reference and the installed frameworks on identical
weights (see :mod:`rnnfast._bench`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import functional, reference
from rnnfast._cells import CELL_NAMES, cell_facts

__all__ = ["main", "build_parser", "self_check", "time_against_reference"]

# float64 agrees with the reference to round-off; float32 is compared with the float64 reference, and
# docs/design.md (section 3.9) asks for 1e-5 relative to the largest magnitude of each result.
_TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def _random_problem(cell: str, T: int, B: int, I: int, H: int, dtype, rng: np.random.Generator) -> dict:
    G = cell_facts(cell).gates
    scale = 1.0 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-scale, scale, size=shape).astype(dtype)

    p = {
        "x": rng.standard_normal((T, B, I)).astype(dtype),
        "h0": rng.standard_normal((B, H)).astype(dtype),
        "w_ih": uniform(G * H, I), "w_hh": uniform(G * H, H), "b_ih": uniform(G * H), "b_hh": uniform(G * H),
        "d_out": rng.standard_normal((T, B, H)).astype(dtype),
        "d_h_n": rng.standard_normal((B, H)).astype(dtype),
    }
    if cell_facts(cell).cell_state:
        p["c0"] = rng.standard_normal((B, H)).astype(dtype)
        p["d_c_n"] = rng.standard_normal((B, H)).astype(dtype)
    return p


def _run(ops, cell: str, p: dict, *, backward: bool = True) -> list[np.ndarray]:
    """Forward (training mode) and, if asked, backward of one cell through ``ops``; returns every result."""
    if cell == "lstm":
        out, h_n, c_n, ws = ops.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                     training=True)
        results = [out, h_n, c_n]
        if backward:
            results += ops.lstm_backward(p["d_out"], p["d_h_n"], p["d_c_n"], p["x"], p["h0"], p["c0"],
                                         p["w_ih"], p["w_hh"], out, ws)
        return results
    if cell == "gru":
        forward, backward_fn, kw = ops.gru, ops.gru_backward, {}
    else:
        forward, backward_fn = ops.rnn, ops.rnn_backward
        kw = {"nonlinearity": cell_facts(cell).nonlinearity}
    out, h_n, ws = forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], training=True, **kw)
    results = [out, h_n]
    if backward:
        results += backward_fn(p["d_out"], p["d_h_n"], p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws, **kw)
    return results


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
    return diff / max(scale, np.finfo(np.float64).tiny)


def self_check(rng: np.random.Generator, write: Callable[[str], None]) -> bool:
    """Native against the float64 reference for every cell and dtype; True when all agree."""
    ok = True
    T, B, I, H = 6, 3, 10, 17  # sizes off every vector width, so the kernels' tails run
    for cell in CELL_NAMES:
        problem64 = _random_problem(cell, T, B, I, H, np.float64, rng)
        want = _run(reference, cell, problem64)
        for dtype in (np.float32, np.float64):
            problem = {k: v.astype(dtype) for k, v in problem64.items()}
            got = _run(functional, cell, problem)
            err = max(_relative_error(g, w) for g, w in zip(got, want))
            passed = err <= _TOLERANCE[dtype]
            ok &= passed
            write(f"  {cell:9s} {np.dtype(dtype).name:8s} max relative error {err:8.1e}  "
                  f"{'ok' if passed else 'FAILED (tolerance %.0e)' % _TOLERANCE[dtype]}")
    return ok


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up: first-touch of buffers, lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_against_reference(shape: Sequence[int], repeat: int, rng: np.random.Generator,
                           write: Callable[[str], None]) -> None:
    T, B, I, H = shape
    p = _random_problem("lstm", T, B, I, H, np.float32, rng)
    write(f"LSTM T={T} B={B} I={I} H={H} float32, median of {repeat} runs, rnnfast vs rnnfast.reference (NumPy):")
    args = (p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    rows = [
        ("inference", lambda ops: ops.lstm(*args)),
        ("training (forward+backward)", lambda ops: _run(ops, "lstm", p)),
    ]
    for name, job in rows:
        # Interleave the two so that a noisy neighbour slows both alike.
        native_times, reference_times = [], []
        for _ in range(3):
            native_times.append(_median_seconds(lambda: job(functional), max(1, repeat // 3)))
            reference_times.append(_median_seconds(lambda: job(reference), max(1, repeat // 3)))
        native, ref = min(native_times), min(reference_times)
        write(f"  {name:28s} rnnfast {native * 1e3:8.2f} ms   reference {ref * 1e3:8.2f} ms   "
              f"speed-up {ref / native:5.2f}x")


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape takes four integers T,B,I,H, got {text!r}") from None
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--shape takes four positive integers T,B,I,H, got {text!r}")
    return values  # type: ignore[return-value]


def _command_check(args: argparse.Namespace) -> int:
    write = print
    write(f"rnnfast {rnnfast.__version__} (Python {platform.python_version()}, NumPy {np.__version__}, "
          f"{platform.machine()})")
    write(f"instruction set: {rnnfast.isa()} (int8: {rnnfast.isa('int8')}, bf16: {rnnfast.isa('bf16')})   "
          f"threads: {rnnfast.get_num_threads()}")
    rng = np.random.default_rng(args.seed)
    write("self-check against rnnfast.reference, forward and backward:")
    ok = self_check(rng, write)
    write("self-check " + ("passed" if ok else "FAILED"))
    if not args.no_timing:
        time_against_reference(args.shape, args.repeat, rng, write)
    return 0 if ok else 1


def _command_demo(args: argparse.Namespace) -> int:
    from rnnfast import demos

    if args.name is None:
        print(demos.listing())
        return 0
    try:
        demos.get(args.name)
    except KeyError as exc:
        print(f"rnnfast demo: {exc.args[0]}", file=sys.stderr)
        return 2
    return demos.run(args.name, args.demo_args)


def _version() -> str:
    from . import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnfast", description="Fast CPU recurrent networks.")
    parser.add_argument("--version", action="version", version=f"rnnfast {_version()}",
                        help="print rnnfast's version and exit")
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("check", help="version, instruction set, self-check and timing (the default)")
    check.add_argument("--shape", type=_parse_shape, default=(100, 8, 128, 256), metavar="T,B,I,H",
                       help="LSTM shape to time (default 100,8,128,256)")
    check.add_argument("--repeat", type=int, default=15, help="timed runs per implementation (default 15)")
    check.add_argument("--seed", type=int, default=0, help="seed of the random problems (default 0)")
    check.add_argument("--no-timing", action="store_true", help="run the self-check only")
    demo = sub.add_parser("demo", help="list the runnable examples, or run one: rnnfast demo NAME [options]",
                          description="Without NAME, list the demos; with it, run that example, passing it the "
                                      "options that follow (rnnfast demo NAME --help shows them).")
    demo.add_argument("name", nargs="?", help="the demo to run")
    demo.add_argument("demo_args", nargs=argparse.REMAINDER, metavar="...", help="options for the demo")
    from rnnfast._bench import command_line as bench_command_line

    bench = sub.add_parser("bench", help="time rnnfast (float32, int8, bf16) against NumPy, PyTorch, ONNX Runtime, "
                                         "Keras, OpenVINO and LiteRT (those installed) on identical weights",
                           description=bench_command_line.DESCRIPTION)
    bench_command_line.add_arguments(bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["check"] + argv
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _command_demo(args)
    if args.command == "bench":
        from rnnfast._bench import command_line as bench_command_line

        return bench_command_line.command(args)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    return _command_check(args)


if __name__ == "__main__":
    sys.exit(main())
