"""The native cell variants (rnnfast.functional.variant_forward / variant_backward): gradients by finite
differences in float64, float32 against float64 on every instruction set, the same bits for every thread
count and for a sequence run step by step, and PyTorch's cells through the variant path equal to the
fused path. (The NumPy reference and the frameworks are compared in tests/api and tests/interop.)"""

from __future__ import annotations

import numpy as np
import pytest

import rnnfast
from rnnfast import _core
from rnnfast._variants import Activation, CellOptions, make_options

F = rnnfast.functional
ISAS = _core.testing.available_isas()
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
H = 5

# Each option alone and in combination, every activation in some role.
CASES = {
    "lstm_proj": make_options("lstm", H, proj_size=2),
    "lstm_peepholes": make_options("lstm", H, peepholes=True),
    "lstm_clip": make_options("lstm", H, clip=0.7),
    "lstm_input_forget_peepholes": make_options("lstm", H, input_forget=True, peepholes=True),
    "lstm_everything": make_options("lstm", H, proj_size=3, peepholes=True, clip=1.0,
                                    activations=[Activation("hard_sigmoid"), "elu", "softplus"]),
    "gru_reset_before": make_options("gru", H, reset_after=False),
    "gru_reset_before_clip_acts": make_options("gru", H, reset_after=False, clip=0.8,
                                               activations=["hard_sigmoid", "softsign"]),
    "gru_reset_after_clip_acts": make_options("gru", H, clip=0.5, activations=["sigmoid", Activation("leaky_relu", 0.1)]),
    "rnn_silu": make_options("rnn", H, activations=["silu"]),
    "rnn_selu_clip": make_options("rnn", H, activations=["selu"], clip=0.9),
    "rnn_scaled_tanh": make_options("rnn", H, activations=[Activation("scaled_tanh", 0.7, 1.3)]),
    "rnn_affine": make_options("rnn", H, activations=[Activation("affine", 0.5, 0.1)]),
    "rnn_relu6": make_options("rnn", H, activations=["relu6"]),
    "rnn_thresholded_relu": make_options("rnn", H, activations=[Activation("thresholded_relu", 0.2)]),
    "rnn_exponential": make_options("rnn", H, activations=["exponential"]),
    "lstm_relu_sigmoid_tanh": make_options("lstm", H, activations=["relu", "sigmoid", "tanh"]),
}


def problem(opts: CellOptions, T=4, B=3, I=3, hidden=H, dtype=np.float64, seed=0):
    """Random inputs, parameters and output weights of a scalar loss for one variant."""
    rng = np.random.default_rng(seed)
    G, P = GATES[opts.family], opts.proj_size
    R = P or hidden
    scale = 0.2 if opts.activations[0].name == "exponential" else 0.5  # keeps exp's chain of steps small
    p = {
        "x": rng.standard_normal((T, B, I)),
        "h0": rng.standard_normal((B, R)) * 0.5,
        "c0": rng.standard_normal((B, hidden)) * 0.5 if opts.family == "lstm" else None,
        "w_ih": rng.standard_normal((G * hidden, I)) * scale,
        "w_hh": rng.standard_normal((G * hidden, R)) * scale,
        "b_ih": rng.standard_normal(G * hidden) * 0.3,
        "b_hh": rng.standard_normal(G * hidden) * 0.3,
        "w_hr": rng.standard_normal((P, hidden)) * 0.5 if P else None,
        "w_ch": rng.standard_normal(3 * hidden) * 0.5 if opts.peepholes else None,
    }
    p = {k: None if v is None else v.astype(dtype) for k, v in p.items()}
    weights = {"out": rng.standard_normal((T, B, R)), "h_n": rng.standard_normal((B, R)),
               "c_n": rng.standard_normal((B, hidden))}
    return p, weights


def forward(opts, p, training=False, lengths=None):
    return F.variant_forward(opts, p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["w_hr"],
                             p["w_ch"], training=training, lengths=lengths)


def backward(opts, p, res, wts, lengths=None):
    out, h_n, c_n, ws = res
    d_c_n = wts["c_n"].astype(out.dtype) if c_n is not None else None
    return F.variant_backward(opts, wts["out"].astype(out.dtype), wts["h_n"].astype(out.dtype), d_c_n, p["x"], p["h0"],
                              p["c0"], p["w_ih"], p["w_hh"], p["w_hr"], p["w_ch"], out, ws, lengths=lengths)


def loss(opts, p, wts, lengths):
    out, h_n, c_n, _ = forward(opts, p, lengths=lengths)
    total = (out * wts["out"]).sum() + (h_n * wts["h_n"]).sum()
    return total + ((c_n * wts["c_n"]).sum() if c_n is not None else 0.0)


@pytest.mark.parametrize("lengths", [None, [4, 2, 0]], ids=["full", "lengths"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_finite_differences(name, lengths):
    opts = CASES[name]
    p, wts = problem(opts)
    grads = backward(opts, p, forward(opts, p, training=True, lengths=lengths), wts, lengths)
    eps = 1e-6
    for key, arr in p.items():
        if arr is None:
            continue
        got = grads[{"x": 0, "h0": 1, "c0": 2}[key]] if key in ("x", "h0", "c0") else getattr(grads, "d_" + key)
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = loss(opts, p, wts, lengths)
            arr[idx] = old - eps
            down = loss(opts, p, wts, lengths)
            arr[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        scale = 1.0 + np.abs(numeric).max()
        np.testing.assert_allclose(got, numeric, rtol=0, atol=2e-7 * scale, err_msg=f"{name}: d_{key}")


@pytest.fixture(params=ISAS)
def isa(request):
    before = _core.isa()
    _core.testing.set_isa(request.param)
    yield request.param
    _core.testing.set_isa(before)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_agrees_with_float64_on_every_isa(name, isa):
    opts = CASES[name]
    p64, wts = problem(opts, T=6, B=4, I=7, hidden=H, seed=1)
    p32 = {k: None if v is None else v.astype(np.float32) for k, v in p64.items()}
    lengths = [6, 5, 3, 0]
    r64, r32 = forward(opts, p64, True, lengths), forward(opts, p32, True, lengths)
    for a, b, what in zip(r32, r64, ("out", "h_n", "c_n", "workspace")):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg=f"{name} {isa}: {what}")
    g64, g32 = backward(opts, p64, r64, wts, lengths), backward(opts, p32, r32, wts, lengths)
    for field in g64._fields:
        want, got = getattr(g64, field), getattr(g32, field)
        if want is not None:
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max()),
                                       err_msg=f"{name} {isa}: {field}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["lstm_everything", "gru_reset_before_clip_acts", "gru_reset_after_clip_acts",
                                  "rnn_selu_clip", "lstm_proj"])
def test_results_do_not_depend_on_the_thread_count(name, dtype, restore_threads):
    # Large enough that the products and the row loops are cut into several tasks.
    opts = make_options(CASES[name].family, 96, activations=CASES[name].activations, clip=CASES[name].clip,
                        input_forget=CASES[name].input_forget, reset_after=CASES[name].reset_after,
                        proj_size=CASES[name].proj_size and 40, peepholes=CASES[name].peepholes)
    p, wts = problem(opts, T=5, B=101, I=50, hidden=96, dtype=dtype, seed=2)
    lengths = np.random.default_rng(0).integers(0, 6, size=101)
    results = {}
    for threads in (1, 2, 3):
        rnnfast.set_num_threads(threads)
        res = forward(opts, p, True, lengths)
        results[threads] = (res, backward(opts, p, res, wts, lengths))
    for threads in (2, 3):
        for got, want in zip(results[threads][0] + tuple(results[threads][1]), results[1][0] + tuple(results[1][1])):
            if want is not None:
                np.testing.assert_array_equal(got, want, err_msg=f"{threads} threads")


@pytest.mark.parametrize("name", ["lstm_everything", "gru_reset_before", "gru_reset_after_clip_acts", "rnn_silu"])
def test_a_sequence_step_by_step_gives_the_same_bits(name):
    """What a streaming stepper does: T calls of one step, the state carried, equal one call of T steps."""
    opts = CASES[name]
    p, _ = problem(opts, T=5, B=2, I=3, dtype=np.float32, seed=3)
    out, h_n, c_n, _ = forward(opts, p)
    h, c = p["h0"], p["c0"]
    for t in range(5):
        step = dict(p, x=p["x"][t:t + 1], h0=h, c0=c)
        o, h, c, _ = forward(opts, step)
        np.testing.assert_array_equal(o[0], out[t])
    np.testing.assert_array_equal(h, h_n)
    if c_n is not None:
        np.testing.assert_array_equal(c, c_n)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pytorch_cells_through_the_variant_path_equal_the_fused_path(family, dtype):
    opts = CellOptions.default(family)
    p, wts = problem(opts, T=6, B=4, I=7, hidden=H, dtype=dtype, seed=4)
    lengths = [6, 4, 4, 0]
    args = (p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    if family == "lstm":
        want = F.lstm(p["x"], p["h0"], p["c0"], *args[2:], lengths=lengths)
    else:
        want = getattr(F, family)(*args, lengths=lengths)
    got = forward(opts, p, lengths=lengths)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_the_binding_refuses_what_the_kernels_cannot_run():
    p, _ = problem(CASES["lstm_proj"], dtype=np.float32)
    n = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
    with pytest.raises(ValueError, match="activations must have 3 entries"):
        _core.variant_forward("lstm", [(0, 0.0, 0.0)], 0.0, False, True, p["x"], None, None, p["w_ih"], p["w_hh"],
                              None, None, p["w_hr"], None, n(4, 3, 2), n(3, 2), n(3, H), None)
    with pytest.raises(ValueError, match="unknown activation number 99"):
        _core.variant_forward("rnn_tanh", [(99, 0.0, 0.0)], 0.0, False, True, p["x"], None, None, n(H, 3), n(H, H),
                              None, None, None, None, n(4, 3, H), n(3, H), None, None)
    with pytest.raises(ValueError, match="proj_size must be in"):
        _core.variant_forward("lstm", [(0, 0, 0)] * 3, 0.0, False, True, p["x"], None, None, p["w_ih"], n(4 * H, H),
                              None, None, n(H, H), None, n(4, 3, H), n(3, H), n(3, H), None)
    with pytest.raises(ValueError, match="clip must be >= 0"):
        _core.variant_forward("rnn_tanh", [(1, 0.0, 0.0)], -1.0, False, True, p["x"], None, None, n(H, 3), n(H, H),
                              None, None, None, None, n(4, 3, H), n(3, H), None, None)
    with pytest.raises(ValueError, match="w_hh has shape"):
        _core.variant_forward("lstm", [(0, 0, 0)] * 3, 0.0, False, True, p["x"], None, None, p["w_ih"], n(4 * H, H),
                              None, None, p["w_hr"], None, n(4, 3, 2), n(3, 2), n(3, H), None)
    with pytest.raises(ValueError, match="w_ch"):
        F.variant_forward(CASES["lstm_peepholes"], p["x"], None, None, n(4 * H, 3), n(4 * H, H))
    with pytest.raises(ValueError, match="proj_size=2"):
        F.variant_forward(CASES["lstm_proj"], p["x"], None, None, n(4 * H, 3), n(4 * H, 2))
    with pytest.raises(TypeError, match="options must be"):
        F.variant_forward("lstm", p["x"], None, None, n(4 * H, 3), n(4 * H, H))


def test_activation_table_matches_the_kernels():
    from rnnfast._variants import ACTIVATIONS

    assert tuple(_core.activation_names()) == ACTIVATIONS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_native_equals_the_reference(name, dtype):
    """The native ops against rnnfast.reference's (the NumPy definition), forward and backward, with lengths
    in any order (the native op sorts the rows)."""
    from rnnfast import reference

    opts = CASES[name]
    p, wts = problem(opts, T=5, B=4, I=6, hidden=H, dtype=dtype, seed=5)
    lengths = [3, 5, 0, 4]
    args = (p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["w_hr"], p["w_ch"])
    got = F.variant_forward(opts, *args, training=True, lengths=lengths)
    want = reference.variant_forward(opts, *args, training=True, lengths=lengths)
    tol = 1e-12 if dtype == np.float64 else 3e-5
    for a, b, what in zip(got, want, ("out", "h_n", "c_n", "workspace")):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"{name}: {what}")
    grads = []
    for ops, res in ((F, got), (reference, want)):
        d_c_n = wts["c_n"].astype(dtype) if opts.family == "lstm" else None
        grads.append(ops.variant_backward(opts, wts["out"].astype(dtype), wts["h_n"].astype(dtype), d_c_n, p["x"],
                                          p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["w_hr"], p["w_ch"], res[0], res[3],
                                          lengths=lengths))
    for field in grads[1]._fields:
        want_g, got_g = getattr(grads[1], field), getattr(grads[0], field)
        if want_g is not None:
            scale = 1.0 + np.abs(want_g).max()
            np.testing.assert_allclose(got_g, want_g, rtol=0, atol=(1e-12 if dtype == np.float64 else 1e-4) * scale,
                                       err_msg=f"{name}: {field}")


@pytest.mark.parametrize("name", ["lstm_everything", "gru_reset_before", "rnn_silu"])
def test_projection_per_step_gives_the_bits_of_the_projection_up_front(name):
    """A long call projects each step's rows just before the step (gx of all steps over 512 KiB); one step at a
    time projects up front: the same bits (layer/variant_forward.cpp, kUpFrontGxBytes)."""
    base = CASES[name]
    opts = make_options(base.family, 96, activations=base.activations, clip=base.clip, reset_after=base.reset_after,
                        proj_size=base.proj_size and 40, peepholes=base.peepholes)
    p, _ = problem(opts, T=8, B=64, I=20, hidden=96, dtype=np.float32, seed=6)
    assert 8 * 64 * GATES[opts.family] * 96 * 4 > 512 * 1024 or opts.family == "rnn"
    out, h_n, c_n, _ = forward(opts, p)
    h, c = p["h0"], p["c0"]
    for t in range(8):
        o, h, c, _ = forward(opts, dict(p, x=p["x"][t:t + 1], h0=h, c0=c))
        np.testing.assert_array_equal(o[0], out[t], err_msg=f"step {t}")
    np.testing.assert_array_equal(h, h_n)


@pytest.mark.parametrize("name", ["lstm_everything", "gru_reset_before_clip_acts", "rnn_selu_clip"])
def test_slices_of_the_batch_give_the_bits_of_the_shared_loop(name, restore_threads, restore_split):
    """The forward's time loop run by slices of the batch (each slice's products inline) or shared at every step
    (layer/tuning.h, variant_forward_slices): the same bits, on 2 and 3 threads, with lengths."""
    base = CASES[name]
    opts = make_options(base.family, 40, activations=base.activations, clip=base.clip, reset_after=base.reset_after,
                        proj_size=base.proj_size and 16, peepholes=base.peepholes)
    p, _ = problem(opts, T=6, B=13, I=9, hidden=40, dtype=np.float32, seed=7)
    lengths = np.array([6, 6, 5, 0, 3, 6, 1, 2, 6, 4, 4, 0, 5])
    results = {}
    for threads in (2, 3):
        rnnfast.set_num_threads(threads)
        for split in ("batch", "hidden"):
            _core.testing.set_split(split)
            results[threads, split] = forward(opts, p, True, lengths)
    want = results[2, "hidden"]
    for key, got in results.items():
        for a, b in zip(got, want):
            if b is not None:
                np.testing.assert_array_equal(a, b, err_msg=str(key))


@pytest.mark.parametrize("name", ["lstm_everything", "gru_reset_before", "gru_reset_after_clip_acts", "rnn_silu"])
def test_a_team_at_batch_one_gives_the_bits_of_one_thread(name, restore_threads, restore_split):
    """A team sharing each step by chunks of units (the small-batch split, forced here), over a whole sequence and
    in the native stepper one step per call, gives one thread's bits."""
    base = CASES[name]
    opts = make_options(base.family, 70, activations=base.activations, clip=base.clip, reset_after=base.reset_after,
                        proj_size=base.proj_size and 24, peepholes=base.peepholes)
    p, _ = problem(opts, T=7, B=1, I=11, hidden=70, dtype=np.float32, seed=8)
    rnnfast.set_num_threads(1)
    want = forward(opts, p)
    rnnfast.set_num_threads(2)
    _core.testing.set_split("hidden")
    got = forward(opts, p)
    for a, b in zip(got, want):
        if b is not None:
            np.testing.assert_array_equal(a, b)
    args = [p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], p["w_hr"], p["w_ch"]]
    stepper = _core.VariantStepper(*F.variant_kernel_options(opts), 70, opts.proj_size, 1, [tuple(args)])
    stepper.reset(p["h0"][None], None if p["c0"] is None else p["c0"][None])
    y = np.empty((1, opts.proj_size or 70), np.float32)
    for t in range(7):
        stepper.run(np.ascontiguousarray(p["x"][t]), y)
        np.testing.assert_array_equal(y[0], want[0][t, 0], err_msg=f"step {t}")
