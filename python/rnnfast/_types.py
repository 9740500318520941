"""Result types of the backward ops, shared by the native ops and :mod:`rnnfast.reference`; the state types of
the layers (:data:`LSTMState`, :data:`StateT`) and the precise results of the functional ops."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, TypeVar, Union

import numpy as np

#: What the array arguments accept: anything :func:`numpy.asarray` takes (checked at run time, where a bad
#: argument is a TypeError or ValueError naming it), so the annotations do not reject array-likes NumPy's
#: own ``ArrayLike`` does not describe (framework tensors exposing ``__array__`` through a base class).
ArrayLike = Any
#: The state of an LSTM, ``(h, c)``, as the layers return it.
LSTMState = tuple[np.ndarray, np.ndarray]
#: A state as a layer takes it: an array-like ``h0`` (RNN, GRU), or ``(h0, c0)`` (LSTM), either part None for
#: zeros. Checked at run time (the wrong kind is a TypeError), so typed loosely.
StateLike = Union[ArrayLike, tuple[Optional[ArrayLike], Optional[ArrayLike]]]
#: The state a layer returns, the type parameter of :class:`~rnnfast._rnn_base.RNNBase` and of
#: :class:`~rnnfast.Stepper`: ``np.ndarray`` h for :class:`~rnnfast.RNN` and :class:`~rnnfast.GRU`,
#: :data:`LSTMState` ``(h, c)`` for :class:`~rnnfast.LSTM`. A bound, not constraints, so that a generic body is
#: checked once (it returns its state through ``typing.cast``).
StateT = TypeVar("StateT", bound=Union[np.ndarray, LSTMState])


class RNNGrads(NamedTuple):
    """Gradients of a vanilla RNN layer (one direction). ``d_b_ih`` equals ``d_b_hh``: both biases are
    added to the same pre-activation."""

    d_x: np.ndarray  #: (T, B, I)
    d_h0: np.ndarray  #: (B, H)
    d_w_ih: np.ndarray  #: (H, I)
    d_w_hh: np.ndarray  #: (H, H)
    d_b_ih: np.ndarray  #: (H,)
    d_b_hh: np.ndarray  #: (H,)


class LSTMGrads(NamedTuple):
    """Gradients of an LSTM layer (one direction); gate order i, f, g, o as in the weights."""

    d_x: np.ndarray  #: (T, B, I)
    d_h0: np.ndarray  #: (B, H)
    d_c0: np.ndarray  #: (B, H)
    d_w_ih: np.ndarray  #: (4H, I)
    d_w_hh: np.ndarray  #: (4H, H)
    d_b_ih: np.ndarray  #: (4H,)
    d_b_hh: np.ndarray  #: (4H,)


class GRUGrads(NamedTuple):
    """Gradients of a GRU layer (one direction); gate order r, z, n. ``d_b_ih`` and ``d_b_hh`` differ in
    the n block, where the reset gate multiplies only the recurrent part."""

    d_x: np.ndarray  #: (T, B, I)
    d_h0: np.ndarray  #: (B, H)
    d_w_ih: np.ndarray  #: (3H, I)
    d_w_hh: np.ndarray  #: (3H, H)
    d_b_ih: np.ndarray  #: (3H,)
    d_b_hh: np.ndarray  #: (3H,)


class VariantGrads(NamedTuple):
    """Gradients of one direction of a cell variant (:func:`rnnfast.functional.variant_backward`), with G
    gates, H hidden units, R = proj_size or H the width of h. ``d_b_ih`` and ``d_b_hh`` differ only where
    the reset gate multiplies the recurrent bias (the GRU with ``reset_after=True``). ``d_w_hr`` is None
    without a projection, ``d_w_ch`` None without peepholes, ``d_c0`` None but for the LSTM."""

    d_x: np.ndarray  #: (T, B, I)
    d_h0: np.ndarray  #: (B, R)
    d_c0: "np.ndarray | None"  #: (B, H), LSTM only
    d_w_ih: np.ndarray  #: (G*H, I)
    d_w_hh: np.ndarray  #: (G*H, R)
    d_b_ih: np.ndarray  #: (G*H,)
    d_b_hh: np.ndarray  #: (G*H,)
    d_w_hr: "np.ndarray | None"  #: (P, H), with proj_size P > 0
    d_w_ch: "np.ndarray | None"  #: (3H,), gates i, f, o, with peepholes
