"""Accuracy of the kernels' activations on every instruction set, against float64 NumPy: the bounds
documented in csrc/rnnfast/kernels/vector_math_impl.h."""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import _core

ISAS = _core.testing.available_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    before = _core.isa()
    _core.testing.set_isa(request.param)
    yield request.param
    _core.testing.set_isa(before)


def sweep() -> np.ndarray:
    """Dense points over [-100, 100], finer near 0 where tanh switches formulas, plus edges."""
    dense = np.linspace(-100, 100, 400_001)
    near_zero = np.linspace(-1, 1, 200_001)
    edges = np.array([0.0, -0.0, 0.25, -0.25, np.nextafter(0.25, 0), 86.0, -86.0, 88.0, 1e-30, -1e-30, 1e-8])
    return np.concatenate([dense, near_zero, edges]).astype(np.float32)


def reference(name: str, x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    if name == "exp":
        return np.exp(x64)
    if name == "sigmoid":
        e = np.exp(-np.abs(x64))  # the form that neither overflows nor cancels
        return np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return np.tanh(x64)


# Documented maximum relative errors in float32 ulps (2^-23 relative): exp 1, sigmoid 2, tanh 2.
ULPS = {"exp": 1, "sigmoid": 2, "tanh": 2}


@pytest.mark.parametrize("name", ["exp", "sigmoid", "tanh"])
def test_float32_activation_error_bounds(isa, name):
    x = sweep()
    if name == "exp":
        x = x[(x >= -86) & (x <= 88)]  # the clamped range is checked separately
    got = _core.testing.activation(name, x).astype(np.float64)
    want = reference(name, x)
    # Relative error where exp is not clamped; sigmoid's far left (x < -86, true value below 4.5e-38)
    # returns exp's clamp, exp(-86) ~ 4.5e-38: there the absolute error is asked to stay below 5e-38.
    clamped = x < -86
    assert np.all(np.abs(got - want)[clamped] <= 5e-38)
    exact = clamped | (want == 0)  # tanh(0) must be 0 exactly: checked as an absolute error of 0
    assert np.all(got[want == 0] == 0)
    rel = np.where(exact, 0.0, np.abs(got - want) / np.where(exact, 1.0, np.abs(want)))
    worst = int(np.argmax(rel))
    bound = ULPS[name] * 2.0**-23
    assert rel[worst] <= bound, (
        f"{isa} {name}({x[worst]!r}) = {got[worst]!r}, expected {want[worst]!r}: relative error "
        f"{rel[worst]:.3e} > {ULPS[name]} ulp"
    )


def test_special_values(isa):
    x = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4], dtype=np.float32)
    e = _core.testing.activation("exp", x)
    s = _core.testing.activation("sigmoid", x)
    t = _core.testing.activation("tanh", x)
    assert np.isnan(e[0]) and np.isnan(s[0]) and np.isnan(t[0]), "NaN must propagate"
    assert np.all(np.isfinite(e[1:])), "exp clamps instead of overflowing"
    assert e[2] > 0 and e[2] >= np.finfo(np.float32).tiny, "exp of a large negative number is not denormal"
    # sigmoid's far left is exp's clamp, exp(-86) ~ 4.5e-38: no denormal, and off zero by less than that.
    np.testing.assert_array_equal(s[[1, 3]], [1, 1])
    assert np.all(s[[2, 4]] <= 5e-38)
    np.testing.assert_array_equal(t[1:], [1, -1, 1, -1])


def test_float64_uses_the_c_library(isa):
    x = np.linspace(-30, 30, 10001)
    # The C library and NumPy each round within an ulp, so they may differ by two.
    np.testing.assert_allclose(_core.testing.activation("tanh", x), np.tanh(x), rtol=5e-16, atol=0)
    np.testing.assert_allclose(_core.testing.activation("exp", x), np.exp(x), rtol=5e-16, atol=0)
