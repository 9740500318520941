"""PyTorch interop: torch.nn.RNN/LSTM/GRU modules converted by rnnfast.from_torch run with the same numbers
(lengths as packed sequences too), rnnfast.to_torch round-trips, and every refusal names its reason.
Skipped where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast

from helpers.cells import CELLS
from helpers.interop_checks import (assert_close, make_model, random_state, states_of, torch_module, torch_or_skip,
                                    torch_run)

# (num_layers, bidirectional, batch_first, bias)
TORCH_CONFIGS = [(1, False, False, True), (2, True, False, True), (2, False, True, False), (1, True, True, True)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg", TORCH_CONFIGS, ids=lambda c: "L{}-D{}-bf{}-bias{}".format(c[0], 2 if c[1] else 1,
                                                                                           int(c[2]), int(c[3])))
@pytest.mark.parametrize("cell", CELLS)
def test_from_torch_parity(cell, cfg, dtype):
    torch = torch_or_skip()
    L, bidi, bf, bias = cfg
    D, I, H, T, B = 2 if bidi else 1, 4, 6, 7, 3
    module = torch_module(torch, cell, I, H, L, D, bf, bias, dtype).eval()
    model = rnnfast.from_torch(module)
    assert type(model).__name__ == {"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN")
    assert (model.num_layers, model.bidirectional, model.batch_first, model.bias, model.dtype) == \
        (L, bidi, bf, bias, np.dtype(dtype))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(dtype)
    state = random_state(cell, L, D, B, H, dtype, rng)
    ref_out, ref_state = torch_run(torch, module, cell, x, state)
    out, st = model(x, state)
    assert_close("torch", "out", out, ref_out, dtype)
    for ours, theirs in zip(states_of(cell, st), ref_state):
        assert_close("torch", "state", ours, theirs, dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_from_torch_lengths_match_packed_sequences(cell):
    torch = torch_or_skip()
    I, H, L, T, B = 3, 5, 2, 6, 4
    module = torch_module(torch, cell, I, H, L, 2, False, True, "float32").eval()
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
    torch = torch_or_skip()
    model = make_model(cell, I=4, H=5, L=2, D=2, bf=True, dtype="float64")
    model_d = make_model(cell, I=4, H=5, L=2, D=2, bf=True)
    module = rnnfast.to_torch(model)
    assert isinstance(module, torch.nn.RNNBase) and not module.training
    assert module.batch_first and module.bidirectional and module.num_layers == 2
    assert next(module.parameters()).dtype == torch.float64
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 4))
    state = random_state(cell, 2, 2, 3, 5, np.float64, rng)
    ref_out, ref_state = torch_run(torch, module, cell, x, state)
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
    torch = torch_or_skip()
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
    ref_out, _ = torch_run(torch, lstm, "lstm", x, None)
    assert_close("torch", "out", model(x)[0], ref_out, "float32")


def test_from_torch_refusals():
    torch = torch_or_skip()
    with pytest.raises(TypeError, match="float16"):
        rnnfast.from_torch(torch.nn.GRU(3, 4).half())
    with pytest.raises(TypeError, match="Conv1d, which rnnfast does not convert"):
        rnnfast.from_torch(torch.nn.Conv1d(3, 4, 2))
    with pytest.raises(TypeError, match="got str"):
        rnnfast.from_torch("lstm")

    class Custom(torch.nn.LSTM):
        def forward(self, x, hx=None):  # noqa: D401 - a different computation
            return super().forward(2 * x, hx)

    with pytest.raises(TypeError, match="overrides its forward"):
        rnnfast.from_torch(Custom(3, 4))
    with pytest.raises(TypeError, match="rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU"):
        rnnfast.to_torch(torch.nn.LSTM(3, 4))
