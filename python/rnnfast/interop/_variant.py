"""A layer's cell variant in the converters' terms (:class:`LayerVariant`): what :mod:`rnnfast._variants`
calls the cell options, plus the direction, read from an rnnfast layer and turned back into the
constructor arguments of the layer a conversion builds.

Only the options that differ from PyTorch's cell become constructor arguments, so a conversion of a
plain PyTorch-like model builds the layer exactly as before the variants existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from .._variants import Activation, default_activations
from ..layers import GRU, LSTM, RNN

__all__ = ["DIRECTIONS", "LayerVariant", "family_of"]

#: The directions a layer runs in, and the direction indices (parameter suffix '' = 0, '_reverse' = 1) of each.
DIRECTIONS: dict[str, tuple[int, ...]] = {"forward": (0,), "reverse": (1,), "bidirectional": (0, 1)}


def family_of(model: Any) -> str:
    """'rnn', 'lstm' or 'gru': the cell family of an rnnfast layer (by its class, whatever its activation)."""
    if isinstance(model, LSTM):
        return "lstm"
    if isinstance(model, GRU):
        return "gru"
    if isinstance(model, RNN):
        return "rnn"
    raise TypeError(f"expected an rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU, got {type(model).__name__}")


def _per_direction(acts: Any, num_directions: int) -> tuple:
    """A layer's ``activations`` as one tuple of Activations per direction (a flat tuple stands for all)."""
    acts = tuple(acts)
    if acts and isinstance(acts[0], (Activation, str)):
        acts = (acts,) * num_directions
    return tuple(tuple(a if isinstance(a, Activation) else Activation(a) for a in per) for per in acts)


@dataclass(frozen=True)
class LayerVariant:
    """The options that make a layer's cell a variant of PyTorch's, and its direction.

    ``activations``: per direction (in the layer's direction order, forward first), one
    :class:`~rnnfast._variants.Activation` per gate role in ONNX's role order (RNN: act; LSTM: f, g, h;
    GRU: f, g). The other fields are :class:`~rnnfast._variants.CellOptions`'s. ``direction`` is
    'forward', 'reverse' (one direction over the time-reversed sequence, parameters suffixed '_reverse')
    or 'bidirectional'.
    """

    family: str
    activations: tuple
    direction: str = "forward"
    clip: Optional[float] = None
    input_forget: bool = False
    reset_after: bool = True
    proj_size: int = 0
    peepholes: bool = False

    @staticmethod
    def default(family: str, direction: str = "forward", nonlinearity: str = "tanh") -> "LayerVariant":
        """PyTorch's cell of ``family`` running in ``direction``."""
        acts = default_activations(family, nonlinearity)
        return LayerVariant(family, (acts,) * len(DIRECTIONS[direction]), direction)

    @staticmethod
    def of_layer(model: Any) -> "LayerVariant":
        """The variant of the rnnfast layer ``model`` (read through its public properties)."""
        family = family_of(model)
        return LayerVariant(
            family, _per_direction(model.activations, model.num_directions), model.direction,
            clip=model.clip,
            input_forget=bool(getattr(model, "input_forget", False)),   # LSTM only
            reset_after=bool(getattr(model, "reset_after", True)),      # GRU only
            proj_size=int(model.proj_size),
            peepholes=bool(getattr(model, "peepholes", False)),         # LSTM only
        )

    @property
    def directions(self) -> tuple[int, ...]:
        """The direction indices of the parameters: (0,), (1,) for 'reverse', (0, 1) for 'bidirectional'."""
        return DIRECTIONS[self.direction]

    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional, else 1."""
        return len(self.directions)

    @property
    def default_activations(self) -> bool:
        """Whether every direction has PyTorch's activations (the RNN: tanh or relu, without parameters)."""
        if self.family == "rnn":
            return all(per == (Activation("tanh"),) or per == (Activation("relu"),) for per in self.activations)
        return all(per == default_activations(self.family) for per in self.activations)

    @property
    def same_activations(self) -> bool:
        """Whether all directions have the same activations."""
        return all(per == self.activations[0] for per in self.activations)

    @property
    def is_pytorch(self) -> bool:
        """Whether this is one of PyTorch's cells in a direction PyTorch runs (forward or bidirectional)."""
        return self.default_activations and not self.non_default_options() and self.direction != "reverse"

    def non_default_options(self) -> dict:
        """The options (but activations and direction) that differ from PyTorch's cell, by constructor name."""
        values = {"clip": (self.clip, None), "input_forget": (self.input_forget, False),
                  "reset_after": (self.reset_after, True), "proj_size": (self.proj_size, 0),
                  "peepholes": (self.peepholes, False)}
        return {name: v for name, (v, default) in values.items() if v != default}

    def constructor_kwargs(self) -> dict:
        """The layer constructor's keyword arguments that give this variant (only what differs from PyTorch's
        cell, plus ``bidirectional``)."""
        kwargs: dict = dict(self.non_default_options())
        if self.direction == "reverse":
            kwargs["direction"] = "reverse"
        kwargs["bidirectional"] = self.direction == "bidirectional"
        if self.family == "rnn" and self.same_activations:
            act = self.activations[0][0]
            # tanh and relu by name: PyTorch's cells, which every version of the RNN constructor takes
            kwargs["nonlinearity"] = act.name if act in (Activation("tanh"), Activation("relu")) else act
        elif not self.default_activations or not self.same_activations:
            kwargs["activations"] = self.activations[0] if self.same_activations else self.activations
        return kwargs
