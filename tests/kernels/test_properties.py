"""Property-based tests (hypothesis): native kernels against rnnfast.reference over random problems.

Each property draws a cell, sizes (off every vector width; empty ones are in api/test_bad_input_*), layer counts,
directions, dtypes, layouts, optional states and biases, and per-sequence lengths; it runs forward and
backward natively and on the plain-NumPy reference in float64, and compares every result.

Tolerances, relative to the largest magnitude of each reference result (docs/design.md, section 3.9): float64
agrees to round-off (``TOL[float64]``); float32 is compared with the float64 reference and must agree to
``TOL[float32]`` (1e-5, the design's promise) or, where a result is ill-conditioned in float32, to
``YARDSTICK`` times what float32 arithmetic itself does to it: the largest error of the reference run in
float32 on the inputs, on the inputs moved by one ulp either way, and with what the forward saved for the
backward (outputs, activations) moved by one ulp either way. Ill-conditioned results are a weight
gradient that is a sum of T*B terms of both signs cancelling to something small, or ``1 - h**2`` of a
saturated tanh, where one ulp of ``h`` (the kernels' tanh is within 2 ulp) moves the gradient by far more
than 1e-5.
"""

from __future__ import annotations

import contextlib
import inspect
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnfast
import rnnfast._rnn_base as rnn_base
from rnnfast import functional, reference

from helpers.cells import GATES

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
YARDSTICK = 8.0
HAS_LENGTHS = "lengths" in inspect.signature(functional.lstm).parameters
HAS_STEPPER = hasattr(rnn_base.RNNBase, "stepper")

PROPERTY = settings(max_examples=80, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

cells = st.sampled_from(sorted(GATES))
dtypes = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])
seeds = st.integers(0, 2 ** 32 - 1)


def rel_error(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))


def assert_all_close(got: dict, want: dict, dtype, context: str, same_precision: list = ()) -> None:
    """``got`` (native, ``dtype``) against ``want`` (reference, float64), result by result.

    ``same_precision``: results of the reference in ``dtype`` (on the inputs and on nudged inputs), whose own
    errors widen the tolerance of ill-conditioned results (see the module docstring).
    """
    assert set(got) == set(want), context
    for name in want:
        if want[name] is None:
            assert got[name] is None, f"{context}: {name}"
            continue
        assert np.asarray(got[name]).dtype == dtype, f"{context}: {name} has dtype {np.asarray(got[name]).dtype}"
        tol = TOL[np.dtype(dtype)]
        for other in same_precision:
            tol = max(tol, YARDSTICK * rel_error(other[name], want[name]))
        err = rel_error(got[name], want[name])
        assert err <= tol, f"{context}: {name} differs by {err:.2e} relative (tolerance {tol:.1e})"


@contextlib.contextmanager
def reference_ops():
    with mock.patch.object(rnn_base, "functional_ops", lambda: reference):
        yield


@st.composite
def lengths_for(draw, T: int, B: int):
    """None, or valid per-sequence lengths (any order) when the build supports them."""
    if not HAS_LENGTHS or B == 0 or not draw(st.booleans()):
        return None
    return draw(st.lists(st.integers(0, T), min_size=B, max_size=B))


# ---------------------------------------------------------------------------------------------------
# Functional ops: one layer, one direction
# ---------------------------------------------------------------------------------------------------

@st.composite
def op_problems(draw):
    cell = draw(cells)
    T, B = draw(st.integers(1, 7)), draw(st.integers(1, 5))  # empty sizes: see api/test_bad_input_*
    I, H = draw(st.integers(1, 19)), draw(st.integers(1, 19))
    dtype = draw(dtypes)
    G = GATES[cell]
    rng = np.random.default_rng(draw(seeds))
    scale = 1.0 / np.sqrt(H)

    def arr(*shape, s=1.0):
        return (s * rng.uniform(-1, 1, size=shape)).astype(dtype)

    p = {"cell": cell, "dtype": dtype, "x": arr(T, B, I), "w_ih": arr(G * H, I, s=2 * scale),
         "w_hh": arr(G * H, H, s=2 * scale), "h0": arr(B, H) if draw(st.booleans()) else None,
         "c0": arr(B, H) if cell == "lstm" and draw(st.booleans()) else None,
         "b_ih": None, "b_hh": None, "d_out": arr(T, B, H),
         "d_h_n": arr(B, H) if draw(st.booleans()) else None,
         "d_c_n": arr(B, H) if cell == "lstm" and draw(st.booleans()) else None,
         "lengths": draw(lengths_for(T, B))}
    if draw(st.booleans()):
        p["b_ih"], p["b_hh"] = arr(G * H, s=scale), arr(G * H, s=scale)
    if draw(st.booleans()):  # a non-contiguous view of the same values
        wide = np.zeros((T, B, 2 * I), dtype=dtype)
        wide[..., ::2] = p["x"]
        p["x"] = wide[..., ::2]
    return p


def nudged(a: np.ndarray, direction: int) -> np.ndarray:
    """``a`` moved by one ulp towards +inf (1) or -inf (-1); unchanged for 0."""
    return a if direction == 0 else np.nextafter(a, np.inf * direction).astype(a.dtype)


def run_op(mod, p: dict, dtype, nudge: int = 0, nudge_saved: int = 0) -> dict:
    """Forward (training) and backward of ``p`` through ``mod``, every array cast to ``dtype`` first (and
    moved by one ulp if ``nudge``); ``nudge_saved`` moves what the forward saved for the backward (the
    outputs and the workspace's activations) by one ulp, as a forward within an ulp of this one could."""
    cast = {k: (None if v is None else nudged(np.asarray(v).astype(dtype), nudge)) for k, v in p.items()
            if k not in ("cell", "dtype", "lengths")}
    cell = p["cell"]
    kw = {"lengths": p["lengths"]} if p["lengths"] is not None else {}
    if cell == "lstm":
        out, h_n, c_n, ws = mod.lstm(cast["x"], cast["h0"], cast["c0"], cast["w_ih"], cast["w_hh"], cast["b_ih"],
                                     cast["b_hh"], training=True, **kw)
        out, ws = nudged(out, nudge_saved), nudged(ws, nudge_saved)
        g = mod.lstm_backward(cast["d_out"], cast["d_h_n"], cast["d_c_n"], cast["x"], cast["h0"], cast["c0"],
                              cast["w_ih"], cast["w_hh"], out, ws, **kw)
        results = {"out": out, "h_n": h_n, "c_n": c_n}
    else:
        nl = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}
        fwd, bwd = (mod.gru, mod.gru_backward) if cell == "gru" else (mod.rnn, mod.rnn_backward)
        out, h_n, ws = fwd(cast["x"], cast["h0"], cast["w_ih"], cast["w_hh"], cast["b_ih"], cast["b_hh"],
                           training=True, **nl, **kw)
        out, ws = nudged(out, nudge_saved), nudged(ws, nudge_saved)
        g = bwd(cast["d_out"], cast["d_h_n"], cast["x"], cast["h0"], cast["w_ih"], cast["w_hh"], out, ws, **nl, **kw)
        results = {"out": out, "h_n": h_n}
    results.update(g._asdict())
    return results


@PROPERTY
@given(op_problems())
def test_functional_ops_match_reference(p):
    """Every result of every op, forward and backward, equals the float64 reference's."""
    dtype = p["dtype"]
    got = run_op(functional, p, dtype)
    want = run_op(reference, p, np.float64)
    same = []
    if dtype != np.float64:
        same = [run_op(reference, p, dtype, nudge) for nudge in (0, 1, -1)]
        same += [run_op(reference, p, dtype, nudge_saved=nudge) for nudge in (1, -1)]
    shapes = {k: getattr(p[k], "shape", None) for k in ("x", "w_hh")}
    assert_all_close(got, want, dtype, f"{p['cell']} {dtype} {shapes} lengths={p['lengths']}", same)


# ---------------------------------------------------------------------------------------------------
# Layers: stacks, directions, layouts
# ---------------------------------------------------------------------------------------------------

@st.composite
def layer_problems(draw):
    cls_name = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    kw = dict(num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()), bias=draw(st.booleans()),
              batch_first=draw(st.booleans()))
    if cls_name == "RNN":
        kw["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    T, B, I, H = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 11)), draw(st.integers(1, 11))
    unbatched = draw(st.booleans())
    if unbatched:
        B = 1
    return {"cls": cls_name, "kw": kw, "T": T, "B": B, "I": I, "H": H, "unbatched": unbatched,
            "dtype": draw(dtypes), "seed": draw(seeds), "with_state": draw(st.booleans()),
            "lengths": None if unbatched else draw(lengths_for(T, B))}


def run_layer(p: dict, dtype, use_reference: bool, nudge: int = 0, nudge_saved: int = 0) -> dict:
    """Forward (training) and backward of the layer ``p`` describes, computed in ``dtype``.

    Parameters and inputs are drawn once and rounded to ``p["dtype"]``, so the float64 run sees exactly the
    values the native run in float32 sees; ``nudge`` moves each of them by one ulp, ``nudge_saved`` what
    the forward saved for the backward (as in ``run_op``).
    """
    cls = {"RNN": rnnfast.RNN, "LSTM": rnnfast.LSTM, "GRU": rnnfast.GRU}[p["cls"]]
    m = cls(p["I"], p["H"], **p["kw"], dtype=p["dtype"], seed=p["seed"] % 1000)
    params = {k: nudged(v, nudge).astype(dtype) for k, v in m.state_dict().items()}
    m = cls(p["I"], p["H"], **p["kw"], dtype=dtype)
    m.load_state_dict(params)
    rng = np.random.default_rng(p["seed"])

    def draw(shape):
        return nudged(rng.uniform(-1, 1, shape).astype(p["dtype"]), nudge).astype(dtype)

    T, B, I, H = p["T"], p["B"], p["I"], p["H"]
    LD = m.num_layers * m.num_directions
    if p["unbatched"]:
        x_shape, s_shape = (T, I), (LD, H)
    else:
        x_shape, s_shape = ((B, T, I) if m.batch_first else (T, B, I)), (LD, B, H)
    x = draw(x_shape)
    state = None
    if p["with_state"]:
        state = (draw(s_shape), draw(s_shape)) if p["cls"] == "LSTM" else draw(s_shape)
    kw = {"lengths": p["lengths"]} if p["lengths"] is not None else {}
    ctx = reference_ops() if use_reference else contextlib.nullcontext()
    with ctx:
        out, state_n = m.forward(x, state, training=True, **kw)
        if nudge_saved:
            for saved in m._cache.outs + m._cache.workspaces:  # per layer, per direction
                for a in saved:
                    if a is not None:
                        a[...] = nudged(a, nudge_saved)
        d_out = draw(out.shape)
        d_state_n = (draw(s_shape), draw(s_shape)) if p["cls"] == "LSTM" else draw(s_shape)
        d_x, d_state = m.backward(d_out, d_state_n)
    pair = (lambda s: s) if p["cls"] == "LSTM" else (lambda s: (s, None))
    h_n, c_n = pair(state_n)
    d_h0, d_c0 = pair(d_state)
    results = {"out": out, "h_n": h_n, "c_n": c_n, "d_x": d_x, "d_h0": d_h0, "d_c0": d_c0}
    results.update({f"grad {k}": v for k, v in m.grads.items()})
    return results


@PROPERTY
@given(layer_problems())
def test_layers_match_reference(p):
    """Stacked, bidirectional, batch-first, unbatched, with and without state and lengths: forward and backward
    of the native layer equal the same layer on the float64 reference ops."""
    got = run_layer(p, p["dtype"], use_reference=False)
    want = run_layer(p, np.float64, use_reference=True)
    same = []
    if p["dtype"] != np.float64:
        same = [run_layer(p, p["dtype"], True, nudge) for nudge in (0, 1, -1)]
        same += [run_layer(p, p["dtype"], True, nudge_saved=nudge) for nudge in (1, -1)]
    assert_all_close(got, want, p["dtype"], f"{p}", same)


# ---------------------------------------------------------------------------------------------------
# Stepper: streaming in chunks equals one call on the whole sequence
# ---------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_STEPPER, reason="the stepper is not in this build yet")
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(cls_name=st.sampled_from(["RNN", "LSTM", "GRU"]), num_layers=st.integers(1, 3), B=st.integers(1, 4),
       I=st.integers(1, 11), H=st.integers(1, 11), dtype=dtypes, seed=seeds,
       cuts=st.lists(st.integers(0, 8), max_size=4))
def test_stepper_matches_whole_sequence(cls_name, num_layers, B, I, H, dtype, seed, cuts):
    """Feeding a sequence in chunks (single steps and step_many) gives the layer's whole-sequence output bit
    for bit, and the float64 reference's to tolerance."""
    cls = {"RNN": rnnfast.RNN, "LSTM": rnnfast.LSTM, "GRU": rnnfast.GRU}[cls_name]
    m = cls(I, H, num_layers, dtype=dtype, seed=seed % 1000)
    T = 8
    x = np.random.default_rng(seed).uniform(-1, 1, (T, B, I)).astype(dtype)
    s = m.stepper(batch=B)
    pieces, start = [], 0
    for stop in sorted(set(cuts)) + [T]:
        if stop - start == 1:
            pieces.append(s.step(x[start])[None])
        elif stop > start:
            pieces.append(s.step_many(x[start:stop]))
        start = max(start, stop)
    streamed = np.concatenate(pieces)
    whole, state = m(x)
    np.testing.assert_array_equal(streamed, whole)
    h_n = state[0] if cls_name == "LSTM" else state
    got_h = s.state[0] if cls_name == "LSTM" else s.state
    np.testing.assert_array_equal(got_h, h_n)
    m64 = cls(I, H, num_layers, dtype="float64")
    m64.load_state_dict(m.state_dict())
    with reference_ops():
        want, _ = m64(x.astype(np.float64))
    err = rel_error(streamed, want)
    assert err <= TOL[np.dtype(dtype)], f"streamed output differs from the reference by {err:.2e}"
