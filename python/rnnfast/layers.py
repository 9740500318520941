"""Multi-layer, optionally bidirectional recurrent layers: :class:`RNN`, :class:`LSTM` and :class:`GRU`.

The layers follow PyTorch's ``torch.nn.RNN``/``LSTM``/``GRU`` exactly (docs/design.md, section 3.1): the same
constructor arguments, the same input and state layouts, the same parameter names, shapes and gate order,
so ``m.load_state_dict({k: v.numpy() for k, v in torch_module.state_dict().items()})`` gives the same
results. The numerics live in the single-layer, single-direction functional ops (:mod:`rnnfast.functional`,
whose plain-NumPy twin is :mod:`rnnfast.reference`); this module is only the glue around them: stacking
layers, running the reverse direction on the time-reversed sequence, inter-layer dropout, layout
conversions and the bookkeeping that training needs.

Shapes, with T the sequence length, B the batch, I the input size, H the hidden size, L the number of
layers and D = 2 if bidirectional else 1:

- input ``x``: (T, B, I), (B, T, I) with ``batch_first=True``, or unbatched (T, I);
- output ``out``: (T, B, D*H), (B, T, D*H) with ``batch_first``, or unbatched (T, D*H);
- states ``h0``, ``c0``, ``h_n``, ``c_n``: (L*D, B, H), or unbatched (L*D, H); index ``layer*D + direction``.

Training::

    out, state = m.forward(x, state, training=True)   # saves what backprop through time needs
    d_x, d_state = m.backward(d_out, d_state_n)       # adds parameter gradients into m.grads
    ...                                               # update m.parameters() in place
    m.zero_grad()
"""

from __future__ import annotations

from typing import Any, Optional

from ._cells import cell_facts
from ._rnn_base import RNNBase
from ._validation import rnn_cell_name

__all__ = ["RNN", "LSTM", "GRU"]

_CTOR_DOC = """
    Parameters
    ----------
    input_size : int
        Number of features I of the input.
    hidden_size : int
        Number of features H of the hidden state.
    num_layers : int, default 1
        Number of stacked layers L; layer k > 0 takes the D*H outputs of layer k-1 as input.{extra}
    bias : bool, default True
        Whether the layers have the biases ``bias_ih_l*`` and ``bias_hh_l*``.
    batch_first : bool, default False
        Batched input and output are (B, T, features) instead of (T, B, features); states are unaffected.
    bidirectional : bool, default False
        Each layer also runs over the time-reversed sequence; outputs concatenate (forward, reverse).
    dropout : float, default 0.0
        In training, inverted dropout with this probability on the outputs of every layer but the last.
    dtype : 'float32' or 'float64', default 'float32'
        Dtype of the parameters and of every computation.
    seed : int or None
        Seed of the generator (``numpy.random.default_rng``) that draws the initial parameters
        (uniform in (-1/sqrt(H), 1/sqrt(H))) and the dropout masks.
"""


class RNN(RNNBase):
    __doc__ = """Multi-layer Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, act tanh or relu.

    PyTorch's ``torch.nn.RNN``: parameters ``weight_ih_l{k}`` (H, I_k), ``weight_hh_l{k}`` (H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (H,), with suffix ``_reverse`` for the reverse direction.
    """ + _CTOR_DOC.format(extra="\n    nonlinearity : 'tanh' or 'relu', default 'tanh'\n        The activation act.")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            rnn_cell_name(nonlinearity), input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, dropout=dropout, dtype=dtype, seed=seed,
        )

    @property
    def nonlinearity(self) -> str:
        """'tanh' or 'relu'."""
        return cell_facts(self._cell).nonlinearity


class LSTM(RNNBase):
    __doc__ = """Multi-layer LSTM, gates i, f, g, o: ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``.

    PyTorch's ``torch.nn.LSTM`` (without ``proj_size``): parameters ``weight_ih_l{k}`` (4H, I_k),
    ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), suffix ``_reverse`` for the
    reverse direction. The state is the pair ``(h, c)``.
    """ + _CTOR_DOC.format(extra="")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            "lstm", input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, dropout=dropout, dtype=dtype, seed=seed,
        )


class GRU(RNNBase):
    __doc__ = """Multi-layer GRU (PyTorch's, linear before reset), gates r, z, n:
    ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``, ``h_t = (1-z)*n + z*h_{t-1}``.

    PyTorch's ``torch.nn.GRU``: parameters ``weight_ih_l{k}`` (3H, I_k), ``weight_hh_l{k}`` (3H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (3H,), suffix ``_reverse`` for the reverse direction.
    """ + _CTOR_DOC.format(extra="")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(
            "gru", input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, dropout=dropout, dtype=dtype, seed=seed,
        )
