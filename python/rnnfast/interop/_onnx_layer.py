"""Writing one rnnfast layer into an ONNX graph: the node attributes of its cell variant, or the refusal naming
what ONNX cannot compute (:func:`layer_attributes`), and its ``RNN``/``LSTM``/``GRU`` nodes (an int8 LSTM's
``DynamicQuantizeLSTM``) with the layout plumbing around them (:func:`write_layer`). Below both :func:`rnnfast.to_onnx`
(onnx_export.py) and the whole-model writer (_onnx_models.py)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .._layer_parameters import parameter_name
from .._quantized import SCALE_SUFFIX
from ._conversion import Model, gates_from_rnnfast, permute_gates
from ._onnx_builder import GraphBuilder
from ._onnx_ops import MS_DOMAIN, ONNX_GATES, ONNX_OP, QUANTIZED_LSTM
from ._onnx_variants import activation_attributes, peepholes_to_onnx
from ._variant import LayerVariant, family_of

__all__ = ["layer_attributes", "write_layer"]


def layer_attributes(model: Model) -> dict[str, Any]:
    """The attributes of the ONNX nodes of the rnnfast layer ``model`` (but ``hidden_size``), or a ValueError
    naming what ONNX (and ONNX Runtime) cannot compute: bf16, int8 but the LSTM, ``proj_size``, an
    activation ONNX's recurrent operators lack."""
    family = family_of(model)
    variant = LayerVariant.of_layer(model)
    if model.weight_dtype == "bf16":
        raise ValueError(
            f"to_onnx cannot write this {type(model).__name__} quantized to bf16: no ONNX or ONNX Runtime operator "
            "computes it. ONNX's bfloat16 RNN/LSTM/GRU (opset 22) compute in bfloat16 throughout (biases, states "
            "and outputs rounded to bfloat16 at every step, where rnnfast keeps them float32), and ONNX Runtime's "
            "CPU provider does not run them; a float32 graph would compute something else than this model. "
            "Export the float model it was made from (rnnfast.to_onnx(float_model)), or an int8 LSTM "
            "(written as ONNX Runtime's DynamicQuantizeLSTM)"
        )
    if model.weight_dtype == "int8" and family != "lstm":
        raise ValueError(
            f"to_onnx cannot write this {type(model).__name__} quantized to int8: ONNX has no quantized recurrent "
            "operator, and ONNX Runtime's contrib operators quantize only the LSTM (DynamicQuantizeLSTM; its "
            "quantize_dynamic leaves GRU and RNN nodes in float), so no runtime would compute it. Export the float "
            "model it was made from (rnnfast.to_onnx(float_model)); only an int8 LSTM is written quantized"
        )
    if variant.proj_size:
        raise ValueError(f"to_onnx cannot write this LSTM with proj_size={variant.proj_size}: ONNX's LSTM has no "
                         "projection of h (option 'proj_size')")
    node_attrs: dict[str, Any] = dict(direction=variant.direction)
    if family == "gru":
        node_attrs["linear_before_reset"] = 1 if variant.reset_after else 0
    if family == "rnn" or not variant.default_activations:
        try:
            node_attrs.update(activation_attributes(variant.activations))
        except ValueError as exc:
            raise ValueError(f"to_onnx cannot write this {type(model).__name__}: {exc}") from None
    if variant.clip is not None:
        node_attrs["clip"] = variant.clip
    if variant.input_forget:
        node_attrs["input_forget"] = 1
    return node_attrs


def write_layer(b: GraphBuilder, model: Model, node_attrs: dict[str, Any], x: str, out: str, *, prefix: str = "",
                lengths: Optional[str] = None, states: Optional[Sequence[str]] = None,
                with_states: bool = False) -> list[str]:
    """Append the nodes computing ``model`` (checked by :func:`layer_attributes`, which gave ``node_attrs``)
    from the tensor ``x`` (the layer's layout) to the tensor ``out`` (the same layout), every other name
    prefixed with ``prefix``.

    ``lengths`` names the (B,) int32 sequence lengths, ``states`` the (L*D, B, H) initial states (h0, c0)
    (zeros without). With ``with_states`` the final states are computed, and their names returned (``h_n``,
    ``c_n`` with ``prefix``); else the nodes have no state outputs and the list is empty.
    """
    family = family_of(model)
    variant = LayerVariant.of_layer(model)
    quantized = model.weight_dtype == "int8"
    op = QUANTIZED_LSTM if quantized else ONNX_OP[family]
    L, D, H = model.num_layers, variant.num_directions, model.hidden_size
    directions = variant.directions
    bf = model.batch_first
    perm = gates_from_rnnfast(family, ONNX_GATES[family])
    params = model.parameters()
    state_names = ["h0", "c0"] if family == "lstm" else ["h0"]

    def const(name: str, value: np.ndarray) -> str:
        return b.const(prefix + name, value)

    def weights(base: str, k: int, suffix: str = "") -> np.ndarray:
        return np.stack([permute_gates(params[parameter_name(base, k, d) + suffix], perm) for d in directions])

    cur = x
    if bf:
        b.node("Transpose", [x], [f"{prefix}x_time_major"], f"{prefix}x_to_time_major", perm=[1, 0, 2])
        cur = f"{prefix}x_time_major"
    if states is not None and L > 1:
        const("axis_0", np.array([0], dtype=np.int64))
        for k in range(L + 1):
            const(f"index_{k * D}", np.array([k * D], dtype=np.int64))

    final_states: list[list[str]] = [[] for _ in state_names]
    for k in range(L):
        W, R = weights("weight_ih", k), weights("weight_hh", k)
        if quantized:   # DynamicQuantizeLSTM's W (D, I, 4*H) and R (D, H, 4*H)
            W, R = W.transpose(0, 2, 1), R.transpose(0, 2, 1)
        node_in = [cur, const(f"W_l{k}", W), const(f"R_l{k}", R), ""]
        if model.bias:
            B = np.stack([np.concatenate([permute_gates(params[parameter_name("bias_ih", k, d)], perm),
                                          permute_gates(params[parameter_name("bias_hh", k, d)], perm)])
                          for d in directions])
            node_in[3] = const(f"B_l{k}", B)
        node_in.append(lengths or "")
        for s, given in zip(state_names, states or [""] * len(state_names)):
            if not given or L == 1:
                node_in.append(given)
            else:
                b.node("Slice", [given, f"{prefix}index_{k * D}", f"{prefix}index_{(k + 1) * D}", f"{prefix}axis_0"],
                       [f"{prefix}{s}_l{k}"], f"{prefix}{s}_l{k}_slice")
                node_in.append(f"{prefix}{s}_l{k}")
        if variant.peepholes:   # input 7: P (D, 3*H), gates i, o, f
            node_in += [""] * (7 - len(node_in))
            node_in.append(const(f"P_l{k}", np.stack([peepholes_to_onnx(params[parameter_name("weight_ch", k, d)])
                                                      for d in directions])))
        if quantized:
            # per-output-row scales, exactly the model's, with zero points 0
            node_in += [""] * (8 - len(node_in))
            for w, base in (("W", "weight_ih"), ("R", "weight_hh")):
                node_in.append(const(f"{w}_scale_l{k}", weights(base, k, SCALE_SUFFIX)))
                node_in.append(const(f"{w}_zero_point_l{k}", np.zeros((D, 4 * H), dtype=np.int8)))
        while node_in and node_in[-1] == "":
            node_in.pop()
        outs = [f"{prefix}Y_l{k}"]
        if with_states:
            outs += [f"{prefix}{s.replace('0', '_n')}" + (f"_l{k}" if L > 1 else "") for s in state_names]
            for i, o in enumerate(outs[1:]):
                final_states[i].append(o)
        attrs: dict[str, Any] = dict(hidden_size=H, **node_attrs)
        if quantized:
            attrs["domain"] = MS_DOMAIN
        b.node(op, node_in, outs, f"{prefix}{ONNX_OP[family].lower()}_l{k}", **attrs)
        last = k == L - 1
        nxt = ((f"{prefix}out_time_major" if bf else out) if last else f"{prefix}x_l{k + 1}")
        # ONNX's Y (T, D, B, H) as rnnfast's (T, B, D*H)
        if D == 2:
            b.node("Transpose", [f"{prefix}Y_l{k}"], [f"{prefix}Y_l{k}_T_B_D_H"], f"{prefix}Y_l{k}_transpose",
                   perm=[0, 2, 1, 3])
            b.node("Reshape", [f"{prefix}Y_l{k}_T_B_D_H", const("reshape_T_B_DH", np.array([0, 0, -1], np.int64))],
                   [nxt], f"{prefix}Y_l{k}_reshape")
        else:
            b.node("Squeeze", [f"{prefix}Y_l{k}", const("squeeze_axis_1", np.array([1], dtype=np.int64))], [nxt],
                   f"{prefix}Y_l{k}_squeeze")
        cur = nxt
    if bf:
        b.node("Transpose", [cur], [out], f"{prefix}out_to_batch_first", perm=[1, 0, 2])
    if not with_states:
        return []
    if L == 1:
        return [f[0] for f in final_states]
    names = []
    for s, finals in zip(state_names, final_states):
        final = f"{prefix}{s.replace('0', '_n')}"
        b.node("Concat", finals, [final], f"{final}_concat", axis=0)
        names.append(final)
    return names
