"""Variable-length sequences (``lengths=``): the reference against finite differences, the native ops
against the reference, and the layers against PyTorch's packed sequences."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import functional as F, reference as R

from helpers.native_problems import CELLS, LENGTHS, make_problem, run_with_lengths

def loss(cell, p, lengths):
    r = run_with_lengths(R, cell, p, lengths)
    total = np.sum(r["out"] * p["d_out"]) + np.sum(r["h_n"] * p["d_h_n"])
    if cell == "lstm":
        total += np.sum(r["c_n"] * p["d_c_n"])
    return total


@pytest.mark.parametrize("kind", ["sorted", "unsorted", "with_zero"])
@pytest.mark.parametrize("cell", CELLS)
def test_reference_with_lengths_matches_finite_differences(cell, kind):
    lengths = np.array(LENGTHS[kind])
    p = make_problem(cell, 6, 5, 3, 4, seed=3)
    if cell == "rnn_relu":  # keep pre-activations off relu's kink, where a difference is not a derivative
        p["w_ih"] *= 0.5
    grads = run_with_lengths(R, cell, p, lengths)
    names = {"x": "d_x", "h0": "d_h0", "w_ih": "d_w_ih", "w_hh": "d_w_hh", "b_ih": "d_b_ih", "b_hh": "d_b_hh"}
    if cell == "lstm":
        names["c0"] = "d_c0"
    eps = 1e-6
    for arg, grad_name in names.items():
        value = p[arg]
        numeric = np.empty_like(value)
        for idx in np.ndindex(value.shape):
            keep = value[idx]
            value[idx] = keep + eps
            up = loss(cell, p, lengths)
            value[idx] = keep - eps
            down = loss(cell, p, lengths)
            value[idx] = keep
            numeric[idx] = (up - down) / (2 * eps)
        scale = max(1.0, float(np.max(np.abs(numeric))))
        err = float(np.max(np.abs(grads[grad_name] - numeric)))
        assert err <= 1e-6 * scale, f"{cell} {kind}: {grad_name} differs from finite differences by {err:.2e}"


@pytest.mark.parametrize("kind", list(LENGTHS))
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_native_with_lengths_matches_reference(cell, kind, dtype):
    p = make_problem(cell, 6, 5, 9, 13, dtype=dtype, seed=1)
    got, want = run_with_lengths(F, cell, p, LENGTHS[kind]), run_with_lengths(R, cell, p, LENGTHS[kind])
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, w in want.items():
        if w.size:
            scale = max(1.0, float(np.max(np.abs(w))))
            err = float(np.max(np.abs(got[name] - w)))
            assert err <= tol * scale, f"{cell} {kind} {np.dtype(dtype).name}: {name} differs by {err:.2e}"


@pytest.mark.parametrize("cell", CELLS)
def test_lengths_semantics(cell):
    """Outputs past the end are zero; the final state is the state at the last step; d_out past the end
    is ignored; the full length equals no lengths."""
    lengths = np.array(LENGTHS["with_zero"])
    p = make_problem(cell, 6, 5, 3, 4)
    r = run_with_lengths(F, cell, p, lengths)
    for b, n in enumerate(lengths):
        assert not np.any(r["out"][n:, b]), "outputs past a sequence's end must be zero"
        expected_h = p["h0"][b] if n == 0 else r["out"][n - 1, b]
        np.testing.assert_array_equal(r["h_n"][b], expected_h)
    noisy = dict(p, d_out=p["d_out"].copy())
    for b, n in enumerate(lengths):
        noisy["d_out"][n:, b] = 1e3
    r_noisy = run_with_lengths(F, cell, noisy, lengths)
    for name in ("d_x", "d_h0", "d_w_ih", "d_w_hh", "d_b_ih"):
        np.testing.assert_allclose(r_noisy[name], r[name], rtol=1e-12, atol=1e-12, err_msg=name)
    full = run_with_lengths(F, cell, p, np.full(5, 6))
    plain = run_with_lengths(F, cell, p, None)
    for name in plain:
        np.testing.assert_array_equal(full[name], plain[name], err_msg=name)


def test_bad_lengths_are_refused():
    p = make_problem("gru", 4, 3, 2, 5)
    args = (p["x"], p["h0"], p["w_ih"], p["w_hh"])
    with pytest.raises(ValueError, match=r"lengths has shape \(2,\), expected \(batch,\) = \(3,\)"):
        F.gru(*args, lengths=[1, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, seq_len\] = \[0, 4\]"):
        F.gru(*args, lengths=[1, 5, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in"):
        R.gru(*args, lengths=[1, -1, 2])
    with pytest.raises(TypeError, match="lengths must be integers"):
        F.gru(*args, lengths=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="lengths must be integers"):
        F.gru(*args, lengths=[True, False, True])


# --------------------------------------------------------------------------------------------------
# PyTorch's packed sequences
# --------------------------------------------------------------------------------------------------

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
