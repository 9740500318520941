"""Central finite differences: the independent yardstick for every analytical gradient."""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, arr, eps=1e-6):
    """Central differences of the scalar function f() with respect to every element of arr (in place)."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        f_plus = f()
        arr[idx] = old - eps
        f_minus = f()
        arr[idx] = old
        g[idx] = (f_plus - f_minus) / (2 * eps)
    return g
