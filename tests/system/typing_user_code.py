"""Typical user code of rnnfast's public API, for the type checker only: ``mypy --strict`` checks it
(tests/system/test_typing.py, .ci/typecheck); it is never run.

Two kinds of checks, both of which fail the check when a type regresses:

- ``assert_type(expr, T)``: an error unless mypy infers exactly T (an ``Any`` fails it too);
- a line ending in ``# type: ignore[code]`` MUST be that error: under ``--strict`` (``warn_unused_ignores``) the
  comment is itself an error once the line checks, and an error of another code is not covered by it.

NumPy types iterating an ndarray as an iterable of ``Any``, so unpacking a GRU's ``h`` into ``(h, c)`` is not
an error by itself: the mistake shows where the parts are used as arrays (returned from a typed function,
``no-any-return``) or asserted to be arrays.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from typing_extensions import assert_type

import rnnfast
from rnnfast import nn

LSTMState = tuple[np.ndarray, np.ndarray]

x = np.zeros((5, 2, 8), dtype=np.float32)  # (T, B, I)

# --- The layers: the state is h (RNN, GRU) or (h, c) (LSTM), and the type checker knows which.
lstm = rnnfast.LSTM(8, 16, num_layers=2, seed=0)
assert_type(lstm(x), tuple[np.ndarray, LSTMState])
out, (h, c) = lstm(x)
assert_type(out, np.ndarray)
assert_type(h, np.ndarray)
assert_type(c, np.ndarray)
out, state = lstm(x, (h, None), lengths=[5, 3])
assert_type(state, LSTMState)
assert_type(lstm.forward(x, state, training=True), tuple[np.ndarray, LSTMState])
assert_type(lstm.backward(np.ones_like(out)), tuple[np.ndarray, LSTMState])
d_x, (d_h0, d_c0) = lstm.backward(out, (h, c))
assert_type(d_c0, np.ndarray)

gru = rnnfast.GRU(8, 16, bidirectional=True, batch_first=True)
assert_type(gru(x), tuple[np.ndarray, np.ndarray])
out, h = gru.forward(x, None, training=True)
assert_type(h, np.ndarray)
assert_type(gru.backward(out, h), tuple[np.ndarray, np.ndarray])
print(h.shape, out.mean())

rnn = rnnfast.RNN(8, 16, nonlinearity="relu", dtype="float64")
assert_type(rnn(x), tuple[np.ndarray, np.ndarray])
assert_type(rnn.forward(x, lengths=np.array([5, 1])), tuple[np.ndarray, np.ndarray])


def last_hidden(layer: rnnfast.GRU, seq: np.ndarray) -> np.ndarray:
    _, h_n = layer(seq)
    return h_n


def last_cell(layer: rnnfast.LSTM, seq: np.ndarray) -> np.ndarray:
    _, (_, c_n) = layer(seq)
    return c_n


# --- Streaming: the stepper knows its layer's state type; step returns an array.
s_lstm = lstm.stepper(batch=2)
assert_type(s_lstm, rnnfast.Stepper[LSTMState])
assert_type(s_lstm.step(x[0]), np.ndarray)
assert_type(s_lstm.step_many(x), np.ndarray)
assert_type(s_lstm.state, LSTMState)
s_lstm.reset((h, None))
s_gru = rnnfast.GRU(8, 16).stepper(batch=None)
assert_type(s_gru.state, np.ndarray)
assert_type(s_gru.batch, Optional[int])
y_t: np.ndarray = s_gru.step(x[0, 0])

# --- Quantization keeps the class, so the call's types too.
q = rnnfast.quantize(lstm, "int8")
assert_type(q, rnnfast.LSTM)
assert_type(q(x), tuple[np.ndarray, LSTMState])
assert_type(rnnfast.quantize(rnnfast.GRU(8, 4), "bf16").stepper().state, np.ndarray)

# --- The functional ops: the number of results follows training=.
w_ih = np.zeros((48, 8), dtype=np.float32)
w_hh = np.zeros((48, 16), dtype=np.float32)
assert_type(rnnfast.gru(x, None, w_ih, w_hh), tuple[np.ndarray, np.ndarray])
o_seq, h_n, ws = rnnfast.gru(x, None, w_ih, w_hh, training=True)
assert_type(ws, np.ndarray)
assert_type(rnnfast.gru_backward(None, h_n, x, None, w_ih, w_hh, o_seq, ws), rnnfast.GRUGrads)
w4_ih = np.zeros((64, 8), dtype=np.float32)
w4_hh = np.zeros((64, 16), dtype=np.float32)
assert_type(rnnfast.lstm(x, None, None, w4_ih, w4_hh), tuple[np.ndarray, np.ndarray, np.ndarray])
assert_type(rnnfast.lstm(x, None, None, w4_ih, w4_hh, training=True),
            tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray])
flag = bool(x.size)
assert_type(rnnfast.rnn(x, None, w_ih[:16], w_hh[:16], training=flag), tuple[np.ndarray, ...])
assert_type(rnnfast.lstm_backward(None, None, None, x, None, None, w4_ih, w4_hh, o_seq, ws).d_w_ih, np.ndarray)

# --- A training step with rnnfast.nn.
head = nn.Linear(16, 3, seed=1)
opt = nn.Adam([lstm, head], lr=1e-3)
out, _ = lstm.forward(x, training=True)
logits = head.forward(out[-1], training=True)
loss, d_logits = nn.softmax_cross_entropy(logits, np.array([0, 2]))
opt.zero_grad()
d_out = np.zeros_like(out)
d_out[-1] = head.backward(d_logits)
d_x, _ = lstm.backward(d_out)
assert_type(d_x, np.ndarray)
norm: float = nn.clip_grad_norm([lstm, head], max_norm=1.0)
opt.step()


# --- Whole models: Sequential, fit, save and load.
model = nn.Sequential(rnnfast.GRU(8, 16, seed=0), nn.LastStep(), nn.Linear(16, 3, seed=1))
assert_type(model(x), np.ndarray)
assert_type(model.forward(x, training=True, lengths=[5, 3]), np.ndarray)
assert_type(model.predict(x, batch_size=1), np.ndarray)
history = nn.fit(model, x, np.array([0, 2]), loss="cross_entropy", optimizer="adam", epochs=1, verbose=0)
assert_type(history, nn.History)
assert_type(history.history["loss"], list[float])
rnnfast.save("model.npz", model)
assert_type(rnnfast.load("model.npz"), rnnfast.Model)

# --- Mistakes that must be type errors.
def gru_state_as_a_pair(seq: np.ndarray) -> np.ndarray:
    _, (h_n, c_n) = rnnfast.GRU(8, 16)(seq)  # a GRU's state is one array: h_n is a row of it, Any to NumPy
    return h_n  # type: ignore[no-any-return]


def lstm_state_as_an_array(seq: np.ndarray) -> None:
    _, h_n = lstm(seq)
    print(h_n.shape)  # type: ignore[attr-defined]


out_wrong, (h_wrong, c_wrong) = rnnfast.RNN(8, 16)(x)
assert_type(h_wrong, np.ndarray)  # type: ignore[assert-type]
rnnfast.quantize("lstm", "int8")  # type: ignore[type-var]
gru_typed: rnnfast.GRU = rnnfast.quantize(lstm, "int8")  # type: ignore[assignment]
state_of_gru: LSTMState = rnnfast.GRU(8, 16).stepper().state  # type: ignore[assignment]
two: tuple[np.ndarray, np.ndarray] = rnnfast.lstm(x, None, None, w4_ih, w4_hh)  # type: ignore[assignment]
