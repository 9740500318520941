"""Data-parallel training, engine-neutral (NumPy only): what a distributed :func:`rnnfast.nn.fit` ships, how
it splits each batch among ``world_size`` ranks, what a rank computes, and how the driver combines it.

The engines (``rnnfast.dask``, ``rnnfast.ray``) only move data; everything that decides a bit is here, so that
every engine, and :func:`fit_local` in one process, gives the same result::

    from rnnfast import nn, parallel

    history = parallel.fit_local(model, x, y, world_size=4, loss="cross_entropy", optimizer=nn.Adam(model),
                                 epochs=3, batch_size=64, seed=0)

A step of a fit over ``k`` ranks (:func:`run_data_parallel`, the one loop of all of them):

1. the batch is :func:`rnnfast.nn.fit`'s (the same permutations of the same seed), cut into ``k``
   contiguous shards (:func:`shard_bounds`), rank ``r`` taking the ``r``-th, with a weight: its share of the
   batch's loss terms (:class:`ShardTask`);
2. the driver sends the model's parameters to the workers; each rank runs the training forward (its
   Dropout drawing from ``step_rng(seed, epoch, step, rank)``, :func:`step_rng`), the loss and backward on its shard
   and returns its gradients times its weight (:func:`shard_gradient`, :class:`ShardResult`);
3. the driver sums them in rank order (:func:`reduce_gradients`, which refuses a duplicate or missing rank),
   clips (with ``clip_norm``) and takes the optimiser's step, once.

Shipped once (:meth:`ShardExecutor.start`): the model as the bytes of :func:`rnnfast.save` (:class:`ModelSpec`,
no pickled code), the checked data and a :class:`ShardConfig`. Shipped every step: the parameters out, one
set of gradients per rank back (each the size of the parameters).

Why a distributed fit equals :func:`fit_local` bit for bit: each rank's inputs are fixed by the plan (the
same samples, the same parameters, the same dropout stream, whatever worker or retry runs it); the kernels'
results do not depend on the number of threads, so a shard's gradient has the same bits on any worker; and
the sum runs in rank order, not arrival order. Against :func:`rnnfast.nn.fit`: with ``k = 1`` the same bits
(dropout included: rank 0 draws fit's stream); with ``k > 1`` the batch's gradient is the weighted sum of the
shards', equal to the whole batch's to float rounding (the kernels' sums over the batch are split), and the
dropout masks differ.
"""

from ._loop import LocalExecutor, ShardExecutor, fit_local, run_data_parallel
from ._plan import FitPlan, ShardConfig, ShardTask, plan_fit, shard_bounds, step_rng
from ._shard import ShardResult, ShardWorker, reduce_gradients, shard_gradient
from ._spec import ModelSpec, model_spec, set_parameters

__all__ = [
    "ModelSpec", "model_spec", "set_parameters",
    "shard_bounds", "step_rng", "ShardTask", "ShardConfig", "FitPlan", "plan_fit",
    "ShardResult", "shard_gradient", "reduce_gradients", "ShardWorker",
    "ShardExecutor", "run_data_parallel", "LocalExecutor", "fit_local",
]
