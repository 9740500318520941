"""Interop parity: models from PyTorch, ONNX and Keras run in rnnfast with the same numbers; rnnfast models
exported to ONNX run in ONNX Runtime with the same numbers; every refusal names its reason.

Each group is skipped only where its framework is not importable. Outputs and final states are compared
with max|ours - theirs| <= tol * max(max|theirs|, 1), tol 1e-5 in float32 and 1e-10 in float64 (the
tolerances of test_torch_parity). Run with ``-s`` to print the largest difference seen per framework.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from collections import defaultdict

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

import rnnfast  # noqa: E402
from rnnfast import interop  # noqa: E402

from helpers.cells import CELLS  # noqa: E402

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
_MAX_DIFF: dict = defaultdict(float)   # (framework, dtype) -> largest relative difference observed


@pytest.fixture(autouse=True, scope="module")
def _report():
    yield
    if _MAX_DIFF:
        print("\nlargest difference / max(max|reference|, 1) per framework and dtype:")
        for (fw, dt), v in sorted(_MAX_DIFF.items()):
            print(f"  {fw:28s} {dt:8s} {v:.3g}")


def assert_close(framework: str, name: str, ours, theirs, dtype, tol_dtype=None) -> None:
    """max|ours - theirs| within the tolerance of ``tol_dtype`` (default ``dtype``) relative to
    max(max|theirs|, 1); records the ratio under (framework, dtype)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{framework} {name}: shape {ours.shape} != {theirs.shape}"
    dtype = np.dtype(dtype)
    scale = max(float(np.max(np.abs(theirs), initial=0.0)), 1.0)
    err = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)), initial=0.0)) / scale
    key = (framework, dtype.name)
    _MAX_DIFF[key] = max(_MAX_DIFF[key], err)
    tol = TOL[np.dtype(tol_dtype or dtype)]
    assert err <= tol, f"{framework} {name} ({dtype}): max difference {err:.3g} x scale {scale:.3g} > {tol:g}"


def make_model(cell: str, I: int = 3, H: int = 5, L: int = 1, D: int = 1, bf: bool = False, bias: bool = True,
               dtype="float32", seed: int = 0):
    cls = {"lstm": rnnfast.LSTM, "gru": rnnfast.GRU}.get(cell, rnnfast.RNN)
    kw = {"nonlinearity": cell[4:]} if cell.startswith("rnn_") else {}
    m = cls(I, H, L, bias=bias, batch_first=bf, bidirectional=D == 2, dtype=dtype, seed=seed, **kw)
    # Larger weights than the default init, so that the gates leave their linear range.
    rng = np.random.default_rng(seed + 100)
    m.load_state_dict({k: rng.uniform(-0.8, 0.8, v.shape) for k, v in m.state_dict().items()})
    return m


def random_state(cell, L, D, B, H, dtype, rng):
    h = rng.standard_normal((L * D, B, H)).astype(dtype)
    if cell == "lstm":
        return h, rng.standard_normal((L * D, B, H)).astype(dtype)
    return h


def states_of(cell, state):
    return list(state) if cell == "lstm" else [state]


def test_import_needs_no_framework():
    code = ("import sys, rnnfast; assert callable(rnnfast.from_onnx); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'keras', 'tensorflow') if m in sys.modules))")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.dirname(rnnfast.__path__[0]), env.get("PYTHONPATH")] if p)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    assert set(interop.__all__) <= set(rnnfast.__all__)


def test_missing_framework_import_error(monkeypatch):
    for mod in ("torch", "onnx", "keras"):
        monkeypatch.setitem(sys.modules, mod, None)   # makes "import mod" raise ImportError
    with pytest.raises(ImportError, match=r"rnnfast\[onnx\]"):
        rnnfast.to_onnx(make_model("lstm"))
    with pytest.raises(ImportError, match=r"rnnfast\[onnx\]"):
        rnnfast.from_onnx("model.onnx")
    with pytest.raises(ImportError, match="pip install torch"):
        rnnfast.from_torch(object())
    with pytest.raises(ImportError, match="pip install torch"):
        rnnfast.to_torch(make_model("gru"))
    with pytest.raises(ImportError, match="pip install keras"):
        rnnfast.from_keras(object())


# ====================================================================================================
# PyTorch
# ====================================================================================================

# (num_layers, bidirectional, batch_first, bias)
TORCH_CONFIGS = [(1, False, False, True), (2, True, False, True), (2, False, True, False), (1, True, True, True)]


def _torch():
    return pytest.importorskip("torch")


def _torch_module(torch, cell, I, H, L, D, bf, bias, dtype, seed=0):
    torch.manual_seed(seed)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    kw = dict(num_layers=L, bias=bias, batch_first=bf, bidirectional=D == 2, dtype=tdt)
    if cell.startswith("rnn_"):
        return torch.nn.RNN(I, H, nonlinearity=cell[4:], **kw)
    return (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, **kw)


def _torch_run(torch, module, cell, x, state):
    with torch.no_grad():
        if state is None:
            out, st = module(torch.from_numpy(x))
        elif cell == "lstm":
            out, st = module(torch.from_numpy(x), tuple(torch.from_numpy(s) for s in state))
        else:
            out, st = module(torch.from_numpy(x), torch.from_numpy(state))
    st = [s.numpy() for s in st] if cell == "lstm" else [st.numpy()]
    return out.numpy(), st


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", TORCH_CONFIGS, ids=lambda c: "L{}-D{}-bf{}-bias{}".format(c[0], 2 if c[1] else 1,
                                                                                           int(c[2]), int(c[3])))
@pytest.mark.parametrize("cell", CELLS)
def test_from_torch_parity(cell, cfg, dtype):
    torch = _torch()
    L, bidi, bf, bias = cfg
    D, I, H, T, B = 2 if bidi else 1, 4, 6, 7, 3
    module = _torch_module(torch, cell, I, H, L, D, bf, bias, dtype).eval()
    model = rnnfast.from_torch(module)
    assert type(model).__name__ == {"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN")
    assert (model.num_layers, model.bidirectional, model.batch_first, model.bias, model.dtype) == \
        (L, bidi, bf, bias, np.dtype(dtype))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(dtype)
    state = random_state(cell, L, D, B, H, dtype, rng)
    ref_out, ref_state = _torch_run(torch, module, cell, x, state)
    out, st = model(x, state)
    assert_close("torch", "out", out, ref_out, dtype)
    for ours, theirs in zip(states_of(cell, st), ref_state):
        assert_close("torch", "state", ours, theirs, dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_from_torch_lengths_match_packed_sequences(cell):
    torch = _torch()
    I, H, L, T, B = 3, 5, 2, 6, 4
    module = _torch_module(torch, cell, I, H, L, 2, False, True, "float32").eval()
    model = rnnfast.from_torch(module)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([6, 2, 5, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                                     enforce_sorted=False)
    with torch.no_grad():
        out_p, st = module(packed)
    ref_out = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=T)[0].numpy()
    ref_state = [s.numpy() for s in st] if cell == "lstm" else [st.numpy()]
    out, st = model(x, lengths=lengths)
    assert_close("torch", "out", out, ref_out, "float32")
    for ours, theirs in zip(states_of(cell, st), ref_state):
        assert_close("torch", "state", ours, theirs, "float32")


@pytest.mark.parametrize("cell", CELLS)
def test_to_torch_round_trip(cell):
    torch = _torch()
    model = make_model(cell, I=4, H=5, L=2, D=2, bf=True, dtype="float64")
    model_d = make_model(cell, I=4, H=5, L=2, D=2, bf=True)
    module = rnnfast.to_torch(model)
    assert isinstance(module, torch.nn.RNNBase) and not module.training
    assert module.batch_first and module.bidirectional and module.num_layers == 2
    assert next(module.parameters()).dtype == torch.float64
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 4))
    state = random_state(cell, 2, 2, 3, 5, np.float64, rng)
    ref_out, ref_state = _torch_run(torch, module, cell, x, state)
    out, st = model(x, state)
    assert_close("torch (to_torch)", "out", out, ref_out, "float64")
    for ours, theirs in zip(states_of(cell, st), ref_state):
        assert_close("torch (to_torch)", "state", ours, theirs, "float64")
    # The round trip rnnfast -> torch -> rnnfast is exact.
    for m in (model, model_d):
        back = rnnfast.from_torch(rnnfast.to_torch(m))
        assert repr(back) == repr(m)
        sd, sd_back = m.state_dict(), back.state_dict()
        assert sd.keys() == sd_back.keys()
        for k in sd:
            assert sd_back[k].dtype == sd[k].dtype and np.array_equal(sd_back[k], sd[k]), k


def test_torch_dropout_and_parametrizations_carry_over():
    torch = _torch()
    module = torch.nn.GRU(3, 4, num_layers=2, dropout=0.25)
    assert rnnfast.from_torch(module).dropout == 0.25
    assert rnnfast.to_torch(rnnfast.from_torch(module)).dropout == 0.25
    # A parametrized weight converts as the module computes it.
    lstm = torch.nn.LSTM(3, 4)
    torch.nn.utils.parametrizations.weight_norm(lstm, "weight_hh_l0")
    with torch.no_grad():
        lstm.parametrizations.weight_hh_l0.original0.mul_(1.7)
    model = rnnfast.from_torch(lstm)
    x = np.random.default_rng(4).standard_normal((5, 2, 3)).astype(np.float32)
    ref_out, _ = _torch_run(torch, lstm, "lstm", x, None)
    assert_close("torch", "out", model(x)[0], ref_out, "float32")


def test_from_torch_refusals():
    torch = _torch()
    with pytest.raises(NotImplementedError, match="proj_size=2"):
        rnnfast.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="float16"):
        rnnfast.from_torch(torch.nn.GRU(3, 4).half())
    with pytest.raises(TypeError, match="torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got Linear"):
        rnnfast.from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(TypeError, match="got str"):
        rnnfast.from_torch("lstm")

    class Custom(torch.nn.LSTM):
        def forward(self, x, hx=None):  # noqa: D401 - a different computation
            return super().forward(2 * x, hx)

    with pytest.raises(TypeError, match="overrides its forward"):
        rnnfast.from_torch(Custom(3, 4))
    with pytest.raises(TypeError, match="rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU"):
        rnnfast.to_torch(torch.nn.LSTM(3, 4))


# ====================================================================================================
# ONNX
# ====================================================================================================

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
    proto = rnnfast.to_onnx(model, path)
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
    proto = rnnfast.to_onnx(model)
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
    torch = _torch()
    _onnx()
    L, D, bf = cfg
    I, H, T, B = 4, 5, 6, 3
    module = _torch_module(torch, cell, I, H, L, D, bf, True, "float32", seed=8).eval()
    rng = np.random.default_rng(8)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(np.float32)
    state = random_state(cell, L, D, B, H, np.float32, rng) if with_state else None
    states = states_of(cell, state) if with_state else []
    names = ["x"] + (["h0", "c0"][:len(states)])
    args = (torch.from_numpy(x),) + ((tuple(torch.from_numpy(s) for s in state) if cell == "lstm"
                                      else torch.from_numpy(state),) if with_state else ())
    data = _torch_export(torch, module, args, names, ["out", "h_n", "c_n"][:2 + (cell == "lstm")])
    model = rnnfast.from_onnx(data)
    assert isinstance(model, rnnfast.layers._RNNBase), "a torch stack must read back as one stacked model"
    assert (model.num_layers, model.num_directions, model.batch_first) == (L, D, bf)
    ref_out, ref_state = _torch_run(torch, module, cell, x, state)
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
    assert isinstance(model, rnnfast.layers._RNNBase) and model.num_layers == 2
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
    # (label, op, kwargs for _single_node_model, exception, pattern naming the attribute or input)
    rng_p = np.ones((2, 12), np.float32)
    return [
        ("clip", "LSTM", dict(attrs={"clip": 50.0}), NotImplementedError, "clip"),
        ("input_forget", "LSTM", dict(attrs={"input_forget": 1}), NotImplementedError, "input_forget"),
        ("lstm activations", "LSTM", dict(attrs={"activations": ["Sigmoid", "Relu", "Tanh"] * 2}),
         NotImplementedError, "activations"),
        ("gru activations", "GRU", dict(attrs={"activations": ["HardSigmoid", "Tanh"] * 2}), NotImplementedError,
         "activations"),
        ("rnn activations", "RNN", dict(attrs={"activations": ["Sigmoid"] * 2}), NotImplementedError, "activations"),
        ("rnn mixed directions", "RNN", dict(attrs={"activations": ["Tanh", "Relu"]}), NotImplementedError,
         "activations"),
        ("linear_before_reset=0", "GRU", dict(attrs={"linear_before_reset": 0}), NotImplementedError,
         "linear_before_reset"),
        ("linear_before_reset default", "GRU", dict(attrs={"linear_before_reset": None}), NotImplementedError,
         "linear_before_reset"),
        ("reverse", "LSTM", dict(attrs={"direction": "reverse"}, D=1), NotImplementedError, "direction"),
        ("peepholes", "LSTM", dict(extra_inits={"P": rng_p}, inputs_override={7: "P"}), NotImplementedError,
         "peephole"),
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


# ====================================================================================================
# Keras 3
# ====================================================================================================

# Keras's torch backend converts tensors with np.array(tensor), which NumPy 2 warns about.
keras_warnings = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning")


def _keras():
    keras = pytest.importorskip("keras")
    if not hasattr(keras, "version") or int(keras.version().split(".")[0]) < 3:
        pytest.skip("Keras 3 is needed")
    return keras


def _keras_layer(keras, kind, units, dtype, **kw):
    kw = dict(return_sequences=True, return_state=True, dtype=dtype, **kw)
    if kind.startswith("rnn_"):
        return keras.layers.SimpleRNN(units, activation=kind[4:], **kw)
    return (keras.layers.LSTM if kind == "lstm" else keras.layers.GRU)(units, **kw)


def _randomize_keras(keras, layer, rng):
    for v in layer.weights:
        v.assign(rng.uniform(-0.8, 0.8, tuple(v.shape)).astype(v.dtype))


@keras_warnings
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", CELLS)
def test_from_keras_parity(kind, bidirectional, bias, dtype):
    keras = _keras()
    I, H, T, B = 4, 5, 6, 3
    layer = _keras_layer(keras, kind, H, dtype, use_bias=bias)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, dtype=dtype)
    rng = np.random.default_rng(16)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    layer(x)  # builds it
    _randomize_keras(keras, layer, rng)
    D = 2 if bidirectional else 1
    per_dir = 2 if kind == "lstm" else 1
    init = [rng.standard_normal((B, H)).astype(dtype) for _ in range(D * per_dir)]
    res = [keras.ops.convert_to_numpy(r) for r in layer(x, initial_state=init)]
    model = rnnfast.from_keras(layer)
    assert model.batch_first and model.num_directions == D and model.bias == bias and model.dtype == dtype
    h0 = np.stack(init[::per_dir])
    state = (h0, np.stack(init[1::per_dir])) if kind == "lstm" else h0
    out, st = model(x, state)
    # Keras 3 promotes float64 to float32 in its ops on every backend but TensorFlow (its type lattice
    # follows JAX without x64), so its float64 layers multiply in float32: compare at float32 tolerance.
    assert_close("keras", "out", out, res[0], dtype, tol_dtype="float32")
    keras_states = res[1:]   # per direction: h (, c)
    ours = [s[d] for d in range(D) for s in (states_of(kind, st))]
    assert len(ours) == len(keras_states)
    for o, k in zip(ours, keras_states):
        assert_close("keras", "state", o, k, dtype, tol_dtype="float32")


@keras_warnings
def test_from_keras_rnn_wrapper_and_last_output():
    keras = _keras()
    I, H, T, B = 3, 4, 5, 2
    rng = np.random.default_rng(17)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    layer = keras.layers.RNN(keras.layers.GRUCell(H))
    layer(x)
    _randomize_keras(keras, layer, rng)
    model = rnnfast.from_keras(layer)
    last = keras.ops.convert_to_numpy(layer(x))   # return_sequences=False: the last output
    assert_close("keras", "out", model(x)[0][:, -1], last, "float32")
    bi = keras.layers.Bidirectional(keras.layers.LSTM(H))
    bi(x)
    _randomize_keras(keras, bi, rng)
    _, (h_n, _) = rnnfast.from_keras(bi)(x)
    assert_close("keras", "out", np.concatenate([h_n[0], h_n[1]], -1), keras.ops.convert_to_numpy(bi(x)), "float32")


def _keras_refusals():
    return [
        ("reset_after", lambda k: k.layers.GRU(4, reset_after=False), NotImplementedError, "reset_after"),
        ("hard_sigmoid", lambda k: k.layers.LSTM(4, recurrent_activation="hard_sigmoid"), NotImplementedError,
         "recurrent_activation"),
        ("gru hard_sigmoid", lambda k: k.layers.GRU(4, recurrent_activation="hard_sigmoid"), NotImplementedError,
         "recurrent_activation"),
        ("lstm relu", lambda k: k.layers.LSTM(4, activation="relu"), NotImplementedError, "activation"),
        ("simplernn sigmoid", lambda k: k.layers.SimpleRNN(4, activation="sigmoid"), NotImplementedError,
         "activation"),
        ("go_backwards", lambda k: k.layers.LSTM(4, go_backwards=True), NotImplementedError, "go_backwards"),
        ("merge_mode", lambda k: k.layers.Bidirectional(k.layers.GRU(4), merge_mode="sum"), NotImplementedError,
         "merge_mode"),
        ("mixed precision", lambda k: k.layers.GRU(4, dtype="mixed_float16"), TypeError, "dtype policy"),
        ("stacked cells", lambda k: k.layers.RNN([k.layers.GRUCell(4), k.layers.GRUCell(4)]), NotImplementedError,
         "StackedRNNCells"),
        ("dense", lambda k: k.layers.Dense(4), TypeError, "SimpleRNN, LSTM, GRU"),
    ]


@keras_warnings
@pytest.mark.parametrize("case", _keras_refusals(), ids=lambda c: c[0])
def test_from_keras_refusals(case):
    keras = _keras()
    _, make, exc, pattern = case
    layer = make(keras)
    layer(np.zeros((2, 3, 5), dtype=np.float32))
    with pytest.raises(exc, match=pattern):
        rnnfast.from_keras(layer)


@keras_warnings
def test_from_keras_unbuilt_and_wrong_type():
    keras = _keras()
    with pytest.raises(ValueError, match="no weights yet"):
        rnnfast.from_keras(keras.layers.LSTM(4))
    with pytest.raises(TypeError, match="got str"):
        rnnfast.from_keras("lstm")
