"""The benchmark's scenarios (shapes and kinds of call), its cells (PyTorch's three and the cell variants), and
the problem of one row: the rnnfast model (for a variant: the options and weights) whose weights every
implementation uses, and the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._cells import cell_facts
from .._variants import CellOptions, make_options
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


@dataclass(frozen=True)
class VariantCell:
    """A cell variant (issue 15) timed against the peers that compute the same cell: its family ('lstm',
    'gru'), its label in the output, the options of :func:`rnnfast._variants.make_options` other than
    ``proj_size`` as (name, value) pairs, and ``proj_divisor``: a projection to ``H // proj_divisor``
    (0: none)."""

    family: str
    label: str
    options: tuple = ()
    proj_divisor: int = 0

    def cell_options(self, H: int) -> CellOptions:
        """The variant's options for ``H`` hidden units."""
        P = H // self.proj_divisor if self.proj_divisor else 0
        return make_options(self.family, H, proj_size=P, **dict(self.options))


#: The cell variants of ``--cells`` (none is in the default run), with the peers that compute each:
#: the GRU with the reset gate applied before the product (ONNX ``linear_before_reset=0``, ONNX Runtime's
#: GRU; Keras ``reset_after=False``), the LSTM with PyTorch's projection to H/2 (``nn.LSTM(proj_size=H//2)``),
#: the LSTM with peepholes and the LSTM with every gate pre-activation clipped to [-1, 1] (ONNX Runtime's LSTM
#: with ``P``, with ``clip=1``).
VARIANT_CELLS: dict[str, VariantCell] = {
    "gru_reset_before": VariantCell("gru", "GRU reset before", (("reset_after", False),)),
    "lstm_proj": VariantCell("lstm", "LSTM proj H/2", proj_divisor=2),
    "lstm_peepholes": VariantCell("lstm", "LSTM peepholes", (("peepholes", True),)),
    "lstm_clip": VariantCell("lstm", "LSTM clip 1", (("clip", 1.0),)),
}
#: ``--cells`` spellings: a cell, or ``variants`` for every cell variant.
CELL_ALIASES: dict = {"rnn": "rnn_tanh", "rnn_tanh": "rnn_tanh", "tanh": "rnn_tanh", "lstm": "lstm", "gru": "gru",
                      **{k: k for k in VARIANT_CELLS}, "gru_reset_after_false": "gru_reset_before",
                      "lstm_peephole": "lstm_peepholes", "variants": tuple(VARIANT_CELLS)}


def cell_label(cell: str) -> str:
    """A cell's label in the output: ``LSTM``, ``GRU reset before``, ..."""
    return CELLS[cell] if cell in CELLS else VARIANT_CELLS[cell].label


def flops(scenario: Scenario, cell: str) -> float:
    """Floating-point operations of one call (one step for streaming): 2 per multiply-add of the
    ``x @ W_ih^T`` and ``h @ W_hh^T`` products (h of size R: the projection's P, else H), and with a projection
    of ``m @ W_hr^T`` (2*P*H per step and sequence); backward counted as twice the forward."""
    H = scenario.H
    if cell in VARIANT_CELLS:
        options = VARIANT_CELLS[cell].cell_options(H)
        G, P = cell_facts(options.family).gates, options.proj_size
    else:
        G, P = cell_facts(cell).gates, 0
    R = P or H
    steps = 1 if scenario.kind == "stream" else scenario.T
    forward = 2.0 * steps * scenario.B * (G * H * (scenario.I + R) + P * H)
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


@dataclass
class VariantProblem(Problem):
    """The problem of a cell variant's row: no layer (``model`` is None), its options and weights instead
    (PyTorch's names: ``weight_ih_l0``, ``weight_hh_l0`` (G*H, R), ``bias_ih_l0``, ``bias_hh_l0``, and
    ``weight_hr_l0`` (P, H) with a projection, ``weight_ch_l0`` (3H,) with peepholes); ``d_out`` (T, B, R)."""

    options: CellOptions = None  # type: ignore[assignment]
    weights: dict = None  # type: ignore[assignment]

    @property
    def params(self) -> dict:
        return self.weights

    @property
    def state_size(self) -> int:
        """R: the size of h (the projection's, else H)."""
        return self.options.proj_size or self.scenario.H


def _variant_weights(options: CellOptions, I: int, H: int, rng: np.random.Generator) -> dict:
    """PyTorch's initialisation (uniform in +-1/sqrt(H)) of a variant's weights, float32."""
    G = cell_facts(options.family).gates
    R = options.proj_size or H
    shapes = {"weight_ih_l0": (G * H, I), "weight_hh_l0": (G * H, R), "bias_ih_l0": (G * H,),
              "bias_hh_l0": (G * H,)}
    if options.proj_size:
        shapes["weight_hr_l0"] = (options.proj_size, H)
    if options.peepholes:
        shapes["weight_ch_l0"] = (3 * H,)
    bound = 1.0 / np.sqrt(H)
    return {k: rng.uniform(-bound, bound, size=shape).astype(np.float32) for k, shape in shapes.items()}


def make_problem(scenario: Scenario, cell: str, seed: int = 0) -> Problem:
    I, H = scenario.I, scenario.H
    if cell in VARIANT_CELLS:
        options = VARIANT_CELLS[cell].cell_options(H)
        weights = _variant_weights(options, I, H, np.random.default_rng(seed))
        rng = np.random.default_rng(seed + 1)
        x = rng.standard_normal((scenario.T, scenario.B, I)).astype(np.float32)
        R = options.proj_size or H
        d_out = rng.standard_normal((scenario.T, scenario.B, R)).astype(np.float32) \
            if scenario.kind == "train" else None
        return VariantProblem(scenario, cell, None, x, d_out, options, weights)
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
