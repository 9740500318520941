"""The float32 and float64 bits of a broad fixed set of cases, pinned to those of a build known to be right.

A restructuring of the kernels (how the code is cut into files, how the drivers call the cells) must not
move a single bit on any instruction set or thread count. Each case here runs the public API on inputs made
by exact integer arithmetic (no random generator, no transcendental function: the same values on every
NumPy and CPU), and a SHA-256 digest of every array it returns is compared with ``pinned_bits.json``, which
was written by the build before the architecture restructure (commit 42a4893), once per instruction set.

The cases: every cell (RNN tanh and relu, LSTM, GRU) in float32 and float64; one and two layers, one and
two directions; sizes that leave tails everywhere (H = 1, 13, 37, 130; input sizes across a GEMM k block);
batch 1 and batches that fill several row tiles; variable lengths; inference, training (the forward with
its workspace, then the backward's input, state and parameter gradients) and the stepper. The digests are
also checked under every thread count, split and input-projection placement, which must not change them.

On aarch64 the same cases are held to AVX2's digests: its NEON kernels (its "generic" instruction set) fuse
multiply-adds where AVX2's do, block the GEMM's depth as AVX2 does, and keep float64's gate arithmetic unfused
as every path does, so they compute AVX2's bits (docs/design.md 3.7; .ci/aarch64-wheel runs this file under
qemu).

Regenerate the file only for a change meant to move bits (and say so in its commit):
``python tests/kernels/test_pinned_bits.py --write`` writes the digests of the installed build.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

PINNED = Path(__file__).with_name("pinned_bits.json")

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
DTYPES = ("float32", "float64")
# (T, B, I, H, layers, bidirectional, lengths or None): odd sizes, tails, one and several row tiles.
SHAPES = (
    (7, 3, 5, 13, 1, False, None),
    (5, 4, 9, 37, 2, True, (3, 5, 0, 2)),
    (6, 1, 8, 130, 1, False, None),
    (3, 2, 300, 20, 1, False, None),
    (9, 17, 16, 64, 1, True, (9, 1, 4, 4, 9, 2, 7, 8, 3, 6, 5, 9, 1, 0, 2, 8, 9)),
    (4, 2, 1, 1, 2, False, None),
    (12, 1, 64, 128, 2, False, None),
)


def exact_values(shape: tuple, salt: int, scale: float, dtype: str) -> np.ndarray:
    """Values in [-scale, scale] made by integer arithmetic and one correctly rounded division: the
    same on every platform and NumPy version."""
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    v = ((i * 7919 + salt * 104729 + 17) % 2003).astype(np.float64) / 1001.0 - 1.0
    return (v * scale).astype(dtype).reshape(shape)


def make_model(cell: str, dtype: str, shape: tuple):
    T, B, I, H, L, bidirectional, _ = shape
    kwargs = dict(num_layers=L, bidirectional=bidirectional, dtype=dtype)
    if cell.startswith("rnn_"):
        model = rnnfast.RNN(I, H, nonlinearity=cell[4:], **kwargs)
    else:
        model = {"lstm": rnnfast.LSTM, "gru": rnnfast.GRU}[cell](I, H, **kwargs)
    scale = 2.0 ** -round(np.log2(np.sqrt(H)))  # about 1/sqrt(H), a power of two
    params = {name: exact_values(p.shape, salt, scale, dtype)
              for salt, (name, p) in enumerate(sorted(model.state_dict().items()))}
    model.load_state_dict(params)
    return model


def run_case(cell: str, dtype: str, shape: tuple, mode: str) -> list:
    """The named arrays that case returns, in a fixed order."""
    T, B, I, H, L, bidirectional, lengths = shape
    D = 2 if bidirectional else 1
    model = make_model(cell, dtype, shape)
    x = exact_values((T, B, I), 1001, 1.0, dtype)
    h0 = exact_values((L * D, B, H), 1002, 0.5, dtype)
    state = (h0, exact_values((L * D, B, H), 1003, 0.5, dtype)) if cell == "lstm" else h0
    if mode == "inference":
        out, state_n = model(x, state, lengths=lengths)
        parts = [("out", out)] + [(f"state{k}", s) for k, s in enumerate(state_n if cell == "lstm" else (state_n,))]
        return parts
    if mode == "training":
        out, state_n = model.forward(x, state, lengths=lengths, training=True)
        d_out = exact_values(out.shape, 2001, 1.0, dtype)
        d_h_n = exact_values((L * D, B, H), 2002, 1.0, dtype)
        d_state_n = (d_h_n, exact_values((L * D, B, H), 2003, 1.0, dtype)) if cell == "lstm" else d_h_n
        d_x, d_state = model.backward(d_out, d_state_n)
        parts = [("out", out), ("d_x", d_x)]
        parts += [(f"d_state{k}", s) for k, s in enumerate(d_state if cell == "lstm" else (d_state,))]
        parts += [(f"grad:{name}", g) for name, g in sorted(model.grads.items())]
        return parts
    # mode == "stepper": a unidirectional model streamed two steps at a time, then one at a time.
    stepper = model.stepper(batch=B)
    outputs = list(stepper.step_many(x[:2])) + [stepper.step(x[t]) for t in range(2, T)]
    return [("steps", np.stack(outputs))]


def cases() -> list:
    found = []
    for cell in CELLS:
        for dtype in DTYPES:
            for s, shape in enumerate(SHAPES):
                modes = ["inference", "training"]
                if not shape[5] and shape[6] is None:
                    modes.append("stepper")
                found += [(cell, dtype, s, mode) for mode in modes]
    return found


def case_id(case: tuple) -> str:
    cell, dtype, s, mode = case
    return f"{cell}-{dtype}-shape{s}-{mode}"


def digest(parts: list) -> str:
    h = hashlib.sha256()
    for name, a in parts:
        a = np.ascontiguousarray(a)
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def case_digest(case: tuple) -> str:
    cell, dtype, s, mode = case
    return digest(run_case(cell, dtype, SHAPES[s], mode))


def all_digests() -> dict:
    """{isa: {case id: digest}} for every instruction set this CPU runs, on the current thread count."""
    before = _core.isa()
    result = {}
    try:
        for isa in _core.testing.available_isas():
            _core.testing.set_isa(isa)
            result[isa] = {case_id(c): case_digest(c) for c in cases()}
    finally:
        _core.testing.set_isa(before)
    return result


def load_pinned() -> dict:
    return json.loads(PINNED.read_text())["digests"]


AARCH64 = platform.machine() in ("aarch64", "arm64")


def pinned_for(isa: str) -> dict:
    """The digests the instruction set `isa` of this machine must give (see the module's docstring)."""
    return load_pinned()["avx2" if AARCH64 else isa]


@pytest.fixture
def restore_isa():
    before = _core.isa()
    yield
    _core.testing.set_isa(before)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_bits_match_the_pinned_build(isa, restore_isa, restore_threads):
    if isa not in _core.testing.available_isas():
        pytest.skip(f"this CPU cannot run {isa}")
    pinned = pinned_for(isa)
    _core.testing.set_isa(isa)
    moved = []
    for threads in (1, 2):
        rnnfast.set_num_threads(threads)
        for case in cases():
            key = case_id(case)
            got = case_digest(case)
            if got != pinned[key]:
                moved.append(f"{key} on {threads} thread(s)")
    assert not moved, f"{len(moved)} case(s) moved from the pinned bits on {isa}: " + ", ".join(moved[:20])


@pytest.mark.parametrize("projection", ["up_front", "per_step", "in_step", "ahead"])
@pytest.mark.parametrize("split", ["batch", "hidden"])
def test_every_placement_keeps_the_pinned_bits(projection, split, restore_split, restore_projection,
                                               restore_threads):
    isa = _core.isa()
    pinned = pinned_for(isa)
    _core.testing.set_split(split)
    _core.testing.set_projection(projection)
    moved = []
    for threads in (2, 3):
        rnnfast.set_num_threads(threads)
        for case in cases():
            if case[3] == "stepper" or case[1] == "float64" and case[0].startswith("rnn"):
                continue  # the stepper has no projection placements; keep the sweep short
            key = case_id(case)
            if case_digest(case) != pinned[key]:
                moved.append(f"{key} on {threads} threads")
    assert not moved, f"{len(moved)} case(s) moved with split={split}, projection={projection}: " + ", ".join(moved[:20])


def test_the_pinned_file_covers_every_case():
    pinned = load_pinned()
    expected = {case_id(c) for c in cases()}
    for isa in _core.testing.available_isas():
        assert set(pinned[isa]) == expected, f"pinned_bits.json for {isa} does not list exactly the cases here"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/kernels/test_pinned_bits.py --write   (writes the installed build's digests)")
    PINNED.write_text(json.dumps({
        "about": "SHA-256 digests (first 24 hex digits) of every case of test_pinned_bits.py, per instruction set",
        "written_by": f"rnnfast {rnnfast.__version__}",
        "digests": all_digests(),
    }, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}")
