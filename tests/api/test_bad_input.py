"""Bad input, table-driven, over every public entry point: each case gives the right result or is refused.

Every row of the table names an entry point, the argument it exercises, what is wrong with it, a call, and
what must happen:

- ``expect=OK``: the call succeeds and ``check`` verifies the result (against :mod:`rnnfast.reference` on
  the clean arguments, or on the same arguments where a dtype conversion is the point);
- ``expect=<exception type(s)>``: the call raises it, and the message matches ``match`` (by default the
  argument's name as a whole word), so the user learns which argument is wrong.

Nothing may crash the process, hang, or allocate wildly: every row must finish within ``ROW_SECONDS``.

Adding an entry point is one line per row, e.g.::

    Row("Stepper.step", "x_t", "wrong size", lambda: stepper().step(np.zeros((1, 99))), ValueError),

Rows for a feature that is not there yet carry ``needs=<feature>`` (see ``FEATURES``) and are skipped until it
lands. ``test_every_argument_has_a_row`` holds the table to covering every argument of every public entry
point listed in ``ENTRY_POINTS``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union
from unittest import mock

import numpy as np
import pytest

import rnnfast
import rnnfast.layers as layers
from rnnfast import _core, cli, functional, reference

from helpers.cells import GATES

ROW_SECONDS = 10.0  # a refusal must be quick: never a wild allocation or a long loop


class _Ok:
    """Marker: the call must succeed (and pass the row's ``check``)."""

    def __repr__(self) -> str:
        return "OK"


OK = _Ok()

#: Features that may be missing from this build, and how to tell whether they are there.
FEATURES: dict[str, Callable[[], bool]] = {
    "set_num_threads": lambda: hasattr(rnnfast, "set_num_threads"),
    "stepper": lambda: hasattr(layers._RNNBase, "stepper"),
    "lengths": lambda: "lengths" in inspect.signature(functional.lstm).parameters,
}


@dataclass
class Row:
    """One case of the table (see the module docstring)."""

    entry: str
    arg: str
    what: str
    call: Callable[[], Any]
    expect: Union[_Ok, type, tuple]
    match: Optional[str] = None
    check: Optional[Callable[[Any], None]] = None
    needs: Optional[str] = None
    xfail: Optional[str] = None  # a known defect owned elsewhere: the reason (the row reports XPASS once fixed)

    @property
    def id(self) -> str:
        return f"{self.entry}[{self.arg}]-{self.what}".replace(" ", "_")


ROWS: list[Row] = []


def row(*args, **kw) -> None:
    ROWS.append(Row(*args, **kw))


# ---------------------------------------------------------------------------------------------------
# Arrays: clean problems and the ways an array argument can be wrong, or legal but awkward
# ---------------------------------------------------------------------------------------------------

T, B, I, H = 3, 2, 4, 5
HUGE = 2 ** 20  # a broadcast view of HUGE x HUGE x I would need terabytes once copied


def _rand(seed: int, *shape, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.8, 0.8, size=shape).astype(dtype)


def forward_args(cell: str, dtype=np.float64) -> dict:
    """Clean keyword arguments of the forward op of ``cell`` (every optional array given)."""
    G = GATES[cell]
    kw = {"x": _rand(1, T, B, I, dtype=dtype), "h0": _rand(2, B, H, dtype=dtype),
          "w_ih": _rand(3, G * H, I, dtype=dtype), "w_hh": _rand(4, G * H, H, dtype=dtype),
          "b_ih": _rand(5, G * H, dtype=dtype), "b_hh": _rand(6, G * H, dtype=dtype)}
    if cell == "lstm":
        kw["c0"] = _rand(7, B, H, dtype=dtype)
    if cell.startswith("rnn"):
        kw["nonlinearity"] = cell[4:]
    return kw


def backward_args(mod, cell: str, dtype=np.float64) -> dict:
    """Clean keyword arguments of the backward op of ``cell``, with ``out``/``workspace`` from ``mod``'s forward."""
    f = forward_args(cell, dtype)
    res = FORWARD[cell](mod)(**f, training=True)
    kw = {"d_out": _rand(8, T, B, H, dtype=dtype), "d_h_n": _rand(9, B, H, dtype=dtype), "x": f["x"], "h0": f["h0"],
          "w_ih": f["w_ih"], "w_hh": f["w_hh"], "out": res[0], "workspace": res[-1]}
    if cell == "lstm":
        kw.update(d_c_n=_rand(10, B, H, dtype=dtype), c0=f["c0"])
    if cell.startswith("rnn"):
        kw["nonlinearity"] = cell[4:]
    return kw


FORWARD = {"rnn_tanh": lambda m: m.rnn, "rnn_relu": lambda m: m.rnn, "lstm": lambda m: m.lstm, "gru": lambda m: m.gru}
BACKWARD = {"rnn_tanh": lambda m: m.rnn_backward, "rnn_relu": lambda m: m.rnn_backward,
            "lstm": lambda m: m.lstm_backward, "gru": lambda m: m.gru_backward}


def noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values as a view with a stride of two elements on the last axis."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype) if a.ndim else a.copy()
    if a.ndim == 0:
        return wide
    wide[..., ::2] = a
    return wide[..., ::2]


def negative_stride(a: np.ndarray) -> np.ndarray:
    """The same values as a view with negative strides on every axis."""
    flipped = a[(slice(None, None, -1),) * a.ndim].copy()
    return flipped[(slice(None, None, -1),) * a.ndim]


def read_only(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.flags.writeable = False
    return b


def misaligned(a: np.ndarray) -> np.ndarray:
    """The same values in a C-contiguous array whose data pointer is one byte off alignment."""
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    b = raw[1:].view(a.dtype).reshape(a.shape)
    b[...] = a
    assert not b.flags.aligned or a.nbytes == 0
    return b


def fortran(a: np.ndarray) -> np.ndarray:
    return np.asfortranarray(a)


def zero_stride(a: np.ndarray) -> np.ndarray:
    """A read-only broadcast view (stride 0 on the first axis) of ``a``'s first slice: values differ."""
    return np.broadcast_to(a[:1], a.shape) if a.ndim else a


LAYOUTS = {"non-contiguous": noncontiguous, "negative stride": negative_stride, "Fortran order": fortran,
           "read-only": read_only, "misaligned": misaligned, "zero stride": zero_stride}


def assert_close(got, want, what: str = "") -> None:
    """Native against reference: NaN where NumPy gives NaN, else equal to rounding of the result dtype."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    rtol, atol = (1e-4, 1e-5) if np.result_type(got, want) == np.float32 or got.dtype == np.float32 else (1e-9, 1e-11)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def assert_results_close(got, want) -> None:
    if isinstance(want, np.ndarray):
        assert_close(got, want)
        return
    assert len(got) == len(want), f"{len(got)} results, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        if w is None or g is None:
            assert g is None and w is None, f"result {k}: {g!r} vs {w!r}"
        elif isinstance(w, (tuple, list)):
            assert_results_close(g, w)
        else:
            assert_close(g, w, f"result {k}")


def same_as(expected_fn: Callable[[], Any]) -> Callable[[Any], None]:
    """A check that the result equals what ``expected_fn`` computes (evaluated when the row runs)."""
    def check(result):
        with np.errstate(all="ignore"):
            want = expected_fn()
        assert_results_close(result, want)
    return check


# ---------------------------------------------------------------------------------------------------
# Functional ops, native and reference: every argument
# ---------------------------------------------------------------------------------------------------

def _op_rows(modname: str, mod, cell: str, direction: str) -> None:
    op_name = {"rnn_tanh": "rnn", "rnn_relu": "rnn", "lstm": "lstm", "gru": "gru"}[cell]
    if direction == "backward":
        op_name += "_backward"
    entry = f"{modname}.{op_name}"
    if cell == "rnn_relu":  # one RNN suffices for the argument rows; relu appears in nonlinearity rows
        return
    fn = (BACKWARD if direction == "backward" else FORWARD)[cell](mod)

    def args(**changes) -> dict:
        kw = backward_args(mod, cell) if direction == "backward" else forward_args(cell)
        kw.update(changes)
        return kw

    def call(**changes):
        return lambda: fn(**args(**changes))

    def reference_on(**changes):
        """What the reference computes on the same arguments (the definition of the right result)."""
        def compute():
            kw = backward_args(reference, cell) if direction == "backward" else forward_args(cell)
            kw.update({k: (v() if callable(v) else v) for k, v in changes.items()})
            return BACKWARD[cell](reference)(**kw) if direction == "backward" else FORWARD[cell](reference)(**kw)
        return compute

    array_args = [a for a in args() if a != "nonlinearity"]
    saved = {"out", "workspace"} if direction == "backward" else set()
    required = {"x", "w_ih", "w_hh"} | saved
    for a in array_args:
        clean = args()[a]
        # Structure: wrong rank, wrong size.
        row(entry, a, "wrong rank", call(**{a: clean[None]}), ValueError)
        if a == "workspace" and clean.shape[-1] == 0:
            row(entry, a, "wrong size", call(**{a: np.zeros(clean.shape[:-1] + (1,))}), ValueError)
        else:
            bigger = np.concatenate([clean, clean[..., :1]], axis=-1)
            # x's size sets input_size, so the mismatch is reported on w_ih, naming x's shape too.
            row(entry, a, "wrong size", call(**{a: bigger}), ValueError, match=r"\bx\b|w_ih" if a == "x" else None)
        # Kinds of data that are not real numbers.
        row(entry, a, "complex", call(**{a: clean.astype(np.complex128)}), TypeError)
        row(entry, a, "object", call(**{a: clean.astype(object)}), TypeError)
        row(entry, a, "str", call(**{a: "abc"}), TypeError)
        row(entry, a, "ragged list", call(**{a: [[1.0, 2.0], [3.0]]}), TypeError)
        if a in required:
            row(entry, a, "None", call(**{a: None}), TypeError)
        elif a in ("b_ih", "b_hh"):
            row(entry, a, "None without the other bias", call(**{a: None}), ValueError, match="b_ih and b_hh")
        else:
            row(entry, a, "None means zeros or absent", call(**{a: None}), OK,
                check=same_as(reference_on(**{a: None})))
        # Real dtypes other than the computation's: converted by NumPy's rules (or refused for saved arrays).
        for name, conv in (("int", lambda v: np.round(4 * v).astype(np.int64)), ("bool", lambda v: v > 0),
                           ("float16", lambda v: v.astype(np.float16)), ("float32", lambda v: v.astype(np.float32))):
            value = conv(clean)
            if a in saved:
                if name != "float32":  # float32 `out` with float64 x: the computation dtype is float64, refused
                    row(entry, a, f"dtype {name}", call(**{a: value}), TypeError)
            elif a == "x" or a not in ("b_ih", "b_hh") or direction == "forward":
                row(entry, a, f"dtype {name}", call(**{a: value}), OK, check=same_as(reference_on(**{a: value})))
        # Legal layouts: the same values, so the same result as the clean arguments.
        for lname, layout in LAYOUTS.items():
            value = layout(clean)
            row(entry, a, lname, call(**{a: value}), OK, check=same_as(reference_on(**{a: value})))
        # NaN and Inf propagate as NumPy (the reference) propagates them.
        if a not in saved:
            for vname, v in (("NaN", np.nan), ("+Inf", np.inf), ("-Inf", -np.inf)):
                bad = clean.copy()
                bad.flat[bad.size // 2] = v
                row(entry, a, vname, call(**{a: bad}), OK, check=same_as(reference_on(**{a: bad})))
        # Sizes whose copy would need terabytes: refused quickly, nothing allocated.
        if clean.ndim >= 2 and a not in saved:
            huge = np.broadcast_to(np.float64(0.5), (HUGE, HUGE) + clean.shape[2:])
            row(entry, a, "huge broadcast", call(**{a: huge}), (MemoryError, ValueError), match=r".")

    if direction == "forward":
        T_, B_, H_ = T, B, H
        out_shape = (T_, B_, H_)
        row(entry, "out", "wrong shape", call(out=np.zeros((T_, B_, H_ + 1))), ValueError)
        row(entry, "out", "a list", call(out=[[0.0]]), TypeError)
        row(entry, "out", "read-only", call(out=read_only(np.zeros(out_shape))), ValueError)
        row(entry, "out", "dtype int", call(out=np.zeros(out_shape, dtype=np.int64)), TypeError)
        row(entry, "out", "dtype complex", call(out=np.zeros(out_shape, dtype=np.complex128)), OK,
            check=same_as(reference_on()))
        for lname, layout in (("non-contiguous", noncontiguous), ("misaligned", misaligned),
                              ("Fortran order", fortran), ("dtype float32", lambda a: a.astype(np.float32))):
            buf = layout(np.zeros(out_shape))

            def check_out(result, buf=buf):
                assert result[0] is buf, "the result must be the out array itself"
                same_as(reference_on())(result)
            row(entry, "out", lname, call(out=buf), OK, check=check_out)
        row(entry, "training", "True returns the workspace", call(training=True), OK,
            check=lambda r: assert_results_close(r, reference_on(training=True)()))
        row(entry, "training", "a truthy non-bool", call(training=1), OK,
            check=lambda r: assert_results_close(r, reference_on(training=True)()))
        # Empty sequences, batches and inputs: well-defined results, no crash.
        for ename, shape_x in (("empty T", (0, B, I)), ("empty B", (T, 0, I)), ("empty I", (T, B, 0))):
            def empty_changes(shape_x=shape_x):
                G = GATES[cell]
                ch = {"x": _rand(1, *shape_x), "w_ih": _rand(3, G * H, shape_x[2])}
                if shape_x[1] == 0:
                    ch["h0"] = np.zeros((0, H))
                    if cell == "lstm":
                        ch["c0"] = np.zeros((0, H))
                return ch
            row(entry, "x", ename, call(**empty_changes()), OK, check=same_as(reference_on(**empty_changes())))
        # Empty, so it exists; but out (T, B, H) would need 40 TB.
        row(entry, "x", "huge empty", call(x=np.zeros((HUGE, HUGE, 0)), w_ih=np.zeros((GATES[cell] * H, 0))),
            (MemoryError, ValueError), match=r".")
        row(entry, "w_hh", "hidden_size 0", call(w_ih=np.zeros((0, I)), w_hh=np.zeros((0, 0)), b_ih=None, b_hh=None,
                                                 h0=None, **({"c0": None} if cell == "lstm" else {})),
            ValueError, match="hidden_size")
    if cell != "lstm":
        if direction == "forward":
            row(entry, "c0", "not an argument", call(c0=np.zeros((B, H))), TypeError, match="c0")
        else:
            row(entry, "d_c_n", "not an argument", call(d_c_n=np.zeros((B, H))), TypeError, match="d_c_n")
    if cell.startswith("rnn"):
        row(entry, "nonlinearity", "unknown", call(nonlinearity="sigmoid"), ValueError)
        row(entry, "nonlinearity", "None", call(nonlinearity=None), ValueError)
        row(entry, "nonlinearity", "relu", call(nonlinearity="relu"), OK,
            check=same_as(reference_on(nonlinearity="relu")))
    if direction == "forward":
        row(entry, "b_ih", "only one bias", call(b_hh=None), ValueError, match="b_ih and b_hh")
    # Variable lengths.
    if direction == "backward":
        # backward with lengths needs the forward run with them
        def with_lengths(lengths):
            def compute(mod_=mod):
                f = forward_args(cell)
                res = FORWARD[cell](mod_)(**f, training=True, lengths=lengths)
                kw = backward_args(mod_, cell)
                kw.update(out=res[0], workspace=res[-1])
                return BACKWARD[cell](mod_)(**kw, lengths=lengths)
            return compute
        row(entry, "lengths", "unsorted valid", lambda: with_lengths([1, T])(mod), OK,
            check=same_as(lambda: with_lengths([1, T])(reference)), needs="lengths")
    else:
        row(entry, "lengths", "unsorted valid", call(lengths=[1, T]), OK,
            check=same_as(reference_on(lengths=[1, T])), needs="lengths")
        row(entry, "lengths", "non-contiguous int32", call(lengths=noncontiguous(np.array([T, 2], np.int32))), OK,
            check=same_as(reference_on(lengths=[T, 2])), needs="lengths")
        row(entry, "lengths", "zeros", call(lengths=[0, 0]), OK, check=same_as(reference_on(lengths=[0, 0])),
            needs="lengths")
    row(entry, "lengths", "float", call(lengths=[1.0, 2.0]), TypeError, needs="lengths")
    row(entry, "lengths", "bool", call(lengths=[True, True]), TypeError, needs="lengths")
    row(entry, "lengths", "complex", call(lengths=[1j, 2j]), TypeError, needs="lengths")
    row(entry, "lengths", "wrong size", call(lengths=[1, 2, 3]), ValueError, needs="lengths")
    row(entry, "lengths", "wrong rank", call(lengths=[[1, 2]]), ValueError, needs="lengths")
    row(entry, "lengths", "too long", call(lengths=[T + 1, 1]), ValueError, needs="lengths")
    row(entry, "lengths", "negative", call(lengths=[-1, 1]), ValueError, needs="lengths")
    row(entry, "lengths", "int64 overflow", call(lengths=[2 ** 62, 1]), ValueError, needs="lengths")


for _modname, _mod in (("rnnfast", functional), ("reference", reference)):
    for _cell in GATES:
        for _direction in ("forward", "backward"):
            _op_rows(_modname, _mod, _cell, _direction)

# Backward: the saved arrays must be the forward's, in its dtype.
def _float32_workspace():
    kw = backward_args(functional, "lstm")
    kw["workspace"] = kw["workspace"].astype(np.float32)
    return functional.lstm_backward(**kw)


row("rnnfast.lstm_backward", "workspace", "float32 for a float64 forward", _float32_workspace, TypeError)
row("rnnfast.gru_backward", "out", "shape of another batch",
    lambda: functional.gru_backward(**{**backward_args(functional, "gru"), "out": np.zeros((T, B + 1, H))}),
    ValueError)


# ---------------------------------------------------------------------------------------------------
# Layers: constructor, forward/__call__, backward, load_state_dict, stepper
# ---------------------------------------------------------------------------------------------------

LAYER_CLASSES = {"RNN": rnnfast.RNN, "LSTM": rnnfast.LSTM, "GRU": rnnfast.GRU}
LI, LH = 3, 4  # layer input and hidden sizes


def make(cls_name: str, **kw):
    kw.setdefault("seed", 0)
    kw.setdefault("dtype", "float64")
    return LAYER_CLASSES[cls_name](LI, LH, **kw)


@contextlib.contextmanager
def reference_ops():
    """Run layers on rnnfast.reference instead of the native ops."""
    with mock.patch.object(layers, "_ops", lambda: reference):
        yield


def layer_reference(cls_name: str, method: str, *args, make_kw=None, **kw):
    """What a layer computes on the reference ops (a fresh layer with the same seed, hence parameters)."""
    def compute():
        m = make(cls_name, **(make_kw or {}))
        with reference_ops():
            return getattr(m, method)(*args, **kw)
    return compute


def _state(cls_name, shape, seed=11):
    h = _rand(seed, *shape)
    return (h, _rand(seed + 1, *shape)) if cls_name == "LSTM" else h


for _cls in LAYER_CLASSES:
    ctor = f"{_cls}()"
    # Constructor arguments.
    for _arg in ("input_size", "hidden_size", "num_layers"):
        _pos = {"input_size": 0, "hidden_size": 1, "num_layers": 2}[_arg]

        def _ctor(value, _arg=_arg, _cls=_cls):
            kw = {"input_size": LI, "hidden_size": LH, "num_layers": 1, _arg: value}
            return lambda: LAYER_CLASSES[_cls](**kw)
        row(ctor, _arg, "zero", _ctor(0), ValueError)
        row(ctor, _arg, "negative", _ctor(-3), ValueError)
        row(ctor, _arg, "float", _ctor(3.0), TypeError)
        row(ctor, _arg, "bool", _ctor(True), TypeError)
        row(ctor, _arg, "str", _ctor("3"), TypeError)
        row(ctor, _arg, "None", _ctor(None), TypeError)
        row(ctor, _arg, "numpy int", _ctor(np.int64(2)), OK,
            check=lambda m, _arg=_arg: (getattr(m, _arg) == 2) or pytest.fail(f"{_arg} not 2"))
        row(ctor, _arg, "2**40 (overflowing sizes)", _ctor(2 ** 40), MemoryError, match=f"{_arg}={2 ** 40}")
        row(ctor, _arg, "2**62", _ctor(2 ** 62), MemoryError, match=r".")
    row(ctor, "dtype", "float16", lambda _c=_cls: make(_c, dtype="float16"), ValueError)
    row(ctor, "dtype", "int", lambda _c=_cls: make(_c, dtype=int), ValueError)
    row(ctor, "dtype", "complex", lambda _c=_cls: make(_c, dtype=np.complex64), ValueError)
    row(ctor, "dtype", "object", lambda _c=_cls: make(_c, dtype=object), ValueError)
    row(ctor, "dtype", "nonsense", lambda _c=_cls: make(_c, dtype="junk"), TypeError)
    row(ctor, "dtype", "np.float32", lambda _c=_cls: make(_c, dtype=np.float32), OK,
        check=lambda m: m.dtype == np.float32 or pytest.fail("dtype"))
    row(ctor, "dropout", "negative", lambda _c=_cls: make(_c, num_layers=2, dropout=-0.1), ValueError)
    row(ctor, "dropout", "one", lambda _c=_cls: make(_c, num_layers=2, dropout=1.0), ValueError)
    row(ctor, "dropout", "NaN", lambda _c=_cls: make(_c, num_layers=2, dropout=float("nan")), ValueError)
    row(ctor, "dropout", "str", lambda _c=_cls: make(_c, num_layers=2, dropout="0.5"), TypeError)
    row(ctor, "seed", "str", lambda _c=_cls: make(_c, seed="junk"), TypeError)
    row(ctor, "seed", "negative", lambda _c=_cls: make(_c, seed=-1), ValueError)
    row(ctor, "seed", "float", lambda _c=_cls: make(_c, seed=1.5), TypeError)
    for _flag in ("bias", "batch_first", "bidirectional"):
        row(ctor, _flag, "truthy non-bool", lambda _c=_cls, _f=_flag: make(_c, **{_f: 1}), OK,
            check=lambda m, _f=_flag: getattr(m, _f) is True or pytest.fail(_f))
    if _cls == "RNN":
        row(ctor, "nonlinearity", "unknown", lambda: make("RNN", nonlinearity="sigmoid"), ValueError)
        row(ctor, "nonlinearity", "None", lambda: make("RNN", nonlinearity=None), ValueError)

    # forward and __call__.
    x_clean = _rand(20, T, B, LI)
    for _meth in ("forward", "__call__"):
        entry = f"{_cls}.{_meth}"

        def lcall(*args, _c=_cls, _m=_meth, **kw):
            return lambda: getattr(make(_c), _m)(*args, **kw)

        def lref(*args, _c=_cls, _m=_meth, **kw):
            return same_as(layer_reference(_c, _m, *args, **kw))

        row(entry, "x", "4-D", lcall(x_clean[None]), ValueError)
        row(entry, "x", "1-D", lcall(x_clean[0, 0]), ValueError)
        row(entry, "x", "wrong input_size", lcall(_rand(20, T, B, LI + 1)), ValueError)
        row(entry, "x", "complex", lcall(x_clean.astype(np.complex64)), TypeError)
        row(entry, "x", "object", lcall(x_clean.astype(object)), TypeError)
        row(entry, "x", "None", lcall(None), TypeError)
        row(entry, "x", "str", lcall("abc"), TypeError)
        for _name, _conv in (("int", lambda v: np.round(4 * v).astype(np.int32)), ("bool", lambda v: v > 0),
                             ("float16", lambda v: v.astype(np.float16)), ("list", lambda v: v.tolist())):
            _v = _conv(x_clean)
            row(entry, "x", f"as {_name}", lcall(_v), OK, check=lref(_v))
        for _lname, _layout in LAYOUTS.items():
            _v = _layout(x_clean)
            row(entry, "x", _lname, lcall(_v), OK, check=lref(_v))
        for _vname, _val in (("NaN", np.nan), ("+Inf", np.inf), ("-Inf", -np.inf)):
            _v = x_clean.copy()
            _v[1, 0, 1] = _val
            row(entry, "x", _vname, lcall(_v), OK, check=lref(_v))
        for _ename, _shape in (("empty T", (0, B, LI)), ("empty B", (T, 0, LI)), ("unbatched", (T, LI)),
                               ("unbatched empty T", (0, LI))):
            _v = _rand(21, *_shape)
            row(entry, "x", _ename, lcall(_v), OK, check=lref(_v))
        row(entry, "x", "huge broadcast", lcall(np.broadcast_to(np.float32(1), (HUGE, HUGE, LI))),
            (MemoryError, ValueError), match=r".")
        # state
        _st = _state(_cls, (1, B, LH))
        row(entry, "state", "valid", lcall(x_clean, _st), OK, check=lref(x_clean, _st))
        row(entry, "state", "wrong batch", lcall(x_clean, _state(_cls, (1, B + 1, LH))), ValueError, match="h0")
        row(entry, "state", "wrong layers", lcall(x_clean, _state(_cls, (2, B, LH))), ValueError, match="h0")
        row(entry, "state", "2-D for batched x", lcall(x_clean, _state(_cls, (1, LH))), ValueError, match="h0")
        if _cls == "LSTM":
            row(entry, "state", "complex", lcall(x_clean, (_st[0].astype(complex), _st[1])), TypeError, match="h0")
        if _cls == "LSTM":
            row(entry, "state", "a single array", lcall(x_clean, _st[0]), TypeError, match="state")
            row(entry, "state", "three arrays", lcall(x_clean, (_st[0], _st[1], _st[1])), TypeError, match="state")
            row(entry, "state", "c0 wrong shape", lcall(x_clean, (_st[0], _st[1][:, :1])), ValueError, match="c0")
            row(entry, "state", "(None, c0)", lcall(x_clean, (None, _st[1])), OK, check=lref(x_clean, (None, _st[1])))
            row(entry, "state", "c0 NaN", lcall(x_clean, (_st[0], np.full_like(_st[1], np.nan))), OK,
                check=lref(x_clean, (_st[0], np.full_like(_st[1], np.nan))))
        else:
            row(entry, "state", "a tuple", lcall(x_clean, (_st, _st)), TypeError, match="state")
            row(entry, "state", "complex", lcall(x_clean, _st.astype(complex)), TypeError, match="h0")
            row(entry, "state", "misaligned", lcall(x_clean, misaligned(_st)), OK, check=lref(x_clean, _st))
            row(entry, "state", "negative stride", lcall(x_clean, negative_stride(_st)), OK, check=lref(x_clean, _st))
        # lengths
        row(entry, "lengths", "valid unsorted", lcall(x_clean, lengths=[1, T]), OK,
            check=lref(x_clean, lengths=[1, T]), needs="lengths")
        row(entry, "lengths", "too long", lcall(x_clean, lengths=[T + 1, 1]), ValueError, needs="lengths")
        row(entry, "lengths", "negative", lcall(x_clean, lengths=[-1, 1]), ValueError, needs="lengths")
        row(entry, "lengths", "wrong size", lcall(x_clean, lengths=[1]), ValueError, needs="lengths")
        row(entry, "lengths", "float", lcall(x_clean, lengths=[1.5, 1.0]), TypeError, needs="lengths")
        row(entry, "lengths", "str", lcall(x_clean, lengths="ab"), TypeError, needs="lengths")
        if _meth == "forward":
            row(entry, "training", "True", lcall(x_clean, training=True), OK,
                check=lref(x_clean, training=True))
            row(entry, "training", "truthy non-bool", lcall(x_clean, training=1), OK,
                check=lref(x_clean, training=True))

    # backward
    entry = f"{_cls}.backward"

    def trained(_c=_cls, **make_kw):
        m = make(_c, **make_kw)
        out, _ = m.forward(x_clean, training=True)
        return m, out

    def bcall(*args, _c=_cls, **kw):
        return lambda: trained(_c)[0].backward(*args, **kw)

    def bref(*args, _c=_cls, **kw):
        def compute():
            with reference_ops():
                m, _ = trained(_c)
                return m.backward(*args, **kw)
        return same_as(compute)

    _dout = _rand(30, T, B, LH)
    _dst = _state(_cls, (1, B, LH), seed=31)
    row(entry, "d_out", "wrong shape", bcall(_dout[:, :1]), ValueError)
    row(entry, "d_out", "complex", bcall(_dout.astype(complex)), TypeError)
    row(entry, "d_out", "None", bcall(None), OK, check=bref(None))
    row(entry, "d_out", "int", bcall(np.ones((T, B, LH), dtype=np.int64)), OK, check=bref(np.ones((T, B, LH))))
    row(entry, "d_out", "negative stride", bcall(negative_stride(_dout)), OK, check=bref(_dout))
    row(entry, "d_out", "NaN", bcall(np.full_like(_dout, np.nan)), OK, check=bref(np.full_like(_dout, np.nan)))
    row(entry, "d_state_n", "valid", bcall(_dout, _dst), OK, check=bref(_dout, _dst))
    row(entry, "d_state_n", "wrong shape", bcall(_dout, _state(_cls, (2, B, LH))), ValueError, match="d_[hc]_n")
    if _cls == "LSTM":
        row(entry, "d_state_n", "a single array", bcall(_dout, _dst[0]), TypeError, match="d_state_n")
        row(entry, "d_state_n", "d_c_n wrong shape", bcall(_dout, (_dst[0], _dst[1][:1, :1])), ValueError,
            match="d_c_n")
    else:
        row(entry, "d_state_n", "a tuple", bcall(_dout, (_dst, _dst)), TypeError, match="d_state_n")
    row(entry, "(call order)", "backward before forward", lambda _c=_cls: make(_c).backward(None), RuntimeError,
        match="forward")

    # load_state_dict
    entry = f"{_cls}.load_state_dict"

    def lsd(change: Callable[[dict], Any], _c=_cls):
        def run():
            m = make(_c)
            sd = m.state_dict()
            m.load_state_dict(change(sd))
            return m
        return run

    row(entry, "state_dict", "not a mapping", lsd(lambda sd: list(sd.items())), TypeError)
    row(entry, "state_dict", "None", lsd(lambda sd: None), TypeError)
    row(entry, "state_dict", "missing key", lsd(lambda sd: {k: v for k, v in sd.items() if k != "weight_hh_l0"}),
        ValueError, match="missing.*weight_hh_l0")
    row(entry, "state_dict", "extra key", lsd(lambda sd: {**sd, "weight_hh_l7": sd["weight_hh_l0"]}), ValueError,
        match="unexpected.*weight_hh_l7")
    row(entry, "state_dict", "non-str key", lsd(lambda sd: {**sd, 3: sd["weight_hh_l0"]}), ValueError,
        match="unexpected")
    row(entry, "state_dict", "mis-shaped value", lsd(lambda sd: {**sd, "weight_ih_l0": sd["weight_ih_l0"].T}),
        ValueError, match="weight_ih_l0.*shape")
    row(entry, "state_dict", "complex value", lsd(lambda sd: {**sd, "bias_hh_l0": sd["bias_hh_l0"] + 1j}), TypeError,
        match="bias_hh_l0")
    row(entry, "state_dict", "object value", lsd(lambda sd: {**sd, "bias_hh_l0": object()}), TypeError,
        match="bias_hh_l0")

    def _check_loaded(m, _c=_cls):
        sd = make(_c).state_dict()
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(v, negative_stride(sd[k]).astype(v.dtype), err_msg=k)
    row(entry, "state_dict", "lists and negative strides",
        lsd(lambda sd: {k: (v.tolist() if v.ndim == 1 else negative_stride(v)) for k, v in sd.items()}), OK,
        check=_check_loaded)

    def _check_nan(m):
        assert all(np.isnan(v).all() for v in m.state_dict().values())
    row(entry, "state_dict", "NaN values load", lsd(lambda sd: {k: np.full_like(v, np.nan) for k, v in sd.items()}),
        OK, check=_check_nan)

    def _unchanged_after_error(_c=_cls):
        m = make(_c)
        before = m.state_dict()
        bad = {**m.state_dict(), "weight_hh_l0": np.ones(3)}
        bad["weight_ih_l0"] = np.full_like(bad["weight_ih_l0"], 7.0)
        try:
            m.load_state_dict(bad)
        except ValueError:
            for k, v in m.state_dict().items():
                np.testing.assert_array_equal(v, before[k], err_msg=f"{k} changed by a refused load")
            raise
    row(entry, "state_dict", "refused load changes nothing", _unchanged_after_error, ValueError, match="weight_hh_l0")

    # stepper
    entry = f"{_cls}.stepper"
    row(entry, "batch", "zero", lambda _c=_cls: make(_c).stepper(batch=0), ValueError, match="batch", needs="stepper")
    row(entry, "batch", "negative", lambda _c=_cls: make(_c).stepper(batch=-2), ValueError, match="batch",
        needs="stepper")
    row(entry, "batch", "float", lambda _c=_cls: make(_c).stepper(batch=1.5), (TypeError, ValueError), match="batch",
        needs="stepper")
    row(entry, "batch", "huge", lambda _c=_cls: make(_c).stepper(batch=2 ** 62), (MemoryError, ValueError),
        match=r".", needs="stepper")
    row(entry, "(layer)", "bidirectional", lambda _c=_cls: make(_c, bidirectional=True).stepper(),
        ValueError, match="bidirectional", needs="stepper")

    # Stepper methods.
    def stepper(_c=_cls, batch=B):
        return make(_c).stepper(batch=batch)

    def steps_reference(xs, _c=_cls, state=None):
        """The layer's outputs on the whole sequence (reference ops): what stepping must reproduce."""
        def compute():
            with reference_ops():
                out, _ = make(_c)(xs, state)
            return out
        return compute

    entry = f"{_cls}.Stepper.step"
    _xt = x_clean[0]
    row(entry, "x_t", "wrong size", lambda _s=stepper: _s().step(np.zeros((B, LI + 1))), ValueError, match="x_t",
        needs="stepper")
    row(entry, "x_t", "wrong batch", lambda _s=stepper: _s().step(np.zeros((B + 1, LI))), ValueError, match="x_t",
        needs="stepper")
    row(entry, "x_t", "3-D", lambda _s=stepper: _s().step(x_clean), ValueError, match="x_t", needs="stepper")
    row(entry, "x_t", "complex", lambda _s=stepper: _s().step(_xt + 0j), TypeError, match="x_t", needs="stepper")
    row(entry, "x_t", "None", lambda _s=stepper: _s().step(None), TypeError, match="x_t", needs="stepper")
    for _lname, _layout in LAYOUTS.items():
        _v = _layout(_xt)
        row(entry, "x_t", _lname, lambda _s=stepper, _v=_v: _s().step(_v), OK,
            check=lambda r, _v=_v, _f=steps_reference: assert_close(r, _f(np.asarray(_v)[None])()[0]),
            needs="stepper")
    row(entry, "x_t", "int", lambda _s=stepper: _s().step(np.ones((B, LI), np.int64)), OK,
        check=lambda r, _f=steps_reference: assert_close(r, _f(np.ones((1, B, LI)))()[0]), needs="stepper")
    _nan = _xt.copy()
    _nan[0, 0] = np.nan
    row(entry, "x_t", "NaN", lambda _s=stepper, _v=_nan: _s().step(_v), OK,
        check=lambda r, _v=_nan, _f=steps_reference: assert_close(r, _f(_v[None])()[0]), needs="stepper")
    row(entry, "x_t", "unbatched", lambda _s=stepper: _s(batch=None).step(_xt[0]), OK,
        check=lambda r, _f=steps_reference: assert_close(r, _f(_xt[None, :1])()[0, 0]), needs="stepper")
    row(entry, "out", "wrong shape", lambda _s=stepper: _s().step(_xt, out=np.zeros((B, LH + 1))), ValueError,
        match="out", needs="stepper")
    row(entry, "out", "read-only", lambda _s=stepper: _s().step(_xt, out=read_only(np.zeros((B, LH)))), ValueError,
        match="out", needs="stepper")
    row(entry, "out", "dtype int", lambda _s=stepper: _s().step(_xt, out=np.zeros((B, LH), np.int64)),
        (TypeError, ValueError), match="out", needs="stepper")
    row(entry, "out", "a list", lambda _s=stepper: _s().step(_xt, out=[0.0]), (TypeError, ValueError), match="out",
        needs="stepper")
    row(entry, "out", "valid", lambda _s=stepper: _s().step(_xt, out=np.zeros((B, LH))), OK,
        check=lambda r, _f=steps_reference: assert_close(r, _f(_xt[None])()[0]), needs="stepper")

    entry = f"{_cls}.Stepper.step_many"
    row(entry, "x_chunk", "2-D", lambda _s=stepper: _s().step_many(_xt), ValueError, match="x_chunk", needs="stepper")
    row(entry, "x_chunk", "wrong size", lambda _s=stepper: _s().step_many(np.zeros((T, B, LI + 1))), ValueError,
        match="x_chunk", needs="stepper")
    row(entry, "x_chunk", "wrong batch", lambda _s=stepper: _s().step_many(np.zeros((T, B + 1, LI))), ValueError,
        match="x_chunk", needs="stepper")
    row(entry, "x_chunk", "complex", lambda _s=stepper: _s().step_many(x_clean + 0j), TypeError, match="x_chunk",
        needs="stepper")
    row(entry, "x_chunk", "empty", lambda _s=stepper: _s().step_many(np.zeros((0, B, LI))), OK,
        check=lambda r: r.shape == (0, B, LH) or pytest.fail(f"shape {r.shape}"), needs="stepper")
    for _lname, _layout in LAYOUTS.items():
        _v = _layout(x_clean)
        row(entry, "x_chunk", _lname, lambda _s=stepper, _v=_v: _s().step_many(_v), OK,
            check=lambda r, _v=_v, _f=steps_reference: assert_close(r, _f(np.asarray(_v))()), needs="stepper")
    row(entry, "x_chunk", "huge broadcast", lambda _s=stepper: _s().step_many(
        np.broadcast_to(np.float32(1), (HUGE * HUGE, B, LI))), (MemoryError, ValueError), match=r".", needs="stepper")
    row(entry, "out", "wrong shape", lambda _s=stepper: _s().step_many(x_clean, out=np.zeros((T, B, LH + 1))),
        ValueError, match="out", needs="stepper")
    row(entry, "out", "valid", lambda _s=stepper: _s().step_many(x_clean, out=np.zeros((T, B, LH))), OK,
        check=lambda r, _f=steps_reference: assert_close(r, _f(x_clean)()), needs="stepper")

    entry = f"{_cls}.Stepper.reset"
    _rst = _state(_cls, (1, B, LH), seed=40)
    if _cls == "LSTM":
        row(entry, "state", "a single array", lambda _s=stepper, _v=_rst: _s().reset(_v[0]), TypeError, match="state",
            needs="stepper")
        row(entry, "state", "c0 wrong shape", lambda _s=stepper, _v=_rst: _s().reset((_v[0], _v[1][:, :1])),
            ValueError, match="c0", needs="stepper")
    else:
        row(entry, "state", "a tuple", lambda _s=stepper, _v=_rst: _s().reset((_v, _v)), TypeError, match="state",
            needs="stepper")
    _h = _rst[0] if _cls == "LSTM" else _rst
    _bad_h = (_h[:, :1], _rst[1]) if _cls == "LSTM" else _h[:, :1]
    row(entry, "state", "wrong shape", lambda _s=stepper, _v=_bad_h: _s().reset(_v), ValueError, match="h0",
        needs="stepper")
    _cplx = (_h + 1j, _rst[1]) if _cls == "LSTM" else _h + 1j
    row(entry, "state", "complex", lambda _s=stepper, _v=_cplx: _s().reset(_v), TypeError, match="h0", needs="stepper")

    def _reset_then_step(_s=stepper, _v=_rst):
        s = _s()
        s.reset(_v)
        return s.step_many(x_clean)
    row(entry, "state", "valid, then steps", _reset_then_step, OK,
        check=lambda r, _f=steps_reference, _v=_rst: assert_close(r, _f(x_clean, state=_v)()), needs="stepper")

    def _misaligned_reset(_s=stepper, _v=_rst, _c=_cls):
        s = _s()
        s.reset(tuple(misaligned(a) for a in _v) if _c == "LSTM" else misaligned(_v))
        return s.step_many(x_clean)
    row(entry, "state", "misaligned", _misaligned_reset, OK,
        check=lambda r, _f=steps_reference, _v=_rst: assert_close(r, _f(x_clean, state=_v)()), needs="stepper")


# ---------------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------------

def _tmp(name: str) -> str:
    return os.path.join(TMPDIR, name)


TMPDIR = ""  # set by the autouse fixture below, per test


def _saved(name="m.npz", model=None) -> str:
    path = _tmp(name)
    rnnfast.save(path, model if model is not None else make("GRU", num_layers=2, bidirectional=True))
    return path


def _rewrite(path: str, edit: Callable[[bytes], bytes]) -> str:
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(edit(data))
    return path


def _check_loaded_gru(m) -> None:
    ref = make("GRU", num_layers=2, bidirectional=True)
    assert type(m) is rnnfast.GRU and m.num_layers == 2 and m.bidirectional
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v, err_msg=k)


row("rnnfast.save", "model", "not a layer", lambda: rnnfast.save(_tmp("a.npz"), {"w": np.zeros(3)}), TypeError)
row("rnnfast.save", "model", "None", lambda: rnnfast.save(_tmp("a.npz"), None), TypeError)
row("rnnfast.save", "path", "an int", lambda: rnnfast.save(123, make("LSTM")), TypeError)
row("rnnfast.save", "path", "directory missing", lambda: rnnfast.save(_tmp("no/such/dir/m.npz"), make("LSTM")),
    FileNotFoundError, match=r"no/such/dir|No such file")
row("rnnfast.save", "path", "without .npz suffix, loads back", lambda: rnnfast.load(_saved("model.bin")), OK,
    check=_check_loaded_gru)
row("rnnfast.load", "path", "an int", lambda: rnnfast.load(123), TypeError)
row("rnnfast.load", "path", "missing file", lambda: rnnfast.load(_tmp("absent.npz")), FileNotFoundError,
    match="absent.npz")
row("rnnfast.load", "path", "not an archive", lambda: rnnfast.load(_rewrite(_saved(), lambda d: b"hello world")),
    ValueError, match="not an rnnfast model")
row("rnnfast.load", "path", "empty file", lambda: rnnfast.load(_rewrite(_saved(), lambda d: b"")), ValueError,
    match="not an rnnfast model")
row("rnnfast.load", "path", "a plain .npz", lambda: (np.savez(_tmp("plain.npz"), a=np.zeros(3)),
                                                     rnnfast.load(_tmp("plain.npz"))), ValueError,
    match="not an rnnfast model")
for _frac in (0.1, 0.5, 0.9, 0.999):
    row("rnnfast.load", "path", f"truncated to {_frac:.1%}",
        lambda _f=_frac: rnnfast.load(_rewrite(_saved(), lambda d: d[:int(len(d) * _f)])), ValueError,
        match="truncated or damaged")
row("rnnfast.load", "path", "pickle file", lambda: rnnfast.load(_rewrite(_saved(), lambda d: __import__("pickle").dumps(
    make("LSTM")))), ValueError, match="not an rnnfast model")
row("rnnfast.load", "path", "file object", lambda: rnnfast.load(open(_saved(), "rb")), OK, check=_check_loaded_gru)
row("rnnfast.load", "seed", "str", lambda: rnnfast.load(_saved(), seed="x"), TypeError)
row("rnnfast.load", "seed", "negative", lambda: rnnfast.load(_saved(), seed=-1), ValueError)
row("rnnfast.load", "seed", "int", lambda: rnnfast.load(_saved(), seed=5), OK, check=_check_loaded_gru)


# ---------------------------------------------------------------------------------------------------
# Thread count (not in every build yet)
# ---------------------------------------------------------------------------------------------------

def _set_threads(n):
    return lambda: rnnfast.set_num_threads(n)


_THREADS = r"\bn\b|thread"
row("rnnfast.set_num_threads", "n", "zero", _set_threads(0), ValueError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "negative", _set_threads(-2), ValueError, match=_THREADS,
    needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "float", _set_threads(1.5), TypeError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "str", _set_threads("2"), TypeError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "None", _set_threads(None), TypeError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "2**62", _set_threads(2 ** 62), (ValueError, OverflowError), match=_THREADS,
    needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "one", _set_threads(1), OK,
    check=lambda r: rnnfast.get_num_threads() == 1 or pytest.fail("get_num_threads() != 1"),
    needs="set_num_threads")


# ---------------------------------------------------------------------------------------------------
# The command line: a bad option exits with status 2 and a usage message naming it
# ---------------------------------------------------------------------------------------------------

class UsageError(Exception):
    """Marker: the command must exit with status 2 and name the option in its message."""


def _cli(*argv):
    def run():
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
        if code == 2:  # argparse's usage-error status, or main's own
            raise UsageError()
        return code
    return run


def _exit_ok(code):
    assert code == 0, f"exit status {code}"


row("rnnfast (command)", "--shape", "three numbers", _cli("--shape", "1,2,3"), UsageError)
row("rnnfast (command)", "--shape", "zero", _cli("--shape", "0,1,2,3"), UsageError)
row("rnnfast (command)", "--shape", "not numbers", _cli("--shape", "a,b,c,d"), UsageError)
row("rnnfast (command)", "--shape", "overflowing sizes",
    _cli("--repeat", "1", "--shape", "100000000,100000000,1000,1000"), (MemoryError, ValueError), match=r".")
row("rnnfast (command)", "--repeat", "zero", _cli("--repeat", "0"), UsageError)
row("rnnfast (command)", "--repeat", "not a number", _cli("--repeat", "x"), UsageError)
row("rnnfast (command)", "--seed", "not a number", _cli("--seed", "x"), UsageError)
row("rnnfast (command)", "--seed", "negative", _cli("--seed", "-1"), UsageError)
row("rnnfast (command)", "command", "unknown", _cli("bogus"), UsageError, match="bogus|command")
row("rnnfast (command)", "--no-timing", "with a value", _cli("--no-timing=1"), UsageError, match="no-timing")
row("rnnfast (command)", "--no-timing", "valid", _cli("check", "--no-timing", "--shape", "2,1,3,4"), OK, check=_exit_ok)
row("rnnfast (command)", "name", "unknown demo", _cli("demo", "bogus"), UsageError, match="bogus")
row("rnnfast (command)", "name", "none: lists the demos", _cli("demo"), OK, check=_exit_ok)
row("rnnfast (command)", "demo_args", "unknown option", _cli("demo", "one_to_one", "--bogus-option"), UsageError,
    match="bogus-option")
# rnnfast bench (tests/system/test_bench.py runs it; these are refused before anything is timed)
row("rnnfast (command)", "--cells", "unknown", _cli("bench", "--cells", "bogus"), UsageError)
row("rnnfast (command)", "--scenarios", "unknown", _cli("bench", "--scenarios", "huge"), UsageError)
row("rnnfast (command)", "--peers", "unknown", _cli("bench", "--peers", "tensorflow"), UsageError)
row("rnnfast (command)", "--threads", "zero", _cli("bench", "--threads", "0"), UsageError)
row("rnnfast (command)", "--threads", "not a number", _cli("bench", "--threads", "x"), UsageError)
row("rnnfast (command)", "--repeat", "zero (bench)", _cli("bench", "--repeat", "0"), UsageError)
row("rnnfast (command)", "--quick", "with a value", _cli("bench", "--quick=1"), UsageError)
row("rnnfast (command)", "--tiny", "with a value", _cli("bench", "--tiny=1"), UsageError)
row("rnnfast (command)", "--json", "missing folder", _cli("bench", "--json", "/nonexistent-folder/x.json"), UsageError)
row("rnnfast (command)", "--plot", "missing folder", _cli("bench", "--plot", "/nonexistent-folder/x.png"), UsageError)


# ---------------------------------------------------------------------------------------------------
# The binding itself (rnnfast._core, not public): its checks are the last line of defence of memory safety
# ---------------------------------------------------------------------------------------------------

def _core_forward(**changes):
    f = forward_args("lstm")
    kw = {"cell": "lstm", "x": f["x"], "h0": f["h0"], "c0": f["c0"], "w_ih": f["w_ih"], "w_hh": f["w_hh"],
          "b_ih": f["b_ih"], "b_hh": f["b_hh"], "out": np.empty((T, B, H)), "h_n": np.empty((B, H)),
          "c_n": np.empty((B, H)), "workspace": np.empty((T, B, 6 * H))}
    kw.update(changes)
    return lambda: _core.forward(**kw)


def _core_backward(**changes):
    kw = backward_args(functional, "gru")
    del kw["d_out"], kw["d_h_n"]
    call = {"cell": "gru", "x": kw["x"], "h0": kw["h0"], "c0": None, "w_ih": kw["w_ih"], "w_hh": kw["w_hh"],
            "out": kw["out"], "workspace": kw["workspace"], "d_out": None, "d_h_n": None, "d_c_n": None,
            "d_x": np.empty((T, B, I)), "d_h0": np.empty((B, H)), "d_c0": None, "d_w_ih": np.empty((3 * H, I)),
            "d_w_hh": np.empty((3 * H, H)), "d_b_ih": np.empty(3 * H), "d_b_hh": np.empty(3 * H)}
    call.update(changes)
    return lambda: _core.backward(**call)


row("_core.forward", "cell", "unknown", _core_forward(cell="lstm2"), ValueError)
row("_core.forward", "x", "float32 among float64", _core_forward(x=np.zeros((T, B, I), np.float32)), TypeError,
    match=r"\w")
row("_core.forward", "x", "non-contiguous", _core_forward(x=noncontiguous(forward_args("lstm")["x"])), ValueError)
row("_core.forward", "x", "misaligned", _core_forward(x=misaligned(forward_args("lstm")["x"])), ValueError)
row("_core.forward", "x", "2-D", _core_forward(x=np.zeros((T, I))), ValueError)
row("_core.forward", "x", "int", _core_forward(x=np.zeros((T, B, I), np.int64)), TypeError)
row("_core.forward", "w_hh", "1-D", _core_forward(w_hh=np.zeros(4 * H)), ValueError)
row("_core.forward", "out", "too small", _core_forward(out=np.empty((T - 1, B, H))), ValueError)
row("_core.forward", "out", "read-only", _core_forward(out=read_only(np.empty((T, B, H)))), ValueError)
row("_core.forward", "h_n", "wrong shape", _core_forward(h_n=np.empty((B, H + 1))), ValueError)
row("_core.forward", "c_n", "missing for the LSTM", _core_forward(c_n=None), ValueError)
row("_core.forward", "workspace", "too narrow", _core_forward(workspace=np.empty((T, B, 5 * H))), ValueError)
row("_core.forward", "c0", "for a GRU", lambda: _core.forward(
    "gru", np.zeros((T, B, I)), None, np.zeros((B, H)), np.zeros((3 * H, I)), np.zeros((3 * H, H)), None, None,
    np.empty((T, B, H)), np.empty((B, H)), None, None), ValueError)
row("_core.forward", "lengths", "too long", _core_forward(lengths=np.array([T + 1, 1])), ValueError, match="length",
    needs="lengths")
row("_core.forward", "lengths", "unsorted", _core_forward(lengths=np.array([1, 2])), ValueError, match="length",
    needs="lengths")
row("_core.forward", "lengths", "negative", _core_forward(lengths=np.array([1, -1])), ValueError, match="length",
    needs="lengths")
row("_core.forward", "lengths", "int32", _core_forward(lengths=np.array([2, 1], np.int32)), TypeError,
    needs="lengths")
row("_core.backward", "workspace", "too short", _core_backward(workspace=np.empty((T - 1, B, 4 * H))), ValueError)
row("_core.backward", "d_x", "wrong shape", _core_backward(d_x=np.empty((T, B, I + 1))), ValueError)
row("_core.backward", "d_b_hh", "read-only", _core_backward(d_b_hh=read_only(np.empty(3 * H))), ValueError)
row("_core.backward", "d_c0", "for a GRU", _core_backward(d_c0=np.empty((B, H))), ValueError)
row("_core.gemm", "b", "inner size differs", lambda: _core.gemm(np.zeros((3, 4)), np.zeros((5, 2))), ValueError,
    match="inner")
row("_core.gemm", "a", "3-D", lambda: _core.gemm(np.zeros((3, 4, 1)), np.zeros((4, 2))), ValueError)
row("_core.gemm", "b", "other dtype", lambda: _core.gemm(np.zeros((3, 4)), np.zeros((4, 2), np.float32)), TypeError)
row("_core.Stepper", "layers", "empty", lambda: _core.Stepper("lstm", H, 1, []), ValueError, match="layer")
row("_core.Stepper", "layers", "wrong w_hh", lambda: _core.Stepper("gru", H, 1, [(np.zeros((3 * H, I)),
                                                                                  np.zeros((3 * H, H + 1)), None,
                                                                                  None)]), ValueError, match="w_hh")
row("_core.Stepper", "hidden_size", "zero", lambda: _core.Stepper("gru", 0, 1, [(np.zeros((0, I)), np.zeros((0, 0)),
                                                                                 None, None)]), ValueError,
    match="hidden size")


def _core_stepper_run(x, out):
    def run():
        s = _core.Stepper("gru", H, B, [(np.zeros((3 * H, I)), np.zeros((3 * H, H)), None, None)])
        s.run(x, out)
    return run


row("_core.Stepper.run", "x", "wrong size", _core_stepper_run(np.zeros((B, I + 1)), np.empty((B, H))), ValueError)
row("_core.Stepper.run", "x", "non-contiguous", _core_stepper_run(noncontiguous(np.zeros((B, I))), np.empty((B, H))),
    ValueError)
row("_core.Stepper.run", "out", "too few steps", _core_stepper_run(np.zeros((T, B, I)), np.empty((T - 1, B, H))),
    ValueError)
row("_core.Stepper.run", "out", "read-only", _core_stepper_run(np.zeros((B, I)), read_only(np.empty((B, H)))),
    ValueError)


# ---------------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _tmpdir(tmp_path):
    global TMPDIR
    TMPDIR = str(tmp_path)
    yield


@pytest.fixture(autouse=True)
def _restore_threads(restore_threads):
    """Rows may change the thread count; put it back (conftest.restore_threads)."""
    yield


def _marks(r: Row):
    marks = []
    if r.needs is not None:
        present = FEATURES[r.needs]()
        marks.append(pytest.mark.skipif(not present, reason=f"{r.needs} is not in this build yet"))
    if r.xfail is not None:
        marks.append(pytest.mark.xfail(reason=r.xfail, strict=False))
    return tuple(marks)


@pytest.mark.parametrize("r", [pytest.param(r, id=r.id, marks=_marks(r)) for r in ROWS])
def test_row(r: Row, capsys):
    """The row's call gives the right result, or raises the expected error naming the argument."""
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        if r.expect is OK:
            result = r.call()
            if r.check is not None:
                r.check(result)
        else:
            with pytest.raises(r.expect) as info:
                r.call()
            message = str(info.value) + capsys.readouterr().err
            pattern = r.match if r.match is not None else rf"(?<![\w]){re.escape(r.arg.lstrip('-'))}(?![\w])"
            assert re.search(pattern, message), (
                f"the {type(info.value).__name__} message does not name {r.arg!r} (pattern {pattern!r}): {message!r}"
            )
    elapsed = time.perf_counter() - start
    assert elapsed < ROW_SECONDS, f"took {elapsed:.1f} s: bad input must be refused quickly"


#: Every public entry point and how to find its arguments: a callable (its signature gives them) or an
#: explicit list. ``test_every_argument_has_a_row`` requires a row for each.
def _entry_points() -> dict[str, list[str]]:
    def params(fn, skip=("self",)):
        return [p for p in inspect.signature(fn).parameters if p not in skip]

    entries: dict[str, list[str]] = {}
    for modname, mod in (("rnnfast", functional), ("reference", reference)):
        for op in ("rnn", "lstm", "gru", "rnn_backward", "lstm_backward", "gru_backward"):
            entries[f"{modname}.{op}"] = params(getattr(mod, op))
    for cls_name, cls in LAYER_CLASSES.items():
        entries[f"{cls_name}()"] = params(cls.__init__)
        for meth in ("forward", "__call__", "backward", "load_state_dict"):
            entries[f"{cls_name}.{meth}"] = params(getattr(cls, meth))
        if FEATURES["stepper"]():
            entries[f"{cls_name}.stepper"] = params(cls.stepper)
            stepper_cls = type(make(cls_name).stepper())
            for meth in ("step", "step_many", "reset"):
                entries[f"{cls_name}.Stepper.{meth}"] = params(getattr(stepper_cls, meth))
    entries["rnnfast.save"] = params(rnnfast.save)
    entries["rnnfast.load"] = params(rnnfast.load)
    if FEATURES["set_num_threads"]():
        entries["rnnfast.set_num_threads"] = params(rnnfast.set_num_threads)
    options = ["command"]
    for sub in cli.build_parser()._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            if not action.option_strings:
                options.append(action.dest)  # a positional argument
            options += [s for s in action.option_strings if s.startswith("--") and s != "--help"]
    entries["rnnfast (command)"] = options
    return entries


def test_every_argument_has_a_row():
    """The table covers every argument of every public entry point (the issue's definition of done)."""
    covered = {(r.entry, r.arg) for r in ROWS}
    missing = [f"{entry}({arg})" for entry, args in _entry_points().items() for arg in args
               if (entry, arg) not in covered]
    assert not missing, "arguments without a bad-input row: " + ", ".join(missing)


def test_table_size():
    """A guard against the table silently shrinking (e.g. a loop that stopped generating rows)."""
    assert len(ROWS) >= 1000, len(ROWS)
