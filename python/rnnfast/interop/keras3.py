"""Keras 3: :func:`from_keras`: the recurrent layers (:mod:`._keras_layer`) and whole models, a
``keras.Sequential`` or a Functional chain (:mod:`._keras_models`). keras is imported only inside the function."""

from __future__ import annotations

from typing import Any

from ._conversion import import_optional
from ._keras_layer import layer_from_keras
from ._keras_models import model_from_keras

__all__ = ["from_keras"]


def from_keras(layer: Any) -> Any:
    """Convert a built Keras 3 recurrent layer into an rnnfast layer with ``batch_first=True``, and a built
    ``keras.Sequential`` or Functional model that is a chain of layers into an :class:`rnnfast.nn.Sequential`.

    Supported: ``keras.layers.SimpleRNN``, ``LSTM`` and ``GRU`` (``reset_after`` True or False), a
    ``keras.layers.RNN`` around one ``SimpleRNNCell``/``LSTMCell``/``GRUCell``, ``go_backwards=True``
    (``direction='reverse'``), and ``Bidirectional`` around any of them with ``merge_mode='concat'``.
    ``activation`` and ``recurrent_activation`` are any Keras activation rnnfast has
    (:func:`rnnfast._variants.activation_from_keras`: linear, sigmoid, tanh, relu, relu6, elu, selu,
    softsign, softplus, exponential, silu/swish, hard_sigmoid (Keras 3's ``relu6(x + 3) / 6``),
    leaky_relu): ``activation`` is the RNN's activation, the LSTM's roles g and h and the GRU's role g,
    ``recurrent_activation`` the gates' role f (``rnnfast.LSTM(activation=..., recurrent_activation=...)``
    are the same). Kernels (I, G*H) are transposed and the gates reordered (GRU z,r,h to r,z,n; the LSTM's
    i,f,c,o is already rnnfast's i,f,g,o); the single bias of SimpleRNN, LSTM and GRU with
    ``reset_after=False`` becomes ``bias_ih`` (``bias_hh`` zeros); the GRU's (2, 3H) bias with
    ``reset_after=True`` is [``bias_ih``, ``bias_hh``]. ``reset_after=False`` is rnnfast's
    ``GRU(reset_after=False)``: the reset gate multiplies h before the recurrent product.

    How the Keras call maps to ``out, state = model(x, state)``, x (B, T, I):

    - ``return_sequences=True`` output is ``out`` (B, T, D*H); without it, Keras returns the last output,
      which is ``out[:, -1]`` for one direction and ``np.concatenate([h_n[0], h_n[1]], -1)`` for
      ``Bidirectional`` (``h_n`` (D, B, H));
    - ``go_backwards=True`` (outside ``Bidirectional``): Keras returns the outputs in the order it computes
      them, from the last time step to the first, where rnnfast's reverse direction aligns ``out[:, t]``
      with ``x[:, t]``: Keras's ``return_sequences`` output is ``out[:, ::-1]``, and its last output
      ``out[:, 0]`` (= ``h_n[0]``);
    - ``return_state`` states are ``h_n[d]`` (and ``c_n[d]``) for direction d; Keras's ``initial_state``
      [h, (c)] per direction is ``state`` stacked on axis 0;
    - ``dropout``/``recurrent_dropout`` act only in training; ``unroll``, ``unit_forget_bias`` and the
      initializers do not change the computation; ``stateful`` layers keep the state between calls,
      which here is passed explicitly (``state=`` or ``model.stepper``);
    - Keras masks (from ``Masking`` or ``mask_zero``) repeat the previous state at masked steps, a different
      rule from rnnfast's ``lengths=`` (zeros past each sequence's end): the converted model sees no mask.

    Whole models: a ``keras.Sequential``, or a Functional model with one input and one output in which each
    layer feeds only the next (nested such models are flattened), becomes an :class:`rnnfast.nn.Sequential`
    whose ``model.predict(x)`` gives Keras's ``predict(x)`` (x batch-first, as in Keras), the modules named
    after the Keras layers (e.g. ``'lstm'``; what a layer adds after its own module, ``'dense_softmax'``,
    ``'lstm_laststep'``). Layer by layer: ``InputLayer`` -> nothing; ``Embedding`` -> :class:`~rnnfast.nn.Embedding`;
    ``SimpleRNN``/``LSTM``/``GRU``/``RNN`` -> the layer converted as above, followed by
    :class:`~rnnfast.nn.LastStep` when ``return_sequences=False``; ``Bidirectional`` (``merge_mode='concat'``,
    ``return_sequences=True``) -> the bidirectional layer; ``Dense`` -> :class:`~rnnfast.nn.Linear` (the kernel
    (in, out) transposed into ``weight`` (out, in)) followed by its activation's module; ``Dropout`` ->
    :class:`~rnnfast.nn.Dropout` (``rate``); ``Activation``, ``ReLU`` (plain), ``LeakyReLU``, ``ELU``,
    ``Softmax`` -> their modules. The activations: linear (nothing), relu, tanh, sigmoid, softmax (last axis),
    gelu (Keras's default exact form), elu, selu, softplus, silu/swish, leaky_relu (slope 0.2). Every layer is
    converted before the model is built: one that does not convert refuses the whole model, the message naming
    the layer (name and class) and the option. Refused, and why:

    - ``Embedding(mask_zero=True)`` (and ``Masking``): Keras skips the masked steps wherever they are, holding
      the state and (outside Bidirectional) repeating the previous output; rnnfast's ``lengths=`` zero the
      steps past each sequence's end. They agree only on post-padded input and outputs read at valid steps
      (e.g. ``return_sequences=False``), which the converter cannot know, so it does not guess: rebuild the
      model with ``mask_zero=False`` to convert it, and give rnnfast ``lengths=`` for post-padded input;
    - ``Bidirectional`` with ``return_sequences=False``: Keras returns the backward direction's final state
      (its output at the first step) with the forward one's last output, which no module picks; use
      ``return_sequences=True`` and reduce after, or convert the layer alone and take ``h_n``;
    - ``go_backwards=True`` outside Bidirectional (Keras returns its outputs reversed in time),
      ``return_state``, ``stateful``; a ``Dropout`` with ``noise_shape``; an activation other than those
      above; a layer without parameters computing in another dtype than the layers around it (Keras casts
      there); branches, several inputs or outputs, subclassed models; any other layer.

    Raises
    ------
    NotImplementedError
        Naming the option (and for a model the layer), for what does not map exactly: the refusals of a
        model above; an ``activation`` or ``recurrent_activation``
        rnnfast does not have (e.g. 'gelu', 'mish', 'softmax', a custom function), ``merge_mode`` other
        than 'concat', a ``Bidirectional`` whose two layers differ (but in their activations, which rnnfast
        holds per direction) or whose forward layer has ``go_backwards=True``.
    TypeError
        For anything but the supported layers and models (or subclasses overriding ``call``), or a dtype
        policy that does not compute in float32 or float64.
    ValueError
        If the layer is not built (has no weights yet).
    ImportError
        If keras is not importable.
    """
    keras = import_optional("keras", "rnnfast.from_keras")
    if isinstance(layer, keras.Model):
        return model_from_keras(keras, layer)
    return layer_from_keras(keras, layer)
