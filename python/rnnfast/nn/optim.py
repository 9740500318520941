"""Optimisers (:class:`SGD`, :class:`Adam`, as PyTorch's) and clipping by the global gradient norm.

A "module" is any object with ``parameters()`` (its live parameter arrays by name) and a ``grads`` dict of
the same names and shapes; an optimiser takes one module or a list of them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any, Sequence

import numpy as np

from .._reference_reduced import REDUCED_WEIGHT_DTYPES

__all__ = ["SGD", "Adam", "clip_grad_norm"]


def _nonnegative(name: str, value: Any, *, below_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    v = float(value)
    if not (v >= 0.0 and math.isfinite(v)) or (below_one and v >= 1.0):
        raise ValueError(f"{name} must be a finite number {'in [0, 1)' if below_one else '>= 0'}, got {value!r}")
    return v


def _modules(modules: Any) -> list[Any]:
    """A module or an iterable of modules -> a list, each checked to have ``parameters()`` and ``grads``."""
    if hasattr(modules, "parameters") and hasattr(modules, "grads"):
        modules = [modules]
    try:
        mods = list(modules)
    except TypeError:
        raise TypeError("modules must be a module (with parameters() and grads) or a list of modules, "
                        f"got {type(modules).__name__}") from None
    if not mods:
        raise ValueError("modules is empty: give at least one module to optimise")
    for i, m in enumerate(mods):
        if getattr(m, "weight_dtype", None) in REDUCED_WEIGHT_DTYPES:
            raise TypeError(f"modules[{i}] ({type(m).__name__} quantized to {m.weight_dtype}) is inference-only: it has "
                            "no gradients to train; train the float model and quantize it again")
        if not (callable(getattr(m, "parameters", None)) and isinstance(getattr(m, "grads", None), Mapping)):
            raise TypeError(f"modules[{i}] ({type(m).__name__}) is not a module: it needs a parameters() method "
                            "and a grads dict")
    return mods


def _pairs(modules: list[Any]) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """(module index, name, parameter, gradient) for every parameter of every module, shapes checked."""
    for i, m in enumerate(modules):
        grads = m.grads
        for name, p in m.parameters().items():
            label = f"modules[{i}] ({type(m).__name__}) {name!r}"
            if name not in grads:
                raise ValueError(f"{label}: parameter of shape {p.shape} has no entry in grads")
            g = grads[name]
            if np.shape(g) != p.shape:
                raise ValueError(f"{label}: gradient has shape {np.shape(g)}, expected the parameter's shape "
                                 f"{p.shape}")
            yield i, name, p, np.asarray(g)


def clip_grad_norm(modules: Any, max_norm: float) -> float:
    """Scale all gradients of ``modules`` in place so that their global L2 norm is at most ``max_norm``.

    The norm is taken over every gradient array of every module together, as PyTorch's
    ``torch.nn.utils.clip_grad_norm_``: if it exceeds ``max_norm`` every gradient is multiplied by
    ``max_norm / (norm + 1e-6)``, which keeps the direction of the update and bounds its size (the usual
    remedy for exploding gradients in BPTT).

    Returns
    -------
    float
        The global norm before clipping (inf or nan if a gradient is not finite; nothing is scaled then).
    """
    mods = _modules(modules)
    max_norm = _nonnegative("max_norm", max_norm)
    if max_norm == 0.0:
        raise ValueError("max_norm must be positive, got 0")
    grads = [g for _, _, _, g in _pairs(mods)]
    # Summed in float64 by NumPy's pairwise sum (np.dot would call BLAS, whose threads only slow this down).
    total = math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in grads))
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= g.dtype.type(scale)
    return total


class _Optimizer:
    """Shared bookkeeping: the modules, per-parameter state keyed by (module index, name), zero_grad."""

    def __init__(self, modules: Any, lr: float) -> None:
        self.modules = _modules(modules)
        self.lr = _nonnegative("lr", lr)
        self.state: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        list(_pairs(self.modules))  # check every parameter has a gradient of its shape now, not at step 1

    def zero_grad(self) -> None:
        """Call ``zero_grad()`` of every module."""
        for m in self.modules:
            m.zero_grad()

    def _items(self) -> list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
        # Checked all first, so that a bad gradient leaves every parameter untouched.
        return [(self.state.setdefault((i, name), {}), p, g) for i, name, p, g in _pairs(self.modules)]


class SGD(_Optimizer):
    """Stochastic gradient descent with optional momentum, as PyTorch's ``torch.optim.SGD``.

    With ``momentum`` m the update of a parameter p with gradient g is ``buf = m * buf + g`` (``buf = g``
    at the first step), ``p -= lr * buf``; without momentum, ``p -= lr * g``. With ``weight_decay`` wd,
    ``g`` is first replaced by ``g + wd * p``.

    Parameters
    ----------
    modules : module or list of modules
        Each with ``parameters()`` (live arrays, updated in place) and ``grads`` (same names and shapes).
    lr : float
        Learning rate.
    momentum : float in [0, 1), default 0
    weight_decay : float, default 0

    Notes
    -----
    ``lr`` is an attribute read at every :meth:`step`, so a schedule may change it between steps.
    """

    def __init__(self, modules: Any, lr: float, momentum: float = 0.0, *, weight_decay: float = 0.0) -> None:
        super().__init__(modules, lr)
        self.momentum = _nonnegative("momentum", momentum, below_one=True)
        self.weight_decay = _nonnegative("weight_decay", weight_decay)

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        for state, p, g in self._items():
            if self.weight_decay:
                g = g + p.dtype.type(self.weight_decay) * p
            if self.momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
                else:
                    buf *= p.dtype.type(self.momentum)
                    buf += g
                g = buf
            p -= p.dtype.type(self.lr) * g


class Adam(_Optimizer):
    """Adam (Kingma and Ba, 2015), as PyTorch's ``torch.optim.Adam`` and Keras' ``Adam``.

    Per parameter p with gradient g, at step t = 1, 2, ...::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    Parameters
    ----------
    modules : module or list of modules
        Each with ``parameters()`` (live arrays, updated in place) and ``grads`` (same names and shapes).
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8

    Notes
    -----
    ``lr`` is an attribute read at every :meth:`step`, so a schedule may change it between steps.
    """

    def __init__(self, modules: Any, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(modules, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_nonnegative("betas[0]", betas[0], below_one=True),
                      _nonnegative("betas[1]", betas[1], below_one=True))
        self.eps = _nonnegative("eps", eps)
        self.t = 0

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for state, p, g in self._items():
            if "m" not in state:
                state["m"] = np.zeros_like(p)
                state["v"] = np.zeros_like(p)
            m, v, dt = state["m"], state["v"], p.dtype.type
            m *= dt(b1)
            m += dt(1.0 - b1) * g
            v *= dt(b2)
            v += dt(1.0 - b2) * np.square(g)
            p -= dt(self.lr / c1) * m / (np.sqrt(v / dt(c2)) + dt(self.eps))
