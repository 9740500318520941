"""The layers' inference fast path (_RNNBase._exact_inference): the same bits as the general path, taken only
where it may be (batched, C-contiguous, aligned input of the layer's dtype, no state or lengths, time-major,
one direction), and seeing weights edited in place."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast._rnn_base as rnn_base
from rnnfast import reference
from rnnfast.layers import GRU, LSTM, RNN

from helpers.cells import CELLS
from helpers.layer_harness import as_pair, make, rand


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("num_layers,bias", [(1, True), (3, True), (2, False)])
def test_exact_inference_matches_the_general_path_bit_for_bit(cell, dtype, num_layers, bias, monkeypatch):
    rng = np.random.default_rng(11)
    T, B, I, H = 7, 3, 5, 9
    m = make(cell, I, H, num_layers, bias=bias, dtype=dtype, seed=4)
    x = rand(rng, T, B, I, dtype=dtype)
    taken = []
    exact = rnn_base.RNNBase._exact_inference

    def spy(self, xx):
        result = exact(self, xx)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(rnn_base.RNNBase, "_exact_inference", spy)
    out, state = m(x)
    assert taken == [True]
    # The general path: the same call with the fast path refused.
    monkeypatch.setattr(rnn_base.RNNBase, "_exact_inference", lambda self, xx: None)
    out_g, state_g = m(x)
    assert out.dtype == out_g.dtype == np.dtype(dtype) and out.shape == out_g.shape == (T, B, H)
    assert np.array_equal(out, out_g)
    for a, b in zip(as_pair(cell, state), as_pair(cell, state_g)):
        assert a.shape == b.shape == (num_layers, B, H) and np.array_equal(a, b)
    # And both are the reference's numbers.
    monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)
    out_r, state_r = m(x)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, out_r, rtol=tol, atol=tol)
    for a, b in zip(as_pair(cell, state), as_pair(cell, state_r)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "make_x,kwargs",
    [
        (lambda x: x.astype(np.float64), {}),  # another dtype: cast by the general path
        (lambda x: np.asfortranarray(x), {}),  # not C-contiguous
        (lambda x: x.tolist(), {}),  # not an ndarray
        (lambda x: np.frombuffer(b"\0" + x.tobytes(), np.float32, offset=1).reshape(x.shape), {}),  # misaligned
        (lambda x: x, {"lengths": [4, 4]}),
        (lambda x: x, {"state": (np.zeros((1, 2, 4), np.float32), np.zeros((1, 2, 4), np.float32))}),
    ],
)
def test_exact_inference_declines_what_needs_the_general_path(make_x, kwargs, monkeypatch):
    rng = np.random.default_rng(12)
    m = LSTM(3, 4, dtype="float32", seed=1)
    x = rand(rng, 4, 2, 3, dtype="float32")
    expected_out, _ = m(x)
    xx = make_x(x)
    if not kwargs:
        assert m._exact_inference(xx) is None
    monkeypatch.setattr(rnn_base.RNNBase, "_exact_inference", lambda self, _: pytest.fail("fast path asked"))
    if kwargs:  # state or lengths: not even asked
        out, _ = m(xx, **kwargs)
    else:
        monkeypatch.undo()
        out, _ = m(xx)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected_out)


def test_exact_inference_declines_unbatched_input():
    m = LSTM(3, 4, dtype="float32", seed=1)
    x = np.random.default_rng(1).standard_normal((4, 1, 3)).astype(np.float32)
    assert m._exact_inference(x[:, 0, :]) is None
    np.testing.assert_array_equal(m(x[:, 0, :])[0], m(x)[0][:, 0, :])


@pytest.mark.parametrize("kwargs", [{"batch_first": True}, {"bidirectional": True}])
def test_exact_inference_declines_other_layouts(kwargs):
    m = GRU(3, 4, dtype="float32", seed=2, **kwargs)
    assert m._exact_inference(np.zeros((2, 5, 3), np.float32)) is None


def test_exact_inference_sees_weights_edited_in_place():
    rng = np.random.default_rng(13)
    m = GRU(3, 4, dtype="float32", seed=2)
    x = rand(rng, 5, 2, 3, dtype="float32")
    before, _ = m(x)
    m.parameters()["weight_hh_l0"][0, 0] += 0.5
    after, _ = m(x)
    assert not np.array_equal(before, after)
    with pytest.MonkeyPatch.context() as mp:  # the general path agrees with the edit too
        mp.setattr(rnn_base.RNNBase, "_exact_inference", lambda self, xx: None)
        np.testing.assert_array_equal(m(x)[0], after)


def test_exact_inference_bad_input_size_gets_the_general_error():
    m = RNN(3, 4, dtype="float32", seed=2)
    with pytest.raises(ValueError, match="input_size 3"):
        m(np.zeros((2, 1, 5), np.float32))


def test_a_layer_call_checks_its_arguments_once(monkeypatch):
    """The general path (here: with lengths and a state, two layers, both directions, training) checks
    the layer's arguments in the layer and hands them to the kernels without the functional ops' second
    check; the functional ops themselves still check theirs."""
    from rnnfast import functional
    calls = []
    real = functional.prepare_forward

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(functional, "prepare_forward", counting)
    m = LSTM(5, 7, num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 3, 5)).astype(np.float32)
    state = (np.zeros((4, 3, 7), np.float32), np.zeros((4, 3, 7), np.float32))
    out, _ = m.forward(x, state, lengths=[6, 2, 4], training=True)
    assert calls == [] and out.shape == (6, 3, 14)
    p = m.state_dict()
    functional.lstm(x, None, None, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    assert calls == ["lstm"]


@pytest.mark.parametrize("factory", [
    lambda dt: LSTM(5, 9, num_layers=2, proj_size=4, peepholes=True, clip=2.0, dtype=dt, seed=4),
    lambda dt: GRU(5, 9, num_layers=2, reset_after=False, activation="softsign", dtype=dt, seed=4),
    lambda dt: RNN(5, 9, nonlinearity="silu", dtype=dt, seed=4),
], ids=["lstm_variant", "gru_variant", "rnn_variant"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_cell_variant_takes_the_fast_path_with_the_general_paths_bits(factory, dtype, monkeypatch):
    m = factory(dtype)
    x = rand(np.random.default_rng(12), 7, 3, 5, dtype=dtype)
    taken = []
    exact = rnn_base.RNNBase._exact_inference
    monkeypatch.setattr(rnn_base.RNNBase, "_exact_inference",
                        lambda self, xx: taken.append(exact(self, xx)) or taken[-1])
    out, state = m(x)
    assert taken[0] is not None
    monkeypatch.setattr(rnn_base.RNNBase, "_exact_inference", lambda self, xx: None)
    out_g, state_g = m(x)
    assert out.shape == out_g.shape and np.array_equal(out, out_g)
    for a, b in zip(state if isinstance(state, tuple) else (state,), state_g if isinstance(state_g, tuple) else (state_g,)):
        assert a.shape == b.shape and np.array_equal(a, b)
