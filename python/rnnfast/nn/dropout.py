"""Inverted dropout (PyTorch's ``torch.nn.Dropout``): random zeroing while training, identity at inference."""

from __future__ import annotations

import numbers
from typing import Any, Optional, Union

import numpy as np

from ._modules import Module, float_input

__all__ = ["Dropout"]

ArrayLike = Any


class Dropout(Module):
    """While training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``, so that
    the expected output is the input; at inference, the identity.

    Parameters
    ----------
    p : float in [0, 1], default 0.5
        Probability of zeroing an element (``p = 1`` zeroes everything, as PyTorch).
    seed : int, SeedSequence, Generator or None
        Seed of the module's own generator, used when :meth:`forward` is given no ``rng``.
    """

    p: float
    _rng: np.random.Generator

    def __init__(self, p: float = 0.5,
                 seed: Optional[Union[int, np.random.SeedSequence, np.random.Generator]] = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"p must be a number in [0, 1], got {p!r} of type {type(p).__name__}")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        try:
            self._rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"seed must be None, a non-negative int, a SeedSequence or a Generator, got {seed!r} "
                            f"({exc})") from None

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """``x`` at inference; ``x * mask / (1 - p)`` while training, ``mask`` Bernoulli(1 - p) of x's shape.

        Parameters
        ----------
        x : array-like of real numbers, any shape
        training : bool
        lengths
            Not used (zero padding stays zero).
        rng : numpy.random.Generator or None
            Draws the mask; None: the module's own generator (see ``seed``).

        Returns
        -------
        ndarray
            The shape and dtype of ``x`` (float32 or float64); at inference ``x`` itself when it is already
            such an array, as PyTorch returns its input.
        """
        arr = float_input("x", x)
        if not training:
            return arr
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
        draw = self._rng if rng is None else rng
        keep = draw.random(arr.shape) >= self.p
        # p = 1 keeps nothing: scale 0, not a division by zero.
        scale = arr.dtype.type(0.0 if self.p >= 1.0 else 1.0 / (1.0 - self.p))
        mask = keep.astype(arr.dtype) * scale
        self._saved = mask
        return np.asarray(arr * mask)

    def backward(self, d_y: ArrayLike) -> np.ndarray:
        """``d_y`` times the last training forward's scaled mask.

        Raises
        ------
        RuntimeError
            If no training forward preceded.
        ValueError
            If ``d_y`` does not have the forward output's shape.
        """
        mask = self._take_saved()
        return np.asarray(self._grad_of(d_y, mask.shape, mask.dtype) * mask)

    def extra_repr(self) -> str:
        return f"p={self.p}"
