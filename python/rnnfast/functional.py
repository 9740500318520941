"""Functional ops: one recurrent layer in one direction, on the native kernels.

Every function has the same signature and the same results as its twin in :mod:`rnnfast.reference`
(plain NumPy, the definition these kernels are tested against). Shapes, with T the sequence length,
B the batch, I the input size, H the hidden size and G the gate count (1 RNN, 4 LSTM, 3 GRU):

- ``x`` (T, B, I); ``h0``, ``c0`` (B, H) or None for zeros;
- ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih``, ``b_hh`` (G*H,) or both None;
- results ``out`` (T, B, H), ``h_n`` and ``c_n`` (B, H); with ``training=True`` also the
  ``workspace`` (T, B, W) that the matching ``*_backward`` needs.

Inputs may be any array-likes; the computation runs in the dtype NumPy's promotion gives them (float64
or float32). ``out=`` takes an array to write the output sequence into. ``lengths=`` (B,) gives
per-sequence lengths with PyTorch's packed-sequence meaning (see :mod:`rnnfast.reference`); the kernels
run the rows sorted by length so that no work is spent past a sequence's end, and any order is accepted.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, overload

import numpy as np

from . import _core
from ._cells import cell_facts
from ._length_order import LengthOrder
from ._validation import ForwardArgs, output_buffer, prepare_backward, prepare_forward, prepare_lengths, rnn_cell_name
from ._types import ArrayLike, GRUGrads, LSTMGrads, RNNGrads, VariantGrads
from ._variant_validation import KERNEL_CELL, prepare_variant_backward, prepare_variant_forward
from ._variants import CellOptions

__all__ = [
    "rnn", "lstm", "gru", "rnn_backward", "lstm_backward", "gru_backward", "variant_forward", "variant_backward",
    "RNNGrads", "LSTMGrads", "GRUGrads", "VariantGrads",
]

#: The kernels' encoding of a cell variant's options (:func:`variant_kernel_options`).
KernelOptions = tuple[str, list[tuple[int, float, float]], float, bool, bool]


def _forward(a: ForwardArgs, training: bool, out: Optional[np.ndarray],
             lengths: Optional[np.ndarray]) -> tuple[Any, ...]:
    """The op on checked arguments: ``lengths`` as :func:`prepare_lengths` returns them."""
    T, B, H = a.T, a.B, a.H
    facts = cell_facts(a.cell)
    lstm = facts.cell_state
    rows = LengthOrder(lengths)
    inputs = [a.x, a.h0, a.c0, a.w_ih, a.w_hh, a.b_ih, a.b_hh]
    buffer, copy_back = output_buffer(out, (T, B, H), a.dtype, inputs)
    kernel_out = buffer if rows.order is None else np.empty((T, B, H), dtype=a.dtype)
    h_n = np.empty((B, H), dtype=a.dtype)
    c_n = np.empty((B, H), dtype=a.dtype) if lstm else None
    workspace = np.empty((T, B, facts.workspace_width(H)), dtype=a.dtype) if training else None
    _core.forward(a.cell, rows.sort(a.x, 1), rows.sort(a.h0, 0), rows.sort(a.c0, 0), a.w_ih, a.w_hh, a.b_ih,
                  a.b_hh, kernel_out, h_n, c_n, workspace, rows.lengths)
    if rows.order is not None:
        buffer[...] = rows.restore(kernel_out, 1)
        h_n, c_n, workspace = rows.restore(h_n, 0), rows.restore(c_n, 0), rows.restore(workspace, 1)
    if copy_back:
        assert out is not None  # copy_back only with an out
        np.copyto(out, buffer, casting="same_kind")
        buffer = out
    results = (buffer, h_n) + ((c_n,) if lstm else ())
    return results + (workspace,) if training else results


def _backward(cell: str, d_out: Optional[ArrayLike], d_h_n: Optional[ArrayLike], d_c_n: Optional[ArrayLike],
              x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
              out: np.ndarray, workspace: np.ndarray, lengths: Optional[ArrayLike]) -> tuple[Any, ...]:
    b = prepare_backward(cell, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, out, workspace)
    f = b.fwd
    rows = LengthOrder(prepare_lengths(lengths, f.T, f.B))
    dt, GH = f.dtype, f.G * f.H
    d_x = np.empty((f.T, f.B, f.I), dtype=dt)
    d_h0 = np.empty((f.B, f.H), dtype=dt)
    d_c0 = np.empty((f.B, f.H), dtype=dt) if cell_facts(cell).cell_state else None
    d_w_ih = np.empty((GH, f.I), dtype=dt)
    d_w_hh = np.empty((GH, f.H), dtype=dt)
    d_b_ih = np.empty((GH,), dtype=dt)
    d_b_hh = np.empty((GH,), dtype=dt)
    _core.backward(cell, rows.sort(f.x, 1), rows.sort(f.h0, 0), rows.sort(f.c0, 0), f.w_ih, f.w_hh,
                   rows.sort(b.out, 1), rows.sort(b.workspace, 1), rows.sort(b.d_out, 1), rows.sort(b.d_h_n, 0),
                   rows.sort(b.d_c_n, 0), d_x, d_h0, d_c0, d_w_ih, d_w_hh, d_b_ih, d_b_hh, rows.lengths)
    d_x, d_h0, d_c0 = rows.restore(d_x, 1), rows.restore(d_h0, 0), rows.restore(d_c0, 0)
    return d_x, d_h0, d_c0, d_w_ih, d_w_hh, d_b_ih, d_b_hh


def forward_checked(a: ForwardArgs, training: bool, lengths: Optional[np.ndarray]) -> tuple[Any, ...]:
    """One layer in one direction on arguments the caller has already checked: ``a`` as
    :func:`rnnfast._validation.prepare_forward` would make it (C-contiguous arrays of ``a.dtype``, shapes
    consistent) and ``lengths`` as :func:`rnnfast._validation.prepare_lengths` returns them. The layers
    call it, so that a layer call checks its arguments once; the results are those of :func:`rnn`,
    :func:`lstm` and :func:`gru` (the kernels still refuse what they cannot run)."""
    return _forward(a, training, None, lengths)


# The results' count depends on ``training``: overloads on its literal value give a type checker the precise
# tuple (``out, h_n = rnnfast.rnn(...)``), and ``bool`` (a value known at run time only) a tuple of arrays.
@overload
def rnn(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, nonlinearity: str = "tanh", training: Literal[False] = False,
        out: Optional[np.ndarray] = None, lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def rnn(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, nonlinearity: str = "tanh", training: Literal[True],
        out: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def rnn(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, nonlinearity: str = "tanh", training: bool,
        out: Optional[np.ndarray] = None, lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, ...]: ...


def rnn(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, nonlinearity: str = "tanh", training: bool = False,
        out: Optional[np.ndarray] = None, lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, ...]:
    """Vanilla RNN layer: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, act tanh or relu.

    Returns ``(out, h_n)``, or ``(out, h_n, workspace)`` with ``training=True`` (the RNN's workspace
    has width 0: its backward needs only ``out``).
    """
    a = prepare_forward(rnn_cell_name(nonlinearity), x, h0, None, w_ih, w_hh, b_ih, b_hh)
    return _forward(a, training, out, prepare_lengths(lengths, a.T, a.B))


@overload
def lstm(x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
         b_ih: Optional[ArrayLike] = None, b_hh: Optional[ArrayLike] = None, *, training: Literal[False] = False,
         out: Optional[np.ndarray] = None,
         lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def lstm(x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
         b_ih: Optional[ArrayLike] = None, b_hh: Optional[ArrayLike] = None, *, training: Literal[True],
         out: Optional[np.ndarray] = None,
         lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def lstm(x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
         b_ih: Optional[ArrayLike] = None, b_hh: Optional[ArrayLike] = None, *, training: bool,
         out: Optional[np.ndarray] = None, lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, ...]: ...


def lstm(x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
         b_ih: Optional[ArrayLike] = None, b_hh: Optional[ArrayLike] = None, *, training: bool = False,
         out: Optional[np.ndarray] = None, lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, ...]:
    """LSTM layer, gates i, f, g, o: ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)``.

    Returns ``(out, h_n, c_n)``, or ``(out, h_n, c_n, workspace)`` with ``training=True``; the workspace
    (T, B, 6H) holds ``[i, f, g, o, c_t, tanh(c_t)]`` per row.
    """
    a = prepare_forward("lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return _forward(a, training, out, prepare_lengths(lengths, a.T, a.B))


@overload
def gru(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, training: Literal[False] = False, out: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def gru(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, training: Literal[True], out: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def gru(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, training: bool, out: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, ...]: ...


def gru(x: ArrayLike, h0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
        b_hh: Optional[ArrayLike] = None, *, training: bool = False, out: Optional[np.ndarray] = None,
        lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, ...]:
    """GRU layer (PyTorch's, linear before reset), gates r, z, n:
    ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``, ``h_t = (1-z)*n + z*h_{t-1}``.

    Returns ``(out, h_n)``, or ``(out, h_n, workspace)`` with ``training=True``; the workspace
    (T, B, 4H) holds ``[r, z, n, W_hn h_{t-1} + b_hn]`` per row.
    """
    a = prepare_forward("gru", x, h0, None, w_ih, w_hh, b_ih, b_hh)
    return _forward(a, training, out, prepare_lengths(lengths, a.T, a.B))


def rnn_backward(d_out: Optional[ArrayLike], d_h_n: Optional[ArrayLike], x: ArrayLike, h0: Optional[ArrayLike],
                 w_ih: ArrayLike, w_hh: ArrayLike, out: np.ndarray, workspace: np.ndarray, *,
                 nonlinearity: str = "tanh", lengths: Optional[ArrayLike] = None) -> RNNGrads:
    """Backward through time of :func:`rnn`. ``out`` and ``workspace`` come from ``rnn(..., training=True)``
    on the same ``x``, ``h0`` and weights; ``d_out`` (T, B, H) and ``d_h_n`` (B, H) may be None (zeros)."""
    d_x, d_h0, _, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _backward(
        rnn_cell_name(nonlinearity), d_out, d_h_n, None, x, h0, None, w_ih, w_hh, out, workspace, lengths)
    return RNNGrads(d_x, d_h0, d_w_ih, d_w_hh, d_b_ih, d_b_hh)


def lstm_backward(d_out: Optional[ArrayLike], d_h_n: Optional[ArrayLike], d_c_n: Optional[ArrayLike], x: ArrayLike,
                  h0: Optional[ArrayLike], c0: Optional[ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
                  out: np.ndarray, workspace: np.ndarray, *, lengths: Optional[ArrayLike] = None) -> LSTMGrads:
    """Backward through time of :func:`lstm`; ``out`` and ``workspace`` from ``lstm(..., training=True)``."""
    return LSTMGrads(*_backward("lstm", d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, out, workspace, lengths))


def gru_backward(d_out: Optional[ArrayLike], d_h_n: Optional[ArrayLike], x: ArrayLike, h0: Optional[ArrayLike],
                 w_ih: ArrayLike, w_hh: ArrayLike, out: np.ndarray, workspace: np.ndarray, *,
                 lengths: Optional[ArrayLike] = None) -> GRUGrads:
    """Backward through time of :func:`gru`; ``out`` and ``workspace`` from ``gru(..., training=True)``."""
    d_x, d_h0, _, d_w_ih, d_w_hh, d_b_ih, d_b_hh = _backward(
        "gru", d_out, d_h_n, None, x, h0, None, w_ih, w_hh, out, workspace, lengths)
    return GRUGrads(d_x, d_h0, d_w_ih, d_w_hh, d_b_ih, d_b_hh)


# ---------------------------------------------------------------------------------------------------------
# Cell variants (rnnfast._variants): any activation per gate role, clip, input_forget, the GRU's reset gate
# before the product, the LSTM's projection and peepholes.
# ---------------------------------------------------------------------------------------------------------

def variant_kernel_options(options: CellOptions) -> KernelOptions:
    """The kernels' encoding of the options: (cell, [(kind, alpha, beta)] per role, clip (0: none),
    input_forget, reset_after); the RNN's cell is 'rnn_tanh' whatever its activation (the options decide)."""
    acts = [(a.index, a.alpha or 0.0, a.beta or 0.0) for a in options.activations]
    return (KERNEL_CELL[options.family], acts, options.clip or 0.0, options.input_forget, options.reset_after)


def variant_forward(options: CellOptions, x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike],
                    w_ih: ArrayLike, w_hh: ArrayLike, b_ih: Optional[ArrayLike] = None,
                    b_hh: Optional[ArrayLike] = None, w_hr: Optional[ArrayLike] = None,
                    w_ch: Optional[ArrayLike] = None, *, training: bool = False,
                    lengths: Optional[ArrayLike] = None,
                    ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """One layer, one direction of a cell variant (:class:`rnnfast._variants.CellOptions`), natively.

    Shapes, with G gates, H hidden units, R = proj_size or H: ``x`` (T, B, I); ``h0`` (B, R) or None;
    ``c0`` (B, H) or None (LSTM only); ``w_ih`` (G*H, I); ``w_hh`` (G*H, R); ``b_ih``, ``b_hh`` (G*H,) or
    both None; ``w_hr`` (P, H) with a projection, else None; ``w_ch`` (3H,) with peepholes (gates i, f, o),
    else None.

    Returns ``(out, h_n, c_n, workspace)``: out (T, B, R), h_n (B, R), c_n (B, H) for the LSTM else None,
    and with ``training=True`` the workspace (T, B, slots*H) that :func:`variant_backward` needs (its layout
    in :mod:`rnnfast._variants`), else None. The same results as :func:`rnnfast.reference.variant_forward`
    up to rounding.
    """
    a = prepare_variant_forward(options, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch)
    T, B, H, R, dt = a.T, a.B, a.H, a.R, a.dtype
    lstm = options.family == "lstm"
    rows = LengthOrder(prepare_lengths(lengths, T, B))
    out = np.empty((T, B, R), dtype=dt)
    h_n = np.empty((B, R), dtype=dt)
    c_n = np.empty((B, H), dtype=dt) if lstm else None
    workspace = np.empty((T, B, a.workspace_width), dtype=dt) if training else None
    _core.variant_forward(*variant_kernel_options(options), rows.sort(a.x, 1), rows.sort(a.h0, 0), rows.sort(a.c0, 0),
                          a.w_ih, a.w_hh, a.b_ih, a.b_hh, a.w_hr, a.w_ch, out, h_n, c_n, workspace, rows.lengths)
    return (rows.restore(out, 1), rows.restore(h_n, 0), rows.restore(c_n, 0), rows.restore(workspace, 1))


def variant_backward(options: CellOptions, d_out: Optional[ArrayLike], d_h_n: Optional[ArrayLike],
                     d_c_n: Optional[ArrayLike], x: ArrayLike, h0: Optional[ArrayLike], c0: Optional[ArrayLike],
                     w_ih: ArrayLike, w_hh: ArrayLike, w_hr: Optional[ArrayLike], w_ch: Optional[ArrayLike],
                     out: np.ndarray, workspace: np.ndarray, *, lengths: Optional[ArrayLike] = None) -> VariantGrads:
    """Backward through time of :func:`variant_forward`; ``out`` and ``workspace`` from
    ``variant_forward(..., training=True)`` on the same inputs. ``d_out`` (T, B, R), ``d_h_n`` (B, R) and
    ``d_c_n`` (B, H) may be None (zeros). Returns :class:`rnnfast.VariantGrads`."""
    # (prepare_variant_backward has no annotations: its results are typed here.)
    checked: tuple[Any, ...] = prepare_variant_backward(  # type: ignore[no-untyped-call]
        options, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, w_hr, w_ch, out, workspace)
    f, out, workspace, d_out, d_h_n, d_c_n = checked
    T, B, I, H, R, G, dt = f.T, f.B, f.I, f.H, f.R, f.G, f.dtype
    lstm = options.family == "lstm"
    rows = LengthOrder(prepare_lengths(lengths, T, B))
    d_x = np.empty((T, B, I), dtype=dt)
    d_h0 = np.empty((B, R), dtype=dt)
    d_c0 = np.empty((B, H), dtype=dt) if lstm else None
    d_w_ih = np.empty((G * H, I), dtype=dt)
    d_w_hh = np.empty((G * H, R), dtype=dt)
    d_b_ih = np.empty((G * H,), dtype=dt)
    d_b_hh = np.empty((G * H,), dtype=dt)
    d_w_hr = np.empty_like(f.w_hr) if f.w_hr is not None else None
    d_w_ch = np.empty_like(f.w_ch) if f.w_ch is not None else None
    _core.variant_backward(*variant_kernel_options(options), rows.sort(f.x, 1), rows.sort(f.h0, 0), rows.sort(f.c0, 0),
                           f.w_ih, f.w_hh, f.w_hr, f.w_ch, rows.sort(out, 1), rows.sort(workspace, 1),
                           rows.sort(d_out, 1), rows.sort(d_h_n, 0), rows.sort(d_c_n, 0), d_x, d_h0, d_c0,
                           d_w_ih, d_w_hh, d_b_ih, d_b_hh, d_w_hr, d_w_ch, rows.lengths)
    return VariantGrads(rows.restore(d_x, 1), rows.restore(d_h0, 0), rows.restore(d_c0, 0), d_w_ih, d_w_hh, d_b_ih,
                        d_b_hh, d_w_hr, d_w_ch)
