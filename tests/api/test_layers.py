"""The RNN/LSTM/GRU layers (rnnfast.layers) on both the native and the reference functional ops (their inference
fast path: test_layers_exact_inference.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rnnfast import reference
from rnnfast.layers import GRU, LSTM, RNN

from helpers.cells import CELLS, GATES
from helpers.layer_harness import as_pair, make, rand, state_of


# ---------------------------------------------------------------------------------------------------
# Construction, parameters, properties
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_parameter_names_shapes_and_init(cell, bidirectional, bias):
    I, H, L, G = 5, 4, 3, GATES[cell]
    m = make(cell, I, H, L, bidirectional=bidirectional, bias=bias, seed=3)
    D = 2 if bidirectional else 1
    expected = []
    for k in range(L):
        for sfx in ["", "_reverse"][:D]:
            expected += [(f"weight_ih_l{k}{sfx}", (G * H, I if k == 0 else D * H)),
                         (f"weight_hh_l{k}{sfx}", (G * H, H))]
            if bias:
                expected += [(f"bias_ih_l{k}{sfx}", (G * H,)), (f"bias_hh_l{k}{sfx}", (G * H,))]
    sd = m.state_dict()
    assert [(k, v.shape) for k, v in sd.items()] == expected
    assert list(m.parameters()) == [k for k, _ in expected]
    assert list(m.grads) == [k for k, _ in expected]
    for v in sd.values():
        assert v.dtype == np.float32
        assert np.all(np.abs(v) <= 1 / np.sqrt(H))
    # uniform, not constant
    assert np.std(np.concatenate([v.ravel() for v in sd.values()])) > 0.2 / np.sqrt(H)


def test_seed_reproducible_and_dtype():
    a, b, c = LSTM(3, 4, seed=1), LSTM(3, 4, seed=1), LSTM(3, 4, seed=2)
    for k in a.state_dict():
        np.testing.assert_array_equal(a.state_dict()[k], b.state_dict()[k])
        assert not np.array_equal(a.state_dict()[k], c.state_dict()[k])
    m = GRU(3, 4, dtype=np.float64)
    assert m.dtype == np.float64 and all(v.dtype == np.float64 for v in m.parameters().values())
    assert RNN(3, 4, dtype="float32").dtype == np.float32


def test_properties_and_repr():
    m = RNN(3, 4, 2, nonlinearity="relu", bias=False, batch_first=True, bidirectional=True, dropout=0.25,
            dtype="float64")
    assert (m.input_size, m.hidden_size, m.num_layers, m.bias, m.batch_first, m.bidirectional, m.dropout) == \
        (3, 4, 2, False, True, True, 0.25)
    assert m.dtype == np.float64 and m.mode == "RNN_RELU" and m.nonlinearity == "relu"
    assert repr(m) == ("RNN(3, 4, num_layers=2, nonlinearity='relu', bias=False, batch_first=True, "
                       "dropout=0.25, bidirectional=True, dtype='float64')")
    assert repr(LSTM(10, 20)) == "LSTM(10, 20)"
    assert repr(GRU(10, 20, 2, bidirectional=True)) == "GRU(10, 20, num_layers=2, bidirectional=True)"
    assert RNN(1, 1).mode == "RNN_TANH" and LSTM(1, 1).mode == "LSTM" and GRU(1, 1).mode == "GRU"


@pytest.mark.parametrize("kw, exc, match", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(input_size=2.5), TypeError, "input_size"),
    (dict(hidden_size="4"), TypeError, "hidden_size"),
    (dict(num_layers=True), TypeError, "num_layers"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(dtype="int32"), ValueError, "dtype"),
    (dict(dtype="not a dtype"), TypeError, "dtype"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout="0.5"), TypeError, "dropout"),
])
def test_constructor_validation(kw, exc, match):
    args = dict(input_size=3, hidden_size=4, num_layers=2)
    args.update(kw)
    with pytest.raises(exc, match=match):
        LSTM(args.pop("input_size"), args.pop("hidden_size"), args.pop("num_layers"), **args)


def test_constructor_nonlinearity_and_dropout_warning():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="swish")  # sigmoid is a cell variant now; swish is Keras's name of silu
    with pytest.warns(UserWarning, match="num_layers"):
        GRU(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GRU(3, 4, 2, dropout=0.5)
        GRU(3, 4, dropout=0.0)
    assert LSTM(np.int64(3), np.int32(4), np.int8(2)).num_layers == 2  # NumPy integers are ints


# ---------------------------------------------------------------------------------------------------
# Forward: shapes and layouts
# ---------------------------------------------------------------------------------------------------

LAYOUTS = [
    dict(num_layers=1, bidirectional=False, batch_first=False),
    dict(num_layers=2, bidirectional=True, batch_first=False),
    dict(num_layers=3, bidirectional=False, batch_first=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda d: "L{num_layers}-bi{bidirectional:d}-bf{batch_first:d}".format(**d))
def test_shapes_and_layouts(backend, cell, layout):
    T, B, I, H = 5, 3, 4, 6
    L, D = layout["num_layers"], 2 if layout["bidirectional"] else 1
    bf = layout["batch_first"]
    m = make(cell, I, H, L, bidirectional=layout["bidirectional"], batch_first=bf, seed=0, dtype="float64")
    rng = np.random.default_rng(1)
    x_tm = rand(rng, T, B, I)
    x = x_tm.transpose(1, 0, 2).copy() if bf else x_tm
    st = state_of(cell, rng, (L * D, B, H))

    out, st_n = m(x, st)
    assert out.shape == ((B, T, D * H) if bf else (T, B, D * H)) and out.dtype == np.float64
    for s in as_pair(cell, st_n):
        assert s.shape == (L * D, B, H) and s.dtype == np.float64
    if cell == "lstm":
        assert isinstance(st_n, tuple) and len(st_n) == 2
    else:
        assert isinstance(st_n, np.ndarray)

    # the batch_first layout is only a transpose of the time-major one
    m2 = make(cell, I, H, L, bidirectional=layout["bidirectional"], batch_first=not bf, dtype="float64")
    m2.load_state_dict(m.state_dict())
    out2, st_n2 = m2(x_tm if bf else x_tm.transpose(1, 0, 2), st)
    np.testing.assert_allclose(out2.transpose(1, 0, 2), out, rtol=1e-12, atol=1e-12)
    for a, b in zip(as_pair(cell, st_n), as_pair(cell, st_n2)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

    # unbatched (T, I) is the batch of one, the same for every batch_first
    out1, st1 = m(x_tm[:, 1], tuple(s[:, 1] for s in st) if cell == "lstm" else st[:, 1])
    assert out1.shape == (T, D * H)
    np.testing.assert_allclose(out1, out[1] if bf else out[:, 1], rtol=1e-12, atol=1e-12)
    for a, b in zip(as_pair(cell, st1), as_pair(cell, st_n)):
        assert a.shape == (L * D, H)
        np.testing.assert_allclose(a, b[:, 1], rtol=1e-12, atol=1e-12)

    # state None is zeros
    zeros = np.zeros((L * D, B, H))
    o_none, s_none = m(x)
    o_zero, s_zero = m(x, (zeros, zeros) if cell == "lstm" else zeros)
    np.testing.assert_array_equal(o_none, o_zero)
    for a, b in zip(as_pair(cell, s_none), as_pair(cell, s_zero)):
        np.testing.assert_array_equal(a, b)


def _manual_stack(cell, m, x, state):
    """The stacked bidirectional layer composed by hand from reference ops (time-major x)."""
    L, D = m.num_layers, m.num_directions
    p = m.parameters()
    h0 = state[0] if cell == "lstm" else state
    inp, hs, cs = x, [], []
    for k in range(L):
        outs = []
        for d in range(D):
            sfx = "_reverse" if d else ""
            w = [p[f"{n}_l{k}{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            xi = inp[::-1] if d else inp
            if cell == "lstm":
                o, h, c = reference.lstm(xi, h0[k * D + d], state[1][k * D + d], *w)
                cs.append(c)
            elif cell == "gru":
                o, h = reference.gru(xi, h0[k * D + d], *w)
            else:
                o, h = reference.rnn(xi, h0[k * D + d], *w, nonlinearity=cell[4:])
            outs.append(o[::-1] if d else o)
            hs.append(h)
        inp = np.concatenate(outs, axis=-1)
    return inp, np.stack(hs), (np.stack(cs) if cs else None)


@pytest.mark.parametrize("cell", CELLS)
def test_matches_manual_composition(backend, cell):
    T, B, I, H, L = 6, 2, 3, 5, 3
    m = make(cell, I, H, L, bidirectional=True, dtype="float64", seed=5)
    rng = np.random.default_rng(2)
    x = rand(rng, T, B, I)
    st = state_of(cell, rng, (L * 2, B, H))
    out, st_n = m(x, st)
    ref_out, ref_h, ref_c = _manual_stack(cell, m, x, st)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(as_pair(cell, st_n)[0], ref_h, rtol=1e-12, atol=1e-13)
    if cell == "lstm":
        np.testing.assert_allclose(st_n[1], ref_c, rtol=1e-12, atol=1e-13)


def test_dtype_conversion_and_layout_of_input(backend):
    m = LSTM(3, 4, 2, seed=0)  # float32
    rng = np.random.default_rng(0)
    x64 = rand(rng, 5, 2, 3)
    out, (h, c) = m(x64)
    assert out.dtype == h.dtype == c.dtype == np.float32
    out32, _ = m(x64.astype(np.float32))
    np.testing.assert_array_equal(out, out32)
    # non-contiguous and Fortran-ordered input, lists, integers
    np.testing.assert_array_equal(m(np.asfortranarray(x64.astype(np.float32)))[0], out32)
    big = np.zeros((10, 2, 3), dtype=np.float32)
    big[::2] = x64
    np.testing.assert_array_equal(m(big[::2])[0], out32)
    np.testing.assert_array_equal(m(x64.astype(np.float32).tolist())[0], out32)
    assert m(np.ones((5, 2, 3), dtype=np.int64))[0].dtype == np.float32
    with pytest.raises(TypeError, match="x"):
        m(x64.astype(np.complex128))
    with pytest.raises(TypeError, match="x"):
        m(np.array([["a"]]))
    with pytest.raises(TypeError, match="h0"):
        m(x64, (np.zeros((2, 2, 4), dtype=complex), None))


def test_results_do_not_alias(backend):
    m = GRU(3, 4, 1, seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    h0 = np.zeros((1, 2, 4))
    for training in (False, True):
        out, h = m.forward(x, h0, training=training)
        assert not np.shares_memory(out, x) and not np.shares_memory(h, h0) and not np.shares_memory(out, h)


# ---------------------------------------------------------------------------------------------------
# Forward: validation
# ---------------------------------------------------------------------------------------------------


def test_forward_validation(backend):
    m = LSTM(3, 4, 2, bidirectional=True)
    g = GRU(3, 4, 2, batch_first=True)
    x = np.zeros((5, 2, 3))
    h = np.zeros((4, 2, 4))
    with pytest.raises(ValueError, match=r"x must be 3-D.*input_size 3.*\(5, 2, 7\)"):
        m(np.zeros((5, 2, 7)))
    with pytest.raises(ValueError, match=r"\(batch, seq_len, input_size\).*\(5,\)"):
        g(np.zeros(5))
    with pytest.raises(ValueError, match=r"x must be"):
        m(np.zeros((1, 5, 2, 3)))
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 2, 4\), expected \(4, 2, 4\)"):
        m(x, (np.zeros((2, 2, 4)), h))
    with pytest.raises(ValueError, match=r"c0 has shape \(4, 3, 4\), expected \(4, 2, 4\)"):
        m(x, (h, np.zeros((4, 3, 4))))
    with pytest.raises(ValueError, match=r"h0 has shape \(4, 2, 4\), expected \(4, 4\).*unbatched"):
        m(x[:, 0], (h, h))
    with pytest.raises(TypeError, match=r"LSTM state must be a tuple \(h0, c0\)"):
        m(x, h)
    with pytest.raises(TypeError, match="GRU state must be a single array"):
        g(x, (h, h))
    with pytest.raises(ValueError, match=r"h0 has shape \(4, 2, 4\), expected \(2, 5, 4\)"):
        g(x, h)
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\), expected \(batch,\) = \(2,\)"):
        m(x, lengths=[5, 4, 3])
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, seq_len\] = \[0, 5\]"):
        m.forward(x, lengths=np.array([6, 4]), training=True)
    with pytest.raises(ValueError, match=r"lengths must lie in"):
        m(x, lengths=[-1, 4])
    with pytest.raises(TypeError, match=r"lengths must be integers, got dtype float64"):
        m(x, lengths=[5.0, 4.0])


# ---------------------------------------------------------------------------------------------------
# Backward: bookkeeping
# ---------------------------------------------------------------------------------------------------


def test_backward_requires_training_forward(backend):
    m = LSTM(3, 4, 2)
    x = np.zeros((5, 2, 3))
    with pytest.raises(RuntimeError, match="training=True"):
        m.backward(np.zeros((5, 2, 4)))
    m(x)
    with pytest.raises(RuntimeError, match="training=True"):
        m.backward(np.zeros((5, 2, 4)))
    m.forward(x, training=False)
    with pytest.raises(RuntimeError, match="training=True"):
        m.backward(np.zeros((5, 2, 4)))
    m.forward(x, training=True)
    m(x)  # an inference call in between neither saves nor discards anything
    m.backward(np.ones((5, 2, 4)))
    with pytest.raises(RuntimeError, match="training=True"):  # released by the first backward
        m.backward(np.ones((5, 2, 4)))


@pytest.mark.parametrize("cell", CELLS)
def test_grad_accumulation_and_zero_grad(backend, cell):
    m = make(cell, 3, 4, 2, bidirectional=True, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rand(rng, 5, 2, 3)
    d_out = rand(rng, 5, 2, 8)
    assert all(not g.any() for g in m.grads.values())
    m.forward(x, training=True)
    dx1, ds1 = m.backward(d_out)
    first = {k: v.copy() for k, v in m.grads.items()}
    assert all(g.any() for g in first.values())
    grads_obj = {k: id(v) for k, v in m.grads.items()}
    m.forward(x, training=True)
    dx2, ds2 = m.backward(d_out)
    np.testing.assert_array_equal(dx1, dx2)
    for k in first:
        np.testing.assert_allclose(m.grads[k], 2 * first[k], rtol=1e-14, atol=1e-15)
    m.zero_grad()
    assert all(not g.any() for g in m.grads.values())
    assert {k: id(v) for k, v in m.grads.items()} == grads_obj  # zeroed in place


def test_bias_false_has_no_bias_grads(backend):
    m = GRU(3, 4, 2, bias=False, seed=0)
    m.forward(np.ones((4, 2, 3)), training=True)
    m.backward(np.ones((4, 2, 4)))
    assert set(m.grads) == set(m.state_dict()) and not any(k.startswith("bias") for k in m.grads)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_shapes_and_none_gradients(backend, cell):
    T, B, I, H, L = 4, 3, 2, 5, 2
    m = make(cell, I, H, L, bidirectional=True, batch_first=True, seed=0)
    x = np.random.default_rng(0).standard_normal((B, T, I))
    m.forward(x, training=True)
    dx, ds = m.backward(None, None)  # all zeros in: all zeros out
    assert dx.shape == (B, T, I) and dx.dtype == np.float32 and not dx.any()
    for s in as_pair(cell, ds):
        assert s.shape == (L * 2, B, H) and not s.any()
    assert all(not g.any() for g in m.grads.values())
    # unbatched
    m.forward(x[0], training=True)
    d_h = np.ones((L * 2, H))
    dx, ds = m.backward(np.ones((T, 2 * H)), (d_h, None) if cell == "lstm" else d_h)
    assert dx.shape == (T, I)
    for s in as_pair(cell, ds):
        assert s.shape == (L * 2, H)


def test_backward_validation(backend):
    m = LSTM(3, 4, 2, bidirectional=True)
    g = GRU(3, 4)
    x = np.zeros((5, 2, 3))
    m.forward(x, training=True)
    with pytest.raises(ValueError, match=r"d_out has shape \(5, 2, 4\), expected \(5, 2, 8\)"):
        m.backward(np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match=r"d_h_n has shape \(2, 2, 4\), expected \(4, 2, 4\)"):
        m.backward(None, (np.zeros((2, 2, 4)), None))
    with pytest.raises(ValueError, match=r"d_c_n has shape \(4, 4\), expected \(4, 2, 4\)"):
        m.backward(None, (None, np.zeros((4, 4))))
    with pytest.raises(TypeError, match=r"tuple \(d_h_n, d_c_n\)"):
        m.backward(None, np.zeros((4, 2, 4)))
    with pytest.raises(TypeError, match="d_out"):
        m.backward(np.zeros((5, 2, 8), dtype=complex))
    m.backward(np.zeros((5, 2, 8)))  # the failed calls above kept the saved forward
    g.forward(x, training=True)
    with pytest.raises(TypeError, match="single array"):
        g.backward(None, (np.zeros((1, 2, 4)),))
    with pytest.raises(ValueError, match=r"d_h_n has shape \(2, 4\), expected \(1, 2, 4\)"):
        g.backward(None, np.zeros((2, 4)))


def test_training_forward_keeps_its_own_copy_of_inputs(backend):
    m = LSTM(3, 4, 2, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rand(rng, 5, 2, 3)
    h0, c0 = rand(rng, 2, 2, 4), rand(rng, 2, 2, 4)
    d_out = rand(rng, 5, 2, 4)
    m.forward(x, (h0, c0), training=True)
    dx_ref, _ = m.backward(d_out)
    m.forward(x, (h0, c0), training=True)
    x[:] = 0
    h0[:] = 0
    c0[:] = 0
    dx, _ = m.backward(d_out)
    np.testing.assert_array_equal(dx, dx_ref)


# ---------------------------------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------------------------------


def test_state_dict_round_trip(backend):
    a = LSTM(3, 4, 2, bidirectional=True, seed=1)
    b = LSTM(3, 4, 2, bidirectional=True, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    sd = a.state_dict()
    live = b.parameters()
    b.load_state_dict(sd)
    assert all(b.parameters()[k] is live[k] for k in live)  # copied into the layer's own arrays
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    # state_dict returns copies; parameters() the live arrays
    sd["weight_ih_l0"][:] = 0
    assert a.state_dict()["weight_ih_l0"].any()
    a.parameters()["weight_ih_l0"][:] = 0
    assert not a.state_dict()["weight_ih_l0"].any()
    # loading does not alias the given arrays
    b.load_state_dict(sd)
    sd["weight_hh_l0"][:] = 7
    assert not np.any(b.state_dict()["weight_hh_l0"] == 7)


def test_load_state_dict_casts_and_accepts_array_likes():
    a = GRU(2, 3, dtype="float32", seed=0)
    sd64 = {k: v.astype(np.float64) + 0.1 for k, v in a.state_dict().items()}
    a.load_state_dict(sd64)
    for k, v in a.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_allclose(v, sd64[k], rtol=1e-6)
    a.load_state_dict({k: v.tolist() for k, v in sd64.items()})
    a.load_state_dict({k: np.zeros(v.shape, dtype=np.int32) for k, v in sd64.items()})
    assert not any(v.any() for v in a.parameters().values())


def test_load_state_dict_errors():
    m = LSTM(3, 4, 2)
    good = m.state_dict()
    before = m.state_dict()

    def check(sd, exc, *needles):
        with pytest.raises(exc) as info:
            m.load_state_dict(sd)
        assert not isinstance(info.value, KeyError)
        for n in needles:
            assert n in str(info.value), (n, str(info.value))
        for k, v in m.state_dict().items():  # nothing changed
            np.testing.assert_array_equal(v, before[k])

    missing = {k: v for k, v in good.items() if k != "bias_hh_l1"}
    check(missing, ValueError, "missing", "'bias_hh_l1'")
    check(dict(good, weight_ih_l0_reverse=np.zeros((16, 3))), ValueError, "unexpected", "'weight_ih_l0_reverse'")
    check(dict(good, weight_ih_l1=np.zeros((16, 3))), ValueError, "'weight_ih_l1'", "(16, 3)", "(16, 4)")
    check(dict(good, bias_ih_l0=np.zeros((16,), dtype=complex)), TypeError, "bias_ih_l0")
    check([("weight_ih_l0", good["weight_ih_l0"])], TypeError, "mapping")
    # all problems reported together
    sd = dict(missing, extra=np.zeros(1), weight_hh_l0=np.zeros((4, 4)))
    check(sd, ValueError, "'bias_hh_l1'", "'extra'", "'weight_hh_l0' has shape (4, 4), expected (16, 4)")


# ---------------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------------


def test_dropout(backend):
    x = np.random.default_rng(0).standard_normal((6, 3, 4))
    a, b = GRU(4, 8, 3, dropout=0.5, seed=7), GRU(4, 8, 3, dropout=0.5, seed=7)
    plain = GRU(4, 8, 3, seed=0)
    plain.load_state_dict(a.state_dict())
    # inference never drops: equal to the dropout-free layer, and repeatable
    np.testing.assert_array_equal(a(x)[0], plain(x)[0])
    np.testing.assert_array_equal(a.forward(x, training=False)[0], plain(x)[0])
    # training: reproducible under the seed, different from inference, different on each call
    out_a1, _ = a.forward(x, training=True)
    out_b1, _ = b.forward(x, training=True)
    np.testing.assert_array_equal(out_a1, out_b1)
    assert not np.allclose(out_a1, plain(x)[0])
    out_a2, _ = a.forward(x, training=True)
    assert not np.array_equal(out_a1, out_a2)
    # dropout=0 in training is the plain forward
    np.testing.assert_array_equal(plain.forward(x, training=True)[0], plain(x)[0])
    # the mask hides about p of the inputs of layers > 0: their weight gradients see zeros there
    a.forward(x, training=True)
    a.backward(np.ones((6, 3, 8)))
    assert np.mean(a.grads["weight_ih_l1"] == 0) < 0.5  # sanity: mostly non-zero gradients


def test_dropout_backward_matches_finite_differences(backend):
    """With a fixed seed the masks repeat, so the layer with dropout is a deterministic function."""
    T, B, I, H, L, p = 4, 2, 3, 3, 3, 0.4
    rng = np.random.default_rng(4)
    x = rand(rng, T, B, I)
    d_out = rand(rng, T, B, 2 * H)
    params = LSTM(I, H, L, bidirectional=True, dtype="float64", seed=0).state_dict()

    def layer():
        m = LSTM(I, H, L, bidirectional=True, dropout=p, dtype="float64", seed=11)
        m.load_state_dict(params)
        return m

    def loss(x_):
        out, _ = layer().forward(x_, training=True)
        return np.sum(out * d_out)

    m = layer()
    m.forward(x, training=True)
    dx, _ = m.backward(d_out)
    eps = 1e-6
    for idx in [(0, 0, 0), (1, 1, 2), (3, 0, 1), (2, 1, 0)]:
        e = np.zeros_like(x)
        e[idx] = eps
        fd = (loss(x + e) - loss(x - e)) / (2 * eps)
        assert abs(fd - dx[idx]) <= 1e-7 * max(1.0, abs(fd)), (idx, fd, dx[idx])


# ---------------------------------------------------------------------------------------------------
# Finite differences through the layer API (float64)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell, batch_first", [("lstm", False), ("gru", True), ("rnn_tanh", False)])
def test_finite_differences_two_layer_bidirectional(backend, cell, batch_first):
    T, B, I, H, L, D = 4, 2, 3, 3, 2, 2
    m = make(cell, I, H, L, bidirectional=True, batch_first=batch_first, dtype="float64", seed=3)
    rng = np.random.default_rng(9)
    x = rand(rng, *((B, T, I) if batch_first else (T, B, I)))
    st = state_of(cell, rng, (L * D, B, H))
    d_out = rand(rng, *((B, T, D * H) if batch_first else (T, B, D * H)))
    d_st = state_of(cell, rng, (L * D, B, H))
    lstm = cell == "lstm"

    def loss(x_, st_):
        out, stn = m(x_, st_)
        return np.sum(out * d_out) + sum(np.sum(a * b) for a, b in zip(as_pair(cell, stn), as_pair(cell, d_st)))

    m.forward(x, st, training=True)
    dx, dst = m.backward(d_out, d_st)
    eps, pick = 1e-6, np.random.default_rng(0)

    def check(name, arr, grad, f, n=6):
        for _ in range(n):
            idx = tuple(pick.integers(0, s) for s in arr.shape)
            old = arr[idx]
            arr[idx] = old + eps
            lp = f()
            arr[idx] = old - eps
            lm = f()
            arr[idx] = old
            fd = (lp - lm) / (2 * eps)
            assert abs(fd - grad[idx]) <= 1e-7 * max(1.0, abs(fd)), (cell, name, idx, fd, grad[idx])

    check("x", x, dx, lambda: loss(x, st))
    for i, name in enumerate(["h0", "c0"][: 2 if lstm else 1]):
        check(name, as_pair(cell, st)[i], as_pair(cell, dst)[i], lambda: loss(x, st))
    p = m.parameters()
    for name in ["weight_hh_l0_reverse", "weight_ih_l1", "bias_hh_l0", "bias_ih_l1_reverse"]:
        check(name, p[name], m.grads[name], lambda: loss(x, st), n=4)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_weights_edited_in_place_are_seen_by_the_next_call(cls):
    """The kernels keep packed weights between calls (csrc/rnnfast/weight_cache.h); a pack is reused
    only for weights equal element for element to the ones it was made from, so editing a parameter
    in place (one element, the GRU's recurrent bias too) changes the next result exactly as the
    reference says."""
    m = cls(6, 20, seed=3)
    x = np.random.default_rng(0).standard_normal((5, 2, 6)).astype(np.float32)
    first = m(x)[0].copy()
    for name in ("weight_hh_l0", "weight_ih_l0", "bias_hh_l0"):
        p = m.parameters()[name]
        p.flat[p.size // 2 + 1] += 0.5  # in place: the same array, the same address
        got = m(x)[0]
        assert not np.array_equal(got, first), name
        params = m.parameters()
        args = (x, None) + ((None,) if cls is LSTM else ()) + (
            params["weight_ih_l0"], params["weight_hh_l0"], params["bias_ih_l0"], params["bias_hh_l0"])
        fn = {RNN: reference.rnn, LSTM: reference.lstm, GRU: reference.gru}[cls]
        want = fn(*args)[0]
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=name)
        first = got.copy()
