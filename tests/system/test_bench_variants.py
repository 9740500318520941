"""``rnnfast bench`` on the cell variants (``--cells variants``), at toy sizes: the rows run in every scenario, each
installed peer that computes the variant (ONNX Runtime's GRU with linear_before_reset=0 and LSTM with peepholes
and clip, Keras's GRU with reset_after=False, PyTorch's LSTM with proj_size) agrees with rnnfast on identical
weights and the others say why not, the FLOP counts, a peer computing another cell is flagged, and the option.
Timing is not checked."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # as the other tests: before anything imports keras

from rnnfast import cli, reference  # noqa: E402
from rnnfast._bench import measure, peers, report, scenarios, variants  # noqa: E402
from rnnfast._bench.command_line import add_arguments  # noqa: E402

TINY = ["bench", "--tiny", "--quick", "--repeat", "1", "--threads", "1"]
VARIANTS = list(scenarios.VARIANT_CELLS)


def _installed(*modules) -> bool:
    try:
        for m in modules:
            __import__(m)
    except Exception:
        return False
    return True


HAVE_ORT = _installed("onnxruntime", "onnx")
HAVE_TORCH = _installed("torch")
HAVE_KERAS = _installed("keras")
HAVE_REFERENCE = hasattr(reference, "variant_forward") and hasattr(reference, "variant_backward")


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "variants.json"
    code = cli.main(TINY + ["--cells", "variants", "--precision", "float32", "--json", str(path)])
    with open(path) as f:
        return code, json.load(f)


def _problem(name, cell, seed=3):
    return scenarios.make_problem(scenarios.TINY_SCENARIOS[name], cell, seed=seed)


def test_variant_rows_run_agree_and_report(variant_run):
    code, result = variant_run
    assert code == 0 and result["agree"] is True
    assert [(r["scenario"], r["cell"]) for r in result["rows"]] == \
        [(s, c) for s in scenarios.SCENARIOS for c in VARIANTS]
    assert result["overhead"] == []  # the variants have no stepper
    keys = list(result["implementations"])
    for row in result["rows"]:
        scenario = scenarios.TINY_SCENARIOS[row["scenario"]]
        options = scenarios.VARIANT_CELLS[row["cell"]].cell_options(scenario.H)
        assert row["flops"] == scenarios.flops(scenario, row["cell"])
        assert row["variant"]["family"] == options.family and row["variant"]["proj_size"] == options.proj_size
        ours = row["results"]["rnnfast"]
        assert ours["speedup"] == 1.0 and ours["max_abs_diff"] == 0.0 and ours["gflops"] > 0
        for key in keys:  # every implementation of the run ran the row, or says why not
            assert (key in row["results"]) != (key in row["not_measured"]), (row["scenario"], row["cell"], key)
        for key, r in row["results"].items():
            assert r["agrees"] and r["max_rel_diff"] <= measure.AGREEMENT_TOLERANCE, (row["cell"], key)
            assert r["speedup"] == pytest.approx(r["seconds"] / ours["seconds"])
        peer_keys = [k for k in row["results"] if k != "rnnfast"]
        if peer_keys:
            best = row["fastest_peer"]
            assert best in peer_keys and all(row["results"][best]["seconds"] <= row["results"][k]["seconds"]
                                             for k in peer_keys)
            assert ours["vs_fastest_peer"] == pytest.approx(row["results"][best]["seconds"] / ours["seconds"])
        else:
            assert row["fastest_peer"] is None and ours["vs_fastest_peer"] is None
    table = report.markdown_table(result).splitlines()
    assert len(table) == 2 + len(result["rows"])
    for label in ("GRU reset before", "LSTM proj H/2", "LSTM peepholes", "LSTM clip 1"):
        assert sum(label in line for line in table) == len(scenarios.SCENARIOS)
    json.dumps(result, allow_nan=False)


def test_peers_that_compute_the_variant_are_measured(variant_run):
    _, result = variant_run
    rows = {(r["scenario"], r["cell"]): r for r in result["rows"]}
    sequence = ["edge", "small", "batch", "large"]
    if HAVE_TORCH:  # only the projection: in every scenario, training included
        for name in scenarios.SCENARIOS:
            assert "torch" in rows[(name, "lstm_proj")]["results"]
            for cell in ("gru_reset_before", "lstm_peepholes", "lstm_clip"):
                assert "torch" in rows[(name, cell)]["not_applicable"]
    if HAVE_ORT:  # everything but the projection, inference and streaming
        for name in ["stream"] + sequence:
            for cell in ("gru_reset_before", "lstm_peepholes", "lstm_clip"):
                assert "onnxruntime" in rows[(name, cell)]["results"], (name, cell)
            assert "onnxruntime" in rows[(name, "lstm_proj")]["not_applicable"]
        assert rows[("train", "gru_reset_before")]["not_measured"]["onnxruntime"] == "inference only"
    if HAVE_KERAS:  # the GRU reset before, sequence inference
        for name in sequence:
            assert "keras" in rows[(name, "gru_reset_before")]["results"]
            assert "keras" in rows[(name, "lstm_proj")]["not_applicable"]
    for row in result["rows"]:
        if HAVE_REFERENCE:
            assert "numpy" in row["results"]
        else:
            assert row["not_measured"]["numpy"] == "rnnfast.reference.variant_forward is not in this build"


def test_flops_of_the_variants():
    """The projection's h is P wide (W_hh is (4H, P)) and adds m @ W_hr^T, 2*P*H per step and sequence."""
    edge, train, stream = (scenarios.SCENARIOS[k] for k in ("edge", "train", "stream"))
    assert scenarios.flops(edge, "lstm_proj") == 2 * 100 * 1 * (4 * 128 * (64 + 64) + 64 * 128)
    assert scenarios.flops(train, "lstm_proj") == 3 * 2 * 50 * 32 * (4 * 256 * (128 + 128) + 128 * 256)
    assert scenarios.flops(stream, "lstm_proj") == 2 * 1 * 1 * (4 * 128 * (64 + 64) + 64 * 128)
    assert scenarios.flops(edge, "gru_reset_before") == scenarios.flops(edge, "gru")
    assert scenarios.flops(edge, "lstm_peepholes") == scenarios.flops(edge, "lstm")


@pytest.mark.parametrize("name", ["stream", "edge", "train"])
@pytest.mark.parametrize("cell", VARIANTS)
def test_variant_problem(name, cell):
    """The row's weights have the variant's shapes; the variant computes something else than PyTorch's cell on the
    same weights (the NumPy reference of that cell), beyond the tolerance of the check: the rows' agreement is
    not one any cell would pass."""
    p = _problem(name, cell)
    o, w, (T, B, I), H = p.options, p.params, p.x.shape, p.scenario.H
    G = 4 if o.family == "lstm" else 3
    R = o.proj_size or H
    assert w["weight_ih_l0"].shape == (G * H, I) and w["weight_hh_l0"].shape == (G * H, R)
    assert ("weight_hr_l0" in w) == (o.proj_size > 0) and ("weight_ch_l0" in w) == o.peepholes
    assert all(a.dtype == np.float32 for a in w.values())
    assert p.d_out is None if name != "train" else p.d_out.shape == (T, B, R)
    if o.proj_size:
        assert 0 < o.proj_size == H // 2
        return
    assert dataclasses.replace(o, reset_after=True, peepholes=False, clip=None).is_default
    out = variants.rnnfast_variant_impl(p).check()[0]  # every kind of row: the output of every step first
    x, w_ih, w_hh, b_ih, b_hh = p.x, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]
    pytorch_cell = reference.gru(x, None, w_ih, w_hh, b_ih, b_hh)[0] if o.family == "gru" else \
        reference.lstm(x, None, None, w_ih, w_hh, b_ih, b_hh)[0]
    assert measure.compare([pytorch_cell], [out])[1] > 100 * measure.AGREEMENT_TOLERANCE


@pytest.mark.parametrize("cell", VARIANTS)
def test_streaming_carries_the_state(cell):
    """rnnfast's streaming row (one call of the op per step) gives the sequence's outputs, from the zero state at
    every check however often the timed function ran."""
    p = _problem("stream", cell)
    impl = variants.rnnfast_variant_impl(p)
    want = variants.rnnfast_variant_impl(dataclasses.replace(p, scenario=scenarios.TINY_SCENARIOS["edge"])).check()
    first = impl.check()
    impl.fn()
    impl.fn()
    again = impl.check()
    assert first[0].shape == want[0].shape == (p.x.shape[0], p.scenario.B, p.state_size)
    np.testing.assert_allclose(first[0], want[0], rtol=0, atol=1e-6)
    assert measure.compare(again, first) == (0.0, 0.0)
    assert impl.steps == p.x.shape[0]


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
def test_onnx_model():
    """The ONNX node: linear_before_reset 0 for the GRU reset before, the peepholes in ONNX's order i, o, f, the
    clip attribute; no projection."""
    from onnx import numpy_helper

    def node_and_inits(cell):
        p = _problem("edge", cell)
        proto = variants.onnx_model(p.options, p.params)
        node = [n for n in proto.graph.node if n.op_type in ("GRU", "LSTM")][0]
        attrs = {a.name: a for a in node.attribute}
        return p, attrs, {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}

    _, attrs, _ = node_and_inits("gru_reset_before")
    assert attrs["linear_before_reset"].i == 0
    p, attrs, inits = node_and_inits("lstm_peepholes")
    p_i, p_f, p_o = np.split(p.params["weight_ch_l0"], 3)
    np.testing.assert_array_equal(inits["P"], np.concatenate([p_i, p_o, p_f])[None])
    assert "clip" not in attrs
    _, attrs, _ = node_and_inits("lstm_clip")
    assert attrs["clip"].f == 1.0
    p = _problem("edge", "lstm_proj")
    with pytest.raises(ValueError, match="projection"):
        variants.onnx_model(p.options, p.params)


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
def test_a_peer_computing_another_cell_is_flagged(monkeypatch, capsys):
    """ONNX Runtime given the GRU with the reset gate after the product (PyTorch's): the row disagrees and the
    command exits 1."""
    real = variants.onnx_model
    monkeypatch.setattr(variants, "onnx_model",
                        lambda options, params: real(dataclasses.replace(options, reset_after=True), params))
    code = cli.main(TINY + ["--peers", "onnxruntime", "--scenarios", "edge", "--cells", "gru_reset_before"])
    assert code == 1
    assert "DISAGREES" in capsys.readouterr().out


def test_reduced_precisions_are_not_timed_for_variants():
    """A variant's row says why it has no reduced precision (once in the summary) and is left out of the
    reduced-precision tables, which keep PyTorch's cells."""
    result = measure.run(["lstm", "gru_reset_before"], ["edge"], peers=[], threads=1, repeat=1, quick=True,
                         tiny=True, precisions=["float32", "int8"], write=lambda s: None)
    lstm, row = result["rows"]
    assert result["agree"] is True and set(row["results"]) == {"rnnfast"}
    assert row["not_measured"]["rnnfast_int8"] == variants.REDUCED_REASON
    assert "variant" in row and "variant" not in lstm
    assert variants.REDUCED_REASON in report.summary(result)
    for table in (report.reduced_table(result), report.accuracy_table(result)):
        lines = table.splitlines()
        assert len(lines) == 3 and "| LSTM |" in lines[2]


def test_cells_option(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).cells == list(scenarios.CELLS)  # the variants are not in the default run
    assert parser.parse_args(["--cells", "variants"]).cells == VARIANTS
    assert parser.parse_args(["--cells", "lstm,variants,lstm_proj"]).cells == ["lstm"] + VARIANTS
    assert parser.parse_args(["--cells", "gru_reset_after_false"]).cells == ["gru_reset_before"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--cells", "lstm_projection"])
    err = capsys.readouterr().err
    assert "variants" in err and "gru_reset_before" in err
    with pytest.raises(ValueError, match="unknown cell"):
        measure.run(["lstm_projection"], ["edge"], peers=[], tiny=True)
    text = parser.format_help()
    for cell in VARIANTS:
        assert cell in text
