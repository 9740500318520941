"""``rnnfast bench`` at toy sizes: the command runs, its JSON has the documented structure, every installed
peer agrees with rnnfast on identical weights, and bad options are usage errors; the row counter and time left
on stderr, every time's spread (interquartile range) in the tables and as error bars in the chart, and --plot's
check for matplotlib before the run. Timing is not checked. (The reduced-precision implementations:
test_bench_reduced.py.)"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # as the other tests: before anything imports keras

import rnnfast  # noqa: E402
from rnnfast import cli  # noqa: E402
from rnnfast._bench import command_line, measure, peers, progress, reduced, report, scenarios  # noqa: E402

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
            # The spread of the samples, in the unit of "time" (the median: between the quartiles).
            assert r["samples"] == result["repeat"]
            assert r["time_min"] <= r["time_q1"] <= r["time_q3"] <= r["time_max"]
            assert r["time_q1"] <= r["time"] * (1 + 1e-9) and r["time"] <= r["time_q3"] * (1 + 1e-9)
            assert r["spread"] == pytest.approx(r["time_max"] - r["time_min"])
            if r["precision"] == "float32":
                assert r["agrees"] and r["max_rel_diff"] <= measure.AGREEMENT_TOLERANCE, (row, key)
                assert 0 <= r["max_abs_diff"] < 1e-4
            else:  # rounded weights: an error, but a small one
                assert r["agrees"] and r["max_rel_diff"] <= reduced.TOLERANCE, (row, key)
                assert 0 < r["max_abs_diff"] < 0.05
    assert [o["cell"] for o in result["overhead"]] == list(scenarios.CELLS)
    for o in result["overhead"]:
        assert o["wrapper_us"] == pytest.approx(o["step_us"] - o["run_us"])
    # Every row and every streaming-overhead measurement was counted and timed.
    assert len(result["row_seconds"]) == len(result["rows"]) + len(result["overhead"])
    assert all(t > 0 for t in result["row_seconds"])
    assert result["run_seconds"] >= sum(result["row_seconds"])


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
    # n/a where a peer has no such operator (no peer trains in reduced precision), which needs such a peer
    # installed: with none (NumPy's reference alone, as in a venv with just the test extra) no cell says it.
    columns = set(report._peer_keys(result))
    assert ("n/a" in table) == any(set(r["not_applicable"]) & columns for r in result["rows"])
    assert "Streaming call overhead" in report.summary(result)
    assert "[their interquartile range]" in report.summary(result)
    # Each time with its samples' interquartile range, for rnnfast and every peer.
    for row, line in zip(result["rows"], lines[2:]):
        for r in row["results"].values():
            if r["precision"] == "float32":
                iqr = f"[{report._fmt_time(r['time_q1'])}-{report._fmt_time(r['time_q3'])}]"
                assert f"{report._fmt_time(r['time'])} {iqr}" in line, (iqr, line)


def test_reduced_table_shows_spreads(tiny_run):
    _, result = tiny_run
    table = report.reduced_table(result)
    if not table:
        pytest.skip("no reduced precision in this run")
    body = table.splitlines()[2:]
    assert body and all(line.count("[") >= 2 for line in body)  # the fastest peer's and rnnfast's at least


def test_a_result_without_quartiles_still_reports():
    """A JSON written before the quartiles were (as --json files of earlier runs) gives medians alone."""
    r = {"time": 1.5, "speedup": 2.0}
    assert report._fmt_timed(r) == "1.50"
    assert report.speedup_range(r, {"time": 0.75}) == (2.0, 2.0)


def test_speedup_range_spans_the_quartiles():
    ours = {"time": 1.0, "time_q1": 0.9, "time_q3": 1.2}
    peer = {"time": 3.0, "time_q1": 2.7, "time_q3": 3.6, "speedup": 3.0}
    low, high = report.speedup_range(peer, ours)
    assert low == pytest.approx(2.7 / 1.2) and high == pytest.approx(3.6 / 0.9)
    assert low <= peer["speedup"] <= high


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
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code = _exit_code(TINY + ["--peers", "numpy", "--scenarios", "edge", "--cells", "lstm", "--plot", str(path)])
        assert code == 2
        assert "rnnfast[plot]" in capsys.readouterr().err and not path.exists()
        return
    code = cli.main(TINY + ["--peers", "numpy", "--scenarios", "edge", "--cells", "lstm", "--plot", str(path)])
    assert code == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_draws_error_bars(tiny_run, tmp_path, monkeypatch):
    """Every peer's bars carry error bars whose ends are the speed-up's range over the quartiles."""
    pytest.importorskip("matplotlib")
    import matplotlib.axes

    _, result = tiny_run
    calls = []
    real = matplotlib.axes.Axes.barh

    def barh(self, y, width, *args, **kwargs):
        calls.append((list(width), kwargs.get("xerr"), kwargs.get("label")))
        return real(self, y, width, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "barh", barh)
    assert report.plot(result, str(tmp_path / "chart.png"))
    peer_keys = report._peer_keys(result)
    assert len(calls) == len(peer_keys)
    for key, (widths, xerr, label) in zip(peer_keys, calls):
        assert xerr is not None and len(xerr) == 2, label
        for row, width, below, above in zip(result["rows"], widths, xerr[0], xerr[1]):
            r = row["results"].get(key)
            if r is None:
                assert np.isnan(width)
                continue
            low, high = report.speedup_range(r, row["results"]["rnnfast"])
            assert width == r["speedup"]
            assert width - below == pytest.approx(min(low, width)) and width + above == pytest.approx(max(high, width))


def test_plot_without_matplotlib_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(command_line, "matplotlib_missing", lambda: "No module named 'matplotlib'")

    def no_run(*args, **kwargs):
        raise AssertionError("the bench ran although --plot cannot draw")

    monkeypatch.setattr(command_line, "run", no_run)
    assert _exit_code(TINY + ["--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "pip install 'rnnfast[plot]'" in err
    assert not (tmp_path / "x.png").exists()
    # With a parser (python -m rnnfast._bench): a usage error, exit 2, naming the extra too.
    with pytest.raises(SystemExit) as exc:
        command_line.main(TINY[1:] + ["--plot", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    assert "rnnfast[plot]" in capsys.readouterr().err


def _exit_code(argv) -> int:
    """The exit code of ``rnnfast <argv>``, whether the command returns it or exits (a usage error)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def test_plot_extra_is_declared():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not a source checkout")
    assert re.search(r'^plot = \["matplotlib[^"]*"\]$', pyproject.read_text(), re.M)


def test_progress_counts_rows_on_stderr(capsys):
    code = cli.main(TINY + ["--peers", "numpy", "--scenarios", "edge,stream", "--cells", "lstm,gru"])
    assert code == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("[")]
    # 2 scenarios x 2 cells, then the streaming overhead of each cell.
    assert [line[:5] for line in lines] == [f"[{k}/6]" for k in range(1, 7)]
    assert lines[0].startswith("[1/6] edge   LSTM     T=7 B=1 I=5 H=7") and lines[0].endswith("ETA ?")
    assert all(re.search(r"elapsed \d+s  ETA \d+s$", line) for line in lines[1:]), lines
    assert "stream LSTM     per-call overhead" in lines[4]
    assert "ETA" not in captured.out  # the results alone on stdout


def test_progress_eta_is_the_mean_row_time_times_the_rows_left():
    now = [100.0]
    lines = []
    p = progress.RowProgress(4, lines.append, clock=lambda: now[0])
    now[0] = 101.0  # the run's start (peers, sgemm) before the first row
    p.start("a")
    assert lines[-1] == "[1/4] a   elapsed 1s  ETA ?"
    now[0] += 20.0
    p.start("b")  # one row of 20 s done, this one and two more to run
    assert lines[-1] == "[2/4] b   elapsed 21s  ETA 1m00s"
    now[0] += 40.0
    p.start("c")  # mean 30 s, two rows left
    assert lines[-1] == "[3/4] c   elapsed 1m01s  ETA 1m00s"
    assert p.eta() == pytest.approx(60.0)
    now[0] += 30.0
    assert p.finish() == pytest.approx(91.0)
    assert p.row_seconds == [20.0, 40.0, 30.0] and p.done == 3
    wide = progress.RowProgress(31, lines.append, clock=lambda: 0.0)
    assert wide.start("x").startswith("[ 1/31] x")


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (0.4, "0s"), (44.6, "45s"), (80, "1m20s"), (3599.4, "59m59s"),
                                           (3900, "1h05m"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_help_says_how_long_a_run_takes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--quick took" in text and "minutes" in text


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
