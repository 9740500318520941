"""Layers of every cell from its name, random arrays and states: the harness of the layer tests (tests/api/)."""

from __future__ import annotations

from rnnfast.layers import GRU, LSTM, RNN


def make(cell, *args, **kw):
    """The layer of ``cell`` ("rnn_tanh", "rnn_relu", "lstm", "gru") with the given arguments."""
    if cell.startswith("rnn"):
        return RNN(*args, nonlinearity=cell[4:], **kw)
    return {"lstm": LSTM, "gru": GRU}[cell](*args, **kw)


def rand(rng, *shape, dtype="float64"):
    return rng.standard_normal(shape).astype(dtype)


def state_of(cell, rng, shape, dtype="float64"):
    h = 0.5 * rand(rng, *shape, dtype=dtype)
    return (h, 0.5 * rand(rng, *shape, dtype=dtype)) if cell == "lstm" else h


def as_pair(cell, state):
    return state if cell == "lstm" else (state,)
