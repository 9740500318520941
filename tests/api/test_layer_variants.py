"""The cell variants through the layers (rnnfast.layers): every option with stacking, both directions,
``direction='reverse'``, batch_first, unbatched input and lengths (a 0 length among them).

What each test compares against (never numbers the code under test produced):

- the layer on the native ops against the same layer on the NumPy reference ops (skipped, with the reason,
  while rnnfast.functional has no ``variant_forward``);
- the layer on the reference ops against PyTorch for ``proj_size`` (``torch.nn.LSTM``: outputs, states and
  every gradient), and against central finite differences in float64 (the gradients of every parameter,
  weight_hr and weight_ch among them, of the input and of the initial state, dropout included);
- ``direction='reverse'`` against the forward direction on sequences the test reverses itself;
- PyTorch's cells given as explicit options against today's fused path, bit for bit;
- the stepper against the layer's forward on the same ops, bit for bit;
- save/load against the saved layer.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import rnnfast
import rnnfast._rnn_base as rnn_base
from rnnfast import Activation, functional, reference
from rnnfast.layers import GRU, LSTM, RNN

HAS_NATIVE_VARIANTS = hasattr(functional, "variant_forward") and hasattr(functional, "variant_backward")
needs_native = pytest.mark.skipif(
    not HAS_NATIVE_VARIANTS,
    reason="rnnfast.functional has no variant_forward/variant_backward yet (the native variant kernels); "
           "these tests run once it does")

CLASSES = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}
I, H, P = 3, 4, 2

#: Layer options covering every variant option of each class (and PyTorch's cells for comparison).
CASES = {
    "rnn-softsign": ("RNN", {"nonlinearity": "softsign"}),
    "rnn-leaky-clip": ("RNN", {"nonlinearity": Activation("leaky_relu", alpha=0.2), "clip": 1.5}),
    "rnn-per-direction": ("RNN", {"activations": [["tanh"], [Activation("scaled_tanh", 1.5, 0.7)]],
                                  "bidirectional": True}),
    "lstm-proj": ("LSTM", {"proj_size": P}),
    "lstm-peepholes": ("LSTM", {"peepholes": True}),
    "lstm-proj-peepholes-clip": ("LSTM", {"proj_size": P, "peepholes": True, "clip": 1.2}),
    "lstm-input-forget": ("LSTM", {"input_forget": True}),
    "lstm-keras-activations": ("LSTM", {"activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
    "lstm-onnx-activations": ("LSTM", {"activations": [[Activation("hard_sigmoid", 0.3, 0.4), "tanh", "elu"],
                                                       ["sigmoid", "softsign", "tanh"]], "bidirectional": True}),
    "gru-reset-before": ("GRU", {"reset_after": False}),
    "gru-clip-activations": ("GRU", {"clip": 0.9, "activation": "relu", "recurrent_activation": "sigmoid"}),
    "gru-reset-before-proj-free": ("GRU", {"reset_after": False, "activations": ["hard_sigmoid", "tanh"]}),
}
#: Layouts: (extra constructor arguments, lengths, unbatched).
LAYOUTS = {
    "bidirectional-lengths": ({"bidirectional": True}, [5, 0, 3], False),
    "reverse-lengths": ({"direction": "reverse"}, [2, 5, 0], False),
    "forward-batch-first": ({"batch_first": True}, None, False),
    "reverse-unbatched": ({"direction": "reverse"}, None, True),
}
T, B = 5, 3


@pytest.fixture
def on_reference(monkeypatch):
    """Run the layers (and their steppers) on rnnfast.reference."""
    monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)


def make(case: str, layout: dict = None, *, num_layers: int = 2, seed: int = 0, **kw):
    cls_name, options = CASES[case]
    options = dict(options)
    options.update(layout or {})
    if options.get("direction") == "reverse":  # one direction: the reverse one's activations
        options.pop("bidirectional", None)
        if "activations" in options and isinstance(options["activations"][0], list):
            options["activations"] = options["activations"][1:]
    return CLASSES[cls_name](I, H, num_layers, dtype="float64", seed=seed, **options, **kw)


def inputs(m, lengths, unbatched, seed=1):
    rng = np.random.default_rng(seed)
    shape = (T, I) if unbatched else ((B, T, I) if m.batch_first else (T, B, I))
    x = rng.standard_normal(shape)
    R, LD = m.state_size, m.num_layers * m.num_directions
    lead = (LD,) if unbatched else (LD, B)
    h0 = 0.5 * rng.standard_normal(lead + (R,))
    state = (h0, 0.5 * rng.standard_normal(lead + (H,))) if isinstance(m, LSTM) else h0
    return x, state, (None if lengths is None else np.array(lengths[:1] if unbatched else lengths))


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def run_training(m, x, state, lengths, seed=2):
    """forward(training=True) then backward with random cotangents: (out, state, d_x, d_state, grads)."""
    out, st = m.forward(x, state, lengths=lengths, training=True)
    rng = np.random.default_rng(seed)
    d_out = rng.standard_normal(out.shape)
    d_st = tuple(rng.standard_normal(s.shape) for s in as_tuple(st))
    d_x, d_state = m.backward(d_out, d_st if isinstance(m, LSTM) else d_st[0])
    return out, st, d_x, d_state, {k: v.copy() for k, v in m.grads.items()}


def assert_all_close(got, want, rtol=1e-9, atol=1e-11, what=""):
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, dict):
            assert list(g) == list(w)
            for k in w:
                np.testing.assert_allclose(g[k], w[k], rtol=rtol, atol=atol, err_msg=f"{what} {k}")
        elif isinstance(w, tuple):
            assert_all_close(g, w, rtol, atol, f"{what}[{i}]")
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{what}[{i}]")


# ---------------------------------------------------------------------------------------------------
# Construction: parameters, shapes, properties, repr
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
def test_proj_and_peephole_parameters_in_pytorchs_order(bidirectional):
    L, D = 2, 2 if bidirectional else 1
    m = LSTM(I, H, L, proj_size=P, peepholes=True, bidirectional=bidirectional, seed=3)
    expected = []
    for k in range(L):
        for sfx in ["", "_reverse"][:D]:
            expected += [(f"weight_ih_l{k}{sfx}", (4 * H, I if k == 0 else D * P)),
                         (f"weight_hh_l{k}{sfx}", (4 * H, P)),
                         (f"bias_ih_l{k}{sfx}", (4 * H,)), (f"bias_hh_l{k}{sfx}", (4 * H,)),
                         (f"weight_ch_l{k}{sfx}", (3 * H,)), (f"weight_hr_l{k}{sfx}", (P, H))]
    assert [(k, v.shape) for k, v in m.parameters().items()] == expected
    assert list(m.grads) == [k for k, _ in expected]
    for name, v in m.parameters().items():
        assert np.all(np.abs(v) <= 1 / np.sqrt(H)) and v.std() > 0.1 / np.sqrt(H), name
    assert (m.proj_size, m.state_size, m.peepholes, m.hidden_size) == (P, P, True, H)


def test_proj_state_and_output_shapes(on_reference):
    m = LSTM(I, H, 2, proj_size=P, bidirectional=True, batch_first=True, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    out, (h, c) = m(rng.standard_normal((B, T, I)))
    assert out.shape == (B, T, 2 * P) and h.shape == (4, B, P) and c.shape == (4, B, H)
    out, (h, c) = m(rng.standard_normal((T, I)))
    assert out.shape == (T, 2 * P) and h.shape == (4, P) and c.shape == (4, H)
    with pytest.raises(ValueError, match=r"h0.*\(4, 3, 2\).*proj_size"):
        m(rng.standard_normal((B, T, I)), (np.zeros((4, B, H)), np.zeros((4, B, H))))
    with pytest.raises(ValueError, match=r"c0.*\(4, 3, 4\).*hidden_size"):
        m(rng.standard_normal((B, T, I)), (np.zeros((4, B, P)), np.zeros((4, B, P))))


def test_properties():
    m = LSTM(I, H, proj_size=P, peepholes=True, clip=2, input_forget=True, activation="relu",
             recurrent_activation=Activation("hard_sigmoid", 0.25, 0.5), direction="reverse")
    acts = (Activation("hard_sigmoid", 0.25, 0.5), Activation("relu"), Activation("relu"))
    assert m.activations == (acts,)
    assert (m.proj_size, m.peepholes, m.clip, m.input_forget, m.direction, m.bidirectional, m.num_directions) == \
        (P, True, 2.0, True, "reverse", False, 1)
    assert m.variant_options() == ["activations", "clip", "input_forget", "proj_size", "peepholes"]
    assert len(m.options) == 1 and m.options[0].activations == acts
    g = GRU(I, H, reset_after=False, bidirectional=True)
    assert g.reset_after is False and g.direction == "bidirectional" and g.proj_size == 0
    assert g.activations == ((Activation("sigmoid"), Activation("tanh")),) * 2
    r = RNN(I, H, nonlinearity="relu", direction="forward")
    assert r.nonlinearity == "relu" and r.mode == "RNN_RELU" and not r.is_variant and r.clip is None
    assert RNN(I, H, nonlinearity="elu").nonlinearity == "elu"
    for name in ("proj_size", "peepholes", "clip", "input_forget", "direction", "activations"):
        with pytest.raises(AttributeError):
            setattr(m, name, None)


@pytest.mark.parametrize("case", list(CASES))
def test_repr_gives_the_same_layer(case):
    m = make(case)
    text = repr(m)
    again = eval(text, {"RNN": RNN, "LSTM": LSTM, "GRU": GRU, "Activation": Activation})
    assert again.options == m.options and repr(again) == text
    assert [(k, v.shape) for k, v in again.parameters().items()] == [(k, v.shape) for k, v in m.parameters().items()]
    assert "dtype='float64'" in text and "num_layers=2" in text


def test_repr_shows_only_what_is_not_default():
    assert repr(LSTM(I, H, activations=["sigmoid", "tanh", "tanh"], clip=float("inf"), direction="forward")) == \
        "LSTM(3, 4)"
    assert repr(GRU(I, H, reset_after=False, direction="reverse")) == "GRU(3, 4, reset_after=False, direction='reverse')"
    assert repr(RNN(I, H, nonlinearity=Activation("leaky_relu", alpha=0.5))) == \
        "RNN(3, 4, nonlinearity=Activation('leaky_relu', alpha=0.5))"
    assert repr(LSTM(I, H, proj_size=2, peepholes=True, clip=3, input_forget=True)) == \
        "LSTM(3, 4, proj_size=2, peepholes=True, clip=3.0, input_forget=True)"


# ---------------------------------------------------------------------------------------------------
# PyTorch's cells, given as options, are today's layers
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls_name, options", [
    ("LSTM", {"activations": ["sigmoid", "tanh", "tanh"], "clip": None, "proj_size": 0, "peepholes": False,
              "input_forget": False, "direction": "bidirectional"}),
    ("GRU", {"activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True, "clip": float("inf")}),
    ("RNN", {"nonlinearity": Activation("relu"), "direction": "forward"}),
])
def test_default_options_run_todays_fused_path_bit_for_bit(cls_name, options, monkeypatch):
    """A layer whose options are PyTorch's cell never calls variant_forward and gives the bits of the layer made
    without the options, and of the functional ops it always composed (float32, the fast path and the general one)."""
    def refuse(*args, **kw):
        raise AssertionError("variant op called for PyTorch's cell")
    for name in ("variant_forward", "variant_backward"):
        monkeypatch.setattr(functional, name, refuse, raising=False)
    bidirectional = options.get("direction") == "bidirectional"
    plain_kw = {"bidirectional": True} if bidirectional else {}
    if cls_name == "RNN":
        plain_kw["nonlinearity"] = "relu"
    m = CLASSES[cls_name](I, H, 2, seed=5, **options)
    plain = CLASSES[cls_name](I, H, 2, seed=5, **plain_kw)
    assert not m.is_variant and repr(m) == repr(plain)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([5, 0, 2])
    for args in ((x,), (x, None)):
        got, want = m(*args), plain(*args)
        for g, w in zip((got[0],) + as_tuple(got[1]), (want[0],) + as_tuple(want[1])):
            np.testing.assert_array_equal(g, w)
    got = run_training(m, x, None, lengths)
    want = run_training(plain, x, None, lengths)
    for g, w in zip(got[:2] + got[2:4], want[:2] + want[2:4]):
        for a, b in zip(as_tuple(g), as_tuple(w)):
            np.testing.assert_array_equal(a, b)
    for k in want[4]:
        np.testing.assert_array_equal(got[4][k], want[4][k])
    if not bidirectional:
        # The composition of the single-layer ops (what the layer computed before the variants existed).
        inp = x
        p = m.parameters()
        op = {"LSTM": functional.lstm, "GRU": functional.gru, "RNN": functional.rnn}[cls_name]
        extra = {"nonlinearity": "relu"} if cls_name == "RNN" else {}
        for k in range(2):
            w = [p[f"{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            args = (inp, None, None) if cls_name == "LSTM" else (inp, None)
            inp = op(*args, *w, **extra)[0]
        np.testing.assert_array_equal(m(x)[0], inp)


def test_mixed_rnn_directions_match_the_cells_they_are(on_reference):
    """tanh one way and relu the other: the relu direction runs on variant_forward, and equals the reverse half
    of a relu RNN with the same parameters (reference ops: variant_forward against reference.rnn)."""
    m = RNN(I, H, 1, activations=[["tanh"], ["relu"]], bidirectional=True, dtype="float64", seed=0)
    relu = RNN(I, H, 1, nonlinearity="relu", bidirectional=True, dtype="float64")
    tanh = RNN(I, H, 1, bidirectional=True, dtype="float64")
    relu.load_state_dict(m.state_dict())
    tanh.load_state_dict(m.state_dict())
    assert m.variant_options() == ["activations"]
    x, h0, lengths = inputs(m, [5, 1, 0], False)
    got, want_f, want_r = run_training(m, x, h0, lengths), run_training(tanh, x, h0, lengths), \
        run_training(relu, x, h0, lengths)
    np.testing.assert_allclose(got[0][..., :H], want_f[0][..., :H], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[0][..., H:], want_r[0][..., H:], rtol=1e-12, atol=1e-14)
    for k in got[4]:
        want = want_r[4][k] if k.endswith("_reverse") else want_f[4][k]
        np.testing.assert_allclose(got[4][k], want, rtol=1e-12, atol=1e-14, err_msg=k)


# ---------------------------------------------------------------------------------------------------
# The reverse direction
# ---------------------------------------------------------------------------------------------------


def _reverse_each(a, lengths):
    """Each sequence of ``a`` (T, B, ...) reversed within its length (the test's own reversal)."""
    out = a.copy()
    for b, n in enumerate(lengths):
        out[:n, b] = a[:n, b][::-1]
    return out


@pytest.mark.parametrize("case", ["lstm-proj-peepholes-clip", "gru-reset-before", "rnn-softsign"])
def test_reverse_direction_is_the_forward_one_on_reversed_sequences(case, on_reference):
    rev = make(case, {"direction": "reverse"}, num_layers=1)
    fwd = make(case, num_layers=1)
    fwd.load_state_dict({k.replace("_reverse", ""): v for k, v in rev.state_dict().items()})
    x, state, lengths = inputs(rev, [5, 2, 0], False)
    out_r, st_r = rev(x, state, lengths=lengths)
    out_f, st_f = fwd(_reverse_each(x, lengths), state, lengths=lengths)
    np.testing.assert_array_equal(out_r, _reverse_each(out_f, lengths))
    for a, b in zip(as_tuple(st_r), as_tuple(st_f)):
        np.testing.assert_array_equal(a, b)


def test_reverse_direction_is_the_reverse_half_of_bidirectional(on_reference):
    bi = LSTM(I, H, 1, proj_size=P, peepholes=True, bidirectional=True, dtype="float64", seed=0)
    rev = LSTM(I, H, 1, proj_size=P, peepholes=True, direction="reverse", dtype="float64")
    rev.load_state_dict({k: v for k, v in bi.state_dict().items() if k.endswith("_reverse")})
    x, (h0, c0), lengths = inputs(bi, [4, 0, 5], False)
    out_b, (h_b, c_b) = bi(x, (h0, c0), lengths=lengths)
    out_r, (h_r, c_r) = rev(x, (h0[1:], c0[1:]), lengths=lengths)
    np.testing.assert_array_equal(out_r, out_b[..., P:])
    np.testing.assert_array_equal(h_r, h_b[1:])
    np.testing.assert_array_equal(c_r, c_b[1:])


def test_reverse_quantized_layer_is_the_forward_one_on_reversed_sequences():
    """PyTorch's cell in the reverse direction quantizes (the reduced op on the reversed sequences)."""
    rev = rnnfast.quantize(GRU(I, H, 2, direction="reverse", seed=0), "int8")
    fwd = GRU(I, H, 2, seed=0)
    fwd = rnnfast.quantize(fwd, "int8")
    fwd.load_state_dict({k.replace("_reverse", ""): v for k, v in rev.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([3, 5, 0])
    out_r, h_r = rev(x, lengths=lengths)
    # A 2-layer reverse model reverses each layer's input and output: layer 2 sees forward-time data.
    out_1, h_1 = fwd(_reverse_each(x, lengths), lengths=lengths)
    assert out_r.shape == out_1.shape and h_r.shape == h_1.shape
    one_layer = rnnfast.quantize(GRU(I, H, 1, direction="reverse"), "int8")
    one_layer.load_state_dict({k: v for k, v in rev.state_dict().items() if "_l0" in k})
    fwd1 = rnnfast.quantize(GRU(I, H, 1), "int8")
    fwd1.load_state_dict({k.replace("_reverse", ""): v for k, v in one_layer.state_dict().items()})
    np.testing.assert_array_equal(one_layer(x, lengths=lengths)[0],
                                  _reverse_each(fwd1(_reverse_each(x, lengths), lengths=lengths)[0], lengths))


# ---------------------------------------------------------------------------------------------------
# Against PyTorch (proj_size) and finite differences (every option)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional, batch_first, use_lengths", [
    (False, False, False), (True, True, True), (True, False, False), (False, True, True)])
def test_proj_lstm_on_reference_ops_matches_pytorch(bidirectional, batch_first, use_lengths, on_reference):
    torch = pytest.importorskip("torch")
    L, D = 2, 2 if bidirectional else 1
    tm = torch.nn.LSTM(I, H, L, proj_size=P, bidirectional=bidirectional, batch_first=batch_first,
                       dtype=torch.float64)
    m = LSTM(I, H, L, proj_size=P, bidirectional=bidirectional, batch_first=batch_first, dtype="float64")
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0, c0 = 0.5 * rng.standard_normal((L * D, B, P)), 0.5 * rng.standard_normal((L * D, B, H))
    lengths = np.array([5, 2, 3]) if use_lengths else None
    out, (h_n, c_n) = m.forward(x, (h0, c0), lengths=lengths, training=True)

    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    if use_lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=batch_first,
                                                         enforce_sorted=False)
        t_packed, (t_h, t_c) = tm(packed, (th0, tc0))
        t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_packed, batch_first=batch_first, total_length=T)
    else:
        t_out, (t_h, t_c) = tm(tx, (th0, tc0))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n, t_h.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c_n, t_c.detach().numpy(), rtol=1e-10, atol=1e-12)

    d_out, d_h, d_c = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape), rng.standard_normal(c_n.shape)
    d_x, (d_h0, d_c0) = m.backward(d_out, (d_h, d_c))
    loss = (t_out * torch.tensor(d_out)).sum() + (t_h * torch.tensor(d_h)).sum() + (t_c * torch.tensor(d_c)).sum()
    loss.backward()
    np.testing.assert_allclose(d_x, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(d_h0, th0.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(d_c0, tc0.grad.numpy(), rtol=1e-9, atol=1e-11)
    names = [n for n, _ in tm.named_parameters()]
    assert names == list(m.grads)
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(m.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


FD_CASES = {
    "lstm-everything-bidirectional": (LSTM, {"proj_size": P, "peepholes": True, "clip": 2.0, "bidirectional": True,
                                             "activations": ["sigmoid", "softsign", "tanh"], "dropout": 0.3}),
    "lstm-input-forget-reverse": (LSTM, {"input_forget": True, "peepholes": True, "direction": "reverse",
                                         "dropout": 0.3, "batch_first": True}),
    "gru-reset-before-bidirectional": (GRU, {"reset_after": False, "clip": 1.5, "bidirectional": True,
                                             "activation": "softsign"}),
    "rnn-reverse": (RNN, {"nonlinearity": Activation("scaled_tanh", 1.3, 0.8), "direction": "reverse"}),
}


@pytest.mark.parametrize("case", list(FD_CASES))
def test_layer_gradients_match_finite_differences(case, on_reference):
    """Every parameter's gradient (sampled entries), the input's and the initial state's, against central
    differences of the layer's own forward in float64 (the dropout masks drawn again from the same seed)."""
    cls, kw = FD_CASES[case]
    m = cls(2, 3, 2, dtype="float64", seed=4, **kw)
    rng = np.random.default_rng(5)
    Tn, Bn = 3, 2
    x = rng.standard_normal((Bn, Tn, 2) if m.batch_first else (Tn, Bn, 2))
    LD, R = m.num_layers * m.num_directions, m.state_size
    h0 = 0.5 * rng.standard_normal((LD, Bn, R))
    state = (h0, 0.5 * rng.standard_normal((LD, Bn, 3))) if cls is LSTM else h0
    lengths = np.array([3, 1])
    probe_out = m(x, state, lengths=lengths)
    w_out = rng.standard_normal(probe_out[0].shape)
    w_st = tuple(rng.standard_normal(s.shape) for s in as_tuple(probe_out[1]))

    def loss():
        m._rng = np.random.default_rng(99)  # the same dropout masks every time
        out, st = m.forward(x, state, lengths=lengths, training=True)
        m._cache = None
        return float((out * w_out).sum() + sum((s * w).sum() for s, w in zip(as_tuple(st), w_st)))

    m._rng = np.random.default_rng(99)
    m.zero_grad()
    m.forward(x, state, lengths=lengths, training=True)
    d_x, d_state = m.backward(w_out, w_st if cls is LSTM else w_st[0])
    eps = 1e-6

    def numeric(arr, idx):
        old = arr[idx]
        arr[idx] = old + eps
        up = loss()
        arr[idx] = old - eps
        down = loss()
        arr[idx] = old
        return (up - down) / (2 * eps)

    checked = 0
    for name, p in m.parameters().items():
        for flat in rng.choice(p.size, size=min(3, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            np.testing.assert_allclose(m.grads[name][idx], numeric(p, idx), rtol=1e-5, atol=1e-7, err_msg=name)
            checked += 1
    assert any(k.startswith("weight_ch") or k.startswith("weight_hr") for k in m.parameters()) or cls is not LSTM
    for arr, grad, what in [(x, d_x, "x")] + list(zip(as_tuple(state), as_tuple(d_state), ("h0", "c0"))):
        for flat in rng.choice(arr.size, size=4, replace=False):
            idx = np.unravel_index(flat, arr.shape)
            np.testing.assert_allclose(grad[idx], numeric(arr, idx), rtol=1e-5, atol=1e-7, err_msg=what)
    assert checked > 10


# ---------------------------------------------------------------------------------------------------
# Native ops against the reference ops
# ---------------------------------------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", list(CASES))
def test_layer_on_native_ops_matches_reference_ops(case, layout, monkeypatch):
    extra, lengths, unbatched = LAYOUTS[layout]
    m = make(case, extra)
    x, state, lengths = inputs(m, lengths, unbatched)
    native = run_training(m, x, state, lengths)
    monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)
    m.zero_grad()
    want = run_training(m, x, state, lengths)
    assert_all_close(native, want, rtol=1e-9, atol=1e-11, what=f"{case}/{layout}")
    # Inference (no training cache) gives the training forward's results.
    monkeypatch.setattr(rnn_base, "functional_ops", lambda: functional)
    out, st = m(x, state, lengths=lengths)
    assert_all_close((out,) + as_tuple(st), (native[0],) + as_tuple(native[1]), rtol=0, atol=0)


@needs_native
def test_float32_variant_layer_on_native_ops_matches_reference_ops(monkeypatch):
    m = LSTM(I, H, 2, proj_size=P, peepholes=True, clip=1.0, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([5, 0, 3])
    native = run_training(m, x, None, lengths)
    assert native[0].dtype == np.float32
    monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)
    m.zero_grad()
    assert_all_close(native, run_training(m, x, None, lengths), rtol=2e-4, atol=2e-5)


# ---------------------------------------------------------------------------------------------------
# Every layout on the reference ops: shapes and consistency of the pieces
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", list(CASES))
def test_layouts_on_reference_ops(case, layout, on_reference):
    """Shapes of every layout, zero outputs past each length (a 0 length included), and a batch of one
    sequence giving the rows of the batch it came from."""
    extra, lengths, unbatched = LAYOUTS[layout]
    m = make(case, extra)
    x, state, lengths = inputs(m, lengths, unbatched)
    out, st, d_x, d_state, grads = run_training(m, x, state, lengths)
    D, R, L = m.num_directions, m.state_size, m.num_layers
    lead = (T,) if unbatched else ((B, T) if m.batch_first else (T, B))
    assert out.shape == lead + (D * R,) and d_x.shape == x.shape
    for s, ds, width in zip(as_tuple(st), as_tuple(d_state), (R, H)):
        assert s.shape == ds.shape == ((L * D,) if unbatched else (L * D, B)) + (width,)
    assert all(np.isfinite(g).all() for g in grads.values())
    if lengths is not None and not unbatched:
        time_major = out.transpose(1, 0, 2) if m.batch_first else out
        for b, n in enumerate(lengths):
            assert not time_major[n:, b].any(), "outputs past a sequence's end are zero"
        # The batch row b alone, with its own length: the same results (sequences are independent).
        b = int(np.argmax(lengths))
        xb = x[b:b + 1] if m.batch_first else x[:, b:b + 1]
        sb = tuple(s[:, b:b + 1] for s in as_tuple(state))
        out_b, st_b = m(xb, sb if isinstance(m, LSTM) else sb[0], lengths=lengths[b:b + 1])
        want = out[b:b + 1] if m.batch_first else out[:, b:b + 1]
        np.testing.assert_allclose(out_b, want, rtol=1e-12, atol=1e-14)
        for s_b, s in zip(as_tuple(st_b), as_tuple(st)):
            np.testing.assert_allclose(s_b, s[:, b:b + 1], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------
# Stepper
# ---------------------------------------------------------------------------------------------------


STEP_CASES = ["rnn-leaky-clip", "lstm-proj-peepholes-clip", "lstm-input-forget", "gru-reset-before",
              "gru-clip-activations"]


def _stepper_equals_forward(m, exact: bool):
    """Stepping gives the layer's forward. ``exact``: bit for bit (the native ops, whose results do not depend on
    the number of rows); else to rounding (NumPy's matrix products on T*B rows and on B rows may round apart)."""
    if exact:
        same = np.testing.assert_array_equal
    else:
        rtol = 1e-12 if m.dtype == np.float64 else 1e-5

        def same(a, b):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(m.dtype)
    R = m.state_size
    h0 = 0.5 * rng.standard_normal((m.num_layers, B, R)).astype(m.dtype)
    state = (h0, 0.5 * rng.standard_normal((m.num_layers, B, H)).astype(m.dtype)) if isinstance(m, LSTM) else h0
    out, st = m(x, state)
    s = m.stepper(batch=B)
    s.reset(state)
    ys = np.stack([s.step(x[t]) for t in range(T)])
    same(ys, out)
    for a, b in zip(as_tuple(s.state), as_tuple(st)):
        same(a, b)
    s.reset(state)
    same(np.concatenate([s.step_many(x[:2]), s.step_many(x[2:])]), out)
    s.reset()
    y0 = s.step(x[0])
    same(y0, m(x[:1])[0][0])
    u = m.stepper(batch=None)
    same(np.stack([u.step(x[t, 1]) for t in range(T)]), m(x[:, 1])[0])
    assert u.step(x[0, 0]).shape == (R,) and ys.shape == (T, B, R)
    assert "variant=" in repr(s)


@pytest.mark.parametrize("case", STEP_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_variant_stepper_equals_forward_on_reference_ops(case, dtype, on_reference):
    cls_name, options = CASES[case]
    _stepper_equals_forward(CLASSES[cls_name](I, H, 2, dtype=dtype, seed=1, **options), exact=False)


@needs_native
@pytest.mark.parametrize("case", STEP_CASES)
def test_variant_stepper_equals_forward_on_native_ops(case):
    cls_name, options = CASES[case]
    _stepper_equals_forward(CLASSES[cls_name](I, H, 2, seed=1, **options), exact=True)


def test_stepper_refuses_reverse_direction():
    for m in (GRU(I, H, direction="reverse"), LSTM(I, H, proj_size=P, direction="reverse")):
        with pytest.raises(ValueError, match="reverse"):
            m.stepper()


def test_stepper_state_shapes_with_proj(on_reference):
    s = LSTM(I, H, 2, proj_size=P, seed=0).stepper(batch=B)
    h, c = s.state
    assert h.shape == (2, B, P) and c.shape == (2, B, H)
    with pytest.raises(ValueError, match="h0"):
        s.reset((np.zeros((2, B, H)), np.zeros((2, B, H))))


# ---------------------------------------------------------------------------------------------------
# Save and load
# ---------------------------------------------------------------------------------------------------


def _saved(m) -> bytes:
    f = io.BytesIO()
    rnnfast.save(f, m)
    return f.getvalue()


def _meta(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return json.loads(str(f["__rnnfast__"][()]))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("layout", ["bidirectional-lengths", "reverse-lengths"])
def test_save_load_round_trip(case, layout, on_reference):
    m = make(case, LAYOUTS[layout][0], seed=7)
    data = _saved(m)
    meta = _meta(data)
    assert meta["format_version"] == 3
    loaded = rnnfast.load(io.BytesIO(data))
    assert type(loaded) is type(m) and loaded.options == m.options and repr(loaded) == repr(m)
    assert loaded.direction == m.direction
    for (k, v), (k2, v2) in zip(m.state_dict().items(), loaded.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v, v2)
    x, state, lengths = inputs(m, LAYOUTS[layout][1], False)
    for a, b in zip(m(x, state, lengths=lengths), loaded(x, state, lengths=lengths)):
        for u, v in zip(as_tuple(a), as_tuple(b)):
            np.testing.assert_array_equal(u, v)


def test_saved_options_are_as_documented():
    m = LSTM(I, H, proj_size=P, peepholes=True, clip=2.5, input_forget=True, direction="reverse",
             activations=[Activation("hard_sigmoid", 0.3, 0.4), "tanh", Activation("leaky_relu", 0.1)])
    config = _meta(_saved(m))["config"]
    assert config["direction"] == "reverse" and config["bidirectional"] is False
    assert (config["clip"], config["proj_size"], config["peepholes"], config["input_forget"]) == (2.5, P, True, True)
    assert config["activations"] == [[{"name": "hard_sigmoid", "alpha": 0.3, "beta": 0.4},
                                      {"name": "tanh", "alpha": None, "beta": None},
                                      {"name": "leaky_relu", "alpha": 0.1, "beta": None}]]
    r = _meta(_saved(RNN(I, H, nonlinearity="elu", bidirectional=True)))["config"]
    assert r["nonlinearity"] == "elu" and len(r["activations"]) == 2 and "proj_size" not in r
    assert _meta(_saved(GRU(I, H, reset_after=False)))["config"]["reset_after"] is False


@pytest.mark.parametrize("m", [LSTM(I, H, 2, bidirectional=True), RNN(I, H, nonlinearity="relu"), GRU(I, H)],
                         ids=["lstm", "rnn", "gru"])
def test_pytorchs_cells_are_saved_as_version_2(m):
    """Files an rnnfast without the variants reads: a version 2 configuration, exactly its keys."""
    data = _saved(m)
    meta = _meta(data)
    assert meta["format_version"] == 2
    assert not {"direction", "clip", "activations", "proj_size", "reset_after"} & set(meta["config"])
    loaded = rnnfast.load(io.BytesIO(data))
    assert repr(loaded) == repr(m) and not loaded.is_variant


def _rewrite_meta(data: bytes, change) -> io.BytesIO:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = _meta(data)
    change(meta)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta, sort_keys=True)))
    members["__rnnfast__.npy"] = buf.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, v in members.items():
            z.writestr(n, v)
    out.seek(0)
    return out


def test_version_1_and_2_files_still_load():
    m = GRU(I, H, 2, bidirectional=True, seed=3)
    data = _saved(m)

    def to_v1(meta):
        meta["format_version"] = 1
        meta["config"].pop("weight_dtype")
    for f in (io.BytesIO(data), _rewrite_meta(data, to_v1)):
        loaded = rnnfast.load(f)
        assert repr(loaded) == repr(m)
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[k], v)


V3_EDITS = {
    "activation unknown": (lambda c: c["activations"][0][1].update(name="gelu"), "activations.*gelu"),
    "activation alpha on tanh": (lambda c: c["activations"][0][1].update(alpha=2.0), "alpha"),
    "activation without beta": (lambda c: c["activations"][0][0].pop("beta"), "activations"),
    "activations not a list": (lambda c: c.update(activations="tanh"), "activations"),
    "activations of one role too few": (lambda c: c["activations"][0].pop(), "activations"),
    "direction disagrees": (lambda c: c.update(direction="bidirectional"), "direction"),
    "direction missing": (lambda c: c.pop("direction"), "direction"),
    "clip a str": (lambda c: c.update(clip="2"), "clip"),
    "clip negative": (lambda c: c.update(clip=-1), "clip"),
    "proj_size changed": (lambda c: c.update(proj_size=1), "weight_hr|shape"),
    "proj_size a bool": (lambda c: c.update(proj_size=True), "proj_size"),
    "peepholes dropped": (lambda c: c.update(peepholes=False), "weight_ch"),
    "reset_after on an LSTM": (lambda c: c.update(reset_after=False), "reset_after"),
    "quantized variant": (lambda c: c.update(weight_dtype="int8"), "weight_ih_l0_reverse_scale|quantize"),
}


@pytest.mark.parametrize("edit", list(V3_EDITS))
def test_edited_version_3_files_are_refused(edit):
    m = LSTM(I, H, proj_size=P, peepholes=True, clip=2.0, direction="reverse")
    change, message = V3_EDITS[edit]
    f = _rewrite_meta(_saved(m), lambda meta: change(meta["config"]))
    with pytest.raises(ValueError, match=message):
        rnnfast.load(f)


def test_rnn_nonlinearity_must_agree_with_its_activations():
    data = _saved(RNN(I, H, nonlinearity="elu"))
    with pytest.raises(ValueError, match="nonlinearity"):
        rnnfast.load(_rewrite_meta(data, lambda meta: meta["config"].update(nonlinearity="relu")))
    with pytest.raises(ValueError, match="activations"):  # a version-2 file cannot carry the options
        rnnfast.load(_rewrite_meta(data, lambda meta: meta.update(format_version=2)))


def test_quantize_refuses_every_variant_naming_its_options():
    for case, (cls_name, options) in CASES.items():
        m = CLASSES[cls_name](I, H, **options)
        with pytest.raises(ValueError, match="quantize.*" + m.variant_options()[0]):
            rnnfast.quantize(m, "int8")


@pytest.mark.parametrize("shape", [(0, B, I), (T, 0, I), (0, I)], ids=["T=0", "B=0", "unbatched T=0"])
def test_empty_sequences_and_batches(shape, backend):
    """No steps: the final state is the initial one, the gradients pass straight through (native and reference)."""
    m = LSTM(I, H, 2, proj_size=P, peepholes=True, bidirectional=True, dtype="float64", seed=0)
    unbatched = len(shape) == 2
    rng = np.random.default_rng(0)
    lead = (4,) if unbatched else (4, shape[1])
    state = (rng.standard_normal(lead + (P,)), rng.standard_normal(lead + (H,)))
    out, (h, c) = m.forward(np.zeros(shape), state, training=True)
    assert out.shape == shape[:-1] + (2 * P,)
    if shape[0] == 0:
        np.testing.assert_array_equal(h, state[0])
        np.testing.assert_array_equal(c, state[1])
    d_h, d_c = rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    d_x, (d_h0, d_c0) = m.backward(None, (d_h, d_c))
    assert d_x.shape == shape
    if shape[0] == 0:
        np.testing.assert_array_equal(d_h0, d_h)
        np.testing.assert_array_equal(d_c0, d_c)
    assert not any(g.any() for g in m.grads.values())


@pytest.mark.parametrize("cls, name, value, match", [
    (rnnfast.GRU, "peepholes", True, "peepholes is an option of the LSTM; the GRU has none"),
    (rnnfast.GRU, "proj_size", 2, "proj_size is an option of the LSTM; the GRU has none"),
    (rnnfast.RNN, "input_forget", True, "input_forget is an option of the LSTM; the RNN has none"),
    (rnnfast.LSTM, "reset_after", False, "reset_after is an option of the GRU; the LSTM has none"),
    (rnnfast.LSTM, "nonlinearity", "relu", "nonlinearity is an option of the RNN"),
    (rnnfast.RNN, "activation", "relu", r"nonlinearity='relu'"),
])
def test_another_cells_option_is_a_value_error_naming_it(cls, name, value, match):
    with pytest.raises(ValueError, match=match):
        cls(3, 4, **{name: value})


def test_an_unknown_keyword_is_still_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'hiden'"):
        rnnfast.GRU(3, 4, hiden=5)
