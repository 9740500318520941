"""Distributed inference on Ray Data: :func:`predict` maps a Dataset's batches through actors that each hold
the model, built once per actor from its :class:`~rnnfast.parallel.ModelSpec`.

Why actors (a callable class) and not tasks: the model is built in the actor's constructor and kept for
every batch the actor receives, instead of being deserialised for every batch; and the actor's CPUs are
known in the constructor, which sets the actor's rnnfast threads to them.

Why :func:`~rnnfast.ray.check_workers` before the Dataset is returned: the Dataset is lazy, and an actor that
cannot import rnnfast would otherwise fail only when it is consumed, as an actor death deep in Ray Data's
executor; the check names the node and its import error at the call.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._engine_common import SpecRef, cached_model, check_inference_model, inference_layout, input_batch_axis, \
    input_dtype, run_inference, spec_ref, thread_share
from .._validation import positive_int
from ..parallel import model_spec
from ._workers import ensure_workers

__all__ = ["predict", "Predictor"]


class Predictor:
    """The callable class :func:`predict` hands to ``Dataset.map_batches``: one per actor.

    Parameters
    ----------
    ref : SpecRef
        The model to build (once, in the constructor).
    feature_column, id_column, output_column, lengths_column
        As :func:`predict`'s.
    batch_size : int or None
        Sequences per kernel call inside a batch.
    out_axis : int or None
        The batch axis of the model's output, probed on the driver; None: the input's for a sequence output
        (rank 3), else 0.
    """

    def __init__(self, ref: SpecRef, feature_column: str, id_column: Optional[str], output_column: str,
                 lengths_column: Optional[str], batch_size: Optional[int], out_axis: Optional[int] = None) -> None:
        import ray

        import rnnfast

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        rnnfast.set_num_threads(thread_share(float(cpus)))  # the actor's share, not the machine's cores
        self.model = cached_model(ref)
        self.in_axis = input_batch_axis(self.model)
        self.feature_column, self.id_column = feature_column, id_column
        self.output_column, self.lengths_column = output_column, lengths_column
        self.batch_size, self.out_axis = batch_size, out_axis

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch[self.feature_column])
        if rows.dtype == object:
            raise ValueError(f"column {self.feature_column!r} holds sequences of different shapes in one batch; pad "
                             "them to one length T and give the real lengths in a lengths column")
        # Rows are (T, I) each: the batch is (B, T, I); a time-major model takes (T, B, I).
        x = np.ascontiguousarray(rows if self.in_axis == 0 or rows.ndim < 2 else np.swapaxes(rows, 0, 1))
        lengths = None if self.lengths_column is None else np.asarray(batch[self.lengths_column], dtype=np.int64)
        out = run_inference(self.model, x, lengths, self.batch_size)
        axis = self.out_axis
        if axis is None:
            axis = 0 if self.in_axis == 0 or out.ndim < 3 else 1
        result = {self.output_column: np.ascontiguousarray(np.moveaxis(out, axis, 0))}
        if self.id_column is not None:
            result[self.id_column] = np.asarray(batch[self.id_column])
        return result


def predict(model: Any, dataset: Any, *, feature_column: str = "x", id_column: Optional[str] = "id",
            output_column: str = "prediction", lengths_column: Optional[str] = None, batch_size: int = 256,
            kernel_batch_size: Optional[int] = None, num_cpus: float = 1, actors: int = 1,
            runtime_env: Optional[dict[str, Any]] = None) -> Any:
    """Inference over a Ray Dataset holding one sequence per row, on a pool of actors holding the model.

    Layout: the column ``feature_column`` holds each row's sequence as an array (T, I) (steps first; (T,)
    indices for a model starting with an ``nn.Embedding``), all rows of one length T (pad shorter ones and
    give their lengths in ``lengths_column``). Build it with ``ray.data.from_items([{"id": i, "x": seq},
    ...])``, ``ray.data.from_numpy`` or a Parquet file of tensor columns.

    Order: Ray Data does not keep the rows' order across actors (unless
    ``DataContext.get_current().execution_options.preserve_order`` is set, which costs throughput). The
    output keeps ``id_column`` beside each prediction, so the order is restored with
    ``result.sort(id_column)`` or, gathered, by sorting on it.

    Parameters
    ----------
    model : RNN, LSTM, GRU (also quantized), an rnnfast.nn module or nn.Sequential
        Shipped once to each actor, as the bytes of ``rnnfast.save``.
    dataset : ray.data.Dataset
    feature_column : str, default 'x'
    id_column : str or None, default 'id'
        A column identifying each row, copied to the output; None keeps none (and the order is lost).
    output_column : str, default 'prediction'
        The output column: each row's output, (C,) for a many-to-one classifier, (T, H) for a sequence.
    lengths_column : str, optional
        A column of per-sequence lengths.
    batch_size : int, default 256
        Rows per batch handed to an actor (``map_batches``' batch_size).
    kernel_batch_size : int, optional
        Sequences per kernel call inside a batch (memory only: the bits are the same).
    num_cpus : float, default 1
        CPUs per actor; the actor's rnnfast threads are set to them (at least 1).
    actors : int, default 1
        Actors in the pool.
    runtime_env : dict, optional
        Ray's runtime environment for the actors (merged with the job's), e.g. ``{"pip": ["rnnfast"]}``.

    Returns
    -------
    ray.data.Dataset
        Lazy, with columns ``id_column`` and ``output_column``; each row's prediction equals the in-process
        output of its sequence bit for bit, on the same instruction set.

    Raises
    ------
    TypeError, ValueError
        If ``dataset`` is not a Ray Dataset, a column is missing from its schema, a count is not positive,
        or the model refuses the rows' shape (probed at once on one row of zeros of the schema's shape).
    RuntimeError
        Ray not initialised, or a node whose workers cannot import rnnfast in ``runtime_env`` (naming the node
        and the import error: rnnfast must be installed in the workers' environment), checked at the call
        (:func:`~rnnfast.ray.check_workers`) rather than when the Dataset is consumed.
    """
    import ray.data

    check_inference_model(model)
    if not isinstance(dataset, ray.data.Dataset):
        raise TypeError(f"dataset must be a ray.data.Dataset, got {type(dataset).__name__}")
    batch_size = positive_int("batch_size", batch_size)
    kernel_batch_size = None if kernel_batch_size is None else positive_int("kernel_batch_size", kernel_batch_size)
    actors = positive_int("actors", actors)
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a dict or None, got {type(runtime_env).__name__}")
    thread_share(num_cpus, "num_cpus")  # a positive number (the actors' threads: at least 1)
    cpus = float(num_cpus)
    schema = dataset.schema()
    names = list(schema.names) if schema is not None else []
    for what, column in (("feature_column", feature_column), ("id_column", id_column),
                         ("lengths_column", lengths_column)):
        if column is not None and column not in names:
            raise ValueError(f"{what} {column!r} is not a column of the dataset (its columns: {names})")
    out_axis = _probe(model, schema, feature_column, lengths_column is not None)
    ensure_workers(runtime_env)  # after the input's checks: those need no cluster
    ref = spec_ref(model_spec(model))
    remote_args: dict[str, Any] = {} if runtime_env is None else {"runtime_env": runtime_env}
    return dataset.map_batches(
        Predictor, fn_constructor_args=(ref, feature_column, id_column, output_column, lengths_column,
                                        kernel_batch_size, out_axis),
        batch_size=batch_size, batch_format="numpy", num_cpus=cpus,
        compute=ray.data.ActorPoolStrategy(size=actors), **remote_args)


def _probe(model: Any, schema: Any, column: str, with_lengths: bool) -> Optional[int]:
    """Run the model at once on one row of zeros of the column's shape, where the schema tells it (a tensor
    column), so that a model/data mismatch is an error here rather than in an actor's log; the batch axis of
    the output (None where the schema does not give the rows' shape)."""
    kind = schema.types[schema.names.index(column)]
    shape = getattr(kind, "shape", None)
    if not shape:
        return None
    sample = list(shape)
    sample.insert(input_batch_axis(model), 1)
    return inference_layout(model, sample, input_dtype(model), with_lengths=with_lengths).out_axis
