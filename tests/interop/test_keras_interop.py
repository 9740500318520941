"""Keras 3 interop: SimpleRNN/LSTM/GRU layers (plain, Bidirectional, in an RNN wrapper) converted by
rnnfast.from_keras run with the same numbers, and every refusal names its reason. Skipped where Keras 3 is
not installed (the KERAS_BACKEND is set to torch in conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast

from helpers.cells import CELLS
from helpers.interop_checks import assert_close, states_of


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
        # the variants rnnfast computes (reset_after=False, activations, go_backwards) are tested in
        # test_variant_converters.py
        ("lstm gelu", lambda k: k.layers.LSTM(4, activation="gelu"), NotImplementedError, "activation"),
        ("gru mish", lambda k: k.layers.GRU(4, recurrent_activation="mish"), NotImplementedError,
         "recurrent_activation"),
        ("forward go_backwards", lambda k: k.layers.Bidirectional(k.layers.LSTM(4, go_backwards=True),
                                                                  backward_layer=k.layers.LSTM(4)),
         NotImplementedError, "go_backwards"),
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
