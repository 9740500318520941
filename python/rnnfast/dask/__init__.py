"""Scale-out on Dask (the extra ``rnnfast[dask]``): distributed inference over dask arrays and DataFrames,
data-parallel training over a client's workers, and a worker plugin for their thread counts.

``import rnnfast`` never imports this module (nor dask): import it as ``rnnfast.dask``. The engine-neutral
parts (what is shipped, the shard gradients, the ordered reduction, the training loop) are
:mod:`rnnfast.parallel`'s; this package is the Dask side of them.
"""

from __future__ import annotations

from ._fit import DaskExecutor, fit
from ._predict import predict, predict_partitions
from ._workers import RnnfastThreads, check_workers, setup_workers

__all__ = ["predict", "predict_partitions", "fit", "DaskExecutor", "RnnfastThreads", "check_workers", "setup_workers"]
