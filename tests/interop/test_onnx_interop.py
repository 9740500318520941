"""ONNX interop: rnnfast models exported by rnnfast.to_onnx run in ONNX Runtime (and the ONNX reference
evaluator) with the same numbers; ONNX models, hand-built or exported by torch.onnx.export, run in rnnfast
with the same numbers; every refusal names its reason. Skipped where onnx or onnxruntime is not installed."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import rnnfast

from helpers.cells import CELLS
from helpers.interop_checks import (assert_close, make_model, random_state, states_of, torch_module, torch_or_skip,
                                    torch_run)


def _onnx():
    return pytest.importorskip("onnx")


def _ort_session(model_proto):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


ONNX_CONFIGS = [(1, 1, False, True), (2, 2, False, True), (3, 1, True, False), (2, 2, True, True)]


@pytest.mark.parametrize("cfg", ONNX_CONFIGS, ids=lambda c: "L{}-D{}-bf{}-bias{}".format(c[0], c[1], int(c[2]),
                                                                                          int(c[3])))
@pytest.mark.parametrize("cell", CELLS)
def test_to_onnx_runs_in_onnxruntime(cell, cfg, tmp_path):
    onnx = _onnx()
    L, D, bf, bias = cfg
    I, H, T, B = 4, 6, 7, 3
    model = make_model(cell, I, H, L, D, bf, bias)
    path = tmp_path / "m.onnx"
    proto = rnnfast.to_onnx(model, path, initial_state=True)
    loaded = onnx.load(str(path))
    assert loaded.opset_import[0].version >= 14
    recurrent = [n for n in loaded.graph.node if n.op_type in ("RNN", "LSTM", "GRU")]
    assert len(recurrent) == L
    sess = _ort_session(proto)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(np.float32)
    state = random_state(cell, L, D, B, H, np.float32, rng)
    feeds = {"x": x, "h0": states_of(cell, state)[0]}
    if cell == "lstm":
        feeds["c0"] = state[1]
    got = sess.run(None, feeds)
    out, st = model(x, state)
    assert_close("onnxruntime (to_onnx)", "out", out, got[0], "float32")
    for ours, theirs in zip(states_of(cell, st), got[1:]):
        assert_close("onnxruntime (to_onnx)", "state", ours, theirs, "float32")
    # ... and reads back as the same model, exactly.
    back = rnnfast.from_onnx(path)
    assert repr(back) == repr(model)
    for k, v in model.state_dict().items():
        assert np.array_equal(back.state_dict()[k], v), k


@pytest.mark.parametrize("cfg", [(1, 1, False), (2, 2, True)], ids=["L1-D1", "L2-D2-bf"])
@pytest.mark.parametrize("cell", CELLS)
def test_to_onnx_default_runs_with_x_alone(cell, cfg):
    """The default graph takes only ``x`` (the states start at zeros, as ``model(x)``): ``sess.run(None, {"x": x})``
    runs it, and its outputs are the model's."""
    _onnx()
    L, D, bf = cfg
    I, H, T, B = 3, 4, 5, 2
    model = make_model(cell, I, H, L, D, bf, True, seed=8)
    sess = _ort_session(rnnfast.to_onnx(model))
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = np.random.default_rng(9).standard_normal((B, T, I) if bf else (T, B, I)).astype(np.float32)
    got = sess.run(None, {"x": x})
    out, st = model(x)
    assert_close("onnxruntime (to_onnx)", "out", out, got[0], "float32")
    for ours, theirs in zip(states_of(cell, st), got[1:]):
        assert_close("onnxruntime (to_onnx)", "state", ours, theirs, "float32")


def test_to_onnx_int8_default_runs_with_x_alone():
    _onnx()
    q = rnnfast.quantize(make_model("lstm", 4, 6, 1, 2, seed=3), "int8")
    sess = _ort_session(rnnfast.to_onnx(q))
    assert [i.name for i in sess.get_inputs()] == ["x"]
    x = np.random.default_rng(10).standard_normal((5, 3, 4)).astype(np.float32)
    out = sess.run(None, {"x": x})[0]
    # ONNX Runtime quantizes the activations its own way: within the int8 error of the model's output.
    np.testing.assert_allclose(out, q(x)[0], atol=0.05)


@pytest.mark.parametrize("cell", CELLS)
def test_to_onnx_lengths_and_no_state(cell):
    _onnx()
    I, H, T, B = 3, 4, 6, 4
    model = make_model(cell, I, H, 2, 2, False, True)
    sess = _ort_session(rnnfast.to_onnx(model, lengths=True, initial_state=False))
    assert [i.name for i in sess.get_inputs()] == ["x", "lengths"]
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([6, 3, 1, 4], dtype=np.int32)
    got = sess.run(None, {"x": x, "lengths": lengths})
    out, st = model(x, lengths=lengths)
    assert_close("onnxruntime (to_onnx)", "out", out, got[0], "float32")
    for ours, theirs in zip(states_of(cell, st), got[1:]):
        assert_close("onnxruntime (to_onnx)", "state", ours, theirs, "float32")


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_to_onnx_float64_reference_evaluator(cell):
    _onnx()
    from onnx.reference import ReferenceEvaluator

    I, H, T, B = 3, 5, 6, 2
    model = make_model(cell, I, H, 2, 2, True, True, dtype="float64")
    proto = rnnfast.to_onnx(model, initial_state=True)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, T, I))
    state = random_state(cell, 2, 2, B, H, np.float64, rng)
    feeds = {"x": x, "h0": states_of(cell, state)[0]}
    if cell == "lstm":
        feeds["c0"] = state[1]
    got = ReferenceEvaluator(proto).run(None, feeds)
    out, st = model(x, state)
    assert_close("onnx reference (to_onnx)", "out", out, got[0], "float64")
    for ours, theirs in zip(states_of(cell, st), got[1:]):
        assert_close("onnx reference (to_onnx)", "state", ours, theirs, "float64")


def test_to_onnx_arguments():
    onnx = _onnx()
    model = make_model("gru")
    with pytest.raises(ValueError, match="opset must be between 14"):
        rnnfast.to_onnx(model, opset=13)
    with pytest.raises(TypeError, match="opset must be an int"):
        rnnfast.to_onnx(model, opset="14")
    with pytest.raises(TypeError, match="model must be an rnnfast"):
        rnnfast.to_onnx("model")
    proto = rnnfast.to_onnx(model, opset=17)
    assert proto.opset_import[0].version == 17
    gru = [n for n in proto.graph.node if n.op_type == "GRU"][0]
    assert onnx.helper.get_attribute_value([a for a in gru.attribute if a.name == "linear_before_reset"][0]) == 1
    _ort_session(proto)


# --- torch.onnx.export -> from_onnx -------------------------------------------------------------------

def _torch_export(torch, module, args, input_names, output_names) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, args, f, dynamo=False, opset_version=14, input_names=input_names,
                              output_names=output_names,
                              dynamic_axes={n: {} for n in input_names})
        except Exception as e:  # the exporter needs packages this machine may lack
            pytest.skip(f"torch.onnx.export cannot run here: {e}")
    return f.getvalue()


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("cfg", [(2, 1, False), (2, 2, True), (1, 2, False)],
                         ids=lambda c: f"L{c[0]}-D{c[1]}-bf{int(c[2])}")
@pytest.mark.parametrize("cell", CELLS)
def test_torch_export_from_onnx(cell, cfg, with_state):
    torch = torch_or_skip()
    _onnx()
    L, D, bf = cfg
    I, H, T, B = 4, 5, 6, 3
    module = torch_module(torch, cell, I, H, L, D, bf, True, "float32", seed=8).eval()
    rng = np.random.default_rng(8)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(np.float32)
    state = random_state(cell, L, D, B, H, np.float32, rng) if with_state else None
    states = states_of(cell, state) if with_state else []
    names = ["x"] + (["h0", "c0"][:len(states)])
    args = (torch.from_numpy(x),) + ((tuple(torch.from_numpy(s) for s in state) if cell == "lstm"
                                      else torch.from_numpy(state),) if with_state else ())
    data = _torch_export(torch, module, args, names, ["out", "h_n", "c_n"][:2 + (cell == "lstm")])
    model = rnnfast.from_onnx(data)
    assert isinstance(model, rnnfast._rnn_base.RNNBase), "a torch stack must read back as one stacked model"
    assert (model.num_layers, model.num_directions, model.batch_first) == (L, D, bf)
    ref_out, ref_state = torch_run(torch, module, cell, x, state)
    out, st = model(x, state)
    assert_close("torch.onnx.export -> from_onnx", "out", out, ref_out, "float32")
    for ours, theirs in zip(states_of(cell, st), ref_state):
        assert_close("torch.onnx.export -> from_onnx", "state", ours, theirs, "float32")
    got = _ort_session(pytest.importorskip("onnx").load_from_string(data)).run(
        None, dict(zip(names, [x] + states)))
    assert_close("onnxruntime (torch export)", "out", out, got[0], "float32")


# --- hand-built ONNX graphs ----------------------------------------------------------------------------

_ONNX_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _onnx_weights(op, D, H, I, rng, dtype=np.float32, bias=True):
    G = _ONNX_GATES[op]
    w = {"W": rng.uniform(-0.8, 0.8, (D, G * H, I)).astype(dtype),
         "R": rng.uniform(-0.8, 0.8, (D, G * H, H)).astype(dtype)}
    if bias:
        w["B"] = rng.uniform(-0.8, 0.8, (D, 2 * G * H)).astype(dtype)
    return w


def _single_node_model(op, D, H, I, rng, *, dtype=np.float32, layout=0, bias=True, lengths=False,
                       initial=True, attrs=None, extra_inits=None, inputs_override=None, opset=14):
    """A graph of one recurrent node with inputs X, (sequence_lens), (initial_h, initial_c); outputs Y, Y_h(, Y_c)."""
    _onnx()
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    weights = _onnx_weights(op, D, H, I, rng, dtype, bias)
    inits = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    inits += [numpy_helper.from_array(v, k) for k, v in (extra_inits or {}).items()]
    xs = ["B", "T", I] if layout else ["T", "B", I]
    hs = ["B", D, H] if layout else [D, "B", H]
    g_inputs = [helper.make_tensor_value_info("X", elem, xs)]
    node_in = ["X", "W", "R", "B" if bias else "", "", "", ""]
    if lengths:
        g_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]))
        node_in[4] = "sequence_lens"
    if initial:
        g_inputs.append(helper.make_tensor_value_info("initial_h", elem, hs))
        node_in[5] = "initial_h"
        if op == "LSTM":
            g_inputs.append(helper.make_tensor_value_info("initial_c", elem, hs))
            node_in[6] = "initial_c"
    for idx, name in (inputs_override or {}).items():
        node_in += [""] * (idx + 1 - len(node_in))
        node_in[idx] = name
    while node_in[-1] == "":
        node_in.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    a = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if layout:
        a["layout"] = 1
    if op == "GRU":
        a["linear_before_reset"] = 1
    a.update(attrs or {})
    a = {k: v for k, v in a.items() if v is not None}
    node = helper.make_node(op, node_in, outs, name=f"my_{op.lower()}", **a)
    g_outputs = [helper.make_tensor_value_info(o, elem, None) for o in outs]
    graph = helper.make_graph([node], "g", g_inputs, g_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, weights


def _onnx_y_to_rnnfast(y, layout):
    """ONNX Y (T, D, B, H) (layout 0) or (B, T, D, H) (layout 1) -> (T, B, D*H) or (B, T, D*H)."""
    if layout:
        B, T, D, H = y.shape
        return y.reshape(B, T, D * H)
    T, D, B, H = y.shape
    return y.transpose(0, 2, 1, 3).reshape(T, B, D * H)


@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("op,act", [("RNN", "Tanh"), ("RNN", "Relu"), ("LSTM", None), ("GRU", None)])
def test_from_onnx_hand_built_matches_onnxruntime(op, act, D, lengths):
    """Weights written in ONNX's own gate order and bias layout, run by ONNX Runtime: tests the
    conversion independently of PyTorch and of to_onnx."""
    I, H, T, B = 4, 5, 6, 3
    rng = np.random.default_rng(9)
    attrs = {"activations": [act] * D} if act else None
    proto, _ = _single_node_model(op, D, H, I, rng, lengths=lengths, attrs=attrs)
    model = rnnfast.from_onnx(proto)
    assert type(model).__name__ == op and model.num_directions == D and not model.batch_first
    if op == "RNN":
        assert model.nonlinearity == act.lower()
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((D, B, H)).astype(np.float32)
    c0 = rng.standard_normal((D, B, H)).astype(np.float32)
    feeds = {"X": x, "initial_h": h0}
    if op == "LSTM":
        feeds["initial_c"] = c0
    seq = np.array([6, 2, 4], dtype=np.int32) if lengths else None
    if lengths:
        feeds["sequence_lens"] = seq
    got = _ort_session(proto).run(None, feeds)
    out, st = model(x, (h0, c0) if op == "LSTM" else h0, lengths=seq)
    if lengths:   # ONNX Runtime leaves the padding of Y as zeros, as rnnfast
        assert not np.any(out[4:, 1]) and not np.any(got[0][2:, :, 1])
    assert_close("onnxruntime (hand-built)", "out", out, _onnx_y_to_rnnfast(got[0], 0), "float32")
    for ours, theirs in zip(st if op == "LSTM" else [st], got[1:]):
        assert_close("onnxruntime (hand-built)", "state", ours, theirs, "float32")


def test_from_onnx_full_length_sequence_lens():
    rng = np.random.default_rng(10)
    I, H, T, B = 3, 4, 5, 2
    proto, _ = _single_node_model("GRU", 2, H, I, rng, lengths=True, initial=False)
    model = rnnfast.from_onnx(proto)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    full = np.full(B, T, dtype=np.int32)
    got = _ort_session(proto).run(None, {"X": x, "sequence_lens": full})
    for kwargs in ({}, {"lengths": full}):
        out, h_n = model(x, **kwargs)
        assert_close("onnxruntime (hand-built)", "out", out, _onnx_y_to_rnnfast(got[0], 0), "float32")
        assert_close("onnxruntime (hand-built)", "state", h_n, got[1], "float32")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("op", ["RNN", "LSTM", "GRU"])
def test_from_onnx_layout_and_float64_reference_evaluator(op, layout, dtype):
    """layout=1 and float64, which ONNX Runtime's CPU kernels do not run, against onnx's reference."""
    _onnx()
    from onnx.reference import ReferenceEvaluator

    I, H, T, B, D = 3, 4, 5, 2, 2
    rng = np.random.default_rng(11)
    proto, _ = _single_node_model(op, D, H, I, rng, dtype=dtype, layout=layout)
    model = rnnfast.from_onnx(proto)
    assert model.batch_first == bool(layout) and model.dtype == dtype
    x = rng.standard_normal((B, T, I) if layout else (T, B, I)).astype(dtype)
    hs = (B, D, H) if layout else (D, B, H)
    h0, c0 = rng.standard_normal(hs).astype(dtype), rng.standard_normal(hs).astype(dtype)
    feeds = {"X": x, "initial_h": h0}
    if op == "LSTM":
        feeds["initial_c"] = c0
    got = ReferenceEvaluator(proto).run(None, feeds)
    to_state = (lambda s: s.transpose(1, 0, 2)) if layout else (lambda s: s)   # rnnfast states are (D, B, H)
    out, st = model(x, (to_state(h0), to_state(c0)) if op == "LSTM" else to_state(h0))
    assert_close("onnx reference (hand-built)", "out", out, _onnx_y_to_rnnfast(got[0], layout), dtype)
    for ours, theirs in zip(st if op == "LSTM" else [st], got[1:]):
        assert_close("onnx reference (hand-built)", "state", ours, to_state(theirs), dtype)


def _two_node_graph(op, connector, rng, D=2, H=4, I=3):
    """Node 'first' -> connector -> node 'second'; connector 'plain' (Transpose + Reshape or Squeeze),
    'relu' (a computation in between) or 'parallel' (both nodes read X)."""
    _onnx()
    from onnx import TensorProto, helper, numpy_helper

    w1, w2 = _onnx_weights(op, D, H, I, rng), _onnx_weights(op, D, H, D * H if connector != "parallel" else I, rng)
    inits = [numpy_helper.from_array(v, f"{k}1") for k, v in w1.items()]
    inits += [numpy_helper.from_array(v, f"{k}2") for k, v in w2.items()]
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "shape"))
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    a = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if op == "GRU":
        a["linear_before_reset"] = 1
    nodes = [helper.make_node(op, ["X", "W1", "R1", "B1"], ["Y1", "Yh1"], name="first", **a)]
    if connector == "parallel":
        second_x = "X"
    elif D == 2:
        nodes += [helper.make_node("Transpose", ["Y1"], ["Y1t"], perm=[0, 2, 1, 3]),
                  helper.make_node("Reshape", ["Y1t", "shape"], ["X2"])]
        second_x = "X2"
    else:
        nodes += [helper.make_node("Squeeze", ["Y1", "axis1"], ["X2"])]
        second_x = "X2"
    if connector == "relu":
        nodes.append(helper.make_node("Relu", [second_x], ["X2r"]))
        second_x = "X2r"
    nodes.append(helper.make_node(op, [second_x, "W2", "R2", "B2"], ["Y2", "Yh2"], name="second", **a))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", I])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                               for n in ("Y2", "Yh1", "Yh2")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_from_onnx_stack_and_non_stack(op, D):
    rng = np.random.default_rng(12)
    I, H, T, B = 3, 4, 5, 2
    x = rng.standard_normal((T, B, I)).astype(np.float32)

    proto = _two_node_graph(op, "plain", rng, D, H, I)
    model = rnnfast.from_onnx(proto)
    assert isinstance(model, rnnfast._rnn_base.RNNBase) and model.num_layers == 2
    y2, yh1, yh2 = _ort_session(proto).run(None, {"X": x})
    out, st = model(x)
    h_n = st[0] if op == "LSTM" else st
    assert_close("onnxruntime (hand-built)", "out", out, _onnx_y_to_rnnfast(y2, 0), "float32")
    assert_close("onnxruntime (hand-built)", "state", h_n, np.concatenate([yh1, yh2]), "float32")

    proto = _two_node_graph(op, "relu", rng, D, H, I)
    with pytest.warns(UserWarning, match="Relu"):
        models = rnnfast.from_onnx(proto)
    assert isinstance(models, dict) and sorted(models) == ["first", "second"]
    y2, yh1, yh2 = _ort_session(proto).run(None, {"X": x})
    out1, _ = models["first"](x)
    out2, st2 = models["second"](np.maximum(out1, 0))
    assert_close("onnxruntime (hand-built)", "out", out2, _onnx_y_to_rnnfast(y2, 0), "float32")
    assert_close("onnxruntime (hand-built)", "state", st2[0] if op == "LSTM" else st2, yh2, "float32")

    proto = _two_node_graph(op, "parallel", rng, D, H, I)
    models = rnnfast.from_onnx(proto)
    assert isinstance(models, dict) and sorted(models) == ["first", "second"]
    y2, yh1, yh2 = _ort_session(proto).run(None, {"X": x})
    assert_close("onnxruntime (hand-built)", "out", models["second"](x)[0], _onnx_y_to_rnnfast(y2, 0), "float32")


def test_from_onnx_inputs_and_exact_zero_forms(tmp_path):
    onnx = _onnx()
    rng = np.random.default_rng(13)
    I, H, D = 3, 4, 2
    zeros = np.zeros((D, 3 * H), dtype=np.float32)
    # Zero peepholes and a zero constant initial state are exact: accepted.
    proto, _ = _single_node_model("LSTM", D, H, I, rng, initial=False, extra_inits={"P": zeros, "h0": np.zeros(
        (D, 2, H), np.float32)}, inputs_override={5: "h0", 7: "P"})
    model = rnnfast.from_onnx(proto)
    x = rng.standard_normal((4, 2, I)).astype(np.float32)
    got = _ort_session(proto).run(None, {"X": x})
    assert_close("onnxruntime (hand-built)", "out", model(x)[0], _onnx_y_to_rnnfast(got[0], 0), "float32")
    # Path, str, bytes and ModelProto all work; no B gives bias=False.
    proto, _ = _single_node_model("GRU", 1, H, I, rng, bias=False)
    path = tmp_path / "gru.onnx"
    onnx.save(proto, str(path))
    for arg in (path, str(path), proto.SerializeToString(), proto):
        m = rnnfast.from_onnx(arg)
        assert isinstance(m, rnnfast.GRU) and not m.bias


def _refusal_cases():
    # (label, op, kwargs for _single_node_model, exception, pattern naming the attribute or input); the cell
    # variants rnnfast computes (clip, input_forget, peepholes, linear_before_reset=0, direction='reverse',
    # activations) are tested in test_variant_converters.py
    return [
        ("unknown activation", "GRU", dict(attrs={"activations": ["Sigmoid", "Gelu"] * 2}), NotImplementedError,
         "activations"),
        ("affine without alpha", "LSTM", dict(attrs={"activations": ["Sigmoid", "Affine", "Tanh"] * 2}),
         NotImplementedError, "activation_alpha"),
        ("extra alpha", "RNN", dict(attrs={"activations": ["Tanh", "Tanh"], "activation_alpha": [0.5]}),
         NotImplementedError, "activation_alpha"),
        ("activation count", "LSTM", dict(attrs={"activations": ["Sigmoid", "Tanh"]}), ValueError, "activations"),
        ("linear_before_reset=2", "GRU", dict(attrs={"linear_before_reset": 2}), ValueError, "linear_before_reset"),
        ("negative clip", "LSTM", dict(attrs={"clip": -1.0}), ValueError, "clip"),
        ("direction", "LSTM", dict(attrs={"direction": "backward"}), ValueError, "direction"),
        ("layout", "GRU", dict(attrs={"layout": 2}), ValueError, "layout"),
        ("peepholes from an input", "LSTM", dict(inputs_override={7: "X"}), ValueError, "input P"),
        ("peephole shape", "LSTM", dict(extra_inits={"P": np.ones((2, 9), np.float32)}, inputs_override={7: "P"}),
         ValueError, "P"),
        ("constant initial_h", "GRU", dict(initial=False, extra_inits={"h0": np.ones((2, 1, 4), np.float32)},
                                           inputs_override={5: "h0"}), NotImplementedError, "initial_h"),
        ("constant sequence_lens", "RNN", dict(extra_inits={"lens": np.array([3], np.int32)},
                                               inputs_override={4: "lens"}), NotImplementedError, "sequence_lens"),
        ("weights from an input", "LSTM", dict(inputs_override={1: "X"}), ValueError, "input W"),
    ]


@pytest.mark.parametrize("case", _refusal_cases(), ids=lambda c: c[0])
def test_from_onnx_refusals(case):
    label, op, kwargs, exc, pattern = case
    rng = np.random.default_rng(14)
    D = kwargs.pop("D", 2)
    proto, _ = _single_node_model(op, D, 4, 3, rng, **kwargs)
    with pytest.raises(exc, match=pattern) as info:
        rnnfast.from_onnx(proto)
    assert "my_" + op.lower() in str(info.value)   # the node is named too


def test_from_onnx_other_refusals():
    onnx = _onnx()
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])])
    with pytest.raises(ValueError, match="no RNN, LSTM or GRU node"):
        rnnfast.from_onnx(helper.make_model(graph))
    with pytest.raises(TypeError, match="path_or_model"):
        rnnfast.from_onnx(42)
    rng = np.random.default_rng(15)
    proto, _ = _single_node_model("GRU", 1, 4, 3, rng)
    proto.graph.node[0].attribute.append(helper.make_attribute("future_option", 1))
    with pytest.raises(NotImplementedError, match="future_option"):
        rnnfast.from_onnx(proto)
    proto, _ = _single_node_model("LSTM", 1, 4, 3, rng, dtype=np.float64)
    assert rnnfast.from_onnx(proto).dtype == np.float64
    assert onnx is not None
