"""A layer's cell options: from its constructor arguments, the direction and one
:class:`~rnnfast._variants.CellOptions` per direction (:func:`layer_options`), and what they add to the
layer (:class:`CellOptionsLayer`, a base of :class:`~rnnfast._rnn_base.RNNBase`: their read-only
properties, whether each direction runs on the fused path, their part of the ``repr``).

The layers take the options under the names PyTorch, Keras and ONNX give them (``nonlinearity``,
``activation``/``recurrent_activation``, ``activations``, ``clip``, ``direction``, ...); this module turns
them into the per-direction options every other part of the package reads, and names them back for
messages, ``repr`` and saving (:func:`variant_option_names`, :func:`activations_repr`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from ._cells import cell_facts
from ._variants import ROLES, Activation, CellOptions, as_activation, default_activations, make_options

#: The directions a layer can run in, and the parameter-name direction (0: no suffix, 1: ``_reverse``) of each
#: of its direction slots.
DIRECTIONS: dict[str, tuple[int, ...]] = {"forward": (0,), "reverse": (1,), "bidirectional": (0, 1)}


def resolve_direction(direction: Optional[str], bidirectional: Any) -> str:
    """The layer's direction from ``direction`` (None, 'forward', 'reverse', 'bidirectional') and
    ``bidirectional`` (None, or a truth value); a ValueError when they disagree."""
    if direction is None:
        return "bidirectional" if bidirectional else "forward"
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        raise ValueError(f"direction must be None, 'forward', 'reverse' or 'bidirectional', got {direction!r}")
    if bidirectional is not None and bool(bidirectional) != (direction == "bidirectional"):
        raise ValueError(f"direction={direction!r} disagrees with bidirectional={bidirectional!r} "
                         "(give one of them, or values that agree)")
    return direction


def _per_direction(family: str, activations: Any, D: int) -> tuple[list, bool]:
    """``activations`` (one activation per role, or D such sequences) as D sequences, one per direction, and
    whether it was given per direction."""
    roles = ROLES[family]
    if isinstance(activations, (str, Activation)) or not isinstance(activations, Sequence):
        raise TypeError(f"activations must be a sequence of {len(roles)} activations (roles {', '.join(roles)}), "
                        f"or a sequence of {D} such sequences (one per direction); got {activations!r}")
    items = list(activations)
    if items and all(isinstance(a, Sequence) and not isinstance(a, str) for a in items):
        if len(items) != D:
            raise ValueError(f"activations has {len(items)} per-direction sequences, but the layer has {D} "
                             f"direction{'s' if D > 1 else ''}")
        return items, True
    return [items] * D, False


def layer_options(
    family: str,
    hidden_size: int,
    D: int,
    *,
    activations: Any = None,
    activation: Any = None,
    recurrent_activation: Any = None,
    clip: Any = None,
    input_forget: Any = False,
    reset_after: Any = True,
    proj_size: Any = 0,
    peepholes: Any = False,
) -> tuple[CellOptions, ...]:
    """One checked CellOptions per direction of a ``family`` ('rnn', 'lstm', 'gru') layer with D directions.

    ``activation`` (Keras's name) sets the roles g (and h for the LSTM), ``recurrent_activation`` the role f;
    ``activations`` (ONNX's role order, ``ROLES``) is the general form and cannot be combined with them.
    Errors are those of :func:`~rnnfast._variants.make_options`, naming the option.
    """
    nested = False
    if activations is not None:
        given = [n for n, v in (("activation", activation), ("recurrent_activation", recurrent_activation))
                 if v is not None]
        if given:
            raise ValueError(f"activations cannot be given together with {' and '.join(given)}: activations sets "
                             "every gate role (give one form or the other)")
        per_direction, nested = _per_direction(family, activations, D)
    elif activation is None and recurrent_activation is None:
        per_direction = [None] * D
    else:
        acts = list(default_activations(family))
        roles = ROLES[family]
        if recurrent_activation is not None:
            acts[roles.index("f")] = as_activation("recurrent_activation", recurrent_activation)
        if activation is not None:
            a = as_activation("activation", activation)
            for role in ("g", "h"):
                if role in roles:
                    acts[roles.index(role)] = a
        per_direction = [tuple(acts)] * D
    options = []
    for d, acts in enumerate(per_direction):
        try:
            options.append(make_options(family, hidden_size, activations=acts, clip=clip, input_forget=input_forget,
                                        reset_after=reset_after, proj_size=proj_size, peepholes=peepholes))
        except (TypeError, ValueError) as exc:
            prefix = f"activations[{d}] (direction {d}): " if nested else ""
            raise type(exc)(prefix + str(exc)) from None
    return tuple(options)


def rnn_activations(nonlinearity: Any, activations: Any) -> Any:
    """The RNN's ``activations`` argument from its ``nonlinearity`` and ``activations`` (both cannot be given)."""
    if activations is not None:
        if not (isinstance(nonlinearity, str) and nonlinearity == "tanh"):
            raise ValueError(f"activations cannot be given together with nonlinearity={nonlinearity!r}: "
                             "activations sets the activation of every direction")
        return activations
    if nonlinearity is None:
        raise ValueError("nonlinearity must be an activation name (e.g. 'tanh', 'relu') or an rnnfast.Activation, "
                         "got None")
    return (as_activation("nonlinearity", nonlinearity),)


def variant_option_names(options: Sequence[CellOptions]) -> list[str]:
    """The options (as the constructor names them) in which a layer differs from PyTorch's cell."""
    names = []
    for o in options:
        acts_default = (o.nonlinearity is not None if o.family == "rnn"
                        else o.activations == default_activations(o.family))
        for name, differs in (("activations", not acts_default), ("clip", o.clip is not None),
                              ("input_forget", o.input_forget), ("reset_after", not o.reset_after),
                              ("proj_size", o.proj_size != 0), ("peepholes", o.peepholes)):
            if differs and name not in names:
                names.append(name)
    if options[0].family == "rnn" and "activations" not in names and \
            len({o.activations for o in options}) > 1:
        names.append("activations")  # tanh one way and relu the other: no single PyTorch cell
    return names


def activation_repr(a: Activation) -> str:
    """An activation as its name when its parameters are the defaults, else its full repr."""
    return repr(a.name) if Activation(a.name) == a else repr(a)


def activations_repr(per_direction: Sequence[tuple[Activation, ...]]) -> str:
    """The ``activations=`` argument that gives ``per_direction`` (flat when every direction has the same)."""
    def one(acts):
        return "(" + ", ".join(activation_repr(a) for a in acts) + ("," if len(acts) == 1 else "") + ")"
    if len(set(per_direction)) == 1:
        return one(per_direction[0])
    return "(" + ", ".join(one(a) for a in per_direction) + ")"


class CellOptionsLayer:
    """The cell options of a recurrent layer (a base of RNNBase, which supplies ``_cell``, ``_bidirectional``,
    ``_hidden_size`` and ``num_directions``, and sets ``_direction`` and ``_options``)."""

    # Class defaults: layers pickled before the cell variants load as the default layers they were.
    _direction: str = ""
    _options: tuple = ()
    _fast_slots: Optional[tuple] = None  # _fast() of each direction slot, once asked

    @property
    def direction(self) -> str:
        """'forward', 'reverse' (one direction, over the time-reversed sequences) or 'bidirectional'."""
        return self._direction or ("bidirectional" if self._bidirectional else "forward")

    @property
    def _direction_ids(self) -> tuple[int, ...]:
        """The parameter-name direction (0: no suffix, 1: ``_reverse``) of each direction slot."""
        return DIRECTIONS[self.direction]

    @property
    def options(self) -> tuple[CellOptions, ...]:
        """The cell options of each direction (forward first), :class:`rnnfast._variants.CellOptions`."""
        if not self._options:  # a layer pickled before the cell variants: PyTorch's cell
            family = cell_facts(self._cell).family
            nonlinearity = cell_facts(self._cell).nonlinearity or "tanh"
            return (CellOptions.default(family, nonlinearity),) * self.num_directions
        return self._options

    @property
    def activations(self) -> tuple[tuple[Activation, ...], ...]:
        """The activations of each direction, one per gate role in ONNX's order: RNN (act,), LSTM (f, g, h),
        GRU (f, g); see :data:`rnnfast._variants.ROLES`."""
        return tuple(o.activations for o in self.options)

    @property
    def clip(self) -> Optional[float]:
        """None, or the bound to which every gate pre-activation is clamped (ONNX's ``clip``)."""
        return self.options[0].clip

    @property
    def proj_size(self) -> int:
        """The LSTM's projection size P (0: none; always 0 for RNN and GRU), as PyTorch's ``proj_size``."""
        return self.options[0].proj_size

    @property
    def state_size(self) -> int:
        """R, the width of the hidden state h and of each direction's output: ``proj_size`` or H."""
        return self.options[0].proj_size or self._hidden_size

    def _fast(self, slot: int) -> bool:
        """Whether direction slot ``slot`` is PyTorch's cell of ``_cell``, which runs on the fused path (a
        variant runs on ``variant_forward``). Worked out once (the options never change): the inference
        fast path asks on every call."""
        fast = self._fast_slots
        if fast is None:
            nonlinearity = cell_facts(self._cell).nonlinearity
            fast = self._fast_slots = tuple(
                o.is_default and (o.family != "rnn" or o.nonlinearity == nonlinearity) for o in self.options)
        return fast[slot]

    @property
    def is_variant(self) -> bool:
        """Whether some direction's cell differs from PyTorch's (see :meth:`variant_options`)."""
        return bool(self.variant_options())

    def variant_options(self) -> list[str]:
        """The constructor options in which the cell differs from PyTorch's (e.g. ``['proj_size', 'clip']``),
        empty for PyTorch's cells. ``direction='reverse'`` is not among them: it changes no cell."""
        return variant_option_names(self.options)

    def _options_repr(self) -> str:
        """The cell options of the repr (those that differ from the defaults), as the constructor takes them."""
        options = self.options
        first = options[0]
        s = ""
        if first.family == "rnn":
            acts = self.activations
            if len(set(acts)) == 1:
                if acts[0][0] != Activation("tanh"):
                    s += f", nonlinearity={activation_repr(acts[0][0])}"
            else:
                s += f", activations={activations_repr(acts)}"
        elif "activations" in self.variant_options():
            s += f", activations={activations_repr(self.activations)}"
        if first.proj_size:
            s += f", proj_size={first.proj_size}"
        if first.peepholes:
            s += ", peepholes=True"
        if first.clip is not None:
            s += f", clip={first.clip!r}"
        if first.input_forget:
            s += ", input_forget=True"
        if not first.reset_after:
            s += ", reset_after=False"
        return s


#: The options of one cell family that the other families' constructors name in their refusal.
_CELL_OPTIONS = {"proj_size": "LSTM", "peepholes": "LSTM", "input_forget": "LSTM", "reset_after": "GRU",
                 "recurrent_activation": "LSTM and the GRU", "activation": "LSTM and the GRU",
                 "nonlinearity": "RNN"}


def refuse_other_cells_options(title: str, options: dict) -> None:
    """Refuse the keyword arguments a layer constructor did not take: another cell's option (``GRU(peepholes=
    True)``) is a ValueError naming it and the cell that has it; anything else the TypeError Python gives."""
    for name in options:
        if title == "RNN" and name == "activation":
            raise ValueError(f"activation is the LSTM's and the GRU's option: the RNN's activation is its "
                             f"nonlinearity (PyTorch's name), e.g. RNN(..., nonlinearity={options[name]!r})")
        if name in _CELL_OPTIONS:
            raise ValueError(f"{name} is an option of the {_CELL_OPTIONS[name]}; the {title} has none "
                             f"(got {name}={options[name]!r})")
        raise TypeError(f"{title}.__init__() got an unexpected keyword argument {name!r}")
