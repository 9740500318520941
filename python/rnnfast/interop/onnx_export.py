"""ONNX: :func:`to_onnx` writes an rnnfast layer as one ``RNN``/``LSTM``/``GRU`` node per layer (an int8 LSTM as ONNX
Runtime's ``DynamicQuantizeLSTM``; the nodes written by :mod:`._onnx_layer`), and a whole model, an
:class:`rnnfast.nn.Sequential`, as one graph (:mod:`._onnx_models`); :mod:`.onnx_graph` reads the layers' graphs
back. onnx is imported only inside the function."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, Union, cast

import numpy as np

from ._conversion import Model, check_model, import_optional
from ._onnx_builder import GraphBuilder, check_opset, finish_model
from ._onnx_layer import layer_attributes, write_layer
from ._onnx_models import sequential_to_onnx
from ._variant import family_of

if TYPE_CHECKING:
    from ..nn.sequential import Sequential

__all__ = ["to_onnx"]


def to_onnx(model: Union[Model, "Sequential"], path: Optional[Union[str, "os.PathLike[str]"]] = None, *,
            opset: int = 14, initial_state: bool = False, lengths: bool = False) -> Any:
    """Write an rnnfast layer as a standard ONNX model: one ``RNN``/``LSTM``/``GRU`` node per layer (for an
    LSTM quantized to int8, ONNX Runtime's ``DynamicQuantizeLSTM``); or a whole model, an
    :class:`rnnfast.nn.Sequential`, as one graph (below).

    The graph computes what ``model(x, state)`` computes (inference: no dropout), with rnnfast's layouts:

    - inputs ``x`` (T, B, I) (or (B, T, I) with ``batch_first``); with ``initial_state=True`` also ``h0``
      (and for the LSTM ``c0``) (L*D, B, H) (by default the states start at zeros, as ``model(x)``); with
      ``lengths=True`` also ``lengths`` (B,) int32, the ONNX ``sequence_lens`` of every node (PyTorch's
      packed-sequence semantics);
    - outputs ``out`` (T, B, D*H) (or (B, T, D*H)), ``h_n`` (and ``c_n``) (L*D, B, H).

    T and B are symbolic ('seq_len', 'batch'). Gates are reordered to ONNX's (LSTM i,o,f,c; GRU z,r,h), the
    biases concatenated into ``B`` = [Wb, Rb] (omitted without bias), the GRU written with
    ``linear_before_reset`` 1 (``reset_after=True``, PyTorch's) or 0. The cell variants ONNX expresses are
    written as its attributes (``direction='reverse'``, ``clip``, ``input_forget``, peepholes as ``P`` (D,
    3*H) in ONNX's gate order i, o, f, and ``activations`` per direction with every ``activation_alpha``
    and ``activation_beta`` value written, one per activation that takes it, in order); a layer with
    ``proj_size`` or an activation ONNX lacks (selu, exponential, silu, relu6) is refused. Between layers
    and at the end, ``Squeeze`` (D=1) or ``Transpose`` + ``Reshape``
    (D=2) turn ONNX's (T, D, B, H) into (T, B, D*H); :func:`from_onnx` reads the file back as one model (the
    same, but that peephole weights that are all zero read back as no peepholes). ONNX's float attributes are
    float32: ``clip`` and the activations' alpha and beta are rounded to float32 in the file.
    Nodes use ``layout=0`` (what ONNX Runtime supports), with a ``Transpose`` for ``batch_first``. A
    float64 model gives a float64 graph (valid ONNX; ONNX Runtime's CPU kernels run float32 only).

    An LSTM quantized to int8 (:func:`rnnfast.quantize`) is written with ONNX Runtime's contrib operator
    ``DynamicQuantizeLSTM`` (domain ``com.microsoft`` version 1, also imported by the model), which ONNX
    Runtime runs and onnx's checker accepts (other runtimes may not know it): its int8 weights and row
    scales exactly, ``W`` (D, I, 4*H) and ``R`` (D, H, 4*H) in ONNX's gate order, per-row ``W_scale`` and
    ``R_scale`` (D, 4*H) float32, zero points 0 (int8), ``B`` float32 as above. ONNX Runtime quantizes the
    activations itself, per tensor where rnnfast quantizes per row, so its outputs agree with the model's
    within the quantization error, not bit for bit (in the tests rnnfast's are as close to the float model
    as ONNX Runtime's, or closer); :func:`from_onnx` reads the file back as the same int8 model, bit for bit.

    Nothing else quantized is written: ONNX has no quantized recurrent operator and ONNX Runtime none for
    the GRU or the RNN, and ONNX's bfloat16 RNN/LSTM/GRU (opset 22) compute in bfloat16 throughout (biases,
    states and outputs rounded at every step, where rnnfast's bf16 keeps them float32), which ONNX Runtime
    does not run. A float graph would compute something else than the model, so these raise a ValueError;
    export the float model instead.

    A Sequential is written as one graph from input ``x`` (and with ``lengths=True`` ``lengths`` (B,) int32)
    to output ``y``, computing ``model(x, lengths=lengths)``: ``Embedding`` as ``Gather`` (``x`` then int64
    indices), each recurrent layer as above (its state starting at zeros and not an output), ``LastStep`` as
    ``Gather`` of the last step, or with lengths a selection of each sequence's step ``lengths[b] - 1`` (zeros
    for length 0), ``Linear`` as ``Gemm`` on 2-D input and ``MatMul`` + ``Add`` on sequences, ``Dropout`` as
    nothing (inference), ``ReLU``/``Tanh``/``Sigmoid``/``ELU``/``LeakyReLU``/``SELU``/``Softmax``/``Identity``
    as their operators, ``GELU`` as ``x * (1 + Erf(x / sqrt 2)) / 2`` (ONNX's ``Gelu`` needs opset 20),
    ``SiLU`` as ``x * Sigmoid(x)``, ``Softplus`` as ``Softplus(beta x) / beta`` with ``Where`` for
    ``threshold``; nested Sequentials inline. With lengths, the steps past each sequence's end are zeroed
    after every module, as the Sequential zeroes them. ``x``'s shape is symbolic ((T, B), (B, T) or
    (T, B, I)...) where a recurrent layer tells the layout. A model with a module not listed (a subclass
    included) is refused, naming it by its path (``model['2']``), as is ``initial_state=True`` (a Sequential
    has no state input).

    Parameters
    ----------
    model : rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU or rnnfast.nn.Sequential
        A float32 or float64 layer, or an LSTM quantized to int8; or a Sequential of such layers and the
        modules above.
    path : str or os.PathLike, optional
        Where to save the model; if None, it is only returned.
    opset : int, default 14
        The ai.onnx opset version, at least 14 and at most what the installed ``onnx`` knows.
    initial_state : bool, default False
        Whether the graph takes the initial states ``h0`` (, ``c0``) as (required) inputs; without them they
        are zeros, and ``session.run(None, {"x": x})`` runs the model as ``model(x)`` does. Omitting them by
        default, rather than declaring them optional, is deliberate: ONNX has no plain optional input. An
        input with a default (an initializer of the same name) has one fixed shape, so it fits one batch size
        only; an ``optional``-typed input needs opset 18 and ``OptionalHasElement``/``If`` nodes around every
        recurrent node, which not every runtime or converter reads. So the graph that runs with ``x`` alone
        has no state inputs at all, and ``initial_state=True`` adds them as required inputs (streaming, or a
        state from elsewhere). (The default was True before issue 18.)
    lengths : bool, default False
        Whether the graph takes per-sequence lengths.

    Returns
    -------
    onnx.ModelProto
        The model, checked with ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    TypeError
        If ``model`` is not an rnnfast layer or Sequential (or a Sequential holds a module not written), or
        ``opset`` not an int.
    ValueError
        If ``opset`` is out of range; for a GRU or RNN quantized to int8 or any layer quantized to bf16
        (above), the message naming why; for an LSTM with ``proj_size`` (ONNX's LSTM has no projection) or a
        layer with an activation ONNX's recurrent operators lack (selu, exponential, silu, relu6), naming
        the option (inside a Sequential, after the layer's path); ``initial_state=True`` for a Sequential;
        ``lengths=True`` for a Sequential without recurrent layer or LastStep.
    ImportError
        If the ``onnx`` package is not importable (``pip install 'rnnfast[onnx]'``).
    """
    from ..nn.sequential import Sequential

    if isinstance(model, Sequential):
        return sequential_to_onnx(model, path, opset=opset, initial_state=initial_state, lengths=lengths)
    layer = cast(Model, check_model(model, quantized=True))
    node_attrs = layer_attributes(layer)
    onnx = import_optional("onnx", "rnnfast.to_onnx")
    opset = check_opset(onnx, opset)
    from onnx import TensorProto

    b = GraphBuilder(onnx)
    helper = b.helper
    family = family_of(layer)
    L, D, H, I = layer.num_layers, layer.num_directions, layer.hidden_size, layer.input_size
    elem = TensorProto.DOUBLE if layer.dtype == np.float64 else TensorProto.FLOAT
    bf = layer.batch_first
    state_names = ["h0", "c0"] if family == "lstm" else ["h0"]
    data_dims = ["batch", "seq_len", I] if bf else ["seq_len", "batch", I]
    inputs = [helper.make_tensor_value_info("x", elem, data_dims)]
    if initial_state:
        inputs += [helper.make_tensor_value_info(s, elem, [L * D, "batch", H]) for s in state_names]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]))
    finals = write_layer(b, layer, node_attrs, "x", "out", lengths="lengths" if lengths else None,
                         states=state_names if initial_state else None, with_states=True)
    out_dims = ["batch", "seq_len", D * H] if bf else ["seq_len", "batch", D * H]
    outputs = [helper.make_tensor_value_info("out", elem, out_dims)]
    outputs += [helper.make_tensor_value_info(f, elem, [L * D, "batch", H]) for f in finals]
    return finish_model(b, f"rnnfast_{family}", inputs, outputs, opset, f"rnnfast {model!r}", path)
