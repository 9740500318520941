"""A thin training toolkit in NumPy around the recurrent layers: dense layer, losses, optimisers, clipping,
truncated BPTT.

Everything here is small and explicit: there is no autograd and no model container. A "module" is any
object with a ``parameters()`` method returning its live parameter arrays by name and a ``grads`` dict
with the same names and shapes, into which its ``backward`` adds gradients; the recurrent layers
(:class:`rnnfast.RNN`, :class:`rnnfast.LSTM`, :class:`rnnfast.GRU`) and :class:`Linear` are modules.
A training step is written out by hand::

    import rnnfast
    from rnnfast import nn

    rnn = rnnfast.LSTM(8, 32, seed=0)
    head = nn.Linear(32, 5, seed=1)
    opt = nn.Adam([rnn, head], lr=1e-3)

    out, _ = rnn.forward(x, training=True)             # x (T, B, 8) -> out (T, B, 32)
    logits = head.forward(out[-1], training=True)       # many-to-one: the last step -> (B, 5)
    loss, d_logits = nn.softmax_cross_entropy(logits, y)
    opt.zero_grad()                                     # clears rnn.grads and head.grads
    d_out = np.zeros_like(out)
    d_out[-1] = head.backward(d_logits)
    rnn.backward(d_out)
    nn.clip_grad_norm([rnn, head], max_norm=1.0)
    opt.step()                                          # updates the parameter arrays in place

Contents:

- :class:`Linear`: ``y = x W^T + b`` on the last axis, so it applies per step to (T, B, H) sequences;
- :func:`softmax_cross_entropy` and :func:`mse`: mean losses returning ``(loss, d_input)``, with an
  optional ``mask`` for padded steps; :func:`softmax` and :func:`one_hot` helpers;
- :class:`SGD` (with momentum) and :class:`Adam`, as PyTorch's ``torch.optim.SGD`` and ``Adam``;
- :func:`clip_grad_norm`: clipping by the global norm of all gradients, as PyTorch's
  ``clip_grad_norm_``;
- :class:`TruncatedBPTT`: walks a long sequence in chunks, carrying the recurrent state forward and
  stopping the gradient between chunks.

Errors are ``ValueError``/``TypeError`` naming the argument and the shapes involved.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._reference_reduced import REDUCED_WEIGHT_DTYPES
from ._validation import as_array, cast, float_dtype, positive_int

__all__ = [
    "Linear",
    "softmax", "softmax_cross_entropy", "mse", "one_hot",
    "SGD", "Adam", "clip_grad_norm", "TruncatedBPTT",
]

ArrayLike = Any


def _nonnegative(name: str, value: Any, *, below_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    v = float(value)
    if not (v >= 0.0 and math.isfinite(v)) or (below_one and v >= 1.0):
        raise ValueError(f"{name} must be a finite number {'in [0, 1)' if below_one else '>= 0'}, got {value!r}")
    return v


def _float_input(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as a float32/float64 array (float32 stays float32; anything else real goes to float64)."""
    arr = as_array(name, value)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype.kind == "f":  # float16
        return arr.astype(np.float32)
    return arr.astype(np.float64)


# ---------------------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------------------


class Linear:
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
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.dtype = float_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self._params = {"weight": rng.uniform(-bound, bound, (self.out_features, self.in_features))
                        .astype(self.dtype)}
        if bias:
            self._params["bias"] = rng.uniform(-bound, bound, (self.out_features,)).astype(self.dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self._params.items()}
        self._saved_x: Optional[np.ndarray] = None

    @property
    def weight(self) -> np.ndarray:
        """The live (out_features, in_features) weight."""
        return self._params["weight"]

    @property
    def bias(self) -> Optional[np.ndarray]:
        """The live (out_features,) bias, or None."""
        return self._params.get("bias")

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays ``{'weight': ..., 'bias': ...}`` (updating them changes the layer)."""
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, loadable by :meth:`load_state_dict` (and by ``torch.nn.Linear``)."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Copy parameters in; the keys and shapes must be exactly those of :meth:`state_dict`."""
        if set(state_dict) != set(self._params):
            raise ValueError(f"load_state_dict for Linear: expected keys {sorted(self._params)}, "
                             f"got {sorted(state_dict)}")
        converted = {}
        for name, target in self._params.items():
            arr = as_array(f"state_dict[{name!r}]", state_dict[name])
            if arr.shape != target.shape:
                raise ValueError(f"load_state_dict for Linear: {name!r} has shape {arr.shape}, "
                                 f"expected {target.shape}")
            converted[name] = cast(f"state_dict[{name!r}]", arr, self.dtype)
        for name, value in converted.items():
            np.copyto(self._params[name], value)

    def zero_grad(self) -> None:
        """Set the accumulated gradients to zero."""
        for g in self.grads.values():
            g.fill(0)

    def _input(self, x: ArrayLike) -> np.ndarray:
        arr = as_array("x", x)
        if arr.ndim < 1 or arr.shape[-1] != self.in_features:
            raise ValueError(f"x has shape {arr.shape}, expected (..., {self.in_features}) "
                             f"(last axis in_features={self.in_features})")
        return cast("x", arr, self.dtype)

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """Inference: ``layer(x)`` is ``layer.forward(x, training=False)``."""
        return self.forward(x, training=False)

    def forward(self, x: ArrayLike, *, training: bool = False) -> np.ndarray:
        """``x`` (..., in_features) -> (..., out_features). With ``training=True`` keeps ``x`` for backward."""
        x = self._input(x)
        y = x @ self._params["weight"].T
        if "bias" in self._params:
            y += self._params["bias"]
        if training:
            self._saved_x = x.copy()
        return y

    def backward(self, d_y: ArrayLike) -> np.ndarray:
        """Gradient of the last training forward: adds into :attr:`grads` and returns ``d_x`` (x's shape)."""
        x = self._saved_x
        if x is None:
            raise RuntimeError("Linear.backward() needs a preceding forward(x, training=True); none is saved "
                               "(inference calls save nothing, and backward releases what forward saved)")
        expected = x.shape[:-1] + (self.out_features,)
        d_y = as_array("d_y", d_y)
        if d_y.shape != expected:
            raise ValueError(f"d_y has shape {d_y.shape}, expected {expected} (the shape of the training "
                             "forward's output)")
        d_y = cast("d_y", d_y, self.dtype)
        d2 = d_y.reshape(-1, self.out_features)
        self.grads["weight"] += d2.T @ x.reshape(-1, self.in_features)
        if "bias" in self._params:
            self.grads["bias"] += d2.sum(axis=0)
        self._saved_x = None
        return d_y @ self._params["weight"]

    def __repr__(self) -> str:
        extra = "" if "bias" in self._params else ", bias=False"
        extra += "" if self.dtype == np.float32 else f", dtype='{self.dtype.name}'"
        return f"Linear({self.in_features}, {self.out_features}{extra})"


# ---------------------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------------------


def softmax(logits: ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (float32 stays float32, other input runs in float64)."""
    z = _float_input("logits", logits)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def one_hot(indices: ArrayLike, num_classes: int, dtype: Any = "float32") -> np.ndarray:
    """``indices`` (any shape, ints in [0, num_classes)) -> (..., num_classes) one-hot array."""
    num_classes = positive_int("num_classes", num_classes)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"indices must be in [0, {num_classes}), got values in [{idx.min()}, {idx.max()}]")
    out = np.zeros(idx.shape + (num_classes,), dtype=float_dtype(dtype))
    np.put_along_axis(out, idx[..., None].astype(np.intp), 1, axis=-1)
    return out


def _mask_weights(mask: Optional[ArrayLike], shape: tuple, dtype: np.dtype, what: str) -> Optional[np.ndarray]:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"mask has dtype {m.dtype}; expected booleans or 0/1 weights")
    try:
        m = np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(f"mask has shape {m.shape}, which does not broadcast to {shape} ({what})") from None
    if m.dtype.kind == "f" and m.size and m.min() < 0:
        raise ValueError("mask weights must be non-negative")
    return m.astype(dtype)


def softmax_cross_entropy(logits: ArrayLike, targets: ArrayLike, *,
                          mask: Optional[ArrayLike] = None) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over classes on the last axis, and its gradient.

    Keras' ``categorical_crossentropy`` after a softmax, or PyTorch's ``cross_entropy`` on logits.

    Parameters
    ----------
    logits : array-like (..., C)
        Unnormalised scores; float32 stays float32, other real input runs in float64.
    targets : array-like of ints (...)
        Class indices in [0, C), the shape of ``logits`` without its last axis.
    mask : array-like (...), optional
        Booleans (or non-negative weights) broadcastable to ``targets``: the loss is the weighted mean over
        the positions, so padded steps (mask 0) contribute neither loss nor gradient. If every weight is
        zero the loss is 0.

    Returns
    -------
    loss : float
        ``sum(w * -log softmax(logits)[target]) / sum(w)`` (w = 1 without a mask).
    d_logits : ndarray (..., C)
        Gradient of ``loss`` with respect to ``logits``: ``w * (softmax - one_hot(target)) / sum(w)``.
    """
    z = _float_input("logits", logits)
    if z.ndim < 1:
        raise ValueError(f"logits must have a class axis, got shape {z.shape}")
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
    if t.shape != z.shape[:-1]:
        raise ValueError(f"targets has shape {t.shape}, expected {z.shape[:-1]} (logits' shape {z.shape} "
                         "without its class axis)")
    C = z.shape[-1]
    if t.size and (t.min() < 0 or t.max() >= C):
        raise ValueError(f"targets must be class indices in [0, {C}) for logits of shape {z.shape}, got values "
                         f"in [{t.min()}, {t.max()}]")
    w = _mask_weights(mask, t.shape, z.dtype, "the shape of targets")
    shifted = z - z.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_p = shifted - log_sum
    t_idx = t[..., None].astype(np.intp)
    nll = -np.take_along_axis(log_p, t_idx, axis=-1)[..., 0]
    grad = np.exp(log_p)
    np.put_along_axis(grad, t_idx, np.take_along_axis(grad, t_idx, axis=-1) - 1, axis=-1)
    if w is None:
        count = max(t.size, 1)
        loss = float(nll.sum(dtype=np.float64)) / count
        grad /= z.dtype.type(count)
    else:
        total = float(w.sum(dtype=np.float64))
        if total == 0.0:
            return 0.0, np.zeros_like(z)
        loss = float((w * nll).sum(dtype=np.float64)) / total
        grad *= w[..., None] / z.dtype.type(total)
    return loss, grad


def mse(pred: ArrayLike, target: ArrayLike, *, mask: Optional[ArrayLike] = None) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient: ``mean((pred - target)**2)``.

    Parameters
    ----------
    pred, target : array-like, the same shape
        float32 stays float32, other real input runs in float64.
    mask : array-like, optional
        Booleans or non-negative weights broadcastable to ``pred``; the mean is then weighted by it (a
        (T, B, 1) mask drops whole padded steps of a (T, B, F) prediction). All-zero weights give loss 0.

    Returns
    -------
    loss : float
    d_pred : ndarray, the shape of ``pred``
        ``2 * w * (pred - target) / sum(w)``.
    """
    p = _float_input("pred", pred)
    t = as_array("target", target)
    if t.shape != p.shape:
        raise ValueError(f"target has shape {t.shape}, expected the shape of pred {p.shape}")
    diff = p - t.astype(p.dtype, copy=False)
    w = _mask_weights(mask, p.shape, p.dtype, "the shape of pred")
    if w is None:
        count = max(p.size, 1)
        return float(np.square(diff).sum(dtype=np.float64)) / count, diff * p.dtype.type(2.0 / count)
    total = float(w.sum(dtype=np.float64))
    if total == 0.0:
        return 0.0, np.zeros_like(p)
    loss = float((w * np.square(diff)).sum(dtype=np.float64)) / total
    return loss, diff * w * p.dtype.type(2.0 / total)


# ---------------------------------------------------------------------------------------------------------
# Optimisers and clipping
# ---------------------------------------------------------------------------------------------------------


def _modules(modules: Any) -> list:
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


def _pairs(modules: list) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
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

    def _items(self) -> list[tuple[dict, np.ndarray, np.ndarray]]:
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


# ---------------------------------------------------------------------------------------------------------
# Truncated backpropagation through time
# ---------------------------------------------------------------------------------------------------------


class TruncatedBPTT:
    """Train a recurrent layer on a long sequence in chunks: state carried forward, gradient stopped.

    Backpropagation through a whole long sequence costs memory in its length and its gradients can
    explode or vanish. Truncated BPTT runs the sequence in chunks of ``chunk_len`` steps: each chunk
    starts from the final state of the previous one (so the model still sees the whole history), but the
    state is *detached* at the boundary, so each backward stops at its chunk's start. ::

        tbptt = nn.TruncatedBPTT(lstm, chunk_len=50)
        for x_chunk, y_chunk in tbptt.chunks(x, y):          # x, y (T, B, ...) split on the time axis
            out = tbptt.forward(x_chunk)                     # starts from the carried state
            loss, d_pred = nn.mse(head.forward(out, training=True), y_chunk)
            opt.zero_grad()
            tbptt.backward(head.backward(d_pred))            # no gradient into earlier chunks
            opt.step()
        tbptt.reset()                                        # before the next, unrelated batch of sequences

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        A unidirectional layer (the reverse direction of a bidirectional one has no state to carry forward).
    chunk_len : int, optional
        Steps per chunk for :meth:`chunks`.

    Raises
    ------
    ValueError
        From :meth:`forward` when a chunk's batch size (or batched-ness) does not match the carried state,
        naming both shapes; from the constructor for a bidirectional layer.
    """

    def __init__(self, layer: Any, chunk_len: Optional[int] = None) -> None:
        if getattr(layer, "weight_dtype", None) in REDUCED_WEIGHT_DTYPES:
            raise TypeError(f"layer ({type(layer).__name__} quantized to {layer.weight_dtype}) is inference-only: "
                            "train the float model and quantize it again")
        if getattr(layer, "bidirectional", False):
            raise ValueError("TruncatedBPTT needs a unidirectional layer: the reverse direction of a bidirectional "
                             "layer runs from the end of the sequence, so it has no state to carry into the next chunk")
        self.layer = layer
        self.chunk_len = None if chunk_len is None else positive_int("chunk_len", chunk_len)
        self._state: Any = None

    @property
    def state(self) -> Any:
        """The carried (detached) state: ``h`` or ``(h, c)``, or None before the first chunk."""
        return self._state

    def reset(self, state: Any = None) -> None:
        """Forget the carried state (start of new sequences), or set it to ``state``."""
        self._state = self._detach(state)

    @staticmethod
    def _detach(state: Any) -> Any:
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(None if s is None else np.array(s, copy=True) for s in state)
        return np.array(state, copy=True)

    def chunks(self, *arrays: ArrayLike, chunk_len: Optional[int] = None, axis: Optional[int] = None
               ) -> Iterator[Union[np.ndarray, tuple]]:
        """Split ``arrays`` (all the same length on the time axis) into consecutive chunks.

        The time axis is 1 for a ``batch_first`` layer's 3-D input, else 0 (pass ``axis`` to override).
        Yields one array per chunk if one array is given, else a tuple; the last chunk may be shorter.
        """
        n = self.chunk_len if chunk_len is None else positive_int("chunk_len", chunk_len)
        if n is None:
            raise ValueError("chunks() needs chunk_len (given here or to the constructor)")
        if not arrays:
            raise ValueError("chunks() needs at least one array")
        arrs = [np.asarray(a) for a in arrays]
        if axis is None:
            axis = 1 if getattr(self.layer, "batch_first", False) and arrs[0].ndim == 3 else 0
        T = arrs[0].shape[axis]
        for i, a in enumerate(arrs[1:], 1):
            if a.shape[axis] != T:
                raise ValueError(f"arrays[{i}] has shape {a.shape}: length {a.shape[axis]} on the time axis "
                                 f"{axis}, expected {T} (the length of arrays[0], shape {arrs[0].shape})")
        for start in range(0, T, n):
            sl = [np.take(a, np.arange(start, min(start + n, T)), axis=axis) for a in arrs]
            yield sl[0] if len(sl) == 1 else tuple(sl)

    def _check_chunk(self, x: np.ndarray) -> None:
        state = self._state
        if state is None:
            return
        h = state[0] if isinstance(state, tuple) else state
        if x.ndim == 2:
            chunk_batch, what = None, "an unbatched chunk (seq_len, input_size)"
        elif x.ndim == 3:
            chunk_batch = x.shape[0] if getattr(self.layer, "batch_first", False) else x.shape[1]
            what = f"batch {chunk_batch}"
        else:
            return  # the layer reports the bad rank
        state_batch = h.shape[1] if h.ndim == 3 else None
        if chunk_batch != state_batch:
            carried = f"batch {state_batch}" if state_batch is not None else "unbatched"
            raise ValueError(f"truncated-BPTT x_chunk has shape {x.shape} ({what}) but the carried state "
                             f"has shape {h.shape} ({carried}); every chunk must continue the same sequences "
                             "- call reset() before starting new ones")

    def forward(self, x_chunk: ArrayLike, *, training: bool = True) -> np.ndarray:
        """Run the layer on the next chunk from the carried state; keep its final state (detached).

        Returns the chunk's output ``out``; with ``training=True`` the layer saves what
        :meth:`backward` needs.
        """
        x = as_array("x_chunk", x_chunk)
        self._check_chunk(x)
        out, state = self.layer.forward(x, self._state, training=training)
        self._state = self._detach(state)
        return out

    def backward(self, d_out: ArrayLike) -> np.ndarray:
        """Backward through the last chunk only (no gradient flows into the carried state); returns ``d_x``.

        Parameter gradients are added into ``layer.grads``.
        """
        d_x, _ = self.layer.backward(d_out, None)
        return d_x
