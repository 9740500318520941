"""Distributed inference on Dask: :func:`predict` over a dask array chunked along the batch axis, and
:func:`predict_partitions` over a dask DataFrame of one sequence per row.

The model goes into the task graph once, as the :class:`~rnnfast.parallel.ModelSpec` of one key that every
chunk's task depends on: the scheduler sends it to each worker once, and a worker builds the model from it
once (:func:`rnnfast._engine_common.cached_model`), not once per chunk. Each chunk runs the model's ordinary
inference call; rows do not interact in rnnfast's kernels, so the result is the bits of the in-process call.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any, Optional

import dask
import dask.array as da
import numpy as np

from .._engine_common import SpecRef, cached_model, check_inference_model, feature_width, inference_layout, \
    input_batch_axis, input_dtype, run_inference, spec_ref
from .._validation import positive_int
from ..parallel import model_spec

__all__ = ["predict", "predict_partitions"]


def _check_batch_size(batch_size: Optional[int]) -> Optional[int]:
    return None if batch_size is None else positive_int("batch_size", batch_size)


def _check_chunks(x: Any, axis: int) -> None:
    """x must be chunked along its batch axis only: a sequence split over time (or its features split)
    would need the chunks of the other axes to be joined inside one task, which this refuses to do
    silently (it can cost a full copy of x through the network): the message says how to rechunk."""
    split = [a for a in range(x.ndim) if a != axis and len(x.chunks[a]) > 1]
    if split:
        what = ", ".join(f"axis {a} into {len(x.chunks[a])} chunks {x.chunks[a][:4]}"
                         f"{'...' if len(x.chunks[a]) > 4 else ''}" for a in split)
        fix = "{" + ", ".join(f"{a}: -1" for a in split) + "}"
        raise ValueError(f"x (shape {x.shape}) is chunked along {what}; rnnfast.dask.predict needs it chunked along "
                         f"the batch axis ({axis}) only, each chunk whole sequences: rechunk it with "
                         f"x.rechunk({fix})")
    if any(np.isnan(c) for c in x.chunks[axis]):
        raise ValueError("x has chunks of unknown size along the batch axis; call x.compute_chunk_sizes() first")


def _lengths_for(lengths: Any, x: Any, axis: int) -> Optional[Any]:
    """``lengths`` as a dask array chunked as x's batch axis (a NumPy array is cut to those chunks)."""
    if lengths is None:
        return None
    n = x.shape[axis]
    if isinstance(lengths, da.Array):
        if lengths.shape != (n,):
            raise ValueError(f"lengths has shape {lengths.shape}, expected ({n},): one length per sequence of x "
                             f"(x has shape {x.shape}, batch axis {axis})")
        return lengths.rechunk((x.chunks[axis],))
    arr = np.asarray(lengths)
    if arr.shape != (n,):
        raise ValueError(f"lengths has shape {arr.shape}, expected ({n},): one length per sequence of x "
                         f"(x has shape {x.shape}, batch axis {axis})")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    return da.from_array(arr, chunks=(x.chunks[axis],))


def _block(ref: SpecRef, x: np.ndarray, lengths: Optional[np.ndarray], batch_size: Optional[int]) -> np.ndarray:
    """One chunk's task on a worker: the cached model's inference on the chunk."""
    return run_inference(cached_model(ref), np.ascontiguousarray(x), lengths, batch_size)


def predict(model: Any, x: Any, *, batch_size: Optional[int] = None, lengths: Any = None) -> Any:
    """Inference over a dask array, chunk by chunk on the workers: a lazy dask array of the model's output.

    Parameters
    ----------
    model : RNN, LSTM, GRU (also quantized), an rnnfast.nn module or nn.Sequential
        Shipped in the task graph once, as the bytes of ``rnnfast.save`` (:func:`rnnfast.parallel.model_spec`):
        later changes to ``model`` do not reach an array already built.
    x : dask.array.Array
        The model's input, chunked along its batch axis only: the axis of the model's first recurrent layer
        (1 time-major (T, N, I), 0 with ``batch_first``), axis 0 for a model without recurrent layer, as
        :func:`rnnfast.nn.fit` decides. Each chunk holds whole sequences.
    batch_size : int, optional
        Sequences per kernel call inside a chunk (None: the whole chunk at once); memory only, the bits are
        the same.
    lengths : array-like or dask array of int (N,), optional
        Per-sequence lengths; a NumPy array is cut to x's chunks, a dask array rechunked to them.

    Returns
    -------
    dask.array.Array
        The output, chunked along its batch axis as ``x`` is along its own, with the dtype and the shape the
        in-process call gives; ``.compute()`` equals ``model.predict(x.compute())`` (for a recurrent layer,
        ``layer.forward(x)[0]``) bit for bit, on the same instruction set.

    Raises
    ------
    TypeError
        If ``x`` is not a dask array or ``model`` not an rnnfast model.
    ValueError
        If ``x`` is chunked along another axis than the batch axis (the message gives the ``rechunk`` to
        apply), has chunks of unknown size, or ``lengths`` does not have one entry per sequence; the model's
        own errors on the input's shape come at once, from a probe on one sequence of zeros.
    """
    check_inference_model(model)
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array (use model.predict for a NumPy array), got {type(x).__name__}")
    batch_size = _check_batch_size(batch_size)
    layout = inference_layout(model, x.shape, x.dtype, with_lengths=lengths is not None)
    axis = layout.in_axis
    _check_chunks(x, axis)
    lens = _lengths_for(lengths, x, axis)
    ref = dask.delayed(spec_ref(model_spec(model)), pure=True)  # one key: sent to each worker once

    letters = string.ascii_lowercase
    x_ind = letters[:x.ndim]
    out_ind = "".join(x_ind[axis] if a == layout.out_axis else letters[x.ndim + a]
                      for a in range(len(layout.out_shape)))
    new_axes = {out_ind[a]: layout.out_shape[a] for a in range(len(layout.out_shape)) if a != layout.out_axis}
    args: list[Any] = [ref, None, x, x_ind]
    args += [None, None] if lens is None else [lens, x_ind[axis]]
    return da.blockwise(_block, out_ind, *args, batch_size, None, new_axes=new_axes, dtype=layout.dtype,
                        concatenate=True, token="rnnfast-predict")


# ---------------------------------------------------------------------------------------------------------
# DataFrames
# ---------------------------------------------------------------------------------------------------------


def _check_columns(columns: Any, available: Sequence[Any]) -> list[Any]:
    if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence) or not columns:
        raise TypeError(f"columns must be a non-empty list of the feature columns' names, got {columns!r}")
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(f"columns {missing} are not in the DataFrame (its columns: {list(available)})")
    return list(columns)


def _rows_to_input(values: np.ndarray, layout_axis: int, width: Optional[int]) -> np.ndarray:
    """(rows, T*I) row-major per row (step by step) -> the model's input: (T, rows, I), or (rows, T, I)
    with batch_first; (T, rows) indices for an Embedding (width None)."""
    n, flat = values.shape
    seq = values.reshape(n, flat) if width is None else values.reshape(n, flat // width, width)
    return np.ascontiguousarray(seq if layout_axis == 0 else np.swapaxes(seq, 0, 1))


def _partition(df: Any, ref: SpecRef, columns: list[Any], lengths_column: Any, in_axis: int, out_axis: int,
               width: Optional[int], dtype: np.dtype, names: list[str], batch_size: Optional[int]) -> Any:
    """One partition's task: rows -> sequences -> the model -> one output row per input row, same index."""
    import pandas as pd

    values = df[columns].to_numpy(dtype=dtype)
    lengths = None if lengths_column is None else df[lengths_column].to_numpy(dtype=np.int64)
    if len(df) == 0:
        return pd.DataFrame({n: np.zeros(0, dtype=dtype) for n in names}, index=df.index)
    out = run_inference(cached_model(ref), _rows_to_input(values, in_axis, width), lengths, batch_size)
    rows = np.moveaxis(out, out_axis, 0).reshape(len(df), -1)
    return pd.DataFrame(rows, index=df.index, columns=names)


def predict_partitions(model: Any, df: Any, *, columns: Sequence[Any], lengths_column: Any = None,
                       prefix: str = "y", batch_size: Optional[int] = None) -> Any:
    """Inference over a dask DataFrame holding one sequence per row: a lazy dask DataFrame of the outputs.

    Layout: each row is one sequence, its features flattened step by step into the ``columns`` (in the
    order given): for an input of ``I`` features per step, columns ``0..I-1`` are step 0, ``I..2I-1``
    step 1, and so on, so ``len(columns) = T * I``; for a model starting with an ``nn.Embedding``, one
    column per step holding the index. This is the shape of a wide table (one feature per column), which
    Parquet and CSV store directly.

    Parameters
    ----------
    model : RNN, LSTM, GRU (also quantized), an rnnfast.nn module or nn.Sequential
    df : dask.dataframe.DataFrame
    columns : list of column names
        The feature columns, ``T * I`` of them, step-major as above.
    lengths_column : column name, optional
        A column of per-sequence lengths (padded rows).
    prefix : str, default 'y'
        The output columns are ``f"{prefix}{k}"`` for ``k`` in ``range(K)``: each row's output flattened in
        C order (K = C for a many-to-one classifier, T * H for an output sequence).
    batch_size : int, optional
        Sequences per kernel call inside a partition.

    Returns
    -------
    dask.dataframe.DataFrame
        One row per input row, the same index and partitions, columns ``y0 .. y{K-1}`` of the model's dtype.
        Row ``r`` equals the in-process output of sequence ``r`` bit for bit.

    Raises
    ------
    TypeError, ValueError
        If ``df`` is not a dask DataFrame, a column is missing, ``len(columns)`` is not a multiple of the
        model's input width, or the model refuses the sequence shape (probed at once on zeros).
    """
    import dask.dataframe as dd

    check_inference_model(model)
    if not isinstance(df, dd.DataFrame):
        raise TypeError(f"df must be a dask.dataframe.DataFrame, got {type(df).__name__}")
    cols = _check_columns(columns, list(df.columns))
    if lengths_column is not None and lengths_column not in df.columns:
        raise ValueError(f"lengths_column {lengths_column!r} is not in the DataFrame (its columns: {list(df.columns)})")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    batch_size = _check_batch_size(batch_size)
    width = feature_width(model)
    if width is not None and len(cols) % width:
        raise ValueError(f"columns has {len(cols)} names, not a multiple of the model's {width} input features "
                         "(one row is T steps of that many features, step-major)")
    steps = len(cols) if width is None else len(cols) // width
    dtype = input_dtype(model)
    in_axis = input_batch_axis(model)
    sample = [steps] + ([] if width is None else [width])
    sample.insert(in_axis, 1)
    layout = inference_layout(model, sample, dtype, with_lengths=lengths_column is not None)
    k = int(np.prod(layout.out_shape))
    names = [f"{prefix}{i}" for i in range(k)]
    import pandas as pd

    meta = pd.DataFrame({n: np.zeros(0, dtype=layout.dtype) for n in names})
    ref = dask.delayed(spec_ref(model_spec(model)), pure=True)
    return df.map_partitions(_partition, ref, cols, lengths_column, layout.in_axis, layout.out_axis, width, dtype,
                             names, batch_size, meta=meta, align_dataframes=False)
