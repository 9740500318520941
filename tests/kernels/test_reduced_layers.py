"""Quantized layers (rnnfast.quantize, int8 and bf16 weights) on the native kernels: every step of every layer
and direction against the reduced reference (rnnfast.reference.reduced_forward) for every cell, layers,
directions, lengths, layouts and states, on every instruction set; the same bits for every thread count and
split; each step within the documented error bound of the float32 model; the stepper against whole
sequences; rows independent of each other (one outlier row does not move the others).

Against the reference, each step starts from the native run's own state (helpers.reduced.TeacherForcedCheck
says why) and must agree within 1e-5 of max(|result|, 1): the kernels may fuse ``y + bias`` into one
multiply-add and their activations are within 2 ulp; measured below 3e-7.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

from helpers.cells import CELLS
from helpers.layer_harness import make
from helpers.reduced import (ISA_CONFIGS, ISA_IDS, WEIGHT_DTYPES, check_steps_within_bound, checked_run, on_isa,
                             one_direction_layers)

F32 = np.float32
TOLERANCE = 1e-5

# (constructor options, call options) of the layer configurations every cell runs.
CONFIGS = {
    "2 layers, bidirectional, lengths, state": (dict(num_layers=2, bidirectional=True),
                                                dict(lengths=[7, 0, 3, 7, 1], state=True)),
    "batch_first, state": (dict(batch_first=True), dict(state=True)),
    "3 layers, sorted lengths": (dict(num_layers=3), dict(lengths=[7, 7, 4, 2, 2])),
    "no bias, bidirectional": (dict(bias=False, bidirectional=True), {}),
    "unbatched": (dict(num_layers=2), dict(unbatched=True, state=True)),
}
T, B, I, H = 7, 5, 9, 19


def problem(cell: str, ctor: dict, call: dict, seed: int = 0):
    """(float model, x, state, lengths) for a configuration."""
    rng = np.random.default_rng(seed)
    model = make(cell, I, H, seed=seed, **ctor)
    L, D = model.num_layers, model.num_directions
    unbatched = call.get("unbatched", False)
    shape = (T, I) if unbatched else ((B, T, I) if model.batch_first else (T, B, I))
    x = rng.standard_normal(shape).astype(F32)
    state = None
    if call.get("state"):
        s_shape = (L * D, H) if unbatched else (L * D, B, H)
        h0 = (0.5 * rng.standard_normal(s_shape)).astype(F32)
        state = (h0, (0.5 * rng.standard_normal(s_shape)).astype(F32)) if cell == "lstm" else h0
    lengths = call.get("lengths")
    return model, x, state, lengths


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_quantized_layers_match_the_reduced_reference_on_every_isa(cell, weight_dtype, config):
    model, x, state, lengths = problem(cell, *CONFIGS[config])
    q = rnnfast.quantize(model, weight_dtype)
    float_out, _ = model(x, state, lengths=lengths)
    for isa_config, label in zip(ISA_CONFIGS, ISA_IDS):
        with on_isa(*isa_config):
            (out, got_state), check = checked_run(q, x, state, lengths=lengths, tolerance=TOLERANCE)
            plain_out, plain_state = q(x, state, lengths=lengths)
        assert check.steps_checked >= T, label
        assert out.dtype == F32 and out.shape == float_out.shape, label
        np.testing.assert_array_equal(plain_out, out, err_msg=label)  # the checked run is the plain run
        for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (plain_state, got_state))):
            np.testing.assert_array_equal(a, b, err_msg=label)


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_threads_and_splits_give_the_same_bits(cell, weight_dtype, restore_threads, restore_split):
    """B = 7 splits unevenly; H = 150 leaves a partial unit block on every instruction set and makes a step
    large enough to be shared."""
    rng = np.random.default_rng(3)
    model = make(cell, 70, 150, num_layers=2, bidirectional=True, seed=3)
    q = rnnfast.quantize(model, weight_dtype)
    x = rng.standard_normal((6, 7, 70)).astype(F32)
    lengths = [6, 6, 5, 0, 3, 2, 1]
    for isa_config, label in zip(ISA_CONFIGS, ISA_IDS):
        with on_isa(*isa_config):
            runs = {}
            for split in ("auto", "batch", "hidden"):
                _core.testing.set_split(split)
                for threads in (1, 2, 3):
                    rnnfast.set_num_threads(threads)
                    runs[(split, threads)] = (q(x), q(x, lengths=lengths))
            want = runs[("auto", 1)]
            for key, got in runs.items():
                for (o, s), (wo, ws) in zip(got, want):
                    np.testing.assert_array_equal(o, wo, err_msg=f"{label} {key}")
                    for a, b in zip(s if isinstance(s, tuple) else (s,), ws if isinstance(ws, tuple) else (ws,)):
                        np.testing.assert_array_equal(a, b, err_msg=f"{label} {key}")


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_each_step_stays_within_the_error_bound_of_float32(cell, weight_dtype):
    """Every layer and direction of a 2-layer bidirectional model, fed the float32 model's own inputs and
    states, one step at a time: the quantized step's h_t within helpers.reduced.step_error_bound of the float
    model's (the products' documented bounds carried through the gates), on every instruction set."""
    rng = np.random.default_rng(4)
    model = make(cell, I, H, num_layers=2, bidirectional=True, seed=4)
    x = rng.standard_normal((T, B, I)).astype(F32)
    h0 = (0.5 * rng.standard_normal((4, B, H))).astype(F32)
    c0 = (0.5 * rng.standard_normal((4, B, H))).astype(F32) if cell == "lstm" else None
    singles = one_direction_layers(model)
    quantized = {key: rnnfast.quantize(single, weight_dtype) for key, single in singles.items()}
    layer_input = x
    for k in range(2):
        outputs = []
        for d in range(2):
            x_kd = layer_input if d == 0 else layer_input[::-1]
            c0_kd = None if c0 is None else c0[2 * k + d]
            for isa_config in ISA_CONFIGS:
                with on_isa(*isa_config):
                    check_steps_within_bound(quantized[(k, d)], singles[(k, d)], cell, weight_dtype, x_kd,
                                             h0[2 * k + d], c0_kd)
            state = h0[2 * k + d][None] if c0 is None else (h0[2 * k + d][None], c0_kd[None])
            out, _ = singles[(k, d)](x_kd, state)
            outputs.append(out if d == 0 else out[::-1])
        layer_input = np.concatenate(outputs, axis=-1)


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_whole_sequences_stay_close_to_float32(cell, weight_dtype):
    """Over whole sequences the step errors feed back through the state; with PyTorch's initialisation and
    unit-variance inputs the largest output difference measured 0.011 (int8) and 0.005 (bf16) over these
    problems. This checks it stays within three times that, as a guard against a systematic error (a wrong
    scale or bias would move it by orders of magnitude)."""
    limit = {"int8": 0.03, "bf16": 0.015}[weight_dtype]
    for config in CONFIGS:
        model, x, state, lengths = problem(cell, *CONFIGS[config], seed=5)
        q = rnnfast.quantize(model, weight_dtype)
        out, _ = q(x, state, lengths=lengths)
        want, _ = model(x, state, lengths=lengths)
        assert np.abs(out - want).max() <= limit, config


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("L,batch", [(1, 1), (3, 4), (2, None)])
def test_stepper_equals_the_whole_sequence(cell, weight_dtype, L, batch):
    rng = np.random.default_rng(6)
    q = rnnfast.quantize(make(cell, I, H, num_layers=L, seed=6), weight_dtype)
    x = rng.standard_normal((9, I) if batch is None else (9, batch, I)).astype(F32)
    s_shape = (L, H) if batch is None else (L, batch, H)
    h0 = rng.standard_normal(s_shape).astype(F32)
    state = (h0, h0 / 3) if cell == "lstm" else h0
    for isa_config, label in zip(ISA_CONFIGS, ISA_IDS):
        with on_isa(*isa_config):
            want_out, want_state = q(x, state)
            s = q.stepper(batch=batch)
            s.reset(state)
            got = np.stack([s.step(x[t]) for t in range(9)])
            np.testing.assert_array_equal(got, want_out, err_msg=label)
            for a, b in zip(*(v if isinstance(v, tuple) else (v,) for v in (s.state, want_state))):
                np.testing.assert_array_equal(a, b, err_msg=label)
            s.reset(state)
            np.testing.assert_array_equal(np.concatenate([s.step_many(x[:4]), s.step_many(x[4:])]), want_out,
                                          err_msg=label)


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_one_outlier_row_leaves_the_other_rows_alone(cell, weight_dtype):
    """Activations are quantized per row, so a frame far outside the others' range (here 10^4 times larger,
    or NaN) changes nothing in the other rows: their results are the bits they have without it."""
    rng = np.random.default_rng(7)
    q = rnnfast.quantize(make(cell, I, H, num_layers=2, seed=7), weight_dtype)
    x = rng.standard_normal((T, 4, I)).astype(F32)
    for outlier in (1e4, np.nan):
        xo = x.copy()
        xo[2, 1, :] *= outlier  # one frame of row 1
        out, _ = q(xo)
        alone, _ = q(x[:, [0, 2, 3]])
        np.testing.assert_array_equal(out[:, [0, 2, 3]], alone)
        assert np.isfinite(out[:2, 1]).all()  # the row's steps before the outlier frame are untouched
        if outlier != outlier:
            assert np.isnan(out[2:, 1]).all()  # NaN propagates through the row, as in float32
        else:
            assert np.isfinite(out).all()


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_inputs_far_outside_any_range_stay_finite_and_match_the_reference(cell, weight_dtype):
    """No calibration: activation scales are taken per row at run time, so inputs 10^6 times larger (or
    smaller) are as well represented as unit ones; saturated gates follow the float32 cell."""
    rng = np.random.default_rng(8)
    q = rnnfast.quantize(make(cell, I, H, seed=8), weight_dtype)
    for scale in (1e6, 1e-6):
        x = (scale * rng.standard_normal((T, B, I))).astype(F32)
        (out, _), _ = checked_run(q, x, tolerance=TOLERANCE)
        assert np.isfinite(out).all()


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_empty_sequences_and_batches(cell, weight_dtype):
    q = rnnfast.quantize(make(cell, I, H, num_layers=2, bidirectional=True, seed=9), weight_dtype)
    h0 = np.ones((4, 3, H), F32)
    state = (h0, 2 * h0) if cell == "lstm" else h0
    out, s = q(np.zeros((0, 3, I), F32), state)
    assert out.shape == (0, 3, 2 * H)
    for got, want in zip(s if isinstance(s, tuple) else (s,), state if isinstance(state, tuple) else (state,)):
        np.testing.assert_array_equal(got, want)
    out, s = q(np.zeros((5, 0, I), F32))
    assert out.shape == (5, 0, 2 * H)
    out, s = q(np.zeros((5, 3, I), F32), state, lengths=[0, 0, 0])
    np.testing.assert_array_equal(out, 0)
