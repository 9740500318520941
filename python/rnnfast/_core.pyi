"""Type stub for the native module rnnfast._core (src/module.cpp registers it; src/testing.cpp the testing submodule).

The functions require exact dtypes (float32 or float64, the same for every array), exact shapes and
C-contiguous aligned arrays; they write into the output arrays they are given. Use rnnfast.functional.
"""

from typing import Any, Optional

import numpy as np

def dense_forward(x: np.ndarray, weight: np.ndarray) -> np.ndarray: ...

def forward(
    cell: str,
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    out: np.ndarray,
    h_n: np.ndarray,
    c_n: Optional[np.ndarray],
    workspace: Optional[np.ndarray],
    lengths: Optional[np.ndarray] = None,
) -> None: ...
def backward(
    cell: str,
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    out: np.ndarray,
    workspace: np.ndarray,
    d_out: Optional[np.ndarray],
    d_h_n: Optional[np.ndarray],
    d_c_n: Optional[np.ndarray],
    d_x: np.ndarray,
    d_h0: np.ndarray,
    d_c0: Optional[np.ndarray],
    d_w_ih: np.ndarray,
    d_w_hh: np.ndarray,
    d_b_ih: np.ndarray,
    d_b_hh: np.ndarray,
    lengths: Optional[np.ndarray] = None,
) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def workspace_width(cell: str, hidden_size: int) -> int: ...
def cell_facts() -> list[dict[str, Any]]: ...

MAX_THREADS: int
def isa() -> str: ...

# Reduced precision (int8 and bf16 weights, inference only; the contract is rnnfast.reference.reduced_forward).

class ReducedWeights:
    """One weight matrix of ``cell`` packed for the reduced-precision kernels, once (the layout does not depend
    on the instruction set). ``weights``: int8 (G*H, K) for "int8" with ``scales`` float32 (G*H,), or bfloat16
    bits uint16 (G*H, K) for "bf16" with ``scales`` None; C-contiguous. Immutable; not picklable (rebuild it
    from the arrays)."""

    def __init__(self, cell: str, weight_dtype: str, weights: np.ndarray, scales: Optional[np.ndarray]) -> None: ...
    @property
    def cell(self) -> str: ...
    @property
    def weight_dtype(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def hidden(self) -> int: ...

def reduced_forward(
    cell: str,
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: ReducedWeights,
    w_hh: ReducedWeights,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    lengths: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """One layer, one direction: x float32 (S, B, I) C-contiguous; h0, c0 float32 (B, H) or None; b_ih, b_hh
    float32 (G*H,) or None; lengths int64 (B,) sorted non-increasing, or None. Returns (out (S, B, H),
    h_n (B, H), c_n (B, H) for the LSTM, else None). Releases the GIL."""
    ...
def reduced_isa(weight_dtype: str) -> str: ...

class _Testing:
    """rnnfast._core.testing: internal hooks for rnnfast's tests and benchmarks; not rnnfast's API."""

    @staticmethod
    def gemm(a: np.ndarray, b: np.ndarray, a_transposed: bool = False, b_transposed: bool = False) -> np.ndarray: ...
    @staticmethod
    def activation(name: str, x: np.ndarray) -> np.ndarray: ...
    @staticmethod
    def available_isas() -> list[str]: ...
    @staticmethod
    def set_isa(name: str) -> None: ...
    @staticmethod
    def set_split(name: str) -> None: ...
    @staticmethod
    def get_split() -> str: ...
    @staticmethod
    def set_projection(name: str) -> None: ...
    @staticmethod
    def get_projection() -> str: ...
    @staticmethod
    def reduced_quantize_rows(
        weight_dtype: str, a: np.ndarray
    ) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """The kernels' own activation quantization of the rows of float32 ``a`` (M, K): (uint8 (M, K), float32
        scales (M,), int32 zero points (M,)) for "int8", (uint16 bfloat16 bits (M, K), None, None) for "bf16"."""
        ...
    @staticmethod
    def reduced_product(a: np.ndarray, w: ReducedWeights) -> np.ndarray:
        """The product of float32 activation rows ``a`` (M, K) with ``w``: the exact int32 sums of (q - zero point) x
        weight (M, N) after the kernels' own quantization of ``a`` ("int8"), or the float32 product chain (M, N)
        ("bf16")."""
        ...
    @staticmethod
    def set_reduced_extensions(enabled: bool) -> None:
        """False makes the AVX-512 tier use its plain AVX-512 code (no VNNI, no BF16 instructions)."""
        ...
    @staticmethod
    def get_reduced_extensions() -> bool: ...

testing: _Testing

class Stepper:
    """``layers``: per layer (w_ih, w_hh, b_ih, b_hh), the weights float arrays, or ReducedWeights (then the
    biases float32 or None and the data float32)."""

    def __init__(self, cell: str, hidden_size: int, batch: int, layers: list[tuple[Any, ...]]) -> None: ...
    def run(self, x: np.ndarray, out: np.ndarray) -> None: ...
    def step(self, x: object, out: Optional[np.ndarray], unbatched: bool) -> Optional[np.ndarray]: ...
    def reset(self, h0: Optional[np.ndarray], c0: Optional[np.ndarray]) -> None: ...
    def get_state(self, h: np.ndarray, c: Optional[np.ndarray]) -> None: ...

# Cell variants (src/variant_binding.cpp; the contract is rnnfast.reference.variant_forward).

#: One gate role's activation as the kernels take it: (kind index, alpha, beta).
ActivationTuple = tuple[int, float, float]

def variant_forward(
    cell: str,
    activations: list[ActivationTuple],
    clip: float,
    input_forget: bool,
    reset_after: bool,
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    w_hr: Optional[np.ndarray],
    w_ch: Optional[np.ndarray],
    out: np.ndarray,
    h_n: np.ndarray,
    c_n: Optional[np.ndarray],
    workspace: Optional[np.ndarray],
    lengths: Optional[np.ndarray] = None,
) -> None: ...
def variant_backward(
    cell: str,
    activations: list[ActivationTuple],
    clip: float,
    input_forget: bool,
    reset_after: bool,
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    w_hr: Optional[np.ndarray],
    w_ch: Optional[np.ndarray],
    out: np.ndarray,
    workspace: np.ndarray,
    d_out: Optional[np.ndarray],
    d_h_n: Optional[np.ndarray],
    d_c_n: Optional[np.ndarray],
    d_x: np.ndarray,
    d_h0: np.ndarray,
    d_c0: Optional[np.ndarray],
    d_w_ih: np.ndarray,
    d_w_hh: np.ndarray,
    d_b_ih: np.ndarray,
    d_b_hh: np.ndarray,
    d_w_hr: Optional[np.ndarray],
    d_w_ch: Optional[np.ndarray],
    lengths: Optional[np.ndarray] = None,
) -> None: ...
def activation_names() -> list[str]: ...
def variant_workspace_slots(cell: str) -> int: ...

class VariantStepper:
    """Streaming inference over a stack of unidirectional cell-variant layers; ``layers``: per layer the
    ``(w_ih, w_hh, b_ih, b_hh, w_hr, w_ch)`` of ``rnnfast.functional.variant_forward`` (packed copies)."""

    def __init__(self, cell: str, activations: list[ActivationTuple], clip: float, input_forget: bool,
                 reset_after: bool, hidden_size: int, proj_size: int, batch: int,
                 layers: list[tuple[Optional[np.ndarray], ...]]) -> None: ...
    def run(self, x: np.ndarray, out: np.ndarray) -> None: ...
    def reset(self, h0: Optional[np.ndarray], c0: Optional[np.ndarray]) -> None: ...
    def get_state(self, h: np.ndarray, c: Optional[np.ndarray]) -> None: ...
