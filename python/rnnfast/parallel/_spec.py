"""What a data-parallel fit ships to its workers once: the model, as the bytes of :func:`rnnfast.save`."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import io as model_io

__all__ = ["ModelSpec", "model_spec", "set_parameters"]


@dataclass(frozen=True)
class ModelSpec:
    """A model as its :func:`rnnfast.save` file, held in memory: what is shipped to workers.

    Its configuration is JSON and its parameters ``.npy`` arrays (no pickled code), so a worker rebuilds the
    model with :meth:`build` from data alone, with the same bits. Picklable (it is bytes).

    Attributes
    ----------
    data : bytes
        The ``.npz`` archive :func:`rnnfast.save` writes.
    """

    data: bytes

    @property
    def nbytes(self) -> int:
        """The size of :attr:`data` in bytes: what shipping the model costs."""
        return len(self.data)

    def build(self) -> model_io.Model:
        """A new model from the archive: the saved class, configuration and parameters, bit for bit, with zero
        gradients (the generator of its dropout masks seeded with 0; training passes its own ``rng``)."""
        return model_io.load(io.BytesIO(self.data), seed=0)

    def __repr__(self) -> str:
        return f"ModelSpec({self.nbytes} bytes)"


def model_spec(model: Any) -> ModelSpec:
    """The :class:`ModelSpec` of ``model``'s configuration and current parameters.

    Parameters
    ----------
    model : RNN, LSTM, GRU, an rnnfast.nn module or Sequential
        Anything :func:`rnnfast.save` writes.

    Raises
    ------
    TypeError
        If ``model`` is not something rnnfast saves (the message names the module that is not).
    """
    buffer = io.BytesIO()
    model_io.save(buffer, model)
    return ModelSpec(buffer.getvalue())


def set_parameters(model: Any, params: Mapping[str, np.ndarray]) -> None:
    """Copy ``params`` (the broadcast parameters of a step) into ``model``'s live parameter arrays.

    Raises
    ------
    ValueError
        If the names are not exactly the model's parameters, or a shape or dtype differs (a worker must
        compute with the driver's bits: nothing is cast); nothing is copied then.
    """
    own = model.parameters()
    missing, extra = sorted(set(own) - set(params)), sorted(set(params) - set(own))
    if missing or extra:
        raise ValueError(f"params do not match the model's parameters: missing {missing}, unexpected {extra}")
    for name, target in own.items():
        value = params[name]
        if not isinstance(value, np.ndarray) or value.shape != target.shape or value.dtype != target.dtype:
            raise ValueError(f"params[{name!r}] is {getattr(value, 'dtype', type(value).__name__)} "
                             f"{getattr(value, 'shape', '')}, expected {target.dtype} {target.shape}")
    for name, target in own.items():
        np.copyto(target, params[name])
