"""Dense layer ``y = x W^T + b`` on the last axis (PyTorch's ``torch.nn.Linear``)."""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np

from .. import _core
from .._validation import as_array, cast, float_dtype, positive_int
from ._modules import Module

ArrayLike = Any


class Linear(Module):
    """Dense layer ``y = x @ weight.T + bias`` on the last axis of ``x`` (PyTorch's ``torch.nn.Linear``).

    ``x`` may have any number of leading axes: (B, in) for one vector per sequence (many-to-one), or
    (T, B, in) for a label at every step (many-to-many), giving (B, out) or (T, B, out).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last axis of the input and of the output.
    bias : bool, default True
        Whether to add the learned ``bias`` (out_features,).
    dtype : 'float32' or 'float64', default 'float32'
        Dtype of the parameters and of the computation; inputs are cast to it (NumPy ``same_kind``).
    seed : int, SeedSequence, Generator or None
        Seed of the initial parameters, uniform in (-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch.

    Attributes
    ----------
    grads : dict of str to ndarray
        Accumulated gradients ``'weight'`` (out, in) and ``'bias'`` (out,), added to by :meth:`backward`
        until :meth:`zero_grad`.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, dtype: Any = "float32",
                 seed: Optional[Union[int, np.random.SeedSequence, np.random.Generator]] = None) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.dtype = float_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self._params = {"weight": rng.uniform(-bound, bound, (self.out_features, self.in_features))
                        .astype(self.dtype)}
        if bias:
            self._params["bias"] = rng.uniform(-bound, bound, (self.out_features,)).astype(self.dtype)
        self._init_grads()
        # The widths Sequential's construction checks read (every module of rnnfast.nn has them).
        self.input_features: Optional[int] = self.in_features
        self.output_features: Optional[int] = self.out_features

    @property
    def weight(self) -> np.ndarray:
        """The live (out_features, in_features) weight."""
        return self._params["weight"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        """The live (out_features,) bias, or None."""
        return self._params.get("bias")

    def _input(self, x: ArrayLike) -> np.ndarray:
        arr = as_array("x", x)
        if arr.ndim < 1 or arr.shape[-1] != self.in_features:
            raise ValueError(f"x has shape {arr.shape}, expected (..., {self.in_features}) "
                             f"(last axis in_features={self.in_features})")
        return cast("x", arr, self.dtype)

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """``x`` (..., in_features) -> (..., out_features). With ``training=True`` keeps ``x`` for backward.

        ``lengths`` and ``rng`` are accepted for the module contract and not used (every step of every row is
        transformed alike; :class:`~rnnfast.nn.Sequential` zeroes padded steps itself).
        """
        x = self._input(x)
        # rnnfast's own GEMM, not NumPy's matmul: its bits for a row depend on that row alone (not on how many
        # rows come with it, nor on the thread count), as the layers' products do, so a model's output for a
        # sequence is the same whatever batch it runs in (Sequential.predict equals the whole batch bit for
        # bit); BLAS picks different kernels for different row counts.
        y = _core.dense_forward(np.ascontiguousarray(x.reshape(-1, self.in_features)), self._params["weight"])
        y = y.reshape(x.shape[:-1] + (self.out_features,))
        if "bias" in self._params:
            y += self._params["bias"]
        if training:
            self._saved = x.copy()
        return y

    def backward(self, d_y: ArrayLike) -> np.ndarray:
        """Gradient of the last training forward: adds into :attr:`grads` and returns ``d_x`` (x's shape)."""
        x: np.ndarray = self._take_saved()
        d_y = self._grad_of(d_y, x.shape[:-1] + (self.out_features,), self.dtype)
        d2 = d_y.reshape(-1, self.out_features)
        self.grads["weight"] += d2.T @ x.reshape(-1, self.in_features)
        if "bias" in self._params:
            self.grads["bias"] += d2.sum(axis=0)
        d_x: np.ndarray = d_y @ self._params["weight"]
        return d_x

    def __repr__(self) -> str:
        extra = "" if "bias" in self._params else ", bias=False"
        extra += "" if self.dtype == np.float32 else f", dtype='{self.dtype.name}'"
        return f"Linear({self.in_features}, {self.out_features}{extra})"
