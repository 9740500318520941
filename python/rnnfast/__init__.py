"""rnnfast: fast recurrent networks on the CPU.

Layers (:class:`RNN`, :class:`LSTM`, :class:`GRU`) with PyTorch's conventions for shapes, weights and
gates; single-layer functional ops (:func:`rnn`, :func:`lstm`, :func:`gru` and their ``*_backward``);
and :mod:`rnnfast.reference`, the same ops in plain NumPy, which define what the kernels compute.
"""

__version__ = "0.1.0"

from . import _core, functional, reference
from ._types import GRUGrads, LSTMGrads, RNNGrads
from .functional import gru, gru_backward, lstm, lstm_backward, rnn, rnn_backward
from .layers import GRU, LSTM, RNN
from .stepper import Stepper
from .io import load, save
from .interop import from_keras, from_onnx, from_torch, to_onnx, to_torch
from . import nn

__all__ = [
    "RNN", "LSTM", "GRU", "Stepper", "save", "load",
    "rnn", "lstm", "gru", "rnn_backward", "lstm_backward", "gru_backward",
    "RNNGrads", "LSTMGrads", "GRUGrads",
    "functional", "reference", "nn", "isa", "get_num_threads", "__version__",
    "from_torch", "to_torch", "from_onnx", "to_onnx", "from_keras",
]


def isa() -> str:
    """The instruction set the native kernels run on: ``'avx512'``, ``'avx2'`` or ``'generic'`` (portable
    128-bit vectors: SSE2 on x86-64, NEON on aarch64). The widest the CPU has is chosen at import; the
    environment variable ``RNNFAST_ISA`` forces another."""
    return _core.isa()


def get_num_threads() -> int:
    """Threads the native kernels use. This version runs every kernel on the calling thread."""
    return 1
