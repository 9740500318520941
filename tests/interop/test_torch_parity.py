"""rnnfast's layers against PyTorch's torch.nn.RNN/LSTM/GRU: outputs, final states and every gradient.

The comparison itself lives in benchmarks/torch_parity.py (which prints the same figures as a table),
so the tests and the table measure the same thing. Skipped where torch is not installed.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

_path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "torch_parity.py"
_spec = importlib.util.spec_from_file_location("rnnfast_torch_parity", _path)
parity = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = parity  # NamedTuple/dataclass machinery looks the module up by name
_spec.loader.exec_module(parity)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("dtype", parity.DTYPES)
@pytest.mark.parametrize("cfg", parity.CONFIGS, ids=lambda c: c.label())
@pytest.mark.parametrize("mode", parity.MODES)
def test_parity_with_torch(backend, mode, cfg, dtype):
    pairs = parity.parity_case(mode, cfg, dtype, seed=0)
    names = {p.name for p in pairs}
    assert {"out", "h_n", "grad x", "grad h0"} <= names
    n_params = cfg.num_layers * (2 if cfg.bidirectional else 1) * (4 if cfg.bias else 2)
    assert sum(n.startswith("grad weight") or n.startswith("grad bias") for n in names) == n_params
    bad = []
    for p in pairs:
        assert p.ours.dtype == np.dtype(dtype), f"{mode} {cfg.label()} {dtype}: {p.name} has dtype {p.ours.dtype}"
        if not parity.within_tolerance(p, dtype):
            err, rel = parity.max_diffs(p)
            bad.append(f"{p.name}: max abs diff {err:.3g}, relative to max|torch| {rel:.3g}")
    assert not bad, (f"{mode} {cfg.label()} {dtype} ({backend} ops) differs from torch beyond tolerance "
                     f"{parity.TOLERANCES[dtype]:g}:\n  " + "\n  ".join(bad))


@pytest.mark.parametrize("mode", parity.MODES)
def test_torch_state_dict_loads_unchanged(mode):
    """A torch module's state_dict, converted with .numpy(), loads and round-trips exactly."""
    cfg = parity.Config(2, bidirectional=True)
    mod = parity._torch_module(mode, cfg, "float32", 0, 5, 6)
    ours = parity._our_layer(mode, cfg, "float32", 5, 6)
    sd = {k: v.detach().numpy() for k, v in mod.state_dict().items()}
    ours.load_state_dict(sd)
    assert list(ours.state_dict()) == list(sd)
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    # and torch loads ours back
    mod.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def test_parity_larger_sizes():
    """One bigger case per cell, with sizes off any vector width, through the native ops."""
    for mode in parity.MODES:
        cfg = parity.Config(2, bidirectional=True, batch_first=True)
        for dtype in parity.DTYPES:
            pairs = parity.parity_case(mode, cfg, dtype, seed=1, sizes=dict(T=13, B=5, I=19, H=37))
            bad = [p.name for p in pairs if not parity.within_tolerance(p, dtype)]
            assert not bad, f"{mode} {cfg.label()} {dtype} T=13 B=5 I=19 H=37: {bad} differ from torch"
