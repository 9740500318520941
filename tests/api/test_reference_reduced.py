"""rnnfast.reference's reduced-precision definitions (int8 and bf16 weights) against themselves and against
second implementations: the quantizations' round-trip errors (weights symmetric, activations asymmetric),
their special rows and ties, the exact integer products, bfloat16 rounding (bit arithmetic, float64
distances, PyTorch), the bf16 chain's order, a layer with exactly representable values against the float32
ops, and the error bounds against float32.
(The kernels against these definitions: tests/kernels/test_reduced_products.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import reference as R

from helpers.cells import CELLS, GATES
from helpers.reduced import bf16_chain_by_loops, bf16_round_by_arithmetic, int64_product

F32 = np.float32


def rows_with_outliers(rng, M, K):
    """Normal rows at scales 1e-3 to 1e3, some with one large outlier, one of equal magnitudes, some of one
    sign (after a relu or a sigmoid)."""
    a = rng.standard_normal((M, K)) * 10.0 ** rng.uniform(-3, 3, (M, 1))
    a[::3, rng.integers(0, K)] *= 50
    a[1, :] = -2.5
    a[4::5] = np.abs(a[4::5])
    a[5::7] = -np.abs(a[5::7])
    return a.astype(F32)


# ----------------------------------------------------------------------------------------------------
# int8 quantization: weights (symmetric int8), activations (asymmetric uint8)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [1, 2, 5, 16, 17, 64, 301])
def test_weight_round_trip_error_is_at_most_half_a_scale(K):
    a = rows_with_outliers(np.random.default_rng(K), 12, K)
    q, s = R.quantize_int8_rows(a)
    assert q.dtype == np.int8 and s.dtype == F32 and q.shape == a.shape and s.shape == (12,)
    assert q.min() >= -127 and q.max() <= 127
    back = s.astype(np.float64)[:, None] * q
    # Half a grid step, plus the float32 rounding of a * inv, inv and the scale (the reference's derivation).
    assert np.all(np.abs(a - back) <= s[:, None].astype(np.float64) / 2 * (1 + 2.0 ** -14))
    # The largest magnitude of each row lands on +-127, and the scale is f32(m / 127).
    m = np.abs(a).max(axis=1)
    np.testing.assert_array_equal(np.abs(q).max(axis=1), 127)
    np.testing.assert_array_equal(s, m / F32(127))


@pytest.mark.parametrize("K", [1, 2, 5, 16, 17, 64, 301])
def test_activation_round_trip_error_is_at_most_half_a_scale(K):
    a = rows_with_outliers(np.random.default_rng(K), 14, K)
    q, s, z = R.quantize_uint8_rows(a)
    assert q.dtype == np.uint8 and s.dtype == F32 and z.dtype == np.int32 and q.shape == a.shape
    assert s.shape == z.shape == (14,)
    assert np.all((0 <= z) & (z <= 255))
    back = s.astype(np.float64)[:, None] * (q.astype(np.int64) - z[:, None])
    assert np.all(np.abs(a - back) <= s[:, None].astype(np.float64) / 2 * (1 + 2.0 ** -12))
    # The span with 0 in 255 steps: s = f32(span / 255); the ends of the span are the grid's ends.
    lo, hi = np.minimum(a.min(axis=1), 0), np.maximum(a.max(axis=1), 0)
    np.testing.assert_array_equal(s, (hi - lo) / F32(255))
    np.testing.assert_array_equal(q.min(axis=1)[lo < 0], 0)
    np.testing.assert_array_equal(q.max(axis=1)[hi > 0], 255)
    # One-signed rows: the zero point at the grid's end.
    np.testing.assert_array_equal(z[a.min(axis=1) >= 0], 0)
    np.testing.assert_array_equal(z[a.max(axis=1) <= 0], 255)


def test_activation_rounding_and_zero_point():
    # span 255 makes inv = 1 exactly: rint sees the elements; the zero point is rint(128) = 128
    a = np.array([[127, -128, 0.5, 1.5, -0.5, -1.5, 2.5, -0.0, 0]], F32)
    q, s, z = R.quantize_uint8_rows(a)
    assert s[0] == 1 and z[0] == 128
    np.testing.assert_array_equal(q[0].astype(int) - 128, [127, -128, 0, 2, 0, -2, 2, 0, 0])
    # a tie in the zero point: span 2 over [-1, 1], inv = 127.5, -lo * inv = 127.5 rounds to 128, and the
    # top element's 127.5 + 128 rounds to 256, clipped to 255
    q, s, z = R.quantize_uint8_rows(np.array([[-1, 1, 0]], F32))
    assert z[0] == 128 and s[0] == F32(2) / F32(255)
    np.testing.assert_array_equal(q[0], [0, 255, 128])


def test_activation_special_rows():
    a = np.array([[0, 0, 0], [-0.0, 0, 0], [1, np.nan, 2], [np.inf, 1, 1], [-np.inf, 0, 0],
                  [3.4e38, -3.4e38, 1],  # the span overflows float32
                  [1e-37, 0, -5e-38], [1e-38, 0, 0],  # the span is below 255 / FLT_MAX: taken as zero
                  [3e38, 1, 0], [1e-30, -2e-30, 0]], F32)
    with np.errstate(all="raise", under="ignore"):  # no NaN reaches an integer cast
        q, s, z = R.quantize_uint8_rows(a)
    np.testing.assert_array_equal(s[[0, 1, 6, 7]], 0)
    assert np.isnan(s[2:6]).all()
    np.testing.assert_array_equal(q[:8], 0)
    np.testing.assert_array_equal(z[:8], 0)
    np.testing.assert_array_equal(q[8], [255, 0, 0])
    np.testing.assert_array_equal(z[8:], [0, 170])
    np.testing.assert_array_equal(q[9], [255, 0, 170])
    assert np.isfinite(s[8:]).all() and (s[8:] > 0).all()
    # The products of a NaN-scaled row are NaN, as float32 would make them; a zero row's are zeros.
    qw, sw = R.quantize_int8_rows(np.ones((2, 3), F32))
    y = R.reduced_product(a, "int8", qw, sw)
    assert np.isnan(y[2:6]).all() and (y[[0, 1, 6, 7]] == 0).all() and np.isfinite(y[8:]).all()


def test_weights_round_half_to_even_and_keep_signs():
    # m = 127 makes inv = 1 exactly: the elements are what rint sees.
    a = np.array([[127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.4999998, -0.0]], F32)
    q, s = R.quantize_int8_rows(a)
    assert s[0] == 1
    np.testing.assert_array_equal(q[0], [127, 0, 2, 2, 0, -2, -2, 3, 0])


def test_weight_special_rows():
    a = np.array([[0, 0, 0], [-0.0, 0, 0], [1, np.nan, 2], [np.inf, 1, 1], [-np.inf, 0, 0],
                  [3.4e38, -3.4e38, 1], [1e-30, -2e-30, 0], [1e-37, 0, -2e-45]], F32)
    with np.errstate(all="raise", under="ignore"):  # no NaN reaches the int8 cast
        q, s = R.quantize_int8_rows(a)
    np.testing.assert_array_equal(s[:2], [0, 0])  # all-zero rows: scale 0, q 0
    assert np.isnan(s[2:5]).all()  # a NaN or an infinity in the row: NaN scale, q 0
    np.testing.assert_array_equal(q[:5], 0)
    np.testing.assert_array_equal(q[5], [127, -127, 0])  # huge but finite: still on the grid
    np.testing.assert_array_equal(q[6], [64, -127, 0])  # tiny but normal: 127/m stays finite
    np.testing.assert_array_equal(q[7], [127, 0, -127])  # below 127/FLT_MAX: zeros stay, the rest +-127
    assert np.isfinite(s[5:]).all() and (s[5:] > 0).all()


def test_float64_input_is_rounded_to_float32_first():
    a = np.random.default_rng(3).standard_normal((4, 9))
    for got, want in zip(R.quantize_int8_rows(a) + R.quantize_uint8_rows(a),
                         R.quantize_int8_rows(a.astype(F32)) + R.quantize_uint8_rows(a.astype(F32))):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(R.bf16_round(a), R.bf16_round(a.astype(F32)))


# ----------------------------------------------------------------------------------------------------
# int8 products
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [1, 3, 64, 1000, 65536])
def test_int8_product_is_the_exact_integer_sum(K):
    rng = np.random.default_rng(K)
    qa = rng.integers(0, 256, (5, K)).astype(np.uint8)
    zp = rng.integers(0, 256, 5).astype(np.int32)
    qw = rng.integers(-128, 128, (7, K)).astype(np.int8)
    qa[0], zp[0], qw[0] = 255, 0, -128  # the largest sums: K * 255 * 128
    qa[1], zp[1], qw[1] = 0, 255, -128
    acc = R.int8_product(qa, zp, qw)
    assert acc.dtype == np.int64
    np.testing.assert_array_equal(acc, int64_product(qa, zp, qw))
    assert acc[0, 0] == -K * 255 * 128 and acc[1, 0] == K * 255 * 128


def test_int8_dequantize_rounds_as_float32_scalars():
    rng = np.random.default_rng(4)
    acc = rng.integers(-(2 ** 28), 2 ** 28, (3, 4))  # beyond 2^24: f32(acc) rounds
    sa = rng.uniform(0, 0.1, 3).astype(F32)
    sw = rng.uniform(0, 0.1, 4).astype(F32)
    y = R.int8_dequantize(acc, sa, sw)
    for i in range(3):
        for n in range(4):
            assert y[i, n] == F32(F32(acc[i, n]) * F32(sa[i] * sw[n]))


def test_int8_product_of_grid_values_is_exact():
    """Rows already on the grids (activations integers spanning [-128, 127] or [0, 255]; weights integers
    with a largest magnitude of 127 times a power of two) quantize without error, so the reduced product
    is the exact product."""
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (6, 33)).astype(F32)
    a[:, :2] = [127, -128]
    a[3:] = rng.integers(0, 256, (3, 33))
    a[3:, :2] = [255, 0]
    w = rng.integers(-127, 128, (8, 33)).astype(F32)
    w[:, 3] = -127
    w *= F32(2.0 ** -7)
    y = R.reduced_product(a, "int8", *R.quantize_int8_rows(w))
    np.testing.assert_array_equal(y, a.astype(np.float64) @ w.T.astype(np.float64))


# ----------------------------------------------------------------------------------------------------
# bf16
# ----------------------------------------------------------------------------------------------------


def special_floats() -> np.ndarray:
    bits = np.array([
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0xFF812345,
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F80FFFF, 0xBF808000, 0xBF818000,  # ties and just above
        0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF, 0xFF7F8000,  # the largest finite and the overflow to infinity
        0x00800000, 0x00808000, 0x00018000, 0x00008000, 0x80008001,  # smallest normal and denormals
    ], dtype=np.uint32)
    return bits.view(F32)


def test_bf16_rounding_matches_float64_distances():
    rng = np.random.default_rng(6)
    x = np.concatenate([
        (rng.standard_normal(3000) * 10.0 ** rng.uniform(-37, 38, 3000)).astype(F32),
        rng.integers(0, 2 ** 32, 3000, dtype=np.uint64).astype(np.uint32).view(F32),  # every kind of bits
        special_floats(),
    ])
    got, want = R.bf16_round(x), bf16_round_by_arithmetic(x)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, want)


def test_bf16_rounding_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = np.concatenate([(rng.standard_normal(100_000) * 10.0 ** rng.uniform(-30, 30, 100_000)).astype(F32),
                        special_floats()])
    finite = ~np.isnan(x)  # torch keeps NaN payloads its own way; NaN-ness is checked below
    want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    got = R.bf16_round(x)
    np.testing.assert_array_equal(got[finite], want[finite])
    assert np.isnan(R.bf16_to_float32(got[~finite])).all()


def test_bf16_round_trip_of_every_bit_pattern():
    bits = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    values = R.bf16_to_float32(bits)
    np.testing.assert_array_equal(values.view(np.uint32), bits.astype(np.uint32) << 16)
    nan = np.isnan(values)
    np.testing.assert_array_equal(R.bf16_round(values)[~nan], bits[~nan])
    assert np.isnan(R.bf16_to_float32(R.bf16_round(values[nan]))).all()


@pytest.mark.parametrize("K", [1, 2, 3, 8, 9, 33])
def test_bf16_chain_matches_a_scalar_loop(K):
    rng = np.random.default_rng(K)
    a = R.bf16_round(rng.standard_normal((3, K)) * 100)
    w = R.bf16_round(rng.standard_normal((4, K)))
    np.testing.assert_array_equal(R.bf16_product(a, w), bf16_chain_by_loops(a, w))


def test_bf16_chain_takes_the_odd_element_of_a_pair_first():
    # After acc = 2^24, adding 2 then 1 gives 2^24 + 4 (the tie at 2^24 + 3 goes to even);
    # adding 1 then 2 would give 2^24 (the tie at 2^24 + 1 goes to even), then 2^24 + 2.
    a = R.bf16_round(np.array([[2.0 ** 24, 0, 1, 2]], F32))
    w = R.bf16_round(np.ones((1, 4), F32))
    assert R.bf16_product(a, w)[0, 0] == 2.0 ** 24 + 4


def test_bf16_product_of_small_integers_is_exact():
    rng = np.random.default_rng(8)
    a = rng.integers(-100, 101, (5, 40)).astype(F32)
    w = rng.integers(-100, 101, (6, 40)).astype(F32)
    y = R.reduced_product(a, "bf16", R.bf16_round(w))
    np.testing.assert_array_equal(y, a.astype(np.float64) @ w.T.astype(np.float64))


# ----------------------------------------------------------------------------------------------------
# Error bounds against float32
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_dtype", ["int8", "bf16"])
@pytest.mark.parametrize("K", [1, 7, 64, 513])
def test_products_stay_within_the_documented_bound(weight_dtype, K):
    rng = np.random.default_rng(K)
    a = rows_with_outliers(rng, 30, K)
    w = rows_with_outliers(rng, 20, K)
    exact = a.astype(np.float64) @ w.T.astype(np.float64)
    if weight_dtype == "int8":
        y, bound = R.reduced_product(a, "int8", *R.quantize_int8_rows(w)), R.int8_product_error_bound(a, w)
    else:
        y, bound = R.reduced_product(a, "bf16", R.bf16_round(w)), R.bf16_product_error_bound(a, w)
    err = np.abs(y - exact)
    assert np.all(err <= bound)
    # The bound is not vacuous: somewhere the error comes within a factor of 20 of it (a worst case over
    # K terms of either sign; random errors cancel, so the gap grows with K). One-element int8 rows
    # quantize exactly (to +-127), so only rounding is left there.
    if not (weight_dtype == "int8" and K == 1):
        assert (err / bound).max() > 0.05


# ----------------------------------------------------------------------------------------------------
# A layer, one direction
# ----------------------------------------------------------------------------------------------------


def float_forward(cell, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    if cell == "lstm":
        return R.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=lengths)
    if cell == "gru":
        return R.gru(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=lengths)
    return R.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity=cell[4:], lengths=lengths)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("weight_dtype", ["int8", "bf16"])
def test_exactly_representable_step_equals_the_float32_cell(cell, weight_dtype):
    """One step from a state on the grid, with inputs and weights on it, without biases: the products are
    exact, so the reduced layer is the float32 reference cell bit for bit (gates, cell and state alike)."""
    rng = np.random.default_rng(9)
    G, H, I, B = GATES[cell], 6, 5, 4
    grid = lambda *shape: rng.integers(-127, 128, shape).astype(F32)  # noqa: E731
    x, h0, c0 = grid(1, B, I), grid(B, H), grid(B, H) / 64
    x[..., :2], h0[:, :2] = [127, -128], [-128, 127]  # activation rows spanning 255: scale 1, zero point 128
    w_ih, w_hh = grid(G * H, I) / 4096, grid(G * H, H) / 4096
    w_ih[:, 1], w_hh[:, 2] = 127 / 4096, -127 / 4096  # weight scale 2^-12 exactly
    if weight_dtype == "bf16":  # small integers and these weights are exact in bfloat16 too
        assert np.array_equal(R.bf16_to_float32(R.bf16_round(w_hh)), w_hh)
    (vi, si), (vh, sh) = R.quantize_weight(w_ih, weight_dtype), R.quantize_weight(w_hh, weight_dtype)
    c0 = c0 if cell == "lstm" else None
    got = R.reduced_forward(cell, x, h0, c0, vi, vh, weight_dtype=weight_dtype, w_ih_scales=si, w_hh_scales=sh)
    want = float_forward(cell, x, h0, c0, w_ih, w_hh)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("weight_dtype", ["int8", "bf16"])
def test_all_zero_weights_leave_the_biases_as_the_float32_cell_has_them(cell, weight_dtype):
    """All-zero weight rows (scale 0, documented): every product is zero, so the step is the float32 cell
    on the biases alone; also where the GRU's b_hn goes (with gh, inside the reset gate)."""
    rng = np.random.default_rng(10)
    G, H, I, T, B = GATES[cell], 5, 3, 4, 3
    x = rng.standard_normal((T, B, I)).astype(F32)
    b_ih, b_hh = (rng.standard_normal(G * H).astype(F32) for _ in range(2))
    zeros_ih, zeros_hh = np.zeros((G * H, I), F32), np.zeros((G * H, H), F32)
    (vi, si), (vh, sh) = R.quantize_weight(zeros_ih, weight_dtype), R.quantize_weight(zeros_hh, weight_dtype)
    if weight_dtype == "int8":
        assert not si.any() and not sh.any()
    got = R.reduced_forward(cell, x, None, None, vi, vh, b_ih, b_hh, weight_dtype=weight_dtype,
                            w_ih_scales=si, w_hh_scales=sh)
    want = float_forward(cell, x, None, None, zeros_ih, zeros_hh, b_ih, b_hh)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("cell", CELLS)
def test_lengths_are_each_row_run_alone(cell):
    rng = np.random.default_rng(11)
    G, H, I, T = GATES[cell], 4, 3, 6
    lengths = np.array([6, 0, 3, 6, 1])
    x = rng.standard_normal((T, 5, I)).astype(F32)
    h0 = rng.standard_normal((5, H)).astype(F32)
    c0 = h0 / 2 if cell == "lstm" else None
    (vi, si), (vh, sh) = (R.quantize_weight(rng.standard_normal((G * H, K)), "int8") for K in (I, H))
    b = rng.standard_normal(G * H).astype(F32)
    out, h_n, c_n = R.reduced_forward(cell, x, h0, c0, vi, vh, b, b, weight_dtype="int8", w_ih_scales=si,
                                      w_hh_scales=sh, lengths=lengths)
    for row, n in enumerate(lengths):
        c_row = None if c0 is None else c0[row:row + 1]
        o, h, c = R.reduced_forward(cell, x[:n, row:row + 1], h0[row:row + 1], c_row, vi, vh, b, b,
                                    weight_dtype="int8", w_ih_scales=si, w_hh_scales=sh)
        np.testing.assert_array_equal(out[:n, row], o[:, 0])
        np.testing.assert_array_equal(out[n:, row], 0)
        np.testing.assert_array_equal(h_n[row], h[0])
        if c0 is not None:
            np.testing.assert_array_equal(c_n[row], c[0])


def test_reduced_forward_refuses_bad_arguments():
    rng = np.random.default_rng(12)
    w_ih, s_ih = R.quantize_int8_rows(rng.standard_normal((8, 3)))
    w_hh, s_hh = R.quantize_int8_rows(rng.standard_normal((8, 2)))
    x = np.zeros((2, 1, 3), F32)
    kw = dict(weight_dtype="int8", w_ih_scales=s_ih, w_hh_scales=s_hh)
    with pytest.raises(ValueError, match="weight_dtype"):
        R.reduced_forward("lstm", x, None, None, w_ih, w_hh, **{**kw, "weight_dtype": "int4"})
    with pytest.raises(TypeError, match="w_ih.*int8"):
        R.reduced_forward("lstm", x, None, None, w_ih.astype(F32), w_hh, **kw)
    with pytest.raises(ValueError, match=r"w_ih has shape \(8, 3\), expected \(8, 4\)"):
        R.reduced_forward("lstm", np.zeros((2, 1, 4), F32), None, None, w_ih, w_hh, **kw)
    with pytest.raises(TypeError, match="w_hh_scales"):
        R.reduced_forward("lstm", x, None, None, w_ih, w_hh, **{**kw, "w_hh_scales": None})
    with pytest.raises(ValueError, match="c0 is only used by the LSTM"):
        R.reduced_forward("gru", x, None, np.zeros((1, 2), F32), w_ih[:6], w_hh[:6], **kw)
    with pytest.raises(ValueError, match="lengths"):
        R.reduced_forward("lstm", x, None, None, w_ih, w_hh, lengths=[3], **kw)
