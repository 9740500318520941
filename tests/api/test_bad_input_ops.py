"""Bad input, table-driven (see helpers/bad_input_table.py): every argument of the functional ops, native
(rnnfast.rnn, ...) and reference (rnnfast.reference.rnn, ...), forward and backward, and the checks of the binding
under them (rnnfast._core), the last line of defence of memory safety."""

from __future__ import annotations

import numpy as np
import pytest

from rnnfast import _core, functional, reference

from helpers.bad_input_table import (BACKWARD, FORWARD, GATES, HUGE, LAYOUTS, OK, B, H, I, Row, T, Table,
                                     assert_every_argument_has_a_row, assert_results_close, backward_args,
                                     check_row, forward_args, fortran, misaligned, noncontiguous, params, rand_array,
                                     read_only, same_as)

ROWS = Table()
row = ROWS.row


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
                ch = {"x": rand_array(1, *shape_x), "w_ih": rand_array(3, G * H, shape_x[2])}
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
row("_core.testing.gemm", "b", "inner size differs", lambda: _core.testing.gemm(np.zeros((3, 4)), np.zeros((5, 2))), ValueError,
    match="inner")
row("_core.testing.gemm", "a", "3-D", lambda: _core.testing.gemm(np.zeros((3, 4, 1)), np.zeros((4, 2))), ValueError)
row("_core.testing.gemm", "b", "other dtype", lambda: _core.testing.gemm(np.zeros((3, 4)), np.zeros((4, 2), np.float32)), TypeError)
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

pytestmark = pytest.mark.usefixtures("restore_threads")  # rows may change the thread count; put it back


@pytest.mark.parametrize("r", params(ROWS))
def test_row(r: Row, capsys):
    """The row's call gives the right result, or raises the expected error naming the argument."""
    check_row(r, capsys)


def test_every_argument_has_a_row():
    """The table covers every argument of every public entry point of the functional ops
    (the issue's definition of done)."""
    assert_every_argument_has_a_row(ROWS, "ops")


def test_table_size():
    """A guard against the table silently shrinking (e.g. a loop that stopped generating rows)."""
    assert len(ROWS) >= 1800, len(ROWS)
