"""Scale-out on Ray (the extra ``rnnfast[ray]``): batch inference on Ray Data with actors holding the
model, and data-parallel training on actors (no Ray Train, no collective library: one actor per rank, the
ordered reduction of :mod:`rnnfast.parallel` on the driver).

``import rnnfast`` never imports this module (nor ray): import it as ``rnnfast.ray``.
"""

from __future__ import annotations

from ._fit import RayExecutor, ShardActor, fit
from ._predict import Predictor, predict
from ._workers import check_workers

__all__ = ["predict", "Predictor", "fit", "RayExecutor", "ShardActor", "check_workers"]
