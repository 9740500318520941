"""Argument checking shared by the native functional ops and :mod:`rnnfast.reference`.

Both implementations accept exactly the same arguments and refuse exactly the same bad input, so the
checks live here once. Each ``prepare_*`` function turns array-likes into C-contiguous arrays of one
floating dtype (float32 or float64), checks every shape against the others, and raises ``TypeError``
(wrong kind of data) or ``ValueError`` (wrong rank or size) naming the argument and the shapes involved.

Conventions (PyTorch's, see docs/design.md, sections 1 and 3.3), for one layer and one direction:

- ``x``: (T, B, I) input sequence, time-major.
- ``h0``, ``c0``: (B, H) initial states; ``None`` means zeros.
- ``w_ih``: (G*H, I), ``w_hh``: (G*H, H), ``b_ih``, ``b_hh``: (G*H,) or ``None`` (no bias), where G is the
  number of gates: 1 for the vanilla RNN, 4 for the LSTM (i, f, g, o), 3 for the GRU (r, z, n).
- ``out``: (T, B, H) output sequence, ``h_n``/``c_n``: (B, H) final states.
- ``workspace``: (T, B, W) what training mode saves for backward; W from :func:`workspace_width`.
"""

from __future__ import annotations

import numbers
import operator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ._cells import CELL_NAMES, RNN_NONLINEARITIES, cell_facts, rnn_cell

_KNOWN_CELLS = frozenset(CELL_NAMES)


def gate_count(cell: str) -> int:
    """Number of gates G of ``cell``: weights have G*H rows."""
    return cell_facts(check_cell(cell)).gates


def workspace_width(cell: str, hidden_size: int) -> int:
    """Width W of the training workspace (T, B, W) that ``cell``'s forward saves for its backward."""
    return cell_facts(check_cell(cell)).workspace_width(hidden_size)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1; TypeError for a non-integer (bools included), ValueError below 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r} of type {type(value).__name__}")
    value = operator.index(value)
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def float_dtype(dtype: Any) -> np.dtype:
    """A dtype argument as float32 or float64; TypeError if it names no dtype, ValueError for another."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dt}")
    return dt


def check_cell(cell: str) -> str:
    """``cell`` itself if it names a cell, else a ValueError listing the names."""
    if cell not in _KNOWN_CELLS:
        raise ValueError(f"cell must be one of {CELL_NAMES}, got {cell!r}")
    return cell


def rnn_cell_name(nonlinearity: str) -> str:
    """'tanh' -> 'rnn_tanh', 'relu' -> 'rnn_relu'; anything else is a ValueError."""
    if nonlinearity not in RNN_NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return rnn_cell(nonlinearity).name


def as_array(name: str, value: Any) -> np.ndarray:
    """``value`` as an ndarray of real numbers (any such dtype); TypeError naming ``name`` otherwise."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {arr.dtype}, which cannot be cast to float32 or float64 "
            "(only real numbers are supported)"
        )
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {arr.dtype}; rnnfast computes in float32 or float64 only")
    return arr


def result_dtype(arrays: list[np.ndarray]) -> np.dtype:
    """The dtype a computation over ``arrays`` runs in, by NumPy's promotion rules.

    ``np.result_type`` of the arrays decides, as for any NumPy expression over them: a float64 result
    (float64 among the inputs, or float32 mixed with int32/int64, as NumPy promotes) runs in float64; a
    float32 or float16 result runs in float32 (float16 is not computed natively); an integer or boolean
    result runs in float64, as NumPy's own float results of integer input do.
    """
    dt = np.result_type(*arrays)
    if dt.kind == "f":
        return np.dtype(np.float64) if dt.itemsize >= 8 else np.dtype(np.float32)
    return np.dtype(np.float64)


def cast(name: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` as a C-contiguous aligned array of ``dtype`` (a TypeError unless NumPy's 'same_kind' rule allows)."""
    if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
        raise TypeError(f"{name} has dtype {arr.dtype}, which cannot be cast to {dtype} by the 'same_kind' rule")
    return c_aligned(np.ascontiguousarray(arr, dtype=dtype))


def c_aligned(arr: np.ndarray) -> np.ndarray:
    """``arr`` if the kernels can read it in place, else an aligned copy (a byte-offset view of a buffer
    is C-contiguous but misaligned, and the binding refuses misaligned arrays)."""
    return arr if arr.flags.aligned else arr.copy()


def check_shape(name: str, arr: np.ndarray, expected: tuple[int, ...], meaning: str) -> None:
    """A ValueError naming ``name``, both shapes and what ``expected`` means, unless ``arr`` has that shape."""
    if arr.shape != tuple(expected):
        raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(expected)} {meaning}")


@dataclass
class ForwardArgs:
    """Checked forward arguments: C-contiguous arrays of ``dtype``; optional ones may be None."""

    cell: str
    dtype: np.dtype
    T: int
    B: int
    I: int
    H: int
    G: int
    x: np.ndarray
    h0: Optional[np.ndarray]
    c0: Optional[np.ndarray]
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray]
    b_hh: Optional[np.ndarray]


def given_arrays(named: dict, promote_with: tuple = ()) -> tuple:
    """``(arrays, dtype)``: the entries of ``named`` that are not None as ndarrays (:func:`as_array`), and the
    dtype the computation over them and ``promote_with`` runs in (:func:`result_dtype`). x, w_ih and w_hh
    are required: TypeError when None."""
    for required in ("x", "w_ih", "w_hh"):
        if named[required] is None:
            raise TypeError(f"{required} is required, got None")
    arrays = {k: as_array(k, v) for k, v in named.items() if v is not None}
    return arrays, result_dtype(list(arrays.values()) + list(promote_with))


def prepare_forward(cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, promote_with: tuple = ()) -> ForwardArgs:
    """Check and convert the arguments of a forward op (``c0`` must be None unless ``cell`` is 'lstm').

    ``promote_with``: further arrays whose dtypes take part in choosing the computation's dtype.
    """
    facts = cell_facts(check_cell(cell))
    title = facts.layer_class
    G = facts.gates
    named = {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh}
    if not facts.cell_state and c0 is not None:
        raise ValueError(f"c0 is only used by the LSTM, not by the {title}")
    if (b_ih is None) != (b_hh is None):
        raise ValueError("b_ih and b_hh must both be given or both be None (no bias)")
    arrays, dtype = given_arrays(named, promote_with)

    xa, wih, whh = arrays["x"], arrays["w_ih"], arrays["w_hh"]
    if xa.ndim != 3:
        raise ValueError(f"x must be 3-D (seq_len, batch, input_size), got shape {xa.shape}")
    T, B, I = xa.shape
    if whh.ndim != 2:
        raise ValueError(f"w_hh must be 2-D ({G}*hidden_size, hidden_size), got shape {whh.shape}")
    H = whh.shape[1]
    if whh.shape[0] != G * H:
        raise ValueError(
            f"w_hh has shape {whh.shape}, expected ({G}*hidden_size, hidden_size) = ({G * H}, {H}) for the "
            f"{title} (hidden_size {H} taken from w_hh.shape[1])"
        )
    if H == 0:
        raise ValueError(f"hidden_size must be at least 1, got w_hh of shape {whh.shape}")
    check_shape("w_ih", wih, (G * H, I), f"= ({G}*hidden_size, input_size) with input_size {I} from x {xa.shape}")
    for b in ("b_ih", "b_hh"):
        if b in arrays:
            check_shape(b, arrays[b], (G * H,), f"= ({G}*hidden_size,) for hidden_size {H}")
    for s in ("h0", "c0"):
        if s in arrays:
            check_shape(s, arrays[s], (B, H), f"= (batch, hidden_size) for x {xa.shape} and hidden_size {H}")

    conv = {k: cast(k, v, dtype) for k, v in arrays.items()}
    return ForwardArgs(
        cell=cell, dtype=dtype, T=T, B=B, I=I, H=H, G=G,
        x=conv["x"], h0=conv.get("h0"), c0=conv.get("c0"), w_ih=conv["w_ih"], w_hh=conv["w_hh"],
        b_ih=conv.get("b_ih"), b_hh=conv.get("b_hh"),
    )


def output_buffer(out: Any, shape: tuple[int, ...], dtype: np.dtype, inputs: list) -> tuple[np.ndarray, bool]:
    """Where the kernel writes the output sequence.

    Returns ``(buffer, copy_back)``: the caller's ``out`` itself when the kernel can write it directly
    (C-contiguous, the computation's dtype, no overlap with any input), otherwise a fresh array whose
    result the caller copies into ``out`` afterwards (``copy_back`` True).
    """
    if out is None:
        return np.empty(shape, dtype=dtype), False
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    check_shape("out", out, shape, "= (seq_len, batch, hidden_size)")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if not np.can_cast(dtype, out.dtype, casting="same_kind"):
        raise TypeError(f"out has dtype {out.dtype}, which cannot hold a {dtype} result by the 'same_kind' rule")
    direct = (
        out.dtype == dtype
        and out.flags.c_contiguous
        and out.flags.aligned
        and not any(a is not None and np.may_share_memory(out, a) for a in inputs)
    )
    if direct:
        return out, False
    return np.empty(shape, dtype=dtype), True


def prepare_lengths(lengths: Any, seq_len: int, batch: int) -> Optional[np.ndarray]:
    """Check per-sequence ``lengths`` against x's (seq_len, batch): an int64 (batch,) array or None.

    Lengths must be integers (booleans and floats are refused, even whole-valued ones) in [0, seq_len].
    """
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"lengths has shape {arr.shape}, expected (batch,) = ({batch},) for the batch of x")
    if batch and (arr.min() < 0 or arr.max() > seq_len):
        raise ValueError(
            f"lengths must lie in [0, seq_len] = [0, {seq_len}], got values from {arr.min()} to {arr.max()}"
        )
    # Aligned too: a buffer from elsewhere (a deserialised chunk, a slice of bytes) can be contiguous at an odd
    # address, which the kernels refuse.
    return c_aligned(np.ascontiguousarray(arr, dtype=np.int64))


@dataclass
class BackwardArgs:
    """Checked backward arguments; ``d_out``, ``d_h_n``, ``d_c_n``, ``h0``, ``c0`` may be None (zeros)."""

    fwd: ForwardArgs
    out: np.ndarray
    workspace: np.ndarray
    d_out: Optional[np.ndarray]
    d_h_n: Optional[np.ndarray]
    d_c_n: Optional[np.ndarray]


def prepare_backward(cell, d_out, d_h_n, d_c_n, x, h0, c0, w_ih, w_hh, out, workspace) -> BackwardArgs:
    """Check and convert the arguments of a backward op.

    ``out`` and ``workspace`` must be what the forward op returned with ``training=True`` for the same
    ``x``, ``h0``, ``c0`` and weights; their dtype must be the computation's dtype.
    """
    # The forward's dtype may have been set by its biases, which backward does not see: the saved
    # arrays carry it, so they take part in the promotion.
    for required, value in (("out", out), ("workspace", workspace)):
        if value is None:
            raise TypeError(f"{required} is required (from the forward op with training=True), got None")
    out_arr, ws_arr = as_array("out", out), as_array("workspace", workspace)
    fwd = prepare_forward(cell, x, h0, c0, w_ih, w_hh, None, None, promote_with=(out_arr, ws_arr))
    if not cell_facts(cell).cell_state and d_c_n is not None:
        raise ValueError(f"d_c_n is only used by the LSTM, not by the {cell_facts(cell).layer_class}")
    T, B, H = fwd.T, fwd.B, fwd.H
    W = workspace_width(cell, H)
    saved = {}
    for name, arr, shape, meaning in (
        ("out", out_arr, (T, B, H), "= (seq_len, batch, hidden_size), the forward output"),
        ("workspace", ws_arr, (T, B, W), f"= (seq_len, batch, {W}) as saved by the forward with training=True"),
    ):
        check_shape(name, arr, shape, meaning)
        if arr.dtype != fwd.dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but the computation runs in {fwd.dtype}: pass the arrays the "
                "forward op returned with training=True"
            )
        saved[name] = c_aligned(np.ascontiguousarray(arr))
    grads = {}
    for name, value, shape in (("d_out", d_out, (T, B, H)), ("d_h_n", d_h_n, (B, H)), ("d_c_n", d_c_n, (B, H))):
        if value is None:
            grads[name] = None
            continue
        arr = as_array(name, value)
        check_shape(name, arr, shape, "(the shape of the matching forward result)")
        grads[name] = cast(name, arr, fwd.dtype)
    return BackwardArgs(fwd=fwd, out=saved["out"], workspace=saved["workspace"], **grads)
