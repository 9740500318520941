"""The recurrent cell variants: activations, and the options that change a cell's arithmetic.

A layer's cell is one of the four of :mod:`rnnfast._cells` (RNN tanh/relu, LSTM, GRU) with
:class:`CellOptions`: the activations of each gate role, ONNX's ``clip`` and ``input_forget``, the GRU's
``reset_after`` (Keras's name; ONNX's ``linear_before_reset``), the LSTM's ``proj_size`` (PyTorch's) and
peepholes (ONNX's ``P``). The default options are PyTorch's cells, which run on the fused fast path;
any other option runs on the variant path (docs/design.md, "Cell variants"), natively
(:func:`rnnfast.functional.variant_forward`) and in NumPy (:func:`rnnfast.reference.variant_forward`).

Activations are named in lower snake case (``ACTIVATIONS``); ONNX's and Keras's spellings map to them
(:func:`activation_from_onnx`, :func:`activation_from_keras`). The formulas, with a = the pre-activation
and alpha, beta the activation's parameters:

==================  ==========================================  ===============  ===========
name                f(a)                                        alpha, beta      ONNX
==================  ==========================================  ===============  ===========
sigmoid             1 / (1 + exp(-a))                           -                Sigmoid
tanh                tanh(a)                                     -                Tanh
relu                max(a, 0)                                   -                Relu
affine              alpha * a + beta                            1.0, 0.0         Affine
leaky_relu          a if a >= 0 else alpha * a                  0.01             LeakyRelu
thresholded_relu    a if a > alpha else 0                       1.0              ThresholdedRelu
scaled_tanh         alpha * tanh(beta * a)                      1.0, 1.0         ScaledTanh
hard_sigmoid        max(0, min(1, alpha * a + beta))            0.2, 0.5         HardSigmoid
elu                 a if a >= 0 else alpha * (exp(a) - 1)       1.0              Elu
softsign            a / (1 + |a|)                               -                Softsign
softplus            log(1 + exp(a))                             -                Softplus
selu                scale * elu(a, alpha) (Keras's constants)   -                (none)
exponential         exp(a)                                      -                (none)
silu                a * sigmoid(a) (Keras's swish)              -                (none)
relu6               min(max(a, 0), 6)                           -                (none)
==================  ==========================================  ===============  ===========

Gate roles: the RNN has one (``act``); the LSTM three, ONNX's f (the gates i, f, o), g (the candidate)
and h (the cell output); the GRU two, f (r, z) and g (n).

The training workspace of a variant (what ``variant_forward(..., training=True)`` saves for
``variant_backward``; the native ops and the reference save the same), per (t, b) row, blocks of H:

- RNN: ``[a]``, the pre-activation (before clipping);
- LSTM: ``[a_i, a_f, a_g, a_o, c_t, m_t]``: the gates' pre-activations before clipping (peephole terms
  included), the cell state, and ``m_t = o * h(c_t)`` (h_t itself without a projection);
- GRU: ``[a_r, a_z, a_n, u]``: pre-activations before clipping (``a_n`` with the reset gate applied), and
  ``u = W_hn h_{t-1} + b_hn`` (``reset_after=True``) or ``u = r * h_{t-1}`` (``reset_after=False``).

Rows past a sequence's end are zero. Backward recomputes the activations from the pre-activations.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from . import _core

__all__ = ["Activation", "CellOptions", "ACTIVATIONS"]


@dataclass(frozen=True)
class _Kind:
    name: str
    onnx: Optional[str]          # ONNX's spelling, or None where ONNX has no such activation
    alpha: Optional[float]       # default alpha, or None where the activation takes none
    beta: Optional[float]        # default beta, or None


# In the kernels' order (the native enumeration's; rnnfast._core.activation_names() is checked against it).
_KINDS: tuple[_Kind, ...] = (
    _Kind("sigmoid", "Sigmoid", None, None),
    _Kind("tanh", "Tanh", None, None),
    _Kind("relu", "Relu", None, None),
    _Kind("affine", "Affine", 1.0, 0.0),
    _Kind("leaky_relu", "LeakyRelu", 0.01, None),
    _Kind("thresholded_relu", "ThresholdedRelu", 1.0, None),
    _Kind("scaled_tanh", "ScaledTanh", 1.0, 1.0),
    _Kind("hard_sigmoid", "HardSigmoid", 0.2, 0.5),
    _Kind("elu", "Elu", 1.0, None),
    _Kind("softsign", "Softsign", None, None),
    _Kind("softplus", "Softplus", None, None),
    _Kind("selu", None, None, None),
    _Kind("exponential", None, None, None),
    _Kind("silu", None, None, None),
    _Kind("relu6", None, None, None),
)
_BY_NAME = {k.name: k for k in _KINDS}
_BY_ONNX = {k.onnx.lower(): k for k in _KINDS if k.onnx is not None}

#: The activation names, in the kernels' order.
ACTIVATIONS: tuple[str, ...] = tuple(k.name for k in _KINDS)
#: Keras's SELU constants (keras.activations.selu).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """An activation with its parameters: ``Activation("leaky_relu", alpha=0.1)``.

    ``alpha`` and ``beta`` default to the ONNX operator's defaults (see the module's table); giving one to
    an activation that takes none is a ValueError. A plain name (``"tanh"``) stands for
    ``Activation(name)`` wherever an activation is taken.
    """

    name: str
    alpha: Optional[float] = None
    beta: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"an activation name must be a str, got {type(self.name).__name__}")
        kind = _BY_NAME.get(self.name)
        if kind is None:
            raise ValueError(f"unknown activation {self.name!r}; rnnfast has {', '.join(ACTIVATIONS)}")
        for param in ("alpha", "beta"):
            value, default = getattr(self, param), getattr(kind, param)
            if value is None:
                object.__setattr__(self, param, default)
                continue
            if default is None:
                raise ValueError(f"activation {self.name!r} takes no {param}, got {param}={value!r}")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
                raise ValueError(f"activation {self.name!r}: {param} must be a finite number, got {value!r}")
            object.__setattr__(self, param, float(value))

    @property
    def index(self) -> int:
        """The kernels' number of this activation (its position in ``ACTIVATIONS``)."""
        return ACTIVATIONS.index(self.name)

    @property
    def onnx_name(self) -> Optional[str]:
        """ONNX's spelling, or None where ONNX's recurrent operators have no such activation."""
        return _BY_NAME[self.name].onnx

    def __repr__(self) -> str:
        kind = _BY_NAME[self.name]
        params = [f"{p}={getattr(self, p)!r}" for p in ("alpha", "beta") if getattr(kind, p) is not None]
        return f"Activation({', '.join([repr(self.name)] + params)})"


ActivationLike = Union[str, Activation]


def as_activation(label: str, value: Any) -> Activation:
    """``value`` (a name or an :class:`Activation`) as an Activation; errors name ``label``."""
    if isinstance(value, Activation):
        return value
    if isinstance(value, str):
        try:
            return Activation(value)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    raise TypeError(f"{label} must be an activation name or an rnnfast.Activation, got {type(value).__name__}")


def activation_from_onnx(name: str, alpha: Optional[float] = None, beta: Optional[float] = None) -> Activation:
    """The Activation ONNX calls ``name`` (case-insensitive, as ONNX Runtime reads it), with its alpha and beta
    where it takes them (None: the default); ValueError naming an activation rnnfast does not have."""
    kind = _BY_ONNX.get(str(name).lower())
    if kind is None:
        raise ValueError(f"ONNX activation {name!r} is not supported; rnnfast has "
                         + ", ".join(k.onnx for k in _KINDS if k.onnx))
    return Activation(kind.name, alpha if kind.alpha is not None else None, beta if kind.beta is not None else None)


def activation_from_keras(name: str, keras_major: int = 3) -> Activation:
    """The Activation Keras calls ``name`` ('tanh', 'hard_sigmoid', 'linear', 'swish', ...).

    ``hard_sigmoid`` is ``relu6(x + 3) / 6`` in Keras 3 (alpha 1/6) and ``0.2 x + 0.5`` clipped in Keras 2.
    ValueError names an activation rnnfast does not have.
    """
    n = str(name).lower()
    if n == "linear":
        return Activation("affine", 1.0, 0.0)
    if n == "hard_sigmoid":
        return Activation("hard_sigmoid", 1.0 / 6.0 if keras_major >= 3 else 0.2, 0.5)
    if n == "swish":
        return Activation("silu")
    if n == "leaky_relu":  # Keras 3's default negative_slope
        return Activation("leaky_relu", 0.2)
    if n in ("sigmoid", "tanh", "relu", "elu", "softsign", "softplus", "selu", "exponential", "silu", "relu6"):
        return Activation(n)
    raise ValueError(f"Keras activation {name!r} is not supported by rnnfast's recurrent layers; supported: "
                     "linear, sigmoid, tanh, relu, relu6, elu, selu, softsign, softplus, exponential, silu/swish, "
                     "hard_sigmoid, leaky_relu")


#: The gate roles of each cell family, in ONNX's order, and their defaults (PyTorch's cells).
ROLES: dict[str, tuple[str, ...]] = {"rnn": ("act",), "lstm": ("f", "g", "h"), "gru": ("f", "g")}


def default_activations(family: str, nonlinearity: str = "tanh") -> tuple[Activation, ...]:
    """PyTorch's activations of a cell family ('rnn', 'lstm', 'gru'), by role."""
    if family == "rnn":
        return (Activation(nonlinearity),)
    if family == "lstm":
        return (Activation("sigmoid"), Activation("tanh"), Activation("tanh"))
    return (Activation("sigmoid"), Activation("tanh"))


@dataclass(frozen=True)
class CellOptions:
    """What makes a cell a variant of PyTorch's; the defaults are PyTorch's cell.

    ``family`` 'rnn', 'lstm' or 'gru'. ``activations``: one Activation per gate role of the family
    (``ROLES``). ``clip``: None, or the bound c > 0 to which every gate pre-activation is clamped before its
    activation (ONNX ``clip``). ``input_forget`` (LSTM): the forget gate is 1 - i (ONNX, as ONNX Runtime
    computes it). ``reset_after`` (GRU): True is PyTorch's (ONNX ``linear_before_reset=1``); False applies
    the reset gate to h before the product, ``n = g(W_in x + b_in + W_hn (r*h) + b_hn)``. ``proj_size``
    (LSTM): 0, or P < H, PyTorch's projection ``h_t = (o*h(c_t)) W_hr^T``. ``peepholes`` (LSTM): the cell
    state feeds the gates i, f (c_{t-1}) and o (c_t) through ``weight_ch`` (3H,) in the order i, f, o.
    """

    family: str
    activations: tuple[Activation, ...]
    clip: Optional[float] = None
    input_forget: bool = False
    reset_after: bool = True
    proj_size: int = 0
    peepholes: bool = False

    @staticmethod
    def default(family: str, nonlinearity: str = "tanh") -> "CellOptions":
        """PyTorch's cell of ``family``."""
        return CellOptions(family, default_activations(family, nonlinearity))

    @property
    def is_default(self) -> bool:
        """Whether this is one of PyTorch's four cells (which run on the fused fast path)."""
        acts = tuple(a.name for a in self.activations)
        if self.family == "rnn":
            default_acts = acts in (("tanh",), ("relu",))
        else:
            default_acts = self.activations == default_activations(self.family)
        return (default_acts and self.clip is None and not self.input_forget and self.reset_after
                and self.proj_size == 0 and not self.peepholes)

    @property
    def nonlinearity(self) -> Optional[str]:
        """For an RNN whose activation is tanh or relu, that name (its PyTorch cell), else None."""
        if self.family == "rnn" and self.activations[0].name in ("tanh", "relu"):
            return self.activations[0].name
        return None


def make_options(
    family: str,
    hidden_size: int,
    *,
    activations: Optional[Sequence[ActivationLike]] = None,
    clip: Optional[float] = None,
    input_forget: bool = False,
    reset_after: bool = True,
    proj_size: int = 0,
    peepholes: bool = False,
) -> CellOptions:
    """Checked CellOptions: a clear ValueError (or TypeError) naming the inconsistent option.

    ``activations``: one per role of the family (``ROLES``), or None for the defaults.
    """
    roles = ROLES[family]
    if activations is None:
        acts = default_activations(family)
    else:
        if isinstance(activations, (str, Activation)) or not isinstance(activations, Sequence):
            raise TypeError(f"activations must be a sequence of {len(roles)} activations (roles {', '.join(roles)}), "
                            f"got {activations!r}")
        if len(activations) != len(roles):
            raise ValueError(f"activations must have one activation per gate role of the {family.upper()} "
                             f"({', '.join(roles)}): {len(roles)}, got {len(activations)}")
        acts = tuple(as_activation(f"activations[{i}] (role {r})", a) for i, (a, r) in enumerate(zip(activations, roles)))
    if clip is not None:
        if isinstance(clip, bool) or not isinstance(clip, numbers.Real) or not float(clip) > 0 or math.isnan(float(clip)):
            raise ValueError(f"clip must be None or a positive number, got {clip!r}")
        clip = float(clip)
        if math.isinf(clip):
            clip = None
    if family != "lstm":
        for name, value, default in (("input_forget", input_forget, False), ("proj_size", proj_size, 0),
                                     ("peepholes", peepholes, False)):
            if value != default and value is not None:
                raise ValueError(f"{name} is an LSTM option; a {family.upper()} has none (got {name}={value!r})")
    if family != "gru" and reset_after is not True:
        raise ValueError(f"reset_after is a GRU option; a {family.upper()} has none (got reset_after={reset_after!r})")
    if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) or proj_size < 0:
        raise ValueError(f"proj_size must be a non-negative int, got {proj_size!r}")
    if proj_size >= hidden_size and proj_size != 0:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} and "
                         f"hidden_size={hidden_size}")
    return CellOptions(family, acts, clip, bool(input_forget), bool(reset_after), int(proj_size), bool(peepholes))


#: Workspace blocks of H per (t, b) row of a variant's training forward (see the module's docstring).
VARIANT_WORKSPACE_SLOTS: dict[str, int] = {"rnn": 1, "lstm": 6, "gru": 4}


def _check_against_kernels(kernel_names: list) -> None:
    """ImportError unless the kernels' activation table is this module's (the same names, in the same order)."""
    if tuple(kernel_names) != ACTIVATIONS:
        raise ImportError(f"rnnfast's activations {ACTIVATIONS} disagree with the native kernels' {tuple(kernel_names)}: "
                          "the extension and the Python package come from different builds; reinstall rnnfast.")


_check_against_kernels(_core.activation_names())
