"""Pickling a stepper: it carries its weight snapshot and its state, and the copy (in this process or in another
one, at another thread count) continues with exactly the bits the original gives, for PyTorch's cells in float32
and float64, quantized layers (int8, bf16) and cell variants, also on the reference ops."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import rnnfast

STEPS, MORE, B, I, H = 5, 6, 3, 4, 6

CASES = {
    "lstm-f32": lambda: rnnfast.LSTM(I, H, 2, seed=1),
    "gru-f64": lambda: rnnfast.GRU(I, H, 2, seed=2, dtype="float64"),
    "rnn-relu-f64": lambda: rnnfast.RNN(I, H, nonlinearity="relu", seed=3, dtype="float64"),
    "lstm-int8": lambda: rnnfast.quantize(rnnfast.LSTM(I, H, 2, seed=4), "int8"),
    "gru-bf16": lambda: rnnfast.quantize(rnnfast.GRU(I, H, seed=5), "bf16"),
    "lstm-proj-peepholes": lambda: rnnfast.LSTM(I, H, 2, proj_size=3, peepholes=True, seed=6),
    "gru-reset-before": lambda: rnnfast.GRU(I, H, reset_after=False, seed=7, dtype="float64"),
}


def inputs(layer, n: int, batch_first: bool = False) -> np.ndarray:
    x = np.random.default_rng(11).standard_normal((n, B, I)).astype(layer.dtype)
    return x.transpose(1, 0, 2).copy() if batch_first else x


def initial_state(layer):
    rng = np.random.default_rng(12)
    h0 = rng.standard_normal((layer.num_layers, B, layer.state_size)).astype(layer.dtype)
    return (h0, rng.standard_normal((layer.num_layers, B, H)).astype(layer.dtype)) if layer.mode == "LSTM" else h0


def stepped(layer) -> tuple[rnnfast.stepper.Stepper, np.ndarray]:
    """A stepper advanced STEPS steps from a random state, and the next MORE steps' inputs."""
    s = layer.stepper(batch=B)
    x = inputs(layer, STEPS + MORE)
    s.reset(initial_state(layer))
    for t in range(STEPS):
        s.step(x[t])
    return s, x[STEPS:]


def assert_same_state(a, b) -> None:
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(u, v)
        assert u.dtype == v.dtype


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unpickled_stepper_continues_with_the_same_bits(case):
    layer = CASES[case]()
    s, rest = stepped(layer)
    copied = pickle.loads(pickle.dumps(s))
    assert repr(copied) == repr(s)
    assert_same_state(copied.state, s.state)
    want = np.stack([s.step(rest[t]) for t in range(MORE)])
    got = np.stack([copied.step(rest[t]) for t in range(MORE)])
    np.testing.assert_array_equal(got, want)
    assert got.dtype == layer.dtype
    assert_same_state(copied.state, s.state)
    # What both must equal: one layer call on the whole sequence from the same state (so that a copy that
    # restarted from zeros, or from the wrong weights, cannot pass by agreeing with a broken original).
    whole, last = layer(inputs(layer, STEPS + MORE), initial_state(layer))
    np.testing.assert_array_equal(got, whole[STEPS:])
    assert_same_state(copied.state, last)


@pytest.mark.parametrize("case", ["lstm-f32", "gru-f64", "lstm-int8", "lstm-proj-peepholes"])
def test_pickling_leaves_the_original_alone_and_copy_works_too(case):
    layer = CASES[case]()
    s, rest = stepped(layer)
    before = s.state
    pickle.dumps(s)
    assert_same_state(s.state, before)
    for clone in (copy.copy(s), copy.deepcopy(s)):
        twin = pickle.loads(pickle.dumps(s))
        np.testing.assert_array_equal(clone.step_many(rest), twin.step_many(rest))
    # The clones are independent steppers: the original is still where it was.
    assert_same_state(s.state, before)


def test_batch_first_and_unbatched_steppers_pickle():
    layer = rnnfast.GRU(I, H, batch_first=True, seed=8)
    s = layer.stepper(batch=B)
    x = inputs(layer, STEPS + MORE, batch_first=True)  # (B, T, I)
    s.step_many(x[:, :STEPS])
    copied = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(copied.step_many(x[:, STEPS:]), s.step_many(x[:, STEPS:]))

    lstm = rnnfast.LSTM(I, H, seed=9)
    u = lstm.stepper(batch=None)
    seq = inputs(lstm, STEPS + MORE)[:, 0]  # (T, I)
    u.step_many(seq[:STEPS])
    v = pickle.loads(pickle.dumps(u))
    assert v.batch is None
    np.testing.assert_array_equal(v.step(seq[STEPS]), u.step(seq[STEPS]))
    whole, _ = lstm(seq)
    np.testing.assert_array_equal(v.step_many(seq[STEPS + 1:]), whole[STEPS + 1:])


@pytest.mark.parametrize("case", ["lstm-f32", "gru-f64", "lstm-int8", "lstm-proj-peepholes"])
def test_the_snapshot_is_the_weights_when_the_stepper_was_made(case):
    """Changing the layer after making the stepper changes neither the stepper nor its pickle: both keep the
    weights of the moment the stepper was made."""
    layer = CASES[case]()
    s, rest = stepped(layer)
    reference = pickle.loads(pickle.dumps(s))  # taken before the layer changes
    if layer.weight_dtype in rnnfast.REDUCED_WEIGHT_DTYPES:  # read-only parameters: replaced, not written
        layer.load_state_dict({k: np.zeros_like(v) for k, v in layer.state_dict().items()})
    else:
        for p in layer.parameters().values():
            p[...] = 0
    assert not any(p.any() for p in layer.parameters().values())
    later = pickle.loads(pickle.dumps(s))
    want = reference.step_many(rest)
    np.testing.assert_array_equal(later.step_many(rest), want)
    np.testing.assert_array_equal(s.step_many(rest), want)


def test_a_variant_stepper_on_the_reference_ops_pickles(monkeypatch):
    """Where the layers run rnnfast.reference (the ops the tests swap in), the variant stepper keeps its state in
    Python; its pickle names the reference module and continues on it."""
    import rnnfast._rnn_base as rnn_base
    from rnnfast import reference

    monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)
    layer = rnnfast.GRU(I, H, reset_after=False, seed=7, dtype="float64")
    s, rest = stepped(layer)
    copied = pickle.loads(pickle.dumps(s))
    assert copied._impl._ops is reference
    np.testing.assert_array_equal(copied.step_many(rest), s.step_many(rest))


_CHILD = """
import pickle, sys
import numpy as np
import rnnfast
rnnfast.set_num_threads(int(sys.argv[2]))
with open(sys.argv[1], "rb") as f:
    stepper, rest = pickle.load(f)
np.save(sys.argv[1] + ".npy", np.stack([stepper.step(rest[t]) for t in range(len(rest))]))
"""


@pytest.mark.parametrize("case", ["lstm-f32", "gru-f64", "lstm-int8", "lstm-proj-peepholes"])
def test_a_stepper_continues_in_another_process_with_the_same_bits(case, tmp_path, restore_threads):
    """The pickle is all another interpreter needs (at another thread count: the kernels' bits do not depend
    on it)."""
    layer = CASES[case]()
    s, rest = stepped(layer)
    path = tmp_path / "stepper.pkl"
    path.write_bytes(pickle.dumps((s, rest)))
    rnnfast.set_num_threads(1)
    want = np.stack([s.step(rest[t]) for t in range(MORE)])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (os.path.dirname(os.path.dirname(rnnfast.__file__)), os.environ.get("PYTHONPATH", "")) if p))
    subprocess.run([sys.executable, "-c", _CHILD, str(path), "2"], env=env, check=True, timeout=120,
                   capture_output=True)
    got = np.load(str(path) + ".npy")
    np.testing.assert_array_equal(got, want)
    assert got.dtype == layer.dtype
