"""rnnfast.reference against PyTorch's autograd (torch.nn.RNN/LSTM/GRU, float64): forward and every gradient,
one of the three checks that make the reference trustworthy (api/test_reference.py has the other two).
Skipped where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.cells import CELLS
from helpers.reference_harness import backward, forward, make_cotangents, make_params


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch(cell, bias):
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 3, 4, 6
    p = make_params(cell, T, B, I, H, seed=27, scale=0.6, bias=bias)
    d = make_cotangents(cell, T, B, H, seed=28)

    if cell == "lstm":
        m = torch.nn.LSTM(I, H, bias=bias)
    elif cell == "gru":
        m = torch.nn.GRU(I, H, bias=bias)
    else:
        m = torch.nn.RNN(I, H, nonlinearity=cell.split("_")[1], bias=bias)
    m = m.double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(p["w_ih"]))
        m.weight_hh_l0.copy_(torch.from_numpy(p["w_hh"]))
        if bias:
            m.bias_ih_l0.copy_(torch.from_numpy(p["b_ih"]))
            m.bias_hh_l0.copy_(torch.from_numpy(p["b_hh"]))
    x = torch.from_numpy(p["x"]).requires_grad_()
    h0 = torch.from_numpy(p["h0"][None].copy()).requires_grad_()
    if cell == "lstm":
        c0 = torch.from_numpy(p["c0"][None].copy()).requires_grad_()
        t_out, (t_h, t_c) = m(x, (h0, c0))
    else:
        t_out, t_h = m(x, h0)
    total = (t_out * torch.from_numpy(d["d_out"])).sum() + (t_h[0] * torch.from_numpy(d["d_h_n"])).sum()
    if cell == "lstm":
        total = total + (t_c[0] * torch.from_numpy(d["d_c_n"])).sum()
    total.backward()

    fw = forward(cell, p)
    tol = dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fw["out"], t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(fw["h_n"], t_h.detach().numpy()[0], **tol)
    if cell == "lstm":
        np.testing.assert_allclose(fw["c_n"], t_c.detach().numpy()[0], **tol)

    g = backward(cell, p, fw, d["d_out"], d["d_h_n"], d["d_c_n"])
    tol = dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(g.d_x, x.grad.numpy(), **tol)
    np.testing.assert_allclose(g.d_h0, h0.grad.numpy()[0], **tol)
    if cell == "lstm":
        np.testing.assert_allclose(g.d_c0, c0.grad.numpy()[0], **tol)
    np.testing.assert_allclose(g.d_w_ih, m.weight_ih_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(g.d_w_hh, m.weight_hh_l0.grad.numpy(), **tol)
    if bias:
        np.testing.assert_allclose(g.d_b_ih, m.bias_ih_l0.grad.numpy(), **tol)
        np.testing.assert_allclose(g.d_b_hh, m.bias_hh_l0.grad.numpy(), **tol)
