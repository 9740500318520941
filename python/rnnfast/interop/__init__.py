"""Bring recurrent models in from PyTorch, ONNX and Keras, and send them out to PyTorch and ONNX.

Every converter is exact or refuses: a model that rnnfast cannot compute with the same numbers (up to
floating-point round-off) raises an error naming the attribute or option that does not map, never a
silent approximation. (Int8 LSTMs keep their weights and scales exactly; their activations are quantized
at run time by each runtime its own way, so outputs agree within the quantization error.) The frameworks are imported only inside these functions, so ``import rnnfast``
needs none of them.

- :func:`from_torch` / :func:`to_torch`: ``torch.nn.RNN``, ``LSTM`` (with ``proj_size``), ``GRU`` <->
  :class:`rnnfast.RNN`, :class:`rnnfast.LSTM`, :class:`rnnfast.GRU` (the same parameter names, shapes and gate
  order); the cell variants PyTorch lacks are refused by to_torch. Whole models: ``torch.nn.Sequential`` <->
  :class:`rnnfast.nn.Sequential` with the same state-dict keys, and ``Linear``, ``Embedding``, ``Dropout`` and
  the activations <-> their :mod:`rnnfast.nn` namesakes (``LastStep`` has no torch module).
- :func:`from_onnx`: the ``RNN``, ``LSTM`` and ``GRU`` nodes of an ONNX graph, with every variant ONNX
  defines (``linear_before_reset``, ``direction='reverse'``, ``clip``, ``input_forget``, peepholes,
  ``activations`` with their alpha and beta), and ONNX Runtime's
  ``DynamicQuantizeLSTM`` (what its ``quantize_dynamic`` makes of an LSTM) as an int8 LSTM, its int8 weights
  and scales kept exactly.
- :func:`to_onnx`: an ONNX model of one node per layer (opset 14 or newer) that ONNX Runtime runs with ``x``
  alone (the initial states are inputs only with ``initial_state=True``), with the
  variants ONNX expresses (``proj_size`` and the activations selu, exponential, silu, relu6 refused); an int8
  LSTM as ``DynamicQuantizeLSTM``. Other quantized layers (int8 GRU and RNN, bf16) have no operator that
  computes them and are refused. A whole :class:`rnnfast.nn.Sequential` is one graph (Embedding as
  ``Gather``, Linear as ``Gemm``/``MatMul``, LastStep, the activations; Dropout as nothing).
- :func:`from_keras`: Keras 3 ``SimpleRNN``, ``LSTM``, ``GRU`` (``reset_after`` True or False), ``RNN``
  around one of their cells, with their ``activation``/``recurrent_activation`` and ``go_backwards``
  (``direction='reverse'``), and ``Bidirectional`` around any of them (``merge_mode='concat'``); whole
  models, a ``keras.Sequential`` or a Functional chain of those layers with ``InputLayer``, ``Embedding``,
  ``Dense`` (and its activation), ``Dropout`` and activation layers, as an :class:`rnnfast.nn.Sequential`.

Gate orders and bias layouts (docs/design.md, section 3.2), G the gate count, H the hidden size, D the number of
directions:

======== ================ ============== =================================================
source   LSTM gates        GRU gates      weights and biases
======== ================ ============== =================================================
rnnfast  i, f, g, o        r, z, n        w_ih (G*H, I), w_hh (G*H, R), b_ih, b_hh (G*H,), w_ch (3H,) i,f,o
ONNX     i, o, f, c        z, r, h        W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb], P (D, 3H) i,o,f
Keras 3  i, f, c, o        z, r, h        kernel (I, G*H), recurrent_kernel (H, G*H), bias
======== ================ ============== =================================================

The returned models follow rnnfast's conventions (docs/design.md, sections 1 and 3.2): ``out`` is (T, B, D*R) (or
(B, T, D*R) with ``batch_first``) with the directions concatenated, states are (L*D, B, R) (c: (L*D, B, H)), R the
LSTM's proj_size or H.
"""

from .keras3 import from_keras
from .onnx_export import to_onnx
from .onnx_graph import from_onnx
from .pytorch import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "from_onnx", "to_onnx", "from_keras"]
