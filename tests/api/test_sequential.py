"""rnnfast.nn.Sequential: whole-model gradients against finite differences (float64) and against a torch model
of the same structure holding the same state dict, lengths, predict, the native path, training with the
optimisers, indexing, and the errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import nn
from rnnfast._rnn_base import RNNBase

from helpers.finite_differences import numerical_gradient

T, B, V, E, H, C = 5, 4, 11, 3, 4, 3
LENGTHS = np.array([5, 2, 1, 4])


def _token_model(dtype="float64") -> nn.Sequential:
    """Embedding -> LSTM -> LastStep -> Linear: the many-to-one classifier over tokens."""
    return nn.Sequential(nn.Embedding(V, E, padding_idx=0, dtype=dtype, seed=0),
                         rnnfast.LSTM(E, H, dtype=dtype, seed=1), nn.LastStep(),
                         nn.Linear(H, C, dtype=dtype, seed=2))


def _tagger(dtype="float64", p=0.25) -> nn.Sequential:
    """GRU (batch_first, bidirectional, 2 layers) -> Dropout -> Linear at every step."""
    return nn.Sequential(rnnfast.GRU(E, H, num_layers=2, batch_first=True, bidirectional=True, dtype=dtype, seed=3),
                         nn.Dropout(p), nn.Linear(2 * H, C, dtype=dtype, seed=4))


def _tokens(seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, V, (T, B))


def _check_against_finite_differences(model, x, lengths, rng_seed=None):
    w = np.random.default_rng(9).standard_normal(model.forward(x, lengths=lengths).shape)

    def run(training=True):
        rng = None if rng_seed is None else np.random.default_rng(rng_seed)
        return model.forward(x, training=training, lengths=lengths, rng=rng)

    def loss():
        return float(np.sum(w * run()))

    model.zero_grad()
    run()
    d_x = model.backward(w)
    grads = {k: g.copy() for k, g in model.grads.items()}
    for name, p in model.parameters().items():
        np.testing.assert_allclose(grads[name], numerical_gradient(loss, p), rtol=1e-5, atol=1e-8, err_msg=name)
    return d_x, loss


def test_token_classifier_gradients_match_finite_differences():
    model = _token_model()
    d_x, _ = _check_against_finite_differences(model, _tokens(), LENGTHS)
    assert d_x is None  # an Embedding first: indices have no gradient


def test_tagger_gradients_match_finite_differences_with_lengths_and_dropout():
    model = _tagger()
    x = np.random.default_rng(1).standard_normal((B, T, E))
    d_x, loss = _check_against_finite_differences(model, x, LENGTHS, rng_seed=5)
    np.testing.assert_allclose(d_x, numerical_gradient(loss, x), rtol=1e-5, atol=1e-8)


def test_padded_steps_contribute_nothing():
    model = _tagger(p=0.0)
    x = np.random.default_rng(1).standard_normal((B, T, E))
    y = model.forward(x, training=True, lengths=LENGTHS)
    pad = np.arange(T)[None, :] >= LENGTHS[:, None]  # (B, T)
    assert not y[pad].any() and y[~pad].all()  # zero even where the Linear's bias would be
    w = np.random.default_rng(2).standard_normal(y.shape)
    d_x = model.backward(w)
    grads = {k: g.copy() for k, g in model.grads.items()}
    assert not d_x[pad].any()
    # Whatever comes back at padded steps is dropped.
    model.zero_grad()
    model.forward(x, training=True, lengths=LENGTHS)
    w[pad] = 1e6
    np.testing.assert_array_equal(model.backward(w), d_x)
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, grads[k])
    np.testing.assert_array_equal(model(x, lengths=LENGTHS), y)  # inference gives the same (p = 0)


# ---------------------------------------------------------------------------------------------------------
# Against torch
# ---------------------------------------------------------------------------------------------------------


def _torch_modules(torch):
    """Torch modules for the torch side: recurrent layers over packed sequences returning their output
    sequence only, the last valid step, a fixed mask; all read the lengths from a shared dict."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    ctx: dict = {}

    def packed(cls):
        class Packed(cls):
            def forward(self, x):
                lengths = torch.tensor(ctx["lengths"])
                seq = pack_padded_sequence(x, lengths, batch_first=self.batch_first, enforce_sorted=False)
                out, _ = super().forward(seq)
                return pad_packed_sequence(out, batch_first=self.batch_first, total_length=x.shape[1 if self.batch_first else 0])[0]
        return Packed

    class Last(torch.nn.Module):
        def forward(self, x):
            idx = torch.tensor(ctx["lengths"]) - 1
            return x[idx, torch.arange(x.shape[1])]

    class Mask(torch.nn.Module):  # multiplies by ctx["mask"]: our Dropout's mask, and the padding mask
        def __init__(self, key):
            super().__init__()
            self.key = key

        def forward(self, x):
            return x * torch.tensor(ctx[self.key])

    return ctx, packed(torch.nn.LSTM), packed(torch.nn.GRU), Last, Mask


def _compare_with_torch(torch, model, ref, x, xt, w, tol):
    y = model.forward(x, training=True, lengths=LENGTHS, rng=np.random.default_rng(5))
    model.zero_grad()
    d_x = model.backward(w)
    yt = ref(xt)
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    named = dict(ref.named_parameters())
    assert set(named) == set(model.grads)
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, named[k].grad.numpy(), **tol, err_msg=k)
    return d_x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_token_classifier_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    ctx, PackedLSTM, _, Last, _ = _torch_modules(torch)
    tdt = getattr(torch, dtype)
    ref = torch.nn.Sequential(torch.nn.Embedding(V, E, padding_idx=0), PackedLSTM(E, H), Last(),
                              torch.nn.Linear(H, C)).to(tdt)
    model = _token_model(dtype)
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    ctx["lengths"] = LENGTHS
    x = _tokens(3)
    w = np.random.default_rng(4).standard_normal((B, C)).astype(dtype)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    _compare_with_torch(torch, model, ref, x, torch.tensor(x), w, tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tagger_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    ctx, _, PackedGRU, _, Mask = _torch_modules(torch)
    tdt = getattr(torch, dtype)
    p = 0.25
    ref = torch.nn.Sequential(PackedGRU(E, H, num_layers=2, batch_first=True, bidirectional=True), Mask("drop"),
                              torch.nn.Linear(2 * H, C), Mask("pad")).to(tdt)
    model = _tagger(dtype, p)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    model.load_state_dict(sd)  # the keys are torch's: '0.weight_ih_l1_reverse', '2.weight', ...
    ctx["lengths"] = LENGTHS
    # Our Dropout's mask: Bernoulli(1 - p) from the generator given to forward, scaled by 1 / (1 - p).
    ctx["drop"] = (np.random.default_rng(5).random((B, T, 2 * H)) >= p).astype(dtype) / dtype_type(dtype)(1 - p)
    ctx["pad"] = (np.arange(T)[None, :] < LENGTHS[:, None])[:, :, None].astype(dtype)
    x = np.random.default_rng(6).standard_normal((B, T, E)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    w = np.random.default_rng(7).standard_normal((B, T, C)).astype(dtype)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    d_x = _compare_with_torch(torch, model, ref, x, xt, w, tol)
    np.testing.assert_allclose(d_x, xt.grad.numpy(), **tol)


def dtype_type(dtype):
    return np.dtype(dtype).type


def test_state_dict_keys_are_torchs():
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Embedding(V, E), rnnfast.LSTM(E, H, num_layers=2, bidirectional=True),
                          nn.LastStep(), nn.Dropout(0.1), nn.Linear(2 * H, C), nn.ReLU())
    ref = torch.nn.Sequential(torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, num_layers=2, bidirectional=True),
                              torch.nn.Identity(), torch.nn.Dropout(0.1), torch.nn.Linear(2 * H, C), torch.nn.ReLU())
    assert list(model.state_dict()) == list(ref.state_dict())
    assert list(model.parameters()) == [k for k, _ in ref.named_parameters()]


# ---------------------------------------------------------------------------------------------------------
# Inference: predict, the native path, quantized layers
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,x,lengths", [
    (lambda: _token_model("float32"), _tokens(), LENGTHS),
    (lambda: _tagger("float32"), np.random.default_rng(0).standard_normal((B, T, E)).astype(np.float32), LENGTHS),
    (lambda: nn.Sequential(rnnfast.LSTM(E, H, seed=0), nn.Tanh(), nn.Linear(H, C, seed=1)),
     np.random.default_rng(0).standard_normal((T, 7, E)).astype(np.float32), None),
    (lambda: nn.Sequential(nn.Linear(E, H, seed=0), nn.GELU()),
     np.random.default_rng(0).standard_normal((7, E)), None),
], ids=["tokens", "tagger", "time-major", "no-recurrent"])
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_predict_equals_the_whole_batch_bit_for_bit(make, x, lengths, batch_size):
    model = make()
    expected = model(x, lengths=lengths)
    got = model.predict(x, batch_size=batch_size, lengths=lengths)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_recurrent_layers_run_their_native_fast_path_at_inference(monkeypatch):
    calls = []
    original = RNNBase._exact_inference

    def spy(self, x):
        result = original(self, x)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(RNNBase, "_exact_inference", spy)
    model = nn.Sequential(nn.Embedding(V, E, seed=0), rnnfast.LSTM(E, H, seed=1), rnnfast.GRU(H, H, seed=2),
                          nn.LastStep(), nn.Linear(H, C))
    model(_tokens())
    model.predict(_tokens(), batch_size=2)
    assert calls == [True] * 6


def test_quantized_layers_run_inference_only():
    float_model = nn.Sequential(rnnfast.LSTM(E, H, seed=0), nn.LastStep(), nn.Linear(H, C, seed=1))
    q = rnnfast.quantize(float_model[0], "int8")
    model = nn.Sequential(q, nn.LastStep(), float_model[2])
    x = np.random.default_rng(0).standard_normal((T, B, E)).astype(np.float32)
    np.testing.assert_array_equal(model(x), float_model[2](q(x)[0][-1]))
    assert "0.weight_ih_l0_scale" in model.state_dict()
    with pytest.raises(TypeError, match="'0' .*quantized to int8.*inference-only"):
        model.forward(x, training=True)
    with pytest.raises(TypeError, match="inference-only"):
        nn.Adam(model)
    with pytest.raises(TypeError, match="inference-only"):
        model.zero_grad()


# ---------------------------------------------------------------------------------------------------------
# Training with the optimisers
# ---------------------------------------------------------------------------------------------------------


def test_optimisers_and_clipping_take_the_model():
    model = _token_model("float32")
    x, y = _tokens(), np.array([0, 1, 2, 1])
    before = {k: v.copy() for k, v in model.parameters().items()}
    opt = nn.SGD(model, lr=0.1)
    logits = model.forward(x, training=True, lengths=LENGTHS)
    _, d = nn.softmax_cross_entropy(logits, y)
    opt.zero_grad()
    model.backward(d)
    norm = nn.clip_grad_norm(model, 1e-3)
    grads = {k: g.copy() for k, g in model.grads.items()}
    clipped = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    assert norm > 1e-3 and clipped == pytest.approx(1e-3, rel=1e-4)
    opt.step()
    for k, p in model.parameters().items():
        np.testing.assert_allclose(p, before[k] - 0.1 * grads[k], rtol=1e-6, atol=1e-7)
    # Adam over [model] trains: the loss on a fixed batch goes down.
    opt = nn.Adam([model], lr=0.05)
    losses = []
    for _ in range(30):
        logits = model.forward(x, training=True, lengths=LENGTHS)
        loss, d = nn.softmax_cross_entropy(logits, y)
        losses.append(loss)
        opt.zero_grad()
        model.backward(d)
        opt.step()
    assert losses[-1] < 0.1 * losses[0]


# ---------------------------------------------------------------------------------------------------------
# The container
# ---------------------------------------------------------------------------------------------------------


def test_indexing_names_and_repr():
    lstm, head = rnnfast.LSTM(E, H), nn.Linear(H, C)
    model = nn.Sequential(rnn=lstm, last=nn.LastStep(), head=head)
    assert model[0] is lstm and model["head"] is head and model[-1] is head and len(model) == 3
    assert list(model) == [lstm, model["last"], head]
    assert [n for n, _ in model.named_children()] == ["rnn", "last", "head"]
    assert list(model.parameters())[:2] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    assert list(model[1:]) == [model["last"], head] and list(model[1:].named_children())[0][0] == "last"
    assert repr(model) == ("Sequential(\n  (rnn): LSTM(3, 4)\n  (last): LastStep()\n  (head): Linear(4, 3)\n)")
    nested = nn.Sequential(model, nn.Softmax())
    assert "0.head.weight" in nested.parameters()
    assert "\n    (rnn): LSTM(3, 4)" in repr(nested)
    with pytest.raises(KeyError, match="'nope'"):
        model["nope"]
    with pytest.raises(IndexError):
        model[3]


def test_last_step_takes_the_layout_of_the_recurrent_layer_before_it():
    model = nn.Sequential(rnnfast.GRU(E, H, batch_first=True), nn.Dropout(), nn.LastStep(), nn.Linear(H, C))
    assert model[2].batch_first
    x = np.random.default_rng(0).standard_normal((B, T, E)).astype(np.float32)
    np.testing.assert_array_equal(model(x), model[3](model[0](x)[0][:, -1]))
    with pytest.raises(ValueError, match=r"'1' \(LastStep\(batch_first=False\)\) does not match module '0'"):
        nn.Sequential(rnnfast.GRU(E, H, batch_first=True), nn.LastStep(batch_first=False))


def test_load_state_dict_checks_everything_before_loading():
    model = _token_model()
    sd = model.state_dict()
    before = model.state_dict()
    bad = dict(sd)
    bad["3.weight"] = np.zeros((1, 1))
    bad["0.weight"] = np.ones_like(sd["0.weight"])
    with pytest.raises(ValueError, match=r"'3.weight' has shape \(1, 1\), expected \(3, 4\)"):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # the first module was not loaded either
    with pytest.raises(ValueError, match=r"missing keys \['3.bias'\], unexpected keys \['3.b'\]"):
        model.load_state_dict({**{k: v for k, v in sd.items() if k != "3.bias"}, "3.b": sd["3.bias"]})


def test_construction_errors_name_the_modules_and_shapes():
    with pytest.raises(ValueError, match=r"module '1' \(Linear\(5, 3\)\) takes inputs of width 5 .* module '0' "
                                         r"\(LSTM\(3, 4, bidirectional=True\)\) gives outputs of width 8"):
        nn.Sequential(rnnfast.LSTM(3, 4, bidirectional=True), nn.Linear(5, 3))
    with pytest.raises(ValueError, match=r"'emb' \(Embedding\(5, 6\)\) gives outputs of width 6"):
        nn.Sequential(emb=nn.Embedding(5, 6), rnn=rnnfast.GRU(4, 2))
    # Width checks see through shape-preserving modules.
    with pytest.raises(ValueError, match=r"'3' .* width 7 .* module '2' \(ReLU\(\)\) gives outputs of width 2"):
        nn.Sequential(rnnfast.GRU(4, 2), nn.LastStep(), nn.ReLU(), nn.Linear(7, 1))
    with pytest.raises(TypeError, match="argument at position 1 is not a module: got int"):
        nn.Sequential(nn.ReLU(), 3)
    with pytest.raises(TypeError, match="argument 'head' is not a module: got str"):
        nn.Sequential(head="linear")
    with pytest.raises(ValueError, match="names must be non-empty str without '.'"):
        nn.Sequential({"a.b": nn.ReLU()})
    with pytest.raises(ValueError, match="names must be"):
        nn.Sequential({"": nn.ReLU()})
    relu = nn.ReLU()
    with pytest.raises(ValueError, match="same ReLU object is given twice, as '0' and '1'"):
        nn.Sequential(relu, relu)
    with pytest.raises(TypeError, match="either positionally or by keyword"):
        nn.Sequential(nn.ReLU(), act=nn.Tanh())
    with pytest.raises(ValueError, match="at least one module"):
        nn.Sequential()
    with pytest.raises(ValueError, match="Embedding '1' .* must be the first module"):
        nn.Sequential(nn.Identity(), nn.Embedding(3, 3))
    with pytest.raises(ValueError, match="batch_first=True but module '1'"):
        nn.Sequential(rnnfast.GRU(3, 3, batch_first=True), rnnfast.LSTM(3, 3))


def test_call_errors():
    model = _token_model("float32")
    with pytest.raises(TypeError, match=r"module '0' \(Embedding.*integer indices"):
        model(np.zeros((T, B)))
    lstm_model = nn.Sequential(rnnfast.LSTM(E, H), nn.LastStep())
    with pytest.raises(ValueError, match=r"module '0' \(LSTM\(3, 4\)\): x must be 3-D .*got shape \(5, 2, 7\)"):
        lstm_model(np.zeros((5, 2, 7)))
    with pytest.raises(ValueError, match=r"module '0' .*got shape \(5,\)"):
        lstm_model(np.zeros(5))
    with pytest.raises(RuntimeError, match="Sequential.backward.. needs a preceding forward"):
        model.backward(np.zeros((B, C)))
    model(_tokens())
    with pytest.raises(RuntimeError):
        model.backward(np.zeros((B, C)))
    model.forward(_tokens(), training=True)
    with pytest.raises(ValueError, match=r"d_y has shape \(2, 3\), expected \(4, 3\)"):
        model.backward(np.zeros((2, C)))
    with pytest.raises(ValueError, match="no recurrent layer or LastStep"):
        nn.Sequential(nn.Linear(2, 2))(np.zeros((3, 2)), lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\), expected \(4,\)"):
        model.predict(_tokens(), batch_size=2, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(_tokens(), batch_size=0)


def test_widths_count_directions_and_projections():
    model = nn.Sequential(rnnfast.LSTM(E, 8, proj_size=2, bidirectional=True, seed=0), nn.LastStep(),
                          nn.Linear(4, C, seed=1))
    assert model.output_features == C and model.input_features == E
    with pytest.raises(ValueError, match="gives outputs of width 4"):
        nn.Sequential(rnnfast.LSTM(E, 8, proj_size=2, bidirectional=True), nn.Linear(16, C))


def test_nested_models_get_lengths_and_rng_and_unbatched_input_works():
    inner = nn.Sequential(rnnfast.GRU(E, H, seed=0), nn.Dropout(0.5))
    model = nn.Sequential(inner, nn.Linear(H, C, seed=1), nn.LastStep())
    flat = nn.Sequential(rnnfast.GRU(E, H), nn.Dropout(0.5), nn.Linear(H, C), nn.LastStep())
    flat.load_state_dict({k.replace("0.0.", "0.").replace("1.", "2."): v for k, v in model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((T, B, E)).astype(np.float32)
    a = model.forward(x, training=True, lengths=LENGTHS, rng=np.random.default_rng(1))
    b = flat.forward(x, training=True, lengths=LENGTHS, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.backward(np.ones_like(a)), flat.backward(np.ones_like(b)))
    # Unbatched (T, I) with lengths of shape (1,): the same as the sequence in a batch of one.
    np.testing.assert_array_equal(model(x[:, 1], lengths=[2]), model(x[:, 1:2], lengths=[2])[0])


def test_laststep_after_a_nested_model_takes_its_recurrent_layers_layout():
    """A LastStep placed after a nested model that ends in a batch_first recurrent layer picks each sequence's
    last valid step on the batch-first axis, as it does right after the layer."""
    rng = np.random.default_rng(0)
    gru = rnnfast.GRU(3, 4, batch_first=True, seed=0)
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)  # (B, T, I)
    lengths = np.array([7, 1, 4, 0, 6])
    nested = nn.Sequential(nn.Sequential(gru, nn.Tanh()), nn.LastStep())
    assert nested[1].batch_first is True
    out, _ = gru(x, lengths=lengths)
    expected = np.stack([np.tanh(out[b, max(n - 1, 0)]) if n else np.zeros(4, np.float32)
                         for b, n in enumerate(lengths)])
    np.testing.assert_array_equal(nested(x, lengths=lengths), expected)
    with pytest.raises(ValueError, match="batch_first"):
        nn.Sequential(nn.Sequential(gru), nn.LastStep(batch_first=False))
