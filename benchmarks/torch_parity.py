"""How far rnnfast's layers are from PyTorch's, for outputs, final states and every gradient.

Run ``python benchmarks/torch_parity.py`` (with ``python/`` on the path or rnnfast installed, and torch
installed). For each cell (RNN tanh, RNN relu, LSTM, GRU), each layer configuration in :data:`CONFIGS`
and each dtype it builds a ``torch.nn`` module with a fixed seed, loads its ``state_dict`` into the
matching rnnfast layer, runs both forward on the same input and initial state, then backpropagates the
same random ``d_out`` and ``d_state`` (torch: autograd of ``sum(out*d_out) + sum(h_n*d_h) [+ sum(c_n*d_c)]``,
rnnfast: ``backward``), and prints the largest absolute difference and the largest difference relative to
the magnitude of the PyTorch tensor (``max|ours - torch| / max|torch|``).

``tests/interop/test_torch_parity.py`` uses :func:`parity_case` and :func:`max_diffs` from this file, so the
table and the tests measure the same thing.

Options: ``--backend reference`` runs the layers on :mod:`rnnfast.reference` instead of the native
functional ops; ``--per-config`` prints one row per configuration instead of one per cell and dtype.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NamedTuple, Optional

import numpy as np

try:  # running from a checkout without installing: python benchmarks/torch_parity.py
    import rnnfast.layers  # noqa: F401
except ImportError:  # pragma: no cover - depends on how the script is started
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import rnnfast._rnn_base as rnn_base  # noqa: E402
import rnnfast.layers as layers  # noqa: E402

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
DTYPES = ("float32", "float64")


class Config(NamedTuple):
    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    bias: bool = True
    unbatched: bool = False

    def label(self) -> str:
        parts = [f"L{self.num_layers}", "bi" if self.bidirectional else "uni"]
        if self.batch_first:
            parts.append("batch_first")
        if not self.bias:
            parts.append("no_bias")
        if self.unbatched:
            parts.append("unbatched")
        return "-".join(parts)


#: Layer configurations compared for every cell and dtype.
CONFIGS: tuple[Config, ...] = (
    Config(1),
    Config(1, bidirectional=True),
    Config(2),
    Config(2, bidirectional=True),
    Config(3, batch_first=True),
    Config(3, bidirectional=True, batch_first=True),
    Config(1, bias=False),
    Config(2, bidirectional=True, bias=False),
    Config(1, unbatched=True),
    Config(2, bidirectional=True, unbatched=True),
    Config(2, bidirectional=True, batch_first=True, unbatched=True),
)

#: Problem sizes: sequence length, batch, input and hidden size (not multiples of any vector width).
SIZES = dict(T=7, B=3, I=5, H=6)


class Pair(NamedTuple):
    """One compared tensor: its name, rnnfast's value and PyTorch's."""

    name: str
    ours: np.ndarray
    ref: np.ndarray


def _torch_module(mode: str, cfg: Config, dtype: str, seed: int, I: int, H: int):
    import torch

    torch.manual_seed(seed)
    kw = dict(num_layers=cfg.num_layers, bias=cfg.bias, batch_first=cfg.batch_first,
              bidirectional=cfg.bidirectional)
    if mode.startswith("RNN"):
        mod = torch.nn.RNN(I, H, nonlinearity=mode[4:].lower(), **kw)
    else:
        mod = getattr(torch.nn, mode)(I, H, **kw)
    return mod.to(torch.float64 if dtype == "float64" else torch.float32)


def _our_layer(mode: str, cfg: Config, dtype: str, I: int, H: int):
    kw = dict(bias=cfg.bias, batch_first=cfg.batch_first, bidirectional=cfg.bidirectional, dtype=dtype)
    if mode.startswith("RNN"):
        return layers.RNN(I, H, cfg.num_layers, nonlinearity=mode[4:].lower(), **kw)
    return getattr(layers, mode)(I, H, cfg.num_layers, **kw)


def parity_case(mode: str, cfg: Config, dtype: str, seed: int = 0, sizes: Optional[dict] = None) -> list[Pair]:
    """Run one configuration in PyTorch and in rnnfast; return every compared tensor.

    Forward: ``out``, ``h_n`` (and ``c_n``). Backward, for random ``d_out`` and ``d_state``:
    ``grad x``, ``grad h0`` (and ``grad c0``) and ``grad <parameter name>`` for every parameter.
    """
    import torch

    s = dict(SIZES, **(sizes or {}))
    T, B, I, H = s["T"], s["B"], s["I"], s["H"]
    L, D = cfg.num_layers, 2 if cfg.bidirectional else 1
    lstm = mode == "LSTM"
    tdt = torch.float64 if dtype == "float64" else torch.float32

    mod = _torch_module(mode, cfg, dtype, seed, I, H)
    ours = _our_layer(mode, cfg, dtype, I, H)
    ours.load_state_dict({k: v.detach().numpy() for k, v in mod.state_dict().items()})

    rng = np.random.default_rng(seed + 1)
    if cfg.unbatched:
        x_shape, s_shape, o_shape = (T, I), (L * D, H), (T, D * H)
    elif cfg.batch_first:
        x_shape, s_shape, o_shape = (B, T, I), (L * D, B, H), (B, T, D * H)
    else:
        x_shape, s_shape, o_shape = (T, B, I), (L * D, B, H), (T, B, D * H)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = (0.5 * rng.standard_normal(s_shape)).astype(dtype)
    c0 = (0.5 * rng.standard_normal(s_shape)).astype(dtype) if lstm else None
    d_out = rng.standard_normal(o_shape).astype(dtype)
    d_h = rng.standard_normal(s_shape).astype(dtype)
    d_c = rng.standard_normal(s_shape).astype(dtype) if lstm else None

    # PyTorch
    tx = torch.tensor(x, dtype=tdt, requires_grad=True)
    th0 = torch.tensor(h0, dtype=tdt, requires_grad=True)
    if lstm:
        tc0 = torch.tensor(c0, dtype=tdt, requires_grad=True)
        tout, (thn, tcn) = mod(tx, (th0, tc0))
        loss = (tout * torch.from_numpy(d_out)).sum() + (thn * torch.from_numpy(d_h)).sum() \
            + (tcn * torch.from_numpy(d_c)).sum()
    else:
        tout, thn = mod(tx, th0)
        loss = (tout * torch.from_numpy(d_out)).sum() + (thn * torch.from_numpy(d_h)).sum()
    loss.backward()

    # rnnfast
    state = (h0, c0) if lstm else h0
    out, st = ours.forward(x, state, training=True)
    d_x, d_st = ours.backward(d_out, (d_h, d_c) if lstm else d_h)

    def np_(t):
        return t.detach().numpy()

    pairs = [Pair("out", out, np_(tout))]
    if lstm:
        pairs += [Pair("h_n", st[0], np_(thn)), Pair("c_n", st[1], np_(tcn))]
        pairs += [Pair("grad x", d_x, np_(tx.grad)), Pair("grad h0", d_st[0], np_(th0.grad)),
                  Pair("grad c0", d_st[1], np_(tc0.grad))]
    else:
        pairs += [Pair("h_n", st, np_(thn))]
        pairs += [Pair("grad x", d_x, np_(tx.grad)), Pair("grad h0", d_st, np_(th0.grad))]
    for name, p in mod.named_parameters():
        pairs.append(Pair("grad " + name, ours.grads[name], np_(p.grad)))
    return pairs


def max_diffs(pair: Pair) -> tuple[float, float]:
    """(largest absolute difference, that divided by the largest magnitude of PyTorch's tensor)."""
    if pair.ours.shape != pair.ref.shape:
        raise AssertionError(f"{pair.name}: shape {pair.ours.shape} differs from PyTorch's {pair.ref.shape}")
    ref = pair.ref.astype(np.float64)
    err = float(np.max(np.abs(pair.ours.astype(np.float64) - ref), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    return err, (err / scale if scale > 0 else err)


#: Tolerance per dtype of the magnitude-scaled difference, see :func:`within_tolerance`.
TOLERANCES = {"float32": 1e-5, "float64": 1e-10}


def within_tolerance(pair: Pair, dtype: str) -> bool:
    """max|ours - torch| <= tol * max(max|torch|, 1), tol from :data:`TOLERANCES`.

    The floor of 1 on the scale keeps tensors that are nearly zero (e.g. the gradient of a weight that
    barely matters) from demanding a precision below the rounding of the quantities they are made of.
    """
    err, _ = max_diffs(pair)
    scale = max(float(np.max(np.abs(pair.ref), initial=0.0)), 1.0)
    return err <= TOLERANCES[dtype] * scale


def _use_backend(name: str) -> None:
    if name == "reference":
        from rnnfast import reference

        rnn_base.functional_ops = lambda: reference


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("functional", "reference"), default="functional")
    ap.add_argument("--per-config", action="store_true", help="one row per configuration")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    _use_backend(args.backend)
    print(f"rnnfast layers ({args.backend} ops) vs torch {torch.__version__}; sizes {SIZES}; "
          f"{len(CONFIGS)} configs per cell: " + ", ".join(c.label() for c in CONFIGS))
    print("abs = max|ours - torch|, rel = abs / max|torch| per tensor; worst over tensors (and configs)\n")
    header = (f"{'cell':<9}{'dtype':<9}" + ("{:<34}".format("config") if args.per_config else "")
              + f"{'fwd abs':>10}{'fwd rel':>10}{'grad abs':>10}{'grad rel':>10}  worst grad tensor")
    print(header)
    print("-" * len(header))
    failures = 0
    for dtype in DTYPES:
        for mode in MODES:
            agg: dict[str, Any] = {"fa": 0.0, "fr": 0.0, "ga": 0.0, "gr": 0.0, "worst": ("", -1.0)}
            for cfg in CONFIGS:
                row = {"fa": 0.0, "fr": 0.0, "ga": 0.0, "gr": 0.0, "worst": ("", -1.0)}
                for pair in parity_case(mode, cfg, dtype, seed=args.seed):
                    a, r = max_diffs(pair)
                    failures += not within_tolerance(pair, dtype)
                    grad = pair.name.startswith("grad")
                    ka, kr = ("ga", "gr") if grad else ("fa", "fr")
                    row[ka], row[kr] = max(row[ka], a), max(row[kr], r)
                    if grad and r > row["worst"][1]:
                        row["worst"] = (pair.name, r)
                for key in ("fa", "fr", "ga", "gr"):
                    agg[key] = max(agg[key], row[key])
                if row["worst"][1] > agg["worst"][1]:
                    agg["worst"] = (f"{row['worst'][0]} [{cfg.label()}]", row["worst"][1])
                if args.per_config:
                    print(f"{mode:<9}{dtype:<9}{cfg.label():<34}{row['fa']:>10.2e}{row['fr']:>10.2e}"
                          f"{row['ga']:>10.2e}{row['gr']:>10.2e}  {row['worst'][0]}")
            if not args.per_config:
                print(f"{mode:<9}{dtype:<9}{agg['fa']:>10.2e}{agg['fr']:>10.2e}{agg['ga']:>10.2e}"
                      f"{agg['gr']:>10.2e}  {agg['worst'][0]}")
    tol = ", ".join(f"{k} {v:g}" for k, v in TOLERANCES.items())
    print(f"\n{failures} tensor(s) outside the test tolerance (abs <= tol * max(max|torch|, 1); {tol})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
