"""The API of reduced precision: rnnfast.quantize (a new layer of the same class, the original untouched),
weight_dtype on every layer, the quantized parameters (names, dtypes, read-only, load_state_dict), the same
call signature as the float layer, inference only, bad input, pickling, the stepper, rnnfast.isa(weight_dtype),
and save/load in format version 2 (version 1 files still load). The numbers: tests/kernels/test_reduced_*.py."""

from __future__ import annotations

import copy
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import rnnfast
from rnnfast import _core, nn
from rnnfast import reference as R

from helpers.cells import CELLS, GATES
from helpers.layer_harness import make

F32 = np.float32
WEIGHT_DTYPES = ["int8", "bf16"]
I, H = 5, 6


def model_of(cell, seed=0, **kw):
    return make(cell, I, H, seed=seed, **kw)


def assert_same_results(a, b, x, state=None):
    out_a, s_a = a(x, state)
    out_b, s_b = b(x, state)
    np.testing.assert_array_equal(out_a, out_b)
    for u, v in zip(s_a if isinstance(s_a, tuple) else (s_a,), s_b if isinstance(s_b, tuple) else (s_b,)):
        np.testing.assert_array_equal(u, v)


def x_for(m, T=4, B=3, seed=1):
    shape = (B, T, m.input_size) if m.batch_first else (T, B, m.input_size)
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


# ----------------------------------------------------------------------------------------------------
# What quantize returns
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_quantize_returns_a_new_layer_of_the_same_class_and_leaves_the_model_alone(cell, weight_dtype):
    m = model_of(cell, num_layers=2, bidirectional=True, batch_first=True)
    before = m.state_dict()
    live = m.parameters()
    q = rnnfast.quantize(m, weight_dtype)
    assert type(q) is type(m) and q is not m
    for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional", "mode"):
        assert getattr(q, attr) == getattr(m, attr), attr
    assert q.weight_dtype == weight_dtype and q.dtype == F32
    assert m.weight_dtype == "float32" and m.dtype == F32
    for name, value in m.parameters().items():
        assert value is live[name]
        np.testing.assert_array_equal(value, before[name])
    # The float model still trains: nothing of it was shared or marked.
    out, _ = m.forward(x_for(m), training=True)
    m.backward(np.ones_like(out))
    assert f"weight_dtype='{weight_dtype}'" in repr(q) and "weight_dtype" not in repr(m)


@pytest.mark.parametrize("cell", CELLS)
def test_parameters_int8(cell):
    m = model_of(cell, num_layers=2, bidirectional=True)
    q = rnnfast.quantize(m, "int8")
    params, floats = q.parameters(), m.parameters()
    expected = []
    for name in floats:
        expected += [name, name + "_scale"] if name.startswith("weight") else [name]
    assert list(params) == expected == list(q.state_dict())
    for name, w in floats.items():
        if name.startswith("bias"):
            assert params[name].dtype == F32
            np.testing.assert_array_equal(params[name], w)
            continue
        values, scales = params[name], params[name + "_scale"]
        assert values.dtype == np.int8 and values.shape == w.shape
        assert scales.dtype == F32 and scales.shape == (w.shape[0],)
        assert values.min() >= -127 and values.max() <= 127
        # Row n stands for scale[n] * values[n]: within half a step of the float weights.
        back = scales[:, None].astype(np.float64) * values
        assert np.all(np.abs(back - w) <= scales[:, None] / 2 * (1 + 2.0 ** -14))
        for got, want in zip((values, scales), R.quantize_int8_rows(w)):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cell", CELLS)
def test_parameters_bf16(cell):
    m = model_of(cell, bias=False)
    q = rnnfast.quantize(m, "bf16")
    params = q.parameters()
    assert list(params) == list(m.parameters()) == ["weight_ih_l0", "weight_hh_l0"]
    for name, w in m.parameters().items():
        assert params[name].dtype == np.uint16
        np.testing.assert_array_equal(params[name], R.bf16_round(w))
        assert np.all(np.abs(R.bf16_to_float32(params[name]) - w) <= np.abs(w) * 2.0 ** -8)


def test_float64_models_are_quantized_from_their_weights_rounded_to_float32():
    m64 = model_of("lstm", num_layers=2, dtype="float64", seed=3)
    m32 = model_of("lstm", num_layers=2, seed=4)
    m32.load_state_dict(m64.state_dict())  # cast to float32
    for weight_dtype in WEIGHT_DTYPES:
        q64, q32 = rnnfast.quantize(m64, weight_dtype), rnnfast.quantize(m32, weight_dtype)
        assert q64.dtype == F32 and q64.weight_dtype == weight_dtype
        for name, value in q32.state_dict().items():
            np.testing.assert_array_equal(q64.state_dict()[name], value)
        assert_same_results(q64, q32, x_for(m32))


def test_parameters_are_read_only_and_state_dict_gives_copies():
    q = rnnfast.quantize(model_of("gru"), "int8")
    for name, value in q.parameters().items():
        with pytest.raises(ValueError, match="read-only"):
            value[...] = 0
    sd = q.state_dict()
    sd["weight_ih_l0"][...] = 0  # a copy: the layer is unchanged
    assert q.parameters()["weight_ih_l0"].any()


def test_all_zero_weight_rows_are_documented_behaviour():
    """An all-zero weight row gets scale 0 and zeros: its products are exactly zero, as in float32."""
    m = model_of("lstm")
    w = m.parameters()["weight_hh_l0"]
    w[:H] = 0
    q = rnnfast.quantize(m, "int8")
    assert not q.parameters()["weight_hh_l0_scale"][:H].any() and not q.parameters()["weight_hh_l0"][:H].any()
    out, _ = q(x_for(m))
    assert np.isfinite(out).all()
    assert np.abs(out - m(x_for(m))[0]).max() < 0.02


# ----------------------------------------------------------------------------------------------------
# Calls
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
def test_the_call_signature_is_the_float_layers(weight_dtype):
    m = model_of("lstm", num_layers=2, batch_first=True, seed=5)
    q = rnnfast.quantize(m, weight_dtype)
    x = x_for(m, T=6, B=4)
    h0 = np.full((2, 4, H), 0.1, F32)
    out, (h_n, c_n) = q(x, (h0, None), lengths=[6, 2, 0, 5])
    assert out.dtype == F32 and out.shape == (4, 6, H) and h_n.shape == c_n.shape == (2, 4, H)
    np.testing.assert_array_equal(out[2], 0)
    np.testing.assert_array_equal(h_n[:, 2], h0[:, 2])
    # Array-likes and other dtypes are converted (float32 in and out); unbatched input works.
    out64, _ = q(x.astype(np.float64))
    np.testing.assert_array_equal(out64, q(x)[0])
    assert q(x.tolist())[0].dtype == F32
    out_u, (h_u, _) = q(x[0])
    assert out_u.shape == (6, H) and h_u.shape == (2, H)
    np.testing.assert_array_equal(out_u, q(x[:1])[0][0])
    assert_same_results(q, q, x)  # repeated calls: the same bits
    # forward(..., training=False) is the call
    np.testing.assert_array_equal(q.forward(x, training=False)[0], q(x)[0])


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_the_exact_input_fast_path_gives_the_general_paths_bits(cell, weight_dtype):
    """A time-major float32 C-contiguous input without state or lengths goes straight to the kernels
    (as for float layers); a zero state, lengths of T and a float64 copy take the general path."""
    q = rnnfast.quantize(model_of(cell, num_layers=3), weight_dtype)
    x = x_for(q, T=5, B=2)
    fast_out, fast_state = q(x)
    zeros = np.zeros((3, 2, H), F32)
    for general in (q(x, (zeros, zeros) if cell == "lstm" else zeros), q(x, lengths=[5, 5]),
                    q(x.astype(np.float64))):
        np.testing.assert_array_equal(general[0], fast_out)
        for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (general[1], fast_state))):
            np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_refused_as_by_the_float_layer():
    m = model_of("gru", num_layers=2)
    q = rnnfast.quantize(m, "int8")
    for args, kwargs in [
        ((np.zeros((3, 2, I + 1)),), {}),
        ((np.zeros((3, 2, I)), np.zeros((1, 2, H))), {}),
        ((np.zeros((3, 2, I)),), dict(lengths=[4, 1])),
        ((np.zeros((3, 2, I)), (np.zeros((2, 2, H)), np.zeros((2, 2, H)))), {}),
    ]:
        with pytest.raises((TypeError, ValueError)) as float_error:
            m(*args, **kwargs)
        with pytest.raises(type(float_error.value)) as q_error:
            q(*args, **kwargs)
        assert str(q_error.value) == str(float_error.value)
    with pytest.raises(TypeError, match="complex"):
        q(np.zeros((3, 2, I), complex))


# ----------------------------------------------------------------------------------------------------
# Inference only, bad input
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
def test_training_calls_are_refused(weight_dtype):
    q = rnnfast.quantize(model_of("lstm", num_layers=2), weight_dtype)
    x = x_for(q)
    for call in (lambda: q.forward(x, training=True), lambda: q.backward(np.zeros((4, 3, H))), q.zero_grad):
        with pytest.raises(RuntimeError, match=f"quantized to {weight_dtype} is inference-only"):
            call()
    for training_tool in (lambda: nn.SGD([q], lr=0.1), lambda: nn.Adam(q), lambda: nn.clip_grad_norm(q, 1.0),
                          lambda: nn.TruncatedBPTT(q, 2)):
        with pytest.raises(TypeError, match=f"quantized to {weight_dtype}.* is inference-only"):
            training_tool()


def test_bad_arguments_of_quantize():
    m = model_of("rnn_relu")
    with pytest.raises(TypeError, match="model must be an rnnfast RNN, LSTM or GRU layer, got Linear"):
        rnnfast.quantize(nn.Linear(3, 4), "int8")
    with pytest.raises(TypeError, match="weight_dtype"):
        rnnfast.quantize(m, np.int8)
    for bad in ("int4", "float16", "INT8", "float32"):
        with pytest.raises(ValueError, match=f"weight_dtype must be one of .*'{bad}'"):
            rnnfast.quantize(m, bad)
    q = rnnfast.quantize(m, "int8")
    for weight_dtype in WEIGHT_DTYPES:
        with pytest.raises(ValueError, match="already quantized.*'int8'"):
            rnnfast.quantize(q, weight_dtype)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["weight_ih_l1", "weight_hh_l0_reverse", "bias_hh_l0"])
def test_non_finite_parameters_are_refused_naming_them(bad, name):
    m = model_of("lstm", num_layers=2, bidirectional=True)
    m.parameters()[name][1] = bad
    for weight_dtype in WEIGHT_DTYPES:
        with pytest.raises(ValueError, match=f"{name} has .* NaN or infinite"):
            rnnfast.quantize(m, weight_dtype)


def test_values_beyond_float32_or_bfloat16_are_refused():
    m = model_of("gru", dtype="float64")
    m.parameters()["weight_hh_l0"][0, 0] = 1e39
    with pytest.raises(ValueError, match="weight_hh_l0 has values beyond float32's range"):
        rnnfast.quantize(m, "int8")
    m = model_of("gru")
    m.parameters()["weight_ih_l0"][0, 0] = 3.3999e38  # finite in float32, rounds to infinity in bfloat16
    with pytest.raises(ValueError, match="weight_ih_l0 has values beyond bfloat16's range"):
        rnnfast.quantize(m, "bf16")
    assert rnnfast.quantize(m, "int8").weight_dtype == "int8"  # int8 scales it like any other row


def test_int8_refuses_depths_whose_sums_could_overflow_int32():
    deepest = R.INT8_MAX_DEPTH
    assert deepest == 65793 and deepest * 255 * 128 <= 2 ** 31 - 1 < (deepest + 1) * 255 * 128
    assert rnnfast.quantize(rnnfast.RNN(deepest, 1, seed=0), "int8").weight_dtype == "int8"
    with pytest.raises(ValueError, match=f"weight_ih_l0 has {deepest + 1} columns.*int32.*'bf16'"):
        rnnfast.quantize(rnnfast.RNN(deepest + 1, 1, seed=0), "int8")
    assert rnnfast.quantize(rnnfast.RNN(deepest + 1, 1, seed=0), "bf16").weight_dtype == "bf16"


def test_converters_refuse_quantized_layers():
    """to_torch refuses every quantized layer; to_onnx writes an int8 LSTM (ONNX Runtime's DynamicQuantizeLSTM,
    tests/interop/test_onnx_quantized.py) and refuses the rest, naming why, before it needs onnx."""
    q = rnnfast.quantize(model_of("lstm"), "int8")
    with pytest.raises(ValueError, match="quantized to int8.*float model"):
        rnnfast.to_torch(q)
    for cell in ("gru", "rnn_tanh"):
        with pytest.raises(ValueError, match="quantized to int8: ONNX has no quantized recurrent operator"):
            rnnfast.to_onnx(rnnfast.quantize(model_of(cell), "int8"))
    for cell in ("lstm", "gru"):
        with pytest.raises(ValueError, match="quantized to bf16: no ONNX or ONNX Runtime operator computes it"):
            rnnfast.to_onnx(rnnfast.quantize(model_of(cell), "bf16"))


# ----------------------------------------------------------------------------------------------------
# load_state_dict, pickling, the stepper
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
def test_load_state_dict_moves_a_quantized_model_between_layers(weight_dtype):
    a = rnnfast.quantize(model_of("gru", num_layers=2, seed=1), weight_dtype)
    b = rnnfast.quantize(model_of("gru", num_layers=2, seed=2), weight_dtype)
    x = x_for(a)
    b(x)  # packs b's own weights, which the load must replace
    b.load_state_dict(a.state_dict())
    assert_same_results(a, b, x)
    for name, value in a.state_dict().items():
        assert b.parameters()[name].dtype == value.dtype and not b.parameters()[name].flags.writeable


def test_load_state_dict_refuses_what_quantization_cannot_give():
    q = rnnfast.quantize(model_of("lstm"), "int8")
    good = q.state_dict()
    x = x_for(q)
    want, _ = q(x)
    cases = {
        "float weights": ({"weight_ih_l0": good["weight_ih_l0"].astype(F32)}, TypeError, "dtype float32, expected int8"),
        "int16 weights": ({"weight_ih_l0": good["weight_ih_l0"].astype(np.int16)}, TypeError, "expected int8"),
        "-128": ({"weight_hh_l0": np.full_like(good["weight_hh_l0"], -128)}, ValueError, "weight_hh_l0 holds -128"),
        "negative scale": ({"weight_ih_l0_scale": -good["weight_ih_l0_scale"]}, ValueError, "weight_ih_l0_scale"),
        "NaN scale": ({"weight_hh_l0_scale": np.full(4 * H, np.nan, F32)}, ValueError, "weight_hh_l0_scale"),
        "missing scale": ({"weight_hh_l0_scale": None}, ValueError, "missing keys: 'weight_hh_l0_scale'"),
        "misshaped scale": ({"weight_hh_l0_scale": np.ones(3, F32)}, ValueError, "weight_hh_l0_scale"),
    }
    for label, (change, error, message) in cases.items():
        sd = {**good, **change}
        sd = {k: v for k, v in sd.items() if v is not None}
        with pytest.raises(error, match=message):
            q.load_state_dict(sd)
        np.testing.assert_array_equal(q(x)[0], want, err_msg=f"{label}: nothing may change")
    b = rnnfast.quantize(model_of("lstm"), "bf16")
    sd = b.state_dict()
    sd["weight_ih_l0"] = sd["weight_ih_l0"].copy()
    sd["weight_ih_l0"][0, 0] = 0x7FC0  # a NaN
    with pytest.raises(ValueError, match="weight_ih_l0 holds 1 NaN or infinite bfloat16"):
        b.load_state_dict(sd)
    with pytest.raises(TypeError, match="dtype int8, expected uint16: the weights of a layer quantized to bf16"):
        b.load_state_dict(good)  # an int8 model's parameters
    with pytest.raises(ValueError, match="unexpected keys: 'weight_ih_l0_scale', 'weight_hh_l0_scale'"):
        b.load_state_dict({**b.state_dict(), **{k: v for k, v in good.items() if k.endswith("_scale")}})


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
def test_pickle_and_deepcopy(weight_dtype):
    q = rnnfast.quantize(model_of("lstm", num_layers=2, bidirectional=True), weight_dtype)
    x = x_for(q)
    q(x)  # with its native packs made: they are not pickled, and are remade
    for other in (pickle.loads(pickle.dumps(q)), copy.deepcopy(q)):
        assert other.weight_dtype == weight_dtype
        assert_same_results(q, other, x)
        assert not any(v.flags.writeable for k, v in other.parameters().items() if k.startswith("weight"))


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
def test_stepper_contract(weight_dtype):
    q = rnnfast.quantize(model_of("gru", num_layers=2), weight_dtype)
    s = q.stepper(batch=2)
    assert f"weight_dtype={weight_dtype}" in repr(s) and s.batch == 2
    x = x_for(q, T=5, B=2)
    want, want_h = q(x)
    got = np.stack([s.step(x[t]) for t in range(5)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(s.state, want_h)
    out = np.empty((2, H), F32)
    assert s.step(x[0], out=out) is out
    # The stepper keeps its own copy of the weights.
    q.load_state_dict(rnnfast.quantize(model_of("gru", num_layers=2, seed=9), weight_dtype).state_dict())
    s.reset()
    np.testing.assert_array_equal(np.stack([s.step(x[t]) for t in range(5)]), want)
    u = q.stepper(batch=None)
    assert u.step(x[0, 0]).shape == (H,)
    with pytest.raises(ValueError, match="x_t has shape"):
        s.step(np.zeros((3, I)))
    with pytest.raises(ValueError, match="bidirectional"):
        rnnfast.quantize(model_of("gru", bidirectional=True), weight_dtype).stepper()


def test_isa_of_a_weight_dtype():
    assert rnnfast.isa() == rnnfast.isa(None) == rnnfast.isa("float32") == rnnfast.isa("float64") == _core.isa()
    known = {"avx512_vnni", "avx512_bf16", "avx512", "avx2", "generic", "neon_dotprod", "neon"}
    for weight_dtype in WEIGHT_DTYPES:
        assert rnnfast.isa(weight_dtype) == _core.reduced_isa(weight_dtype)
        assert rnnfast.isa(weight_dtype) in known
    with pytest.raises(ValueError, match="weight_dtype must be None, 'float32', 'float64', 'int8' or 'bf16'"):
        rnnfast.isa("int4")
    with pytest.raises(TypeError, match="weight_dtype"):
        rnnfast.isa(8)


def test_environment_turns_the_reduced_extensions_off():
    """RNNFAST_REDUCED_EXTENSIONS=0 (read at import) makes the kernels use the plain path of their tier; the
    products stay bit-identical (the other tests compare both paths through the testing hook)."""
    import os
    import subprocess
    import sys

    code = "import rnnfast; print(rnnfast.isa('int8'), rnnfast.isa('bf16'))"
    env = dict(os.environ)
    env.pop("RNNFAST_REDUCED_EXTENSIONS", None)
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    env["RNNFAST_REDUCED_EXTENSIONS"] = "0"
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    extended = {"avx512_vnni", "avx512_bf16", "neon_dotprod"}
    assert not set(plain.stdout.split()) & extended, plain.stdout
    if not set(default.stdout.split()) & extended:
        pytest.skip(f"this CPU has none of the extensions (default paths: {default.stdout.strip()})")
    assert plain.stdout != default.stdout


def test_the_package_exports():
    assert "quantize" in rnnfast.__all__ and callable(rnnfast.quantize)
    for name in R.__all__:
        assert hasattr(R, name), name
    assert {"reduced_forward", "quantize_int8_rows", "bf16_round", "bf16_product", "int8_product"} <= set(R.__all__)


# ----------------------------------------------------------------------------------------------------
# save / load, format version 2
# ----------------------------------------------------------------------------------------------------


def saved_bytes(model) -> bytes:
    buf = io.BytesIO()
    rnnfast.save(buf, model)
    return buf.getvalue()


def members_of(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def archive_of(members: dict) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    buf.seek(0)
    return buf


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def meta_of(members: dict) -> dict:
    return json.loads(str(np.load(io.BytesIO(members["__rnnfast__.npy"]))[()]))


def with_meta(members: dict, meta: dict) -> dict:
    return {**members, "__rnnfast__.npy": npy(np.array(json.dumps(meta, sort_keys=True)))}


@pytest.mark.parametrize("weight_dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_save_load_round_trip_is_bit_identical(cell, weight_dtype, tmp_path):
    q = rnnfast.quantize(model_of(cell, num_layers=2, bidirectional=True, batch_first=True), weight_dtype)
    path = tmp_path / "q.npz"
    rnnfast.save(path, q)
    loaded = rnnfast.load(path)
    assert type(loaded) is type(q) and loaded.weight_dtype == weight_dtype and repr(loaded) == repr(q)
    for name, value in q.state_dict().items():
        got = loaded.state_dict()[name]
        assert got.dtype == value.dtype
        np.testing.assert_array_equal(got, value)
    assert_same_results(q, loaded, x_for(q))


def test_file_format_version_2_as_documented():
    q = rnnfast.quantize(model_of("lstm", bias=False), "int8")
    members = members_of(saved_bytes(q))
    meta = meta_of(members)
    assert meta["format_version"] == 2 and rnnfast.io.FORMAT_VERSION == 4  # versions 3 and 4 add cell options, models
    assert meta["config"]["weight_dtype"] == "int8" and meta["config"]["dtype"] == "float32"
    assert meta["parameters"]["weight_ih_l0"]["dtype"] == "int8"
    assert meta["parameters"]["weight_ih_l0_scale"] == {
        "shape": [4 * H], "dtype": "float32",
        "sha256": __import__("hashlib").sha256(q.parameters()["weight_ih_l0_scale"].tobytes()).hexdigest()}
    assert sorted(members) == sorted(n + ".npy" for n in ["__rnnfast__", "weight_ih_l0", "weight_ih_l0_scale",
                                                          "weight_hh_l0", "weight_hh_l0_scale"])
    b = meta_of(members_of(saved_bytes(rnnfast.quantize(model_of("gru"), "bf16"))))
    assert b["config"]["weight_dtype"] == "bf16" and b["parameters"]["weight_hh_l0"]["dtype"] == "uint16"
    assert "weight_hh_l0_scale" not in b["parameters"]
    f = meta_of(members_of(saved_bytes(model_of("gru", dtype="float64"))))
    assert f["config"]["weight_dtype"] == f["config"]["dtype"] == "float64"


@pytest.mark.parametrize("cell", CELLS)
def test_version_1_files_still_load(cell):
    """A version-1 file (before quantization: no weight_dtype) as rnnfast 0.1.0 wrote it."""
    m = model_of(cell, num_layers=2, dtype="float64")
    members = members_of(saved_bytes(m))
    meta = meta_of(members)
    meta["format_version"] = 1
    del meta["config"]["weight_dtype"]
    loaded = rnnfast.load(archive_of(with_meta(members, meta)))
    assert loaded.weight_dtype == "float64"
    assert_same_results(m, loaded, x_for(m).astype(np.float64))


def test_edited_quantized_files_are_refused():
    q = rnnfast.quantize(model_of("gru"), "int8")
    members = members_of(saved_bytes(q))
    meta = meta_of(members)

    def refused(members_, message):
        with pytest.raises(ValueError, match=message):
            rnnfast.load(archive_of(members_))

    # -128 with a matching checksum: a crafted file, refused by the value checks
    w = np.load(io.BytesIO(members["weight_hh_l0.npy"]))
    w[0, 0] = -128
    edited = json.loads(json.dumps(meta))
    edited["parameters"]["weight_hh_l0"]["sha256"] = __import__("hashlib").sha256(w.tobytes()).hexdigest()
    refused(with_meta({**members, "weight_hh_l0.npy": npy(w)}, edited), "weight_hh_l0 holds -128")
    # float weights under an int8 config
    w32 = np.load(io.BytesIO(members["weight_hh_l0.npy"])).astype(F32)
    refused({**members, "weight_hh_l0.npy": npy(w32)}, "weight_hh_l0.*dtype float32, expected int8")
    # a quantized config whose compute dtype is not float32
    edited = json.loads(json.dumps(meta))
    edited["config"]["dtype"] = "float64"
    refused(with_meta(members, edited), "dtype.*'float32' with weight_dtype 'int8'")
    # the other weight dtype
    edited = json.loads(json.dumps(meta))
    edited["config"]["weight_dtype"] = "bf16"
    refused(with_meta(members, edited), "unexpected.*weight_hh_l0_scale")
    # a newer version, named with this one
    edited = json.loads(json.dumps(meta))
    edited["format_version"] = 5
    refused(with_meta(members, edited), "format version 5 was written by a newer rnnfast.*up to 4")
    # a scale removed
    del members["weight_ih_l0_scale.npy"]
    refused(members, "missing 'weight_ih_l0_scale'")
