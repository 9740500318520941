"""The ONNX recurrent operators rnnfast reads (onnx_graph.py) and writes (onnx_export.py): each cell family's
operator, gate order and attributes, and ONNX Runtime's quantized LSTM."""

from __future__ import annotations

# The gate count of each cell family.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# ONNX's gate order per cell family, in rnnfast's gate names (ONNX calls the LSTM's g 'c' and the
# GRU's n 'h'): LSTM i, o, f, c; GRU z, r, h.
ONNX_GATES = {"rnn": ("h",), "lstm": ("i", "o", "f", "g"), "gru": ("z", "r", "n")}

# The ONNX operator of each cell family, and the set of them.
ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
ONNX_OPS = set(ONNX_OP.values())
ONNX_ATTRIBUTES = {
    "RNN": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "output_sequence"},
    "LSTM": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
             "input_forget", "output_sequence"},
    "GRU": {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
            "linear_before_reset", "output_sequence"},
}

# ONNX Runtime's contrib operator for an LSTM with int8 (or uint8) weights, which its quantize_dynamic
# writes for every LSTM node: the LSTM's inputs (W and R quantized and transposed to (D, K, 4*H)), then
# W_scale, W_zero_point, R_scale, R_zero_point ((D,) per tensor or (D, 4*H) per output row); the
# activations are quantized by the operator at run time. It has the LSTM's attributes except layout
# (always 0). ONNX itself has no quantized recurrent operator; ONNX Runtime none for the GRU or the RNN.
QUANTIZED_LSTM = "DynamicQuantizeLSTM"
MS_DOMAIN = "com.microsoft"
ONNX_ATTRIBUTES[QUANTIZED_LSTM] = ONNX_ATTRIBUTES["LSTM"] - {"layout"}
