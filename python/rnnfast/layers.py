"""Multi-layer, optionally bidirectional recurrent layers: :class:`RNN`, :class:`LSTM` and :class:`GRU`.

The layers follow PyTorch's ``torch.nn.RNN``/``LSTM``/``GRU`` exactly (docs/design.md, section 3.1): the same
constructor arguments, the same input and state layouts, the same parameter names, shapes and gate order,
so ``m.load_state_dict({k: v.numpy() for k, v in torch_module.state_dict().items()})`` gives the same
results. The numerics live in the single-layer, single-direction functional ops (:mod:`rnnfast.functional`,
whose plain-NumPy twin is :mod:`rnnfast.reference`); this module is only the glue around them: stacking
layers, running the reverse direction on the time-reversed sequence, inter-layer dropout, layout
conversions and the bookkeeping that training needs.

Shapes, with T the sequence length, B the batch, I the input size, H the hidden size, L the number of
layers, D = 2 if bidirectional else 1 and R = proj_size or H the width of h (H but for an LSTM with a
projection):

- input ``x``: (T, B, I), (B, T, I) with ``batch_first=True``, or unbatched (T, I);
- output ``out``: (T, B, D*R), (B, T, D*R) with ``batch_first``, or unbatched (T, D*R);
- states ``h0``, ``h_n``: (L*D, B, R), ``c0``, ``c_n``: (L*D, B, H), or unbatched without the B axis;
  index ``layer*D + direction``.

Cell variants (keyword options; the defaults are PyTorch's cells, which run on the fused fast path, and
any other option runs each direction on :func:`rnnfast.functional.variant_forward`): the activation of
each gate role (``nonlinearity`` of the RNN; ``activation``, ``recurrent_activation`` or ``activations``
of the LSTM and GRU), ONNX's ``clip``, the LSTM's ``proj_size`` (PyTorch's), ``peepholes`` and
``input_forget`` (ONNX's), the GRU's ``reset_after`` (Keras's) and ``direction='reverse'`` (ONNX's). See
:mod:`rnnfast._variants` for the activations and the formulas.

Training::

    out, state = m.forward(x, state, training=True)   # saves what backprop through time needs
    d_x, d_state = m.backward(d_out, d_state_n)       # adds parameter gradients into m.grads
    ...                                               # update m.parameters() in place
    m.zero_grad()
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._layer_options import refuse_other_cells_options, rnn_activations
from ._rnn_base import RNNBase
from ._types import LSTMState
from ._variants import ActivationLike

__all__ = ["RNN", "LSTM", "GRU"]

_CTOR_DOC = """
    Parameters
    ----------
    input_size : int
        Number of features I of the input.
    hidden_size : int
        Number of features H of the hidden state.
    num_layers : int, default 1
        Number of stacked layers L; layer k > 0 takes the D*R outputs of layer k-1 as input.{extra}
    bias : bool, default True
        Whether the layers have the biases ``bias_ih_l*`` and ``bias_hh_l*``.
    batch_first : bool, default False
        Batched input and output are (B, T, features) instead of (T, B, features); states are unaffected.
    bidirectional : bool or None, default None
        Each layer also runs over the time-reversed sequence; outputs concatenate (forward, reverse). None
        means False unless ``direction='bidirectional'``.
    dropout : float, default 0.0
        In training, inverted dropout with this probability on the outputs of every layer but the last.
    dtype : 'float32' or 'float64', default 'float32'
        Dtype of the parameters and of every computation.
    seed : int or None
        Seed of the generator (``numpy.random.default_rng``) that draws the initial parameters
        (uniform in (-1/sqrt(H), 1/sqrt(H))) and the dropout masks.{options}
    clip : float or None, default None
        ONNX's ``clip``: every gate pre-activation is clamped to [-clip, clip] before its activation (its
        gradient is zero where it was clamped). None (or inf) clamps nothing.
    direction : None, 'forward', 'reverse' or 'bidirectional', default None
        ONNX's ``direction``; None follows ``bidirectional``, and a value given with ``bidirectional`` must
        agree with it (ValueError). 'reverse' is one direction (D = 1) over the time-reversed sequences
        (each within its own length, as the reverse half of a bidirectional layer), with the reverse
        half's parameter names (suffix ``_reverse``).
"""

_ACTIVATIONS_DOC = """
    activation : str or Activation, optional
        Keras's ``activation``: the activation of the role g (the candidate){h_role}.
        Default tanh.
    recurrent_activation : str or Activation, optional
        Keras's ``recurrent_activation``: the activation of the role f (the gates {gates}). Default sigmoid.
    activations : sequence, optional
        ONNX's ``activations``, the general form: one activation per role in the order {roles}, or a
        sequence of D such sequences (one per direction, forward first). Not with ``activation`` or
        ``recurrent_activation`` (ValueError)."""


# The base's type parameter is the state a layer returns (rnnfast._types.StateT), so that a type checker knows
# ``out, h = rnn(x)`` and ``out, (h, c) = lstm(x)``; it changes nothing at run time.
class RNN(RNNBase[np.ndarray]):
    __doc__ = """Multi-layer Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, act tanh, relu or
    any other activation (:data:`rnnfast._variants.ACTIVATIONS`).

    PyTorch's ``torch.nn.RNN``: parameters ``weight_ih_l{k}`` (H, I_k), ``weight_hh_l{k}`` (H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (H,), with suffix ``_reverse`` for the reverse direction.
    """ + _CTOR_DOC.format(
        extra="\n    nonlinearity : str or Activation, default 'tanh'\n        The activation act: PyTorch's 'tanh' "
              "or 'relu' (the fused fast path), or any other,\n        e.g. ``rnnfast.Activation('leaky_relu', "
              "alpha=0.1)``.",
        options="\n    activations : sequence, optional\n        ONNX's ``activations``: ``(act,)``, or D such "
                "sequences (one per direction, forward first).\n        Not with a ``nonlinearity`` other than "
                "'tanh' (ValueError).")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nonlinearity: ActivationLike = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: Optional[bool] = None,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[int] = None,
        activations: Optional[Sequence[Any]] = None,
        clip: Optional[float] = None,
        direction: Optional[str] = None,
        **other_cells_options: Any,
    ) -> None:
        refuse_other_cells_options("RNN", other_cells_options)
        super().__init__(
            "rnn", input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, direction=direction, dropout=dropout, dtype=dtype, seed=seed,
            cell_options={"activations": rnn_activations(nonlinearity, activations), "clip": clip},
        )

    @property
    def nonlinearity(self) -> str:
        """The activation's name: 'tanh' or 'relu' for PyTorch's cells (of the forward direction)."""
        return self.options[0].activations[0].name


class LSTM(RNNBase[LSTMState]):
    __doc__ = """Multi-layer LSTM, gates i, f, g, o: ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``.

    PyTorch's ``torch.nn.LSTM``: parameters ``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}`` (4H, R),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), suffix ``_reverse`` for the reverse direction; with
    ``peepholes`` ``weight_ch_l{k}`` (3H,), and with ``proj_size`` P ``weight_hr_l{k}`` (P, H) (R = P, else
    H). The state is the pair ``(h, c)``, h (L*D, B, R) and c (L*D, B, H).

    With the options: ``i = f(a_i + p_i*c_{t-1})``, ``f = f(a_f + p_f*c_{t-1})`` (``1 - i`` with
    ``input_forget``), ``g = g(a_g)``, ``o = f(a_o + p_o*c_t)``, ``h_t = (o*h(c_t)) W_hr^T`` (without the
    product when ``proj_size`` is 0), the a's the gates' affine pre-activations, clamped to [-clip, clip]
    with ``clip``; f, g, h the activations of the roles (default sigmoid, tanh, tanh).
    """ + _CTOR_DOC.format(extra="", options="""
    proj_size : int, default 0
        PyTorch's ``proj_size`` P (0 < P < H): h is projected to P features by ``weight_hr_l{k}``.
    peepholes : bool, default False
        ONNX's peepholes ``P``: the cell state feeds the gates i, f (c_{t-1}) and o (c_t) through
        ``weight_ch_l{k}`` (3H,), blocks in the order i, f, o (ONNX's P is i, o, f).
    input_forget : bool, default False
        ONNX's ``input_forget``: the forget gate is ``1 - i`` (its weights then get zero gradient).""" +
        _ACTIVATIONS_DOC.format(h_role=" and of the role h\n        (applied to the cell state)", gates="i, f, o",
                                roles="f, g, h"))

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: Optional[bool] = None,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[int] = None,
        proj_size: int = 0,
        peepholes: bool = False,
        clip: Optional[float] = None,
        input_forget: bool = False,
        activation: Optional[ActivationLike] = None,
        recurrent_activation: Optional[ActivationLike] = None,
        activations: Optional[Sequence[Any]] = None,
        direction: Optional[str] = None,
        **other_cells_options: Any,
    ) -> None:
        refuse_other_cells_options("LSTM", other_cells_options)
        super().__init__(
            "lstm", input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, direction=direction, dropout=dropout, dtype=dtype, seed=seed,
            cell_options={"proj_size": proj_size, "peepholes": peepholes, "clip": clip, "input_forget": input_forget,
                          "activation": activation, "recurrent_activation": recurrent_activation,
                          "activations": activations},
        )

    @property
    def peepholes(self) -> bool:
        """Whether the cell state feeds the gates through ``weight_ch_l{k}``."""
        return self.options[0].peepholes

    @property
    def input_forget(self) -> bool:
        """Whether the forget gate is ``1 - i`` (ONNX's ``input_forget``)."""
        return self.options[0].input_forget


class GRU(RNNBase[np.ndarray]):
    __doc__ = """Multi-layer GRU (PyTorch's, linear before reset), gates r, z, n:
    ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``, ``h_t = (1-z)*n + z*h_{t-1}``.

    PyTorch's ``torch.nn.GRU``: parameters ``weight_ih_l{k}`` (3H, I_k), ``weight_hh_l{k}`` (3H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (3H,), suffix ``_reverse`` for the reverse direction.

    With the options: ``r = f(a_r)``, ``z = f(a_z)``, ``n = g(a_n)`` with ``a_n = W_in x + b_in +
    r*(W_hn h + b_hn)`` (``reset_after=True``) or ``W_in x + b_in + W_hn (r*h) + b_hn`` (False), the a's
    clamped to [-clip, clip] with ``clip``; f, g the activations of the roles (default sigmoid, tanh).
    """ + _CTOR_DOC.format(extra="", options="""
    reset_after : bool, default True
        Keras's ``reset_after`` (ONNX's ``linear_before_reset``): True is PyTorch's GRU; False applies the
        reset gate to h before the recurrent product.""" +
        _ACTIVATIONS_DOC.format(h_role="", gates="r, z", roles="f, g"))

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: Optional[bool] = None,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[int] = None,
        reset_after: bool = True,
        clip: Optional[float] = None,
        activation: Optional[ActivationLike] = None,
        recurrent_activation: Optional[ActivationLike] = None,
        activations: Optional[Sequence[Any]] = None,
        direction: Optional[str] = None,
        **other_cells_options: Any,
    ) -> None:
        refuse_other_cells_options("GRU", other_cells_options)
        super().__init__(
            "gru", input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, direction=direction, dropout=dropout, dtype=dtype, seed=seed,
            cell_options={"reset_after": reset_after, "clip": clip, "activation": activation,
                          "recurrent_activation": recurrent_activation, "activations": activations},
        )

    @property
    def reset_after(self) -> bool:
        """Whether the reset gate multiplies ``W_hn h + b_hn`` (True, PyTorch's) or h (False)."""
        return self.options[0].reset_after
