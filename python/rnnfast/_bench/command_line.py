"""The options of ``rnnfast bench`` and the command itself: run, print the table, write JSON and the chart."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from .measure import run
from .peers import PEER_ALIASES, PEERS
from .reduced import PRECISION_ALIASES, PRECISIONS
from .report import PLOT_EXTRA, matplotlib_missing, plot, summary
from .scenarios import CELL_ALIASES, CELLS, SCENARIOS, VARIANT_CELLS

DESCRIPTION = ("Time rnnfast against the NumPy reference and the installed frameworks (PyTorch, ONNX Runtime, "
               "Keras, OpenVINO, LiteRT) on identical weights: six scenarios (stream, edge, small, batch, large, "
               "train) x three cells (RNN tanh, LSTM, GRU), the implementations interleaved; on request also "
               "the cell variants (--cells variants) against the peers that compute each. Weights in float32 "
               "and, for inference, in reduced precision: rnnfast.quantize int8 and bf16 against ONNX Runtime's "
               "dynamic quantization (int8), OpenVINO bf16 and LiteRT's dynamic range (int8). Prints Markdown "
               "tables of times, GFLOP/s, the fraction of NumPy's sgemm rate, rnnfast's speed-up over each peer "
               "and, for reduced precision, the speed-ups over the fastest peer and each output's largest error "
               "against float32; every time with the interquartile range of its samples. "
               # Measured once (not repeatable here: the machine was shared), kept as a guide; the ETA is live.
               "How long a run takes: --quick took 9.5 minutes (the 18 rows and 3 streaming-overhead "
               "measurements, about 27 s each), measured once on 2 CPUs that other work was using too, with every "
               "peer but OpenVINO and LiteRT installed; the full run times 3x the samples (15, not 5): an estimated "
               "16 to 20 minutes there. Fewer --peers, --cells, --scenarios or --precision shorten it. While it "
               "runs, stderr shows a row counter and the estimated time left.")


def _choices(text: str, aliases: dict, what: str) -> list:
    """The comma-separated ``text`` as canonical names; an alias may stand for a tuple of them (``variants``)."""
    out = []
    for item in (s.strip().lower() for s in text.split(",")):
        if not item:
            continue
        if item not in aliases:
            names = {v for v in aliases.values() if isinstance(v, str)}
            names |= {k for k, v in aliases.items() if isinstance(v, tuple)}
            raise argparse.ArgumentTypeError(f"unknown {what} {item!r}: choose from {', '.join(sorted(names))}")
        target = aliases[item]
        for name in target if isinstance(target, tuple) else (target,):
            if name not in out:
                out.append(name)
    if not out:
        raise argparse.ArgumentTypeError(f"no {what} given")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rnnfast bench``."""
    parser.add_argument("--cells", type=lambda s: _choices(s, CELL_ALIASES, "cell"), default=list(CELLS),
                        metavar="LIST", help="comma-separated cells: rnn_tanh, lstm, gru (default: these three), "
                        "and the cell variants, each timed against the peers that compute it (float32): "
                        "gru_reset_before (the reset gate before the product, ONNX's linear_before_reset=0; peers "
                        "ONNX Runtime and Keras reset_after=False), lstm_proj (a projection to H/2; peer PyTorch "
                        "proj_size), lstm_peepholes and lstm_clip (gates clipped to [-1, 1]) (peer ONNX Runtime); "
                        "'variants' for all "
                        f"{len(VARIANT_CELLS)}. rnnfast runs a variant through rnnfast.functional.variant_forward "
                        "(streaming: one call per step)")
    parser.add_argument("--scenarios", type=lambda s: _choices(s, {k: k for k in SCENARIOS}, "scenario"),
                        default=list(SCENARIOS), metavar="LIST",
                        help="comma-separated scenarios: " + ", ".join(SCENARIOS) + " (default all)")
    parser.add_argument("--peers", type=lambda s: _choices(s, PEER_ALIASES, "peer"), default=None,
                        metavar="LIST", help="comma-separated peers: " + ", ".join(PEERS)
                        + " (default every one that is installed)")
    parser.add_argument("--precision", type=lambda s: _choices(s, PRECISION_ALIASES, "precision"),
                        default=list(PRECISIONS), metavar="LIST",
                        help="comma-separated weight precisions: " + ", ".join(PRECISIONS) + " (default all; "
                        "rnnfast float32 is always measured, as every comparison's reference)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every framework (default rnnfast's default: the usable CPUs)")
    parser.add_argument("--repeat", type=int, default=None, help="timed samples per implementation (default 15; "
                        "5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer samples and a smaller sgemm peak run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--plot", metavar="PATH", help="also draw the speed-ups, with error bars over the samples' "
                        f"quartiles, as a PNG (needs matplotlib: pip install 'rnnfast[{PLOT_EXTRA}]')")
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
    if args.plot is not None:
        missing = matplotlib_missing()  # now, not after a run of many minutes
        if missing is not None:
            return error(f"--plot needs matplotlib, which cannot be imported ({missing}): install it with "
                         f"pip install 'rnnfast[{PLOT_EXTRA}]' (or pip install matplotlib)")
    # The results to stdout (what a user keeps), the row counter and the time left to stderr.
    result = run(args.cells, args.scenarios, peers=args.peers, threads=args.threads, repeat=repeat,
                 quick=args.quick, tiny=args.tiny, seed=args.seed, precisions=args.precision,
                 write=lambda s: print(s, flush=True), progress=lambda s: print(s, file=sys.stderr, flush=True))
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
    if args.precision != list(PRECISIONS):
        parts.append("--precision " + ",".join(args.precision))
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
