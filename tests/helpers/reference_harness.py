"""The harness of the reference's tests: random arguments and one calling convention for every cell of
rnnfast.reference, and the loss whose gradients its backward returns."""

from __future__ import annotations

import numpy as np

from rnnfast import reference as R

from helpers.cells import GATES

# Units of H per (step, batch row) in the training workspace of each cell.
WS_UNITS = {"rnn_tanh": 0, "rnn_relu": 0, "lstm": 6, "gru": 4}


def make_params(cell, T, B, I, H, *, seed=0, scale=0.5, dtype=np.float64, bias=True, states=True):
    """Random arguments for ``cell``: dict with x, h0, c0 (LSTM only), w_ih, w_hh, b_ih, b_hh."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)

    p = {
        "x": r(T, B, I),
        "h0": r(B, H, s=0.5) if states else None,
        "w_ih": r(G * H, I, s=scale),
        "w_hh": r(G * H, H, s=scale),
        "b_ih": r(G * H, s=scale) if bias else None,
        "b_hh": r(G * H, s=scale) if bias else None,
    }
    if cell == "lstm":
        p["c0"] = r(B, H, s=0.5) if states else None
    return p


def forward(cell, p, *, training=True, out=None):
    """Run the reference forward; returns dict with out, h_n, c_n (LSTM) and ws (when training)."""
    kw = dict(training=training, out=out)
    if cell == "lstm":
        res = R.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], **kw)
        names = ["out", "h_n", "c_n"]
    elif cell == "gru":
        res = R.gru(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], **kw)
        names = ["out", "h_n"]
    else:
        nl = cell.split("_")[1]
        res = R.rnn(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity=nl, **kw)
        names = ["out", "h_n"]
    if training:
        names = names + ["ws"]
    assert len(res) == len(names)
    return dict(zip(names, res))


def backward(cell, p, fw, d_out, d_h_n, d_c_n=None):
    if cell == "lstm":
        return R.lstm_backward(
            d_out, d_h_n, d_c_n, p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], fw["out"], fw["ws"]
        )
    if cell == "gru":
        return R.gru_backward(d_out, d_h_n, p["x"], p["h0"], p["w_ih"], p["w_hh"], fw["out"], fw["ws"])
    nl = cell.split("_")[1]
    return R.rnn_backward(
        d_out, d_h_n, p["x"], p["h0"], p["w_ih"], p["w_hh"], fw["out"], fw["ws"], nonlinearity=nl
    )


def make_cotangents(cell, T, B, H, *, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    d = {
        "d_out": rng.standard_normal((T, B, H)).astype(dtype),
        "d_h_n": rng.standard_normal((B, H)).astype(dtype),
    }
    d["d_c_n"] = rng.standard_normal((B, H)).astype(dtype) if cell == "lstm" else None
    return d


def loss(cell, p, d):
    """sum(out * d_out) + sum(h_n * d_h_n) (+ sum(c_n * d_c_n)): its gradients are what backward returns."""
    fw = forward(cell, p, training=False)
    total = np.sum(fw["out"] * d["d_out"]) + np.sum(fw["h_n"] * d["d_h_n"])
    if cell == "lstm":
        total += np.sum(fw["c_n"] * d["d_c_n"])
    return float(total)


GRAD_OF = {
    "d_x": "x", "d_h0": "h0", "d_c0": "c0", "d_w_ih": "w_ih", "d_w_hh": "w_hh", "d_b_ih": "b_ih", "d_b_hh": "b_hh"
}


def pre_activations(p, out):
    """RNN pre-activations ``W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`` recomputed from the output."""
    h_prev = np.concatenate([p["h0"][None], out[:-1]], axis=0)
    return p["x"] @ p["w_ih"].T + p["b_ih"] + h_prev @ p["w_hh"].T + p["b_hh"]
