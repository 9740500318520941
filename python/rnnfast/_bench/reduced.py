"""The reduced-precision implementations of a row: rnnfast's own (``rnnfast.quantize(model, "int8"|"bf16")``)
and the peers' (ONNX Runtime's dynamic quantization, OpenVINO in bf16, LiteRT's dynamic range), every one made
from the weights of the row's float32 rnnfast model.

Their results are not expected to equal float32's: the row reports the largest absolute difference of the output
(every step's) from the float32 rnnfast model's on the same input (which is the float32 PyTorch's to 1e-5), and
flags only a difference above :data:`TOLERANCE` relative to the output's magnitude: five times what rounding to
int8 or bf16 costs on the bench's shapes (at most 2%, LiteRT's int8 RNN), and far below what a wrong gate order
or a transposed matrix gives (the order of the output itself).

- ``rnnfast_int8`` / ``rnnfast_bf16``: the quantized layer's call, or for streaming its stepper; not measured
  where this build has no ``rnnfast.quantize`` (the reason is stated).
- ``onnxruntime_int8``: the model exported with :func:`rnnfast.to_onnx`, quantized by
  ``onnxruntime.quantization.quantize_dynamic`` with int8 weights, one scale per output row (``per_channel``,
  the same granularity as rnnfast's and ONNX Runtime's more accurate setting) into ``DynamicQuantizeLSTM``
  (activations quantized at run time, one scale per tensor). ONNX Runtime has no quantized GRU or RNN operator
  (``quantize_dynamic`` leaves them in float32): n/a.
- ``openvino_bf16``: the same ONNX model read by OpenVINO, reshaped to the row's static shapes and compiled for
  the CPU with ``INFERENCE_PRECISION_HINT=bf16`` (weights and activations of the products in bf16); the row is
  not measured if OpenVINO does not run the recurrent node in bf16 on this CPU.
- ``litert_int8``: the dynamic-range LiteRT model of :mod:`.litert_model` (int8 weights, hybrid kernel), for
  streaming the same model with T = 1, its state kept in the interpreter. No LiteRT GRU operator: n/a.

Streaming peers other than LiteRT are called once per step with T = 1, the state passed in and out, as the
float32 ONNX Runtime peer is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from typing import Optional

import numpy as np

import rnnfast
from .. import _core
from .peers import Impl, NotApplicable, NotMeasured, _stepwise_impl, onnxruntime_session, rnnfast_impl
from .scenarios import CELLS, Problem

#: The precisions of ``--precision``, and their spellings.
PRECISIONS = ("float32", "int8", "bf16")
PRECISION_ALIASES = {"float32": "float32", "fp32": "float32", "f32": "float32", "float": "float32",
                     "int8": "int8", "i8": "int8", "bf16": "bf16", "bfloat16": "bf16"}

#: Largest difference of a reduced-precision output from float32's tolerated, relative to its magnitude.
TOLERANCE = 0.1


def rnnfast_status(weight_dtype: str) -> dict:
    """Whether this build can quantize to ``weight_dtype``: ``available``, ``reason`` (when not), and
    ``isa`` (the kernels' instruction set for that precision, where the native module says it)."""
    isa = None
    reduced_isa = getattr(_core, "reduced_isa", None)
    if reduced_isa is not None:
        try:
            isa = str(reduced_isa(weight_dtype))
        except Exception:  # an older or partial native module: the ISA is only information
            isa = None
    if not callable(getattr(rnnfast, "quantize", None)):
        return {"available": False, "reason": "rnnfast.quantize is not in this build", "isa": isa}
    return {"available": True, "reason": "", "isa": isa}


def rnnfast_reduced_impl(p: Problem, weight_dtype: str) -> Impl:
    if p.scenario.kind == "train":
        raise NotApplicable("inference only")
    quantize = getattr(rnnfast, "quantize", None)
    if not callable(quantize):
        raise NotMeasured("rnnfast.quantize is not in this build")
    try:
        q = quantize(p.model, weight_dtype)
    except Exception as exc:  # a build whose native module cannot run it yet: say why
        raise NotMeasured(f"rnnfast.quantize(model, {weight_dtype!r}) failed: {type(exc).__name__}: {exc}") \
            from None
    return rnnfast_impl(p, q, output_only=True)


@contextlib.contextmanager
def _quiet_logging():
    """ONNX Runtime's quantizer logs advice through the root logger: not the bench's output."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _onnx_model(p: Problem):
    try:
        return rnnfast.to_onnx(p.model, initial_state=True)   # h0 (, c0) fed: streaming passes them on
    except Exception as exc:  # a converter that refuses or is missing: skip the peer, say why
        raise NotMeasured(f"rnnfast.to_onnx failed: {type(exc).__name__}: {exc}") from None


def onnxruntime_int8_impl(p: Problem, ort, threads: int) -> Impl:
    if p.scenario.kind == "train":
        raise NotApplicable("inference only")
    if p.cell != "lstm":
        raise NotApplicable(f"ONNX Runtime has no quantized {CELLS[p.cell]} operator (quantize_dynamic quantizes "
                            "the LSTM only, as DynamicQuantizeLSTM)")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = _onnx_model(p)
    with tempfile.TemporaryDirectory() as folder, _quiet_logging():
        path = os.path.join(folder, "int8.onnx")
        quantize_dynamic(proto, path, op_types_to_quantize=["LSTM"], per_channel=True,
                         weight_type=QuantType.QInt8)
        with open(path, "rb") as f:
            blob = f.read()
    import onnx

    ops = {n.op_type for n in onnx.load_from_string(blob).graph.node}
    if "DynamicQuantizeLSTM" not in ops:
        raise NotMeasured(f"quantize_dynamic made no DynamicQuantizeLSTM (nodes: {', '.join(sorted(ops))})")
    sess = onnxruntime_session(blob, ort, threads)
    B, H = p.scenario.B, p.scenario.H
    zeros = np.zeros((1, B, H), dtype=np.float32)
    run, x = sess.run, p.x
    if p.scenario.kind == "infer":
        feed = {"x": x, "h0": zeros, "c0": zeros}
        return Impl(lambda: run(None, feed), lambda: [run(None, feed)[0]])
    xs = [x[t:t + 1] for t in range(x.shape[0])]
    state = {"h": zeros, "c": zeros}

    def run_steps(outs=None):
        h, c = state["h"], state["c"]
        for x_t in xs:
            y, h, c = run(None, {"x": x_t, "h0": h, "c0": c})
            if outs is not None:
                outs.append(y[0])
        state["h"], state["c"] = h, c

    return _stepwise_impl(run_steps, state, zeros, len(xs))


def _openvino_rnn_precisions(compiled) -> set:
    """The precisions the compiled model runs its recurrent nodes in (OpenVINO's runtime model)."""
    found = set()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "layerType" in info and str(info["layerType"].astype(str)) in ("RNNSeq", "RNNCell"):
            found.add(str(info["runtimePrecision"].astype(str)) if "runtimePrecision" in info else "unknown")
    return found


def openvino_bf16_impl(p: Problem, ov, threads: int) -> Impl:
    kind, lstm = p.scenario.kind, p.cell == "lstm"
    if kind == "train":
        raise NotApplicable("inference only")
    proto = _onnx_model(p)
    core = ov.Core()
    model = core.read_model(proto.SerializeToString())
    T = 1 if kind == "stream" else p.x.shape[0]
    B, I, H = p.scenario.B, p.scenario.I, p.scenario.H
    shapes = {"x": [T, B, I], "h0": [1, B, H]}
    if lstm:
        shapes["c0"] = [1, B, H]
    model.reshape(shapes)  # static shapes: what a deployment of one shape compiles
    config = {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY"}
    compiled = core.compile_model(model, "CPU", config)
    precisions = _openvino_rnn_precisions(compiled)
    if precisions != {"bf16"}:
        raise NotMeasured("OpenVINO does not run the recurrent node in bf16 on this CPU (runtime precision "
                          + (", ".join(sorted(precisions)) or "not found") + ")")
    # The request's own input tensors written in place and its outputs read in place: the cheapest way to call
    # OpenVINO from Python (a dict of inputs per call costs tens of microseconds more). (Tensors made with
    # shared_memory=True over arrays of ours would not keep those arrays alive.)
    request = compiled.create_infer_request()
    infer = request.infer
    x_buf, h_buf = request.get_tensor("x").data, request.get_tensor("h0").data
    c_buf = request.get_tensor("c0").data if lstm else None
    out, h_n = request.get_tensor("out").data, request.get_tensor("h_n").data
    c_n = request.get_tensor("c_n").data if lstm else None
    h_buf[...] = 0
    if lstm:
        c_buf[...] = 0
    if kind == "infer":
        np.copyto(x_buf, p.x)

        def check():
            infer()
            return [out.copy()]

        return Impl(infer, check)
    xs = list(p.x[:, None])  # (1, B, I) views

    def run_steps(outs=None):
        for x_t in xs:
            np.copyto(x_buf, x_t)
            infer()
            np.copyto(h_buf, h_n)  # the state out becomes the state in
            if lstm:
                np.copyto(c_buf, c_n)
            if outs is not None:
                outs.append(out[0].copy())

    def check():
        h_buf[...] = 0
        if lstm:
            c_buf[...] = 0
        outs: list = []
        run_steps(outs)
        h_buf[...] = 0
        if lstm:
            c_buf[...] = 0
        return [np.stack(outs)]

    return Impl(run_steps, check, steps=len(xs))


def litert_int8_impl(p: Problem, litert, threads: int) -> Impl:
    """``litert`` is the ``ai_edge_litert`` package (its ``interpreter`` and ``schema_py_generated``)."""
    from . import litert_model

    kind = p.scenario.kind
    if kind == "train":
        raise NotApplicable("inference only")
    if p.cell not in litert_model.CELLS:
        raise NotApplicable(f"LiteRT has no {CELLS[p.cell]} operator (its converter lowers a GRU to a loop of "
                            "separate operators)")
    import flatbuffers
    from ai_edge_litert import interpreter as tfl
    from ai_edge_litert import schema_py_generated as schema

    T = 1 if kind == "stream" else p.x.shape[0]
    B = p.scenario.B
    blob = litert_model.build(p.cell, p.params, T, B, schema, flatbuffers)
    # XNNPACK (the default delegate) has no sequence LSTM/RNN operator: the built-in kernels run them either way.
    interp = tfl.Interpreter(model_content=blob, num_threads=threads,
                             experimental_op_resolver_type=tfl.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    x_index = interp.get_input_details()[0]["index"]
    out_index = interp.get_output_details()[0]["index"]
    set_tensor, invoke, get_tensor, reset = interp.set_tensor, interp.invoke, interp.get_tensor, \
        interp.reset_all_variables
    x = p.x
    if kind == "infer":
        def infer():
            reset()  # the state lives in the model: every call starts from zero
            set_tensor(x_index, x)
            invoke()
            return get_tensor(out_index)

        return Impl(infer, lambda: [infer()])
    xs = [np.ascontiguousarray(x[t:t + 1]) for t in range(x.shape[0])]

    def stream(outs=None):
        for x_t in xs:
            set_tensor(x_index, x_t)
            invoke()
            y = get_tensor(out_index)  # a copy, as the other peers' outputs: the caller keeps every step's
            if outs is not None:
                outs.append(y[0])

    def check():
        reset()
        outs: list = []
        stream(outs)
        reset()
        return [np.stack(outs)]

    return Impl(stream, check, steps=len(xs))


def build(key: str, peer, p: Problem, threads: int) -> Optional[Impl]:
    """The reduced-precision implementation ``key``; None if ``key`` is not one."""
    if key == "rnnfast_int8":
        return rnnfast_reduced_impl(p, "int8")
    if key == "rnnfast_bf16":
        return rnnfast_reduced_impl(p, "bf16")
    if key == "onnxruntime_int8":
        return onnxruntime_int8_impl(p, peer.module, threads)
    if key == "openvino_bf16":
        return openvino_bf16_impl(p, peer.module, threads)
    if key == "litert_int8":
        return litert_int8_impl(p, peer.module, threads)
    return None
