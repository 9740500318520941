"""Reduced precision at the task level (issue 14): the examples' trained models, quantized for inference.

The character model (relu RNN and LSTM) and the time-series forecaster are trained at small settings
(seeds fixed; about 3 s for the file on one core) and their RNN quantized with ``rnnfast.quantize``:

- next-character accuracy on the held-out text: int8 and bf16 within 1 percentage point (absolute) of
  float32;
- one-step forecast RMSE on unseen data: int8 and bf16 within 5% (relative) of float32.

Each criterion is also shown to fail on a deliberately damaged quantization (the quantized weights
scaled by 1.5), so that it can catch a quantization that is wrong. The figures at the examples'
default settings are in docs/guide/streaming.md (``rnnfast demo char_lstm``, ``rnnfast demo timeseries``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import rnnfast
from rnnfast.examples import char_rnn, timeseries

REDUCED = ("int8", "bf16")
ACCURACY_POINTS = 0.01  # next-character accuracy: within 1 percentage point of float32
RMSE_RELATIVE = 0.05    # forecast RMSE: within 5% of float32


def accuracy_failures(accuracy: dict) -> list:
    """The weight dtypes whose accuracy is more than 1 point from float32's, described."""
    return [f"{d}: {accuracy[d]:.2%} against float32 {accuracy['float32']:.2%}"
            for d in accuracy if d != "float32" and abs(accuracy[d] - accuracy["float32"]) > ACCURACY_POINTS]


def rmse_failures(rmse: dict) -> list:
    """The weight dtypes whose RMSE is more than 5% from float32's, described."""
    return [f"{d}: RMSE {rmse[d]:.4f} against float32 {rmse['float32']:.4f}"
            for d in rmse if d != "float32" and abs(rmse[d] / rmse["float32"] - 1) > RMSE_RELATIVE]


def damaged(layer, weight_dtype: str, factor: float = 1.5):
    """``layer`` quantized, then its quantized weights scaled by ``factor``: a broken quantization."""
    q = rnnfast.quantize(layer, weight_dtype)
    state = q.state_dict()
    for name, value in state.items():
        if weight_dtype == "int8" and name.endswith("_scale"):
            state[name] = value * np.float32(factor)                       # every int8 row's scale
        elif weight_dtype == "bf16" and name.startswith("weight"):
            w = (value.astype(np.uint32) << 16).view(np.float32) * np.float32(factor)
            state[name] = ((w.view(np.uint32) + 0x8000) >> 16).astype(np.uint16)  # back to bf16 bits
    q.load_state_dict(state)
    return q


# ---------------------------------------------------------------------------------------------------------
# Character model: next-character accuracy on the held-out text
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["rnn", "lstm"])
def char_result(request):
    # The whole article (1426 held-out windows: 1 point is 14 predictions), short windows, 3 epochs:
    # about 1.3 s for the LSTM on one core; held-out accuracy 36-41% over seeds 0-4 (42-48% at the defaults).
    return char_rnn.run(cell=request.param, seq_length=10, epochs=3, lr=0.01, generate=0, seed=0, verbose=False)


def test_char_model_quantized_keeps_its_next_character_accuracy(char_result):
    accuracy = char_result["held_out_accuracy"]
    assert set(accuracy) == {"float32", *REDUCED}
    assert accuracy["float32"] > 0.3  # it learned: chance is about 1 in 75, the commonest character 17%
    assert not accuracy_failures(accuracy), accuracy_failures(accuracy)


def test_char_model_figures_come_from_quantized_layers(char_result):
    model, (windows, labels) = char_result["model"], char_result["held_out"]
    assert model.rnn.weight_dtype == "float32"
    for dtype in REDUCED:
        q = model.quantized(dtype)
        assert q.rnn.weight_dtype == dtype and q.rnn is not model.rnn and q.dense is model.dense
        assert q.accuracy(windows, labels) == char_result["held_out_accuracy"][dtype]


@pytest.mark.parametrize("weight_dtype", REDUCED)
def test_char_model_criterion_fails_on_a_damaged_quantization(char_result, weight_dtype):
    model, (windows, labels) = char_result["model"], char_result["held_out"]
    broken = copy.copy(model)
    broken.rnn = damaged(model.rnn, weight_dtype)
    accuracy = {"float32": char_result["held_out_accuracy"]["float32"],
                weight_dtype: broken.accuracy(windows, labels)}
    assert accuracy_failures(accuracy), accuracy


# ---------------------------------------------------------------------------------------------------------
# Time series: one-step forecast RMSE on unseen data
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forecast_result():
    # 30 epochs (the defaults are 40): about 0.7 s on one core; the int8/bf16 RMSE moved by 0.02-0.6%
    # over seeds 0-4 at 15, 30 and 40 epochs.
    return timeseries.run(epochs=30, seed=0, verbose=False)


def test_forecaster_quantized_keeps_its_rmse(forecast_result):
    rmse = forecast_result["rmse_by_dtype"]
    assert set(rmse) == {"float32", *REDUCED}
    assert rmse["float32"] == forecast_result["rmse"] < 0.15  # it learned: the noise alone is 0.1
    assert not rmse_failures(rmse), rmse_failures(rmse)
    for dtype in REDUCED:  # the forecasts did change (the layers are quantized), by far less than the noise
        assert 0 < forecast_result["forecast_change_by_dtype"][dtype] < 0.02


@pytest.mark.parametrize("weight_dtype", REDUCED)
def test_forecaster_criterion_fails_on_a_damaged_quantization(forecast_result, weight_dtype):
    model, test = forecast_result["model"], forecast_result["test"]
    broken = copy.copy(model)
    broken.rnn = damaged(model.rnn, weight_dtype)
    rmse = {"float32": forecast_result["rmse"],
            weight_dtype: timeseries.rmse_after_warmup(broken.predict(test[:-1]), test)}
    assert rmse_failures(rmse), rmse


def test_char_model_refuses_a_held_out_part_too_short_for_a_window():
    with pytest.raises(ValueError, match="no held-out window"):
        char_rnn.run(text_chars=600, seq_length=5, held_out=0.0, epochs=1, verbose=False)
