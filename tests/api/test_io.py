"""Saving models: pickling layers (also across processes) and the rnnfast.save / rnnfast.load .npz format.

The format is checked against its documentation in :mod:`rnnfast.io` by reading files with plain NumPy and
zipfile; damaged and edited files are made here byte by byte or member by member, and every one of them must
be refused with a ValueError (or, where the damage missed everything that matters, load the same model).
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import multiprocessing
import os
import pickle
import tokenize
import zipfile

import numpy as np
import pytest

import rnnfast

CLASSES = {"RNN": rnnfast.RNN, "LSTM": rnnfast.LSTM, "GRU": rnnfast.GRU}
CONFIGS = [
    ("RNN", dict(num_layers=2, nonlinearity="relu", bidirectional=True, dtype="float64")),
    ("RNN", dict(bias=False, batch_first=True)),
    ("LSTM", dict(num_layers=3, dropout=0.25, dtype="float32")),
    ("LSTM", dict(bidirectional=True, batch_first=True, dtype="float64")),
    ("GRU", dict(num_layers=2, bidirectional=True, bias=False)),
    ("GRU", dict(dtype="float64")),
]
I, H = 5, 6


def make(cls_name: str, seed: int = 0, **kw):
    return CLASSES[cls_name](I, H, seed=seed, **kw)


def x_for(m, T: int = 4, B: int = 3) -> np.ndarray:
    shape = (B, T, I) if m.batch_first else (T, B, I)
    return np.random.default_rng(7).standard_normal(shape).astype(m.dtype)


def assert_same_model(a, b) -> None:
    """Same class, configuration and parameters (bit for bit), hence the same outputs."""
    assert type(a) is type(b)
    assert repr(a) == repr(b)
    for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional", "dropout",
                 "dtype", "mode"):
        assert getattr(a, attr) == getattr(b, attr), attr
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    x = x_for(a)
    out_a, _ = a(x)
    out_b, _ = b(x)
    np.testing.assert_array_equal(out_a, out_b)


# ---------------------------------------------------------------------------------------------------
# Pickle
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls_name,kw", CONFIGS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CONFIGS)])
def test_pickle_round_trip(cls_name, kw):
    m = make(cls_name, **kw)
    m.grads[next(iter(m.grads))] += 1.5  # accumulated gradients do not travel: a copy starts at zero
    copy = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
    assert_same_model(m, copy)
    assert set(copy.grads) == set(m.grads)
    for k, g in copy.grads.items():
        assert g.shape == m.grads[k].shape and g.dtype == m.grads[k].dtype and not g.any(), k


def test_pickle_after_a_training_forward_carries_no_training_cache():
    """What a training forward keeps for backward is not pickled (it can be far larger than the model): the
    pickle is the size of a fresh model's, the copy has no pending backward, and the original keeps its own."""
    m = make("LSTM", num_layers=2, bidirectional=True, dtype="float64")
    fresh = len(pickle.dumps(m))
    x = np.random.default_rng(2).standard_normal((50, 16, m.input_size))
    out, _ = m.forward(x, training=True)
    data = pickle.dumps(m)
    assert len(data) < fresh + 4096, f"{len(data)} bytes after a training forward, {fresh} fresh"
    copy = pickle.loads(data)
    with pytest.raises(RuntimeError, match="backward"):
        copy.backward(np.ones_like(out))
    m.backward(np.ones_like(out))  # the original still can
    out_copy, _ = copy(x)
    np.testing.assert_array_equal(out_copy, m(x)[0])


def test_unpickled_parameters_run_natively():
    """Unpickled arrays carry their own dtype objects; the kernels must still take them (equality, not identity)."""
    m = pickle.loads(pickle.dumps(make("GRU", dtype="float32")))
    x = pickle.loads(pickle.dumps(x_for(m)))
    out, _ = m(x)
    out_ref, _ = make("GRU", dtype="float32")(x_for(m))
    np.testing.assert_array_equal(out, out_ref)
    if hasattr(m, "stepper"):
        s = m.stepper(batch=x.shape[1])
        np.testing.assert_array_equal(s.step_many(x), out_ref)


def _child_forward(payload: bytes) -> bytes:
    """In another process: unpickle a model and an input, return the pickled output and a pickled model."""
    import pickle

    model, x = pickle.loads(payload)
    out, _ = model(x)
    return pickle.dumps((out, model))


def test_pickle_crosses_process_boundary():
    """A layer sent to a freshly spawned interpreter computes the same output there, and comes back intact."""
    m = make("LSTM", num_layers=2, bidirectional=True, dtype="float64")
    x = x_for(m)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        result = pool.submit(_child_forward, pickle.dumps((m, x))).result(timeout=120)
    out_child, model_back = pickle.loads(result)
    out, _ = m(x)
    np.testing.assert_array_equal(out_child, out)
    assert_same_model(m, model_back)


# ---------------------------------------------------------------------------------------------------
# save / load: the documented format
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls_name,kw", CONFIGS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CONFIGS)])
def test_save_load_round_trip(tmp_path, cls_name, kw):
    m = make(cls_name, **kw)
    path = tmp_path / "model.npz"
    rnnfast.save(path, m)
    loaded = rnnfast.load(path)
    assert_same_model(m, loaded)
    for g in loaded.grads.values():
        assert not g.any()


def test_file_format_is_as_documented(tmp_path):
    """Plain NumPy reads the file without pickle: one JSON metadata entry and one array per parameter."""
    m = make("RNN", num_layers=2, nonlinearity="relu", bidirectional=True, dtype="float64")
    path = tmp_path / "m.npz"
    rnnfast.save(path, m)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted([k + ".npy" for k in m.state_dict()] + ["__rnnfast__.npy"])
    with np.load(path, allow_pickle=False) as f:
        meta_arr = f["__rnnfast__"]
        assert meta_arr.shape == () and meta_arr.dtype.kind == "U"
        meta = json.loads(str(meta_arr[()]))
        arrays = {k: f[k] for k in f.files if k != "__rnnfast__"}
    assert meta["format"] == "rnnfast"
    # PyTorch's cells are written as version 2 (what rnnfast before the cell variants reads); version 3, with the
    # cell options, is tested in test_layer_variants.py.
    assert meta["format_version"] == 2 and rnnfast.io.FORMAT_VERSION == 4  # 4 adds whole models
    assert meta["rnnfast_version"] == rnnfast.__version__
    assert meta["class"] == "RNN"
    assert meta["config"] == {"input_size": I, "hidden_size": H, "num_layers": 2, "bias": True,
                              "batch_first": False, "bidirectional": True, "dropout": 0.0, "dtype": "float64",
                              "weight_dtype": "float64", "nonlinearity": "relu"}
    sd = m.state_dict()
    assert set(arrays) == set(sd) == set(meta["parameters"])
    import hashlib
    for k, v in sd.items():
        np.testing.assert_array_equal(arrays[k], v)
        assert arrays[k].dtype == np.float64
        info = meta["parameters"][k]
        assert info == {"shape": list(v.shape), "dtype": "float64",
                        "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}


def test_save_writes_the_exact_path_and_file_objects(tmp_path):
    m = make("GRU")
    path = tmp_path / "weights.bin"  # no .npz appended
    rnnfast.save(str(path), m)
    assert path.exists() and not (tmp_path / "weights.bin.npz").exists()
    assert_same_model(m, rnnfast.load(str(path)))
    buf = io.BytesIO()
    rnnfast.save(buf, m)
    buf.seek(0)
    assert_same_model(m, rnnfast.load(buf))


def test_load_seed_fixes_dropout_masks(tmp_path):
    m = make("LSTM", num_layers=2, dropout=0.5)
    rnnfast.save(tmp_path / "m.npz", m)
    a, b = rnnfast.load(tmp_path / "m.npz", seed=4), rnnfast.load(tmp_path / "m.npz", seed=4)
    x = x_for(m)
    np.testing.assert_array_equal(a.forward(x, training=True)[0], b.forward(x, training=True)[0])


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    """An interrupted save leaves the previous file whole and no temporary file behind."""
    path = tmp_path / "m.npz"
    old = make("GRU", seed=1)
    rnnfast.save(path, old)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        rnnfast.save(path, make("GRU", seed=2))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# ---------------------------------------------------------------------------------------------------
# save / load: damaged, edited and malicious files
# ---------------------------------------------------------------------------------------------------

def _members(path) -> dict:
    """name -> raw .npy bytes of every member."""
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write_members(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _meta(members: dict) -> dict:
    return json.loads(str(np.load(io.BytesIO(members["__rnnfast__.npy"]), allow_pickle=False)[()]))


def _with_meta(members: dict, meta: dict) -> dict:
    return {**members, "__rnnfast__.npy": _npy(np.array(json.dumps(meta)))}


@pytest.fixture
def saved(tmp_path):
    """A saved two-layer bidirectional LSTM: (path, model)."""
    m = make("LSTM", num_layers=2, bidirectional=True)
    path = tmp_path / "m.npz"
    rnnfast.save(path, m)
    return path, m


def _edit_meta(path, change) -> None:
    members = _members(path)
    meta = _meta(members)
    change(meta)
    _write_members(path, _with_meta(members, meta))


EDITS = {
    "newer format version": (lambda m: m.update(format_version=5), r"format version 5.*newer.*up to 4"),
    "format_version a string": (lambda m: m.update(format_version="1"), "format_version"),
    "other format": (lambda m: m.update(format="keras"), "not an rnnfast model"),
    "unknown class": (lambda m: m.update({"class": "Transformer"}), "class"),
    "config hidden_size changed": (lambda m: m["config"].update(hidden_size=7), "shape"),
    "config hidden_size a bool": (lambda m: m["config"].update(hidden_size=True), "hidden_size"),
    "config hidden_size huge": (lambda m: m["config"].update(hidden_size=2 ** 40), "hidden_size|allocat"),
    "config dtype unknown": (lambda m: m["config"].update(dtype="float16"), "dtype"),
    "config key missing": (lambda m: m["config"].pop("bias"), "bias"),
    "config key extra": (lambda m: m["config"].update(proj_size=3), "proj_size"),
    "config weight_dtype missing": (lambda m: m["config"].pop("weight_dtype"), "weight_dtype"),
    "config weight_dtype unknown": (lambda m: m["config"].update(weight_dtype="int4"), "weight_dtype"),
    "config weight_dtype not the float dtype": (lambda m: m["config"].update(weight_dtype="float64"),
                                                "weight_dtype.*float64"),
    "config weight_dtype int8 without its parameters": (lambda m: m["config"].update(weight_dtype="int8"),
                                                        "weight_ih_l0_scale"),
    "version 1 with a weight_dtype": (lambda m: m.update(format_version=1), "weight_dtype"),
    "config not an object": (lambda m: m.update(config=[1, 2]), "config"),
    "parameters table missing": (lambda m: m.pop("parameters"), "parameters"),
    "checksum changed": (lambda m: m["parameters"]["weight_hh_l1"].update(sha256="0" * 64), "weight_hh_l1.*checksum"),
    "recorded shape changed": (lambda m: m["parameters"]["bias_ih_l0"].update(shape=[3]), "bias_ih_l0"),
    "recorded dtype changed": (lambda m: m["parameters"]["bias_ih_l0"].update(dtype="float64"), "bias_ih_l0"),
    "parameter unrecorded": (lambda m: m["parameters"].pop("weight_ih_l0_reverse"), "weight_ih_l0_reverse"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_metadata_is_refused(saved, edit):
    path, _ = saved
    change, message = EDITS[edit]
    _edit_meta(path, change)
    with pytest.raises(ValueError, match=message) as info:
        rnnfast.load(path)
    assert str(path) in str(info.value), "the message names the file"


def test_edited_parameter_values_are_refused(saved):
    """A value changed inside a well-formed archive (CRC recomputed) no longer matches its checksum."""
    path, _ = saved
    members = _members(path)
    w = np.load(io.BytesIO(members["weight_hh_l0.npy"]))
    w[0, 0] += 1e-3
    _write_members(path, {**members, "weight_hh_l0.npy": _npy(w)})
    with pytest.raises(ValueError, match="weight_hh_l0.*checksum"):
        rnnfast.load(path)


@pytest.mark.parametrize("change", ["missing", "extra", "misshaped", "complex", "float64 for float32"])
def test_edited_parameter_entries_are_refused(saved, change):
    path, _ = saved
    members = _members(path)
    name = "bias_hh_l1_reverse.npy"
    w = np.load(io.BytesIO(members[name]))
    if change == "missing":
        del members[name]
        message = "missing 'bias_hh_l1_reverse'"
    elif change == "extra":
        members["weight_hh_l9.npy"] = _npy(w)
        message = "unexpected 'weight_hh_l9'"
    elif change == "misshaped":
        members[name] = _npy(w[:-1])
        message = "bias_hh_l1_reverse.*shape"
    elif change == "complex":
        members[name] = _npy(w.astype(np.complex64))
        message = "bias_hh_l1_reverse.*dtype"
    else:
        members[name] = _npy(w.astype(np.float64))
        message = "bias_hh_l1_reverse.*dtype"
    _write_members(path, members)
    with pytest.raises(ValueError, match=message):
        rnnfast.load(path)


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("where", ["parameter", "metadata"])
def test_loading_never_executes_code(saved, tmp_path, where):
    """An object array (a pickle inside the .npy) is refused without being unpickled."""
    path, _ = saved
    marker = tmp_path / "code-ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(str(marker))
    members = _members(path)
    members["weight_hh_l0.npy" if where == "parameter" else "__rnnfast__.npy"] = _npy(evil, allow_pickle=True)
    _write_members(path, members)
    with pytest.raises(ValueError):
        rnnfast.load(path)
    assert not marker.exists(), "loading executed code from the file"
    # The payload is live: unpickling it would have created the marker.
    pickle.loads(pickle.dumps(evil))
    assert marker.exists()


def test_every_truncation_is_refused(saved):
    """Cut the file at 40 places from the first byte to the last: always a ValueError, never anything else."""
    path, _ = saved
    data = path.read_bytes()
    cuts = sorted(set(np.linspace(0, len(data) - 1, 40).astype(int)))
    for n in cuts:
        path.write_bytes(data[:n])
        with pytest.raises(ValueError, match=str(path)):
            rnnfast.load(path)


def test_flipped_bytes_are_refused_or_harmless(saved):
    """Flip one byte at 60 places: the load is refused with a ValueError, or (the flip hit bytes that carry no
    meaning, e.g. a timestamp) it gives the saved model exactly."""
    path, m = saved
    data = path.read_bytes()
    refused = 0
    for pos in np.random.default_rng(0).choice(len(data), size=60, replace=False):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            loaded = rnnfast.load(path)
        except ValueError as exc:
            assert str(path) in str(exc)
            refused += 1
        else:
            assert_same_model(m, loaded)
    assert refused >= 30, f"only {refused} of 60 damaged files were refused"


def test_not_an_rnnfast_file(tmp_path):
    for name, content in (("empty", b""), ("text", b"hello"), ("npy", _npy(np.zeros(3))),
                          ("pickle", pickle.dumps(make("GRU")))):
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ValueError, match="not an rnnfast model"):
            rnnfast.load(p)
    np.savez(tmp_path / "plain.npz", weight=np.zeros(3))
    with pytest.raises(ValueError, match="not an rnnfast model"):
        rnnfast.load(tmp_path / "plain.npz")


def test_load_does_not_leave_files_open(saved):
    """A refused load closes the file (no ResourceWarning, and the file can be replaced at once)."""
    path, _ = saved
    path.write_bytes(path.read_bytes()[:100])
    before = len(os.listdir(f"/proc/{os.getpid()}/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(50):
        with pytest.raises(ValueError):
            rnnfast.load(path)
    if before is not None:
        assert len(os.listdir(f"/proc/{os.getpid()}/fd")) <= before + 2


def _rezipped(data: bytes, member_prefix: str, old: bytes, new: bytes) -> bytes:
    """The archive ``data`` written again (valid CRCs) with ``old`` replaced by ``new`` in its members whose name
    starts with ``member_prefix``: a damaged .npy header that the zip reader cannot notice."""
    import zipfile

    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            body = src.read(name)
            z.writestr(name, body.replace(old, new, 1) if name.startswith(member_prefix) else body)
    return out.getvalue()


def _zip_headers_patched(data: bytes, local_offset: int, central_offset: int, value: int) -> bytes:
    """``data`` with a 16-bit field set to ``value`` in every local header (at ``local_offset``) and central
    directory entry (at ``central_offset``)."""
    import struct

    d = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        i = d.find(signature)
        while i >= 0:
            d[i + offset:i + offset + 2] = struct.pack("<H", value)
            i = d.find(signature, i + 4)
    return bytes(d)


@pytest.mark.parametrize("damage, original", [
    (lambda d: _zip_headers_patched(d, 8, 10, 99), NotImplementedError),  # an unsupported compression method
    (lambda d: _zip_headers_patched(d, 6, 8, 1), RuntimeError),  # every member flagged as encrypted
    (lambda d: _rezipped(d, "weight_ih", b"'shape': (", b"'shape': (("),  # a header NumPy tokenizes
     (SyntaxError, tokenize.TokenError)),
], ids=["compression", "encrypted", "npy-header"])
def test_every_damaged_archive_is_a_value_error_naming_the_file_with_the_readers_error_chained(damage, original,
                                                                                                 tmp_path):
    import rnnfast

    buf = io.BytesIO()
    rnnfast.save(buf, rnnfast.GRU(3, 4, seed=0))
    path = tmp_path / "damaged.npz"
    path.write_bytes(damage(buf.getvalue()))
    with pytest.raises(ValueError, match="damaged.npz") as info:
        rnnfast.load(path)
    assert isinstance(info.value.__cause__, original), repr(info.value.__cause__)


def test_saved_files_get_the_usual_permissions(tmp_path):
    import os

    import rnnfast

    umask = os.umask(0o027)
    try:
        rnnfast.save(tmp_path / "new.npz", rnnfast.GRU(3, 4, seed=0))
        assert (os.stat(tmp_path / "new.npz").st_mode & 0o777) == 0o640  # 0666 less the umask, as open() gives
        existing = tmp_path / "existing.npz"
        existing.write_bytes(b"")
        os.chmod(existing, 0o604)
        rnnfast.save(existing, rnnfast.GRU(3, 4, seed=0))
        assert (os.stat(existing).st_mode & 0o777) == 0o604  # an existing file keeps its mode
    finally:
        os.umask(umask)
