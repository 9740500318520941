"""rnnfast.nn modules (Embedding, Dropout, LastStep, the activations): forward and backward against finite
differences in float64 and against their torch.nn namesakes, state dicts, and the errors on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnfast import nn

from helpers.finite_differences import numerical_gradient

# (class, constructor kwargs, torch module factory); the torch factory takes the torch.nn namespace.
ACTIVATIONS = [
    (nn.ReLU, {}, lambda tnn: tnn.ReLU()),
    (nn.Tanh, {}, lambda tnn: tnn.Tanh()),
    (nn.Sigmoid, {}, lambda tnn: tnn.Sigmoid()),
    (nn.GELU, {}, lambda tnn: tnn.GELU()),
    (nn.ELU, {"alpha": 0.7}, lambda tnn: tnn.ELU(alpha=0.7)),
    (nn.LeakyReLU, {"negative_slope": 0.2}, lambda tnn: tnn.LeakyReLU(0.2)),
    (nn.SELU, {}, lambda tnn: tnn.SELU()),
    (nn.Softplus, {}, lambda tnn: tnn.Softplus()),
    (nn.Softplus, {"beta": 2.0, "threshold": 3.0}, lambda tnn: tnn.Softplus(beta=2.0, threshold=3.0)),
    (nn.SiLU, {}, lambda tnn: tnn.SiLU()),
    (nn.Identity, {}, lambda tnn: tnn.Identity()),
    (nn.Softmax, {"axis": -1}, lambda tnn: tnn.Softmax(dim=-1)),
    (nn.Softmax, {"axis": 0}, lambda tnn: tnn.Softmax(dim=0)),
]
ACT_IDS = [f"{cls.__name__}{kw or ''}" for cls, kw, _ in ACTIVATIONS]


def _inputs(seed: int, shape=(3, 2, 4)) -> np.ndarray:
    # Away from the kinks (|x| >= 0.05), where finite differences straddle two branches.
    x = np.random.default_rng(seed).uniform(-3, 3, shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)


@pytest.mark.parametrize("cls,kw,_", ACTIVATIONS, ids=ACT_IDS)
def test_activation_gradient_matches_finite_differences(cls, kw, _):
    act = cls(**kw)
    x = _inputs(0)
    w = np.random.default_rng(1).standard_normal(x.shape)

    def loss():
        return float(np.sum(w * act(x)))

    y = act.forward(x, training=True)
    assert y.shape == x.shape and y.dtype == np.float64
    d_x = act.backward(w)
    np.testing.assert_allclose(d_x, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)
    assert act.parameters() == {} and act.grads == {} and act.state_dict() == {}


@pytest.mark.parametrize("cls,kw,make_torch", ACTIVATIONS, ids=ACT_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_matches_torch(cls, kw, make_torch, dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).uniform(-4, 4, (5, 3, 6)).astype(dtype)
    x[0, 0, :3] = [0.0, 25.0, -30.0]  # a kink, and far tails (Softplus's threshold, overflow of exp)
    w = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    act = cls(**kw)
    y = act.forward(x, training=True)
    d_x = act.backward(w)
    xt = torch.tensor(x, requires_grad=True)
    yt = make_torch(torch.nn)(xt)
    (yt * torch.tensor(w)).sum().backward()
    assert y.dtype == x.dtype and d_x.dtype == x.dtype
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == "float64" else dict(rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(d_x, xt.grad.numpy(), **tol)


def test_gelu_is_the_exact_erf_form_and_selu_has_torchs_constants():
    x = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    expected = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(nn.GELU()(x), expected, rtol=1e-15, atol=1e-300)
    # SELU(1) = scale and SELU(-inf) -> -scale * alpha, with the constants of the SELU paper.
    np.testing.assert_allclose(nn.SELU()(np.array([1.0, -50.0])),
                               [1.0507009873554805, -1.0507009873554805 * 1.6732632423543772], rtol=1e-15)


def test_activations_keep_float32_and_promote_integers():
    assert nn.Tanh()(np.ones(3, np.float32)).dtype == np.float32
    assert nn.Tanh()(np.ones(3, np.float16)).dtype == np.float32
    assert nn.ReLU()([1, -2]).dtype == np.float64
    assert nn.GELU()(np.float64(1.0)).shape == ()


def test_activation_reprs_are_torchs():
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.Softmax()) == "Softmax(axis=-1)"


# ---------------------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------------------


def test_embedding_looks_up_and_scatters_gradients():
    emb = nn.Embedding(7, 3, dtype="float64", seed=0)
    idx = np.array([[1, 4, 1], [6, 0, 1]])
    y = emb.forward(idx, training=True)
    np.testing.assert_array_equal(y, emb.weight[idx])
    w = np.random.default_rng(0).standard_normal(y.shape)
    assert emb.backward(w) is None

    def loss():
        return float(np.sum(w * emb(idx)))

    np.testing.assert_allclose(emb.grads["weight"], numerical_gradient(loss, emb.weight), rtol=1e-6, atol=1e-8)
    # Row 1 is looked up three times: all three gradients add up.
    np.testing.assert_allclose(emb.grads["weight"][1], w[0, 0] + w[0, 2] + w[1, 2])


def test_embedding_padding_row_is_zero_and_gets_no_gradient():
    emb = nn.Embedding(5, 4, padding_idx=-1, seed=1)
    assert emb.padding_idx == 4 and not emb.weight[4].any() and emb.weight.dtype == np.float32
    assert emb.weight[:4].std() > 0.5  # N(0, 1), as torch
    emb.forward(np.array([4, 4, 2]), training=True)
    emb.backward(np.ones((3, 4), np.float32))
    assert not emb.grads["weight"][4].any() and (emb.grads["weight"][2] == 1).all()


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    emb = nn.Embedding(9, 5, padding_idx=2, seed=3)
    ref = torch.nn.Embedding(9, 5, padding_idx=2)
    ref.load_state_dict({k: torch.tensor(v) for k, v in emb.state_dict().items()})
    idx = np.random.default_rng(4).integers(0, 9, (4, 3))
    idx[0, 0] = 2
    w = np.random.default_rng(5).standard_normal((4, 3, 5)).astype(np.float32)
    y = emb.forward(idx, training=True)
    emb.backward(w)
    yt = ref(torch.tensor(idx))
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(emb.grads["weight"], ref.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_errors():
    emb = nn.Embedding(5, 2)
    with pytest.raises(TypeError, match="integer indices"):
        emb(np.zeros(3))
    with pytest.raises(ValueError, match=r"index 5, out of range \[0, 5\)"):
        emb(np.array([0, 5]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(RuntimeError, match="training=True"):
        emb.backward(np.zeros((1, 2)))
    emb.forward(np.array([1]), training=True)
    with pytest.raises(ValueError, match=r"d_y has shape \(2, 2\), expected \(1, 2\)"):
        emb.backward(np.zeros((2, 2)))


# ---------------------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------------------


def test_dropout_is_identity_at_inference_and_inverted_while_training():
    x = np.random.default_rng(0).standard_normal((200, 50))
    d = nn.Dropout(0.3, seed=0)
    assert d(x) is x
    y = d.forward(x, training=True, rng=np.random.default_rng(7))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-15)
    # The mask is the rng's: the same generator state gives the same mask.
    mask = np.random.default_rng(7).random(x.shape) >= 0.3
    np.testing.assert_array_equal(kept, mask)
    w = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_allclose(d.backward(w), np.where(mask, w / 0.7, 0), rtol=1e-15)


def test_dropout_own_generator_and_extremes():
    a = nn.Dropout(0.5, seed=3).forward(np.ones(100), training=True)
    b = nn.Dropout(0.5, seed=3).forward(np.ones(100), training=True)
    np.testing.assert_array_equal(a, b)
    assert not nn.Dropout(1.0).forward(np.ones(10), training=True).any()
    np.testing.assert_array_equal(nn.Dropout(0.0).forward(np.ones(10), training=True), 1.0)
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="rng"):
        nn.Dropout(0.5).forward(np.ones(3), training=True, rng=3)


def test_dropout_gradient_matches_finite_differences():
    d = nn.Dropout(0.4)
    x = np.random.default_rng(0).standard_normal((4, 5))
    w = np.random.default_rng(1).standard_normal((4, 5))
    d.forward(x, training=True, rng=np.random.default_rng(2))
    d_x = d.backward(w)

    def loss():
        return float(np.sum(w * d.forward(x, training=True, rng=np.random.default_rng(2))))

    np.testing.assert_allclose(d_x, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------------------
# LastStep
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_last_step_picks_each_sequences_last_valid_step(batch_first):
    x = np.random.default_rng(0).standard_normal((6, 4, 3))  # (T, B, F)
    lengths = np.array([6, 1, 0, 3])
    xin = x.transpose(1, 0, 2).copy() if batch_first else x
    head = nn.LastStep(batch_first=batch_first)
    y = head.forward(xin, training=True, lengths=lengths)
    np.testing.assert_array_equal(y, np.stack([x[5, 0], x[0, 1], np.zeros(3), x[2, 3]]))
    np.testing.assert_array_equal(head(xin), x[-1])
    w = np.random.default_rng(1).standard_normal((4, 3))
    d_x = head.backward(w)

    def loss():
        return float(np.sum(w * head.forward(xin, lengths=lengths)))

    np.testing.assert_allclose(d_x, numerical_gradient(loss, xin), rtol=1e-6, atol=1e-8)


def test_last_step_unbatched_and_errors():
    x = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(nn.LastStep()(x), x[-1])
    np.testing.assert_array_equal(nn.LastStep().forward(x, lengths=[2]), x[1])
    with pytest.raises(ValueError, match=r"3-D .* got shape \(3,\)"):
        nn.LastStep()(np.zeros(3))
    with pytest.raises(ValueError, match="lengths"):
        nn.LastStep().forward(np.zeros((4, 2, 3)), lengths=[5, 1])
    with pytest.raises(TypeError, match="batch_first"):
        nn.LastStep(batch_first="yes")


def test_backward_needs_a_training_forward_for_every_module():
    for module, x, d_y in [(nn.Tanh(), np.ones(2), np.ones(2)), (nn.Softmax(), np.ones(2), np.ones(2)),
                           (nn.Dropout(), np.ones(2), np.ones(2)),
                           (nn.LastStep(), np.ones((2, 1, 2)), np.ones((1, 2)))]:
        with pytest.raises(RuntimeError, match=rf"{type(module).__name__}\.backward\(\) needs"):
            module.backward(d_y)
        module(x)  # inference saves nothing
        with pytest.raises(RuntimeError):
            module.backward(d_y)
        module.forward(x, training=True)
        module.backward(d_y)
        with pytest.raises(RuntimeError):  # one backward per training forward
            module.backward(d_y)
