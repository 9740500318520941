"""Bad input, table-driven (see helpers/bad_input_table.py): every argument of the layers (RNN/LSTM/GRU):
constructor, forward/__call__, backward, load_state_dict, stepper and the stepper's methods; and of
rnnfast.quantize and rnnfast.isa."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import rnnfast

from helpers.bad_input_table import (HUGE, LAYER_CLASSES, LAYOUTS, LH, LI, OK, B, Row, T, Table,
                                     assert_close, assert_every_argument_has_a_row, check_row, make, misaligned,
                                     negative_stride, params, rand_array, read_only, reference_ops, same_as)

ROWS = Table()
row = ROWS.row


def layer_reference(cls_name: str, method: str, *args, make_kw=None, **kw):
    """What a layer computes on the reference ops (a fresh layer with the same seed, hence parameters)."""
    def compute():
        m = make(cls_name, **(make_kw or {}))
        with reference_ops():
            return getattr(m, method)(*args, **kw)
    return compute


def _state(cls_name, shape, seed=11):
    h = rand_array(seed, *shape)
    return (h, rand_array(seed + 1, *shape)) if cls_name == "LSTM" else h


def _variant_rows(ctor: str, cls_name: str) -> None:
    """The cell-variant options of a layer's constructor: each inconsistent option is a ValueError naming it."""
    def m(**kw):
        return lambda: make(cls_name, **kw)
    n_roles = {"RNN": 1, "LSTM": 3, "GRU": 2}[cls_name]
    for what, value in (("zero", 0.0), ("negative", -1.0), ("NaN", float("nan")), ("str", "1"), ("bool", True)):
        row(ctor, "clip", what, m(clip=value), ValueError)
    row(ctor, "clip", "inf (no clipping)", m(clip=float("inf")), OK,
        check=lambda r: (r.clip is None and not r.is_variant) or pytest.fail(repr(r)))
    row(ctor, "clip", "positive", m(clip=2), OK, check=lambda r: r.clip == 2.0 or pytest.fail(repr(r)))
    row(ctor, "direction", "unknown", m(direction="backward"), ValueError)
    row(ctor, "direction", "None", m(direction=None), OK, check=lambda r: r.direction == "forward" or pytest.fail())
    row(ctor, "direction", "reverse with bidirectional=True", m(direction="reverse", bidirectional=True), ValueError)
    row(ctor, "direction", "bidirectional with bidirectional=False", m(direction="bidirectional", bidirectional=False),
        ValueError)
    row(ctor, "direction", "bidirectional alone", m(direction="bidirectional"), OK,
        check=lambda r: (r.bidirectional and r.num_directions == 2) or pytest.fail(repr(r)))
    row(ctor, "direction", "reverse", m(direction="reverse"), OK,
        check=lambda r: (r.num_directions == 1 and all(k.endswith("_reverse") for k in r.parameters()))
        or pytest.fail(repr(r)))
    row(ctor, "activations", "a str", m(activations="tanh"), TypeError)
    row(ctor, "activations", "too few", m(activations=["tanh"] * (n_roles - 1)), ValueError)
    row(ctor, "activations", "too many", m(activations=["tanh"] * (n_roles + 1)), ValueError)
    row(ctor, "activations", "unknown name", m(activations=["gelu"] * n_roles), ValueError)
    row(ctor, "activations", "an int", m(activations=[1] * n_roles), TypeError)
    row(ctor, "activations", "per direction, one for two directions",
        m(activations=[["tanh"] * n_roles], bidirectional=True), ValueError)
    row(ctor, "activations", "per direction, one for one direction", m(activations=[["relu"] * n_roles]), OK,
        check=lambda r: r.activations == ((rnnfast.Activation("relu"),) * n_roles,) or pytest.fail(repr(r)))
    row(ctor, "activations", "per direction, three for two directions",
        m(activations=[["tanh"] * n_roles] * 3, bidirectional=True), ValueError)
    row(ctor, "activations", "per direction, a wrong count", m(activations=[["tanh"] * (n_roles + 1)] * 2,
                                                                bidirectional=True), ValueError)
    row(ctor, "activations", "alpha the activation takes none",
        lambda: make(cls_name, activations=[rnnfast.Activation("tanh", alpha=2.0)] * n_roles), ValueError,
        match="alpha")
    # Another cell's option is a ValueError naming it; any other unknown keyword the usual TypeError.
    other = {"RNN": {"peepholes": True}, "LSTM": {"reset_after": False}, "GRU": {"peepholes": True}}[cls_name]
    row(ctor, "other_cells_options", "another cell's option", m(**other), ValueError, "is an option of the")
    row(ctor, "other_cells_options", "a misspelt keyword", m(hiden_size=3), TypeError, "unexpected keyword")
    if cls_name == "RNN":
        return
    for arg in ("activation", "recurrent_activation"):
        row(ctor, arg, "unknown", m(**{arg: "gelu"}), ValueError)
        row(ctor, arg, "an int", m(**{arg: 3}), TypeError)
        row(ctor, arg, "with activations", m(**{arg: "relu", "activations": ["sigmoid"] * n_roles}), ValueError,
            match=f"activations.*{arg}")
        row(ctor, arg, "an Activation", m(**{arg: rnnfast.Activation("leaky_relu", alpha=0.2)}), OK,
            check=lambda r: "activations" in r.variant_options() or pytest.fail(repr(r)))
    if cls_name == "LSTM":
        for what, value in (("equal to hidden_size", LH), ("above hidden_size", LH + 1), ("negative", -1),
                            ("float", 1.5), ("bool", True), ("str", "2")):
            row(ctor, "proj_size", what, m(proj_size=value), ValueError)
        row(ctor, "proj_size", "valid", m(proj_size=2), OK,
            check=lambda r: (r.parameters()["weight_hr_l0"].shape == (2, LH) and r.state_size == 2)
            or pytest.fail(repr(r)))
        row(ctor, "proj_size", "numpy int", m(proj_size=np.int64(2)), OK,
            check=lambda r: r.proj_size == 2 or pytest.fail(repr(r)))
        for flag, param in (("peepholes", "weight_ch_l0"), ("input_forget", None)):
            row(ctor, flag, "truthy non-bool", m(**{flag: 1}), OK,
                check=lambda r, f=flag: getattr(r, f) is True or pytest.fail(f))
        row(ctor, "peepholes", "parameter", m(peepholes=True), OK,
            check=lambda r: r.parameters()["weight_ch_l0"].shape == (3 * LH,) or pytest.fail(repr(r)))
    if cls_name == "GRU":
        row(ctor, "reset_after", "False", m(reset_after=False), OK,
            check=lambda r: (r.reset_after is False and r.variant_options() == ["reset_after"]) or pytest.fail())
        row(ctor, "reset_after", "truthy non-bool", m(reset_after=1), OK,
            check=lambda r: (r.reset_after is True and not r.is_variant) or pytest.fail())


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
        row(ctor, "nonlinearity", "unknown", lambda: make("RNN", nonlinearity="swish"), ValueError)
        row(ctor, "nonlinearity", "None", lambda: make("RNN", nonlinearity=None), ValueError)
        row(ctor, "nonlinearity", "int", lambda: make("RNN", nonlinearity=3), TypeError)
        row(ctor, "nonlinearity", "sigmoid (a cell variant)", lambda: make("RNN", nonlinearity="sigmoid"), OK,
            check=lambda m: (m.nonlinearity == "sigmoid" and m.variant_options() == ["activations"])
            or pytest.fail(repr(m)))
        row(ctor, "nonlinearity", "an Activation", lambda: make("RNN", nonlinearity=rnnfast.Activation("relu")), OK,
            check=lambda m: (m.nonlinearity == "relu" and not m.is_variant) or pytest.fail(repr(m)))
        row(ctor, "activations", "with nonlinearity", lambda: make("RNN", nonlinearity="relu", activations=["elu"]),
            ValueError, match="activations.*nonlinearity")
    _variant_rows(ctor, _cls)

    # forward and __call__.
    x_clean = rand_array(20, T, B, LI)
    for _meth in ("forward", "__call__"):
        entry = f"{_cls}.{_meth}"

        def lcall(*args, _c=_cls, _m=_meth, **kw):
            return lambda: getattr(make(_c), _m)(*args, **kw)

        def lref(*args, _c=_cls, _m=_meth, **kw):
            return same_as(layer_reference(_c, _m, *args, **kw))

        row(entry, "x", "4-D", lcall(x_clean[None]), ValueError)
        row(entry, "x", "1-D", lcall(x_clean[0, 0]), ValueError)
        row(entry, "x", "wrong input_size", lcall(rand_array(20, T, B, LI + 1)), ValueError)
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
            _v = rand_array(21, *_shape)
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
        # int64 at an odd address (a chunk deserialised by an engine): copied, not refused. Sorted, so that no
        # reordering copies it first.
        row(entry, "lengths", "misaligned", lcall(x_clean, lengths=misaligned(np.array([T, 1], dtype=np.int64))), OK,
            check=lref(x_clean, lengths=[T, 1]), needs="lengths")
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

    _dout = rand_array(30, T, B, LH)
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
    row(entry, "(layer)", "direction='reverse'", lambda _c=_cls: make(_c, direction="reverse").stepper(),
        ValueError, match="reverse", needs="stepper")

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
# rnnfast.quantize and rnnfast.isa (reduced precision)
# ---------------------------------------------------------------------------------------------------


def _with_parameter(cls_name: str, name: str, value: float):
    m = make(cls_name)
    m.parameters()[name][0] = value
    return m


def _is_quantized(weight_dtype: str):
    def check(q):
        if q.weight_dtype != weight_dtype or q.dtype != np.float32:
            pytest.fail(f"weight_dtype {q.weight_dtype}, dtype {q.dtype}")
    return check


entry = "rnnfast.quantize"
for _cls in LAYER_CLASSES:
    row(entry, "model", f"{_cls} float64", lambda _c=_cls: rnnfast.quantize(make(_c), "int8"), OK,
        check=_is_quantized("int8"))
    row(entry, "model", f"{_cls} already quantized",
        lambda _c=_cls: rnnfast.quantize(rnnfast.quantize(make(_c), "bf16"), "int8"), ValueError)
    for _name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0"):
        for _bad in (np.nan, np.inf):
            row(entry, "model", f"{_cls} {_name} {_bad}",
                lambda _c=_cls, _n=_name, _b=_bad: rnnfast.quantize(_with_parameter(_c, _n, _b), "bf16"),
                ValueError, match=_name)
    row(entry, "model", f"{_cls} weight beyond float32", lambda _c=_cls: rnnfast.quantize(
        _with_parameter(_c, "weight_hh_l0", 1e300), "int8"), ValueError, match="weight_hh_l0")
    row(entry, "model", f"{_cls} all-zero weights", lambda _c=_cls: rnnfast.quantize(
        _with_parameter(_c, "weight_hh_l0", 0.0), "int8"), OK, check=_is_quantized("int8"))
for _bad, _what in ((None, "None"), (np.zeros(3), "an array"), ("LSTM", "a str"), (rnnfast.LSTM, "a class")):
    row(entry, "model", _what, lambda _b=_bad: rnnfast.quantize(_b, "int8"), TypeError)
# Cell variants are not run in reduced precision (yet): the message names the option.
for _cls, _kw, _name in (("LSTM", {"proj_size": 2}, "proj_size"), ("LSTM", {"peepholes": True}, "peepholes"),
                         ("LSTM", {"input_forget": True}, "input_forget"), ("GRU", {"reset_after": False}, "reset_after"),
                         ("RNN", {"clip": 1.0}, "clip"), ("GRU", {"activation": "relu"}, "activations"),
                         ("RNN", {"nonlinearity": "sigmoid"}, "activations")):
    row(entry, "model", f"{_cls} with {_name}", lambda _c=_cls, _k=_kw: rnnfast.quantize(make(_c, **_k), "int8"),
        ValueError, match=_name)
row(entry, "model", "direction='reverse'", lambda: rnnfast.quantize(make("GRU", direction="reverse"), "int8"), OK,
    check=lambda q: (q.direction == "reverse" and q.weight_dtype == "int8") or pytest.fail(repr(q)))
for _ok in ("int8", "bf16"):
    row(entry, "weight_dtype", _ok, lambda _w=_ok: rnnfast.quantize(make("GRU"), _w), OK, check=_is_quantized(_ok))
for _bad in ("int4", "INT8", "float32", "float16", "bfloat16", ""):
    row(entry, "weight_dtype", repr(_bad), lambda _w=_bad: rnnfast.quantize(make("GRU"), _w), ValueError)
for _bad in (None, np.int8, 8, b"int8"):
    row(entry, "weight_dtype", repr(_bad), lambda _w=_bad: rnnfast.quantize(make("GRU"), _w), TypeError)

entry = "rnnfast.isa"
for _ok in (None, "float32", "float64", "int8", "bf16"):
    row(entry, "weight_dtype", repr(_ok), lambda _w=_ok: rnnfast.isa(_w), OK,
        check=lambda r: isinstance(r, str) and r or pytest.fail(repr(r)))
for _bad in ("int4", "float16", ""):
    row(entry, "weight_dtype", repr(_bad), lambda _w=_bad: rnnfast.isa(_w), ValueError)
for _bad in (np.int8, 8):
    row(entry, "weight_dtype", repr(_bad), lambda _w=_bad: rnnfast.isa(_w), TypeError)

# ---------------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("restore_threads")  # rows may change the thread count; put it back


@pytest.mark.parametrize("r", params(ROWS))
def test_row(r: Row, capsys):
    """The row's call gives the right result, or raises the expected error naming the argument."""
    check_row(r, capsys)


def test_every_argument_has_a_row():
    """The table covers every argument of every public entry point of the layers
    (the issue's definition of done)."""
    assert_every_argument_has_a_row(ROWS, "layers")


def test_table_size():
    """A guard against the table silently shrinking (e.g. a loop that stopped generating rows)."""
    assert len(ROWS) >= 500, len(ROWS)
