"""What every module of :mod:`rnnfast.nn` shares: :class:`Module`, the base of :class:`Embedding`,
:class:`Dropout`, :class:`LastStep` and the activations.

The module contract (also met by :class:`~rnnfast.nn.Linear` and the recurrent layers, which do not derive
from this class): ``forward(x, *, training=False, ...) -> y``, ``__call__(x)`` for inference,
``backward(d_y) -> d_x`` after a training forward, ``parameters()`` (live arrays by name), ``grads`` (the
same names and shapes), ``zero_grad()``, ``state_dict()`` (copies) and ``load_state_dict(sd)``.

For the shape checks of :class:`~rnnfast.nn.Sequential` a module says what width it takes and gives:
``input_features`` (the last axis of its input, None if any width goes) and ``output_features`` (the last
axis of its output, None if it is the input's: a shape-preserving module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from .._validation import as_array, cast

__all__ = ["Module", "float_input"]

ArrayLike = Any


def float_input(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as a float32/float64 array for a module without parameters (which has no dtype of its own).

    float32 and float64 stay as they are; float16 computes in float32 and integers or booleans in float64,
    as NumPy's own float results of such input do (and as :func:`rnnfast.nn.softmax` does).
    """
    arr = as_array(name, value)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    return cast(name, arr, np.dtype(np.float32) if arr.dtype.kind == "f" else np.dtype(np.float64))


class Module:
    """Base of the modules of :mod:`rnnfast.nn` (not for direct use): parameters, gradients and state dicts.

    A subclass fills ``self._params`` (name -> array, the order of PyTorch's ``state_dict``) in its
    ``__init__`` and calls :meth:`_init_grads`; it implements ``forward`` and ``backward``, and keeps what a
    training forward saves for ``backward`` in ``self._saved`` (None when nothing is saved).
    """

    #: Width of the input's last axis, or None if any width goes (see the module docstring).
    input_features: Optional[int] = None
    #: Width of the output's last axis, or None if it is the input's.
    output_features: Optional[int] = None

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._saved: Any = None

    def _init_grads(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    def __getstate__(self) -> dict[str, Any]:
        """Pickling carries the configuration and the parameters, not what a training forward saved for
        backward nor the accumulated gradients (as the recurrent layers): an unpickled copy starts with zero
        gradients."""
        state = dict(self.__dict__)
        state["_saved"] = None
        state["grads"] = {k: np.zeros_like(v) for k, v in self._params.items()}
        return state

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays by name (updating them changes the module); empty if it has none."""
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, loadable by :meth:`load_state_dict` (and by the PyTorch module)."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Copy parameters in; the keys and shapes must be exactly those of :meth:`state_dict`.

        Raises
        ------
        ValueError
            If the keys or a shape differ (nothing is copied then).
        TypeError
            If a value is not an array of real numbers castable to the parameter's dtype.
        """
        title = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict for {title}: state_dict must be a mapping of names to arrays, "
                            f"got {type(state_dict).__name__}")
        if set(state_dict) != set(self._params):
            raise ValueError(f"load_state_dict for {title}: expected keys {sorted(self._params)}, "
                             f"got {sorted(state_dict)}")
        converted = {}
        for name, target in self._params.items():
            arr = as_array(f"state_dict[{name!r}]", state_dict[name])
            if arr.shape != target.shape:
                raise ValueError(f"load_state_dict for {title}: {name!r} has shape {arr.shape}, "
                                 f"expected {target.shape}")
            converted[name] = cast(f"state_dict[{name!r}]", arr, target.dtype)
        for name, value in converted.items():
            np.copyto(self._params[name], value)

    def zero_grad(self) -> None:
        """Set the accumulated gradients to zero."""
        for g in self.grads.values():
            g.fill(0)

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """Inference: ``m(x)`` is ``m.forward(x, training=False)``."""
        return self.forward(x, training=False)

    def forward(self, x: ArrayLike, *, training: bool = False, lengths: Optional[ArrayLike] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """The module's output for ``x``; with ``training=True`` it keeps what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, d_y: ArrayLike) -> Optional[np.ndarray]:
        """The gradient with respect to the input of the last training forward, from ``d_y``."""
        raise NotImplementedError

    def _take_saved(self) -> Any:
        """What the last training forward saved, released (one backward per training forward, as the layers);
        RuntimeError if there is none."""
        saved = self._saved
        if saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() needs a preceding forward(x, training=True); "
                               "none is saved (inference calls save nothing, and backward releases what forward "
                               "saved)")
        self._saved = None
        return saved

    @staticmethod
    def _grad_of(d_y: ArrayLike, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """``d_y`` checked to have the training forward's output ``shape``, as ``dtype``."""
        arr = as_array("d_y", d_y)
        if arr.shape != tuple(shape):
            raise ValueError(f"d_y has shape {arr.shape}, expected {tuple(shape)} (the shape of the training "
                             "forward's output)")
        return cast("d_y", arr, dtype)

    def extra_repr(self) -> str:
        """The arguments shown inside the parentheses of :func:`repr` (PyTorch's convention)."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
