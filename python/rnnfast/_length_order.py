"""Rows sorted by length for the kernels (:class:`LengthOrder`), shared by the float and the
reduced-precision native ops."""

from __future__ import annotations

from typing import Optional, overload

import numpy as np

__all__ = ["LengthOrder"]


class LengthOrder:
    """The kernels take rows sorted by length, non-increasing (their running rows are then a prefix of
    the batch). This sorts batch-indexed arrays into that order and restores the caller's order; when
    the lengths are already sorted, or absent, both directions are no-ops without copies."""

    def __init__(self, lengths: Optional[np.ndarray]) -> None:
        self.order: Optional[np.ndarray] = None
        self.lengths = lengths
        if lengths is not None and np.any(lengths[1:] > lengths[:-1]):
            self.order = np.argsort(-lengths, kind="stable")
            self.inverse = np.empty_like(self.order)
            self.inverse[self.order] = np.arange(self.order.size)
            self.lengths = lengths[self.order]

    # An array comes back an array, None (an absent optional argument) None.
    @overload
    def sort(self, a: np.ndarray, batch_axis: int) -> np.ndarray: ...
    @overload
    def sort(self, a: Optional[np.ndarray], batch_axis: int) -> Optional[np.ndarray]: ...

    def sort(self, a: Optional[np.ndarray], batch_axis: int) -> Optional[np.ndarray]:
        if self.order is None or a is None:
            return a
        return np.ascontiguousarray(np.take(a, self.order, axis=batch_axis))

    @overload
    def restore(self, a: np.ndarray, batch_axis: int) -> np.ndarray: ...
    @overload
    def restore(self, a: Optional[np.ndarray], batch_axis: int) -> Optional[np.ndarray]: ...

    def restore(self, a: Optional[np.ndarray], batch_axis: int) -> Optional[np.ndarray]:
        if self.order is None or a is None:
            return a
        return np.take(a, self.inverse, axis=batch_axis)
