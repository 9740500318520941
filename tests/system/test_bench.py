"""``rnnfast bench`` at toy sizes: the command runs, its JSON has the documented structure, every installed
peer agrees with rnnfast on identical weights, and bad options are usage errors. Timing is not checked.
(The reduced-precision implementations: test_bench_reduced.py.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # as the other tests: before anything imports keras

import rnnfast  # noqa: E402
from rnnfast import cli  # noqa: E402
from rnnfast._bench import measure, peers, reduced, report, scenarios  # noqa: E402

TINY = ["bench", "--tiny", "--quick", "--repeat", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    threads = rnnfast.get_num_threads()
    code = cli.main(TINY + ["--json", str(path)])
    assert rnnfast.get_num_threads() == threads, "bench must restore the thread count"
    with open(path) as f:
        return code, json.load(f)


def test_runs_and_agrees(tiny_run):
    code, result = tiny_run
    assert code == 0
    assert result["agree"] is True
    assert result["threads"] == 1
    assert result["sgemm_peak"]["gflops"] > 0
    assert set(result["peers"]) == set(peers.PEERS)
    assert result["peers"]["numpy"]["available"]
    assert result["precisions"] == list(reduced.PRECISIONS)
    available = list(result["implementations"])
    assert available[0] == "rnnfast" and set(available) <= set(peers.IMPLEMENTATIONS)
    for key, impl in result["implementations"].items():
        framework = peers.IMPLEMENTATIONS[key].framework
        assert impl["precision"] == peers.IMPLEMENTATIONS[key].precision
        assert framework == "rnnfast" or result["peers"][framework]["available"]
    assert len(result["rows"]) == len(scenarios.SCENARIOS) * len(scenarios.CELLS)
    seen = {(r["scenario"], r["cell"]) for r in result["rows"]}
    assert seen == {(s, c) for s in scenarios.SCENARIOS for c in scenarios.CELLS}
    for row in result["rows"]:
        scenario = scenarios.TINY_SCENARIOS[row["scenario"]]
        assert (row["T"], row["B"], row["I"], row["H"]) == (scenario.T, scenario.B, scenario.I, scenario.H)
        assert row["unit"] == ("us/step" if scenario.kind == "stream" else "ms")
        assert row["flops"] == scenarios.flops(scenario, row["cell"])
        assert "rnnfast" in row["results"]
        ours = row["results"]["rnnfast"]
        assert ours["speedup"] == 1.0 and ours["max_abs_diff"] == 0.0
        for key in available:  # every implementation of the run ran the row, or says why not
            assert (key in row["results"]) != (key in row["not_measured"]), (row["scenario"], row["cell"], key)
        assert set(row["not_applicable"]) <= set(row["not_measured"])
        assert "numpy" in row["results"]
        for key, r in row["results"].items():
            assert r["seconds"] > 0 and r["gflops"] > 0 and r["peak_fraction"] > 0
            assert r["time"] == pytest.approx(r["seconds"] * (1e6 if scenario.kind == "stream" else 1e3))
            assert r["speedup"] == pytest.approx(r["seconds"] / ours["seconds"])
            assert r["precision"] == peers.IMPLEMENTATIONS[key].precision
            if r["precision"] == "float32":
                assert r["agrees"] and r["max_rel_diff"] <= measure.AGREEMENT_TOLERANCE, (row, key)
                assert 0 <= r["max_abs_diff"] < 1e-4
            else:  # rounded weights: an error, but a small one
                assert r["agrees"] and r["max_rel_diff"] <= reduced.TOLERANCE, (row, key)
                assert 0 < r["max_abs_diff"] < 0.05
    assert [o["cell"] for o in result["overhead"]] == list(scenarios.CELLS)
    for o in result["overhead"]:
        assert o["wrapper_us"] == pytest.approx(o["step_us"] - o["run_us"])


def test_peers_that_are_installed_are_measured(tiny_run):
    _, result = tiny_run
    rows = {(r["scenario"], r["cell"]): r for r in result["rows"]}
    for module, key in (("torch", "torch"), ("onnxruntime", "onnxruntime")):
        try:
            __import__(module)
        except ImportError:
            continue
        assert result["peers"][key]["available"]
        assert key in rows[("edge", "lstm")]["results"]
        assert key in rows[("stream", "gru")]["results"]
    if result["peers"]["torch"]["available"]:
        assert "torch" in rows[("train", "rnn_tanh")]["results"]


def test_table_lists_every_row(tiny_run):
    _, result = tiny_run
    table = report.markdown_table(result)
    lines = table.splitlines()
    assert len(lines) == 2 + len(result["rows"])
    assert lines[0].startswith("| scenario | cell | rnnfast | GFLOP/s | % of sgemm peak |")
    assert "n/m" in table or all(len(r["not_measured"]) == len(r["not_applicable"]) for r in result["rows"])
    assert "n/a" in table  # no peer trains in reduced precision
    assert "Streaming call overhead" in report.summary(result)


def test_disagreement_is_reported(monkeypatch, capsys):
    real = peers.numpy_impl

    def wrong(p):
        impl = real(p)
        impl.check = lambda: [a + 1.0 for a in real(p).check()]
        return impl

    monkeypatch.setattr(peers, "numpy_impl", wrong)
    code = cli.main(TINY + ["--peers", "numpy", "--scenarios", "edge", "--cells", "gru"])
    assert code == 1
    assert "DISAGREES" in capsys.readouterr().out


def test_plot(tmp_path, capsys):
    path = tmp_path / "bench.png"
    code = cli.main(TINY + ["--peers", "numpy", "--scenarios", "edge", "--cells", "lstm", "--plot", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out and not path.exists()
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, name", [
    (["--cells", "bogus"], "--cells"),
    (["--cells", ","], "--cells"),
    (["--scenarios", "huge"], "--scenarios"),
    (["--peers", "tensorflow"], "--peers"),
    (["--precision", "int4"], "--precision"),
    (["--precision", ","], "--precision"),
    (["--threads", "0"], "--threads"),
    (["--threads", "x"], "--threads"),
    (["--repeat", "0"], "--repeat"),
    (["--seed", "-1"], "--seed"),
    (["--quick=1"], "--quick"),
    (["--json", "/nonexistent-folder/x.json"], "--json"),
    (["--plot", "/nonexistent-folder/x.png"], "--plot"),
])
def test_bad_options_are_usage_errors(argv, name, capsys):
    try:
        code = cli.main(["bench"] + argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert name in capsys.readouterr().err


def test_compare_and_flops():
    a = [np.ones((2, 3)), np.full(4, 2.0)]
    assert measure.compare(a, a) == (0.0, 0.0)
    diff, rel = measure.compare([a[0] + 0.5, a[1]], a)
    assert diff == 0.5 and rel == 0.5  # relative to the magnitude of each result: 0.5 / 1
    with pytest.raises(ValueError):
        measure.compare([a[0]], a)
    s = scenarios.SCENARIOS["edge"]
    assert scenarios.flops(s, "lstm") == 2 * 100 * 1 * 4 * 128 * (64 + 128)
    assert scenarios.flops(scenarios.SCENARIOS["train"], "gru") == 3 * 2 * 50 * 32 * 3 * 256 * (128 + 256)
    assert scenarios.flops(scenarios.SCENARIOS["stream"], "rnn_tanh") == 2 * 1 * 1 * 128 * (64 + 128)
