"""The many-to-one head: each sequence's last valid step of a recurrent layer's output."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._validation import prepare_lengths
from ._modules import Module, float_input

__all__ = ["LastStep"]

ArrayLike = Any


class LastStep(Module):
    """(T, B, F) -> (B, F): the output of each sequence at its last valid step, ``lengths[b] - 1`` (or T - 1
    without lengths); a sequence of length 0 gives zeros. (B, T, F) with ``batch_first``; unbatched (T, F) ->
    (F,).

    With lengths this is the final hidden state of a unidirectional layer's last layer, as PyTorch's packed
    sequences give it; of a bidirectional layer it is the forward direction's last step and the reverse
    direction's output at the same step (the step it ended on, not its final state).

    Parameters
    ----------
    batch_first : bool or None, default None
        Whether the input is (B, T, F). None: False on its own; inside a :class:`~rnnfast.nn.Sequential`, the
        layout of the recurrent layer before it (an explicit value that differs from that layer's is a
        ValueError there).
    """

    def __init__(self, batch_first: Optional[bool] = None) -> None:
        super().__init__()
        if batch_first is not None and not isinstance(batch_first, (bool, np.bool_)):
            raise TypeError(f"batch_first must be a bool or None, got {batch_first!r}")
        self._batch_first_given = None if batch_first is None else bool(batch_first)
        self._batch_first = bool(batch_first)

    @property
    def batch_first(self) -> bool:
        """Whether batched input is (B, T, F) rather than (T, B, F)."""
        return self._batch_first

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Pick each sequence's last valid step.

        Parameters
        ----------
        x : array-like, (T, B, F), (B, T, F) with ``batch_first``, or unbatched (T, F)
        training : bool
            If True, keep what :meth:`backward` needs.
        lengths : array-like of int (B,) in [0, T], or None
            The sequences' lengths (shape (1,) for unbatched x); None: every sequence has length T.
        rng
            Not used.

        Returns
        -------
        ndarray
            (B, F), or (F,) for unbatched x.

        Raises
        ------
        ValueError
            If ``x`` is not 2-D or 3-D, or ``lengths`` does not fit it.
        """
        arr = float_input("x", x)
        if arr.ndim not in (2, 3):
            layout = "(batch, seq_len, features)" if self._batch_first else "(seq_len, batch, features)"
            raise ValueError(f"x must be 3-D {layout} or 2-D (seq_len, features) unbatched for LastStep, got "
                             f"shape {arr.shape}")
        unbatched = arr.ndim == 2
        xs = arr[:, None, :] if unbatched else (arr.transpose(1, 0, 2) if self._batch_first else arr)
        T, B, F = xs.shape
        lens = prepare_lengths(lengths, T, B)
        steps = np.full(B, T - 1, dtype=np.intp) if lens is None else lens.astype(np.intp) - 1
        y = np.zeros((B, F), dtype=arr.dtype)
        valid = steps >= 0  # length 0: nothing to pick, zeros
        if T > 0:
            y[valid] = xs[steps[valid], np.flatnonzero(valid)]
        if training:
            self._saved = (arr.shape, arr.dtype, unbatched, self._batch_first, steps)
        return y[0] if unbatched else y

    def backward(self, d_y: ArrayLike) -> np.ndarray:
        """``d_y`` put back at the steps the forward picked, zeros elsewhere: the input's shape.

        Raises
        ------
        RuntimeError
            If no training forward preceded.
        ValueError
            If ``d_y`` does not have the forward output's shape.
        """
        shape, dtype, unbatched, batch_first, steps = self._take_saved()
        F = shape[-1]
        B = steps.shape[0]
        g = self._grad_of(d_y, (F,) if unbatched else (B, F), dtype)
        g2 = g[None, :] if unbatched else g
        T = shape[0] if unbatched or not batch_first else shape[1]
        d_xs = np.zeros((T, B, F), dtype=g.dtype)
        valid = steps >= 0
        d_xs[steps[valid], np.flatnonzero(valid)] = g2[valid]
        if unbatched:
            return d_xs[:, 0, :]
        return np.ascontiguousarray(d_xs.transpose(1, 0, 2)) if batch_first else d_xs

    def extra_repr(self) -> str:
        return "batch_first=True" if self._batch_first else ""
