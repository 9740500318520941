"""Type stub for the native module rnnfast._core (src/module.cpp registers it; src/testing.cpp the testing submodule).

The functions require exact dtypes (float32 or float64, the same for every array), exact shapes and
C-contiguous aligned arrays; they write into the output arrays they are given. Use rnnfast.functional.
"""

from typing import Optional

import numpy as np

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
def cell_facts() -> list[dict]: ...

MAX_THREADS: int
def isa() -> str: ...

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

testing: _Testing

class Stepper:
    def __init__(self, cell: str, hidden_size: int, batch: int, layers: list[tuple]) -> None: ...
    def run(self, x: np.ndarray, out: np.ndarray) -> None: ...
    def step(self, x: object, out: Optional[np.ndarray], unbatched: bool) -> Optional[np.ndarray]: ...
    def reset(self, h0: Optional[np.ndarray], c0: Optional[np.ndarray]) -> None: ...
    def get_state(self, h: np.ndarray, c: Optional[np.ndarray]) -> None: ...
