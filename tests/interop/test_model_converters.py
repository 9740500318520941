"""Whole models across frameworks: torch.nn.Sequential (and Linear, Embedding, Dropout, the activations) <->
rnnfast.nn.Sequential, keras.Sequential / Functional chains -> rnnfast.nn.Sequential, and rnnfast.nn.Sequential ->
ONNX. Each conversion is checked against the framework's own numbers (torch forward and autograd, Keras predict,
ONNX Runtime), round trips exactly, and every refusal is matched by the name of what does not convert. Skipped
where the framework is not installed (KERAS_BACKEND is torch, tests/interop/conftest.py)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import rnnfast
from rnnfast import nn

from helpers.interop_checks import assert_close, torch_or_skip

keras_warnings = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


def _randomize_torch(torch, module, seed):
    """Weights uniform in (-0.8, 0.8), large enough to leave the gates' linear range; padding rows stay zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 1.6 - 0.8)
        for m in module.modules():
            if isinstance(m, torch.nn.Embedding) and m.padding_idx is not None:
                m.weight[m.padding_idx] = 0


def _torch_chain(torch, seq, x):
    """What a torch.nn.Sequential computes with each recurrent module's output sequence passed on (the state
    dropped), written out child by child: the reference rnnfast's Sequential is checked against."""
    h = x
    for child in seq.children():
        h = child(h)
        if isinstance(child, torch.nn.RNNBase) and isinstance(h, tuple):
            h = h[0]
    return h


def _keys_and_values_equal(ours: dict, torch_sd) -> None:
    assert list(ours) == list(torch_sd), (list(ours), list(torch_sd))
    for k, v in torch_sd.items():
        assert np.array_equal(ours[k], v.detach().numpy()), k


# ----------------------------------------------------------------------------------------------------
# PyTorch: single modules
# ----------------------------------------------------------------------------------------------------

def _torch_modules(torch):
    T = torch.nn
    return [
        ("linear", lambda: T.Linear(4, 3), nn.Linear),
        ("linear-nobias-f64", lambda: T.Linear(4, 3, bias=False, dtype=torch.float64), nn.Linear),
        ("relu", T.ReLU, nn.ReLU), ("tanh", T.Tanh, nn.Tanh), ("sigmoid", T.Sigmoid, nn.Sigmoid),
        ("gelu", T.GELU, nn.GELU), ("elu", lambda: T.ELU(alpha=0.7), nn.ELU),
        ("leaky", lambda: T.LeakyReLU(0.2), nn.LeakyReLU), ("selu", T.SELU, nn.SELU),
        ("softplus", lambda: T.Softplus(beta=1.5, threshold=0.5), nn.Softplus), ("silu", T.SiLU, nn.SiLU),
        ("identity", T.Identity, nn.Identity), ("softmax0", lambda: T.Softmax(dim=0), nn.Softmax),
        ("softmax", lambda: T.Softmax(dim=-1), nn.Softmax), ("dropout", lambda: T.Dropout(0.3), nn.Dropout),
    ]


@pytest.mark.parametrize("index", range(15))
def test_from_torch_module_computes_the_same(index):
    torch = torch_or_skip()
    name, make, cls = _torch_modules(torch)[index]
    module = make().eval()
    _randomize_torch(torch, module, index)
    ours = rnnfast.from_torch(module)
    assert type(ours) is cls
    dtype = np.float64 if "f64" in name else np.float32
    x = np.random.default_rng(index).standard_normal((5, 2, 4)).astype(dtype) * 3
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    assert_close("torch (modules)", name, ours(x), theirs, dtype)
    _keys_and_values_equal(ours.state_dict(), module.state_dict())
    back = rnnfast.to_torch(ours)
    assert type(back) is type(module) and not back.training
    with torch.no_grad():
        assert np.array_equal(back(torch.from_numpy(x)).numpy(), theirs)


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_from_torch_embedding(padding_idx):
    torch = torch_or_skip()
    torch.manual_seed(1)
    module = torch.nn.Embedding(9, 4, padding_idx=padding_idx)
    ours = rnnfast.from_torch(module)
    assert ours.padding_idx == module.padding_idx
    idx = np.random.default_rng(2).integers(0, 9, (6, 3))
    with torch.no_grad():
        assert np.array_equal(ours(idx), module(torch.from_numpy(idx)).numpy())
    back = rnnfast.to_torch(ours)
    assert back.padding_idx == module.padding_idx
    _keys_and_values_equal(ours.state_dict(), back.state_dict())


# ----------------------------------------------------------------------------------------------------
# PyTorch: Sequential
# ----------------------------------------------------------------------------------------------------

def _token_model(torch, dtype=None, dropout=0.2):
    T = torch.nn
    kw = {} if dtype is None else {"dtype": dtype}
    return T.Sequential(T.Embedding(11, 4, padding_idx=0, **kw), T.LSTM(4, 5, bidirectional=True, **kw),
                        T.Dropout(dropout), T.Linear(10, 6, **kw), T.GELU(), T.GRU(6, 3, num_layers=2, **kw),
                        T.Linear(3, 2, **kw), T.Softmax(dim=-1))


def _float_model(torch, dtype=None, dropout=None):
    T = torch.nn
    kw = {} if dtype is None else {"dtype": dtype}
    return T.Sequential(OrderedDict([
        ("proj", T.Linear(3, 4, **kw)), ("act", T.Tanh()),
        ("rnn", T.RNN(4, 5, batch_first=True, nonlinearity="relu", **kw)), ("silu", T.SiLU()),
        ("lstm", T.LSTM(5, 4, batch_first=True, proj_size=2, **kw)), ("soft", T.Softplus()),
        ("head", T.Linear(2, 3, **kw)), ("elu", T.ELU()), ("leaky", T.LeakyReLU()), ("selu", T.SELU()),
        ("sig", T.Sigmoid()), ("relu", T.ReLU()), ("id", T.Identity())]))


@pytest.mark.parametrize("form", ["sequential", "list", "ordereddict"])
@pytest.mark.parametrize("which", ["tokens", "floats"])
def test_from_torch_sequential_forward(which, form):
    torch = torch_or_skip()
    seq = (_token_model if which == "tokens" else _float_model)(torch).eval()
    _randomize_torch(torch, seq, 3)
    rng = np.random.default_rng(4)
    x = rng.integers(0, 11, (7, 3)) if which == "tokens" else rng.standard_normal((3, 7, 3)).astype(np.float32)
    source = {"sequential": seq, "list": list(seq.children()), "ordereddict": OrderedDict(seq.named_children())}[form]
    model = rnnfast.from_torch(source)
    assert isinstance(model, nn.Sequential)
    if form == "list":   # positional: named '0', '1', ... as torch.nn.Sequential(*modules) names them
        seq = torch.nn.Sequential(*seq.children())
    assert [name for name, _ in model.named_children()] == [name for name, _ in seq.named_children()]
    _keys_and_values_equal(model.state_dict(), seq.state_dict())
    with torch.no_grad():
        theirs = _torch_chain(torch, seq, torch.from_numpy(x)).numpy()
    assert_close("torch (Sequential)", which, model(x), theirs, "float32")
    assert_close("torch (Sequential)", which, model.predict(x, batch_size=2), theirs, "float32")


@pytest.mark.parametrize("which", ["tokens", "floats"])
def test_torch_round_trip(which):
    """rnnfast -> torch -> rnnfast: the torch Sequential runs as it is (its recurrent modules return the output
    sequence) with rnnfast's numbers and keys, and converts back to the same model, exactly."""
    torch = torch_or_skip()
    seq = (_token_model if which == "tokens" else _float_model)(torch)
    _randomize_torch(torch, seq, 5)
    model = rnnfast.from_torch(seq)
    back = rnnfast.to_torch(model)
    assert isinstance(back, torch.nn.Sequential) and not back.training
    assert list(back.state_dict()) == list(model.state_dict())
    rng = np.random.default_rng(6)
    x = rng.integers(0, 11, (5, 2)) if which == "tokens" else rng.standard_normal((2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        assert_close("torch (round trip)", which, model(x), back(torch.from_numpy(x)).numpy(), "float32")
    again = rnnfast.from_torch(back)
    assert repr(again) == repr(model)
    sd = model.state_dict()
    for k, v in again.state_dict().items():
        assert v.dtype == sd[k].dtype and np.array_equal(v, sd[k]), k


@pytest.mark.parametrize("which", ["tokens", "floats"])
def test_from_torch_sequential_gradients_equal_autograd(which):
    torch = torch_or_skip()
    # Dropout with p=0: the same computation on both sides while training
    seq = (_token_model if which == "tokens" else _float_model)(torch, torch.float64, dropout=0.0)
    _randomize_torch(torch, seq, 7)
    model = rnnfast.from_torch(seq)
    rng = np.random.default_rng(8)
    x = rng.integers(0, 11, (6, 3)) if which == "tokens" else rng.standard_normal((3, 6, 3))
    xt = torch.from_numpy(x)
    if which == "floats":
        xt.requires_grad_()
    out = _torch_chain(torch, seq, xt)
    weights = rng.standard_normal(tuple(out.shape))
    (out * torch.from_numpy(weights)).sum().backward()

    model.zero_grad()
    ours = model.forward(x, training=True)
    assert_close("torch (Sequential)", "out", ours, out.detach().numpy(), "float64")
    d_x = model.backward(weights)
    if which == "tokens":
        assert d_x is None
    else:
        assert_close("torch autograd (Sequential)", "d_x", d_x, xt.grad.numpy(), "float64")
    grads = model.grads
    for name, p in seq.named_parameters():
        assert_close("torch autograd (Sequential)", name, grads[name], p.grad.numpy(), "float64")


def test_from_torch_nested_sequential():
    torch = torch_or_skip()
    T = torch.nn
    seq = T.Sequential(T.Linear(3, 4), T.Sequential(T.ReLU(), T.Linear(4, 2)), T.Tanh())
    model = rnnfast.from_torch(seq)
    assert isinstance(model[1], nn.Sequential)
    _keys_and_values_equal(model.state_dict(), seq.state_dict())
    x = np.random.default_rng(9).standard_normal((5, 3)).astype(np.float32)
    with torch.no_grad():
        assert_close("torch (Sequential)", "nested", model(x), seq(torch.from_numpy(x)).numpy(), "float32")
    assert isinstance(rnnfast.to_torch(model)[1], T.Sequential)


def test_torch_refusals():
    torch = torch_or_skip()
    T = torch.nn

    class Custom(T.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    cases = [
        (T.Sequential(T.Linear(3, 4), T.Conv1d(4, 4, 3)), TypeError, r"module\['1'\].*Conv1d.*does not convert"),
        (T.GELU(approximate="tanh"), ValueError, "approximate='tanh'.*option 'approximate'"),
        (T.Softmax(), ValueError, "dim=None"),
        (T.Embedding(5, 3, max_norm=1.0), ValueError, "max_norm"),
        (T.Embedding(5, 3, scale_grad_by_freq=True), ValueError, "scale_grad_by_freq"),
        (Custom(3, 4), TypeError, "Custom, a subclass of torch.nn.Linear that overrides forward"),
        (T.Sequential(T.Linear(3, 4), T.Sequential(T.Hardswish())), TypeError, r"module\['1'\].*\['0'\].*Hardswish"),
        (T.Linear(3, 4, dtype=torch.float16), TypeError, "float16"),
        ([], ValueError, "no modules"),
        ([T.Linear(3, 4), "relu"], TypeError, r"\['1'\] is a str"),
    ]
    for module, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            rnnfast.from_torch(module)
    # a Sequential whose modules do not fit is rnnfast's construction error, naming both
    with pytest.raises(ValueError, match="width"):
        rnnfast.from_torch(T.Sequential(T.Linear(3, 4), T.LSTM(5, 2)))


def test_to_torch_refusals():
    torch_or_skip()
    with pytest.raises(ValueError, match=r"model\['1'\] \(LastStep\) is a LastStep, which has no torch.nn equivalent"):
        rnnfast.to_torch(nn.Sequential(rnnfast.GRU(3, 4), nn.LastStep(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match=r"model\['0'\].*reset_after=False"):
        rnnfast.to_torch(nn.Sequential(rnnfast.GRU(3, 4, reset_after=False), nn.Linear(4, 2)))
    with pytest.raises(TypeError, match="str, which to_torch does not convert"):
        rnnfast.to_torch("model")


# ----------------------------------------------------------------------------------------------------
# Keras
# ----------------------------------------------------------------------------------------------------

def _keras():
    keras = pytest.importorskip("keras")
    if not hasattr(keras, "version") or int(keras.version().split(".")[0]) < 3:
        pytest.skip("Keras 3 is needed")
    return keras


def _randomize_keras(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.uniform(-0.8, 0.8, tuple(v.shape)).astype(v.dtype))


def _keras_predict(keras, model, x):
    return np.asarray(keras.ops.convert_to_numpy(model.predict(x, verbose=0)))


def _keras_token_model(keras, dtype="float32"):
    L = keras.layers
    return keras.Sequential([
        keras.Input((None,), dtype="int32"), L.Embedding(20, 4, dtype=dtype),
        L.LSTM(5, return_sequences=True, dtype=dtype), L.Dropout(0.2, dtype=dtype),
        L.Bidirectional(L.GRU(3, return_sequences=True, dtype=dtype), dtype=dtype),
        L.SimpleRNN(4, dtype=dtype),          # return_sequences=False: the layer, then LastStep
        L.Dense(6, activation="gelu", dtype=dtype), L.Dense(3, activation="softmax", dtype=dtype)])


def _keras_float_model(keras):
    L = keras.layers
    inp = keras.Input((None, 3))
    h = L.GRU(4, return_sequences=True, reset_after=False)(inp)
    h = L.Dense(5, activation="swish")(h)
    for activation in ("relu", "tanh", "sigmoid", "elu", "selu", "softplus", "leaky_relu", "linear", "silu"):
        h = L.Dense(5, activation=activation)(h)
    h = L.Activation("tanh")(h)
    h = L.LeakyReLU(0.3)(h)
    h = L.ELU(0.7)(h)
    h = L.ReLU()(h)
    h = L.LSTM(3, use_bias=False)(h)
    h = L.Dense(4, use_bias=False)(h)
    return keras.Model(inp, L.Softmax()(h))


@keras_warnings
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_keras_sequential_predicts_the_same(dtype):
    keras = _keras()
    km = _keras_token_model(keras, dtype)
    _randomize_keras(km, 10)
    model = rnnfast.from_keras(km)
    assert isinstance(model, nn.Sequential)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Embedding", "LSTM", "Dropout", "GRU", "RNN", "LastStep", "Linear", "GELU", "Linear", "Softmax"]
    assert all(m.batch_first for m in model if isinstance(m, (rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU)))
    x = np.random.default_rng(11).integers(0, 20, (5, 7))
    theirs = _keras_predict(keras, km, x)
    # Keras 3's float64 layers multiply in float32 (test_keras_interop.py): compared at float32 tolerance.
    assert_close("keras (Sequential)", "predict", model.predict(x, batch_size=2), theirs, dtype, tol_dtype="float32")


@keras_warnings
def test_from_keras_functional_chain_predicts_the_same():
    keras = _keras()
    km = _keras_float_model(keras)
    _randomize_keras(km, 12)
    model = rnnfast.from_keras(km)
    x = np.random.default_rng(13).standard_normal((4, 6, 3)).astype(np.float32)
    assert_close("keras (Functional)", "predict", model.predict(x), _keras_predict(keras, km, x), "float32")


@keras_warnings
def test_from_keras_nested_models():
    keras = _keras()
    L = keras.layers
    inner = keras.Sequential([L.Dense(4, activation="relu"), L.Dense(2)])
    inp = keras.Input((None, 3))
    km = keras.Model(inp, inner(L.LSTM(3, return_sequences=True)(inp)))
    _randomize_keras(km, 14)
    model = rnnfast.from_keras(km)
    x = np.random.default_rng(15).standard_normal((2, 5, 3)).astype(np.float32)
    assert_close("keras (nested)", "predict", model(x), _keras_predict(keras, km, x), "float32")


@keras_warnings
def test_from_keras_refusals():
    keras = _keras()
    L = keras.layers

    def seq(*layers, shape=(None, 3), dtype="float32"):
        return keras.Sequential([keras.Input(shape, dtype=dtype), *layers])

    inp = keras.Input((None, 3))
    branch = L.Dense(3)(inp)
    cases = [
        (seq(L.Embedding(10, 3, mask_zero=True), L.LSTM(2), shape=(None,), dtype="int32"), NotImplementedError,
         r"layer 'embedding.*' \(Embedding\) has mask_zero=True"),
        (seq(L.Bidirectional(L.LSTM(2))), NotImplementedError,
         r"\(Bidirectional\) has return_sequences=False"),
        (seq(L.GRU(2, go_backwards=True, return_sequences=True)), NotImplementedError,
         r"\(GRU\) has go_backwards=True"),
        (seq(L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="sum")), NotImplementedError,
         r"\(Bidirectional\): .*merge_mode='sum'"),
        (seq(L.Dense(2, activation="hard_sigmoid")), NotImplementedError,
         r"layer 'dense.*' \(Dense\) has activation 'hard_sigmoid'"),
        (seq(L.Conv1D(2, 3)), TypeError, r"layer 'conv1d.*' \(Conv1D\) has no rnnfast module"),
        (seq(L.ReLU(max_value=6.0)), NotImplementedError, r"\(ReLU\) has max_value=6.0"),
        (seq(L.Dropout(0.2, noise_shape=(None, 1, 3))), NotImplementedError, "noise_shape"),
        (keras.Model(inp, L.Add()([branch, inp])), NotImplementedError, r"\(Add\) takes 2 inputs"),
        (keras.Model(inp, [branch, L.Dense(2)(inp)]), NotImplementedError, "1 inputs and 2 outputs"),
        (seq(L.Dense(2, dtype="float64"), L.Activation("tanh")), TypeError,
         r"layer 'activation.*' \(Activation\) computes in float32 between layers that compute in float64"),
    ]
    for km, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            rnnfast.from_keras(km)


# ----------------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------------

def _ort_session(proto):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _onnx_token_model():
    return nn.Sequential(
        nn.Embedding(20, 4, padding_idx=0, seed=0), rnnfast.LSTM(4, 5, bidirectional=True, seed=1), nn.Dropout(0.3),
        nn.Linear(10, 6, seed=2), nn.GELU(), nn.Softplus(beta=2.0, threshold=1.0), rnnfast.GRU(6, 3, 2, seed=3),
        nn.Sigmoid(), nn.LastStep(), nn.Linear(3, 4, seed=4), nn.Softmax())


def _onnx_float_model():
    return nn.Sequential(
        proj=nn.Linear(3, 4, seed=0), silu=nn.SiLU(),
        rnn=rnnfast.RNN(4, 5, batch_first=True, nonlinearity="relu", bidirectional=True, seed=1),
        selu=nn.SELU(), elu=nn.ELU(0.5), leaky=nn.LeakyReLU(0.1),
        inner=nn.Sequential(nn.Linear(10, 4, bias=False, seed=2), nn.Tanh(), nn.Softplus()),
        gru=rnnfast.GRU(4, 3, batch_first=True, reset_after=False, seed=3),
        relu=nn.ReLU(), ident=nn.Identity(), last=nn.LastStep(), head=nn.Linear(3, 2, seed=4))


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("which", ["tokens", "floats"])
def test_to_onnx_sequential_runs_in_onnxruntime(which, with_lengths):
    onnx = pytest.importorskip("onnx")
    model = _onnx_token_model() if which == "tokens" else _onnx_float_model()
    rng = np.random.default_rng(16)
    B, T = 4, 6
    x = rng.integers(0, 20, (T, B)) if which == "tokens" else rng.standard_normal((B, T, 3)).astype(np.float32)
    lengths = np.array([6, 2, 0, 5], dtype=np.int32) if with_lengths else None
    proto = rnnfast.to_onnx(model, lengths=with_lengths)
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert "Dropout" not in ops and ("Gather" in ops) and ("Gemm" in ops)
    sess = _ort_session(proto)
    assert [i.name for i in sess.get_inputs()] == (["x", "lengths"] if with_lengths else ["x"])
    feeds = {"x": x, "lengths": lengths} if with_lengths else {"x": x}
    got = sess.run(None, feeds)
    assert len(got) == 1
    assert_close("onnxruntime (Sequential)", which, model(x, lengths=lengths), got[0], "float32")


@pytest.mark.parametrize("with_lengths", [False, True])
def test_to_onnx_sequence_output_with_padding(with_lengths):
    """A many-to-many model: the padded steps are zero in ONNX Runtime's output, as in the model's (where the
    last Linear's bias and the Sigmoid would otherwise write into them)."""
    pytest.importorskip("onnx")
    model = nn.Sequential(rnnfast.LSTM(3, 4, seed=5), nn.Linear(4, 2, seed=6), nn.Sigmoid())
    rng = np.random.default_rng(17)
    x = rng.standard_normal((5, 3, 3)).astype(np.float32)
    lengths = np.array([5, 1, 3], dtype=np.int32) if with_lengths else None
    sess = _ort_session(rnnfast.to_onnx(model, lengths=with_lengths))
    got = sess.run(None, {"x": x, "lengths": lengths} if with_lengths else {"x": x})[0]
    ours = model(x, lengths=lengths)
    assert_close("onnxruntime (Sequential)", "sequence", ours, got, "float32")
    if with_lengths:
        assert not got[3:, 1].any() and got[1:, 1].shape == (4, 2)


@keras_warnings
def test_keras_to_rnnfast_to_onnx():
    """keras -> rnnfast -> ONNX Runtime gives Keras's predictions."""
    keras = _keras()
    pytest.importorskip("onnx")
    km = _keras_token_model(keras)
    _randomize_keras(km, 18)
    x = np.random.default_rng(19).integers(0, 20, (3, 6))
    got = _ort_session(rnnfast.to_onnx(rnnfast.from_keras(km))).run(None, {"x": x})[0]
    assert_close("onnxruntime (from Keras)", "predict", got, _keras_predict(keras, km, x), "float32")


def test_to_onnx_sequential_refusals():
    pytest.importorskip("onnx")
    model = nn.Sequential(rnnfast.GRU(3, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="Sequential takes no initial_state"):
        rnnfast.to_onnx(model, initial_state=True)
    with pytest.raises(ValueError, match="no recurrent layer or LastStep"):
        rnnfast.to_onnx(nn.Sequential(nn.Linear(3, 2)), lengths=True)
    with pytest.raises(ValueError, match=r"model\['1'\] \(LSTM\).*proj_size=2"):
        rnnfast.to_onnx(nn.Sequential(nn.Linear(3, 3), rnnfast.LSTM(3, 4, proj_size=2)))
    with pytest.raises(ValueError, match=r"model\['0'\]\['0'\] \(RNN\).*selu"):
        rnnfast.to_onnx(nn.Sequential(nn.Sequential(rnnfast.RNN(3, 4, nonlinearity="selu"))))

    class Twice(nn.Identity):
        pass

    with pytest.raises(TypeError, match=r"model\['1'\] is a Twice, which to_onnx does not write"):
        rnnfast.to_onnx(nn.Sequential(nn.Linear(3, 3), Twice()))
