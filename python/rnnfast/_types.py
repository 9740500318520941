"""Result types of the backward ops, shared by the native ops and :mod:`rnnfast.reference`."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


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
