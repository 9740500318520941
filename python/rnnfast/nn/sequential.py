"""The model container :class:`Sequential`: modules applied one after another, trained and saved as one."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from typing import Any, Optional, Union

import numpy as np

from .._reference_reduced import REDUCED_WEIGHT_DTYPES
from .._rnn_base import RNNBase
from .._validation import as_array, positive_int, prepare_lengths
from ._modules import Module
from .dropout import Dropout
from .embedding import Embedding
from .last_step import LastStep

__all__ = ["Sequential"]

ArrayLike = Any
_MODULE_METHODS = ("forward", "backward", "parameters", "zero_grad", "state_dict", "load_state_dict")


def _is_module(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in _MODULE_METHODS) and hasattr(obj, "grads")


def _quantized(module: Any) -> Optional[str]:
    """The reduced weight dtype of a quantized layer (inference-only) inside ``module``, else None."""
    if isinstance(module, Sequential):
        for child in module._modules.values():
            q = _quantized(child)
            if q:
                return q
        return None
    dt = getattr(module, "weight_dtype", None)
    return dt if dt in REDUCED_WEIGHT_DTYPES else None


def _widths(module: Any) -> tuple[Optional[int], Any]:
    """(input width or None, output width) of ``module``'s last axis, for the construction checks.

    The output width is an int, ``_SAME`` (the input's: a shape-preserving module) or None (unknown: a module of
    the user's that does not say; the checks stop there).
    """
    if isinstance(module, RNNBase):
        return module.input_size, module.num_directions * module.state_size
    if isinstance(module, Sequential):
        return module.input_features, module._out_width(_SAME)
    if isinstance(module, Module):
        return module.input_features, (_SAME if module.output_features is None else module.output_features)
    inp, out = getattr(module, "input_features", None), getattr(module, "output_features", None)
    return (inp if isinstance(inp, int) else None), (out if isinstance(out, int) else None)


class _Same:
    def __repr__(self) -> str:
        return "the input's width"


_SAME: Any = _Same()


def _uses_lengths(module: Any) -> bool:
    if isinstance(module, Sequential):
        return any(_uses_lengths(m) for m in module._modules.values())
    return isinstance(module, (RNNBase, LastStep))


def _uses_rng(module: Any) -> bool:
    if isinstance(module, Sequential):
        return any(_uses_rng(m) for m in module._modules.values())
    return isinstance(module, Dropout)


def _layout_after(module: Any, layout: Optional[bool]) -> Optional[bool]:
    """Whether the data after ``module`` is a sequence and how: None (no time axis, or not one from a recurrent
    layer), or the recurrent layer's ``batch_first``; ``layout`` is what it was before ``module``."""
    if isinstance(module, RNNBase):
        return module.batch_first
    if isinstance(module, LastStep):
        return None
    if isinstance(module, Sequential):
        for child in module._modules.values():
            layout = _layout_after(child, layout)
    return layout


def _step_mask(h: np.ndarray, batch_first: bool, lengths: Any) -> Optional[np.ndarray]:
    """A boolean mask broadcasting against the sequence ``h``, False at the steps past each sequence's length;
    None where no step is past (nothing to zero)."""
    if h.ndim not in (2, 3):
        return None
    unbatched = h.ndim == 2
    T = h.shape[0] if unbatched or not batch_first else h.shape[1]
    B = 1 if unbatched else h.shape[1 if not batch_first else 0]
    lens = prepare_lengths(lengths, T, B)
    if lens is None or bool(np.all(lens >= T)):
        return None
    valid = np.arange(T)[:, None] < lens[None, :]  # (T, B)
    if unbatched:
        return valid
    return (valid.T if batch_first else valid)[:, :, None]


def _zero_padding(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a`` with the padded steps set to +0 (a product with the mask would leave -0 where a is negative)."""
    return np.where(mask, a, a.dtype.type(0))


class Sequential:
    """A model: modules applied in order, ``y = m_n(... m_1(m_0(x)))`` (PyTorch's ``torch.nn.Sequential``).

    ``Sequential(m0, m1, ...)`` names the modules '0', '1', ...; ``Sequential(embed=m0, rnn=m1, ...)`` or
    ``Sequential({'embed': m0, ...})`` gives them names (keyword order). Parameters are named
    ``'<module name>.<parameter name>'`` as in PyTorch, so the state dict of a ``torch.nn.Sequential`` of the
    same structure loads as it is.

    A recurrent layer (:class:`rnnfast.RNN`, ``LSTM``, ``GRU``) contributes its output sequence only: inside a
    Sequential its initial state is zeros and its final state is dropped. ``lengths`` reach the recurrent
    layers and :class:`LastStep`; ``rng`` reaches :class:`Dropout`. With lengths, the steps past each sequence's
    end are zero in every output from the first recurrent layer on (the layers give them so, and Sequential
    zeroes what later modules, e.g. a Linear's bias, would put there), and whatever comes back at those steps
    in :meth:`backward` is dropped: padded steps contribute nothing.

    Construction checks what it can: that consecutive modules fit (an output width against the next module's
    input width), that an :class:`Embedding` comes first, that the recurrent layers agree on ``batch_first``
    (and gives a :class:`LastStep` without one the layout of the recurrent layer before it).

    Parameters
    ----------
    *modules : modules
        The modules in order (or one mapping of names to modules).
    **named_modules : modules
        The modules by name, in order (not together with positional modules).

    Raises
    ------
    TypeError
        If an argument is not a module (it needs forward, backward, parameters, grads, zero_grad, state_dict and
        load_state_dict); the message names its position or name.
    ValueError
        If there are no modules, a name is not a non-empty str without '.', the same module object appears
        twice, or consecutive modules do not fit (the message names both and their widths).
    """

    def __init__(self, *modules: Any, **named_modules: Any) -> None:
        if modules and named_modules:
            raise TypeError("Sequential takes modules either positionally or by keyword, not both")
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            items = list(modules[0].items())
            labels = [f"{k!r}" for k, _ in items]
        elif modules:
            items = [(str(i), m) for i, m in enumerate(modules)]
            labels = [f"at position {i}" for i in range(len(modules))]
        else:
            items = list(named_modules.items())
            labels = [f"{k!r}" for k, _ in items]
        if not items:
            raise ValueError("Sequential needs at least one module")
        seen: dict[int, str] = {}
        self._modules: dict[str, Any] = {}
        for (name, module), label in zip(items, labels):
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"module names must be non-empty str without '.', got {name!r}")
            if not _is_module(module):
                raise TypeError(f"Sequential argument {label} is not a module: got {type(module).__name__} "
                                f"{module!r:.60} (a module has forward, backward, parameters, grads, zero_grad, "
                                "state_dict and load_state_dict)")
            if id(module) in seen:
                raise ValueError(f"the same {type(module).__name__} object is given twice, as {seen[id(module)]!r} "
                                 f"and {name!r}: give each position a module of its own")
            seen[id(module)] = name
            self._modules[name] = module
        self._check_structure()
        self._trace: Optional[tuple[tuple[int, ...], list[Optional[np.ndarray]]]] = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickling carries the children (each without its training state, see theirs) and not the masks a
        training forward kept for backward."""
        state = dict(self.__dict__)
        state["_trace"] = None
        return state

    # ------------------------------------------------------------------------------------------------
    # Construction checks
    # ------------------------------------------------------------------------------------------------

    def _check_structure(self) -> None:
        names = list(self._modules)
        for i, (name, m) in enumerate(self._modules.items()):
            if isinstance(m, Embedding) and i > 0:
                raise ValueError(f"Embedding {name!r} ({m!r}) must be the first module: it takes integer indices, "
                                 f"and module {names[i - 1]!r} gives floats")
        # The layout of the sequence flowing between the modules (None: no time axis from a recurrent layer) and
        # the module that made it, looked through nested models, so that a LastStep after a nested model
        # holding the recurrent layer takes that layer's batch_first too.
        layout: Optional[bool] = None
        source: Optional[str] = None
        for name, m in self._modules.items():
            if isinstance(m, RNNBase) and layout is not None and source is not None and layout != m.batch_first:
                prev = self._modules[source]
                raise ValueError(
                    f"module {source!r} ({prev!r}) gives a sequence with batch_first={layout} but module "
                    f"{name!r} ({m!r}) has batch_first={m.batch_first}: a sequence keeps its layout")
            if isinstance(m, LastStep) and layout is not None and source is not None:
                given = m._batch_first_given
                if given is not None and given != layout:
                    raise ValueError(f"module {name!r} (LastStep(batch_first={given})) does not match module "
                                     f"{source!r} ({self._modules[source]!r}), whose output has "
                                     f"batch_first={layout}")
                m._batch_first = layout
            after = _layout_after(m, layout)
            if after is not None and (isinstance(m, RNNBase) or (isinstance(m, Sequential) and any(
                    isinstance(child, (RNNBase, Sequential)) for child in m._modules.values()))):
                source = name  # a recurrent layer, or a nested model that may hold one
            layout = after
        self._out_width(None, check=True)

    def _out_width(self, width: Any, *, check: bool = False) -> Any:
        """The output width given the input width ``width`` (int, _SAME or None); with ``check``, a ValueError
        where consecutive modules do not fit."""
        prev_name: Optional[str] = None
        for name, m in self._modules.items():
            inp, out = _widths(m)
            if check and inp is not None and isinstance(width, int) and inp != width:
                prev = self._modules[prev_name] if prev_name is not None else None
                raise ValueError(
                    f"module {name!r} ({_short(m)}) takes inputs of width {inp} (shape (..., {inp})), but module "
                    f"{prev_name!r} ({_short(prev)}) gives outputs of width {width} (shape (..., {width}))")
            if out is not _SAME:
                width = out
            elif inp is not None and not isinstance(width, int):
                width = inp  # a shape-preserving module that says its width
            prev_name = name
        return width

    @property
    def input_features(self) -> Optional[int]:
        """Width of the last axis of the input the first module takes (None: any, or indices)."""
        return _widths(next(iter(self._modules.values())))[0]

    @property
    def output_features(self) -> Optional[int]:
        """Width of the last axis of the output, where the modules tell (None otherwise)."""
        out = self._out_width(None)
        return out if isinstance(out, int) else None

    # ------------------------------------------------------------------------------------------------
    # Children
    # ------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._modules.values())

    def __getitem__(self, key: Union[int, str, slice]) -> Any:
        """``model[i]`` (negative counts from the end), ``model['name']``, or ``model[i:j]`` (a new Sequential
        of the same module objects and names)."""
        if isinstance(key, str):
            if key not in self._modules:
                raise KeyError(f"no module named {key!r}; the names are {list(self._modules)}")
            return self._modules[key]
        if isinstance(key, slice):
            return Sequential(dict(list(self._modules.items())[key]))
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"Sequential indices must be int, str or slice, got {type(key).__name__}")
        n = len(self._modules)
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of range for a Sequential of {n} modules")
        return list(self._modules.values())[key]

    def named_children(self) -> Iterator[tuple[str, Any]]:
        """(name, module) pairs in order."""
        return iter(list(self._modules.items()))

    # ------------------------------------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------------------------------------

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays of every module, as ``{'<module name>.<parameter name>': array}``."""
        return {f"{name}.{k}": v for name, m in self._modules.items() for k, v in m.parameters().items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The modules' live gradient arrays under the names of :meth:`parameters` (a new dict each time; the
        arrays are the modules' own, so scaling them in place, as clipping does, changes the modules').

        Raises
        ------
        TypeError
            If a quantized layer (inference-only, no gradients) is inside.
        """
        self._refuse_quantized("grads")
        return {f"{name}.{k}": v for name, m in self._modules.items() for k, v in m.grads.items()}

    def zero_grad(self) -> None:
        """Set every module's accumulated gradients to zero."""
        self._refuse_quantized("zero_grad()")
        for m in self._modules.values():
            m.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter under PyTorch's keys, ``'<module name>.<parameter name>'``."""
        return {f"{name}.{k}": v for name, m in self._modules.items() for k, v in m.state_dict().items()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Copy parameters in: the keys must be exactly those of :meth:`state_dict` and the shapes the same.

        ``model.load_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})`` loads the
        parameters of a ``torch.nn.Sequential`` of the same structure.

        Raises
        ------
        ValueError
            If keys are missing or unexpected, or a shape differs: nothing is loaded then.
        TypeError
            If ``state_dict`` is not a mapping, or a value cannot be cast to its parameter's dtype.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
        own = {f"{name}.{k}": v for name, m in self._modules.items() for k, v in m.state_dict().items()}
        missing = [k for k in own if k not in state_dict]
        extra = [k for k in state_dict if k not in own]
        if missing or extra:
            raise ValueError(f"load_state_dict for Sequential: missing keys {missing}, unexpected keys {extra}")
        for key, target in own.items():  # all checked before any is loaded
            arr = as_array(f"state_dict[{key!r}]", state_dict[key])
            if arr.shape != target.shape:
                raise ValueError(f"load_state_dict for Sequential: {key!r} has shape {arr.shape}, expected "
                                 f"{target.shape}")
        for name, m in self._modules.items():
            prefix = name + "."
            part = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            if part or m.state_dict():
                m.load_state_dict(part)

    def _refuse_quantized(self, what: str) -> None:
        for name, m in self._modules.items():
            q = _quantized(m)
            if q:
                raise TypeError(f"Sequential.{what}: module {name!r} ({_short(m)}) is quantized to {q}, which is "
                                "inference-only: train the float model and quantize it again")

    # ------------------------------------------------------------------------------------------------
    # Forward and backward
    # ------------------------------------------------------------------------------------------------

    def __call__(self, x: ArrayLike, lengths: Optional[ArrayLike] = None) -> np.ndarray:
        """Inference: ``model(x, lengths)`` is ``model.forward(x, lengths=lengths)``."""
        return self.forward(x, lengths=lengths)

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Run the modules in order.

        Parameters
        ----------
        x : array-like
            The first module's input: e.g. (T, B, I) for a recurrent layer ((B, T, I) with its
            ``batch_first``), (T, B) integer indices for an Embedding.
        training : bool
            If True, every module keeps what :meth:`backward` needs and Dropout drops.
        lengths : array-like of int (B,), or None
            Per-sequence lengths, for the recurrent layers and LastStep (see the class notes).
        rng : numpy.random.Generator or None
            Draws the Dropout masks; None: each Dropout's own generator.

        Returns
        -------
        ndarray
            The last module's output.

        Raises
        ------
        TypeError
            If ``training`` and a quantized layer is inside, or ``rng`` is not a Generator.
        ValueError
            If ``lengths`` is given to a model without recurrent layer or LastStep; errors of a module on its
            input are re-raised with the module's name in front.
        """
        training = bool(training)
        if training:
            self._refuse_quantized("forward(..., training=True)")
        if lengths is not None and not _uses_lengths(self):
            raise ValueError("lengths were given, but this Sequential has no recurrent layer or LastStep to use "
                             "them")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
        h = x
        layout: Optional[bool] = None  # the recurrent layout while the data is a sequence from a recurrent layer
        masks: list[Optional[np.ndarray]] = []
        for name, m in self._modules.items():
            try:
                if isinstance(m, RNNBase):
                    h = m.forward(h, lengths=lengths, training=training)[0]
                elif isinstance(m, (Sequential, Module)):
                    kw: dict[str, Any] = {}
                    if lengths is not None and _uses_lengths(m):
                        kw["lengths"] = lengths
                    if rng is not None and _uses_rng(m):
                        kw["rng"] = rng
                    h = m.forward(h, training=training, **kw)
                else:
                    h = m.forward(h, training=training)
            except (TypeError, ValueError) as exc:
                if type(exc) not in (TypeError, ValueError):
                    raise
                raise type(exc)(f"Sequential module {name!r} ({_short(m)}): {exc}") from exc
            layout = _layout_after(m, layout)
            mask = None
            if lengths is not None and layout is not None and isinstance(h, np.ndarray):
                mask = _step_mask(h, layout, lengths)
                if mask is not None and not isinstance(m, RNNBase):  # a layer's own padding is zero already
                    h = _zero_padding(h, mask)
            masks.append(mask)
        if training:
            self._trace = (np.shape(h), masks)
        return np.asarray(h)

    def backward(self, d_y: ArrayLike) -> Optional[np.ndarray]:
        """Backpropagate ``d_y`` (the shape of the training forward's output) through every module, adding
        into their gradients; returns the gradient with respect to ``x`` (None if the first module is an
        Embedding: indices have none).

        Raises
        ------
        RuntimeError
            If no ``forward(..., training=True)`` preceded (each supports one backward).
        ValueError
            If ``d_y`` does not have the training forward's output shape.
        """
        if self._trace is None:
            raise RuntimeError("Sequential.backward() needs a preceding forward(x, training=True); none is saved "
                               "(inference calls save nothing, and backward releases what forward saved)")
        out_shape, masks = self._trace
        g = as_array("d_y", d_y)
        if g.shape != tuple(out_shape):
            raise ValueError(f"d_y has shape {g.shape}, expected {tuple(out_shape)} (the shape of the training "
                             "forward's output)")
        self._trace = None
        for (name, m), mask in reversed(list(zip(self._modules.items(), masks))):
            if mask is not None:
                g = _zero_padding(g, mask)
            if isinstance(m, RNNBase):
                g = m.backward(g)[0]
            else:
                g = m.backward(g)
        return g

    # ------------------------------------------------------------------------------------------------
    # Batched inference
    # ------------------------------------------------------------------------------------------------

    def _batch_axes(self) -> tuple[int, int, int]:
        """(batch axis of the input, of the output, the input's rank when batched)."""
        leaves = list(_leaves(self))
        recurrent = [m for m in leaves if isinstance(m, RNNBase)]
        if not recurrent:
            return 0, 0, 0
        first = recurrent[0]
        in_axis = 0 if first.batch_first else 1
        in_rank = 2 if isinstance(leaves[0], Embedding) else 3
        out_layout = _layout_after(self, None)
        out_axis = 0 if out_layout is None or out_layout else 1
        return in_axis, out_axis, in_rank

    def predict(self, x: ArrayLike, *, batch_size: Optional[int] = None,
                lengths: Optional[ArrayLike] = None) -> np.ndarray:
        """Inference over ``x`` in batches of ``batch_size`` sequences, concatenated over the batch axis.

        Each batch runs as ``model(x_batch, lengths_batch)`` (the layers' native inference path); rows do not
        interact, so the result is ``model(x, lengths)`` with less memory at once.

        Parameters
        ----------
        x : array-like
            As for :meth:`forward`; the batch axis is the first recurrent layer's (axis 1 time-major, 0 with
            ``batch_first``), axis 0 in a model without recurrent layer.
        batch_size : int or None
            Sequences per batch; None: all at once.
        lengths : array-like of int (B,), or None

        Returns
        -------
        ndarray

        Raises
        ------
        TypeError, ValueError
            For a bad ``batch_size`` or ``lengths`` of the wrong shape, and as :meth:`forward`.
        """
        if batch_size is None:
            return self.forward(x, lengths=lengths)
        batch_size = positive_int("batch_size", batch_size)
        arr = np.asarray(x)
        in_axis, out_axis, in_rank = self._batch_axes()
        if (in_rank and arr.ndim != in_rank) or arr.ndim <= in_axis:
            return self.forward(arr, lengths=lengths)  # unbatched (or wrong: forward says why)
        n = arr.shape[in_axis]
        lens = None
        if lengths is not None:
            lens = as_array("lengths", lengths)
            if lens.shape != (n,):
                raise ValueError(f"lengths has shape {lens.shape}, expected ({n},): one length per sequence of x "
                                 f"(x has shape {arr.shape}, batch axis {in_axis})")
        if n <= batch_size:
            return self.forward(arr, lengths=lens)
        parts = []
        for start in range(0, n, batch_size):
            index = [slice(None)] * arr.ndim
            index[in_axis] = slice(start, start + batch_size)
            chunk = np.ascontiguousarray(arr[tuple(index)])
            parts.append(self.forward(chunk, lengths=None if lens is None else lens[start:start + batch_size]))
        return np.concatenate(parts, axis=out_axis)

    # ------------------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


def _leaves(module: Any) -> Iterator[Any]:
    """The modules of ``module`` in order, nested Sequentials flattened."""
    if isinstance(module, Sequential):
        for child in module._modules.values():
            yield from _leaves(child)
    else:
        yield module


def _short(module: Any) -> str:
    """A one-line description of ``module`` for error messages."""
    if isinstance(module, Sequential):
        return f"Sequential of {len(module)} modules"
    return repr(module)
