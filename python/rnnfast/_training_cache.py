"""What a layer's training forward saves for its backward (:class:`TrainingCache`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class TrainingCache:
    """What a training forward saves for :meth:`RNNBase.backward`.

    ``inputs[k]`` is layer k's (T, B, I_k) time-major input (after dropout for k > 0); ``h0[k][d]``,
    ``c0[k][d]`` the initial states handed to the op (None for zeros); ``outs[k][d]`` and
    ``workspaces[k][d]`` what the op returned (for the reverse direction in reversed time order);
    ``masks[k]`` the dropout keep-mask applied to layer k's output (None if no dropout); ``lengths``
    the per-sequence lengths (None for full length).
    """

    batch_first: bool
    unbatched: bool
    out_shape: tuple
    state_shape: tuple
    lengths: Optional[np.ndarray] = None
    inputs: list = field(default_factory=list)
    h0: list = field(default_factory=list)
    c0: list = field(default_factory=list)
    outs: list = field(default_factory=list)
    workspaces: list = field(default_factory=list)
    masks: list = field(default_factory=list)
