"""Random problems for the functional ops and one call convention for every cell: the native ops
(rnnfast.functional) and the reference (rnnfast.reference) run the same way and return a dict of every
result, forward and backward, so that tests compare them name by name."""

from __future__ import annotations

import numpy as np

from helpers.cells import CELLS, GATES  # noqa: F401  (CELLS: re-exported for the tests' parametrize)

# Per-sequence lengths of a batch of 5 sequences of 6 steps, every kind the kernels treat apart.
LENGTHS = {
    "full": [6, 6, 6, 6, 6],
    "sorted": [6, 4, 4, 2, 1],
    "unsorted": [3, 1, 6, 2, 6],
    "with_zero": [2, 0, 6, 0, 5],
    "all_zero": [0, 0, 0, 0, 0],
}


def make_problem(cell, T, B, I, H, dtype=np.float64, seed=0, bias=True):
    """Inputs, weights (PyTorch's init range), states and output gradients of ``cell`` at (T, B, I, H)."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    s = 1.0 / np.sqrt(H)
    p = dict(
        x=rng.standard_normal((T, B, I)),
        h0=rng.standard_normal((B, H)),
        w_ih=rng.uniform(-s, s, (G * H, I)),
        w_hh=rng.uniform(-s, s, (G * H, H)),
        b_ih=rng.uniform(-s, s, G * H) if bias else None,
        b_hh=rng.uniform(-s, s, G * H) if bias else None,
        d_out=rng.standard_normal((T, B, H)),
        d_h_n=rng.standard_normal((B, H)),
    )
    if cell == "lstm":
        p["c0"] = rng.standard_normal((B, H))
        p["d_c_n"] = rng.standard_normal((B, H))
    return {k: (None if v is None else v.astype(dtype)) for k, v in p.items()}


def run(ops, cell, p):
    """Forward in training mode and backward; returns a dict of every result."""
    if cell == "lstm":
        out, h_n, c_n, ws = ops.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                     training=True)
        g = ops.lstm_backward(p["d_out"], p["d_h_n"], p["d_c_n"], p["x"], p["h0"], p["c0"], p["w_ih"],
                              p["w_hh"], out, ws)
        return dict(out=out, h_n=h_n, c_n=c_n, workspace=ws, **g._asdict())
    kw = {} if cell == "gru" else {"nonlinearity": cell[4:]}
    fwd = ops.gru if cell == "gru" else ops.rnn
    bwd = ops.gru_backward if cell == "gru" else ops.rnn_backward
    out, h_n, ws = fwd(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], training=True, **kw)
    g = bwd(p["d_out"], p["d_h_n"], p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws, **kw)
    return dict(out=out, h_n=h_n, workspace=ws, **g._asdict())


def run_with_lengths(ops, cell, p, lengths):
    """``run`` with per-sequence ``lengths`` given to the forward and the backward."""
    if cell == "lstm":
        out, h_n, c_n, ws = ops.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                     training=True, lengths=lengths)
        g = ops.lstm_backward(p["d_out"], p["d_h_n"], p["d_c_n"], p["x"], p["h0"], p["c0"], p["w_ih"],
                              p["w_hh"], out, ws, lengths=lengths)
        return dict(out=out, h_n=h_n, c_n=c_n, workspace=ws, **g._asdict())
    kw = {} if cell == "gru" else {"nonlinearity": cell[4:]}
    fwd = ops.gru if cell == "gru" else ops.rnn
    bwd = ops.gru_backward if cell == "gru" else ops.rnn_backward
    out, h_n, ws = fwd(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], training=True,
                       lengths=lengths, **kw)
    g = bwd(p["d_out"], p["d_h_n"], p["x"], p["h0"], p["w_ih"], p["w_hh"], out, ws, lengths=lengths, **kw)
    return dict(out=out, h_n=h_n, workspace=ws, **g._asdict())


def assert_close(got, want, rtol, context):
    """Every result of ``want`` (a ``run`` dict) in ``got``, within ``rtol`` of its largest magnitude (or 1)."""
    for name, w in want.items():
        g = got[name]
        assert g.shape == w.shape, f"{context}: {name} shape {g.shape} != {w.shape}"
        if w.size == 0:
            continue
        scale = max(float(np.max(np.abs(w))), 1.0)
        err = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
        assert err <= rtol * scale, f"{context}: {name} differs by {err:.3e} (max |ref| {scale:.3e}, rtol {rtol})"

