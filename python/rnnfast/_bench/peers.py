"""The peers rnnfast is timed against, how each is found (:func:`detect_peers`), the implementations
(:data:`IMPLEMENTATIONS`: a framework in one precision) and each one's code for a row (:func:`build_impl`):
rnnfast itself, the NumPy reference, PyTorch, ONNX Runtime and Keras in float32, all on the weights of the
row's rnnfast model. The reduced-precision implementations (rnnfast int8 and bf16, ONNX Runtime int8,
OpenVINO bf16, LiteRT int8) are in :mod:`.reduced`."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

import rnnfast
from .. import reference

from .._cells import cell_facts
from .scenarios import Problem

PEERS: dict[str, str] = {
    "numpy": "NumPy reference",
    "torch": "PyTorch",
    "onnxruntime": "ONNX Runtime",
    "keras": "Keras",
    "openvino": "OpenVINO",
    "litert": "LiteRT",
}
PEER_ALIASES = {"numpy": "numpy", "reference": "numpy", "torch": "torch", "pytorch": "torch",
                "onnxruntime": "onnxruntime", "ort": "onnxruntime", "onnx": "onnxruntime", "keras": "keras",
                "openvino": "openvino", "litert": "litert", "tflite": "litert"}


@dataclass(frozen=True)
class Implementation:
    key: str  # the key of its results in a row
    framework: str  # "rnnfast" or a key of PEERS
    precision: str  # "float32", "int8" or "bf16": the weights' (inputs and outputs are float32 in every one)


#: Every implementation, in the order of the output: rnnfast's first, ``rnnfast`` (float32) the reference.
IMPLEMENTATIONS: dict[str, Implementation] = {i.key: i for i in (
    Implementation("rnnfast", "rnnfast", "float32"),
    Implementation("rnnfast_int8", "rnnfast", "int8"),
    Implementation("rnnfast_bf16", "rnnfast", "bf16"),
    Implementation("numpy", "numpy", "float32"),
    Implementation("torch", "torch", "float32"),
    Implementation("onnxruntime", "onnxruntime", "float32"),
    Implementation("onnxruntime_int8", "onnxruntime", "int8"),
    Implementation("keras", "keras", "float32"),
    Implementation("openvino_bf16", "openvino", "bf16"),
    Implementation("litert_int8", "litert", "int8"),
)}


def implementation_label(key: str, peer_label: Optional[str] = None) -> str:
    """``rnnfast``, ``rnnfast int8``, ``ONNX Runtime``, ``ONNX Runtime int8``, ``LiteRT int8``, ...;
    ``peer_label`` overrides the framework's name (Keras names its backend)."""
    impl = IMPLEMENTATIONS[key]
    name = "rnnfast" if impl.framework == "rnnfast" else (peer_label or PEERS[impl.framework])
    return name if impl.precision == "float32" else f"{name} {impl.precision}"


def select_implementations(found: dict, precisions: Sequence[str]) -> list:
    """The implementation keys of a run: rnnfast float32 always (every comparison's reference), rnnfast in the
    other precisions asked for, and each available peer in each precision asked for that it has."""
    keys = []
    for key, impl in IMPLEMENTATIONS.items():
        if key == "rnnfast":
            keys.append(key)
        elif impl.precision in precisions and (
                impl.framework == "rnnfast" or (impl.framework in found and found[impl.framework].available)):
            keys.append(key)
    return keys


class NotMeasured(Exception):
    """A peer that cannot run a scenario; the message says why."""


class NotApplicable(NotMeasured):
    """A peer that has no operator (or mode) for the scenario at all: shown as "n/a" rather than "n/m"."""


@dataclass
class Impl:
    """One implementation of one row: ``fn`` is what is timed (one call, or for streaming ``T`` steps);
    ``check`` runs it from the zero state and returns its results in the canonical order:
    inference ``[out, h_n(, c_n)]``, streaming ``[outputs of every step]``, training
    ``[out, d_x, d_w_ih, d_w_hh, d_b_ih, d_b_hh]``; shapes as in rnnfast."""

    fn: Callable[[], object]
    check: Callable[[], list]
    steps: int = 1  # calls to the model per fn() (streaming: the steps of a sample)


def _stepwise_impl(run_steps: Callable, state: dict, zeros, steps: int, c_zeros=None) -> Impl:
    """A streaming peer driven one step per call: ``run_steps(outs)`` advances every step from
    ``state`` (appending each output to ``outs`` when given); the check runs them from the zero
    state and leaves the state at zero again. ``c_zeros``: the zero cell state where it differs from
    ``zeros`` in shape (an LSTM with a projection)."""
    c_zeros = zeros if c_zeros is None else c_zeros

    def check():
        state["h"], state["c"] = zeros, c_zeros
        outs: list = []
        run_steps(outs)
        state["h"], state["c"] = zeros, c_zeros
        return [np.stack(outs)]

    return Impl(run_steps, check, steps=steps)


def rnnfast_impl(p: Problem, model: Any = None, output_only: bool = False) -> Impl:
    """The row's model, or ``model`` (a quantized copy) on the row's input; ``output_only``: the check of an
    inference returns ``[out]`` only (what a reduced-precision row compares)."""
    kind, m, x = p.scenario.kind, (p.model if model is None else model), p.x
    if kind == "infer":
        return Impl(lambda: m(x), lambda: _flat(m(x))[:1] if output_only else _flat(m(x)))
    if kind == "train":
        d_out = p.d_out

        def train():
            m.zero_grad()
            out, _ = m.forward(x, training=True)
            d_x, _ = m.backward(d_out)
            return out, d_x

        def check():
            out, d_x = train()
            g = m.grads
            return [out, d_x, g["weight_ih_l0"], g["weight_hh_l0"], g["bias_ih_l0"], g["bias_hh_l0"]]

        return Impl(train, check)
    return stepper_impl(m, x, p.scenario.B, p.scenario.H)


def stepper_impl(model: Any, x: np.ndarray, batch: int, width: int) -> Impl:
    """A streaming row of an rnnfast layer: its stepper fed x (T, B, I) one step per call, into an output of
    ``width`` (H, or the projection's P)."""
    s = model.stepper(batch=batch)
    xs = list(x)  # (B, I) views: what a caller feeding a stream holds
    y = np.empty((batch, width), dtype=np.float32)
    step = s.step

    def stream():
        for x_t in xs:
            step(x_t, out=y)

    def check():
        s.reset()
        outs = [step(x_t, out=y).copy() for x_t in xs]
        s.reset()
        return [np.stack(outs)]

    return Impl(stream, check, steps=len(xs))


def numpy_impl(p: Problem) -> Impl:
    kind, cell, x = p.scenario.kind, p.cell, p.x
    w = p.params
    w_ih, w_hh, b_ih, b_hh = w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]
    lstm = cell == "lstm"
    if cell == "lstm":
        forward = lambda x, h, c, **kw: reference.lstm(x, h, c, w_ih, w_hh, b_ih, b_hh, **kw)  # noqa: E731
    elif cell == "gru":
        forward = lambda x, h, c, **kw: reference.gru(x, h, w_ih, w_hh, b_ih, b_hh, **kw)  # noqa: E731
    else:
        forward = lambda x, h, c, **kw: reference.rnn(x, h, w_ih, w_hh, b_ih, b_hh, **kw)  # noqa: E731
    if kind == "infer":
        def infer():
            r = forward(x, None, None)
            return [r[0], r[1][None]] + ([r[2][None]] if lstm else [])

        return Impl(infer, infer)
    if kind == "train":
        d_out = p.d_out

        def train():
            if lstm:
                out, _, _, ws = forward(x, None, None, training=True)
                g = reference.lstm_backward(d_out, None, None, x, None, None, w_ih, w_hh, out, ws)
            elif cell == "gru":
                out, _, ws = forward(x, None, None, training=True)
                g = reference.gru_backward(d_out, None, x, None, w_ih, w_hh, out, ws)
            else:
                out, _, ws = forward(x, None, None, training=True)
                g = reference.rnn_backward(d_out, None, x, None, w_ih, w_hh, out, ws)
            return [out, g.d_x, g.d_w_ih, g.d_w_hh, g.d_b_ih, g.d_b_hh]

        return Impl(train, train)
    zeros = np.zeros((p.scenario.B, p.scenario.H), dtype=np.float32)
    return functional_stream_impl(forward, x, lstm, zeros)


def functional_stream_impl(forward: Callable, x: np.ndarray, lstm: bool, zeros: np.ndarray,
                           c_zeros: Optional[np.ndarray] = None) -> Impl:
    """The streaming row of a functional op ``forward(x_t, h, c)`` returning ``(out, h_n, c_n, ...)`` (an
    LSTM's) or ``(out, h_n, ...)``: called once per step with T = 1, the state carried from call to call;
    ``zeros`` the zero h (B, R), ``c_zeros`` the zero c where its shape differs."""
    xs = [x[t:t + 1] for t in range(x.shape[0])]  # (1, B, I): one step of the functional op
    state = {"h": zeros, "c": zeros if c_zeros is None else c_zeros}

    def run_steps(outs=None):
        h, c = state["h"], state["c"]
        for x_t in xs:
            r = forward(x_t, h, c)
            h = r[1]
            if lstm:
                c = r[2]
            if outs is not None:
                outs.append(r[0][0])
        state["h"], state["c"] = h, c

    return _stepwise_impl(run_steps, state, zeros, len(xs), c_zeros)


def torch_impl(p: Problem, torch) -> Impl:
    kind, cell, x = p.scenario.kind, p.cell, p.x
    I, H = p.scenario.I, p.scenario.H
    sd = {k: torch.from_numpy(v.copy()) for k, v in p.params.items()}
    lstm = cell == "lstm"
    if kind == "stream":
        cls = getattr(torch.nn, cell_facts(cell).layer_class + "Cell")  # torch.nn.LSTMCell, ...
        module = cls(I, H).eval()
        module.load_state_dict({k[:-3]: v for k, v in sd.items()})  # weight_ih_l0 -> weight_ih
        xs = list(torch.from_numpy(x))
        zeros = torch.zeros(p.scenario.B, H)
        state = {"h": zeros, "c": zeros}

        def run_steps(outs=None):
            with torch.no_grad():
                h, c = state["h"], state["c"]
                for x_t in xs:
                    if lstm:
                        h, c = module(x_t, (h, c))
                    else:
                        h = module(x_t, h)
                    if outs is not None:
                        outs.append(h.numpy().copy())
                state["h"], state["c"] = h, c

        return _stepwise_impl(run_steps, state, zeros, len(xs))

    cls = getattr(torch.nn, cell_facts(cell).layer_class)  # torch.nn.LSTM, ...
    module = cls(I, H)
    module.load_state_dict(sd)
    return torch_sequence_impl(p, torch, module, lstm)


#: The gradients a training row compares, after its output and d_x (PyTorch's names).
TRAIN_GRADS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def torch_sequence_impl(p: Problem, torch, module, lstm: bool, grads: Sequence[str] = TRAIN_GRADS) -> Impl:
    """The inference or training row of a ``torch.nn`` recurrent ``module`` holding the row's weights;
    ``grads``: the parameters whose gradients a training row's check returns."""
    kind, x = p.scenario.kind, p.x
    if kind == "infer":
        module.eval()
        xt = torch.from_numpy(x)

        def infer():
            with torch.no_grad():
                return module(xt)

        def check():
            out, state = infer()
            states = list(state) if lstm else [state]
            return [out.numpy()] + [s.numpy() for s in states]

        return Impl(infer, check)

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    d = torch.from_numpy(p.d_out)

    def train():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        out, _ = module(xt)
        out.backward(d)
        return out

    def check():
        out = train()
        return [out.detach().numpy(), xt.grad.numpy()] + [getattr(module, g).grad.numpy() for g in grads]

    return Impl(train, check)


def onnxruntime_impl(p: Problem, ort, threads: int) -> Impl:
    if p.scenario.kind == "train":
        raise NotMeasured("inference only")
    try:
        proto = rnnfast.to_onnx(p.model, initial_state=True)   # h0 (, c0) fed: streaming passes them on
    except Exception as exc:  # a converter that refuses or is missing: skip the peer, say why
        raise NotMeasured(f"rnnfast.to_onnx failed: {type(exc).__name__}: {exc}") from None
    return onnxruntime_model_impl(p, onnxruntime_session(proto.SerializeToString(), ort, threads),
                                  p.cell == "lstm")


def onnxruntime_session(blob: bytes, ort, threads: int):
    """An ONNX Runtime CPU session of the serialised model ``blob`` on ``threads`` threads, quiet."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])


def onnxruntime_model_impl(p: Problem, sess, lstm: bool) -> Impl:
    """The inference or streaming row of an ONNX Runtime session of a one-layer model with
    :func:`rnnfast.to_onnx`'s inputs and outputs with ``initial_state=True`` (``x``, ``h0`` (, ``c0``) -> ``out``, ``h_n`` (, ``c_n``)); for
    streaming it is called once per step with T = 1, the state passed in and out."""
    kind, x = p.scenario.kind, p.x
    B, H = p.scenario.B, p.scenario.H
    zeros = np.zeros((1, B, H), dtype=np.float32)
    run = sess.run
    if kind == "infer":
        feed = {"x": x, "h0": zeros}
        if lstm:
            feed["c0"] = zeros

        def infer():
            return run(None, feed)

        return Impl(infer, lambda: list(infer()))

    xs = [x[t:t + 1] for t in range(x.shape[0])]
    state = {"h": zeros, "c": zeros}

    def run_steps(outs=None):
        h, c = state["h"], state["c"]
        for x_t in xs:
            if lstm:
                y, h, c = run(None, {"x": x_t, "h0": h, "c0": c})
            else:
                y, h = run(None, {"x": x_t, "h0": h})
            if outs is not None:
                outs.append(y[0])
        state["h"], state["c"] = h, c

    return _stepwise_impl(run_steps, state, zeros, len(xs))


def keras_impl(p: Problem, keras) -> Impl:
    kind, cell = p.scenario.kind, p.cell
    if kind == "train":
        raise NotMeasured("training not measured (Keras trains through its fit loop)")
    if kind == "stream":
        raise NotMeasured("streaming not measured")
    H = p.scenario.H
    w = p.params
    w_ih, w_hh, b_ih, b_hh = w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]
    kw = KERAS_SEQUENCE_OPTIONS
    if cell == "lstm":  # Keras gates i, f, c, o: PyTorch's order; one bias
        layer = keras.layers.LSTM(H, **kw)
        weights = [w_ih.T, w_hh.T, b_ih + b_hh]
    elif cell == "gru":  # Keras gates z, r, h; reset_after=True is PyTorch's GRU; biases (2, 3H)
        layer = keras.layers.GRU(H, reset_after=True, **kw)
        perm = keras_gru_order(H)
        weights = [w_ih[perm].T, w_hh[perm].T, np.stack([b_ih[perm], b_hh[perm]])]
    else:
        layer = keras.layers.SimpleRNN(H, activation="tanh", **kw)
        weights = [w_ih.T, w_hh.T, b_ih + b_hh]
    return keras_layer_impl(p, keras, layer, weights)


#: What the bench's Keras layers return: every step's output and the final state(s).
KERAS_SEQUENCE_OPTIONS = dict(return_sequences=True, return_state=True)


def keras_gru_order(H: int) -> np.ndarray:
    """The rows of PyTorch's GRU weights (gates r, z, n) in Keras's gate order (z, r, h)."""
    return np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])


def keras_layer_impl(p: Problem, keras, layer, weights: list) -> Impl:
    """The inference row of a Keras recurrent ``layer`` (made with :data:`KERAS_SEQUENCE_OPTIONS`) given
    ``weights`` (its ``set_weights`` list) on the row's input."""
    xb = np.ascontiguousarray(p.x.transpose(1, 0, 2))  # Keras is batch-major
    layer(xb[:, :1])  # build
    layer.set_weights([np.ascontiguousarray(a, dtype=np.float32) for a in weights])
    xk = keras.ops.convert_to_tensor(xb)
    no_grad = _keras_no_grad(keras)

    def infer():
        with no_grad():
            return layer(xk, training=False)

    def check():
        r = [keras.ops.convert_to_numpy(a) for a in infer()]
        return [r[0].transpose(1, 0, 2)] + [a[None] for a in r[1:]]

    return Impl(infer, check)


def _keras_no_grad(keras):
    """The context Keras's own ``predict`` runs in: ``torch.no_grad`` on the torch backend."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad
    import contextlib

    return contextlib.nullcontext


@dataclass
class Peer:
    key: str
    label: str
    module: Any = None
    version: str = ""
    reason: str = ""  # why it is not measured, when module is None

    @property
    def available(self) -> bool:
        return self.module is not None


def detect_peers(wanted: Sequence[str]) -> dict:
    """The peers in ``wanted`` (keys of :data:`PEERS`), each with its module or the reason it is absent."""
    peers: dict = {}
    for key in wanted:
        peer = Peer(key, PEERS[key])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if key == "numpy":
                    peer.module, peer.version = reference, np.__version__
                elif key == "torch":
                    import torch

                    peer.module, peer.version = torch, torch.__version__.split("+")[0]
                elif key == "onnxruntime":
                    import onnxruntime
                    import onnx  # noqa: F401  (rnnfast.to_onnx needs it)

                    if not hasattr(rnnfast, "to_onnx"):
                        raise ImportError("rnnfast.to_onnx is not available")
                    peer.module, peer.version = onnxruntime, onnxruntime.__version__
                elif key == "keras":
                    os.environ.setdefault("KERAS_BACKEND", "torch")
                    import keras

                    if int(keras.__version__.split(".")[0]) < 3:
                        raise ImportError(f"Keras 3 is needed, found {keras.__version__}")
                    peer.module = keras
                    peer.version = keras.__version__
                    peer.label = f"Keras ({keras.backend.backend()})"
                elif key == "openvino":
                    import openvino

                    openvino.Core  # noqa: B018  (the runtime, not only the namespace package)
                    import onnx  # noqa: F401  (rnnfast.to_onnx makes the model OpenVINO reads)

                    peer.module, peer.version = openvino, openvino.__version__.split("-")[0]
                elif key == "litert":
                    import ai_edge_litert
                    from ai_edge_litert import interpreter, schema_py_generated  # noqa: F401
                    import flatbuffers  # noqa: F401  (the model is written with LiteRT's schema)

                    peer.module = ai_edge_litert
                    peer.version = _distribution_version("ai-edge-litert")
        except Exception as exc:  # ImportError, or a broken installation: not measured, say why
            peer.module = None
            peer.reason = f"not installed ({exc})" if isinstance(exc, ImportError) else \
                f"unusable ({type(exc).__name__}: {exc})"
        peers[key] = peer
    return peers


def _distribution_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return ""


def build_impl(key: str, peer: Optional[Peer], p: Problem, threads: int) -> Impl:
    """The float implementation ``key`` (of :data:`IMPLEMENTATIONS`) of the row ``p``; raises
    :class:`NotMeasured` (or :class:`NotApplicable`) with the reason where it cannot run it. The
    reduced-precision ones are :func:`rnnfast._bench.reduced.build`'s (measure.py asks it first)."""
    if key == "rnnfast":
        return rnnfast_impl(p)
    if key == "numpy":
        return numpy_impl(p)
    if key == "torch":
        return torch_impl(p, peer.module)
    if key == "onnxruntime":
        return onnxruntime_impl(p, peer.module, threads)
    if key == "keras":
        return keras_impl(p, peer.module)
    raise KeyError(key)


def _flat(result) -> list:
    """rnnfast's layer result ``(out, h_n)`` or ``(out, (h_n, c_n))`` as a flat list."""
    out, state = result
    return [out] + (list(state) if isinstance(state, tuple) else [state])
