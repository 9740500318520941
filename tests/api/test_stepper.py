"""The stepper (streaming inference): bit-identical to whole-sequence calls, state handling, no
allocation in steady state, and refusal of bad input."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import rnnfast

MODELS = [
    ("LSTM", {}),
    ("GRU", {}),
    ("RNN", {"nonlinearity": "tanh"}),
    ("RNN", {"nonlinearity": "relu"}),
]


def make(name, kw, I=5, H=7, L=2, **extra):
    return getattr(rnnfast, name)(I, H, L, seed=3, **kw, **extra)


def random_state(m, B, rng):
    shape = (m.num_layers, B, m.hidden_size)
    h0 = rng.standard_normal(shape).astype(m.dtype)
    if m.mode == "LSTM":
        return h0, rng.standard_normal(shape).astype(m.dtype)
    return h0


def assert_state_equal(a, b):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,kw", MODELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("L,B", [(1, 1), (3, 4), (2, 13)])
def test_steps_equal_the_whole_sequence_bit_for_bit(name, kw, dtype, L, B):
    rng = np.random.default_rng(0)
    m = make(name, kw, L=L, dtype=dtype)
    x = rng.standard_normal((9, B, 5)).astype(dtype)
    state = random_state(m, B, rng)
    want_out, want_state = m(x, state)

    s = m.stepper(batch=B)
    s.reset(state)
    got = np.stack([s.step(x[t]) for t in range(9)])
    np.testing.assert_array_equal(got, want_out)
    assert_state_equal(s.state, want_state)

    s.reset(state)
    np.testing.assert_array_equal(s.step_many(x[:4]), want_out[:4])  # chunks continue where they left off
    np.testing.assert_array_equal(s.step_many(x[4:]), want_out[4:])
    assert_state_equal(s.state, want_state)


def test_unbatched_and_batch_first():
    rng = np.random.default_rng(1)
    m = rnnfast.GRU(4, 6, 2, batch_first=True, seed=0)
    x = rng.standard_normal((3, 8, 4)).astype(np.float32)  # (B, T, I)
    want, _ = m(x)
    s = m.stepper(batch=3)
    np.testing.assert_array_equal(s.step_many(x), want)

    u = m.stepper(batch=None)
    seq = x[0]  # (T, I)
    want_u, want_h = m(seq)
    got = np.stack([u.step(seq[t]) for t in range(8)])
    np.testing.assert_array_equal(got, want_u)
    np.testing.assert_array_equal(u.state, want_h)
    assert u.state.shape == (2, 6) and u.batch is None
    u.reset()
    np.testing.assert_array_equal(u.step_many(seq), want_u)


def test_reset_and_state_are_copies():
    m = rnnfast.LSTM(3, 4, seed=0)
    s = m.stepper(batch=2)
    h, c = s.state
    assert not h.any() and not c.any()
    s.step(np.ones((2, 3), dtype=np.float32))
    h1, c1 = s.state
    assert h1.any() and c1.any()
    h1[...] = 0  # a copy: the stepper's own state is untouched
    assert s.state[0].any()
    s.reset()
    assert not s.state[0].any() and not s.state[1].any()


def test_weights_are_snapshotted():
    m = rnnfast.RNN(3, 4, seed=0)
    x = np.ones((1, 3), dtype=np.float32)
    s = m.stepper()
    before = s.step(x).copy()
    m.parameters()["weight_ih_l0"][...] = 0
    s.reset()
    np.testing.assert_array_equal(s.step(x), before)
    assert not np.array_equal(m.stepper().step(x), before)


def test_out_argument_and_no_allocation_in_steady_state():
    m = rnnfast.LSTM(16, 32, 2, seed=0)
    s = m.stepper(batch=1)
    x = np.ones((1, 16), dtype=np.float32)
    y = np.empty((1, 32), dtype=np.float32)
    assert s.step(x, out=y) is y
    for _ in range(100):  # warm up: lazily created buffers, caches
        s.step(x, out=y)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            s.step(x, out=y)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024, f"2000 steps grew traced memory by {after - before} bytes"


def test_bad_input_is_refused():
    m = rnnfast.LSTM(3, 4, seed=0)
    with pytest.raises(ValueError, match="bidirectional model cannot run step by step"):
        rnnfast.GRU(3, 4, bidirectional=True).stepper()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch must be a positive integer or None"):
            m.stepper(batch=bad)
    s = m.stepper(batch=2)
    with pytest.raises(ValueError, match=r"x_t has shape \(3,\), expected \(2, 3\)"):
        s.step(np.zeros(3))
    with pytest.raises(TypeError, match="x_t has dtype complex128"):
        s.step(np.zeros((2, 3), dtype=complex))
    with pytest.raises(ValueError, match=r"out must be a writeable C-contiguous float32 array of shape \(2, 4\)"):
        s.step(np.zeros((2, 3)), out=np.empty((2, 4)))
    with pytest.raises(ValueError, match=r"x_chunk has shape \(5, 3, 3\), expected \(steps, batch, input_size\)"):
        s.step_many(np.zeros((5, 3, 3)))
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 2, 4\), expected \(1, 2, 4\)"):
        s.reset((np.zeros((2, 2, 4)), np.zeros((1, 2, 4))))
    with pytest.raises(TypeError, match=r"LSTM state must be a tuple"):
        s.reset(np.zeros((1, 2, 4)))
    # Conversion: lists and float64 arrays are cast to the stepper's dtype.
    y = s.step([[1, 2, 3], [4, 5, 6]])
    assert y.dtype == np.float32 and y.shape == (2, 4)


@pytest.mark.parametrize("unbatched", [False, True])
def test_step_takes_every_kind_of_input_to_the_same_result(unbatched):
    """step() runs arrays that need no conversion straight in C++ and everything else through the
    Python checks; both paths must give the same numbers, and refusals stay refusals."""
    layer = rnnfast.GRU(5, 7, num_layers=2, seed=4)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((6, 5) if unbatched else (6, 1, 5)).astype(np.float32)
    batch = None if unbatched else 1
    fast = layer.stepper(batch=batch)
    want = [fast.step(x).copy() for x in xs]
    shape = want[0].shape

    def variants(x):
        yield x.astype(">f4")                                # non-native byte order
        yield x.astype(np.float64)                           # another dtype: converted
        yield x.tolist()                                     # a list
        wide = np.zeros(x.shape[:-1] + (10,), np.float32)
        wide[..., ::2] = x
        yield wide[..., ::2]                                 # non-contiguous

    for make in range(4):
        slow = layer.stepper(batch=batch)
        for x, expected in zip(xs, want):
            got = slow.step(list(variants(x))[make])
            np.testing.assert_array_equal(got, expected)
    # out= paths: a fresh array, a non-contiguous one (refused), a read-only one (refused).
    s = layer.stepper(batch=batch)
    out = np.empty(shape, np.float32)
    assert s.step(xs[0], out=out) is out
    np.testing.assert_array_equal(out, want[0])
    with pytest.raises(ValueError, match="out"):
        s.step(xs[1], out=np.empty(shape[:-1] + (14,), np.float32)[..., ::2])
    read_only = np.empty(shape, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        s.step(xs[1], out=read_only)
    with pytest.raises(ValueError, match="x_t"):
        s.step(np.zeros(shape[:-1] + (6,), np.float32))


def test_step_out_may_share_memory_with_x():
    """out overlapping x_t (the same buffer reused by a caller) must still read x_t before writing."""
    layer = rnnfast.RNN(4, 4, seed=1)
    x = np.random.default_rng(2).standard_normal((1, 4)).astype(np.float32)
    want = layer.stepper(batch=1).step(x.copy())
    buf = x.copy()
    got = layer.stepper(batch=1).step(buf, out=buf)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cls", [rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU])
@pytest.mark.parametrize("hidden", [37, 128])
def test_steps_shared_by_threads_equal_the_whole_sequence(cls, hidden, restore_threads, restore_split):
    """With the pool's threads sharing each step (forced with the 'hidden' split; by default only for
    large enough steps while the pool is awake), every split and thread count gives the bits of one
    whole-sequence call: a stack of two layers, batch 3; H = 37 is off every vector width (the
    projection and the recurrent step shared separately), H = 128 a whole number of the projection's
    panels on every instruction set (shared as unit groups, Stepper::unit_group_blocks_)."""
    from rnnfast import _core

    layer = cls(7, hidden, num_layers=2, seed=5)
    xs = np.random.default_rng(1).standard_normal((6, 3, 7)).astype(np.float32)
    want = layer(xs)[0]
    for split in ("batch", "hidden", "auto"):
        _core.testing.set_split(split)
        for threads in (1, 2, 3):
            rnnfast.set_num_threads(threads)
            s = layer.stepper(batch=3)
            got = np.stack([s.step(x).copy() for x in xs])
            np.testing.assert_array_equal(got, want, err_msg=f"{split}, {threads} threads")
            s.reset()
            np.testing.assert_array_equal(s.step_many(xs), want, err_msg=f"{split}, {threads} threads, chunk")


@pytest.mark.parametrize("cls", [rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU])
def test_one_stepper_across_thread_counts_and_splits(cls, restore_threads, restore_split):
    """A stepper keeps its team's schedulers between calls (their phases run on); changing the thread
    count or the split between steps, or a call the pool runs alone, must not upset them."""
    from rnnfast import _core

    layer = cls(7, 128, num_layers=2, seed=8)
    xs = np.random.default_rng(3).standard_normal((12, 2, 7)).astype(np.float32)
    want = layer(xs)[0]
    s = layer.stepper(batch=2)
    got = []
    for t, x in enumerate(xs):
        rnnfast.set_num_threads((1, 2, 2, 3)[t % 4])
        _core.testing.set_split(("hidden", "hidden", "batch", "hidden", "auto", "hidden")[t % 6])
        got.append(s.step(x).copy())
    np.testing.assert_array_equal(np.stack(got), want)
