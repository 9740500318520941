"""Speed of a converted model in rnnfast against the framework it came from (inference, one shape).

For each framework that is importable (PyTorch, ONNX Runtime, Keras 3), builds an LSTM in that
framework, converts it with rnnfast.from_torch / from_onnx / from_keras, checks that the outputs agree,
and times both on the same input: repeated interleaved runs (source, rnnfast, source, ...) after a
warm-up, reporting the median of each and the ratio source / rnnfast.

    python benchmarks/interop_speed.py                       # the README's shape, every framework
    python benchmarks/interop_speed.py --threads 1 --cell gru --T 50 --B 1

``--threads`` sets the thread count of every framework (torch.set_num_threads, ONNX Runtime's
intra_op_num_threads, rnnfast.set_num_threads where it exists); by default each uses its own default.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from typing import Optional

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

import rnnfast  # noqa: E402


def _median_interleaved(fns: list, repeats: int, warmup: int = 3) -> list:
    for _ in range(warmup):
        for f in fns:
            f()
    times: list = [[] for _ in fns]
    for _ in range(repeats):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _set_rnnfast_threads(threads: Optional[int]) -> None:
    if threads is not None and hasattr(rnnfast, "set_num_threads"):
        rnnfast.set_num_threads(threads)


def _torch_case(args, x_tbi: np.ndarray):
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[args.cell]
    module = cls(args.I, args.H, num_layers=args.L).eval()
    model = rnnfast.from_torch(module)
    xt = torch.from_numpy(x_tbi)

    def source():
        with torch.no_grad():
            return module(xt)[0]

    return "PyTorch " + torch.__version__.split("+")[0], source, lambda: model(x_tbi)[0], \
        lambda: source().numpy(), model


def _onnx_case(args, x_tbi: np.ndarray):
    import onnxruntime as ort
    import torch

    torch.manual_seed(1)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[args.cell]
    module = cls(args.I, args.H, num_layers=args.L).eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x_tbi),), f, dynamo=False, opset_version=14,
                          input_names=["x"], output_names=["y"])
    data = f.getvalue()
    model = rnnfast.from_onnx(data)
    opts = ort.SessionOptions()
    if args.threads is not None:
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def source():
        return sess.run(["y"], {name: x_tbi})[0]

    return "ONNX Runtime " + ort.__version__, source, lambda: model(x_tbi)[0], source, model


def _keras_case(args, x_tbi: np.ndarray):
    import keras

    if args.L != 1:
        raise SystemExit("the Keras case converts one layer: use --L 1")
    x = np.ascontiguousarray(x_tbi.transpose(1, 0, 2))
    cls = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}[args.cell]
    layer = cls(args.H, return_sequences=True)
    layer(x[:1, :2])
    model = rnnfast.from_keras(layer)
    convert = keras.ops.convert_to_numpy

    def source():
        return layer(x, training=False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = convert(source())
    backend = keras.backend.backend()
    return f"Keras {keras.__version__} ({backend} backend)", source, lambda: model(x)[0], lambda: reference, model, x


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--B", type=int, default=8)
    p.add_argument("--I", type=int, default=128)
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--L", type=int, default=1)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--frameworks", default="torch,onnx,keras")
    args = p.parse_args(argv)
    _set_rnnfast_threads(args.threads)

    x = np.random.default_rng(0).standard_normal((args.T, args.B, args.I)).astype(np.float32)
    print(f"{args.cell.upper()} T={args.T} B={args.B} I={args.I} H={args.H} L={args.L} float32, inference; "
          f"rnnfast {rnnfast.__version__} isa={rnnfast.isa()} threads="
          f"{rnnfast.get_num_threads()}; median of {args.repeats} interleaved runs")
    print(f"{'source':40s} {'source ms':>10s} {'rnnfast ms':>11s} {'speed-up':>9s} {'max |diff|':>11s}")
    cases: dict = {"torch": _torch_case, "onnx": _onnx_case, "keras": _keras_case}
    for key in args.frameworks.split(","):
        try:
            res = cases[key](args, x)
        except ImportError as e:
            print(f"{key:40s} skipped: {e}")
            continue
        label, source, ours, reference_fn, model = res[:5]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ref = np.asarray(reference_fn())
            diff = float(np.max(np.abs(np.asarray(ours()) - ref)))
            t_src, t_ours = _median_interleaved([source, ours], args.repeats)
        print(f"{label:40s} {t_src * 1e3:10.2f} {t_ours * 1e3:11.2f} {t_src / t_ours:8.2f}x {diff:11.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
