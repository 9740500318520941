"""What the converters of every framework share: importing the framework, checking an rnnfast model,
reordering gate blocks between gate orders, and building the rnnfast layer a conversion returns."""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from .._cells import cell_facts
from .._rnn_base import RNNBase
from ..layers import GRU, LSTM, RNN
from ..quantization import quantize
from ._variant import LayerVariant

__all__ = ["LayerVariant", "Model", "SUPPORTED_DTYPES", "build_layer", "check_model", "gates_from_rnnfast",
           "gates_to_rnnfast", "import_optional", "permute_gates"]

#: A recurrent model of rnnfast.
Model = Union[RNN, LSTM, GRU]

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_LAYER_CLASSES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
# A cell of each family, whose gate names are the family's (every RNN activation has the one gate 'h').
_FAMILY_CELL = {"rnn": "rnn_tanh", "lstm": "lstm", "gru": "gru"}
_INSTALL_HINTS = {
    "torch": "pip install torch",
    "onnx": "pip install 'rnnfast[onnx]'",
    "keras": "pip install keras (with a backend: torch, jax or tensorflow)",
}


def _gate_names(cell: str) -> tuple:
    return cell_facts(_FAMILY_CELL.get(cell, cell)).gate_names


def gates_to_rnnfast(cell: str, source_gates: Sequence[str]) -> tuple:
    """The permutation taking weights in the gate order ``source_gates`` (named as rnnfast names the gates
    of ``cell``, a cell or a family name) to rnnfast's order: rnnfast's gate block j is the source's gate
    block perm[j]."""
    return tuple(list(source_gates).index(name) for name in _gate_names(cell))


def gates_from_rnnfast(cell: str, target_gates: Sequence[str]) -> tuple:
    """The permutation taking rnnfast's weights of ``cell`` (a cell or a family name) to the gate order
    ``target_gates``: the target's gate block j is rnnfast's gate block perm[j]."""
    names = _gate_names(cell)
    return tuple(names.index(name) for name in target_gates)


def permute_gates(a: np.ndarray, perm: tuple) -> np.ndarray:
    """Reorder the len(perm) equal gate blocks along axis 0 of ``a``: block j of the result is block perm[j]."""
    if len(perm) == 1:
        return np.array(a, copy=True)
    blocks = np.split(np.asarray(a), len(perm), axis=0)
    return np.concatenate([blocks[p] for p in perm], axis=0)


def build_layer(variant: LayerVariant, input_size: int, hidden_size: int, num_layers: int, *, bias: bool,
                batch_first: bool, dtype: np.dtype, params: dict, dropout: float = 0.0,
                weight_dtype: Optional[str] = None) -> Model:
    """An rnnfast layer of the given configuration and cell ``variant`` loaded with ``params`` (rnnfast names,
    shapes, gate order; ``weight_hr_l{k}`` with a projection, ``weight_ch_l{k}`` with peepholes).

    With ``weight_dtype`` ('int8' or 'bf16') the layer is quantized and ``params`` are a quantized layer's
    (:func:`rnnfast.quantize`: e.g. int8 weights each followed by its row scales ``weight_..._scale``), loaded
    as they are (``dtype`` must then be float32).
    """
    kwargs: dict = dict(bias=bias, batch_first=batch_first, dropout=dropout, dtype=dtype)
    kwargs.update(variant.constructor_kwargs())
    with warnings.catch_warnings():
        # The dropout-with-one-layer warning is about training the source model, not about this conversion.
        warnings.simplefilter("ignore", UserWarning)
        model = _LAYER_CLASSES[variant.family](input_size, hidden_size, num_layers, **kwargs)
    if weight_dtype is not None:
        # The quantized layer of this configuration (its values replaced at once), loaded with params: the
        # checks of load_state_dict (names, shapes, dtypes, values quantization can give) apply.
        model = quantize(model, weight_dtype)
    model.load_state_dict(params)
    return model


def check_model(model: Any, argument: str = "model", *, quantized: bool = False) -> RNNBase:
    """``model`` itself if it is a float rnnfast layer (or with ``quantized``, any rnnfast layer), else a
    TypeError (a ValueError for a quantized one)."""
    if not isinstance(model, RNNBase):
        raise TypeError(
            f"{argument} must be an rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU, got {type(model).__name__}"
        )
    if not quantized and model.weight_dtype not in (d.name for d in SUPPORTED_DTYPES):
        raise ValueError(
            f"{argument} is quantized to {model.weight_dtype}, which the converters do not write: convert the float "
            "model it was made from"
        )
    return model


def import_optional(name: str, purpose: str):
    """Import an optional framework, or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"{purpose} needs the optional package '{name}', which is not importable ({e}); "
                          f"install it with: {_INSTALL_HINTS[name]}") from e
