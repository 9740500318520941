"""``rnnfast bench`` in reduced precision, at toy sizes: ``--precision``, which implementations a run has, rnnfast's
int8 and bf16 rows (through a stand-in ``rnnfast.quantize`` that rounds the weights, so the bench's side is
tested whether or not this build quantizes), the ratios against the fastest peer, the errors against float32
and their check, and each reduced-precision peer (ONNX Runtime int8, OpenVINO bf16, LiteRT int8) where it is
installed. Timing is not checked."""

from __future__ import annotations

import copy
import gc
import json
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # as the other tests: before anything imports keras

import rnnfast  # noqa: E402
from rnnfast import cli  # noqa: E402
from rnnfast._bench import litert_model, measure, peers, reduced, report, scenarios  # noqa: E402
from rnnfast._bench.command_line import add_arguments  # noqa: E402

TINY = ["bench", "--tiny", "--quick", "--repeat", "1", "--threads", "1"]


def _round_bf16(a: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000  # to nearest even
    return bits.astype(np.uint32).view(np.float32)


def _round_int8(w: np.ndarray) -> np.ndarray:
    scale = np.max(np.abs(w), axis=1, keepdims=True) / 127
    return (np.rint(w / scale) * scale).astype(np.float32)


def fake_quantize(model, weight_dtype):
    """A stand-in for rnnfast.quantize: a float32 copy of ``model`` whose weight matrices are rounded as the
    precision's would be (per row to int8, or to bf16), so its outputs differ from float32's a little."""
    if weight_dtype not in ("int8", "bf16"):
        raise ValueError(f"unknown weight dtype {weight_dtype!r}")
    q = copy.deepcopy(model)
    rounding = _round_int8 if weight_dtype == "int8" else _round_bf16
    q.load_state_dict({k: rounding(v) if k.startswith("weight") else v for k, v in model.state_dict().items()})
    return q


@pytest.fixture
def quantize(monkeypatch):
    """rnnfast.quantize replaced by :func:`fake_quantize` (the real one, where it exists, is tested elsewhere)."""
    monkeypatch.setattr(rnnfast, "quantize", fake_quantize, raising=False)
    return fake_quantize


def _installed(*modules) -> bool:
    try:
        for m in modules:
            __import__(m)
    except Exception:
        return False
    return True


HAVE_ORT = _installed("onnxruntime", "onnx")
HAVE_OPENVINO = _installed("openvino", "onnx")
HAVE_LITERT = _installed("ai_edge_litert.interpreter", "ai_edge_litert.schema_py_generated", "flatbuffers")


def _run(cells, names, peer_keys, precisions=reduced.PRECISIONS, write=lambda s: None):
    return measure.run(cells, names, peers=peer_keys, threads=1, repeat=1, quick=True, tiny=True,
                       precisions=precisions, write=write)


# --- the option and the selection -----------------------------------------------------------------------------

def test_precision_option():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).precision == ["float32", "int8", "bf16"]
    assert parser.parse_args(["--precision", "BF16,fp32,bfloat16"]).precision == ["bf16", "float32"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "float16"])
    with pytest.raises(ValueError, match="precision"):
        measure.run(["lstm"], ["edge"], peers=[], tiny=True, repeat=1, precisions=["int4"])


def test_selection():
    found = peers.detect_peers(list(peers.PEERS))
    keys = peers.select_implementations(found, ["float32"])
    assert keys[0] == "rnnfast" and all(peers.IMPLEMENTATIONS[k].precision == "float32" for k in keys)
    keys = peers.select_implementations(found, ["int8"])
    assert keys[:2] == ["rnnfast", "rnnfast_int8"]
    assert all(peers.IMPLEMENTATIONS[k].precision == "int8" for k in keys[1:])
    assert ("onnxruntime_int8" in keys) == found["onnxruntime"].available
    assert ("litert_int8" in keys) == found["litert"].available
    keys = peers.select_implementations(found, ["bf16"])
    assert keys[:2] == ["rnnfast", "rnnfast_bf16"] and ("openvino_bf16" in keys) == found["openvino"].available
    for key in peers.IMPLEMENTATIONS:
        assert peers.implementation_label(key)  # every one has a label
    assert peers.implementation_label("onnxruntime_int8") == "ONNX Runtime int8"
    assert peers.implementation_label("rnnfast") == "rnnfast"


def test_absent_peers_are_skipped_with_a_reason(monkeypatch):
    """A peer that cannot be imported is not measured, and the run says why (here: every optional one)."""
    import builtins

    real_import = builtins.__import__

    def no_optional(name, *args, **kwargs):
        if name.split(".")[0] in ("openvino", "ai_edge_litert", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    found = peers.detect_peers(["onnxruntime", "openvino", "litert", "numpy"])
    for key in ("onnxruntime", "openvino", "litert"):
        assert not found[key].available and found[key].reason.startswith("not installed")
    assert peers.select_implementations(found, reduced.PRECISIONS) == ["rnnfast", "rnnfast_int8", "rnnfast_bf16",
                                                                        "numpy"]


# --- rnnfast's own rows ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reduced_run():
    mp = pytest.MonkeyPatch()
    mp.setattr(rnnfast, "quantize", fake_quantize, raising=False)
    try:
        return _run(["lstm", "gru"], ["stream", "edge", "train"], ["numpy", "onnxruntime"] if HAVE_ORT else ["numpy"])
    finally:
        mp.undo()


def test_rnnfast_reduced_rows(reduced_run):
    result = reduced_run
    assert result["agree"] is True
    assert result["precisions"] == list(reduced.PRECISIONS)
    assert result["reduced"]["int8"]["available"] and result["reduced"]["bf16"]["available"]
    for row in result["rows"]:
        res = row["results"]
        if row["kind"] == "train":  # inference only: n/a
            for key in ("rnnfast_int8", "rnnfast_bf16"):
                assert key not in res and key in row["not_applicable"]
            continue
        for key in ("rnnfast_int8", "rnnfast_bf16"):
            r = res[key]
            assert r["precision"] == key.split("_")[1]
            assert 0 < r["max_abs_diff"] < 0.05 and r["agrees"], (row["scenario"], row["cell"], key)
            assert r["vs_float32"] == pytest.approx(res["rnnfast"]["seconds"] / r["seconds"])
        best = row["fastest_peer"]
        assert best is not None and peers.IMPLEMENTATIONS[best].framework != "rnnfast"
        assert all(res[best]["seconds"] <= res[k]["seconds"] for k in res if not k.startswith("rnnfast"))
        for key in ("rnnfast", "rnnfast_int8", "rnnfast_bf16"):
            assert res[key]["vs_fastest_peer"] == pytest.approx(res[best]["seconds"] / res[key]["seconds"])
        int8_peers = [k for k in res if k != "rnnfast_int8" and res[k]["precision"] == "int8"]
        same = res["rnnfast_int8"]["same_precision_peer"]
        assert (same is None) == (not int8_peers)
        if same:
            assert res["rnnfast_int8"]["vs_same_precision_peer"] == pytest.approx(
                res[same]["seconds"] / res["rnnfast_int8"]["seconds"])
        assert res["rnnfast_bf16"]["same_precision_peer"] is None  # no bf16 peer in this run


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_rnnfast_reduced_streaming(quantize, cell):
    """The streaming row runs the quantized model's stepper from the zero state every check, and its error is
    every step's output against float32's: here the stand-in's stepper, whose outputs are its sequence call's."""
    p = _problem("stream", cell)
    impl = reduced.rnnfast_reduced_impl(p, "int8")
    q = fake_quantize(p.model, "int8")
    sequence = q(p.x)[0]
    first = impl.check()
    impl.fn()  # the timed steps move the state on; the next check starts from zero again
    again = impl.check()
    assert len(first) == 1 and first[0].shape == sequence.shape
    np.testing.assert_allclose(first[0], sequence, rtol=0, atol=1e-6)
    assert measure.compare(again, first) == (0.0, 0.0)
    assert impl.steps == p.x.shape[0]
    with pytest.raises(peers.NotApplicable, match="inference only"):
        reduced.rnnfast_reduced_impl(_problem("train", cell), "int8")


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
def test_onnxruntime_int8_rows(reduced_run):
    rows = {(r["scenario"], r["cell"]): r for r in reduced_run["rows"]}
    for scenario in ("stream", "edge"):
        lstm, gru = rows[(scenario, "lstm")], rows[(scenario, "gru")]
        r = lstm["results"]["onnxruntime_int8"]
        assert r["precision"] == "int8" and 0 < r["max_abs_diff"] and r["agrees"]
        ratio = lstm["int8_error_vs_onnxruntime"]
        assert ratio == pytest.approx(lstm["results"]["rnnfast_int8"]["max_abs_diff"] / r["max_abs_diff"])
        assert "onnxruntime_int8" in gru["not_applicable"]
        assert "no quantized GRU" in gru["not_measured"]["onnxruntime_int8"]
        assert "int8_error_vs_onnxruntime" not in gru


def test_reduced_tables(reduced_run):
    result = reduced_run
    inference_rows = [r for r in result["rows"] if r["kind"] != "train"]
    for table in (report.reduced_table(result), report.accuracy_table(result)):
        lines = table.splitlines()
        assert len(lines) == 2 + len(inference_rows)
    head = report.reduced_table(result).splitlines()[0]
    assert "fastest peer" in head and "rnnfast int8" in head and "rnnfast bf16" in head
    accuracy = report.accuracy_table(result)
    assert ("rnnfast int8 / ONNX Runtime int8" in accuracy) == HAVE_ORT
    if HAVE_ORT:
        assert "n/a" in accuracy  # ONNX Runtime int8 has no GRU
    text = report.summary(result)
    assert "Reduced precision" in text and "Accuracy" in text
    assert "inference only" in text
    json.dumps(result, allow_nan=False)  # what --json writes is plain JSON


def test_without_quantize(monkeypatch, capsys):
    """A build without rnnfast.quantize: the bench runs, says so once, and measures everything else."""
    monkeypatch.delattr(rnnfast, "quantize", raising=False)
    result = _run(["lstm"], ["edge", "stream"], ["numpy"])
    assert result["agree"] is True
    for dtype in ("int8", "bf16"):
        assert result["reduced"][dtype] == {"available": False, "reason": "rnnfast.quantize is not in this build",
                                            "isa": result["reduced"][dtype]["isa"]}
    for row in result["rows"]:
        assert "rnnfast_int8" not in row["results"] and "numpy" in row["results"]
        assert row["not_measured"]["rnnfast_int8"] == "rnnfast.quantize is not in this build"
    text = report.summary(result)
    assert text.count("rnnfast.quantize is not in this build") == 2  # once per precision, not once per row
    assert "n/m" in report.reduced_table(result)


def test_float32_only(quantize, tmp_path, capsys):
    path = tmp_path / "b.json"
    code = cli.main(TINY + ["--precision", "float32", "--peers", "numpy", "--scenarios", "edge", "--cells", "gru",
                            "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Reduced precision" not in out and "--precision float32" in out
    result = json.loads(path.read_text())
    assert result["precisions"] == ["float32"] and result["reduced"] == {}
    assert list(result["implementations"]) == ["rnnfast", "numpy"]
    assert set(result["rows"][0]["results"]) == {"rnnfast", "numpy"}


def test_wrong_reduced_results_are_flagged(monkeypatch, capsys):
    """A quantized model computing something else (here: its gates swapped) is far outside the tolerance of
    rounding: the row disagrees and the command exits 1."""
    def swapped(model, weight_dtype):
        q = fake_quantize(model, weight_dtype)
        sd = q.state_dict()
        H = model.hidden_size
        q.load_state_dict({k: np.roll(v, H, axis=0) for k, v in sd.items()})
        return q

    monkeypatch.setattr(rnnfast, "quantize", swapped, raising=False)
    code = cli.main(TINY + ["--precision", "int8", "--peers", "numpy", "--scenarios", "edge", "--cells", "lstm"])
    assert code == 1
    out = capsys.readouterr().out
    assert "DISAGREES" in out


def test_failing_quantize_is_reported(monkeypatch):
    def broken(model, weight_dtype):
        raise RuntimeError("no kernel for this instruction set")

    monkeypatch.setattr(rnnfast, "quantize", broken, raising=False)
    result = _run(["rnn_tanh"], ["edge"], ["numpy"], precisions=["bf16"])
    row = result["rows"][0]
    assert result["agree"] is True and set(row["results"]) == {"rnnfast"}  # bf16 only: no float32 peer
    assert "no kernel for this instruction set" in row["not_measured"]["rnnfast_bf16"]
    assert "no kernel for this instruction set" in report.summary(result)


def test_failing_reduced_call_is_reported(monkeypatch):
    """A quantized model whose call fails (the native side of a build in progress): that row is not measured,
    the others are."""
    class Failing:
        def __call__(self, x):
            raise RuntimeError("reduced_forward: unsupported")

    monkeypatch.setattr(rnnfast, "quantize", lambda model, dtype: Failing(), raising=False)
    result = _run(["gru"], ["edge"], ["numpy"], precisions=["int8"])
    row = result["rows"][0]
    assert row["not_measured"]["rnnfast_int8"].startswith("failed: RuntimeError: reduced_forward: unsupported")
    assert "rnnfast_int8" not in row["not_applicable"]


@pytest.mark.skipif(not callable(getattr(rnnfast, "quantize", None)), reason="rnnfast.quantize is not in this build")
def test_real_quantize():
    """With this build's rnnfast.quantize: every inference and streaming row has its int8 and bf16 results (none
    failed), each close to float32's, and the native kernels' instruction set is reported."""
    result = _run(list(scenarios.CELLS), ["stream", "edge", "small"], ["onnxruntime"] if HAVE_ORT else [],
                  precisions=["int8", "bf16"])
    assert result["agree"] is True
    for dtype in ("int8", "bf16"):
        assert result["reduced"][dtype]["available"] and result["reduced"][dtype]["isa"]
    for row in result["rows"]:
        for key in ("rnnfast_int8", "rnnfast_bf16"):
            assert key in row["results"], (row["scenario"], row["cell"], row["not_measured"].get(key))
            r = row["results"][key]
            assert 0 < r["max_abs_diff"] and r["max_rel_diff"] <= reduced.TOLERANCE


# --- the peers, where installed -----------------------------------------------------------------------------------

def _problem(name, cell):
    return scenarios.make_problem(scenarios.TINY_SCENARIOS[name], cell, seed=3)


def _check_peer(make, p):
    """The peer's output is close to float32's but not equal (it did round), and its check is repeatable (the
    state starts from zero every time), also when only its functions are kept (as the timing keeps them):
    nothing they read has been freed."""
    want = peers.rnnfast_impl(p).check()[:1]
    impl = make()
    fn, check = impl.fn, impl.check
    del impl
    gc.collect()
    _ = [np.full(1000, 7.0, dtype=np.float32) for _ in range(200)]  # reuse freed memory, if any was freed
    first = check()
    fn()
    fn()
    again = check()
    abs_diff, rel_diff = measure.compare(first, want)
    assert 0 < abs_diff and rel_diff <= reduced.TOLERANCE, (p.scenario.name, p.cell, abs_diff, rel_diff)
    assert measure.compare(again, first) == (0.0, 0.0)
    return abs_diff


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
@pytest.mark.parametrize("name", ["edge", "small", "stream"])
def test_onnxruntime_int8(name):
    import onnxruntime

    p = _problem(name, "lstm")
    _check_peer(lambda: reduced.onnxruntime_int8_impl(p, onnxruntime, 1), p)
    for cell in ("gru", "rnn_tanh"):
        with pytest.raises(peers.NotApplicable, match="no quantized"):
            reduced.onnxruntime_int8_impl(_problem(name, cell), onnxruntime, 1)


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed")
@pytest.mark.parametrize("name", ["edge", "batch", "stream"])
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_openvino_bf16(name, cell):
    import openvino

    p = _problem(name, cell)
    try:
        reduced.openvino_bf16_impl(p, openvino, 1)
    except peers.NotMeasured as exc:  # a CPU without bf16: the reason names the precision OpenVINO used
        assert "bf16" in str(exc)
        pytest.skip(str(exc))
    _check_peer(lambda: reduced.openvino_bf16_impl(p, openvino, 1), p)


@pytest.mark.skipif(not HAVE_LITERT, reason="ai_edge_litert is not installed")
@pytest.mark.parametrize("name", ["edge", "batch", "stream"])
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_litert_int8(name, cell):
    import ai_edge_litert

    p = _problem(name, cell)
    _check_peer(lambda: reduced.litert_int8_impl(p, ai_edge_litert, 1), p)
    with pytest.raises(peers.NotApplicable, match="no GRU"):
        reduced.litert_int8_impl(_problem(name, "gru"), ai_edge_litert, 1)


def test_litert_weights():
    """The LiteRT model's int8 weights: one symmetric scale per matrix, the largest magnitude at 127, every
    weight within half a step (no LiteRT needed)."""
    rng = np.random.default_rng(0)
    w = rng.uniform(-0.3, 0.2, size=(12, 7)).astype(np.float32)
    q, scale = litert_model.quantize_symmetric(w)
    assert q.dtype == np.int8 and np.max(np.abs(q)) == 127
    assert np.max(np.abs(q * scale - w)) <= scale / 2 + 1e-7
    q, scale = litert_model.quantize_symmetric(np.zeros((3, 4), dtype=np.float32))
    assert scale > 0 and not q.any()
    with pytest.raises(ValueError, match="gru"):
        litert_model.build("gru", {}, 1, 1, None, None)


def test_no_peer(quantize):
    """Without any peer, the ratios against peers are None and the tables still render."""
    result = _run(["lstm"], ["edge"], [], precisions=["int8"])
    row = result["rows"][0]
    assert row["fastest_peer"] is None and set(row["results"]) == {"rnnfast", "rnnfast_int8"}
    r = row["results"]["rnnfast_int8"]
    assert r["vs_fastest_peer"] is None and r["same_precision_peer"] is None and r["vs_float32"] > 0
    assert "| none |" in report.reduced_table(result)
    assert "rnnfast int8" in report.accuracy_table(result)
    report.summary(result)
