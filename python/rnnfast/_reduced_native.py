"""One layer in one direction with reduced-precision weights on the native kernels (``_core.reduced_forward``).

The twin of :func:`rnnfast.reference.reduced_forward` (the definition), called by the quantized layers and
their stepper on arguments they have checked: ``x`` (T, B, I), ``h0``/``c0`` (B, H) or None, float32; the
weights as :class:`~rnnfast._quantized.QuantizedWeight`; the biases float32 (G*H,) or None; ``lengths``
int64 (B,) in any order, or None. The kernels take rows sorted by length, so this sorts and restores them
as :mod:`rnnfast.functional` does.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _core
from ._length_order import LengthOrder
from ._quantized import QuantizedWeight

__all__ = ["reduced_forward"]


def _contiguous(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def reduced_forward(
    cell: str,
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: QuantizedWeight,
    w_hh: QuantizedWeight,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    lengths: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``(out (T, B, H), h_n (B, H), c_n (B, H) or None)`` of one layer in one direction (see the module)."""
    T, B, _ = x.shape
    H = w_hh.values.shape[1]
    lstm = cell == "lstm"
    if T == 0 or B == 0:
        # Nothing to run: the state passes through, as in the float ops.
        h_n = np.zeros((B, H), np.float32) if h0 is None else np.array(h0, dtype=np.float32)
        c_n = (np.zeros((B, H), np.float32) if c0 is None else np.array(c0, dtype=np.float32)) if lstm else None
        return np.zeros((T, B, H), np.float32), h_n, c_n
    rows = LengthOrder(lengths)
    out, h_n, c_n = _core.reduced_forward(
        cell, _contiguous(rows.sort(x, 1)), _contiguous(rows.sort(h0, 0)), _contiguous(rows.sort(c0, 0)),
        w_ih.native(), w_hh.native(), _contiguous(b_ih), _contiguous(b_hh), rows.lengths,
    )
    if rows.order is not None:
        out, h_n, c_n = rows.restore(out, 1), rows.restore(h_n, 0), rows.restore(c_n, 0)
    return out, h_n, c_n
