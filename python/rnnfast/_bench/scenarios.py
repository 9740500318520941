"""The benchmark's scenarios (shapes and kinds of call), its cells, and the problem of one row: the
rnnfast model whose weights every implementation uses, and the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._cells import cell_facts
from ..layers import GRU, LSTM, RNN


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "stream" (one step per call), "infer" (whole sequence) or "train" (forward + backward)
    T: int  # sequence length; for streaming, the steps in one timed sample
    B: int
    I: int
    H: int
    title: str

    @property
    def unit(self) -> str:
        return "us/step" if self.kind == "stream" else "ms"

    def shape_text(self) -> str:
        if self.kind == "stream":
            return f"B={self.B}, I={self.I}, H={self.H}"
        return f"T={self.T}, B={self.B}, I={self.I}, H={self.H}"


SCENARIOS: dict[str, Scenario] = {
    "stream": Scenario("stream", "stream", 100, 1, 64, 128, "stream, one step per call"),
    "edge": Scenario("edge", "infer", 100, 1, 64, 128, "edge"),
    "small": Scenario("small", "infer", 100, 8, 128, 256, "small batch"),
    "batch": Scenario("batch", "infer", 50, 64, 256, 512, "batch"),
    "large": Scenario("large", "infer", 25, 64, 512, 1024, "large"),
    "train": Scenario("train", "train", 50, 32, 128, 256, "train (forward+backward)"),
}

#: The same scenarios at toy sizes (sizes off every vector width): the smoke test's ``--tiny``.
TINY_SCENARIOS: dict[str, Scenario] = {
    "stream": Scenario("stream", "stream", 6, 1, 5, 7, "stream, one step per call"),
    "edge": Scenario("edge", "infer", 7, 1, 5, 7, "edge"),
    "small": Scenario("small", "infer", 7, 3, 6, 9, "small batch"),
    "batch": Scenario("batch", "infer", 5, 4, 7, 10, "batch"),
    "large": Scenario("large", "infer", 4, 5, 9, 11, "large"),
    "train": Scenario("train", "train", 6, 3, 5, 7, "train (forward+backward)"),
}

#: The cells measured, with their labels in the output.
CELLS: dict[str, str] = {"rnn_tanh": "RNN tanh", "lstm": "LSTM", "gru": "GRU"}
CELL_ALIASES = {"rnn": "rnn_tanh", "rnn_tanh": "rnn_tanh", "tanh": "rnn_tanh", "lstm": "lstm", "gru": "gru"}


def flops(scenario: Scenario, cell: str) -> float:
    """Floating-point operations of one call (one step for streaming): 2 per multiply-add of the
    ``x @ W_ih^T`` and ``h @ W_hh^T`` products; backward counted as twice the forward."""
    G = cell_facts(cell).gates
    steps = 1 if scenario.kind == "stream" else scenario.T
    forward = 2.0 * steps * scenario.B * G * scenario.H * (scenario.I + scenario.H)
    return 3.0 * forward if scenario.kind == "train" else forward


@dataclass
class Problem:
    scenario: Scenario
    cell: str
    model: Any  # the rnnfast layer whose weights every implementation uses
    x: np.ndarray  # (T, B, I) float32
    d_out: Optional[np.ndarray]  # (T, B, H) for training

    @property
    def params(self) -> dict:
        return {k: np.ascontiguousarray(v) for k, v in self.model.state_dict().items()}


def make_problem(scenario: Scenario, cell: str, seed: int = 0) -> Problem:
    I, H = scenario.I, scenario.H
    if cell == "lstm":
        model = LSTM(I, H, seed=seed)
    elif cell == "gru":
        model = GRU(I, H, seed=seed)
    else:
        model = RNN(I, H, nonlinearity="tanh", seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((scenario.T, scenario.B, I)).astype(np.float32)
    d_out = rng.standard_normal((scenario.T, scenario.B, H)).astype(np.float32) \
        if scenario.kind == "train" else None
    return Problem(scenario, cell, model, x, d_out)
