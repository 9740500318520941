"""Bad input, table-driven, over every public entry point: each case gives the right result or is refused.

Every row of the table names an entry point, the argument it exercises, what is wrong with it, a call, and
what must happen:

- ``expect=OK``: the call succeeds and ``check`` verifies the result (against :mod:`rnnfast.reference` on
  the clean arguments, or on the same arguments where a dtype conversion is the point);
- ``expect=<exception type(s)>``: the call raises it, and the message matches ``match`` (by default the
  argument's name as a whole word), so the user learns which argument is wrong.

Nothing may crash the process, hang, or allocate wildly: every row must finish within ``ROW_SECONDS``.

The table is in three test modules of tests/api/: test_bad_input_ops.py (the functional ops, native and
reference, and the binding under them), test_bad_input_layers.py (the layers and their steppers) and
test_bad_input_io_threads_cli.py (save/load, the thread count, the command line). This module has what they
share: the rows, the arrays (clean and awkward), the comparison with the reference, and the check of a row.

Adding an entry point is one line per row, e.g.::

    Row("Stepper.step", "x_t", "wrong size", lambda: stepper().step(np.zeros((1, 99))), ValueError),

Rows for a feature that is not there yet carry ``needs=<feature>`` (see ``FEATURES``) and are skipped until it
lands. ``test_every_argument_has_a_row`` (one per module) holds the table to covering every argument of every public
entry point listed in ``entry_points``.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union
from unittest import mock

import numpy as np
import pytest

import rnnfast
import rnnfast._rnn_base as rnn_base
from rnnfast import cli, functional, reference

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
    "stepper": lambda: hasattr(rnn_base.RNNBase, "stepper"),
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


class Table(list):
    """The rows of one test module's table: ``ROWS = Table()``, ``row = ROWS.row``, then ``row(...)`` per case."""

    def row(self, *args, **kw) -> None:
        self.append(Row(*args, **kw))


# ---------------------------------------------------------------------------------------------------
# Arrays: clean problems and the ways an array argument can be wrong, or legal but awkward
# ---------------------------------------------------------------------------------------------------

T, B, I, H = 3, 2, 4, 5
HUGE = 2 ** 20  # a broadcast view of HUGE x HUGE x I would need terabytes once copied


def rand_array(seed: int, *shape, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.8, 0.8, size=shape).astype(dtype)


def forward_args(cell: str, dtype=np.float64) -> dict:
    """Clean keyword arguments of the forward op of ``cell`` (every optional array given)."""
    G = GATES[cell]
    kw = {"x": rand_array(1, T, B, I, dtype=dtype), "h0": rand_array(2, B, H, dtype=dtype),
          "w_ih": rand_array(3, G * H, I, dtype=dtype), "w_hh": rand_array(4, G * H, H, dtype=dtype),
          "b_ih": rand_array(5, G * H, dtype=dtype), "b_hh": rand_array(6, G * H, dtype=dtype)}
    if cell == "lstm":
        kw["c0"] = rand_array(7, B, H, dtype=dtype)
    if cell.startswith("rnn"):
        kw["nonlinearity"] = cell[4:]
    return kw


def backward_args(mod, cell: str, dtype=np.float64) -> dict:
    """Clean keyword arguments of the backward op of ``cell``, with ``out``/``workspace`` from ``mod``'s forward."""
    f = forward_args(cell, dtype)
    res = FORWARD[cell](mod)(**f, training=True)
    kw = {"d_out": rand_array(8, T, B, H, dtype=dtype), "d_h_n": rand_array(9, B, H, dtype=dtype), "x": f["x"],
          "h0": f["h0"], "w_ih": f["w_ih"], "w_hh": f["w_hh"], "out": res[0], "workspace": res[-1]}
    if cell == "lstm":
        kw.update(d_c_n=rand_array(10, B, H, dtype=dtype), c0=f["c0"])
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
# Layers: the classes and a layer of each with small sizes
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
    with mock.patch.object(rnn_base, "functional_ops", lambda: reference):
        yield


# ---------------------------------------------------------------------------------------------------
# Checking a row, and what the table must cover
# ---------------------------------------------------------------------------------------------------

def _marks(r: Row):
    marks = []
    if r.needs is not None:
        present = FEATURES[r.needs]()
        marks.append(pytest.mark.skipif(not present, reason=f"{r.needs} is not in this build yet"))
    if r.xfail is not None:
        marks.append(pytest.mark.xfail(reason=r.xfail, strict=False))
    return tuple(marks)


def params(rows: list[Row]) -> list:
    """The rows as the parameters of a module's ``test_row``, each with its id and marks."""
    return [pytest.param(r, id=r.id, marks=_marks(r)) for r in rows]


def check_row(r: Row, capsys) -> None:
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


#: The public entry points of each table and how to find their arguments: a callable (its signature gives them)
#: or an explicit list. Each table module's ``test_every_argument_has_a_row`` requires a row for each of its own;
#: the three tables together cover every public entry point.
def entry_points(table: str) -> dict[str, list[str]]:
    """``table``: "ops" (the functional ops, native and reference), "layers" (the layer classes and their
    steppers, rnnfast.quantize and rnnfast.isa) or "io_threads_cli" (save/load, the thread count and the
    command line)."""
    def params(fn, skip=("self",)):
        return [p for p in inspect.signature(fn).parameters if p not in skip]

    entries: dict[str, list[str]] = {}
    if table == "ops":
        for modname, mod in (("rnnfast", functional), ("reference", reference)):
            for op in ("rnn", "lstm", "gru", "rnn_backward", "lstm_backward", "gru_backward"):
                entries[f"{modname}.{op}"] = params(getattr(mod, op))
    elif table == "layers":
        for cls_name, cls in LAYER_CLASSES.items():
            entries[f"{cls_name}()"] = params(cls.__init__)
            for meth in ("forward", "__call__", "backward", "load_state_dict"):
                entries[f"{cls_name}.{meth}"] = params(getattr(cls, meth))
            if FEATURES["stepper"]():
                entries[f"{cls_name}.stepper"] = params(cls.stepper)
                stepper_cls = type(make(cls_name).stepper())
                for meth in ("step", "step_many", "reset"):
                    entries[f"{cls_name}.Stepper.{meth}"] = params(getattr(stepper_cls, meth))
        entries["rnnfast.quantize"] = params(rnnfast.quantize)
        entries["rnnfast.isa"] = params(rnnfast.isa)
    elif table == "io_threads_cli":
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
    else:
        raise ValueError(f"unknown table {table!r}")
    return entries


def assert_every_argument_has_a_row(rows: list[Row], table: str) -> None:
    covered = {(r.entry, r.arg) for r in rows}
    missing = [f"{entry}({arg})" for entry, args in entry_points(table).items() for arg in args
               if (entry, arg) not in covered]
    assert not missing, "arguments without a bad-input row: " + ", ".join(missing)
