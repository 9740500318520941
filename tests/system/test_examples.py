"""Every example learns at a small setting; ``rnnfast demo`` finds and runs them; progress and plotting.

Each example runs from its ``run(...)`` with a setting small enough for CI (the whole file takes well
under a minute and a half on two cores) and the test asserts that it learned: a stated accuracy on data
it never saw, or a loss well below where it started.
"""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnfast
from rnnfast import demos
from rnnfast.examples import command_line
from rnnfast.cli import main as cli_main
from rnnfast.examples import addition, char_rnn, one_to_one, parity, spell_number, tagging, timeseries

REPO = Path(__file__).resolve().parents[2]  # tests/system/ -> the repository


# ---------------------------------------------------------------------------------------------------------
# Each example learns
# ---------------------------------------------------------------------------------------------------------


def test_one_to_one_classifies_points():
    r = one_to_one.run(epochs=8, verbose=False)
    assert r["accuracy"] >= 0.95
    assert r["losses"][-1] < 0.3 * r["losses"][0]


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_char_model_learns_and_generates(cell):
    r = char_rnn.run(cell=cell, text_chars=3000, seq_length=10, epochs=6, lr=0.01, generate=40, verbose=False)
    # From chance (ln V, about 4) to well below: the model has learned which characters follow which.
    assert r["losses"][-1] < 0.65 * r["chance_loss"]
    assert r["losses"][-1] < 0.8 * r["losses"][0]
    assert r["accuracy"] > 0.35
    seed = "Recurrent neural networks "
    assert r["sample"].startswith(seed) and len(r["sample"]) == len(seed) + 40


def test_char_model_generates_from_the_most_likely_character():
    r = char_rnn.run(text_chars=600, seq_length=5, epochs=1, generate=10, temperature=0, verbose=False)
    model = r["model"]
    again = model.generate("Recurrent neural networks ", 10, 0, np.random.default_rng(1))
    assert again == r["sample"]  # temperature 0 is deterministic


def test_parity_of_variable_length_strings():
    r = parity.run(length=10, epochs=4, verbose=False)
    assert r["accuracy"] >= 0.98


def test_spell_number_one_to_many():
    r = spell_number.run(epochs=80, verbose=False)
    assert r["accuracy"] >= 0.9
    assert r["losses"][-1] < 0.05 * r["losses"][0]


def test_tagging_with_a_stacked_bidirectional_gru():
    r = tagging.run(epochs=3, batches_per_epoch=40, verbose=False)
    assert r["accuracy"] >= 0.95


def test_addition_encoder_decoder():
    r = addition.run(epochs=5, verbose=False)
    assert r["accuracy"] >= 0.5  # exact answers to unseen questions; the default (20 epochs) reaches 99%
    assert r["losses"][-1] < 0.35 * r["losses"][0]


def test_addition_stepper_decoding_matches_whole_sequence_decoding():
    """The stepper-driven greedy decoder agrees with re-running the decoder layer on the prefix."""
    r = addition.run(epochs=1, train_size=500, test_size=50, hidden=32, verbose=False)
    model = r["model"]
    pairs = np.array([[12, 7], [99, 99], [0, 5]])
    x, lengths = addition.encode_questions(pairs, 2)
    tokens = model.answer(x, lengths, 4)
    _, state = model.encoder(x, lengths=lengths)
    token = np.full(3, addition.START)
    for t in range(4):
        out, state = model.decoder(rnnfast.nn.one_hot(token, 12)[None], state)
        token = model.head(out[0]).argmax(-1)
        done = (tokens[:t] == addition.END).any(axis=0) if t else np.zeros(3, bool)
        np.testing.assert_array_equal(tokens[t][~done], token[~done])


def test_timeseries_forecasting_and_anomaly_detection():
    r = timeseries.run(epochs=30, verbose=False)
    assert r["rmse"] < 0.15                       # the noise alone is 0.1
    assert r["rmse"] < 0.7 * r["naive_rmse"]
    assert r["recall"] >= 0.75
    assert r["false_alarms"] <= 2


# ---------------------------------------------------------------------------------------------------------
# The demo command and the scripts
# ---------------------------------------------------------------------------------------------------------


def test_demo_lists_every_example(capsys):
    assert cli_main(["demo"]) == 0
    listed = capsys.readouterr().out
    for name in ["one_to_one", "char_rnn", "char_lstm", "parity", "spell_number", "tagging", "addition",
                 "timeseries"]:
        assert name in listed


def test_every_demo_has_main_run_and_a_script():
    for name in demos.DEMOS:
        mod = demos.module(name)
        assert callable(mod.main) and callable(mod.run), name
        if (REPO / "examples").is_dir():
            assert (REPO / "examples" / f"{name}.py").is_file(), name


def test_demo_runs_one_and_refuses_unknown_names(capsys):
    assert cli_main(["demo", "parity", "--length", "6", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "accuracy" in out and "time:" in out
    assert cli_main(["demo", "no-such-demo"]) == 2
    assert "the demos are" in capsys.readouterr().err
    assert demos.get("char-lstm").argv == ("--cell", "lstm")
    with pytest.raises(SystemExit):
        cli_main(["demo", "one_to_one", "--help"])
    assert "rnnfast demo one_to_one" in capsys.readouterr().out


def test_check_is_still_the_default(capsys):
    assert cli_main(["--no-timing"]) == 0
    assert "self-check passed" in capsys.readouterr().out


@pytest.mark.skipif(not (REPO / "examples").is_dir(), reason="no examples/ directory (not a source checkout)")
def test_example_script_runs():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(Path(rnnfast.__file__).parents[1]),
                                                                      os.environ.get("PYTHONPATH")] if p))
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "one_to_one.py"), "--epochs", "2", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy on 1000 unseen points" in proc.stdout


def test_shipped_text_is_package_data():
    text = char_rnn.load_text()
    assert text.startswith("What is Recurrent Neural Networks?") and len(text) > 10000


# ---------------------------------------------------------------------------------------------------------
# The loss-curve plot
# ---------------------------------------------------------------------------------------------------------


def test_plot_says_when_matplotlib_is_missing(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = io.StringIO()
    path = tmp_path / "loss.png"
    assert command_line.plot_losses([1.0, 0.5], str(path), "t", stream=out) is False
    assert "matplotlib is not installed" in out.getvalue() and not path.exists()


def test_plot_saves_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = io.StringIO()
    path = tmp_path / "loss.png"
    assert command_line.plot_losses([1.0, 0.5, 0.25], str(path), "t", stream=out) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "saved the loss curve" in out.getvalue()


def test_tagging_batches_are_tagged_as_defined():
    x, lengths, tags, valid = tagging.make_batch(np.random.default_rng(0), 50, 1, 12)
    digits = x.argmax(-1)
    for b, n in enumerate(lengths):
        assert tags[:n, b].tolist() == tagging.tag(digits[:n, b].tolist())
        assert valid[:, b].sum() == n and not x[n:, b].any()
    assert tagging.tag([1, 5, 2, 2, 0, 3]) == [1, 0, 2, 2, 1, 0]
