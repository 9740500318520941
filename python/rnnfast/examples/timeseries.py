"""Time series: forecast a noisy signal, then detect anomalies in a stream of it.

The signal is two sines (periods 50 and 13 steps) plus Gaussian noise of standard deviation 0.1, the
kind of sensor reading that an RNN at the edge watches. A GRU reads the series and a dense layer predicts
the next value at every step (many-to-many).

- Training: truncated backpropagation through time (:class:`rnnfast.nn.TruncatedBPTT`). The long
  training series is cut into parallel streams, walked in chunks of ``--chunk`` steps; the state is
  carried from chunk to chunk but the gradient stops at each chunk's start. The loop is written out
  rather than left to :func:`rnnfast.nn.fit`, which trains on whole sequences and starts every batch
  from a zero state (its progress line, :class:`rnnfast.nn.ProgressBar`, is used here all the same).
- Forecasting: one step ahead on unseen data, compared with the noise floor (no forecaster can beat the
  noise: its RMSE is 0.1) and with "tomorrow equals today"; then 50 steps ahead by feeding each forecast
  back in, compared with the clean signal. The one-step forecast is also made with the trained GRU
  quantized for inference (``rnnfast.quantize``: int8 and bf16 weights).
- Anomaly detection: an unseen stream with injected spikes and a stuck sensor is fed *one value at a
  time* to the GRU's stepper, as it would arrive on a device. A value is flagged when it differs from
  the forecast by more than ``--threshold`` times the forecast error's standard deviation on clean data,
  and the forecast is fed in its place, so that the model keeps following the normal signal.

    python examples/timeseries.py
    rnnfast demo timeseries --plot loss.png
"""

from __future__ import annotations

import copy
import time
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser

NOISE = 0.1


def clean_signal(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * t / 50) + 0.5 * np.sin(2 * np.pi * t / 13 + 1.0)


def noisy_signal(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
    t = np.arange(start, start + n)
    return (clean_signal(t) + NOISE * rng.standard_normal(n)).astype(np.float32)


def inject_anomalies(rng: np.random.Generator, series: np.ndarray, spikes: int = 6, stuck: int = 2,
                     stuck_len: int = 20) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Add spikes (one step, +-1) and stuck-sensor stretches (the value frozen); returns the new series
    and the anomalies as (first, last) step ranges, well apart and away from the start."""
    x = series.copy()
    n_events = spikes + stuck
    slots = np.sort(rng.choice(np.arange(2, len(x) // 60 - 1), size=n_events, replace=False)) * 60
    kinds = rng.permutation(["spike"] * spikes + ["stuck"] * stuck)
    events = []
    for at, kind in zip(slots, kinds):
        if kind == "spike":
            x[at] += rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.2)
            events.append((int(at), int(at)))
        else:
            x[at:at + stuck_len] = x[at]
            events.append((int(at), int(at + stuck_len - 1)))
    return x, events


def rmse_after_warmup(forecast: np.ndarray, series: np.ndarray, warmup: int = 100) -> float:
    """RMSE of one-step forecasts (``forecast[t]`` predicts ``series[t + 1]``), after a warm-up."""
    return float(np.sqrt(np.mean((forecast[warmup:] - series[warmup + 1:]) ** 2)))


class Forecaster:
    """GRU -> dense layer: reads x_0..x_t, predicts x_{t+1} at every step."""

    def __init__(self, hidden: int, seed: int) -> None:
        self.rnn = rnnfast.GRU(1, hidden, seed=seed)
        self.head = nn.Linear(hidden, 1, seed=seed + 1)
        self.modules = [self.rnn, self.head]

    def predict(self, series: np.ndarray) -> np.ndarray:
        """One-step-ahead forecasts over a whole series at once: out[t] predicts series[t + 1]."""
        out, _ = self.rnn(series[:, None])              # unbatched (T, 1) -> (T, H)
        return self.head(out)[:, 0]

    def quantized(self, weight_dtype: str) -> "Forecaster":
        """A copy for inference with the GRU's weights in ``weight_dtype`` ('int8' or 'bf16'); the dense
        layer stays float32."""
        q = copy.copy(self)
        q.rnn = rnnfast.quantize(self.rnn, weight_dtype)
        q.modules = [q.rnn, q.head]
        return q

    def detect(self, series: np.ndarray, limit: float, warmup: int = 100) -> np.ndarray:
        """Watch a stream the way a device would, one value at a time through the stepper: flag each
        value that differs from the forecast by more than ``limit``, and feed the forecast instead of it,
        so that an anomalous reading does not disturb the state for what follows."""
        stepper = self.rnn.stepper(batch=None)          # unbatched: step takes (1,), returns (H,)
        h = np.empty(self.rnn.hidden_size, dtype=np.float32)
        flags = np.zeros(len(series), dtype=bool)
        forecast = np.zeros(1, dtype=np.float32)
        for t in range(len(series)):
            value = series[t:t + 1]
            if t >= warmup and abs(value[0] - forecast[0]) > limit:
                flags[t] = True
                value = forecast
            stepper.step(value, out=h)                  # no allocation per step in the stepper
            forecast = self.head(h)
        return flags

    def rollout(self, history: np.ndarray, steps: int) -> np.ndarray:
        """Forecast ``steps`` values after ``history`` by feeding each forecast back as the next input."""
        stepper = self.rnn.stepper(batch=None)
        stepper.step_many(history[:-1, None])           # warm the state up on the history
        value, out = history[-1:], []
        for _ in range(steps):
            value = self.head(stepper.step(value)).astype(np.float32)
            out.append(value[0])
        return np.array(out)


def run(*, epochs: int = 40, hidden: int = 32, train_len: int = 20000, streams: int = 20, chunk: int = 50,
        lr: float = 0.01, test_len: int = 2000, threshold: float = 5.0, seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    train = noisy_signal(rng, 0, train_len + 1)
    # `streams` parallel streams, time-major: x (T, B, 1) and the next value as target.
    T = train_len // streams
    x = train[:T * streams].reshape(streams, T).T[..., None]
    y = train[1:T * streams + 1].reshape(streams, T).T[..., None]
    model = Forecaster(hidden, seed)
    opt = nn.Adam(model.modules, lr=lr)
    tbptt = nn.TruncatedBPTT(model.rnn, chunk_len=chunk)
    progress = nn.ProgressBar(epochs, -(-T // chunk), verbose=int(verbose))
    for epoch in range(1, epochs + 1):
        progress.start_epoch(epoch)
        tbptt.reset()                                    # each epoch starts the streams afresh
        for x_chunk, y_chunk in tbptt.chunks(x, y):
            out = tbptt.forward(x_chunk)                 # from the state the last chunk left
            loss, d_pred = nn.mse(model.head.forward(out, training=True), y_chunk)
            opt.zero_grad()
            tbptt.backward(model.head.backward(d_pred))  # BPTT within the chunk only
            nn.clip_grad_norm(model.modules, 1.0)
            opt.step()
            progress.step(loss, streams)
        progress.end_epoch()
    progress.close()

    # Forecasting on unseen data (continuing the same signal far beyond the training stretch).
    test_rng = np.random.default_rng(seed + 1000)
    t0 = train_len + 10000
    test = noisy_signal(test_rng, t0, test_len + 1)
    forecast = model.predict(test[:-1])
    rmse = rmse_after_warmup(forecast, test)
    naive = float(np.sqrt(np.mean((test[100:-1] - test[101:]) ** 2)))
    # Inference in reduced precision: the trained GRU's weights quantized to int8 and to bf16.
    # The RMSE is mostly the noise, so also say how far the quantized forecasts are from float32's.
    rmse_by_dtype, change_by_dtype = {"float32": rmse}, {}
    for dtype in ("int8", "bf16"):
        quantized_forecast = model.quantized(dtype).predict(test[:-1])
        rmse_by_dtype[dtype] = rmse_after_warmup(quantized_forecast, test)
        change_by_dtype[dtype] = float(np.sqrt(np.mean((quantized_forecast - forecast)[100:] ** 2)))
    horizon = 50
    rolled = model.rollout(test[:1000], horizon)
    rollout_rmse = float(np.sqrt(np.mean((rolled - clean_signal(np.arange(t0 + 1000, t0 + 1000 + horizon))) ** 2)))

    # Anomaly detection on a stream, step by step through the stepper.
    sigma = float(np.std(forecast[100:] - test[101:]))
    stream, events = inject_anomalies(test_rng, noisy_signal(test_rng, t0 + 5000, test_len))
    flagged = np.flatnonzero(model.detect(stream, threshold * sigma))
    found = [any(a <= f <= b for f in flagged) for a, b in events]
    false_alarms = [f for f in flagged if not any(a <= f <= b for a, b in events)]
    recall = float(np.mean(found))
    precision = float((len(flagged) - len(false_alarms)) / max(len(flagged), 1))
    summary = (f"forecasting sin(2 pi t/50) + 0.5 sin(2 pi t/13 + 1) + noise (sd {NOISE}), GRU({hidden}), truncated "
               f"BPTT in chunks of {chunk}: loss (MSE) {progress.losses[0]:.4f} -> {progress.losses[-1]:.4f}\n"
               f"  one step ahead on unseen data: RMSE {rmse:.3f} (noise floor {NOISE}, naive 'same as now' "
               f"{naive:.3f}); {horizon} steps ahead, forecasts fed back: RMSE {rollout_rmse:.3f} vs the clean "
               f"signal\n"
               f"  one step ahead, the GRU quantized for inference: RMSE "
               + ", ".join(f"{dtype} {value:.4f}" for dtype, value in rmse_by_dtype.items())
               + "; the forecasts moved from float32's by (RMS) "
               + ", ".join(f"{dtype} {value:.4f}" for dtype, value in change_by_dtype.items()) + "\n"
               f"  anomaly detection on a {test_len}-step stream through the stepper (error > {threshold} sd = "
               f"{threshold * sigma:.2f}): {sum(found)} of {len(events)} anomalies found (recall {recall:.0%}), "
               f"{len(false_alarms)} false alarms (precision {precision:.0%})")
    return {"losses": progress.losses, "rmse": rmse, "rmse_by_dtype": rmse_by_dtype,
            "forecast_change_by_dtype": change_by_dtype, "naive_rmse": naive,
            "rollout_rmse": rollout_rmse, "model": model, "test": test,
            "recall": recall, "precision": precision, "false_alarms": len(false_alarms), "events": events,
            "summary": summary, "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=40, prog=prog)
    p.add_argument("--hidden", type=int, default=32, help="GRU hidden units")
    p.add_argument("--chunk", type=int, default=50, help="truncated-BPTT chunk length (steps)")
    p.add_argument("--threshold", type=float, default=5.0, help="anomaly threshold, in standard deviations")
    a = p.parse_args(argv)
    result = run(epochs=a.epochs, hidden=a.hidden, chunk=a.chunk, threshold=a.threshold, seed=a.seed,
                 verbose=not a.quiet)
    finish(result, "forecasting (truncated BPTT)", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
