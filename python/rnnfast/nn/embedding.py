"""Lookup table of learned vectors (PyTorch's ``torch.nn.Embedding``): integer indices -> vectors."""

from __future__ import annotations

import numbers
from typing import Any, Optional, Union

import numpy as np

from .._validation import as_array, float_dtype, positive_int
from ._modules import Module

__all__ = ["Embedding"]

ArrayLike = Any


class Embedding(Module):
    """``y = weight[x]``: each integer index in ``x`` (any shape) becomes its row of ``weight``, (..., dim).

    The usual first module of a model over tokens: ``Embedding -> LSTM -> ...``. It has no input gradient
    (indices are not differentiable): :meth:`backward` adds into ``grads['weight']`` and returns None.

    Parameters
    ----------
    num_embeddings : int
        Number of rows (the vocabulary size): indices are in ``[0, num_embeddings)``.
    embedding_dim : int
        Width of each vector.
    padding_idx : int or None
        An index whose row starts at zero and receives no gradient (a padding token), as PyTorch's; a negative
        value counts from the end. None: no such index.
    dtype : 'float32' or 'float64', default 'float32'
    seed : int, SeedSequence, Generator or None
        Seed of the initial weights, drawn from N(0, 1) as PyTorch's.

    Attributes
    ----------
    grads : dict of str to ndarray
        ``'weight'`` (num_embeddings, embedding_dim), added to by :meth:`backward` until :meth:`zero_grad`.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, padding_idx: Optional[int] = None,
                 dtype: Any = "float32",
                 seed: Optional[Union[int, np.random.SeedSequence, np.random.Generator]] = None) -> None:
        super().__init__()
        self.num_embeddings = positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
                raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"padding_idx must be in [-{self.num_embeddings}, {self.num_embeddings}) "
                                 f"(num_embeddings={self.num_embeddings}), got {padding_idx}")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        self.dtype = float_dtype(dtype)
        rng = np.random.default_rng(seed)
        weight = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(self.dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self._params = {"weight": weight}
        self._init_grads()

    @property
    def weight(self) -> np.ndarray:
        """The live (num_embeddings, embedding_dim) table."""
        return self._params["weight"]

    @property
    def output_features(self) -> int:  # type: ignore[override]
        """``embedding_dim``, the width of the output's last axis."""
        return self.embedding_dim

    def _indices(self, x: ArrayLike) -> np.ndarray:
        arr = as_array("x", x)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"x must be integer indices (token ids) for Embedding, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_embeddings):
            bad = arr.min() if arr.min() < 0 else arr.max()
            raise ValueError(f"x holds index {bad}, out of range [0, {self.num_embeddings}) "
                             f"(num_embeddings={self.num_embeddings}); x has shape {arr.shape}")
        return arr.astype(np.intp, copy=False)

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Look ``x`` up: (...) integer indices -> (..., embedding_dim).

        Parameters
        ----------
        x : array-like of int, any shape
        training : bool
            If True, keep the indices for :meth:`backward`.
        lengths, rng
            Not used (accepted for the uniform module signature).

        Returns
        -------
        ndarray
            A new array (not a view of the table) of the module's dtype.

        Raises
        ------
        TypeError
            If ``x`` is not integers.
        ValueError
            If an index is out of range.
        """
        idx = self._indices(x)
        y: np.ndarray = self._params["weight"][idx]  # fancy indexing copies
        if training:
            self._saved = idx.copy()
        return y

    def backward(self, d_y: ArrayLike) -> None:
        """Add ``d_y`` (..., embedding_dim) into the rows of ``grads['weight']`` the training forward looked up
        (a row looked up twice gets both); the padding row gets nothing. Returns None: indices have no gradient.

        Raises
        ------
        RuntimeError
            If no training forward preceded.
        ValueError
            If ``d_y`` does not have the forward output's shape.
        """
        idx = self._take_saved()
        g = self._grad_of(d_y, idx.shape + (self.embedding_dim,), self.dtype)
        flat, rows = idx.reshape(-1), g.reshape(-1, self.embedding_dim)
        if self.padding_idx is not None:
            keep = flat != self.padding_idx
            flat, rows = flat[keep], rows[keep]
        np.add.at(self.grads["weight"], flat, rows)
        return None

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.dtype != np.float32:
            s += f", dtype='{self.dtype.name}'"
        return s
