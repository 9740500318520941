"""The implementations of a cell variant's row (``--cells gru_reset_before,lstm_proj,...``, the cells of
:data:`.scenarios.VARIANT_CELLS`), each one on the row's weights; every peer that computes the variant is timed,
and the others are "n/a":

- ``rnnfast``: the layer with the variant's options (:func:`variant_layer`): its call, its training forward and
  backward, and for streaming its stepper (the native variant stepper), as for PyTorch's cells;
- ``numpy``: :func:`rnnfast.reference.variant_forward` (and ``variant_backward``) the same way, where this build
  has them;
- ``torch``: ``torch.nn.LSTM(proj_size=P)`` for the projection, the only variant PyTorch has (streaming: the
  module called with T = 1, the state passed in and out);
- ``onnxruntime``: an ONNX model of one ``GRU`` node (``linear_before_reset=0``) or ``LSTM`` node (peepholes
  ``P``, ``clip``, ``input_forget``) made with ``onnx.helper`` from the weights (:func:`onnx_model`), run as the
  ONNX Runtime peer of PyTorch's cells is (streaming: T = 1); ONNX's LSTM has no projection;
- ``keras``: ``keras.layers.GRU(reset_after=False)``, inference only as for PyTorch's cells; Keras has no
  projection, peepholes or clip.

Reduced precision is not timed for the variants. Each implementation's ``check`` returns the results in the
canonical order of :class:`.peers.Impl` (inference ``[out, h_n, c_n]`` with h_n (1, B, R); training
``[out, d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh]`` followed by ``d_w_hr`` with a projection and ``d_w_ch`` with
peepholes).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np

from .. import reference
from .._variants import CellOptions, default_activations
from ..interop._conversion import gates_from_rnnfast, permute_gates
from ..interop._variant import LayerVariant
from ..interop._onnx_ops import ONNX_GATES, ONNX_OP
from ..layers import GRU, LSTM, RNN
from .peers import IMPLEMENTATIONS, KERAS_SEQUENCE_OPTIONS, TRAIN_GRADS, Impl, NotApplicable, NotMeasured, Peer, \
    _stepwise_impl, functional_stream_impl, keras_gru_order, keras_layer_impl, onnxruntime_model_impl, \
    onnxruntime_session, stepper_impl, torch_sequence_impl
from .scenarios import VariantProblem

#: Why a reduced-precision implementation has no result in a variant's row.
REDUCED_REASON = "reduced precision is not timed for the cell variants"


def describe(options: CellOptions) -> str:
    """The variant in words: ``GRU with the reset gate before the product``, ``LSTM with a projection``, ..."""
    parts = []
    if options.family == "gru" and not options.reset_after:
        parts.append("the reset gate before the product")
    if options.proj_size:
        parts.append("a projection")
    if options.peepholes:
        parts.append("peepholes")
    if options.clip is not None:
        parts.append("clipped gates")
    if options.input_forget:
        parts.append("the forget gate coupled to the input gate")
    if options.activations != default_activations(options.family):
        parts.append("other activations")
    return f"{options.family.upper()} with " + " and ".join(parts) if parts else options.family.upper()


def _weights(p: VariantProblem) -> tuple:
    """``(w_ih, w_hh, b_ih, b_hh, w_hr, w_ch)``, None where the variant has no such parameter."""
    w = p.params
    return (w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"], w.get("weight_hr_l0"),
            w.get("weight_ch_l0"))


def _grad_names(options: CellOptions) -> tuple:
    """The parameters whose gradients a training row compares (PyTorch's names, in the canonical order)."""
    return TRAIN_GRADS + (("weight_hr_l0",) if options.proj_size else ()) + \
        (("weight_ch_l0",) if options.peepholes else ())


def op_impl(p: VariantProblem, forward: Callable, backward: Callable) -> Impl:
    """The row of a variant op pair with :func:`rnnfast.functional.variant_forward`'s and ``variant_backward``'s
    signatures (rnnfast's own, or the NumPy reference's)."""
    o, x, kind = p.options, p.x, p.scenario.kind
    args = _weights(p)
    lstm = o.family == "lstm"
    if kind == "infer":
        def infer():
            return forward(o, x, None, None, *args)

        def check():
            out, h_n, c_n, _ = infer()
            return [out, h_n[None]] + ([c_n[None]] if lstm else [])

        return Impl(infer, check)
    if kind == "train":
        w_ih, w_hh, _, _, w_hr, w_ch = args
        d_out = p.d_out

        def train():
            out, _, _, workspace = forward(o, x, None, None, *args, training=True)
            return out, backward(o, d_out, None, None, x, None, None, w_ih, w_hh, w_hr, w_ch, out, workspace)

        def check():
            out, g = train()
            return [out, g.d_x, g.d_w_ih, g.d_w_hh, g.d_b_ih, g.d_b_hh] + \
                ([g.d_w_hr] if o.proj_size else []) + ([g.d_w_ch] if o.peepholes else [])

        return Impl(train, check)
    B, H = p.scenario.B, p.scenario.H
    zeros = np.zeros((B, p.state_size), dtype=np.float32)
    c_zeros = np.zeros((B, H), dtype=np.float32) if lstm else None
    return functional_stream_impl(lambda x_t, h, c: forward(o, x_t, h, c if lstm else None, *args), x, lstm, zeros,
                                  c_zeros)


def variant_layer(p: VariantProblem):
    """The rnnfast layer of the row (one layer, forward) with the row's weights: what a user runs."""
    o = p.options
    cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[o.family]
    variant = LayerVariant(o.family, (o.activations,), "forward", clip=o.clip, input_forget=o.input_forget,
                           reset_after=o.reset_after, proj_size=o.proj_size, peepholes=o.peepholes)
    model = cls(p.scenario.I, p.scenario.H, **variant.constructor_kwargs())
    model.load_state_dict(p.params)
    return model


def rnnfast_variant_impl(p: VariantProblem) -> Impl:
    """rnnfast's row: the layer with the variant's options (its forward, backward, and stepper for streaming),
    the native variant path under it."""
    o, x, kind, m = p.options, p.x, p.scenario.kind, variant_layer(p)
    lstm = o.family == "lstm"
    if kind == "infer":
        def check():
            out, state = m(x)
            return [out] + ([state[0], state[1]] if lstm else [state])

        return Impl(lambda: m(x), check)
    if kind == "train":
        d_out, names = p.d_out, _grad_names(o)

        def train():
            m.zero_grad()
            out, _ = m.forward(x, training=True)
            d_x, _ = m.backward(d_out)
            return out, d_x

        def check():
            out, d_x = train()
            return [out, d_x] + [m.grads[name] for name in names]

        return Impl(train, check)
    return stepper_impl(m, x, p.scenario.B, p.state_size)


def numpy_variant_impl(p: VariantProblem) -> Impl:
    forward = getattr(reference, "variant_forward", None)
    backward = getattr(reference, "variant_backward", None)
    if forward is None or backward is None:
        raise NotMeasured("rnnfast.reference.variant_forward is not in this build")
    return op_impl(p, forward, backward)


def torch_variant_impl(p: VariantProblem, torch) -> Impl:
    o = p.options
    if o.family != "lstm" or not o.proj_size or not dataclasses.replace(o, proj_size=0).is_default:
        raise NotApplicable(f"PyTorch has no {describe(o)}")
    I, H, P, B = p.scenario.I, p.scenario.H, o.proj_size, p.scenario.B
    module = torch.nn.LSTM(I, H, proj_size=P)
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in p.params.items()})
    # PyTorch says once that oneDNN has no projection (it runs its own kernel): not the bench's output. The
    # filter lasts as long as the row's warnings context (measure.py), which covers the row's calls.
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    if p.scenario.kind != "stream":
        return torch_sequence_impl(p, torch, module, True, _grad_names(o))
    module.eval()
    xs = [torch.from_numpy(p.x[t:t + 1]) for t in range(p.x.shape[0])]  # (1, B, I)
    zeros, c_zeros = torch.zeros(1, B, P), torch.zeros(1, B, H)
    state = {"h": zeros, "c": c_zeros}

    def run_steps(outs=None):
        with torch.no_grad():
            h, c = state["h"], state["c"]
            for x_t in xs:
                y, (h, c) = module(x_t, (h, c))
                if outs is not None:
                    outs.append(y[0].numpy().copy())
            state["h"], state["c"] = h, c

    return _stepwise_impl(run_steps, state, zeros, len(xs), c_zeros)


def onnx_model(options: CellOptions, params: dict, opset: int = 14):
    """The ONNX model (``onnx.ModelProto``) of one forward ``GRU`` or ``LSTM`` node computing the variant with
    ``params`` (:class:`.scenarios.VariantProblem`'s), with the inputs and outputs of :func:`rnnfast.to_onnx` with ``initial_state=True``: ``x``
    (T, B, I), ``h0`` (, ``c0``) (1, B, H) -> ``out`` (T, B, H), ``h_n`` (, ``c_n``) (1, B, H).

    Gates are reordered to ONNX's (LSTM i, o, f, c; GRU z, r, h), ``B`` = [Wb, Rb]; the GRU has
    ``linear_before_reset`` 0 or 1 as ``reset_after``; the LSTM's peepholes ``P`` (1, 3H) are in ONNX's order
    i, o, f (rnnfast's ``weight_ch`` is i, f, o); ``clip`` and ``input_forget`` are the attributes.
    ValueError for an option ONNX has no way to write here (a projection; activations other than the defaults,
    which no variant of the bench has).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    family = options.family
    if options.proj_size:
        raise ValueError("ONNX's LSTM has no projection (proj_size)")
    if options.activations != default_activations(family):
        raise ValueError("onnx_model writes the default activations only")
    w_ih, w_hh, b_ih, b_hh = (params[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    H = w_hh.shape[1]
    lstm = family == "lstm"
    perm = gates_from_rnnfast(family, ONNX_GATES[family])
    inits = [numpy_helper.from_array(np.ascontiguousarray(a[None], dtype=np.float32), name) for name, a in (
        ("W", permute_gates(w_ih, perm)), ("R", permute_gates(w_hh, perm)),
        ("B", np.concatenate([permute_gates(b_ih, perm), permute_gates(b_hh, perm)])))]
    node_in = ["x", "W", "R", "B", "", "h0"] + (["c0"] if lstm else [])
    if options.peepholes:
        p_i, p_f, p_o = np.split(params["weight_ch_l0"], 3)
        inits.append(numpy_helper.from_array(np.concatenate([p_i, p_o, p_f])[None].astype(np.float32), "P"))
        node_in.append("P")
    attrs: dict = dict(hidden_size=H, direction="forward")
    if family == "gru":
        attrs["linear_before_reset"] = int(options.reset_after)
    if options.clip is not None:
        attrs["clip"] = float(options.clip)
    if options.input_forget:
        attrs["input_forget"] = 1
    states = ["h", "c"] if lstm else ["h"]
    node = helper.make_node(ONNX_OP[family], node_in, ["Y"] + [f"{s}_n" for s in states], **attrs)
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis_1"))
    squeeze = helper.make_node("Squeeze", ["Y", "axis_1"], ["out"])  # (T, 1, B, H) -> (T, B, H)
    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", f32, ["seq_len", "batch", w_ih.shape[1]])]
    inputs += [helper.make_tensor_value_info(f"{s}0", f32, [1, "batch", H]) for s in states]
    outputs = [helper.make_tensor_value_info("out", f32, ["seq_len", "batch", H])]
    outputs += [helper.make_tensor_value_info(f"{s}_n", f32, [1, "batch", H]) for s in states]
    graph = helper.make_graph([node, squeeze], f"bench_{family}_variant", inputs, outputs, inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="rnnfast bench")
    proto.ir_version = helper.find_min_ir_version_for(proto.opset_import)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def onnxruntime_variant_impl(p: VariantProblem, ort, threads: int) -> Impl:
    if p.scenario.kind == "train":
        raise NotMeasured("inference only")
    if p.options.proj_size:
        raise NotApplicable(f"ONNX has no {describe(p.options)}")
    proto = onnx_model(p.options, p.params)
    return onnxruntime_model_impl(p, onnxruntime_session(proto.SerializeToString(), ort, threads),
                                  p.options.family == "lstm")


def keras_variant_impl(p: VariantProblem, keras) -> Impl:
    o, kind = p.options, p.scenario.kind
    if o.family != "gru" or o.reset_after or not dataclasses.replace(o, reset_after=True).is_default:
        raise NotApplicable(f"Keras has no {describe(o)}")
    if kind == "train":
        raise NotMeasured("training not measured (Keras trains through its fit loop)")
    if kind == "stream":
        raise NotMeasured("streaming not measured")
    H = p.scenario.H
    w_ih, w_hh, b_ih, b_hh = _weights(p)[:4]
    perm = keras_gru_order(H)
    # reset_after=False: Keras's one bias (3H,), both n biases outside the reset gate as rnnfast's.
    layer = keras.layers.GRU(H, reset_after=False, **KERAS_SEQUENCE_OPTIONS)
    return keras_layer_impl(p, keras, layer, [w_ih[perm].T, w_hh[perm].T, (b_ih + b_hh)[perm]])


def build(key: str, peer: Peer, p: VariantProblem, threads: int) -> Impl:
    """The implementation ``key`` (of :data:`.peers.IMPLEMENTATIONS`) of the variant's row ``p``; raises
    :class:`.peers.NotMeasured` (or NotApplicable) with the reason where it cannot run it."""
    if IMPLEMENTATIONS[key].precision != "float32":
        raise NotMeasured(REDUCED_REASON)
    if key == "rnnfast":
        return rnnfast_variant_impl(p)
    if key == "numpy":
        return numpy_variant_impl(p)
    if key == "torch":
        return torch_variant_impl(p, peer.module)
    if key == "onnxruntime":
        return onnxruntime_variant_impl(p, peer.module, threads)
    if key == "keras":
        return keras_variant_impl(p, peer.module)
    raise KeyError(key)
