"""Activation modules: the elementwise :class:`ReLU`, :class:`Tanh`, :class:`Sigmoid`, :class:`GELU`,
:class:`ELU`, :class:`LeakyReLU`, :class:`SELU`, :class:`Softplus`, :class:`SiLU`, :class:`Identity`, and
:class:`Softmax` over one axis; each as its ``torch.nn`` namesake (the same formula, constants and
derivative, also at the kinks: PyTorch's choice there).

They have no parameters. They compute in the input's dtype (float32 or float64; float16 in float32, integers
in float64) and keep their output's shape.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import numpy as np

from ._modules import Module, float_input

__all__ = ["ReLU", "Tanh", "Sigmoid", "GELU", "ELU", "LeakyReLU", "SELU", "Softplus", "SiLU", "Identity",
           "Softmax", "ACTIVATIONS"]

ArrayLike = Any

# math.erf vectorised: NumPy has no erf, and the exact GELU (PyTorch's default) needs it to the last bit; the
# C library's erf through frompyfunc is exact where a polynomial approximation would differ from PyTorch.
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# PyTorch's SELU constants (Klambauer et al. 2017), to the digits PyTorch uses.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite number, got {value!r} of type {type(value).__name__}")
    return float(value)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid without overflow: ``exp`` only ever sees non-positive arguments."""
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=x.dtype)


class _Elementwise(Module):
    """An activation applied to every element: ``y = f(x)``, ``d_x = d_y * f'(x)`` (from x and y)."""

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """``f(x)`` elementwise, the shape and dtype of ``x``; ``lengths`` and ``rng`` are not used.

        Parameters
        ----------
        x : array-like of real numbers, any shape
        training : bool
            If True, keep what :meth:`backward` needs.
        lengths, rng
            Not used (accepted for the uniform module signature).

        Returns
        -------
        ndarray
        """
        arr = float_input("x", x)
        y = np.asarray(self._f(arr), dtype=arr.dtype)
        if training:
            self._saved = (arr.copy(), y.copy())
        return y

    def backward(self, d_y: ArrayLike) -> np.ndarray:
        """``d_y * f'(x)`` for the ``x`` of the last training forward.

        Raises
        ------
        RuntimeError
            If no training forward preceded (each supports one backward).
        ValueError
            If ``d_y`` does not have the forward output's shape.
        """
        x, y = self._take_saved()
        g = self._grad_of(d_y, y.shape, y.dtype)
        return np.asarray(g * self._df(x, y), dtype=y.dtype)

    def _f(self, x: np.ndarray) -> ArrayLike:
        raise NotImplementedError

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        raise NotImplementedError


class Identity(_Elementwise):
    """``y = x`` (PyTorch's ``torch.nn.Identity``): a placeholder, e.g. for Keras' ``activation='linear'``."""

    def _f(self, x: np.ndarray) -> ArrayLike:
        return x.copy()

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return np.ones_like(x)


class ReLU(_Elementwise):
    """``y = max(x, 0)``; the derivative at 0 is 0 (as PyTorch)."""

    def _f(self, x: np.ndarray) -> ArrayLike:
        return np.maximum(x, 0)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return (x > 0).astype(x.dtype)


class Tanh(_Elementwise):
    """``y = tanh(x)``."""

    def _f(self, x: np.ndarray) -> ArrayLike:
        return np.tanh(x)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return 1 - y * y


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + exp(-x))``, computed without overflow."""

    def _f(self, x: np.ndarray) -> ArrayLike:
        return _sigmoid(x)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return y * (1 - y)


class GELU(_Elementwise):
    """``y = x * Phi(x)``, Phi the standard normal CDF through ``erf`` (PyTorch's default, exact form, not
    the tanh approximation); ``dy/dx = Phi(x) + x * phi(x)``.

    NumPy has no ``erf``: it is the C library's, element by element (about 0.2 us an element, some twenty
    times an ``np.tanh``), which keeps rnnfast's dependencies to NumPy and matches PyTorch to the last bits.
    """

    def _f(self, x: np.ndarray) -> ArrayLike:
        return x * self._cdf(x)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return self._cdf(x) + x * (_INV_SQRT_2PI * np.exp(-0.5 * x * x))

    @staticmethod
    def _cdf(x: np.ndarray) -> ArrayLike:
        # erf in float64 (math.erf), rounded to x's dtype once.
        erf = np.asarray(_erf(x.astype(np.float64) * _SQRT_HALF), dtype=np.float64)  # 0-d input gives a float
        return (0.5 * (1.0 + erf)).astype(x.dtype)

    def extra_repr(self) -> str:
        return "approximate='none'"


class ELU(_Elementwise):
    """``y = x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise; the derivative at 0 is ``alpha`` (as PyTorch).

    Parameters
    ----------
    alpha : float, default 1.0
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _number("alpha", alpha)

    def _f(self, x: np.ndarray) -> ArrayLike:
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0)))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class LeakyReLU(_Elementwise):
    """``y = x`` for x > 0, ``negative_slope * x`` otherwise (the derivative at 0 is ``negative_slope``).

    Parameters
    ----------
    negative_slope : float, default 0.01
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = _number("negative_slope", negative_slope)

    def _f(self, x: np.ndarray) -> ArrayLike:
        return np.where(x > 0, x, self.negative_slope * x)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return np.where(x > 0, 1.0, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class SELU(_Elementwise):
    """``y = scale * (x if x > 0 else alpha * (exp(x) - 1))`` with PyTorch's constants
    (:data:`SELU_ALPHA`, :data:`SELU_SCALE`)."""

    def _f(self, x: np.ndarray) -> ArrayLike:
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        return SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0)))


class Softplus(_Elementwise):
    """``y = log(1 + exp(beta * x)) / beta``, and ``y = x`` where ``beta * x > threshold`` (PyTorch's
    ``torch.nn.Softplus``, whose defaults these are).

    Parameters
    ----------
    beta : float, default 1.0
    threshold : float, default 20.0
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = _number("beta", beta)
        if self.beta == 0:
            raise ValueError("beta must be non-zero, got 0")
        self.threshold = _number("threshold", threshold)

    def _f(self, x: np.ndarray) -> ArrayLike:
        bx = self.beta * x
        return np.where(bx > self.threshold, x, np.logaddexp(0, bx) / self.beta)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        bx = self.beta * x
        return np.where(bx > self.threshold, 1.0, _sigmoid(bx))

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(_Elementwise):
    """``y = x * sigmoid(x)`` (swish)."""

    def _f(self, x: np.ndarray) -> ArrayLike:
        return x * _sigmoid(x)

    def _df(self, x: np.ndarray, y: np.ndarray) -> ArrayLike:
        s = _sigmoid(x)
        return s * (1 + x * (1 - s))


class Softmax(Module):
    """``y = exp(x) / sum(exp(x))`` along ``axis`` (PyTorch's ``torch.nn.Softmax(dim)``), computed stably.

    Parameters
    ----------
    axis : int, default -1
        The axis normalised over (PyTorch's ``dim``); checked against the input's rank at forward.
    """

    axis: int

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int, got {axis!r} of type {type(axis).__name__}")
        self.axis = int(axis)

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """The softmax of ``x`` along :attr:`axis` (shape and dtype of ``x``); ``lengths``, ``rng`` not used.

        Raises
        ------
        ValueError
            If ``x`` has no axis ``axis``.
        """
        arr = float_input("x", x)
        if not -arr.ndim <= self.axis < arr.ndim:
            raise ValueError(f"x has shape {arr.shape}, which has no axis {self.axis} for Softmax(axis={self.axis})")
        z = arr - arr.max(axis=self.axis, keepdims=True)
        e = np.exp(z)
        y: np.ndarray = np.asarray(e / e.sum(axis=self.axis, keepdims=True))
        if training:
            self._saved = y.copy()
        return y

    def backward(self, d_y: ArrayLike) -> np.ndarray:
        """``y * (d_y - sum(d_y * y, axis))``, the softmax's Jacobian applied to ``d_y``.

        Raises
        ------
        RuntimeError
            If no training forward preceded.
        ValueError
            If ``d_y`` does not have the forward output's shape.
        """
        y = self._take_saved()
        g = self._grad_of(d_y, y.shape, y.dtype)
        return np.asarray(y * (g - (g * y).sum(axis=self.axis, keepdims=True)))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


#: The activation classes by name (the names :func:`rnnfast.save` records).
ACTIVATIONS: dict[str, type] = {cls.__name__: cls for cls in (
    ReLU, Tanh, Sigmoid, GELU, ELU, LeakyReLU, SELU, Softplus, SiLU, Identity, Softmax)}
