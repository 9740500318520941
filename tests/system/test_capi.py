"""The C API (rnnfast/rnnfast.h) gives the Python layer's results bit for bit, on the files rnnfast.save writes.

Each test saves a layer with rnnfast.save, runs the C driver ``rnnfast_capi_driver`` (tests/capi/capi_driver.c, a C
program linked with the library as a user's is) on raw float32 inputs, and compares its raw outputs with the
Python layer's, byte for byte: the forward (every cell, cell variants, int8 and bf16 layers, several layers,
both directions and 'reverse', batch_first, initial states, unsorted lengths) and the stepper (step by step and
in chunks). And a few refusals end to end (the C++ tests, tests/cpp/test_capi*.cpp, cover bad input in depth).

The driver is built by CMake with ``-DRNNFAST_BUILD_TESTS=ON`` (the C API is on by default outside a wheel build);
point ``RNNFAST_CAPI_DRIVER`` at it (.ci/capi does). Without it these tests are skipped.
``RNNFAST_CAPI_EMULATOR`` (e.g. ``qemu-aarch64``) runs a cross-built driver under an emulator, against the Python
layer on this machine's kernels (``RNNFAST_ISA`` then names the Python layer's, not the driver's). aarch64's NEON
kernels give the bits of x86-64's AVX2 and AVX-512 kernels (both fuse multiply-adds; the generic x86 path does
not) for PyTorch's cells and int8/bf16, so .ci/capi compares them with ``RNNFAST_ISA=avx2``; the LSTM's and GRU's
cell variants run their gate arithmetic differently there (measured: about 1e-7 relative, 1 or 2 ulps of the
largest output), so under an emulator those are compared within ``EMULATED_VARIANT_TOLERANCE``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnfast

DRIVER = os.environ.get("RNNFAST_CAPI_DRIVER", "")
EMULATOR = shlex.split(os.environ.get("RNNFAST_CAPI_EMULATOR", ""))

pytestmark = pytest.mark.skipif(
    not (DRIVER and Path(DRIVER).is_file()),
    reason="set RNNFAST_CAPI_DRIVER to a built rnnfast_capi_driver (cmake -DRNNFAST_BUILD_TESTS=ON; .ci/capi does)",
)


def run_driver(*args, expect_ok=True):
    env = dict(os.environ)
    if EMULATOR:  # RNNFAST_ISA names the Python layer's instruction set, which the emulated driver may not have
        env.pop("RNNFAST_ISA", None)
    proc = subprocess.run(EMULATOR + [DRIVER, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)
    if expect_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


#: Relative to the largest magnitude of the compared array (see the module's docstring).
EMULATED_VARIANT_TOLERANCE = 1e-6


def same_bits(got: np.ndarray, want: np.ndarray, model=None) -> bool:
    want = np.ascontiguousarray(want, dtype=np.float32)
    if got.shape != want.shape:
        return False
    if EMULATOR and model is not None and model.is_variant and not isinstance(model, rnnfast.RNN):
        scale = float(np.abs(want).max()) if want.size else 0.0
        return bool(np.all(np.abs(got - want) <= EMULATED_VARIANT_TOLERANCE * scale))
    return got.view(np.uint32).tobytes() == want.view(np.uint32).tobytes()


def read(path: Path, shape) -> np.ndarray:
    return np.fromfile(path, dtype=np.float32).reshape(shape)


# The layers, by a readable id: (constructor, kwargs, weight_dtype or None).
MODELS = {
    "rnn_tanh": (rnnfast.RNN, {}, None),
    "rnn_relu_2layers_bidir": (rnnfast.RNN, {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}, None),
    "lstm": (rnnfast.LSTM, {}, None),
    "lstm_2layers_bidir_batch_first": (rnnfast.LSTM, {"num_layers": 2, "bidirectional": True, "batch_first": True}, None),
    "lstm_no_bias_reverse": (rnnfast.LSTM, {"bias": False, "direction": "reverse"}, None),
    "gru": (rnnfast.GRU, {}, None),
    "gru_3layers": (rnnfast.GRU, {"num_layers": 3}, None),
    "gru_bidir": (rnnfast.GRU, {"bidirectional": True}, None),
    # Cell variants (format version 3).
    "lstm_proj_peepholes_2layers": (rnnfast.LSTM, {"proj_size": 3, "peepholes": True, "num_layers": 2}, None),
    "lstm_proj_bidir": (rnnfast.LSTM, {"proj_size": 2, "bidirectional": True}, None),
    "lstm_clip_input_forget": (rnnfast.LSTM, {"clip": 0.5, "input_forget": True}, None),
    "lstm_activations": (rnnfast.LSTM, {"activations": ["hard_sigmoid", rnnfast.Activation("scaled_tanh", 0.7, 1.3),
                                                        "softsign"]}, None),
    "gru_reset_before": (rnnfast.GRU, {"reset_after": False, "num_layers": 2}, None),
    "gru_keras_acts_reverse": (rnnfast.GRU, {"activation": "elu", "recurrent_activation": "hard_sigmoid",
                                             "direction": "reverse"}, None),
    "rnn_leaky": (rnnfast.RNN, {"nonlinearity": rnnfast.Activation("leaky_relu", alpha=0.2)}, None),
    "rnn_tanh_relu_bidir": (rnnfast.RNN, {"activations": [["tanh"], ["relu"]], "bidirectional": True}, None),
    "rnn_sigmoid_tanh_bidir": (rnnfast.RNN, {"activations": [["sigmoid"], ["tanh"]], "num_layers": 2,
                                             "bidirectional": True}, None),
    # Quantized layers.
    "lstm_int8": (rnnfast.LSTM, {"num_layers": 2}, "int8"),
    "gru_bf16_bidir": (rnnfast.GRU, {"bidirectional": True}, "bf16"),
    "rnn_relu_int8_reverse": (rnnfast.RNN, {"nonlinearity": "relu", "direction": "reverse"}, "int8"),
    "lstm_bf16_batch_first": (rnnfast.LSTM, {"batch_first": True}, "bf16"),
    "gru_int8": (rnnfast.GRU, {}, "int8"),
}
INPUT, HIDDEN = 5, 6


def make_model(name: str, seed: int = 0):
    cls, kwargs, weight_dtype = MODELS[name]
    model = cls(INPUT, HIDDEN, seed=seed, **kwargs)
    return rnnfast.quantize(model, weight_dtype) if weight_dtype else model


def sizes(model):
    D = model.num_directions
    R = model.state_size
    return model.num_layers * D, D * R, R


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("case", ["plain", "state_and_lengths"])
def test_forward_equals_the_python_layer(tmp_path, name, case):
    model = make_model(name)
    rnnfast.save(tmp_path / "m.npz", model)
    rng = np.random.default_rng(1)
    T, B = 7, 4
    LD, W, R = sizes(model)
    lstm = isinstance(model, rnnfast.LSTM)
    x = rng.standard_normal((B, T, INPUT) if model.batch_first else (T, B, INPUT)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    options, state, lengths = [], None, None
    if case == "state_and_lengths":
        h0 = rng.standard_normal((LD, B, R)).astype(np.float32)
        c0 = rng.standard_normal((LD, B, HIDDEN)).astype(np.float32)
        lengths = np.array([3, 7, 0, 5], dtype=np.int64)  # unsorted, with an empty sequence
        h0.tofile(tmp_path / "h0.bin")
        lengths.tofile(tmp_path / "lengths.bin")
        options += ["--h0", tmp_path / "h0.bin", "--lengths", tmp_path / "lengths.bin"]
        if lstm:
            c0.tofile(tmp_path / "c0.bin")
            options += ["--c0", tmp_path / "c0.bin"]
        state = (h0, c0) if lstm else h0
    run_driver("forward", tmp_path / "m.npz", T, B, tmp_path / "x.bin", tmp_path, *options)
    out, h_n = model(x, state, lengths=lengths)
    if lstm:
        h_n, c_n = h_n
        assert same_bits(read(tmp_path / "c_n.bin", c_n.shape), c_n, model)
    assert same_bits(read(tmp_path / "out.bin", out.shape), out, model)
    assert same_bits(read(tmp_path / "h_n.bin", h_n.shape), h_n, model)


@pytest.mark.parametrize("name", sorted(n for n, (_, kw, _) in MODELS.items()
                                        if not kw.get("bidirectional") and kw.get("direction") != "reverse"
                                        and not any(isinstance(a, list) for a in kw.get("activations", []))))
@pytest.mark.parametrize("chunk", [1, 3])
def test_stepper_equals_the_python_stepper(tmp_path, name, chunk):
    model = make_model(name)
    if chunk > 1 and model.batch_first:
        pytest.skip("the driver's chunks are time-major")
    rnnfast.save(tmp_path / "m.npz", model)
    T, B = 8, 3
    x = np.random.default_rng(2).standard_normal((T, B, INPUT)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    run_driver("stepper", tmp_path / "m.npz", T, B, tmp_path / "x.bin", tmp_path, "--chunk", chunk)
    stepper = model.stepper(batch=B)
    want = np.stack([stepper.step(x[t]) for t in range(T)])
    assert same_bits(read(tmp_path / "out.bin", want.shape), want, model)
    state = stepper.state
    h, c = state if isinstance(model, rnnfast.LSTM) else (state, None)
    assert same_bits(read(tmp_path / "h.bin", h.shape), h, model)
    if c is not None:
        assert same_bits(read(tmp_path / "c.bin", c.shape), c, model)
    if not model.batch_first:  # and the layer's forward over the whole sequence: the same bits
        assert same_bits(want, model(x)[0])


def test_results_do_not_depend_on_the_thread_count(tmp_path):
    model = rnnfast.LSTM(INPUT, 64, num_layers=2, bidirectional=True, seed=3)
    rnnfast.save(tmp_path / "m.npz", model)
    T, B = 9, 16
    x = np.random.default_rng(3).standard_normal((T, B, INPUT)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    outs = []
    for threads in (1, 2):
        run_driver("forward", tmp_path / "m.npz", T, B, tmp_path / "x.bin", tmp_path, "--threads", threads)
        outs.append(read(tmp_path / "out.bin", (T, B, 128)))
    assert same_bits(outs[0], outs[1]) and same_bits(outs[0], model(x)[0])


def test_an_empty_sequence_passes_the_state_through(tmp_path):
    model = rnnfast.quantize(rnnfast.GRU(INPUT, HIDDEN, seed=4), "int8")
    rnnfast.save(tmp_path / "m.npz", model)
    (tmp_path / "x.bin").write_bytes(b"")
    h0 = np.random.default_rng(4).standard_normal((1, 2, HIDDEN)).astype(np.float32)
    h0.tofile(tmp_path / "h0.bin")
    run_driver("forward", tmp_path / "m.npz", 0, 2, tmp_path / "x.bin", tmp_path, "--h0", tmp_path / "h0.bin")
    assert same_bits(read(tmp_path / "h_n.bin", h0.shape), model(np.zeros((0, 2, INPUT), np.float32), h0)[1])


def test_info_reports_the_model(tmp_path):
    rnnfast.save(tmp_path / "m.npz", rnnfast.LSTM(INPUT, HIDDEN, num_layers=2, proj_size=2, bidirectional=True))
    info = dict(line.split() for line in run_driver("info", tmp_path / "m.npz").stdout.splitlines())
    assert info == {"cell": "1", "input_size": "5", "hidden_size": "6", "proj_size": "2", "state_size": "2",
                    "output_size": "4", "num_layers": "2", "num_directions": "2", "num_states": "4", "direction": "2",
                    "weight_dtype": "0", "batch_first": "0", "bias": "1", "has_cell_state": "1", "is_variant": "1"}


def refusal(tmp_path, path) -> str:
    proc = run_driver("info", path, expect_ok=False)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    return proc.stderr


def test_refuses_damaged_and_unsupported_files(tmp_path):
    model = rnnfast.GRU(INPUT, HIDDEN, seed=5)
    good = tmp_path / "m.npz"
    rnnfast.save(good, model)
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    assert "RNNFAST_ERR_INVALID_MODEL" in refusal(tmp_path, tmp_path / "truncated.npz")
    # A flipped byte inside a parameter's data: its CRC-32 no longer matches.
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    assert "RNNFAST_ERR_INVALID_MODEL" in refusal(tmp_path, tmp_path / "flipped.npz")
    # np.savez_compressed of the same entries: a valid model rnnfast.load reads, whose deflated entries the C API
    # does not.
    with zipfile.ZipFile(good) as z:
        entries = {name[:-4]: np.load(z.open(name)) for name in z.namelist()}
    np.savez_compressed(tmp_path / "compressed.npz", **entries)
    rnnfast.load(tmp_path / "compressed.npz")
    err = refusal(tmp_path, tmp_path / "compressed.npz")
    assert "RNNFAST_ERR_UNSUPPORTED" in err and "compressed" in err
    # float64 layers: refused.
    rnnfast.save(tmp_path / "f64.npz", rnnfast.LSTM(INPUT, HIDDEN, dtype="float64"))
    err = refusal(tmp_path, tmp_path / "f64.npz")
    assert "RNNFAST_ERR_UNSUPPORTED" in err and "float64" in err
    assert "RNNFAST_ERR_IO" in refusal(tmp_path, tmp_path / "does-not-exist.npz")


def test_a_bidirectional_model_cannot_step(tmp_path):
    rnnfast.save(tmp_path / "m.npz", rnnfast.GRU(INPUT, HIDDEN, bidirectional=True))
    np.zeros((1, 1, INPUT), np.float32).tofile(tmp_path / "x.bin")
    proc = run_driver("stepper", tmp_path / "m.npz", 1, 1, tmp_path / "x.bin", tmp_path, expect_ok=False)
    assert proc.returncode == 1 and "RNNFAST_ERR_UNSUPPORTED" in proc.stderr and "bidirectional" in proc.stderr
