"""ONNX interop of int8 LSTMs: rnnfast.to_onnx writes an int8 LSTM as ONNX Runtime's DynamicQuantizeLSTM, and
rnnfast.from_onnx reads that operator (as onnxruntime's quantize_dynamic writes it) into an int8 LSTM, its int8
weights and scales kept exactly; what has no operator, or cannot be kept exactly, is refused naming why.

ONNX Runtime quantizes the activations itself at run time (uint8, one scale per tensor: the whole input
sequence, then each step's hidden state), rnnfast per row, so the outputs agree within the quantization error,
not bitwise. The steps are compared teacher forced (both sides from ONNX Runtime's state) against a bound
derived from the activation scales and the weights (_step_bound), and whole sequences against the float model
(rnnfast's int8 error about as small as ONNX Runtime's, or smaller). Skipped where onnx or onnxruntime is not
installed.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pytest

import rnnfast

from helpers.interop_checks import torch_module, torch_or_skip

F32 = np.float32
# rnnfast's LSTM gate blocks i, f, g, o are ONNX's blocks [0, 2, 3, 1] (ONNX: i, o, f, c): written out here,
# independently of the converter's permutation helpers.
FROM_ONNX_GATES = [0, 2, 3, 1]


def _onnx():
    return pytest.importorskip("onnx")


def _ort():
    return pytest.importorskip("onnxruntime")


def _onnx_and_ort():
    """Skip unless both onnx (to write and read the files) and onnxruntime (to run them) are installed."""
    _ort()
    return _onnx()


def _session(model):
    ort = _ort()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _quantize_dynamic(float_model, tmp_path, **options):
    """onnxruntime's quantize_dynamic of an ONNX model (ModelProto or bytes), loaded back."""
    onnx = _onnx()
    quantization = pytest.importorskip("onnxruntime.quantization")
    src, dst = tmp_path / "float.onnx", tmp_path / "quantized.onnx"
    src.write_bytes(float_model if isinstance(float_model, bytes) else float_model.SerializeToString())
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)   # its advice to pre-process the model
    try:
        quantization.quantize_dynamic(str(src), str(dst), **options)
    finally:
        logger.setLevel(level)
    return onnx.load(str(dst))


def _lstm(I, H, L=1, D=1, bf=False, bias=True, seed=0, spread=0.5):
    m = rnnfast.LSTM(I, H, L, bias=bias, batch_first=bf, bidirectional=D == 2, seed=seed)
    rng = np.random.default_rng(seed + 100)
    m.load_state_dict({k: rng.uniform(-spread, spread, v.shape) for k, v in m.state_dict().items()})
    return m


def _initializers(proto) -> dict:
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def _quantized_nodes(proto) -> list:
    return [n for n in proto.graph.node if n.op_type == "DynamicQuantizeLSTM"]


def _direction_suffix(d):
    return "_reverse" if d else ""


# ----------------------------------------------------------------------------------------------------
# The bound of one step: rnnfast against ONNX Runtime, both from the same state
# ----------------------------------------------------------------------------------------------------

def _activation_scale(a) -> float:
    """ONNX Runtime's dynamic uint8 scale of tensor ``a`` (range including 0, over 255); rnnfast's row scales
    are each at most this (a row's range is within the tensor's)."""
    a = np.asarray(a, dtype=np.float64)
    return (max(0.0, a.max()) - min(0.0, a.min())) / 255.0


def _step_bound(w_ih, w_hh, x, h, c, slack=2e-5):
    """Per element (B, H) bounds on |h1 - h1'| and |c1 - c1'| between two LSTM steps from the same x (B, I),
    h, c (B, H) with the same weights (w_ih (4H, I), w_hh (4H, H) dequantized, rnnfast's gate order), whose
    only difference is how each quantizes the activations (rounding to nearest on a grid of at most the
    tensor's scale s: an error of at most s/2 per element on each side).

    A gate row n moves by at most e_n = sum_k |w_nk| s_x + sum_k |r_nk| s_h; sigmoid by a quarter of that,
    tanh by at most that. c1 = f c + i g moves by at most e_f/4 |c| + e_i/4 |g| + |i| e_g <= e_f/4 |c| + e_i/4
    + e_g, and h1 = o tanh(c1) by at most e_o/4 + that. ``slack`` covers float32 rounding and ONNX Runtime's
    approximate sigmoid and tanh (its float LSTM agrees with rnnfast's to 1e-5)."""
    e = np.abs(w_ih).sum(axis=1) * _activation_scale(x) + np.abs(w_hh).sum(axis=1) * _activation_scale(h)
    e_i, e_f, e_g, e_o = np.split(e, 4)
    dc = e_f / 4 * np.abs(c) + e_i / 4 + e_g
    dh = e_o / 4 + dc
    return dh + slack, dc + slack


def _dequantized(q, d):
    """Layer 0's (w_ih, w_hh) of direction d of an int8 model, as float64 values scale * int8."""
    p, sfx = q.parameters(), _direction_suffix(d)
    return tuple(p[f"{w}_l0{sfx}"].astype(np.float64) * p[f"{w}_l0{sfx}_scale"][:, None].astype(np.float64)
                 for w in ("weight_ih", "weight_hh"))


def _check_steps(q, sess, names, x, h0, c0, bf):
    """Run ``q`` (one layer) and the ONNX Runtime session one step at a time, both from ONNX Runtime's state,
    and check every step's h and c within _step_bound; returns the largest |difference| / bound."""
    D, H = q.num_directions, q.hidden_size
    T = x.shape[1] if bf else x.shape[0]
    weights = [_dequantized(q, d) for d in range(D)]
    h, c = h0, c0
    worst = 0.0
    for t in range(T):
        xt = x[:, t:t + 1] if bf else x[t:t + 1]
        _, h_ort, c_ort = sess.run(None, dict(zip(names, (xt, h, c))))[:3]
        out, (h_rf, c_rf) = q(xt, (h, c))
        x2 = xt[:, 0] if bf else xt[0]
        for d in range(D):
            dh, dc = _step_bound(*weights[d], x2, h[d], c[d])
            for what, ours, theirs, bound in (("h", h_rf[d], h_ort[d], dh), ("c", c_rf[d], c_ort[d], dc)):
                diff = np.abs(ours.astype(np.float64) - theirs)
                worst = max(worst, float((diff / bound).max()))
                assert np.all(diff <= bound), (
                    f"step {t}, direction {d}, {what}: |rnnfast - onnxruntime| {diff.max():.3g} beyond the "
                    f"quantization bound (largest ratio {(diff / bound).max():.3g})")
        # out is the step's hidden state, the directions concatenated
        o = out[:, 0] if bf else out[0]
        np.testing.assert_array_equal(o.reshape(-1, D, H).transpose(1, 0, 2), h_rf)
        h, c = h_ort, c_ort
    return worst


def _errors(outputs, reference):
    """(root mean square, largest) |outputs - reference| over all the outputs (out, h_n, c_n) together."""
    d = np.concatenate([(np.asarray(a, np.float64) - r).ravel() for a, r in zip(outputs, reference)])
    return float(np.sqrt(np.mean(d * d))), float(np.abs(d).max())


def _assert_as_close_to_float(ours, theirs, reference):
    """rnnfast's int8 outputs are at least as close to the float reference as ONNX Runtime's in root mean
    square (rnnfast's per-row activation scales are at most ONNX Runtime's per-tensor ones: 0.6 to 0.8 of
    its error on these problems), and their largest error at most 1.5 times ONNX Runtime's."""
    (rms_rf, max_rf), (rms_ort, max_ort) = _errors(ours, reference), _errors(theirs, reference)
    assert rms_rf <= rms_ort, f"rnnfast int8 r.m.s. error {rms_rf:.3g} from float, ONNX Runtime's {rms_ort:.3g}"
    assert max_rf <= 1.5 * max_ort, f"rnnfast int8 largest error {max_rf:.3g}, ONNX Runtime's {max_ort:.3g}"
    assert max_ort < 0.1, "the int8 models should stay close to float on these weights"


# ----------------------------------------------------------------------------------------------------
# to_onnx of an int8 LSTM
# ----------------------------------------------------------------------------------------------------

CONFIGS = [(1, 1, False, True), (1, 2, True, True), (2, 2, False, True), (3, 1, True, False)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "L{}-D{}-bf{}-bias{}".format(c[0], c[1], int(c[2]), int(c[3])))
def test_to_onnx_writes_the_int8_weights_exactly(cfg, tmp_path):
    onnx = _onnx_and_ort()
    L, D, bf, bias = cfg
    I, H = 5, 6
    q = rnnfast.quantize(_lstm(I, H, L, D, bf, bias, seed=1), "int8")
    path = tmp_path / "q.onnx"
    proto = rnnfast.to_onnx(q, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert {(o.domain, o.version) for o in proto.opset_import} == {("", 14), ("com.microsoft", 1)}
    nodes = _quantized_nodes(proto)
    assert len(nodes) == L and all(n.domain == "com.microsoft" for n in nodes)
    assert not [n for n in proto.graph.node if n.op_type in ("LSTM", "DequantizeLinear", "Cast")]
    init = _initializers(proto)
    p = q.parameters()
    for k, node in enumerate(nodes):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["hidden_size"] == H
        assert attrs["direction"] == (b"bidirectional" if D == 2 else b"forward")
        inputs = list(node.input) + [""] * (12 - len(node.input))
        assert inputs[7] == ""                      # no peepholes
        assert (inputs[3] != "") == bias
        for w, base, idx in (("W", "weight_ih", 1), ("R", "weight_hh", 2)):
            scale_idx = 8 if w == "W" else 10
            value, scale, zero = init[inputs[idx]], init[inputs[scale_idx]], init[inputs[scale_idx + 1]]
            K = I if (w == "W" and k == 0) else (D * H if w == "W" else H)
            assert value.dtype == np.int8 and value.shape == (D, K, 4 * H)
            assert scale.dtype == F32 and scale.shape == (D, 4 * H)
            assert zero.dtype == np.int8 and zero.shape == (D, 4 * H) and not zero.any()
            for d in range(D):
                name = f"{base}_l{k}{_direction_suffix(d)}"
                # ONNX gate block j is rnnfast's block FROM_ONNX_GATES.index(j); W is (K, 4H): columns are rows
                ours = np.split(p[name], 4)
                theirs = np.split(value[d].T, 4)
                ours_s, theirs_s = np.split(p[name + "_scale"], 4), np.split(scale[d], 4)
                for j in range(4):
                    np.testing.assert_array_equal(theirs[FROM_ONNX_GATES[j]], ours[j])
                    np.testing.assert_array_equal(theirs_s[FROM_ONNX_GATES[j]], ours_s[j])
        if bias:
            B = init[inputs[3]]
            assert B.dtype == F32 and B.shape == (D, 8 * H)
    # ... and it reads back as the same model, bit for bit.
    back = rnnfast.from_onnx(path)
    assert repr(back) == repr(q) and back.weight_dtype == "int8"
    assert list(back.state_dict()) == list(q.state_dict())
    for name, value in q.state_dict().items():
        got = back.state_dict()[name]
        assert got.dtype == value.dtype and np.array_equal(got, value), name
    _session(proto)   # ONNX Runtime loads it


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("D", [1, 2])
def test_to_onnx_steps_agree_with_onnxruntime_within_the_quantization_bound(D, bias):
    """One layer, teacher forced: each step of rnnfast's int8 model and of ONNX Runtime running its export,
    from the same state, within the bound the activation scales give (_step_bound)."""
    _onnx_and_ort()
    I, H, T, B = 24, 16, 12, 5
    rng = np.random.default_rng(20 + D)
    q = rnnfast.quantize(_lstm(I, H, 1, D, False, bias, seed=2 + D), "int8")
    sess = _session(rnnfast.to_onnx(q, initial_state=True))
    x = (rng.standard_normal((T, B, I)) * np.linspace(0.1, 3, B)[:, None]).astype(F32)   # rows of unequal range
    h0, c0 = rng.standard_normal((2, D, B, H)).astype(F32)
    worst = _check_steps(q, sess, ["x", "h0", "c0"], x, h0, c0, False)
    assert worst > 0.01, f"the bound is far looser than the differences seen ({worst:.3g}): not a useful test"


def _swap_forget_and_output(proto, H):
    """Swap ONNX's gate blocks o and f (1 and 2) of R and its scales: a gate-order slip."""
    from onnx import numpy_helper

    for t in proto.graph.initializer:
        if t.name in ("R_l0", "R_scale_l0"):
            a = numpy_helper.to_array(t)
            b = a.copy()
            b[..., H:2 * H], b[..., 2 * H:3 * H] = a[..., 2 * H:3 * H], a[..., H:2 * H]
            t.CopyFrom(numpy_helper.from_array(b, t.name))


def _drop_recurrent_bias(proto, H):
    """Zero the Rb half of B: a bias-split slip."""
    from onnx import numpy_helper

    for t in proto.graph.initializer:
        if t.name == "B_l0":
            a = numpy_helper.to_array(t).copy()
            a[:, 4 * H:] = 0
            t.CopyFrom(numpy_helper.from_array(a, t.name))


@pytest.mark.parametrize("slip", [_swap_forget_and_output, _drop_recurrent_bias], ids=lambda f: f.__name__[1:])
def test_the_step_bound_catches_conversion_slips(slip):
    """The step bound is a worst case (every rounding error aligned; the differences seen fill about a tenth
    of it), so it catches what a converter gets structurally wrong, as here; the weights and scales
    themselves are compared exactly (test_to_onnx_writes_the_int8_weights_exactly and the from_onnx tests),
    and a scale a few percent off is caught over whole sequences (test_a_scale_ten_percent_off_is_caught)."""
    _onnx_and_ort()
    I, H, T, B = 24, 16, 12, 5
    rng = np.random.default_rng(30)
    q = rnnfast.quantize(_lstm(I, H, 1, 1, False, True, seed=4), "int8")
    proto = rnnfast.to_onnx(q, initial_state=True)
    slip(proto, H)
    x = rng.standard_normal((T, B, I)).astype(F32)
    h0, c0 = rng.standard_normal((2, 1, B, H)).astype(F32)
    with pytest.raises(AssertionError, match="beyond the quantization bound"):
        _check_steps(q, _session(proto), ["x", "h0", "c0"], x, h0, c0, False)


def _sequence_problem(cfg, seed=5):
    L, D, bf, bias = cfg
    I, H, T, B = 16, 32, 20, 4
    rng = np.random.default_rng(40 + L)
    m = _lstm(I, H, L, D, bf, bias, seed=seed)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(F32)
    h0, c0 = rng.standard_normal((2, L * D, B, H)).astype(F32)
    return m, x, h0, c0


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "L{}-D{}-bf{}-bias{}".format(c[0], c[1], int(c[2]), int(c[3])))
def test_to_onnx_sequences_as_close_to_float_as_onnxruntime(cfg):
    """Whole sequences (every layer, lengths): rnnfast's int8 model is as close to the float model it was
    quantized from as ONNX Runtime running its export, or closer (_assert_as_close_to_float)."""
    _onnx_and_ort()
    m, x, h0, c0 = _sequence_problem(cfg)
    bf, T = cfg[2], x.shape[1 if cfg[2] else 0]
    q = rnnfast.quantize(m, "int8")
    sess = _session(rnnfast.to_onnx(q, lengths=True, initial_state=True))
    lengths = np.array([T, 7, T - 1, 1], dtype=np.int32)
    theirs = sess.run(None, {"x": x, "h0": h0, "c0": c0, "lengths": lengths})
    out, (h_n, c_n) = q(x, (h0, c0), lengths=lengths)
    ref_out, (ref_h, ref_c) = m(x, (h0, c0), lengths=lengths)
    ours = [out, h_n, c_n]
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
    pad = (1, slice(7, None)) if bf else (slice(7, None), 1)
    assert not out[pad].any() and not theirs[0][pad].any()   # outputs past a sequence's end are zeros
    _assert_as_close_to_float(ours, theirs, [ref_out, ref_h, ref_c])


@pytest.mark.parametrize("gate", [0, 1, 2, 3])
def test_a_scale_ten_percent_off_is_caught(gate):
    """The whole-sequence criterion fails when one gate's scales (of layer 0) are 10% off in rnnfast's
    model: it is strict enough to catch a scale that a step's worst-case bound lets through."""
    _onnx_and_ort()
    cfg = (2, 2, False, True)
    m, x, h0, c0 = _sequence_problem(cfg)
    q = rnnfast.quantize(m, "int8")
    theirs = _session(rnnfast.to_onnx(q, initial_state=True)).run(None, {"x": x, "h0": h0, "c0": c0})
    H = q.hidden_size
    state = q.state_dict()
    for name in ("weight_ih_l0_scale", "weight_hh_l0_scale"):
        state[name][gate * H:(gate + 1) * H] *= 1.1
    q.load_state_dict(state)
    out, (h_n, c_n) = q(x, (h0, c0))
    ref_out, (ref_h, ref_c) = m(x, (h0, c0))
    with pytest.raises(AssertionError, match="r.m.s. error"):
        _assert_as_close_to_float([out, h_n, c_n], theirs, [ref_out, ref_h, ref_c])


# ----------------------------------------------------------------------------------------------------
# from_onnx of quantize_dynamic's models
# ----------------------------------------------------------------------------------------------------

def _expected_from_quantize_dynamic(qproto, k, D, H):
    """What layer k of the int8 model must hold, taken from the DynamicQuantizeLSTM node's initializers
    (ONNX Runtime's int8 values and scales): {suffix: (w_ih, s_ih, w_hh, s_hh)} in rnnfast's gate order."""
    node = _quantized_nodes(qproto)[k]
    init = _initializers(qproto)
    out = {}
    for d in range(D):
        per = []
        for idx, scale_idx in ((1, 8), (2, 10)):
            value, scale = init[node.input[idx]][d].T, init[node.input[scale_idx]]
            rows = np.full(4 * H, scale[d], F32) if scale.ndim == 1 else scale[d]
            blocks, sblocks = np.split(value, 4), np.split(rows, 4)
            per += [np.concatenate([blocks[j] for j in FROM_ONNX_GATES]),
                    np.concatenate([sblocks[j] for j in FROM_ONNX_GATES])]
        out[_direction_suffix(d)] = per
    return out


@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("D", [1, 2])
def test_from_onnx_reads_quantize_dynamic_exactly(D, per_channel, reduce_range, tmp_path):
    """A float LSTM -> ONNX -> onnxruntime's quantize_dynamic -> from_onnx: an int8 model holding ONNX
    Runtime's own int8 weights and scales (per-tensor scales on every row), whose steps agree with ONNX
    Runtime running the quantized file within the quantization bound, and which writes back the same values."""
    _onnx_and_ort()
    I, H, T, B = 20, 12, 10, 4
    m = _lstm(I, H, 1, D, False, True, seed=6 + D)
    qproto = _quantize_dynamic(rnnfast.to_onnx(m, initial_state=True), tmp_path, per_channel=per_channel,
                                reduce_range=reduce_range)
    nodes = _quantized_nodes(qproto)
    assert len(nodes) == 1
    scale = _initializers(qproto)[nodes[0].input[8]]
    assert scale.shape == ((D, 4 * H) if per_channel else (D,))

    q = rnnfast.from_onnx(qproto)
    assert isinstance(q, rnnfast.LSTM) and q.weight_dtype == "int8" and q.dtype == F32
    assert (q.num_layers, q.num_directions, q.input_size, q.hidden_size, q.bias) == (1, D, I, H, True)
    p = q.parameters()
    limit = 64 if reduce_range else 127
    for sfx, (w_ih, s_ih, w_hh, s_hh) in _expected_from_quantize_dynamic(qproto, 0, D, H).items():
        for name, value in ((f"weight_ih_l0{sfx}", w_ih), (f"weight_ih_l0{sfx}_scale", s_ih),
                            (f"weight_hh_l0{sfx}", w_hh), (f"weight_hh_l0{sfx}_scale", s_hh)):
            assert p[name].dtype == value.dtype and np.array_equal(p[name], value), name
        assert np.abs(w_ih).max() <= limit and np.abs(w_hh).max() <= limit
        # the biases are the float model's
        fp = m.parameters()
        np.testing.assert_array_equal(p[f"bias_ih_l0{sfx}"], fp[f"bias_ih_l0{sfx}"])
        np.testing.assert_array_equal(p[f"bias_hh_l0{sfx}"], fp[f"bias_hh_l0{sfx}"])

    rng = np.random.default_rng(50)
    x = rng.standard_normal((T, B, I)).astype(F32)
    h0, c0 = rng.standard_normal((2, D, B, H)).astype(F32)
    _check_steps(q, _session(qproto), ["x", "h0", "c0"], x, h0, c0, False)

    # to_onnx writes ONNX Runtime's values back (per-row scales), exactly.
    again = rnnfast.from_onnx(rnnfast.to_onnx(q))
    for name, value in q.state_dict().items():
        assert np.array_equal(again.state_dict()[name], value), name


def test_from_onnx_int8_against_rnnfast_quantize(tmp_path):
    """quantize_dynamic(per_channel=True) and rnnfast.quantize round the same weights by the same rule up to
    how the scale is rounded (float64 then float32 against float32 division): the imported int8 values are
    within one of rnnfast's own, almost all equal, and the scales within a float32 ulp."""
    _onnx_and_ort()
    I, H, D = 32, 24, 2
    m = _lstm(I, H, 1, D, False, True, seed=9)
    ours = rnnfast.quantize(m, "int8").state_dict()
    theirs = rnnfast.from_onnx(_quantize_dynamic(rnnfast.to_onnx(m), tmp_path, per_channel=True)).state_dict()
    assert list(ours) == list(theirs)
    equal = total = 0
    for name, value in ours.items():
        if name.endswith("_scale"):
            np.testing.assert_allclose(theirs[name], value, rtol=2 ** -23, atol=0)
        elif value.dtype == np.int8:
            diff = np.abs(theirs[name].astype(int) - value)
            assert diff.max() <= 1, name
            equal += int((diff == 0).sum())
            total += diff.size
        else:
            np.testing.assert_array_equal(theirs[name], value)
    assert equal >= 0.99 * total


@pytest.mark.parametrize("per_channel", [False, True])
def test_torch_export_quantize_dynamic_from_onnx(per_channel, tmp_path):
    """torch.nn.LSTM (2 layers, bidirectional, batch_first) -> torch.onnx.export -> quantize_dynamic ->
    from_onnx: one stacked int8 model, batch-first, as close to the torch module as ONNX Runtime is."""
    torch = torch_or_skip()
    _onnx_and_ort()
    L, D, I, H, T, B = 2, 2, 12, 16, 15, 3
    module = torch_module(torch, "lstm", I, H, L, D, True, True, "float32", seed=11).eval()
    rng = np.random.default_rng(60)
    x = rng.standard_normal((B, T, I)).astype(F32)
    h0, c0 = rng.standard_normal((2, L * D, B, H)).astype(F32)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0))), f,
                              dynamo=False, opset_version=14, input_names=["x", "h0", "c0"],
                              output_names=["out", "h_n", "c_n"])
        except Exception as e:  # the exporter needs packages this machine may lack
            pytest.skip(f"torch.onnx.export cannot run here: {e}")
    qproto = _quantize_dynamic(f.getvalue(), tmp_path, per_channel=per_channel)
    assert len(_quantized_nodes(qproto)) == L
    q = rnnfast.from_onnx(qproto)
    assert isinstance(q, rnnfast.LSTM), "a torch stack must read back as one stacked model"
    assert (q.num_layers, q.num_directions, q.batch_first, q.weight_dtype) == (L, D, True, "int8")
    theirs = _session(qproto).run(None, {"x": x, "h0": h0, "c0": c0})
    out, (h_n, c_n) = q(x, (h0, c0))
    with torch.no_grad():
        ref = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    reference = [ref[0].numpy(), ref[1][0].numpy(), ref[1][1].numpy()]
    _assert_as_close_to_float([out, h_n, c_n], theirs, reference)


def test_quantize_dynamic_partial_and_gru_graphs(tmp_path):
    """A stack whose second layer quantize_dynamic was told to leave in float is two models (an int8 and a
    float LSTM), not one; a GRU, which ONNX Runtime never quantizes, reads back as the float GRU it is."""
    _onnx_and_ort()
    I, H = 6, 8
    m = _lstm(I, H, 2, 2, False, True, seed=12)
    qproto = _quantize_dynamic(rnnfast.to_onnx(m), tmp_path, nodes_to_exclude=["lstm_l1"])
    assert [n.op_type for n in qproto.graph.node if "LSTM" in n.op_type] == ["DynamicQuantizeLSTM", "LSTM"]
    models = rnnfast.from_onnx(qproto)
    assert isinstance(models, dict) and len(models) == 2
    kinds = sorted((mm.weight_dtype, mm.input_size) for mm in models.values())
    assert kinds == [("float32", 2 * H), ("int8", I)]

    gru = rnnfast.GRU(I, H, seed=13)
    qproto = _quantize_dynamic(rnnfast.to_onnx(gru), tmp_path)
    assert not _quantized_nodes(qproto)
    back = rnnfast.from_onnx(qproto)
    assert back.weight_dtype == "float32"
    for name, value in gru.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value)


# ----------------------------------------------------------------------------------------------------
# Refusals
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["gru", "rnn_tanh", "rnn_relu"])
def test_to_onnx_refuses_int8_gru_and_rnn(cell):
    cls = rnnfast.GRU if cell == "gru" else rnnfast.RNN
    kw = {} if cell == "gru" else {"nonlinearity": cell[4:]}
    q = rnnfast.quantize(cls(3, 4, **kw), "int8")
    with pytest.raises(ValueError, match="quantized to int8: ONNX has no quantized recurrent operator.*"
                                         "only the LSTM.*Export the float model"):
        rnnfast.to_onnx(q)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_to_onnx_refuses_bf16(cell):
    cls = {"lstm": rnnfast.LSTM, "gru": rnnfast.GRU}.get(cell, rnnfast.RNN)
    q = rnnfast.quantize(cls(3, 4), "bf16")
    with pytest.raises(ValueError, match="quantized to bf16: no ONNX or ONNX Runtime operator computes it.*"
                                         "opset 22.*Export the float model"):
        rnnfast.to_onnx(q)


def _quantized_graph(tmp_path, D=1, per_channel=True):
    """A one-layer quantize_dynamic graph, its DynamicQuantizeLSTM node and initializers by name."""
    _onnx_and_ort()
    qproto = _quantize_dynamic(rnnfast.to_onnx(_lstm(3, 4, 1, D, seed=14)), tmp_path, per_channel=per_channel)
    node = _quantized_nodes(qproto)[0]
    node.name = "my_qlstm"
    return qproto, node, {t.name: t for t in qproto.graph.initializer}


def _replace(inits, name, value):
    from onnx import numpy_helper

    inits[name].CopyFrom(numpy_helper.from_array(np.asarray(value), name))


def _refusal_cases():
    # (label, edit(proto, node, inits), exception, pattern)
    def uint8_weights(p, n, inits):
        from onnx import numpy_helper

        w = numpy_helper.to_array(inits[n.input[1]])
        _replace(inits, n.input[1], (w.astype(np.int16) + 128).astype(np.uint8))
        _replace(inits, n.input[9], np.full((1, 16), 128, np.uint8))

    def nonzero_zero_point(p, n, inits):
        z = np.zeros((1, 16), np.int8)
        z[0, 3] = 5
        _replace(inits, n.input[11], z)

    def minus_128(p, n, inits):
        from onnx import numpy_helper

        w = numpy_helper.to_array(inits[n.input[2]]).copy()
        w[0, 0, 0] = -128
        _replace(inits, n.input[2], w)

    def negative_scale(p, n, inits):
        from onnx import numpy_helper

        s = numpy_helper.to_array(inits[n.input[8]]).copy()
        s[0, 1] = -s[0, 1]
        _replace(inits, n.input[8], s)

    def nan_scale(p, n, inits):
        _replace(inits, n.input[10], np.full((1, 16), np.nan, F32))

    def scale_shape(p, n, inits):
        _replace(inits, n.input[8], np.ones((16,), F32))

    def zero_point_shape(p, n, inits):
        _replace(inits, n.input[9], np.zeros((1,), np.int8))

    def scale_from_input(p, n, inits):
        n.input[10] = "x"

    def missing_zero_point(p, n, inits):
        n.input[11] = ""

    def float_weights(p, n, inits):
        from onnx import numpy_helper

        _replace(inits, n.input[1], numpy_helper.to_array(inits[n.input[1]]).astype(F32))

    def attribute(name, value):
        def edit(p, n, inits):
            from onnx import helper

            n.attribute.append(helper.make_attribute(name, value))
        return edit

    return [
        ("uint8 weights", uint8_weights, NotImplementedError, r"input W .* uint8 weights.*zero point 0"),
        ("non-zero zero point", nonzero_zero_point, NotImplementedError,
         r"R_zero_point .* non-zero zero points \(1 of 16\).*symmetric"),
        ("-128", minus_128, NotImplementedError, r"input R .* holds -128.*\[-127, 127\]"),
        ("negative scale", negative_scale, ValueError, "W_scale .* finite and non-negative"),
        ("NaN scale", nan_scale, ValueError, "R_scale .* finite and non-negative"),
        ("scale shape", scale_shape, ValueError, r"W_scale .* shape \(16,\); expected \(D,\)"),
        ("zero point shape", zero_point_shape, ValueError, "W_zero_point .* must have the shape of W_scale"),
        ("scale not constant", scale_from_input, ValueError, "R_scale .* not a constant"),
        ("zero point missing", missing_zero_point, ValueError, "no input R_zero_point"),
        ("float weights", float_weights, TypeError, "input W .* float32; the operator takes int8"),
        ("layout", attribute("layout", 1), NotImplementedError, r"attribute\(s\) \['layout'\]"),
        ("clip", attribute("clip", 3.0), NotImplementedError, "clip"),
        ("input_forget", attribute("input_forget", 1), NotImplementedError, "input_forget"),
    ]


@pytest.mark.parametrize("case", _refusal_cases(), ids=lambda c: c[0])
def test_from_onnx_refuses_what_an_int8_layer_cannot_hold(case, tmp_path):
    label, edit, exc, pattern = case
    qproto, node, inits = _quantized_graph(tmp_path)
    edit(qproto, node, inits)
    with pytest.raises(exc, match=pattern) as info:
        rnnfast.from_onnx(qproto)
    assert "DynamicQuantizeLSTM node 'my_qlstm'" in str(info.value)   # the node is named too


def test_from_onnx_reverse_quantized_lstm_refused(tmp_path):
    """direction='reverse', which DynamicQuantizeLSTM runs and rnnfast does not (as for the float LSTM)."""
    _onnx_and_ort()
    from onnx import helper

    qproto, node, _ = _quantized_graph(tmp_path)
    for a in node.attribute:
        if a.name == "direction":
            a.CopyFrom(helper.make_attribute("direction", "reverse"))
    with pytest.raises(NotImplementedError, match="direction='reverse'"):
        rnnfast.from_onnx(qproto)


def test_from_onnx_per_tensor_zero_point_and_other_domains(tmp_path):
    """A per-tensor int8 model with a non-zero zero point (ONNX Runtime runs it) is refused; a node named
    DynamicQuantizeLSTM in another domain is not ONNX Runtime's and is not read."""
    qproto, node, inits = _quantized_graph(tmp_path, per_channel=False)
    _replace(inits, node.input[9], np.array([3], np.int8))
    _session(qproto)   # valid for ONNX Runtime
    with pytest.raises(NotImplementedError, match=r"W_zero_point .* non-zero zero points \(1 of 1\)"):
        rnnfast.from_onnx(qproto)
    qproto, node, _ = _quantized_graph(tmp_path)
    node.domain = "my.domain"
    with pytest.raises(ValueError, match="no RNN, LSTM or GRU node, nor ONNX Runtime's DynamicQuantizeLSTM"):
        rnnfast.from_onnx(qproto)


@pytest.mark.parametrize("per_channel", [False, True])
def test_from_onnx_refuses_asymmetric_weights_of_quantize_dynamic(per_channel, tmp_path):
    """quantize_dynamic(extra_options={'WeightSymmetric': False}) writes int8 weights with non-zero zero
    points, which an rnnfast int8 layer cannot hold exactly: refused, not requantized."""
    _onnx_and_ort()
    qproto = _quantize_dynamic(rnnfast.to_onnx(_lstm(3, 4, 1, 2, seed=15)), tmp_path, per_channel=per_channel,
                               extra_options={"WeightSymmetric": False})
    with pytest.raises(NotImplementedError, match="W_zero_point .* holds non-zero zero points.*WeightSymmetric"):
        rnnfast.from_onnx(qproto)
