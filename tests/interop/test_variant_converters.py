"""The converters of every cell variant (issue 15): GRU reset_after=False, LSTM proj_size, peepholes, clip,
input_forget, reverse-only direction and activations per gate role and direction.

- pure helpers (no framework): the peephole layout, ONNX's activation attributes read as ONNX Runtime reads
  them and written back, the constructor arguments of a variant;
- ONNX: rnnfast layers exported by to_onnx run in ONNX Runtime (Y, Y_h, Y_c), hand-built nodes in ONNX's
  own layouts read by from_onnx run as ONNX Runtime runs them, round trips, refusals;
- PyTorch: nn.LSTM(proj_size) both ways, outputs, states and the gradients of torch's autograd against
  layer.backward; to_torch refusals;
- Keras: reset_after=False, activations, go_backwards, Bidirectional with per-direction activations.

The variant layers run on rnnfast.reference's ops where the native variant op is not available.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import rnnfast
import rnnfast._rnn_base as rnn_base
from rnnfast import reference
from rnnfast._variants import Activation
from rnnfast.interop._conversion import gates_from_rnnfast, gates_to_rnnfast, permute_gates
from rnnfast.interop._onnx_variants import (activation_attributes, peepholes_to_onnx, peepholes_to_rnnfast,
                                            read_activations)
from rnnfast.interop._variant import LayerVariant

from helpers.interop_checks import assert_close

keras_warnings = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


def _layers_take_variants() -> bool:
    """Whether the layers take the variant options (the cv-layers work)."""
    wanted = {rnnfast.LSTM: ("proj_size", "peepholes", "clip", "input_forget", "activations", "direction"),
              rnnfast.GRU: ("reset_after", "activations", "direction"), rnnfast.RNN: ("direction", "clip")}
    return all(all(p in inspect.signature(cls.__init__).parameters for p in params) for cls, params in wanted.items())


needs_variants = pytest.mark.skipif(not _layers_take_variants(), reason="the layers do not take the variant options")


def _native_variants_work() -> bool:
    """Whether rnnfast.functional runs a variant (else the layers run on rnnfast.reference's ops here)."""
    from rnnfast import functional
    from rnnfast._variants import make_options

    if not hasattr(functional, "variant_forward"):
        return False
    try:
        x = np.zeros((1, 1, 1), np.float32)
        functional.variant_forward(make_options("gru", 1, reset_after=False), x, None, None,
                                   np.zeros((3, 1), np.float32), np.zeros((3, 1), np.float32))
        return True
    except Exception:   # not implemented yet
        return False


@pytest.fixture(autouse=True)
def _variant_ops(monkeypatch):
    if _layers_take_variants() and not _native_variants_work():
        monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)


def _randomize(model, seed, low=-0.8, high=0.8):
    """Weights large enough to leave the gates' linear range (as helpers.interop_checks.make_model)."""
    rng = np.random.default_rng(seed)
    model.load_state_dict({k: rng.uniform(low, high, v.shape) for k, v in model.state_dict().items()})
    return model


def _layer(family, I=3, H=4, L=1, *, seed=0, dtype="float32", batch_first=False, bidirectional=False, **options):
    cls = {"rnn": rnnfast.RNN, "lstm": rnnfast.LSTM, "gru": rnnfast.GRU}[family]
    m = cls(I, H, L, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype, seed=seed, **options)
    return _randomize(m, seed + 100)


def _state(family, n, B, H, R, dtype, rng):
    h = rng.standard_normal((n, B, R)).astype(dtype)
    return (h, rng.standard_normal((n, B, H)).astype(dtype)) if family == "lstm" else h


def _states(family, st):
    return list(st) if family == "lstm" else [st]


# ----------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------

def test_peephole_layout():
    H = 2
    onnx_p = np.concatenate([np.full(H, 1.0), np.full(H, 2.0), np.full(H, 3.0)])   # i, o, f
    w_ch = peepholes_to_rnnfast(onnx_p)
    assert np.array_equal(w_ch, np.concatenate([np.full(H, 1.0), np.full(H, 3.0), np.full(H, 2.0)]))   # i, f, o
    assert np.array_equal(peepholes_to_onnx(w_ch), onnx_p)


def test_gate_permutations_by_family():
    assert gates_to_rnnfast("gru", ("z", "r", "n")) == (1, 0, 2)
    assert gates_to_rnnfast("lstm", ("i", "o", "f", "g")) == (0, 2, 3, 1)
    a = np.arange(12.0)
    for fam, order in (("lstm", ("i", "o", "f", "g")), ("gru", ("z", "r", "n")), ("rnn", ("h",))):
        back = permute_gates(permute_gates(a[:3 * len(order)], gates_from_rnnfast(fam, order)),
                             gates_to_rnnfast(fam, order))
        assert np.array_equal(back, a[:3 * len(order)])


def test_read_activations_as_onnxruntime():
    """One value per activation that takes it, in order, alphas and betas each on their own; defaults where
    none is left (LeakyRelu 0.01, HardSigmoid 0.2/0.5: the same in ONNX Runtime and the operators)."""
    attrs = {"activations": [b"ScaledTanh", b"LeakyRelu", b"Tanh", b"hardsigmoid", b"Elu", b"Softsign"],
             "activation_alpha": [2.0, 0.3, 0.25, 0.5], "activation_beta": [0.5, 0.75]}
    fwd, rev = read_activations("node", "lstm", attrs, 2)
    assert fwd == (Activation("scaled_tanh", 2.0, 0.5), Activation("leaky_relu", 0.3), Activation("tanh"))
    assert rev == (Activation("hard_sigmoid", 0.25, 0.75), Activation("elu", 0.5), Activation("softsign"))
    (acts,) = read_activations("node", "gru", {"activations": ["HardSigmoid", "LeakyRelu"]}, 1)
    assert acts == (Activation("hard_sigmoid", 0.2, 0.5), Activation("leaky_relu", 0.01))
    # float32 attributes read as the decimals they were written as
    (acts,) = read_activations("node", "rnn", {"activations": ["LeakyRelu"], "activation_alpha": [np.float32(0.3)]},
                               1)
    assert acts == (Activation("leaky_relu", 0.3),)
    # defaults, and one direction's activations for both (without parameters)
    assert read_activations("node", "lstm", {}, 2) == ((Activation("sigmoid"), Activation("tanh"),
                                                        Activation("tanh")),) * 2
    assert read_activations("node", "gru", {"activations": ["Relu", "Tanh"]}, 2) == \
        ((Activation("relu"), Activation("tanh")),) * 2


@pytest.mark.parametrize("attrs,exc,pattern", [
    ({"activations": ["Sigmoid", "Affine", "Tanh"]}, NotImplementedError, "activation_alpha"),
    ({"activations": ["Sigmoid", "Affine", "Tanh"], "activation_alpha": [2.0]}, NotImplementedError,
     "activation_beta"),
    ({"activations": ["Sigmoid", "ThresholdedRelu", "Tanh"]}, NotImplementedError, "activation_alpha"),
    ({"activations": ["Sigmoid", "ScaledTanh", "Tanh"], "activation_alpha": [1.0]}, NotImplementedError,
     "activation_beta"),
    ({"activations": ["Sigmoid", "LeakyRelu", "Tanh"], "activation_alpha": [0.0, 0.3]}, NotImplementedError,
     "activation_alpha"),
    ({"activations": ["Sigmoid", "Tanh", "Tanh"], "activation_beta": [1.0]}, NotImplementedError,
     "activation_beta"),
    ({"activations": ["Sigmoid", "Gelu", "Tanh"]}, NotImplementedError, "activations.*Gelu"),
    ({"activations": ["Sigmoid", "Tanh"]}, ValueError, "activations"),
])
def test_read_activations_refusals(attrs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        read_activations("node 'n'", "lstm", attrs, 1)


def test_read_activations_one_direction_with_parameters_refused():
    with pytest.raises(NotImplementedError, match="both directions"):
        read_activations("n", "gru", {"activations": ["Sigmoid", "LeakyRelu"], "activation_alpha": [0.3]}, 2)


def test_activation_attributes_written_in_full_and_read_back():
    per_dir = ((Activation("hard_sigmoid", 0.3, 0.4), Activation("affine"), Activation("tanh")),
               (Activation("sigmoid"), Activation("thresholded_relu"), Activation("scaled_tanh", 1.5, 0.5)))
    attrs = activation_attributes(per_dir)
    assert attrs["activations"] == ["HardSigmoid", "Affine", "Tanh", "Sigmoid", "ThresholdedRelu", "ScaledTanh"]
    assert attrs["activation_alpha"] == [0.3, 1.0, 1.0, 1.5] and attrs["activation_beta"] == [0.4, 0.0, 0.5]
    assert read_activations("n", "lstm", attrs, 2) == per_dir
    for name in ("selu", "exponential", "silu", "relu6"):
        with pytest.raises(ValueError, match=f"no activation {name}"):
            activation_attributes(((Activation(name),),))


def test_variant_constructor_arguments():
    assert LayerVariant.default("lstm").constructor_kwargs() == {"bidirectional": False}
    assert LayerVariant.default("rnn", "bidirectional", "relu").constructor_kwargs() == \
        {"bidirectional": True, "nonlinearity": "relu"}
    v = LayerVariant("gru", ((Activation("sigmoid"), Activation("tanh")),), "reverse", clip=2.0, reset_after=False)
    assert v.constructor_kwargs() == {"clip": 2.0, "reset_after": False, "direction": "reverse",
                                      "bidirectional": False}
    assert v.directions == (1,) and not v.is_pytorch
    acts = ((Activation("sigmoid"), Activation("tanh"), Activation("tanh")),
            (Activation("hard_sigmoid"), Activation("tanh"), Activation("tanh")))
    v = LayerVariant("lstm", acts, "bidirectional", proj_size=2, peepholes=True)
    assert v.constructor_kwargs() == {"proj_size": 2, "peepholes": True, "bidirectional": True, "activations": acts}
    v = LayerVariant("rnn", ((Activation("tanh"),), (Activation("relu"),)), "bidirectional")
    assert v.constructor_kwargs() == {"bidirectional": True, "activations": v.activations}
    v = LayerVariant("rnn", ((Activation("leaky_relu", 0.1),),), "forward")
    assert v.constructor_kwargs()["nonlinearity"] == Activation("leaky_relu", 0.1)


# ----------------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------------

def _onnx():
    return pytest.importorskip("onnx")


def _ort_session(proto):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


HS = (Activation("hard_sigmoid", 0.3, 0.45), Activation("leaky_relu", 0.2), Activation("softsign"))
# (id, family, layer options, num_layers, lengths, batch_first)
ONNX_VARIANTS = [
    ("gru-reset_before-bi", "gru", dict(reset_after=False, bidirectional=True), 1, False, False),
    ("gru-reset_before-clip-reverse", "gru", dict(reset_after=False, clip=0.8, direction="reverse"), 2, True, False),
    ("gru-reverse-lengths", "gru", dict(direction="reverse"), 1, True, True),
    ("gru-activations", "gru", dict(activations=(Activation("hard_sigmoid", 0.25, 0.5),
                                                 Activation("thresholded_relu", 0.1))), 1, False, False),
    ("lstm-peepholes-bi", "lstm", dict(peepholes=True, bidirectional=True), 2, True, True),
    ("lstm-peepholes-clip-input_forget", "lstm", dict(peepholes=True, clip=0.7, input_forget=True), 1, False, False),
    ("lstm-activations-reverse", "lstm", dict(activations=HS, direction="reverse"), 1, False, False),
    ("lstm-activations-per-direction", "lstm",
     dict(activations=((Activation("sigmoid"), Activation("tanh"), Activation("tanh")),
                       (Activation("hard_sigmoid"), Activation("elu", 0.7), Activation("softplus"))),
          bidirectional=True), 1, False, False),
    ("rnn-scaled_tanh-clip-bi", "rnn", dict(nonlinearity=Activation("scaled_tanh", 1.5, 0.7), clip=1.0,
                                            bidirectional=True), 2, False, False),
    ("rnn-affine-reverse", "rnn", dict(nonlinearity=Activation("affine", 0.5, 0.1), direction="reverse"), 1, True,
     False),
    ("rnn-sigmoid", "rnn", dict(nonlinearity="sigmoid"), 1, False, False),
]


@needs_variants
@pytest.mark.parametrize("case", ONNX_VARIANTS, ids=lambda c: c[0])
def test_to_onnx_variant_runs_in_onnxruntime_and_reads_back(case):
    onnx = _onnx()
    _, family, options, L, with_lengths, bf = case
    I, H, T, B = 3, 4, 5, 3
    model = _layer(family, I, H, L, batch_first=bf, seed=len(case[0]), **options)
    D = model.num_directions
    proto = rnnfast.to_onnx(model, lengths=with_lengths, initial_state=True)
    nodes = [n for n in proto.graph.node if n.op_type in ("RNN", "LSTM", "GRU")]
    assert len(nodes) == L
    for node in nodes:
        direction = onnx.helper.get_attribute_value([a for a in node.attribute if a.name == "direction"][0])
        assert direction.decode() == model.direction
    rng = np.random.default_rng(20)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(np.float32)
    state = _state(family, L * D, B, H, H, np.float32, rng)
    feeds = {"x": x, "h0": _states(family, state)[0]}
    if family == "lstm":
        feeds["c0"] = state[1]
    lengths = np.array([5, 2, 4], dtype=np.int32) if with_lengths else None
    if with_lengths:
        feeds["lengths"] = lengths
    got = _ort_session(proto).run(None, feeds)
    out, st = model(x, state, lengths=lengths)
    assert_close("onnxruntime (to_onnx, variants)", "out", out, got[0], "float32")
    for ours, theirs in zip(_states(family, st), got[1:]):
        assert_close("onnxruntime (to_onnx, variants)", "state", ours, theirs, "float32")
    back = rnnfast.from_onnx(proto)
    assert repr(back) == repr(model)
    assert back.activations == model.activations
    sd, sd_back = model.state_dict(), back.state_dict()
    assert sd.keys() == sd_back.keys()
    for k in sd:
        assert np.array_equal(sd_back[k], sd[k]), k


def _onnx_node_model(op, D, H, I, rng, *, attrs, peepholes=False, direction=None):
    """One node in ONNX's own layouts and gate orders (W (D, G*H, I), R, B = [Wb, Rb], P (D, 3H) i, o, f),
    inputs X, initial_h(, initial_c), sequence_lens; outputs Y, Y_h(, Y_c)."""
    from onnx import TensorProto, helper, numpy_helper

    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[op]
    w = {"W": rng.uniform(-0.8, 0.8, (D, G * H, I)), "R": rng.uniform(-0.8, 0.8, (D, G * H, H)),
         "B": rng.uniform(-0.8, 0.8, (D, 2 * G * H))}
    if peepholes:
        w["P"] = rng.uniform(-0.8, 0.8, (D, 3 * H))
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    ins = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I]),
           helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
           helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [D, "B", H])]
    node_in = ["X", "W", "R", "B", "sequence_lens", "initial_h"]
    if op == "LSTM":
        ins.append(helper.make_tensor_value_info("initial_c", TensorProto.FLOAT, [D, "B", H]))
        node_in.append("initial_c")
        if peepholes:
            node_in.append("P")
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    a = dict(hidden_size=H, direction=direction or ("bidirectional" if D == 2 else "forward"), **attrs)
    node = helper.make_node(op, node_in, outs, name=f"my_{op.lower()}", **a)
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                 for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


# (id, op, attributes, peepholes, direction)
HAND_BUILT = [
    ("gru-linear_before_reset-0", "GRU", dict(linear_before_reset=0), False, "bidirectional"),
    ("gru-default-lbr-clip", "GRU", dict(clip=0.9), False, "forward"),
    ("gru-lbr1-reverse-activations", "GRU", dict(linear_before_reset=1, activations=["hardsigmoid", "LeakyRelu"],
                                                 activation_alpha=[0.25, 0.15], activation_beta=[0.55]),
     False, "reverse"),
    ("lstm-peepholes", "LSTM", {}, True, "bidirectional"),
    ("lstm-peepholes-input_forget-clip", "LSTM", dict(input_forget=1, clip=1.1), True, "forward"),
    ("lstm-activations", "LSTM", dict(activations=["Sigmoid", "Relu", "Tanh", "HardSigmoid", "Tanh", "Softsign"]),
     False, "bidirectional"),
    ("rnn-leakyrelu-reverse", "RNN", dict(activations=["LeakyRelu"], activation_alpha=[0.1]), False, "reverse"),
    ("rnn-scaledtanh-bi", "RNN", dict(activations=["ScaledTanh"] * 2, activation_alpha=[1.2, 1.2],
                                      activation_beta=[0.8, 0.8]), False, "bidirectional"),
    ("rnn-tanh-relu", "RNN", dict(activations=["Tanh", "Relu"]), False, "bidirectional"),
]


@needs_variants
@pytest.mark.parametrize("case", HAND_BUILT, ids=lambda c: c[0])
def test_from_onnx_hand_built_variant_matches_onnxruntime(case):
    """Weights in ONNX's gate orders and peephole order, run by ONNX Runtime: tests from_onnx independently
    of to_onnx (and of PyTorch)."""
    _onnx()
    _, op, attrs, peepholes, direction = case
    D = 2 if direction == "bidirectional" else 1
    I, H, T, B = 3, 4, 6, 3
    rng = np.random.default_rng(21)
    proto = _onnx_node_model(op, D, H, I, rng, attrs=attrs, peepholes=peepholes, direction=direction)
    model = rnnfast.from_onnx(proto)
    assert type(model).__name__ == op and model.num_directions == D
    assert model.direction == direction
    if op == "GRU":
        assert model.reset_after == bool(attrs.get("linear_before_reset", 0))
    if op == "LSTM":
        assert model.peepholes == peepholes and model.input_forget == bool(attrs.get("input_forget", 0))
    assert model.clip == attrs.get("clip")
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0, c0 = rng.standard_normal((D, B, H)).astype(np.float32), rng.standard_normal((D, B, H)).astype(np.float32)
    lengths = np.array([6, 2, 5], dtype=np.int32)
    feeds = {"X": x, "initial_h": h0, "sequence_lens": lengths}
    if op == "LSTM":
        feeds["initial_c"] = c0
    got = _ort_session(proto).run(None, feeds)
    out, st = model(x, (h0, c0) if op == "LSTM" else h0, lengths=lengths)
    y = got[0].transpose(0, 2, 1, 3).reshape(T, B, D * H)
    assert_close("onnxruntime (hand-built variants)", "out", out, y, "float32")
    for ours, theirs in zip(st if op == "LSTM" else [st], got[1:]):
        assert_close("onnxruntime (hand-built variants)", "state", ours, theirs, "float32")


@needs_variants
@pytest.mark.parametrize("family,options,pattern", [
    ("lstm", dict(proj_size=2), "proj_size=2"),
    ("lstm", dict(activations=(Activation("sigmoid"), Activation("selu"), Activation("tanh"))), "selu"),
    ("gru", dict(activations=(Activation("sigmoid"), Activation("silu"))), "silu"),
    ("rnn", dict(nonlinearity="relu6"), "relu6"),
    ("rnn", dict(nonlinearity="exponential"), "exponential"),
])
def test_to_onnx_variant_refusals(family, options, pattern):
    _onnx()
    model = _layer(family, 3, 4, **options)
    with pytest.raises(ValueError, match=pattern):
        rnnfast.to_onnx(model)


@needs_variants
def test_from_onnx_zero_peepholes_are_pytorchs_cell():
    _onnx()
    from onnx import numpy_helper

    proto = _onnx_node_model("LSTM", 1, 4, 3, np.random.default_rng(22), attrs={}, peepholes=True)
    for t in proto.graph.initializer:
        if t.name == "P":
            t.CopyFrom(numpy_helper.from_array(np.zeros((1, 12), np.float32), "P"))
    model = rnnfast.from_onnx(proto)
    assert not model.peepholes and "weight_ch_l0" not in model.state_dict()


# ----------------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


@needs_variants
@pytest.mark.parametrize("bidirectional", [False, True])
def test_from_torch_proj_size_outputs_states_and_gradients(bidirectional):
    """nn.LSTM(proj_size=P) converted: out, h_n, c_n equal torch's; layer.backward's gradients (inputs,
    initial states, every parameter) equal torch's autograd, in float64."""
    torch = _torch()
    I, H, P, L, T, B = 3, 5, 2, 2, 6, 3
    D = 2 if bidirectional else 1
    torch.manual_seed(23)
    module = torch.nn.LSTM(I, H, L, proj_size=P, bidirectional=bidirectional, batch_first=True,
                           dtype=torch.float64)
    model = rnnfast.from_torch(module)
    assert model.proj_size == P and model.batch_first and model.num_directions == D
    assert model.state_dict()["weight_hr_l1"].shape == (P, H) and model.state_dict()["weight_hh_l0"].shape == (4 * H, P)
    rng = np.random.default_rng(23)
    x = rng.standard_normal((B, T, I))
    h0, c0 = rng.standard_normal((L * D, B, P)), rng.standard_normal((L * D, B, H))
    g_out, g_h, g_c = (rng.standard_normal((B, T, D * P)), rng.standard_normal((L * D, B, P)),
                       rng.standard_normal((L * D, B, H)))

    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out_t, (h_t, c_t) = module(xt, (h0t, c0t))
    ((out_t * torch.from_numpy(g_out)).sum() + (h_t * torch.from_numpy(g_h)).sum()
     + (c_t * torch.from_numpy(g_c)).sum()).backward()

    out, (h_n, c_n) = model.forward(x, (h0, c0), training=True)
    for name, ours, theirs in (("out", out, out_t), ("h_n", h_n, h_t), ("c_n", c_n, c_t)):
        assert_close("torch (proj_size)", name, ours, theirs.detach().numpy(), "float64")
    model.zero_grad()
    d_x, (d_h0, d_c0) = model.backward(g_out, (g_h, g_c))
    for name, ours, theirs in (("d_x", d_x, xt), ("d_h0", d_h0, h0t), ("d_c0", d_c0, c0t)):
        assert_close("torch (proj_size) grad", name, ours, theirs.grad.numpy(), "float64")
    named = dict(module.named_parameters())
    assert set(model.grads) == set(named)
    for name, g in model.grads.items():
        assert_close("torch (proj_size) grad", name, g, named[name].grad.numpy(), "float64")


@needs_variants
def test_to_torch_proj_size_round_trip():
    torch = _torch()
    model = _layer("lstm", 3, 5, 2, proj_size=3, bidirectional=True, dtype="float64", seed=24)
    module = rnnfast.to_torch(model)
    assert module.proj_size == 3 and not module.training
    rng = np.random.default_rng(24)
    x = rng.standard_normal((4, 2, 3))
    state = (rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 5)))
    with torch.no_grad():
        out_t, (h_t, c_t) = module(torch.from_numpy(x), tuple(torch.from_numpy(s) for s in state))
    out, (h_n, c_n) = model(x, state)
    for name, ours, theirs in (("out", out, out_t), ("h_n", h_n, h_t), ("c_n", c_n, c_t)):
        assert_close("torch (to_torch proj_size)", name, ours, theirs.numpy(), "float64")
    back = rnnfast.from_torch(module)
    assert repr(back) == repr(model)
    for k, v in model.state_dict().items():
        assert np.array_equal(back.state_dict()[k], v), k


@needs_variants
@pytest.mark.parametrize("family,options,pattern", [
    ("lstm", dict(peepholes=True), "peepholes"),
    ("lstm", dict(clip=3.0), "clip"),
    ("gru", dict(clip=3.0), "clip"),
    ("lstm", dict(input_forget=True), "input_forget"),
    ("gru", dict(reset_after=False), "reset_after"),
    ("lstm", dict(activation="relu"), "activations"),
    ("gru", dict(recurrent_activation="hard_sigmoid"), "activations"),
    ("rnn", dict(nonlinearity="softsign"), "nonlinearity"),
    ("rnn", dict(activations=(("tanh",), ("relu",)), bidirectional=True), "nonlinearity differing"),
    ("gru", dict(direction="reverse"), "direction='reverse'"),
    ("rnn", dict(direction="reverse"), "direction='reverse'"),
])
def test_to_torch_refusals(family, options, pattern):
    _torch()
    with pytest.raises(ValueError, match=pattern):
        rnnfast.to_torch(_layer(family, 3, 4, **options))


# ----------------------------------------------------------------------------------------------------
# Keras
# ----------------------------------------------------------------------------------------------------

def _keras():
    keras = pytest.importorskip("keras")
    if not hasattr(keras, "version") or int(keras.version().split(".")[0]) < 3:
        pytest.skip("Keras 3 is needed")
    return keras


def _np(keras, t):
    return keras.ops.convert_to_numpy(t)


# (id, Keras layer class, its keyword arguments)
KERAS_VARIANTS = [
    ("gru-reset_after-false", "GRU", dict(reset_after=False)),
    ("gru-reset_after-false-nobias", "GRU", dict(reset_after=False, use_bias=False)),
    ("gru-hard_sigmoid-relu", "GRU", dict(recurrent_activation="hard_sigmoid", activation="relu")),
    ("lstm-hard_sigmoid-softsign", "LSTM", dict(recurrent_activation="hard_sigmoid", activation="softsign")),
    ("lstm-swish-selu", "LSTM", dict(recurrent_activation="sigmoid", activation="selu")),
    ("simplernn-sigmoid", "SimpleRNN", dict(activation="sigmoid")),
    ("simplernn-linear", "SimpleRNN", dict(activation="linear")),
    ("simplernn-relu6", "SimpleRNN", dict(activation="relu6")),
    ("simplernn-silu", "SimpleRNN", dict(activation="silu")),
    ("lstm-go_backwards", "LSTM", dict(go_backwards=True)),
    ("gru-go_backwards-reset_before", "GRU", dict(go_backwards=True, reset_after=False)),
]


@needs_variants
@keras_warnings
@pytest.mark.parametrize("case", KERAS_VARIANTS, ids=lambda c: c[0])
def test_from_keras_variant_matches_keras(case):
    keras = _keras()
    _, cls, kw = case
    I, H, T, B = 3, 4, 5, 2
    layer = getattr(keras.layers, cls)(H, return_sequences=True, return_state=True, **kw)
    rng = np.random.default_rng(25)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    layer(x)
    for v in layer.weights:
        v.assign(rng.uniform(-0.8, 0.8, tuple(v.shape)).astype(v.dtype))
    lstm = cls == "LSTM"
    init = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(2 if lstm else 1)]
    res = [_np(keras, r) for r in layer(x, initial_state=init)]
    model = rnnfast.from_keras(layer)
    if kw.get("go_backwards"):
        assert model.direction == "reverse"
    if "reset_after" in kw:
        assert model.reset_after == kw["reset_after"]
    out, st = model(x, (init[0][None], init[1][None]) if lstm else init[0][None])
    # go_backwards: Keras returns the outputs in the order it computes them, last time step first
    keras_out = res[0][:, ::-1] if kw.get("go_backwards") else res[0]
    assert_close("keras (variants)", "out", out, keras_out, "float32")
    for ours, theirs in zip(_states("lstm" if lstm else "x", st), res[1:]):
        assert_close("keras (variants)", "state", ours[0], theirs, "float32")


@needs_variants
@keras_warnings
@pytest.mark.parametrize("cls", ["GRU", "SimpleRNN"])
def test_from_keras_bidirectional_with_per_direction_activations(cls):
    keras = _keras()
    I, H, T, B = 3, 4, 5, 2
    if cls == "GRU":
        fwd = keras.layers.GRU(H, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid")
        bwd = keras.layers.GRU(H, return_sequences=True, reset_after=False, activation="softsign", go_backwards=True)
    else:
        fwd = keras.layers.SimpleRNN(H, return_sequences=True, activation="hard_sigmoid")
        bwd = keras.layers.SimpleRNN(H, return_sequences=True, activation="softsign", go_backwards=True)
    layer = keras.layers.Bidirectional(fwd, backward_layer=bwd)
    rng = np.random.default_rng(26)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    layer(x)
    for v in layer.weights:
        v.assign(rng.uniform(-0.8, 0.8, tuple(v.shape)).astype(v.dtype))
    model = rnnfast.from_keras(layer)
    assert model.bidirectional and getattr(model, "reset_after", False) is False
    assert model.activations[0][0].name == "hard_sigmoid" and model.activations[1][-1].name == "softsign"
    assert_close("keras (variants)", "out", model(x)[0], _np(keras, layer(x)), "float32")


@needs_variants
@keras_warnings
def test_from_keras_go_backwards_last_output():
    keras = _keras()
    layer = keras.layers.SimpleRNN(4, go_backwards=True, activation="elu")
    rng = np.random.default_rng(27)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    last = _np(keras, layer(x))
    out, h_n = rnnfast.from_keras(layer)(x)
    assert_close("keras (variants)", "out", out[:, 0], last, "float32")
    assert_close("keras (variants)", "state", h_n[0], last, "float32")


@keras_warnings
@pytest.mark.parametrize("make,pattern", [
    (lambda k: k.layers.LSTM(4, activation="gelu"), "option 'activation'"),
    (lambda k: k.layers.GRU(4, recurrent_activation="mish"), "option 'recurrent_activation'"),
    (lambda k: k.layers.SimpleRNN(4, activation="softmax"), "option 'activation'"),
    (lambda k: k.layers.Bidirectional(k.layers.GRU(4), backward_layer=k.layers.GRU(
        4, reset_after=False, go_backwards=True)), "reset_after"),
], ids=["lstm-gelu", "gru-mish", "simplernn-softmax", "bidirectional-reset_after"])
def test_from_keras_variant_refusals(make, pattern):
    keras = _keras()
    layer = make(keras)
    layer(np.zeros((2, 3, 5), dtype=np.float32))
    with pytest.raises(NotImplementedError, match=pattern):
        rnnfast.from_keras(layer)


@needs_variants
def test_from_onnx_clip_of_float_max_is_no_clip():
    """ONNX Runtime's default clip is FLT_MAX, which some exporters write: no bound, PyTorch's cell."""
    _onnx()
    proto = _onnx_node_model("GRU", 1, 4, 3, np.random.default_rng(28),
                             attrs=dict(linear_before_reset=1, clip=float(np.finfo(np.float32).max)))
    model = rnnfast.from_onnx(proto)
    assert model.clip is None and model.reset_after


@needs_variants
@pytest.mark.parametrize("attr,value", [("clip", 2.0), ("input_forget", 1), ("direction", "reverse"),
                                        ("activations", ["HardSigmoid", "Tanh", "Tanh"])])
def test_from_onnx_quantized_lstm_variant_refused(attr, value):
    """rnnfast's int8 LSTM is PyTorch's cell: a DynamicQuantizeLSTM with a variant attribute is refused by name."""
    onnx = _onnx()
    proto = rnnfast.to_onnx(rnnfast.quantize(_layer("lstm", 3, 4), "int8"))
    node = [n for n in proto.graph.node if n.op_type == "DynamicQuantizeLSTM"][0]
    kept = [a for a in node.attribute if a.name != attr]
    del node.attribute[:]
    node.attribute.extend(kept + [onnx.helper.make_attribute(attr, value)])
    with pytest.raises(NotImplementedError, match=attr):
        rnnfast.from_onnx(proto)
