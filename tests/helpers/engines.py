"""Problems shared by the engines' tests (tests/engines/): models of every kind rnnfast.dask and rnnfast.ray
run, their inputs, and a loss that kills the worker process computing it once (a worker lost mid-fit)."""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

import numpy as np

import rnnfast
from rnnfast import nn

T, N, I, H, C = 6, 23, 3, 8, 3


def _stack(batch_first: bool, dropout: float = 0.3) -> Any:
    return nn.Sequential(rnnfast.LSTM(I, H, num_layers=2, batch_first=batch_first, seed=4), nn.Dropout(dropout, seed=1),
                         nn.LastStep(), nn.Linear(H, C, seed=5))


# name -> (factory, batch_first, takes indices): every kind of model the engines' predict runs.
MODELS: dict[str, tuple[Callable[[], Any], bool, bool]] = {
    "lstm": (lambda: rnnfast.LSTM(I, H, seed=0), False, False),
    "gru-batch-first-bidirectional": (lambda: rnnfast.GRU(I, H, batch_first=True, bidirectional=True, seed=1), True,
                                      False),
    "rnn-float64": (lambda: rnnfast.RNN(I, H, dtype="float64", seed=2), False, False),
    "lstm-int8": (lambda: rnnfast.quantize(rnnfast.LSTM(I, H, seed=3), "int8"), False, False),
    "gru-bf16": (lambda: rnnfast.quantize(rnnfast.GRU(I, H, seed=3), "bf16"), False, False),
    "sequential-many-to-one": (lambda: _stack(False), False, False),
    "sequential-batch-first": (lambda: _stack(True), True, False),
    "embedding-tagger": (lambda: nn.Sequential(nn.Embedding(11, I, seed=6), rnnfast.GRU(I, H, seed=7),
                                               nn.Linear(H, C, seed=8)), False, True),
    "linear-only": (lambda: nn.Sequential(nn.Linear(I, C, seed=9), nn.Tanh()), True, False),
}


def inputs(name: str, n: int = N, seed: int = 0) -> np.ndarray:
    """An input for MODELS[name]: (T, n, I) or (n, T, I), (T, n) indices, or (n, I) for the Linear model."""
    _, batch_first, indices = MODELS[name]
    rng = np.random.default_rng(seed)
    if indices:
        return rng.integers(0, 11, size=(T, n))
    if name == "linear-only":
        return rng.standard_normal((n, I)).astype(np.float32)
    x = rng.standard_normal((T, n, I))
    x = x.astype(np.float64 if "float64" in name else np.float32)
    return np.ascontiguousarray(x.transpose(1, 0, 2)) if batch_first else x


def in_process(model: Any, x: np.ndarray, lengths: Any = None) -> np.ndarray:
    """The in-process inference the engines must equal bit for bit."""
    if isinstance(model, nn.Sequential):
        return model.predict(x, lengths=lengths)
    return model.forward(x, lengths=lengths)[0]


def training_problem(seed: int = 0, n: int = 37, dropout: float = 0.3) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """A many-to-one classifier (with Dropout), time-major sequences, their lengths and labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, n, I)).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=n)
    y = (np.cumsum(x[..., 0], axis=0)[lengths - 1, np.arange(n)] > 0).astype(np.int64) + (x[0, :, 1] > 1)
    return _stack(False, dropout), x, lengths, y


class KillWorkerOnce:
    """A loss that kills the process computing it the first time it runs in a worker while ``flag`` exists
    (the flag is removed first, so exactly one worker dies), else ``nn.softmax_cross_entropy``. Never kills
    the test's own process (``parent``)."""

    def __init__(self, flag: str) -> None:
        self.flag = flag
        self.parent = os.getpid()

    def __call__(self, pred: np.ndarray, target: np.ndarray, mask: Any = None) -> tuple[float, np.ndarray]:
        if os.getpid() != self.parent:
            try:
                os.unlink(self.flag)
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return nn.softmax_cross_entropy(pred, target, mask=mask)


def same_fit(a: Any, b: Any, history_a: Any, history_b: Any) -> None:
    """Two fits gave the same bits: every parameter and every metric of every epoch."""
    pa, pb = a.parameters(), b.parameters()
    assert pa.keys() == pb.keys()
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
    assert history_a.history == history_b.history
    assert history_a.epoch == history_b.epoch
