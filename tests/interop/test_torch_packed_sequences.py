"""Variable-length sequences (``lengths=``) in rnnfast's layers against PyTorch's packed sequences: outputs,
final states and every gradient, for every cell, direction and layout. Skipped where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast


@pytest.mark.parametrize("mode", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_layers_match_torch_packed_sequences(mode, bidirectional, batch_first):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B, I, H, L = 7, 5, 4, 6, 2
    lengths = np.array([3, 7, 1, 5, 7])  # unsorted, with the full length and a length of 1
    torch.manual_seed(0)
    kwargs = dict(num_layers=L, bidirectional=bidirectional, batch_first=batch_first, dtype=torch.float64)
    if mode.startswith("RNN"):
        nonlinearity = mode[4:].lower()
        tm = torch.nn.RNN(I, H, nonlinearity=nonlinearity, **kwargs)
        ours = rnnfast.RNN(I, H, L, nonlinearity=nonlinearity, bidirectional=bidirectional,
                           batch_first=batch_first, dtype="float64")
    else:
        tm = getattr(torch.nn, mode)(I, H, **kwargs)
        ours = getattr(rnnfast, mode)(I, H, L, bidirectional=bidirectional, batch_first=batch_first,
                                      dtype="float64")
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0 = rng.standard_normal((L * D, B, H))
    c0 = rng.standard_normal((L * D, B, H))
    d_out = rng.standard_normal((B, T, D * H) if batch_first else (T, B, D * H))
    d_h = rng.standard_normal((L * D, B, H))
    d_c = rng.standard_normal((L * D, B, H))
    lstm = mode == "LSTM"

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = torch.tensor(c0, requires_grad=True)
    packed = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    out_packed, state_t = tm(packed, (h0t, c0t) if lstm else h0t)
    out_t, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    h_nt = state_t[0] if lstm else state_t
    total = (out_t * torch.tensor(d_out)).sum() + (h_nt * torch.tensor(d_h)).sum()
    if lstm:
        total = total + (state_t[1] * torch.tensor(d_c)).sum()
    total.backward()

    out, state = ours.forward(x, (h0, c0) if lstm else h0, lengths=lengths, training=True)
    d_x, d_state = ours.backward(d_out, (d_h, d_c) if lstm else d_h)

    def close(name, got, want):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=f"{mode} {name}")

    close("out", out, out_t.detach().numpy())
    close("h_n", state[0] if lstm else state, h_nt.detach().numpy())
    close("d_x", d_x, xt.grad.numpy())
    close("d_h0", d_state[0] if lstm else d_state, h0t.grad.numpy())
    if lstm:
        close("c_n", state[1], state_t[1].detach().numpy())
        close("d_c0", d_state[1], c0t.grad.numpy())
    for name, param in tm.named_parameters():
        close(f"grad {name}", ours.grads[name], param.grad.numpy())
