"""rnnfast: fast recurrent networks on the CPU.

Layers (:class:`RNN`, :class:`LSTM`, :class:`GRU`) with PyTorch's conventions for shapes, weights and
gates; single-layer functional ops (:func:`rnn`, :func:`lstm`, :func:`gru` and their ``*_backward``);
:func:`quantize`, which makes an int8 or bf16 copy of a layer for inference; :mod:`rnnfast.nn`, modules and
the model container :class:`~rnnfast.nn.Sequential` for training whole models; :func:`save` and :func:`load`
for layers, modules and models; and :mod:`rnnfast.reference`, the same ops in plain NumPy, which define what
the kernels compute.
"""

__version__ = "0.1.0"

import os as _os
from typing import Optional

import numpy as np

from . import _core, functional, reference
from ._cells import MAX_THREADS
from ._reference_reduced import REDUCED_WEIGHT_DTYPES
from ._types import GRUGrads, LSTMGrads, RNNGrads
from ._variants import Activation
from .functional import gru, gru_backward, lstm, lstm_backward, rnn, rnn_backward
from .layers import GRU, LSTM, RNN
from .stepper import Stepper
from .quantization import quantize
from .io import Model, load, save
from .interop import from_keras, from_onnx, from_torch, to_onnx, to_torch
from . import nn
from ._thread_env import threads_from_environment as _threads_from_environment

# The environment's thread count (RNNFAST_NUM_THREADS, else OMP_NUM_THREADS), honoured once, at import.
_threads = _threads_from_environment(_os.environ, MAX_THREADS)
if _threads is not None:
    _core.set_num_threads(_threads)
del _threads

__all__ = [
    "RNN", "LSTM", "GRU", "Activation", "Stepper", "save", "load", "Model", "quantize",
    "rnn", "lstm", "gru", "rnn_backward", "lstm_backward", "gru_backward",
    "RNNGrads", "LSTMGrads", "GRUGrads",
    "functional", "reference", "nn", "isa", "get_num_threads", "set_num_threads", "__version__",
    "from_torch", "to_torch", "from_onnx", "to_onnx", "from_keras",
]


def isa(weight_dtype: Optional[str] = None) -> str:
    """The instruction set the native kernels run on: ``'avx512'``, ``'avx2'`` or ``'generic'`` (portable
    128-bit vectors: SSE2 on x86-64, NEON on aarch64). The widest the CPU has is chosen at import; the
    environment variable ``RNNFAST_ISA`` forces another.

    With ``weight_dtype`` 'int8' or 'bf16': the code path of the reduced-precision products within that
    instruction set, e.g. ``'avx512_vnni'``, ``'avx512_bf16'``, ``'avx512'``, ``'avx2'``, ``'generic'``,
    ``'neon_dotprod'`` or ``'neon'``: the CPU's extensions (AVX512_VNNI, AVX512_BF16, the aarch64 dot
    product) are used where it has them, unless the environment variable ``RNNFAST_REDUCED_EXTENSIONS=0``
    (read at import) turns them off. 'float32' and 'float64' (and None) give :func:`isa` itself.
    """
    if weight_dtype is None or weight_dtype in ("float32", "float64"):
        return _core.isa()
    if weight_dtype not in REDUCED_WEIGHT_DTYPES:
        raise (ValueError if isinstance(weight_dtype, str) else TypeError)(
            f"weight_dtype must be None, 'float32', 'float64', 'int8' or 'bf16', got {weight_dtype!r}")
    return _core.reduced_isa(weight_dtype)


def get_num_threads() -> int:
    """Threads the native kernels use, the calling thread included. Set at import from the environment
    variable ``RNNFAST_NUM_THREADS``, else ``OMP_NUM_THREADS`` (its first entry), which engines such as Dask and
    Ray set for each worker; without either, the CPUs this process may run on (its affinity mask).
    :func:`set_num_threads` changes it afterwards."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the threads the native kernels use (an int >= 1). Results are identical for every thread
    count: work is divided by the shape alone, and each output element is computed by one thread in
    the same order. Safe to call while other threads run kernels (they finish on the old setting)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"the number of threads must be between 1 and {MAX_THREADS}, got {n}")
    _core.set_num_threads(int(n))
