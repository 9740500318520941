"""The reduced-precision kernels' products bit for bit against rnnfast.reference (int8 and bf16 weights):
the activation quantization (uint8 with a zero point; bfloat16), the exact int8 sums (int64 NumPy) and the
bf16 chains, on every instruction set (the AVX-512 tier with and without its VNNI/BF16 instructions), every
depth K = 1..70 and widths N off every vector tail, batches 1..N, extremes (+-255 x 127 and -128, sums near
the int32 limit, zero, NaN and infinite rows), and on 1 and 2 threads with the same bits."""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import _core
from rnnfast import reference as R

from helpers.reduced import ISA_CONFIGS, ISA_IDS, int64_product, on_isa

F32 = np.float32
WIDTHS = [1, 3, 15, 16, 17, 33, 64, 70]  # N = output rows (an RNN's G*H = H): below, at and past each vector width
BATCHES = [1, 2, 5, 8, 13]


@pytest.fixture(params=ISA_CONFIGS, ids=ISA_IDS)
def isa_config(request):
    with on_isa(*request.param):
        yield request.param


def activations(rng, M, K) -> np.ndarray:
    """Rows at different scales, one with an outlier, one constant (every element at an end of the grid),
    one of each sign only (zero point 0 and 255)."""
    a = rng.standard_normal((M, K)) * 10.0 ** rng.uniform(-2, 2, (M, 1))
    a[0, rng.integers(0, K)] *= 30
    if M > 1:
        a[1, :] = -0.75
    if M > 3:
        a[2], a[3] = np.abs(a[2]), -np.abs(a[3])
    return a.astype(F32)


def int8_weights(rng, N, K, cell="rnn_tanh"):
    q, s = R.quantize_int8_rows(rng.standard_normal((N, K)).astype(F32))
    return q, s, _core.ReducedWeights(cell, "int8", q, s)


def bf16_weights(rng, N, K, cell="rnn_tanh"):
    bits = R.bf16_round(rng.standard_normal((N, K)).astype(F32))
    return bits, _core.ReducedWeights(cell, "bf16", bits, None)


def assert_int8_exact(a: np.ndarray, q_w: np.ndarray, packed, label: str) -> None:
    got = _core.testing.reduced_product(a, packed)
    assert got.dtype == np.int32 and got.shape == (a.shape[0], q_w.shape[0]), label
    q_a, _, zero_points = R.quantize_uint8_rows(a)
    np.testing.assert_array_equal(got, int64_product(q_a, zero_points, q_w), err_msg=label)


def assert_bf16_exact(a: np.ndarray, w_bits: np.ndarray, packed, label: str) -> None:
    got = _core.testing.reduced_product(a, packed)
    assert got.dtype == F32 and got.shape == (a.shape[0], w_bits.shape[0]), label
    want = R.bf16_product(R.bf16_round(a), w_bits)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=label)


# ----------------------------------------------------------------------------------------------------
# The kernels' own activation quantization
# ----------------------------------------------------------------------------------------------------


def special_rows(K: int) -> np.ndarray:
    rows = np.zeros((13, K), F32)
    rows[1, :] = -0.0
    rows[2, :] = 3.0
    rows[3, :] = np.linspace(-1, 1, K)
    rows[4, -1] = np.nan
    rows[5, 0] = np.inf
    rows[6, :] = -np.inf
    rows[7, :] = 3.0e38 * np.cos(np.arange(K))
    rows[8, :] = 1e-30 * np.sin(np.arange(K) + 1)  # tiny but normal, far above 127 / FLT_MAX
    rows[9, :] = (np.arange(K) % 9 - 4) + 0.5  # with the 127 below, scale 1: every element a tie for rint
    rows[9, 0] = 127
    rows[9, -1] = -128  # span 255 (when K > 1): scale 1, zero point 128
    rows[10, :] = np.abs(np.cos(np.arange(K))) + 0.5  # positive only: zero point 0
    rows[11, :] = -np.abs(np.sin(np.arange(K))) - 0.5  # negative only: zero point 255
    rows[12, :] = 1e-30  # tiny: the span 1e-30 is far above 255 / FLT_MAX
    return rows


@pytest.mark.parametrize("weight_dtype", ["int8", "bf16"])
def test_activation_quantization_is_the_reference(isa_config, weight_dtype):
    rng = np.random.default_rng(1)
    for K in list(range(1, 71)) + [127, 128, 129, 1000]:
        a = np.concatenate([activations(rng, 7, K), special_rows(K)])
        got = _core.testing.reduced_quantize_rows(weight_dtype, a)
        want = R.quantize_rows(a, weight_dtype)
        assert len(got) == 3, "(q, scales, zero points)"
        for name, g, w in zip(("q", "scales", "zero points"), got, want):
            if w is None:
                assert g is None, name
                continue
            assert g.dtype == w.dtype and g.shape == w.shape, name
            np.testing.assert_array_equal(g, w, err_msg=f"K={K} {name}")


def test_activation_quantization_of_spans_below_255_over_flt_max(isa_config):
    """A row whose span is below 255 / FLT_MAX (about 7.5e-37) has an infinite 255 / span; the reference
    takes it as a zero row (scale 0, zero point 0, q = 0). Its products are negligible either way (the
    scale is below 3e-39), but the kernels' zero point must be defined."""
    a = np.array([[1e-37, 0, -5e-38, 2e-45], [1e-38, 0, 0, 0], [0, -1e-39, 0, 0]], F32)
    for g, w in zip(_core.testing.reduced_quantize_rows("int8", a), R.quantize_rows(a, "int8")):
        np.testing.assert_array_equal(g, w)


# ----------------------------------------------------------------------------------------------------
# int8
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", range(1, 71))
def test_int8_products_are_exact_for_every_depth_and_tail(isa_config, K):
    rng = np.random.default_rng(K)
    for N in WIDTHS:
        q_w, _, packed = int8_weights(rng, N, K)
        for M in BATCHES:
            assert_int8_exact(activations(rng, M, K), q_w, packed, f"K={K} N={N} M={M}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
def test_int8_products_are_exact_for_every_cell_layout(isa_config, cell):
    gates = {"lstm": 4, "gru": 3, "rnn_relu": 1}[cell]
    rng = np.random.default_rng(2)
    for H, K in [(1, 1), (5, 9), (16, 64), (17, 33), (40, 130)]:
        q_w, _, packed = int8_weights(rng, gates * H, K, cell)
        for M in (1, 3, 8):
            assert_int8_exact(activations(rng, M, K), q_w, packed, f"{cell} H={H} K={K} M={M}")


def test_int8_products_of_every_batch_size(isa_config):
    rng = np.random.default_rng(3)
    q_w, _, packed = int8_weights(rng, 37, 45)
    for M in range(1, 38):
        assert_int8_exact(activations(rng, M, 45), q_w, packed, f"M={M}")


@pytest.mark.parametrize("K", [1, 2, 63, 64, 65, 4097, 65536])
@pytest.mark.parametrize("weight", [127, -127, -128])
def test_int8_extremes(isa_config, K, weight):
    """Activations at the ends of the grid (q - zero point = +-255) times weights +-127 and -128: every pair
    sum at its largest, up to K = 65536, where |acc| = K * 255 * 128 nearly fills int32."""
    q_w = np.full((3, K), weight, np.int8)
    q_w[1, ::2] = -q_w[1, ::2] if weight != -128 else 127  # alternating signs
    q_w[2, :] = 0  # an all-zero weight row
    packed = _core.ReducedWeights("rnn_tanh", "int8", q_w, np.array([1, 1, 0], F32))
    a = np.empty((4, K), F32)
    a[0], a[1], a[2], a[3] = 2.0, -2.0, 0.0, np.where(np.arange(K) % 2, 1.0, -1.0)
    assert_int8_exact(a, q_w, packed, f"K={K} weight={weight}")
    acc = _core.testing.reduced_product(a, packed)
    assert acc[0, 0] == K * 255 * weight and acc[1, 0] == -K * 255 * weight


def test_int8_nan_and_infinite_rows_give_zero_sums_and_nan_scales(isa_config):
    rng = np.random.default_rng(4)
    q_w, s_w, packed = int8_weights(rng, 20, 30)
    a = activations(rng, 5, 30)
    a[1, 7], a[2, 0], a[3, :] = np.nan, -np.inf, 0.0
    assert_int8_exact(a, q_w, packed, "special rows")
    acc = _core.testing.reduced_product(a, packed)
    assert not acc[1:4].any()
    _, s_a, zero_points = _core.testing.reduced_quantize_rows("int8", a)
    assert np.isnan(s_a[1:3]).all() and s_a[3] == 0 and np.isfinite(s_a[[0, 4]]).all()
    np.testing.assert_array_equal(zero_points[1:4], 0)


# ----------------------------------------------------------------------------------------------------
# bf16
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", range(1, 71))
def test_bf16_chains_are_the_reference_for_every_depth_and_tail(isa_config, K):
    rng = np.random.default_rng(100 + K)
    for N in WIDTHS:
        w_bits, packed = bf16_weights(rng, N, K)
        for M in BATCHES:
            assert_bf16_exact(activations(rng, M, K), w_bits, packed, f"K={K} N={N} M={M}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
def test_bf16_chains_for_every_cell_layout(isa_config, cell):
    gates = {"lstm": 4, "gru": 3, "rnn_relu": 1}[cell]
    rng = np.random.default_rng(5)
    for H, K in [(1, 1), (5, 9), (16, 64), (17, 33), (40, 300)]:
        w_bits, packed = bf16_weights(rng, gates * H, K, cell)
        for M in (1, 3, 8):
            assert_bf16_exact(activations(rng, M, K), w_bits, packed, f"{cell} H={H} K={K} M={M}")


def test_bf16_chain_order_and_special_values(isa_config):
    # Row 0: the pair order decides the result (2^24 + 4 with the odd element first, 2^24 + 2 otherwise).
    a = np.zeros((5, 6), F32)
    a[0, :4] = [2.0 ** 24, 0, 1, 2]
    a[1, :] = [1e38, 1e38, -1e38, 1e38, 1, 1]  # an infinite partial sum
    a[2, 3] = np.nan
    a[3, 1] = np.inf
    a[4, :] = -0.0
    w_bits = R.bf16_round(np.array([[1, 1, 1, 1, 1, 1], [1, 0, 1, -1, 0.5, 3], [0, 0, 0, 0, 0, 0]], F32))
    packed = _core.ReducedWeights("rnn_tanh", "bf16", w_bits, None)
    assert_bf16_exact(a, w_bits, packed, "special values")
    assert _core.testing.reduced_product(a, packed)[0, 0] == 2.0 ** 24 + 4


def test_bf16_products_of_every_batch_size(isa_config):
    rng = np.random.default_rng(6)
    w_bits, packed = bf16_weights(rng, 37, 45)
    for M in range(1, 38):
        assert_bf16_exact(activations(rng, M, 45), w_bits, packed, f"M={M}")


# ----------------------------------------------------------------------------------------------------
# Threads and instruction sets
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_dtype", ["int8", "bf16"])
def test_products_have_the_same_bits_on_every_isa_and_thread_count(weight_dtype, restore_threads):
    rng = np.random.default_rng(7)
    a = activations(rng, 96, 300)
    if weight_dtype == "int8":
        _, _, packed = int8_weights(rng, 520, 300)
    else:
        _, packed = bf16_weights(rng, 520, 300)
    results = {}
    for config, label in zip(ISA_CONFIGS, ISA_IDS):
        with on_isa(*config):
            for threads in (1, 2):
                rnnfast.set_num_threads(threads)
                results[(label, threads)] = _core.testing.reduced_product(a, packed)
    first = next(iter(results.values()))
    for key, value in results.items():
        np.testing.assert_array_equal(value, first, err_msg=str(key))
