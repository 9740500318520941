"""The forward recurrence of the NumPy reference: the cells' gate updates and the time loop around them.

Shared by the float ops of :mod:`rnnfast.reference` and its reduced-precision ops
(:mod:`rnnfast._reference_reduced`), which differ only in how the two products are formed: ``gx``, the
input projection of every step, and ``gh = recurrent(h_{t-1})``, the recurrent product of each step. The
cell arithmetic that turns ``(gx_t, gh_t)`` into the new state is written once, here, so the reduced
precisions are by construction "the float32 cell on reduced-precision products".

Conventions as in :mod:`rnnfast.reference`: gate blocks in the row order of the weights, ``gx`` (T, B, G*H),
states (B, H), lengths (B,) with PyTorch's packed-sequence meaning, written as a mask per step.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

__all__ = ["sigmoid", "running_rows", "keep", "split_gates", "zeros_or_copy", "recurrence"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-z))``, evaluated without overflow and in ``z``'s dtype.

    With ``e = exp(-|z|)`` (always in (0, 1]): ``sigmoid(z) = 1 / (1 + e)`` for ``z >= 0`` and
    ``e / (1 + e)`` for ``z < 0``, both accurate to a few ulps over the whole range.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def running_rows(lengths: Optional[np.ndarray], t: int) -> Optional[np.ndarray]:
    """(B, 1) mask of the rows still running at step ``t`` (``t < lengths``), or None for full length."""
    return None if lengths is None else (t < lengths)[:, None]


def keep(running: Optional[np.ndarray], new: np.ndarray, old) -> np.ndarray:
    """``new`` in the running rows, ``old`` (an array or a scalar) in the rows that have ended."""
    return new if running is None else np.where(running, new, old)


def split_gates(a: np.ndarray, n: int) -> list[np.ndarray]:
    """Split the last axis of ``a`` into ``n`` equal blocks (views), e.g. the gates i, f, g, o."""
    return np.split(a, n, axis=-1)


def zeros_or_copy(a: Optional[np.ndarray], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A new array: a copy of ``a``, or zeros of ``shape`` when ``a`` is None."""
    return np.zeros(shape, dtype=dtype) if a is None else a.copy()


def _rnn_update(nonlinearity: str):
    def update(gx_t: np.ndarray, gh: np.ndarray, h: np.ndarray, c: None):
        pre = gx_t + gh
        h_new = np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0.0)
        return h_new, None, ()

    return update


def _lstm_update(gx_t: np.ndarray, gh: np.ndarray, h: np.ndarray, c: np.ndarray):
    """Gates i, f, g, o of ``pre = gx_t + gh``; returns h_t, c_t and the workspace blocks."""
    pre_i, pre_f, pre_g, pre_o = split_gates(gx_t + gh, 4)
    i, f, g, o = sigmoid(pre_i), sigmoid(pre_f), np.tanh(pre_g), sigmoid(pre_o)
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    h_new = o * tanh_c
    return h_new, c_new, (i, f, g, o, c_new, tanh_c)


def _gru_update(gx_t: np.ndarray, gh: np.ndarray, h: np.ndarray, c: None):
    """Gates r, z, n, linear before reset: r multiplies the whole recurrent n block ``gh_n`` (its bias
    ``b_hn`` included, which is why the caller adds ``b_hn`` to ``gh``, never to ``gx``)."""
    gi_r, gi_z, gi_n = split_gates(gx_t, 3)
    gh_r, gh_z, gh_n = split_gates(gh, 3)
    r = sigmoid(gi_r + gh_r)
    z = sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    h_new = (1.0 - z) * n + z * h
    return h_new, None, (r, z, n, gh_n)


def _cell_update(cell: str):
    if cell == "lstm":
        return _lstm_update
    if cell == "gru":
        return _gru_update
    return _rnn_update(cell[len("rnn_"):])


def recurrence(
    cell: str,
    gx: np.ndarray,
    recurrent: Callable[[np.ndarray], np.ndarray],
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    lengths: Optional[np.ndarray],
    out: np.ndarray,
    workspace: Optional[np.ndarray],
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Run ``cell`` ('rnn_tanh', 'rnn_relu', 'lstm', 'gru') over the steps of ``gx``; return ``(h_n, c_n)``.

    Parameters
    ----------
    gx : (T, B, G*H)
        The input projection of every step, biases included (all but the GRU's ``b_hn``).
    recurrent : callable
        ``recurrent(h_{t-1})`` -> ``gh`` (B, G*H): the recurrent product of a step (for the GRU with
        ``b_hh``, or at least ``b_hn``, added: the reset gate multiplies it).
    h0, c0 : (B, H) or None (zeros); ``c0`` only for the LSTM.
    lengths : (B,) int64 or None
        Row b runs steps ``t < lengths[b]``; past its end its output and workspace are zero and its state
        stays the state after its last step.
    out : (T, B, H)
        Written with ``h_t`` of every step.
    workspace : (T, B, W) or None
        Written with what the training forward saves (see :mod:`rnnfast.reference`), if given.

    Returns
    -------
    h_n, c_n : (B, H) new arrays; ``c_n`` is None except for the LSTM.
    """
    T, B = gx.shape[:2]
    H = out.shape[2]
    update = _cell_update(cell)
    h = zeros_or_copy(h0, (B, H), out.dtype)
    c = zeros_or_copy(c0, (B, H), out.dtype) if cell == "lstm" else None
    for t in range(T):
        running = running_rows(lengths, t)
        h_new, c_new, saved = update(gx[t], recurrent(h), h, c)
        out[t] = keep(running, h_new, 0.0)
        if workspace is not None and saved:
            for block, value in zip(split_gates(workspace[t], len(saved)), saved):
                block[...] = keep(running, value, 0.0)
        h = keep(running, h_new, h)
        if c is not None:
            c = keep(running, c_new, c)
    # h (and c) are fresh arrays from the last step (or the copies of h0, c0), never views of an input.
    return h, c
