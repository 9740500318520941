"""What the interop tests share: the comparison with a framework's numbers, rnnfast models with weights large
enough to leave the gates' linear range, random states, and running a PyTorch module.

Outputs and final states are compared with max|ours - theirs| <= tol * max(max|theirs|, 1), tol 1e-5 in float32
and 1e-10 in float64 (the tolerances of test_torch_parity). Run the tests with ``-s`` to print the largest
difference seen per framework (tests/interop/conftest.py).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

import rnnfast

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
# (framework, dtype) -> largest relative difference observed; printed per module by tests/interop/conftest.py
MAX_DIFF: dict = defaultdict(float)


def assert_close(framework: str, name: str, ours, theirs, dtype, tol_dtype=None) -> None:
    """max|ours - theirs| within the tolerance of ``tol_dtype`` (default ``dtype``) relative to
    max(max|theirs|, 1); records the ratio under (framework, dtype)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{framework} {name}: shape {ours.shape} != {theirs.shape}"
    dtype = np.dtype(dtype)
    scale = max(float(np.max(np.abs(theirs), initial=0.0)), 1.0)
    err = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)), initial=0.0)) / scale
    key = (framework, dtype.name)
    MAX_DIFF[key] = max(MAX_DIFF[key], err)
    tol = TOL[np.dtype(tol_dtype or dtype)]
    assert err <= tol, f"{framework} {name} ({dtype}): max difference {err:.3g} x scale {scale:.3g} > {tol:g}"


def make_model(cell: str, I: int = 3, H: int = 5, L: int = 1, D: int = 1, bf: bool = False, bias: bool = True,
               dtype="float32", seed: int = 0):
    cls = {"lstm": rnnfast.LSTM, "gru": rnnfast.GRU}.get(cell, rnnfast.RNN)
    kw = {"nonlinearity": cell[4:]} if cell.startswith("rnn_") else {}
    m = cls(I, H, L, bias=bias, batch_first=bf, bidirectional=D == 2, dtype=dtype, seed=seed, **kw)
    # Larger weights than the default init, so that the gates leave their linear range.
    rng = np.random.default_rng(seed + 100)
    m.load_state_dict({k: rng.uniform(-0.8, 0.8, v.shape) for k, v in m.state_dict().items()})
    return m


def random_state(cell, L, D, B, H, dtype, rng):
    h = rng.standard_normal((L * D, B, H)).astype(dtype)
    if cell == "lstm":
        return h, rng.standard_normal((L * D, B, H)).astype(dtype)
    return h


def states_of(cell, state):
    return list(state) if cell == "lstm" else [state]


# ----------------------------------------------------------------------------------------------------
# PyTorch: the torch tests and the ONNX tests of torch.onnx.export
# ----------------------------------------------------------------------------------------------------

def torch_or_skip():
    """torch, or the test is skipped where it is not installed."""
    return pytest.importorskip("torch")


def torch_module(torch, cell, I, H, L, D, bf, bias, dtype, seed=0):
    torch.manual_seed(seed)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    kw = dict(num_layers=L, bias=bias, batch_first=bf, bidirectional=D == 2, dtype=tdt)
    if cell.startswith("rnn_"):
        return torch.nn.RNN(I, H, nonlinearity=cell[4:], **kw)
    return (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, **kw)


def torch_run(torch, module, cell, x, state):
    with torch.no_grad():
        if state is None:
            out, st = module(torch.from_numpy(x))
        elif cell == "lstm":
            out, st = module(torch.from_numpy(x), tuple(torch.from_numpy(s) for s in state))
        else:
            out, st = module(torch.from_numpy(x), torch.from_numpy(state))
    st = [s.numpy() for s in st] if cell == "lstm" else [st.numpy()]
    return out.numpy(), st
