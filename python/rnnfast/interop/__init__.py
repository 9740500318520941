"""Bring recurrent models in from PyTorch, ONNX and Keras, and send them out to PyTorch and ONNX.

Every converter is exact or refuses: a model that rnnfast cannot compute with the same numbers (up to
floating-point round-off) raises an error naming the attribute or option that does not map, never a
silent approximation. (Int8 LSTMs keep their weights and scales exactly; their activations are quantized
at run time by each runtime its own way, so outputs agree within the quantization error.) The frameworks are imported only inside these functions, so ``import rnnfast``
needs none of them.

- :func:`from_torch` / :func:`to_torch`: ``torch.nn.RNN``, ``LSTM``, ``GRU`` <-> :class:`rnnfast.RNN`,
  :class:`rnnfast.LSTM`, :class:`rnnfast.GRU` (the same parameter names, shapes and gate order).
- :func:`from_onnx`: the ``RNN``, ``LSTM`` and ``GRU`` nodes of an ONNX graph, and ONNX Runtime's
  ``DynamicQuantizeLSTM`` (what its ``quantize_dynamic`` makes of an LSTM) as an int8 LSTM, its int8 weights
  and scales kept exactly.
- :func:`to_onnx`: an ONNX model of one node per layer (opset 14 or newer) that ONNX Runtime runs; an int8
  LSTM as ``DynamicQuantizeLSTM``. Other quantized layers (int8 GRU and RNN, bf16) have no operator that
  computes them and are refused.
- :func:`from_keras`: Keras 3 ``SimpleRNN``, ``LSTM``, ``GRU`` (``reset_after=True``), ``RNN`` around one
  of their cells, and ``Bidirectional`` around any of them (``merge_mode='concat'``).

Gate orders and bias layouts (docs/design.md, section 3.2), G the gate count, H the hidden size, D the number of
directions:

======== ================ ============== =================================================
source   LSTM gates        GRU gates      weights and biases
======== ================ ============== =================================================
rnnfast  i, f, g, o        r, z, n        w_ih (G*H, I), w_hh (G*H, H), b_ih, b_hh (G*H,)
ONNX     i, o, f, c        z, r, h        W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb]
Keras 3  i, f, c, o        z, r, h        kernel (I, G*H), recurrent_kernel (H, G*H), bias
======== ================ ============== =================================================

The returned models follow rnnfast's conventions (docs/design.md, sections 1 and 3.2): ``out`` is (T, B, D*H) (or
(B, T, D*H) with ``batch_first``) with the directions concatenated, states are (L*D, B, H).
"""

from .keras3 import from_keras
from .onnx_graph import from_onnx, to_onnx
from .pytorch import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "from_onnx", "to_onnx", "from_keras"]
