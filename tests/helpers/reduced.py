"""Helpers of the reduced-precision tests (int8 and bf16 weights): the instruction-set configurations to run
on, independent second implementations of the reference's definitions, and the per-step error bound of a
quantized cell against float32."""

from __future__ import annotations

import contextlib
import math
import struct
from typing import Iterator, Optional

import numpy as np

from rnnfast import _core
from rnnfast import reference as R

from helpers.layer_harness import make

__all__ = ["ISA_CONFIGS", "ISA_IDS", "WEIGHT_DTYPES", "on_isa", "int64_product", "bf16_round_by_arithmetic",
           "bf16_chain_by_loops", "reference_run", "TeacherForcedCheck", "checked_run", "max_relative_error",
           "step_error_bound", "check_steps_within_bound", "one_direction_layers", "weights_of", "quantized_step",
           "random_input"]

#: (instruction set, reduced extensions) pairs to run on: every available ISA, and the AVX-512 tier both
#: with its VNNI/BF16 instructions and with its plain AVX-512 code (the switch matters only there).
ISA_CONFIGS = [(isa, ext) for isa in _core.testing.available_isas()
               for ext in ((True, False) if isa == "avx512" else (True,))]
ISA_IDS = [isa + ("" if ext else "-plain") for isa, ext in ISA_CONFIGS]

WEIGHT_DTYPES = ["int8", "bf16"]


@contextlib.contextmanager
def on_isa(isa: str, extensions: bool) -> Iterator[None]:
    """Run the body on ``isa`` with the reduced-precision extensions on or off; restore both after."""
    before_isa, before_ext = _core.isa(), _core.testing.get_reduced_extensions()
    _core.testing.set_isa(isa)
    _core.testing.set_reduced_extensions(extensions)
    try:
        yield
    finally:
        _core.testing.set_isa(before_isa)
        _core.testing.set_reduced_extensions(before_ext)


# ----------------------------------------------------------------------------------------------------
# Second implementations, written differently from rnnfast.reference
# ----------------------------------------------------------------------------------------------------


def int64_product(qa: np.ndarray, zero_points: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """sum_k (qa[i, k] - zero_points[i]) * qw[n, k] in int64 arithmetic only (the reference goes through
    float64)."""
    centred = qa.astype(np.int64) - zero_points.astype(np.int64)[:, None]
    return np.einsum("ik,nk->in", centred, qw.astype(np.int64))


def _bf16_value(bits16: int) -> float:
    """The value of bfloat16 bits as a Python float; the infinity counts as +-2^128, the next power of two
    past the largest finite value, which is where IEEE rounding to nearest overflows."""
    if bits16 & 0x7FFF == 0x7F80:
        return math.copysign(2.0 ** 128, -1.0 if bits16 & 0x8000 else 1.0)
    return struct.unpack("<f", struct.pack("<I", bits16 << 16))[0]


def bf16_round_by_arithmetic(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, to nearest even, by comparing the distances to the two neighbours in exact
    float64 arithmetic (the reference adds a rounding bias to the bits instead). NaN becomes the quiet NaN
    with its sign and upper payload bits."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(x.size, dtype=np.uint16)
    for i, (v, b) in enumerate(zip(x.ravel().tolist(), x.ravel().view(np.uint32).tolist())):
        toward_zero = b >> 16
        if v != v:
            out[i] = toward_zero | 0x40
        elif math.isinf(v):
            out[i] = toward_zero
        else:
            away = toward_zero + 1  # the next magnitude up, same sign
            d_low = abs(v - _bf16_value(toward_zero))
            d_high = abs(_bf16_value(away) - v)
            tie_to_even = d_low == d_high and toward_zero % 2 == 0
            out[i] = toward_zero if d_low < d_high or tie_to_even else away
    return out.reshape(x.shape)


def bf16_chain_by_loops(a_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """The bf16 product chain one element at a time with float32 scalars, in the pair order (odd first)."""
    A, W = R.bf16_to_float32(a_bits), R.bf16_to_float32(w_bits)
    M, K = A.shape
    N = W.shape[0]
    out = np.empty((M, N), dtype=np.float32)
    order = [k for j in range(0, K, 2) for k in (j + 1, j) if k < K]
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(M):
            for n in range(N):
                acc = np.float32(0)
                for k in order:
                    acc = np.float32(acc + np.float32(A[i, k] * W[n, k]))
                out[i, n] = acc
    return out


# ----------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------


def reference_run(model, *args, **kwargs):
    """``model(*args, **kwargs)`` with the layers' ops swapped for rnnfast.reference (for a quantized layer:
    rnnfast.reference.reduced_forward)."""
    import rnnfast._rnn_base as rnn_base

    saved = rnn_base.functional_ops
    rnn_base.functional_ops = lambda: R
    try:
        return model(*args, **kwargs)
    finally:
        rnn_base.functional_ops = saved


class TeacherForcedCheck:
    """Layer ops (for ``rnnfast._rnn_base.functional_ops``) that run each layer and direction of a quantized
    layer on the native kernels and check every step against rnnfast.reference.reduced_forward started from
    the native run's own state and input; the native results go on to the next layer, so the whole call
    returns exactly what the native layer returns.

    Why teacher forcing: the kernels agree with the reference to float32 rounding, and a state one ulp apart
    is, rarely, quantized to a different int8 (or bf16) value at the next step when it sits on a rounding
    boundary, after which the two runs differ by a grid step (about 1e-3). From the same state, the
    quantization is the same bits (tests/kernels/test_reduced_products.py), so each step must agree to float32
    rounding. The LSTM's cell state is not quantized: the reference carries its own.
    """

    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.steps_checked = 0
        self.worst = 0.0

    def reduced_forward(self, cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *, weight_dtype, w_ih_scales, w_hh_scales,
                        lengths):
        from rnnfast._quantized import QuantizedWeight
        from rnnfast._reduced_native import reduced_forward as native

        out, h_n, c_n = native(cell, x, h0, c0, QuantizedWeight(cell, weight_dtype, w_ih, w_ih_scales),
                               QuantizedWeight(cell, weight_dtype, w_hh, w_hh_scales), b_ih, b_hh, lengths)
        T, B, H = out.shape
        steps = np.full(B, T) if lengths is None else np.asarray(lengths)
        h = np.zeros((B, H), np.float32) if h0 is None else np.array(h0, np.float32)
        c = (np.zeros((B, H), np.float32) if c0 is None else np.array(c0, np.float32)) if cell == "lstm" else None
        for t in range(T):
            running = t < steps
            _, h_ref, c_ref = R.reduced_forward(cell, x[t:t + 1], h, c, w_ih, w_hh, b_ih, b_hh,
                                                weight_dtype=weight_dtype, w_ih_scales=w_ih_scales,
                                                w_hh_scales=w_hh_scales)
            self._check(out[t][running], h_ref[running], f"{cell} step {t}")
            np.testing.assert_array_equal(out[t][~running], 0)
            h = np.where(running[:, None], out[t], h)  # the native state starts the next step
            if c is not None:
                c = np.where(running[:, None], c_ref, c)
        self._check(h_n, h, f"{cell} h_n")
        np.testing.assert_array_equal(h_n, h)  # h_n is the output of each row's last step (or h0)
        if c is not None:
            self._check(c_n, c, f"{cell} c_n")
        return out, h_n, c_n

    def _check(self, got: np.ndarray, want: np.ndarray, label: str) -> None:
        if got.size:
            err = float(np.abs(got - want).max() / max(1.0, float(np.abs(want).max())))
            assert err <= self.tolerance, f"{label}: {err:.3g} of max(|result|, 1) from the reference"
            self.worst = max(self.worst, err)
        self.steps_checked += 1


def checked_run(model, *args, tolerance: float, **kwargs):
    """``model(*args, **kwargs)`` (a quantized layer) with every layer, direction and step checked by
    :class:`TeacherForcedCheck`; returns the results and the check (its ``worst`` error)."""
    import rnnfast._rnn_base as rnn_base

    check = TeacherForcedCheck(tolerance)
    saved = rnn_base.functional_ops
    rnn_base.functional_ops = lambda: check
    try:
        return model(*args, **kwargs), check
    finally:
        rnn_base.functional_ops = saved


def max_relative_error(got, want) -> float:
    """Largest |got - want| over max(|want|, 1), over arrays or (h, c) pairs."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    worst = 0.0
    for g, w in zip(got, want):
        if w.size:
            worst = max(worst, float(np.abs(g - w).max() / max(1.0, float(np.abs(w).max()))))
    return worst


# ----------------------------------------------------------------------------------------------------
# The per-step error bound against float32
# ----------------------------------------------------------------------------------------------------

# Float32 rounding of everything that is not the products: the state handed over in float32, the bias
# additions (the GRU's are associated differently), the kernels' fused multiply-adds and the gate
# activations (within 2 ulp): a few ulps of the values involved, which are of order one.
ROUNDING_SLACK = 2e-6


def product_bound(weight_dtype: str, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """rnnfast.reference's bound on one reduced product's error, (B, G*H)."""
    bound = R.int8_product_error_bound if weight_dtype == "int8" else R.bf16_product_error_bound
    return bound(a, w)


def step_error_bound(cell: str, weight_dtype: str, x_t, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """A bound, (B, H), on |h_t(quantized) - h_t(float)| for one step of ``cell`` from the same float32 state.

    The pre-activations move by at most ``e = bound(x_t, W_ih) + bound(h_prev, W_hh)`` (the products' bounds)
    plus float32 rounding. Through the gates: tanh and relu are 1-Lipschitz, sigmoid 1/4-Lipschitz, so

    - RNN: ``|dh| <= e``;
    - LSTM: ``|di| <= e_i/4`` (f, o alike), ``|dg| <= e_g``; ``c = f c' + i g`` gives
      ``|dc| <= |df||c'| + |di||g| + |i||dg| + |di||dg|``; ``h = o tanh(c)`` gives
      ``|dh| <= |do||tanh c| + |o||dc| + |do||dc|`` (with the float model's gate values, and ``|g|``,
      ``|tanh c|`` taken as at most 1 where the perturbed value is involved);
    - GRU: ``|dr| <= e_r/4``, ``|dz| <= e_z/4``; the n argument ``gx_n + r gh_n`` moves by at most
      ``e_xn + |dr||gh_n| + |r| e_hn + |dr| e_hn``, so ``|dn|`` too; ``h = n + z (h' - n)`` gives
      ``|dh| <= |dn| (1 - z + |dz|) + |dz||h' - n|``.

    The float model's values are computed here in float64 from the same float32 state.
    """
    x_t, h_prev = np.asarray(x_t, np.float32), np.asarray(h_prev, np.float32)
    H = h_prev.shape[1]
    e_x = product_bound(weight_dtype, x_t, w_ih) + ROUNDING_SLACK
    e_h = product_bound(weight_dtype, h_prev, w_hh) + ROUNDING_SLACK
    e = e_x + e_h
    f64 = np.float64
    gx = x_t.astype(f64) @ w_ih.astype(f64).T + (0 if b_ih is None else b_ih.astype(f64))
    gh = h_prev.astype(f64) @ w_hh.astype(f64).T + (0 if b_hh is None else b_hh.astype(f64))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    block = lambda a, j: a[:, j * H:(j + 1) * H]  # noqa: E731
    if cell.startswith("rnn"):
        return e + ROUNDING_SLACK
    if cell == "lstm":
        pre = gx + gh
        i, f, g, o = sig(block(pre, 0)), sig(block(pre, 1)), np.tanh(block(pre, 2)), sig(block(pre, 3))
        c = f * c_prev.astype(f64) + i * g
        di, df, dg, do = block(e, 0) / 4, block(e, 1) / 4, block(e, 2), block(e, 3) / 4
        dc = df * np.abs(c_prev) + di * np.abs(g) + i * dg + di * dg + ROUNDING_SLACK
        return do * np.abs(np.tanh(c)) + o * dc + do * dc + ROUNDING_SLACK
    r, z = sig(block(gx, 0) + block(gh, 0)), sig(block(gx, 1) + block(gh, 1))
    n = np.tanh(block(gx, 2) + r * block(gh, 2))
    dr, dz = block(e, 0) / 4, block(e, 1) / 4
    dn = block(e_x, 2) + dr * np.abs(block(gh, 2)) + r * block(e_h, 2) + dr * block(e_h, 2) + ROUNDING_SLACK
    return dn * (1 - z + dz) + dz * np.abs(h_prev - n) + ROUNDING_SLACK


def one_direction_layers(model) -> dict:
    """{(layer, direction): single-layer unidirectional float model with those weights} of ``model``."""
    out = {}
    D = model.num_directions
    params = model.parameters()
    for k in range(model.num_layers):
        for d in range(D):
            suffix = f"_l{k}" + ("_reverse" if d else "")
            I_k = params["weight_ih" + suffix].shape[1]
            kw = {"bias": model.bias, "dtype": model.dtype}
            cell = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}[model.mode]
            single = make(cell, I_k, model.hidden_size, **kw)
            single.load_state_dict({name.replace(suffix, "_l0"): value for name, value in params.items()
                                    if name.endswith(suffix)})
            out[(k, d)] = single
    return out


def weights_of(single) -> tuple:
    p = single.parameters()
    return p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0")


def quantized_step(q_single, x_t: np.ndarray, h_prev: np.ndarray, c_prev: Optional[np.ndarray]) -> np.ndarray:
    """h_t of one step of a single-layer quantized model from the given float32 state."""
    state = (h_prev[None], c_prev[None]) if c_prev is not None else h_prev[None]
    out, _ = q_single(x_t[None], state)
    return out[0]


def check_steps_within_bound(q_single, single, cell: str, weight_dtype: str, x: np.ndarray, h0, c0) -> float:
    """Run the float model ``single`` (one layer, one direction) over ``x`` (T, B, I) in float64 from its
    float32 weights; at each step run the quantized model one step from the float state and check its h_t
    against :func:`step_error_bound`. Returns the largest error over bound seen (<= 1)."""
    w_ih, w_hh, b_ih, b_hh = weights_of(single)
    f64 = single.dtype == np.float64
    float64_model = single if f64 else make(cell, single.input_size, single.hidden_size, bias=single.bias,
                                            dtype="float64")
    if not f64:
        float64_model.load_state_dict(single.state_dict())
    T, B, _ = x.shape
    H = single.hidden_size
    h = np.zeros((B, H), np.float32) if h0 is None else h0.astype(np.float32)
    c = (np.zeros((B, H), np.float32) if c0 is None else c0.astype(np.float32)) if cell == "lstm" else None
    worst = 0.0
    for t in range(T):
        state = (h[None].astype(np.float64), c[None].astype(np.float64)) if c is not None else h[None].astype(np.float64)
        _, new_state = float64_model(x[t:t + 1].astype(np.float64), state)
        want = (new_state[0] if c is not None else new_state)[0]
        got = quantized_step(q_single, x[t], h, c)
        bound = step_error_bound(cell, weight_dtype, x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        err = np.abs(got.astype(np.float64) - want)
        assert np.all(err <= bound), (
            f"step {t}: error {err.max():.3g} above the bound at {np.unravel_index(np.argmax(err - bound), err.shape)}"
            f" (error/bound up to {(err / bound).max():.3g})")
        worst = max(worst, float((err / bound).max()))
        # the float model's state, in float32, starts the next step
        h = want.astype(np.float32)
        if c is not None:
            c = new_state[1][0].astype(np.float32)
    return worst


def random_input(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float32)
