"""A layer's cell options from its constructor arguments: the direction, and one
:class:`~rnnfast._variants.CellOptions` per direction (:func:`layer_options`).

The layers take the options under the names PyTorch, Keras and ONNX give them (``nonlinearity``,
``activation``/``recurrent_activation``, ``activations``, ``clip``, ``direction``, ...); this module turns
them into the per-direction options every other part of the package reads, and names them back for
messages, ``repr`` and saving (:func:`variant_option_names`, :func:`activations_repr`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

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
