"""PyTorch: :func:`from_torch` and :func:`to_torch`: the recurrent modules (``torch.nn.RNN``, ``LSTM``, ``GRU``,
:mod:`._torch_layer`), whole models (``torch.nn.Sequential``) and their other modules (:mod:`._torch_models`).

torch is imported only inside the functions.
"""

from __future__ import annotations

from typing import Any, cast

from .._rnn_base import RNNBase
from ._conversion import Model, check_model, import_optional
from ._torch_layer import layer_from_torch, layer_to_torch
from ._torch_models import module_from_torch, module_to_torch

__all__ = ["from_torch", "to_torch"]


def from_torch(module: Any) -> Any:
    """Convert a ``torch.nn.RNN``, ``torch.nn.LSTM`` or ``torch.nn.GRU`` into the rnnfast layer of the same class,
    and a whole model (a ``torch.nn.Sequential``) or one of its modules into its :mod:`rnnfast.nn` counterpart.

    Every option carries over: ``input_size``, ``hidden_size``, ``num_layers``, ``nonlinearity`` ('tanh' or
    'relu'), ``bias``, ``batch_first``, ``bidirectional``, ``dropout`` (which acts only in training) and
    the LSTM's ``proj_size``. The parameters are copied (``weight_ih_l{k}`` (G*H, I_k), ``weight_hh_l{k}``
    (G*H, R), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), with ``proj_size`` P > 0 also ``weight_hr_l{k}``
    (P, H), R = P or H, suffix ``_reverse``): the names, shapes and gate orders are the same in both.
    Parametrized weights (``torch.nn.utils.parametrize``) are read as the module computes them. The dtype
    (float32 or float64) is the module's.

    ``model(x, state)`` then gives what ``module(x, state)`` gives in eval mode: ``out`` (T, B, D*R) or
    (B, T, D*R) with ``batch_first``, and ``h_n`` (L*D, B, R) (and ``c_n`` (L*D, B, H)).

    Whole models and their modules (each to the :mod:`rnnfast.nn` class of the same name, with the same
    parameter names, so the same ``state_dict`` keys):

    - ``torch.nn.Sequential`` -> :class:`rnnfast.nn.Sequential` with the same child names (keys
      ``'<child>.<parameter>'``), nested Sequentials kept nested; a list or tuple of modules (named '0', '1',
      ...) or a mapping of names to modules converts as the ``torch.nn.Sequential`` of them. A recurrent
      module inside passes on its output sequence only (its state starts at zeros and is dropped): what torch
      computes when the children run one after another with ``output[0]`` taken from each recurrent one.
      (``torch.nn.Sequential`` holds plain recurrent modules but cannot run them, their output being a tuple;
      the output-only subclasses :func:`to_torch` writes run, and convert back.)
    - ``Linear``, ``Embedding`` (with ``padding_idx``; ``sparse`` only changes torch's gradient layout),
      ``Dropout`` (``p``), and the activations ``ReLU``, ``Tanh``, ``Sigmoid``, ``GELU`` (approximate='none'),
      ``ELU`` (``alpha``), ``LeakyReLU`` (``negative_slope``), ``SELU``, ``Softplus`` (``beta``,
      ``threshold``), ``SiLU``, ``Identity``, ``Softmax`` (``dim`` as ``axis``).

    A model is converted module by module and returned only when every module converted.

    Parameters
    ----------
    module : torch.nn.Module, or a list, tuple or mapping of them
        A float32 or float64 module.

    Returns
    -------
    rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU, rnnfast.nn.Sequential or an rnnfast.nn module

    Raises
    ------
    TypeError
        If ``module`` (or a module inside, named by its path, e.g. ``module['2']``) is of a class that does not
        convert, is a subclass that overrides ``forward``, or has parameters that are neither float32 nor
        float64 (or of mixed dtypes).
    ValueError
        Naming the option, for what rnnfast does not compute: ``Embedding`` with ``max_norm`` or
        ``scale_grad_by_freq``, ``GELU(approximate='tanh')``, ``Softmax(dim=None)``; an empty Sequential;
        consecutive modules that do not fit (rnnfast's Sequential names both).
    ImportError
        If torch is not importable.
    """
    torch = import_optional("torch", "rnnfast.from_torch")
    if isinstance(module, torch.nn.RNNBase):
        return layer_from_torch(torch, module)
    return module_from_torch(torch, module)


def to_torch(model: Any) -> Any:
    """Convert an rnnfast layer into the ``torch.nn.RNN``, ``LSTM`` or ``GRU`` of the same configuration, and an
    :class:`rnnfast.nn.Sequential` or :mod:`rnnfast.nn` module into its ``torch.nn`` counterpart.

    The module has the same options (including ``dropout`` and the LSTM's ``proj_size``), dtype and parameter
    values, and is returned in eval mode, so ``module(x, state)`` gives what ``model(x, state)`` gives; call
    ``.train()`` to train it (inter-layer dropout then acts, as in ``model.forward(..., training=True)``).

    A Sequential becomes a ``torch.nn.Sequential`` (eval mode) with the same child names, so the same
    ``state_dict`` keys, and ``module(x)`` gives ``model(x)``. Its recurrent layers become
    ``SequenceRNN``/``SequenceLSTM``/``SequenceGRU`` (:mod:`rnnfast.interop._torch_layers`): subclasses of
    torch's modules that change only ``forward``, returning the output sequence without the state, so that
    the torch Sequential runs as it is (a plain ``torch.nn.LSTM`` returns a tuple the next module cannot
    take); :func:`from_torch` reads them back. ``Linear``, ``Embedding``, ``Dropout`` and the activations become
    their ``torch.nn`` namesakes (``Softmax(axis)`` as ``Softmax(dim=axis)``). :class:`rnnfast.nn.LastStep`
    has no torch module (torch code picks the last step outside its modules) and is refused.

    Raises
    ------
    TypeError
        If ``model`` (or a module inside) is not an rnnfast layer, Sequential or :mod:`rnnfast.nn` module (a
        subclass counts as unknown: it may compute something else).
    ValueError
        For a LastStep, naming it; for a cell variant PyTorch does not have, naming the options:
        ``peepholes``, ``clip``, ``input_forget``, ``reset_after=False``, activations other than PyTorch's
        (``nonlinearity`` of the RNN other than 'tanh'/'relu', ``activations`` of the LSTM/GRU),
        ``direction='reverse'``; inside a Sequential the message starts with the module's path (``model['1']``).
    ImportError
        If torch is not importable.
    """
    if isinstance(model, RNNBase):
        return layer_to_torch(cast(Model, check_model(model)))
    return module_to_torch(model)
