"""rnnfast.nn: Linear and the losses against finite differences, the optimisers against their formulas,
clipping, truncated BPTT, and the errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import nn

from helpers.finite_differences import numerical_gradient


# ---------------------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lead", [(4,), (3, 2), ()])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients_match_finite_differences(lead, bias):
    rng = np.random.default_rng(0)
    lin = nn.Linear(5, 3, bias=bias, dtype="float64", seed=1)
    x = rng.standard_normal(lead + (5,))
    w_out = rng.standard_normal(lead + (3,))  # loss = sum(w_out * y)

    def loss():
        return float(np.sum(w_out * lin(x)))

    y = lin.forward(x, training=True)
    assert y.shape == lead + (3,)
    np.testing.assert_allclose(y, x @ lin.weight.T + (lin.bias if bias else 0), rtol=1e-12)
    d_x = lin.backward(w_out)
    np.testing.assert_allclose(d_x, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for name, p in lin.parameters().items():
        np.testing.assert_allclose(lin.grads[name], numerical_gradient(loss, p), rtol=1e-6, atol=1e-8)
    assert set(lin.grads) == ({"weight", "bias"} if bias else {"weight"})


def test_linear_accumulates_until_zero_grad_and_init_bounds():
    lin = nn.Linear(16, 4, seed=0)
    assert lin.weight.dtype == np.float32 and lin.weight.shape == (4, 16) and lin.bias.shape == (4,)
    assert np.all(np.abs(lin.weight) <= 0.25) and np.all(np.abs(lin.bias) <= 0.25)
    x = np.ones((2, 16), np.float32)
    for _ in range(2):
        lin.forward(x, training=True)
        lin.backward(np.ones((2, 4), np.float32))
    np.testing.assert_allclose(lin.grads["bias"], 4.0)
    lin.zero_grad()
    assert not lin.grads["weight"].any()
    assert nn.Linear(16, 4, seed=0).weight.tolist() == lin.weight.tolist()


def test_linear_state_dict_round_trip_and_errors():
    a, b = nn.Linear(3, 2, seed=0), nn.Linear(3, 2, seed=1)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.weight, b.weight)
    with pytest.raises(ValueError, match=r"'weight' has shape \(3, 2\), expected \(2, 3\)"):
        b.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    with pytest.raises(ValueError, match=r"x has shape \(4, 5\), expected \(\.\.\., 3\)"):
        a(np.zeros((4, 5)))
    a.forward(np.zeros((4, 3)), training=True)
    with pytest.raises(ValueError, match=r"d_y has shape \(4, 3\), expected \(4, 2\)"):
        a.backward(np.zeros((4, 3)))
    with pytest.raises(RuntimeError, match="training=True"):
        nn.Linear(3, 2).backward(np.zeros((1, 2)))
    assert repr(nn.Linear(3, 2, bias=False)) == "Linear(3, 2, bias=False)"


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(6, 4, dtype="float64", seed=0)
    t = torch.nn.Linear(6, 4, dtype=torch.float64)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 2, 6))
    np.testing.assert_allclose(lin(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True])
def test_softmax_cross_entropy_value_and_gradient(masked):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 3, 5)) * 3
    targets = rng.integers(0, 5, size=(4, 3))
    mask = rng.random((4, 3)) < 0.6 if masked else None
    loss, d = nn.softmax_cross_entropy(logits, targets, mask=mask)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    nll = -np.log(np.take_along_axis(p, targets[..., None], -1)[..., 0])
    w = np.ones((4, 3)) if mask is None else mask.astype(float)
    assert loss == pytest.approx((w * nll).sum() / w.sum(), rel=1e-12)
    num = numerical_gradient(lambda: nn.softmax_cross_entropy(logits, targets, mask=mask)[0], logits)
    np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-9)
    if masked:
        assert not d[~mask].any()


def test_softmax_cross_entropy_stable_dtypes_and_torch():
    logits = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    loss, d = nn.softmax_cross_entropy(logits, np.array([0]))
    assert loss == 0.0 and d.dtype == np.float32 and np.isfinite(d).all()
    assert nn.softmax_cross_entropy(np.zeros((2, 3)), [0, 1], mask=[0, 0]) == (0.0, pytest.approx(np.zeros((2, 3))))
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    want = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(t)).item()
    assert nn.softmax_cross_entropy(z, t)[0] == pytest.approx(want, rel=1e-12)


def test_softmax_cross_entropy_errors():
    z = np.zeros((4, 3, 5))
    with pytest.raises(ValueError, match=r"targets has shape \(3, 4\), expected \(4, 3\).*\(4, 3, 5\)"):
        nn.softmax_cross_entropy(z, np.zeros((3, 4), int))
    with pytest.raises(ValueError, match=r"class indices in \[0, 5\)"):
        nn.softmax_cross_entropy(z, np.full((4, 3), 5))
    with pytest.raises(TypeError, match="targets must be integer"):
        nn.softmax_cross_entropy(z, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"mask has shape \(2,\), which does not broadcast to \(4, 3\)"):
        nn.softmax_cross_entropy(z, np.zeros((4, 3), int), mask=np.ones(2, bool))


@pytest.mark.parametrize("masked", [False, True])
def test_mse_value_and_gradient(masked):
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 3))
    mask = (rng.random((5, 2, 1)) < 0.5) if masked else None
    loss, d = nn.mse(pred, target, mask=mask)
    w = np.ones_like(pred) if mask is None else np.broadcast_to(mask, pred.shape).astype(float)
    assert loss == pytest.approx((w * (pred - target) ** 2).sum() / w.sum(), rel=1e-12)
    np.testing.assert_allclose(d, numerical_gradient(lambda: nn.mse(pred, target, mask=mask)[0], pred),
                               rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match=r"target has shape \(5, 2\), expected the shape of pred \(5, 2, 3\)"):
        nn.mse(pred, target[..., 0])


def test_softmax_and_one_hot():
    p = nn.softmax(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]])
    np.testing.assert_array_equal(nn.one_hot([[2, 0]], 3), [[[0, 0, 1], [1, 0, 0]]])
    assert nn.one_hot([1], 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        nn.one_hot([3], 3)


# ---------------------------------------------------------------------------------------------------------
# Optimisers and clipping
# ---------------------------------------------------------------------------------------------------------


class Toy:
    """The smallest module: one parameter 'w' with a gradient set by hand."""

    def __init__(self, w):
        self.w = np.array(w, dtype=np.float64)
        self.grads = {"w": np.zeros_like(self.w)}

    def parameters(self):
        return {"w": self.w}

    def zero_grad(self):
        self.grads["w"].fill(0)


GRADS = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]


def test_sgd_momentum_matches_hand_computation():
    m = Toy([1.0, 1.0])
    opt = nn.SGD([m], lr=0.1, momentum=0.9)
    w, buf = np.array([1.0, 1.0]), None
    for g in GRADS:
        m.grads["w"][:] = g
        opt.step()
        buf = g.copy() if buf is None else 0.9 * buf + g
        w = w - 0.1 * buf
        np.testing.assert_allclose(m.w, w, rtol=1e-14)
    # Plain SGD, and weight decay
    m2 = Toy([1.0, 2.0])
    m2.grads["w"][:] = [1.0, 1.0]
    nn.SGD(m2, lr=0.5, weight_decay=0.1).step()
    np.testing.assert_allclose(m2.w, [1.0 - 0.5 * 1.1, 2.0 - 0.5 * 1.2])


def test_adam_matches_hand_computation():
    m = Toy([1.0, -1.0])
    opt = nn.Adam([m], lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    w, mom, vel = np.array([1.0, -1.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(GRADS, 1):
        m.grads["w"][:] = g
        opt.step()
        mom = 0.8 * mom + 0.2 * g
        vel = 0.99 * vel + 0.01 * g * g
        w = w - 0.01 * (mom / (1 - 0.8 ** t)) / (np.sqrt(vel / (1 - 0.99 ** t)) + 1e-6)
        np.testing.assert_allclose(m.w, w, rtol=1e-13)


def test_optimisers_match_torch_on_layers():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for make_opt, make_torch in [
        (lambda mods: nn.Adam(mods, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        (lambda mods: nn.SGD(mods, lr=0.1, momentum=0.5), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5)),
    ]:
        rnn, head = rnnfast.GRU(3, 4, dtype="float64", seed=0), nn.Linear(4, 2, dtype="float64", seed=1)
        params = [torch.tensor(p, requires_grad=True) for m in (rnn, head) for p in m.parameters().values()]
        opt, topt = make_opt([rnn, head]), make_torch(params)
        for _ in range(3):
            grads = [rng.standard_normal(p.shape) for p in params]
            flat = [g for m in (rnn, head) for g in m.grads.values()]
            for g, src in zip(flat, grads):
                g[:] = src
            for p, src in zip(params, grads):
                p.grad = torch.from_numpy(src.copy())
            opt.step()
            topt.step()
        ours = [p for m in (rnn, head) for p in m.parameters().values()]
        for a, b in zip(ours, params):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_optimiser_zero_grad_and_shape_errors():
    a, b = Toy([1.0, 2.0]), Toy([3.0])
    a.grads["w"][:] = 1
    opt = nn.SGD([a, b], lr=0.1)
    opt.zero_grad()
    assert not a.grads["w"].any()
    b.grads["w"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"modules\[1\] \(Toy\) 'w': gradient has shape \(3,\), expected "
                                         r"the parameter's shape \(1,\)"):
        opt.step()
    np.testing.assert_array_equal(a.w, [1.0, 2.0])  # nothing updated
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        nn.Adam([b])
    with pytest.raises(TypeError, match="not a module"):
        nn.Adam([object()])
    with pytest.raises(ValueError, match="momentum"):
        nn.SGD([a], lr=0.1, momentum=1.0)


def test_clip_grad_norm():
    a, b = Toy([0.0, 0.0]), Toy([0.0])
    a.grads["w"][:] = [3.0, 0.0]
    b.grads["w"][:] = [4.0]
    assert nn.clip_grad_norm([a, b], 10.0) == pytest.approx(5.0)
    np.testing.assert_array_equal(a.grads["w"], [3.0, 0.0])  # below the limit: untouched
    assert nn.clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grads["w"], b.grads["w"]]), [0.6, 0.0, 0.8], rtol=1e-5)
    assert nn.clip_grad_norm([a, b], 1.0) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="max_norm"):
        nn.clip_grad_norm([a], 0)


# ---------------------------------------------------------------------------------------------------------
# Truncated BPTT
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_truncated_bptt_carries_state_and_stops_gradient(cell):
    make = {"lstm": rnnfast.LSTM, "gru": rnnfast.GRU, "rnn": rnnfast.RNN}[cell]
    rng = np.random.default_rng(0)
    layer = make(3, 4, num_layers=2, dtype="float64", seed=0)
    x = rng.standard_normal((10, 2, 3))
    full_out, full_state = layer(x)
    tbptt = nn.TruncatedBPTT(layer, chunk_len=4)
    chunks = list(tbptt.chunks(x))
    assert [c.shape[0] for c in chunks] == [4, 4, 2]
    outs = []
    for c in chunks:
        state_before = tbptt.state
        outs.append(tbptt.forward(c))
        d_out = rng.standard_normal(outs[-1].shape)
        layer.zero_grad()
        d_x = tbptt.backward(d_out)
        got = {k: v.copy() for k, v in layer.grads.items()}
        # The same as BPTT over the chunk alone from a fixed (constant) initial state.
        layer.zero_grad()
        layer.forward(c, state_before, training=True)
        want_dx, _ = layer.backward(d_out)
        np.testing.assert_allclose(d_x, want_dx, rtol=1e-12)
        for k, g in got.items():
            np.testing.assert_allclose(g, layer.grads[k], rtol=1e-12)
    np.testing.assert_allclose(np.concatenate(outs), full_out, rtol=1e-12, atol=1e-14)
    for a, b in zip(*(s if cell == "lstm" else (s,) for s in (tbptt.state, full_state))):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    tbptt.reset()
    assert tbptt.state is None


def test_truncated_bptt_chunks_of_several_arrays_batch_first():
    layer = rnnfast.GRU(2, 3, batch_first=True)
    tbptt = nn.TruncatedBPTT(layer, chunk_len=3)
    x, y = np.zeros((5, 7, 2)), np.zeros((5, 7, 1))
    pairs = list(tbptt.chunks(x, y))
    assert [(a.shape, b.shape) for a, b in pairs] == [((5, 3, 2), (5, 3, 1))] * 2 + [((5, 1, 2), (5, 1, 1))]
    for a, _ in pairs:
        tbptt.forward(a)
    assert tbptt.state.shape == (1, 5, 3)
    with pytest.raises(ValueError, match=r"arrays\[1\] has shape \(5, 6, 1\)"):
        list(tbptt.chunks(x, y[:, :6]))


def test_truncated_bptt_chunk_mismatch_raises():
    layer = rnnfast.LSTM(2, 3)
    tbptt = nn.TruncatedBPTT(layer)
    tbptt.forward(np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match=r"x_chunk has shape \(4, 3, 2\) \(batch 3\) but the carried state has "
                                         r"shape \(1, 5, 3\) \(batch 5\).*reset\(\)"):
        tbptt.forward(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match=r"x_chunk has shape \(4, 2\) \(an unbatched chunk"):
        tbptt.forward(np.zeros((4, 2)))
    tbptt.reset()
    tbptt.forward(np.zeros((4, 3, 2)))  # fine after a reset
    with pytest.raises(ValueError, match="bidirectional"):
        nn.TruncatedBPTT(rnnfast.GRU(2, 3, bidirectional=True))
    with pytest.raises(ValueError, match="chunk_len"):
        list(nn.TruncatedBPTT(layer).chunks(np.zeros((3, 1, 2))))


def test_a_small_model_learns_with_the_toolkit():
    """GRU + Linear, Adam, clipping: learns to output the running sum's sign at every step."""
    rng = np.random.default_rng(0)
    rnn, head = rnnfast.GRU(1, 16, seed=0), nn.Linear(16, 2, seed=1)
    opt = nn.Adam([rnn, head], lr=0.02)
    losses = []
    for _ in range(150):
        x = rng.standard_normal((12, 32, 1)).astype(np.float32)
        y = (np.cumsum(x[..., 0], axis=0) > 0).astype(np.int64)
        out, _ = rnn.forward(x, training=True)
        loss, d_logits = nn.softmax_cross_entropy(head.forward(out, training=True), y)
        opt.zero_grad()
        rnn.backward(head.backward(d_logits))
        nn.clip_grad_norm([rnn, head], 1.0)
        opt.step()
        losses.append(loss)
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5])
