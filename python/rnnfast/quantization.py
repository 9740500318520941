"""Reduced-precision inference: :func:`quantize` makes an int8 or bf16 copy of a float layer.

What a quantized layer computes is defined in :mod:`rnnfast.reference` (:func:`~rnnfast.reference.reduced_forward`
and the functions it names): weights quantized once, per output row (int8: symmetric); activations (the
input rows of the input projection and the hidden state of every step) quantized at run time, per row
(int8: uint8 with a zero point over the row's span, as ONNX Runtime's dynamic quantization); the gates, the
cell and hidden states in float32.

Accuracy: the error of one product against float32 is bounded by
:func:`~rnnfast.reference.int8_product_error_bound` (per element, ``sum_k |a_k| s_w/2 + |w_k| s_a/2 +
s_a s_w/4`` with the activation and weight row scales ``s_a``, ``s_w``: an activation row's span (with 0)
over 255, a weight row's largest magnitude over 127) and :func:`~rnnfast.reference.bf16_product_error_bound`
(a relative ``2^-7`` of ``sum_k |a_k w_k|`` plus float32 summation). A step's gates move by at most what
their pre-activations move (sigmoid by a quarter of it), and the tests check each step of every cell against
that bound. Over a sequence the errors feed back through the recurrence, as any perturbation of the state
does.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from ._quantized import quantize_parameters
from ._reference_reduced import REDUCED_WEIGHT_DTYPES, check_weight_dtype
from ._rnn_base import RNNBase

__all__ = ["quantize", "REDUCED_WEIGHT_DTYPES"]

#: The class of the layer :func:`quantize` is given, which is the class of the layer it returns.
Layer = TypeVar("Layer", bound="RNNBase[Any]")


def quantize(model: Layer, weight_dtype: str) -> Layer:
    """A new layer of ``model``'s class and configuration with reduced-precision weights, for inference.

    ``q = rnnfast.quantize(model, "int8")`` is called as ``model`` is (``q(x)``, ``q(x, state,
    lengths=...)``, ``q.stepper(batch=...)``), with the same options (layers, bidirectional, batch_first)
    and shapes, float32 in and out; ``model`` is not changed.

    Parameters
    ----------
    model : RNN, LSTM or GRU
        A float32 or float64 layer of PyTorch's cells (any direction, ``'reverse'`` included); cell variants
        (:attr:`~rnnfast.LSTM.proj_size`, other activations, ``clip``, ...) are not supported in reduced
        precision yet. A float64 layer's parameters are rounded to float32 first (the quantized
        layer computes in float32, as the quantization's own arithmetic is defined).
    weight_dtype : 'int8' or 'bf16'
        'int8': each weight row ``w`` becomes int8 values ``q`` in [-127, 127] and a float32 scale ``s`` with
        ``s * q`` the nearest multiple of ``s = max|w| / 127`` (an all-zero row gets ``s = 0``). 'bf16': the
        weights rounded to bfloat16 (to nearest even). Biases stay float32.

    Returns
    -------
    RNN, LSTM or GRU
        Of ``model``'s class (and so typed: ``quantize(lstm, "int8")`` is an :class:`~rnnfast.LSTM` to a type
        checker too, ``q(x)`` returning ``(out, (h, c))``). ``q.weight_dtype`` is ``weight_dtype``, ``q.dtype`` float32. Its parameters (``q.state_dict()``) are,
        per weight ``weight_ih_l0`` and so on: for 'int8', the int8 weight and its row scales
        ``weight_ih_l0_scale`` float32 (G*H,); for 'bf16', the bfloat16 bits as uint16; the biases float32.
        It is inference-only: ``forward(..., training=True)``, ``backward`` and ``zero_grad`` raise
        RuntimeError. ``rnnfast.save`` stores it (format version 2).

    Raises
    ------
    TypeError
        If ``model`` is not an rnnfast layer, or ``weight_dtype`` is not a str.
    ValueError
        If ``weight_dtype`` is not 'int8' or 'bf16'; if ``model`` is already quantized; if ``model`` is a cell
        variant (the message names its options); if a parameter
        holds a NaN or an infinity, or values float32 (or bfloat16) cannot hold (the message names it); for
        'int8', if ``input_size`` or ``hidden_size`` exceeds 65,793 (the kernels' int32 sums could overflow).
    """
    if not isinstance(model, RNNBase):
        raise TypeError(f"model must be an rnnfast RNN, LSTM or GRU layer, got {type(model).__name__}")
    weight_dtype = check_weight_dtype(weight_dtype)
    if model.weight_dtype in REDUCED_WEIGHT_DTYPES:
        raise ValueError(
            f"model is already quantized (its weight_dtype is {model.weight_dtype!r}); quantize the float model "
            "it was made from"
        )
    variant = model.variant_options()
    if variant:
        raise ValueError(
            f"rnnfast.quantize does not support cell variants yet: this {type(model).__name__} sets "
            f"{', '.join(variant)}, which reduced precision does not run (it runs PyTorch's cells only)"
        )
    return cast(Layer, model._quantized_copy(weight_dtype, quantize_parameters(model.parameters(), weight_dtype)))
