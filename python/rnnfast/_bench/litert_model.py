"""A LiteRT (TensorFlow Lite) dynamic-range model of an rnnfast LSTM or tanh RNN, written directly as a
``.tflite`` flatbuffer with the schema that ``ai_edge_litert`` ships (so neither TensorFlow nor its converter
is needed).

The model is what TensorFlow Lite's converter makes of a recurrent layer with dynamic-range quantization
(``optimizations = [tf.lite.Optimize.DEFAULT]`` without a representative data set): one
``UNIDIRECTIONAL_SEQUENCE_LSTM`` (or ``UNIDIRECTIONAL_SEQUENCE_RNN``) operator, time major, with float32 input
and output, float32 biases, int8 weight matrices (symmetric, one scale per matrix: per gate for the LSTM) and the
states as variable tensors that the operator updates in place (so a model with T = 1 streams, one step per
``invoke``). The operator then runs TensorFlow Lite's "hybrid" kernel: activations quantized to int8 at run time
(``asymmetric_quantize_inputs``: per batch row, with a zero point, as the converter sets it), integer products,
float32 gates and states.

LiteRT has no GRU operator (its converter lowers a Keras GRU to a loop of separate operators), so there is no
GRU model here.
"""

from __future__ import annotations

import numpy as np

#: The cells that have a LiteRT sequence operator.
CELLS = ("lstm", "rnn_tanh")


def quantize_symmetric(w: np.ndarray) -> tuple:
    """(int8 matrix, scale): one symmetric scale for the whole matrix, as the converter's dynamic range does."""
    m = float(np.max(np.abs(w))) if w.size else 0.0
    scale = m / 127.0 if m > 0 else 1.0
    return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale


def build(cell: str, params: dict, T: int, B: int, schema, flatbuffers) -> bytes:
    """The ``.tflite`` model of one layer (``params``: rnnfast's state dict of a one-layer, one-direction
    model with biases) for input (T, B, I) float32; its one output is (T, B, H). ``schema`` is
    ``ai_edge_litert.schema_py_generated``."""
    if cell not in CELLS:
        raise ValueError(f"LiteRT has no {cell} operator")
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    bias = (params["bias_ih_l0"] + params["bias_hh_l0"]).astype(np.float32)  # one bias per gate in LiteRT
    G_H, I = w_ih.shape
    H = w_hh.shape[1]
    s = schema
    buffers = [s.BufferT()]  # buffer 0: the empty sentinel every tensor without data points to
    tensors: list = []

    def tensor(name, shape, dtype, data=None, scale=None, variable=False) -> int:
        t = s.TensorT()
        t.name, t.shape = name, list(shape)
        t.type = {np.float32: s.TensorType.FLOAT32, np.int8: s.TensorType.INT8}[dtype]
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
            buffers.append(b)
            t.buffer = len(buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(scale)], [0]
            t.quantization = q
        t.isVariable = variable
        tensors.append(t)
        return len(tensors) - 1

    def int8_weight(name, w) -> int:
        q, scale = quantize_symmetric(w)
        return tensor(name, w.shape, np.int8, q, scale)

    x = tensor("x", (T, B, I), np.float32)
    out = tensor("out", (T, B, H), np.float32)
    if cell == "lstm":
        # PyTorch's gate order i, f, g, o: LiteRT takes each gate's matrices and bias as separate tensors.
        gates = "ifgo"
        w_x = [int8_weight(f"w_x{g}", w_ih[k * H:(k + 1) * H]) for k, g in enumerate(gates)]
        w_h = [int8_weight(f"w_h{g}", w_hh[k * H:(k + 1) * H]) for k, g in enumerate(gates)]
        b = [tensor(f"b_{g}", (H,), np.float32, bias[k * H:(k + 1) * H]) for k, g in enumerate(gates)]
        h = tensor("h", (B, H), np.float32, variable=True)
        c = tensor("c", (B, H), np.float32, variable=True)
        inputs = [x] + w_x + w_h + [-1, -1, -1] + b + [-1, -1, h, c] + [-1, -1, -1, -1]
        opts = s.UnidirectionalSequenceLSTMOptionsT()
        opts.fusedActivationFunction = s.ActivationFunctionType.TANH
        opts.cellClip = opts.projClip = 0.0
        opts.timeMajor = True
        opts.asymmetricQuantizeInputs = True
        code, options_type = s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM, \
            s.BuiltinOptions.UnidirectionalSequenceLSTMOptions
    else:
        w_x = int8_weight("w_x", w_ih)
        w_h = int8_weight("w_h", w_hh)
        b = tensor("b", (H,), np.float32, bias)
        h = tensor("h", (B, H), np.float32, variable=True)
        inputs = [x, w_x, w_h, b, h]
        opts = s.SequenceRNNOptionsT()
        opts.timeMajor = True
        opts.fusedActivationFunction = s.ActivationFunctionType.TANH
        opts.asymmetricQuantizeInputs = True
        code, options_type = s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_RNN, s.BuiltinOptions.SequenceRNNOptions
    assert G_H == (4 if cell == "lstm" else 1) * H

    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, inputs, [out]
    op.builtinOptionsType, op.builtinOptions = options_type, opts
    opcode = s.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = min(code, 127)
    opcode.version = 3  # hybrid with asymmetric input quantization
    graph = s.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [x], [out], [op]
    graph.name = "main"
    model = s.ModelT()
    model.version = 3
    model.operatorCodes, model.subgraphs, model.buffers = [opcode], [graph], buffers
    model.description = f"rnnfast bench: dynamic-range {cell}"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
