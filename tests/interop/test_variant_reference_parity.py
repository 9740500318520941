"""The NumPy reference of the cell variants (rnnfast.reference.variant_forward / variant_backward) against the
framework that defines each variant, at the functional level: the framework's model is built from the same
arrays, with the layout conversions written here as small local helpers.

- PyTorch: nn.LSTM(proj_size=P), forward and every gradient by autograd, with packed sequences too, and the
  reverse half of a bidirectional LSTM with a projection;
- ONNX Runtime: GRU (linear_before_reset 0 and 1), LSTM (peepholes, clip, input_forget), RNN/LSTM/GRU with
  non-default activations and their alpha/beta, direction='reverse', sequence_lens (ORT runs float32 only);
- Keras 3 on the torch backend: GRU(reset_after=False/True), LSTM/GRU/SimpleRNN with activation and
  recurrent_activation, go_backwards=True, and gradients through the Keras layer by torch autograd.

Each framework is skipped where it is not installed. Forward tolerances are those of helpers.interop_checks
(relative to max(max|theirs|, 1)); gradients in float32 get 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import reference as R
from rnnfast._rnn_base import _reverse_time
from rnnfast._variants import Activation, CellOptions, activation_from_keras, make_options

from helpers.interop_checks import assert_close

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
GRAD_TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


def make_arrays(opts: CellOptions, T, B, I, H, *, dtype=np.float64, seed=0, bias=True, states=True, scale=0.6):
    """Random arguments of variant_forward (names as its parameters)."""
    rng = np.random.default_rng(seed)
    G, P = GATES[opts.family], opts.proj_size
    Rr = P or H

    def r(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)

    return {
        "x": r(T, B, I), "h0": r(B, Rr, s=0.5) if states else None,
        "c0": r(B, H, s=0.5) if states and opts.family == "lstm" else None,
        "w_ih": r(G * H, I, s=scale), "w_hh": r(G * H, Rr, s=scale),
        "b_ih": r(G * H, s=scale) if bias else None, "b_hh": r(G * H, s=scale) if bias else None,
        "w_hr": r(P, H, s=scale) if P else None, "w_ch": r(3 * H, s=scale) if opts.peepholes else None,
    }


def ref_forward(opts, p, *, lengths=None, reverse=False, dtype=None, training=False):
    """variant_forward on ``p`` (cast to ``dtype`` if given); ``reverse``: each sequence reversed within its
    length on the way in and the outputs brought back, as a reverse direction does."""
    q = {k: (None if v is None else (v if dtype is None else v.astype(dtype))) for k, v in p.items()}
    lengths = None if lengths is None else np.asarray(lengths)
    x = _reverse_time(q["x"], lengths) if reverse else q["x"]
    out, h_n, c_n, ws = R.variant_forward(opts, x, q["h0"], q["c0"], q["w_ih"], q["w_hh"], q["b_ih"], q["b_hh"],
                                          q["w_hr"], q["w_ch"], training=training, lengths=lengths)
    if reverse:
        out = _reverse_time(out, lengths)
    return out, h_n, c_n, ws


def ref_backward(opts, p, fw, d_out, d_h_n, d_c_n, *, lengths=None):
    out, _, _, ws = fw
    return R.variant_backward(opts, d_out, d_h_n, d_c_n, p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["w_hr"],
                              p["w_ch"], out, ws, lengths=lengths)


def grad_close(framework, name, ours, theirs, dtype):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{framework} {name}: shape {ours.shape} != {theirs.shape}"
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1.0)
    err = float(np.abs(ours - theirs).max(initial=0.0)) / scale
    tol = GRAD_TOL[np.dtype(dtype)]
    assert err <= tol, f"{framework} {name} ({np.dtype(dtype)}): max difference {err:.3g} x scale {scale:.3g} > {tol:g}"


def permute_blocks(a: np.ndarray, order, axis=0) -> np.ndarray:
    """The equal blocks of ``a`` along ``axis`` in the given order: block k of the result is block order[k]."""
    blocks = np.split(a, len(order), axis=axis)
    return np.concatenate([blocks[k] for k in order], axis=axis)


# ----------------------------------------------------------------------------------------------------
# PyTorch: LSTM with a projection
# ----------------------------------------------------------------------------------------------------


def torch_lstm(torch, p, I, H, P, bias, dtype, bidirectional=False, reverse_params=None):
    m = torch.nn.LSTM(I, H, proj_size=P, bias=bias, bidirectional=bidirectional,
                      dtype=torch.float64 if dtype == np.float64 else torch.float32)
    names = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0",
             "w_hr": "weight_hr_l0"}
    with torch.no_grad():
        for k, name in names.items():
            if p[k] is not None:
                getattr(m, name).copy_(torch.from_numpy(p[k]))
            if reverse_params is not None and reverse_params[k] is not None:
                getattr(m, name + "_reverse").copy_(torch.from_numpy(reverse_params[k]))
    return m


# torch says so for every LSTM with a projection on CPU
oneDNN_warning = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")


@oneDNN_warning
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
def test_torch_lstm_projection(dtype, bias, lengths):
    torch = pytest.importorskip("torch")
    T, B, I, H, P = 5, 3, 4, 5, 3
    opts = make_options("lstm", H, proj_size=P)
    p = make_arrays(opts, T, B, I, H, dtype=dtype, seed=21, bias=bias, scale=0.7)
    rng = np.random.default_rng(22)
    d_out = rng.standard_normal((T, B, P)).astype(dtype)
    # past a sequence's end d_out stays random: torch's padding there is a constant, and the reference ignores it
    d_h_n, d_c_n = rng.standard_normal((B, P)).astype(dtype), rng.standard_normal((B, H)).astype(dtype)

    m = torch_lstm(torch, p, I, H, P, bias, dtype)
    x = torch.from_numpy(p["x"]).requires_grad_()
    h0 = torch.from_numpy(p["h0"][None].copy()).requires_grad_()
    c0 = torch.from_numpy(p["c0"][None].copy()).requires_grad_()
    if lengths is None:
        t_out, (t_h, t_c) = m(x, (h0, c0))
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        t_packed, (t_h, t_c) = m(packed, (h0, c0))
        t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_packed, total_length=T)
    total = ((t_out * torch.from_numpy(d_out)).sum() + (t_h[0] * torch.from_numpy(d_h_n)).sum()
             + (t_c[0] * torch.from_numpy(d_c_n)).sum())
    total.backward()

    fw = ref_forward(opts, p, lengths=lengths, training=True)
    fw_name = "torch LSTM(proj_size)"
    assert_close(fw_name, "out", fw[0], t_out.detach().numpy(), dtype)
    assert_close(fw_name, "h_n", fw[1], t_h.detach().numpy()[0], dtype)
    assert_close(fw_name, "c_n", fw[2], t_c.detach().numpy()[0], dtype)
    g = ref_backward(opts, p, fw, d_out, d_h_n, d_c_n, lengths=lengths)
    pairs = [("d_x", x.grad), ("d_h0", h0.grad[0]), ("d_c0", c0.grad[0]), ("d_w_ih", m.weight_ih_l0.grad),
             ("d_w_hh", m.weight_hh_l0.grad), ("d_w_hr", m.weight_hr_l0.grad)]
    if bias:
        pairs += [("d_b_ih", m.bias_ih_l0.grad), ("d_b_hh", m.bias_hh_l0.grad)]
    for name, theirs in pairs:
        ours = getattr(g, name)
        assert ours.dtype == dtype, name
        grad_close(fw_name, name, ours, theirs.numpy(), dtype)


@oneDNN_warning
def test_torch_bidirectional_projection_reverse_half():
    """The reverse half of a bidirectional nn.LSTM(proj_size) over packed sequences is the reference run on
    each sequence reversed within its length (what ONNX's direction='reverse' is too)."""
    torch = pytest.importorskip("torch")
    T, B, I, H, P = 6, 3, 3, 4, 2
    lengths = [6, 3, 1]
    opts = make_options("lstm", H, proj_size=P)
    fwd = make_arrays(opts, T, B, I, H, seed=23)
    rev = make_arrays(opts, T, B, I, H, seed=24)
    rev["x"] = fwd["x"]
    m = torch_lstm(torch, fwd, I, H, P, True, np.float64, bidirectional=True, reverse_params=rev)
    h0 = torch.from_numpy(np.stack([fwd["h0"], rev["h0"]]))
    c0 = torch.from_numpy(np.stack([fwd["c0"], rev["c0"]]))
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(fwd["x"]), torch.tensor(lengths),
                                                     enforce_sorted=False)
    with torch.no_grad():
        t_packed, (t_h, t_c) = m(packed, (h0, c0))
    t_out = torch.nn.utils.rnn.pad_packed_sequence(t_packed, total_length=T)[0].numpy()
    out, h_n, c_n, _ = ref_forward(opts, rev, lengths=lengths, reverse=True)
    name = "torch LSTM(proj_size) reverse"
    assert_close(name, "out", out, t_out[..., P:], np.float64)
    assert_close(name, "h_n", h_n, t_h[1].numpy(), np.float64)
    assert_close(name, "c_n", c_n, t_c[1].numpy(), np.float64)


# ----------------------------------------------------------------------------------------------------
# ONNX Runtime
# ----------------------------------------------------------------------------------------------------

# rnnfast's (PyTorch's) gate blocks in ONNX's order: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h;
# peepholes i,f,o -> i,o,f.
ONNX_ORDER = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}
ONNX_PEEPHOLE_ORDER = [0, 2, 1]


def onnx_activation_attributes(acts) -> dict:
    """activations, activation_alpha, activation_beta as ONNX Runtime reads them: one name per role, and the
    alphas (betas) of the activations that take one, in role order (an activation without a parameter
    consumes no entry)."""
    alphas = [a.alpha for a in acts if a.alpha is not None]
    betas = [a.beta for a in acts if a.beta is not None]
    attrs = {"activations": [a.onnx_name for a in acts]}
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


def ort_run(op: str, feeds: dict, attrs: dict, n_outputs: int) -> list:
    """One ONNX ``op`` node (opset 14) whose given inputs are graph inputs, run by ONNX Runtime on ``feeds``."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    slots = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
    inputs = [name if name in feeds else "" for name in slots]
    while inputs[-1] == "":
        inputs.pop()
    graph_inputs = [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT,
                                                  feeds[n].shape) for n in slots if n in feeds]
    outputs = ["Y", "Y_h", "Y_c"][:n_outputs]
    node = helper.make_node(op, inputs, outputs, **attrs)
    graph = helper.make_graph([node], "variant", graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def onnx_feeds(opts: CellOptions, p: dict, lengths=None) -> dict:
    """ONNX's inputs from rnnfast's arrays (float32): W [1, G*H, I], R [1, G*H, H], B [1, 2*G*H] in ONNX's gate
    order, initial states [1, B, H], P [1, 3H] in the order i, o, f."""
    order = ONNX_ORDER[opts.family]
    f32 = np.float32
    feeds = {"X": p["x"].astype(f32), "W": permute_blocks(p["w_ih"], order)[None].astype(f32),
             "R": permute_blocks(p["w_hh"], order)[None].astype(f32)}
    if p["b_ih"] is not None:
        bias = np.concatenate([permute_blocks(p["b_ih"], order), permute_blocks(p["b_hh"], order)])
        feeds["B"] = bias[None].astype(f32)
    if lengths is not None:
        feeds["sequence_lens"] = np.asarray(lengths, dtype=np.int32)
    if p["h0"] is not None:
        feeds["initial_h"] = p["h0"][None].astype(f32)
    if p["c0"] is not None:
        feeds["initial_c"] = p["c0"][None].astype(f32)
    if p["w_ch"] is not None:
        feeds["P"] = permute_blocks(p["w_ch"], ONNX_PEEPHOLE_ORDER)[None].astype(f32)
    return feeds


def onnx_attributes(opts: CellOptions, H: int, reverse: bool) -> dict:
    attrs = {"hidden_size": H, "direction": "reverse" if reverse else "forward"}
    attrs.update(onnx_activation_attributes(opts.activations))
    if opts.clip is not None:
        attrs["clip"] = opts.clip
    if opts.family == "lstm":
        attrs["input_forget"] = int(opts.input_forget)
    if opts.family == "gru":
        attrs["linear_before_reset"] = int(opts.reset_after)
    return attrs


def check_against_ort(opts: CellOptions, *, T=5, B=3, I=4, H=4, seed=0, lengths=None, reverse=False, bias=True,
                      states=True, scale=0.6):
    """ORT's Y, Y_h (and Y_c) against the reference run in float64 on the same float32 arrays."""
    p = make_arrays(opts, T, B, I, H, dtype=np.float32, seed=seed, bias=bias, states=states, scale=scale)
    op = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[opts.family]
    n_out = 3 if op == "LSTM" else 2
    res = ort_run(op, onnx_feeds(opts, p, lengths), onnx_attributes(opts, H, reverse), n_out)
    out, h_n, c_n, _ = ref_forward(opts, p, lengths=lengths, reverse=reverse, dtype=np.float64)
    name = f"onnxruntime {op}"
    assert res[0].shape == (T, 1, B, H)
    assert_close(name, "Y", out, res[0][:, 0], np.float32)
    assert_close(name, "Y_h", h_n, res[1][0], np.float32)
    if op == "LSTM":
        assert_close(name, "Y_c", c_n, res[2][0], np.float32)
    return p, out


ORT_VARIANTS = {
    "gru-linear_before_reset=0": make_options("gru", 4, reset_after=False),
    "gru-linear_before_reset=1": make_options("gru", 4),
    "gru-linear_before_reset=0-clip": make_options("gru", 4, reset_after=False, clip=0.5),
    "gru-linear_before_reset=1-clip": make_options("gru", 4, clip=0.5),
    "lstm-peepholes": make_options("lstm", 4, peepholes=True),
    "lstm-clip": make_options("lstm", 4, clip=0.4),
    "lstm-input_forget": make_options("lstm", 4, input_forget=True),
    "lstm-peepholes-clip-input_forget": make_options("lstm", 4, peepholes=True, clip=0.7, input_forget=True),
    "rnn-clip": make_options("rnn", 4, clip=0.5, activations=[Activation("affine", 1.5, 0.2)]),
    "rnn-relu": make_options("rnn", 4, activations=["relu"]),
    "rnn-leaky": make_options("rnn", 4, activations=[Activation("leaky_relu", 0.15)]),
    "rnn-thresholded": make_options("rnn", 4, activations=[Activation("thresholded_relu", 0.3)]),
    "rnn-scaled_tanh": make_options("rnn", 4, activations=[Activation("scaled_tanh", 1.7, 0.6)]),
    "rnn-elu": make_options("rnn", 4, activations=[Activation("elu", 0.7)]),
    "rnn-softsign": make_options("rnn", 4, activations=["softsign"]),
    "rnn-softplus": make_options("rnn", 4, activations=["softplus"]),
    "rnn-hard_sigmoid": make_options("rnn", 4, activations=[Activation("hard_sigmoid", 0.3, 0.4)]),
    "lstm-activations": make_options("lstm", 4, activations=[Activation("hard_sigmoid", 0.25, 0.55),
                                                              Activation("leaky_relu", 0.2), "softsign"]),
    "lstm-activations-alpha-beta": make_options("lstm", 4, activations=[
        Activation("hard_sigmoid", 0.3, 0.45), Activation("affine", 0.8, -0.1), Activation("scaled_tanh", 1.2, 0.9)]),
    "lstm-activations-clip-peepholes": make_options("lstm", 4, clip=0.8, peepholes=True, activations=[
        "sigmoid", Activation("elu", 0.6), Activation("thresholded_relu", 0.1)]),
    "gru-activations": make_options("gru", 4, activations=[Activation("hard_sigmoid", 0.35, 0.5), "relu"]),
    "gru-activations-alpha-beta": make_options("gru", 4, reset_after=False, activations=[
        Activation("affine", 0.3, 0.5), Activation("leaky_relu", 0.3)]),
    "gru-softplus-scaled_tanh": make_options("gru", 4, activations=["softsign", Activation("scaled_tanh", 0.9, 1.4)]),
}


@pytest.mark.parametrize("name", list(ORT_VARIANTS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
def test_onnxruntime_variants(name, reverse, lengths):
    check_against_ort(ORT_VARIANTS[name], seed=31, lengths=lengths, reverse=reverse)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_onnxruntime_without_bias_and_states(family):
    opts = {"rnn": ORT_VARIANTS["rnn-clip"], "lstm": ORT_VARIANTS["lstm-peepholes-clip-input_forget"],
            "gru": ORT_VARIANTS["gru-linear_before_reset=0-clip"]}[family]
    check_against_ort(opts, seed=32, bias=False, states=False, lengths=[1, 5, 3], reverse=True)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_onnxruntime_zero_length(family):
    """A zero sequence_lens gives zero Y and Y_h (and Y_c) in ORT; the reference keeps the initial states there,
    which are zeros without initial_h/initial_c. (With initial states ORT still gives zeros: the two differ,
    PyTorch's packed sequences having no zero length to settle it.)"""
    opts = {"rnn": make_options("rnn", 4), "lstm": ORT_VARIANTS["lstm-peepholes"],
            "gru": ORT_VARIANTS["gru-linear_before_reset=0"]}[family]
    p, out = check_against_ort(opts, seed=33, states=False, lengths=[0, 5, 2], reverse=True)
    assert not out[:, 0].any()


def test_clip_is_active_in_the_onnxruntime_cases():
    """The clipped cases really clip (some gate pre-activations beyond the bound, the LSTM's cell state too, which
    ORT leaves unclipped on its way into h)."""
    for name, opts in ORT_VARIANTS.items():
        if opts.clip is None:
            continue
        p = make_arrays(opts, 5, 3, 4, 4, dtype=np.float64, seed=31)
        ws = ref_forward(opts, p, training=True)[3]
        gates = ws[..., : 4 * 4] if opts.family == "lstm" else ws[..., : 3 * 4] if opts.family == "gru" else ws
        assert (np.abs(gates) > opts.clip).any(), name
    opts = ORT_VARIANTS["lstm-clip"]
    ws = ref_forward(opts, make_arrays(opts, 5, 3, 4, 4, dtype=np.float64, seed=31), training=True)[3]
    assert (np.abs(ws[..., 16:20]) > opts.clip).any()


def test_onnxruntime_parameter_defaults():
    """What ORT gives an activation whose alpha/beta the model leaves out (rnn_helpers.cc): LeakyRelu 0.01,
    HardSigmoid 0.2/0.5 and Elu 1.0 as the ONNX operators, but 0 for Affine, ScaledTanh and ThresholdedRelu
    (the ONNX operators' defaults, which rnnfast.Activation takes, are 1.0/0.0, 1.0/1.0 and 1.0)."""
    H = 4
    base = make_options("rnn", H)
    p = make_arrays(base, 4, 3, 4, H, dtype=np.float32, seed=34)
    feeds = onnx_feeds(base, p)
    cases = {"LeakyRelu": Activation("leaky_relu"), "HardSigmoid": Activation("hard_sigmoid"),
             "Elu": Activation("elu"), "Affine": Activation("affine", 0.0, 0.0),
             "ScaledTanh": Activation("scaled_tanh", 0.0, 0.0), "ThresholdedRelu": Activation("thresholded_relu", 0.0)}
    for onnx_name, act in cases.items():
        Y, Y_h = ort_run("RNN", feeds, {"hidden_size": H, "activations": [onnx_name]}, 2)
        out, h_n, _, _ = ref_forward(make_options("rnn", H, activations=[act]), p, dtype=np.float64)
        assert_close("onnxruntime RNN defaults", onnx_name, out, Y[:, 0], np.float32)


# ----------------------------------------------------------------------------------------------------
# Keras 3 (torch backend)
# ----------------------------------------------------------------------------------------------------

# rnnfast's gate blocks in Keras's order: LSTM i,f,g,o is Keras's i,f,c,o; GRU r,z,n -> z,r,h.
KERAS_ORDER = {"rnn": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}
KERAS_FROM = {"rnn": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}  # the inverse permutation (the GRU's is itself)


# Keras 3 computes a product of float64 tensors in float32: its type promotion (keras.backend.result_type) maps
# every 64-bit result to 32 bits, as JAX does by default, and keras.ops.matmul casts to that type. So a "float64"
# Keras layer is as accurate as a float32 one, and is compared with float32's tolerances.
KERAS_PRECISION = np.float32
# Keras's torch backend converts tensors with np.array(tensor), which NumPy 2 warns about.
keras_warnings = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


def keras_or_skip():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"the Keras tests run on the torch backend, this Keras uses {keras.backend.backend()}")
    return keras


def keras_layer(keras, family, H, *, activation, recurrent_activation, reset_after=True, go_backwards=False,
                dtype="float64"):
    kw = dict(return_sequences=True, return_state=True, go_backwards=go_backwards, dtype=dtype)
    if family == "rnn":
        return keras.layers.SimpleRNN(H, activation=activation, **kw)
    if family == "lstm":
        return keras.layers.LSTM(H, activation=activation, recurrent_activation=recurrent_activation,
                                 unit_forget_bias=False, **kw)
    return keras.layers.GRU(H, activation=activation, recurrent_activation=recurrent_activation,
                            reset_after=reset_after, **kw)


def keras_options(family, H, activation, recurrent_activation, reset_after=True) -> CellOptions:
    act, rec = activation_from_keras(activation), activation_from_keras(recurrent_activation)
    acts = {"rnn": [act], "lstm": [rec, act, act], "gru": [rec, act]}[family]
    return make_options(family, H, activations=acts, reset_after=reset_after)


def keras_weights(opts: CellOptions, p: dict) -> list:
    """Keras's kernel (I, G*H), recurrent_kernel (H, G*H) and bias from rnnfast's arrays: Keras has one bias per
    gate but for the GRU with reset_after=True, whose bias is (2, 3H) [input; recurrent]. Where Keras has one,
    ``p['b_hh']`` must be zero (make_keras_arrays makes it so)."""
    order = KERAS_ORDER[opts.family]
    kernel = permute_blocks(p["w_ih"], order).T
    recurrent = permute_blocks(p["w_hh"], order).T
    if opts.family == "gru" and opts.reset_after:
        bias = np.stack([permute_blocks(p["b_ih"], order), permute_blocks(p["b_hh"], order)])
    else:
        bias = permute_blocks(p["b_ih"], order)
    return [kernel, recurrent, bias]


def make_keras_arrays(opts, T, B, I, H, seed, scale=0.6):
    p = make_arrays(opts, T, B, I, H, dtype=np.float64, seed=seed, scale=scale)
    if not (opts.family == "gru" and opts.reset_after):
        p["b_hh"] = np.zeros_like(p["b_hh"])  # Keras adds one bias per gate
    return p


KERAS_CASES = [
    ("gru", "tanh", "sigmoid", False),
    ("gru", "tanh", "sigmoid", True),
    ("gru", "relu", "hard_sigmoid", False),
    ("gru", "linear", "hard_sigmoid", True),
    ("gru", "softsign", "sigmoid", False),
    ("lstm", "tanh", "sigmoid", True),
    ("lstm", "relu", "hard_sigmoid", True),
    ("lstm", "linear", "sigmoid", True),
    ("lstm", "elu", "hard_sigmoid", True),
    ("rnn", "tanh", None, True),
    ("rnn", "relu", None, True),
    ("rnn", "linear", None, True),
    ("rnn", "hard_sigmoid", None, True),
    ("rnn", "selu", None, True),
]


def keras_case_id(case):
    family, act, rec, reset_after = case
    return f"{family}-{act}-{rec}" + ("" if family != "gru" else f"-reset_after={reset_after}")


@keras_warnings
@pytest.mark.parametrize("case", KERAS_CASES, ids=keras_case_id)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_keras_forward(case, go_backwards, dtype):
    keras = keras_or_skip()
    family, activation, recurrent_activation, reset_after = case
    T, B, I, H = 5, 3, 4, 4
    opts = keras_options(family, H, activation, recurrent_activation or "sigmoid", reset_after)
    p = make_keras_arrays(opts, T, B, I, H, seed=41)
    p = {k: (None if v is None else v.astype(dtype)) for k, v in p.items()}
    layer = keras_layer(keras, family, H, activation=activation, recurrent_activation=recurrent_activation or "sigmoid",
                        reset_after=reset_after, go_backwards=go_backwards, dtype=np.dtype(dtype).name)
    layer.build((B, T, I))
    layer.set_weights(keras_weights(opts, p))
    initial = [p["h0"]] + ([p["c0"]] if family == "lstm" else [])
    res = [keras.ops.convert_to_numpy(r) for r in layer(np.ascontiguousarray(p["x"].transpose(1, 0, 2)),
                                                        initial_state=initial)]
    # go_backwards: Keras runs over the reversed sequence and returns its outputs in that (reversed) order
    q = dict(p, x=p["x"][::-1]) if go_backwards else p
    out, h_n, c_n, _ = ref_forward(opts, q)
    name = f"keras {family.upper()}"
    assert_close(name, "sequence", out, res[0].transpose(1, 0, 2), dtype, KERAS_PRECISION)
    assert_close(name, "h", h_n, res[1], dtype, KERAS_PRECISION)
    if family == "lstm":
        assert_close(name, "c", c_n, res[2], dtype, KERAS_PRECISION)


@keras_warnings
@pytest.mark.parametrize("case", KERAS_CASES, ids=keras_case_id)
def test_keras_gradients_by_torch_autograd(case):
    """Every gradient of a random loss through the Keras layer (torch autograd, a float64 layer, whose products
    Keras computes in float32) against variant_backward: d_x, d_h0 (d_c0), the kernel, the recurrent kernel
    and the bias."""
    keras = keras_or_skip()
    torch = pytest.importorskip("torch")
    family, activation, recurrent_activation, reset_after = case
    T, B, I, H = 4, 2, 3, 3
    opts = keras_options(family, H, activation, recurrent_activation or "sigmoid", reset_after)
    p = make_keras_arrays(opts, T, B, I, H, seed=42)
    layer = keras_layer(keras, family, H, activation=activation, recurrent_activation=recurrent_activation or "sigmoid",
                        reset_after=reset_after)
    layer.build((B, T, I))
    layer.set_weights(keras_weights(opts, p))
    x = torch.from_numpy(np.ascontiguousarray(p["x"].transpose(1, 0, 2))).requires_grad_()
    h0 = torch.from_numpy(p["h0"].copy()).requires_grad_()
    initial = [h0]
    if family == "lstm":
        c0 = torch.from_numpy(p["c0"].copy()).requires_grad_()
        initial.append(c0)
    res = layer(x, initial_state=initial)
    rng = np.random.default_rng(43)
    d_out, d_h_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    d_c_n = rng.standard_normal((B, H)) if family == "lstm" else None
    total = ((res[0] * torch.from_numpy(d_out.transpose(1, 0, 2).copy())).sum()
             + (res[1] * torch.from_numpy(d_h_n)).sum())
    if family == "lstm":
        total = total + (res[2] * torch.from_numpy(d_c_n)).sum()
    total.backward()

    fw = ref_forward(opts, p, training=True)
    g = ref_backward(opts, p, fw, d_out, d_h_n, d_c_n)
    kernel, recurrent, bias = (w.value.grad.numpy() for w in layer.trainable_weights)
    order = KERAS_FROM[family]
    name = f"keras {family.upper()} grad"
    grad_close(name, "d_x", g.d_x, x.grad.numpy().transpose(1, 0, 2), KERAS_PRECISION)
    grad_close(name, "d_h0", g.d_h0, h0.grad.numpy(), KERAS_PRECISION)
    if family == "lstm":
        grad_close(name, "d_c0", g.d_c0, c0.grad.numpy(), KERAS_PRECISION)
    grad_close(name, "d_w_ih", g.d_w_ih, permute_blocks(kernel.T, order), KERAS_PRECISION)
    grad_close(name, "d_w_hh", g.d_w_hh, permute_blocks(recurrent.T, order), KERAS_PRECISION)
    if family == "gru" and reset_after:
        grad_close(name, "d_b_ih", g.d_b_ih, permute_blocks(bias[0], order), KERAS_PRECISION)
        grad_close(name, "d_b_hh", g.d_b_hh, permute_blocks(bias[1], order), KERAS_PRECISION)
    else:
        grad_close(name, "d_b_ih", g.d_b_ih, permute_blocks(bias, order), KERAS_PRECISION)
