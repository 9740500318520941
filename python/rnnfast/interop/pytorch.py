"""PyTorch: :func:`from_torch` and :func:`to_torch` (``torch.nn.RNN``, ``LSTM``, ``GRU``; whole models and
their other modules in :mod:`._torch_models`).

The parameter names, shapes and gate orders are the same in both libraries, so the conversion copies.
torch is imported only inside the functions.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import numpy as np

from .._cells import CELL_FACTS, cell_for_torch_mode
from .._layer_parameters import parameter_name
from ._conversion import Model, build_layer, check_model, import_optional
from ._variant import LayerVariant

__all__ = ["from_torch", "to_torch", "layer_to_torch"]


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
    if not isinstance(module, torch.nn.RNNBase):
        from ._torch_models import module_from_torch

        return module_from_torch(torch, module)
    mode = getattr(module, "mode", None)
    modes = {f.torch_mode for f in CELL_FACTS}
    if mode not in modes:
        raise TypeError(f"module has mode {mode!r}; rnnfast converts the modes {sorted(modes)}")
    facts = cell_for_torch_mode(mode)
    base = getattr(torch.nn, facts.layer_class)  # rnnfast's layer classes have torch's names
    from ._torch_layers import SEQUENCE_CLASSES

    # to_torch's output-only subclasses (of a Sequential) compute what the class computes.
    if not isinstance(module, base) or (type(module).forward is not base.forward
                                        and type(module) is not SEQUENCE_CLASSES[base.__name__]):
        raise TypeError(
            f"module is a {type(module).__name__}, which is not torch.nn.{base.__name__} or overrides its "
            "forward; only the computation of the torch class itself converts exactly"
        )
    proj_size = int(getattr(module, "proj_size", 0) or 0)

    H, L, D = module.hidden_size, module.num_layers, 2 if module.bidirectional else 1
    bases = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
    if proj_size:
        bases.append("weight_hr")
    names = [parameter_name(base_name, k, d) for k in range(L) for d in range(D) for base_name in bases]
    tensors = {n: getattr(module, n) for n in names}
    dtypes = {str(t.dtype).replace("torch.", "") for t in tensors.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in ("float32", "float64"):
        raise TypeError(
            f"module parameters have dtype {', '.join(sorted(dtypes))}; rnnfast computes in float32 or float64 "
            "(convert the module with .float() or .double() first)"
        )
    params = {n: t.detach().cpu().numpy().copy() for n, t in tensors.items()}
    variant = LayerVariant.default(facts.family, "bidirectional" if D == 2 else "forward",
                                   facts.nonlinearity or "tanh")
    if proj_size:
        variant = LayerVariant(variant.family, variant.activations, variant.direction, proj_size=proj_size)
    return build_layer(variant, module.input_size, H, L, bias=bool(module.bias),
                       batch_first=bool(module.batch_first), dtype=np.dtype(next(iter(dtypes))), params=params,
                       dropout=float(module.dropout))


def _torch_refusals(variant: LayerVariant) -> list[str]:
    """What of ``variant`` PyTorch's recurrent modules cannot compute, as messages naming each option (empty
    when ``torch.nn.RNN``/``LSTM``/``GRU`` computes it: PyTorch's cells, the LSTM also with ``proj_size``)."""
    problems = [f"{name}={value!r}" for name, value in variant.non_default_options().items() if name != "proj_size"]
    if not variant.default_activations:
        option = "nonlinearity" if variant.family == "rnn" else "activations"
        problems.append(f"{option}={[list(per) for per in variant.activations]} (torch has "
                        + ("tanh or relu" if variant.family == "rnn" else "only the default activations") + ")")
    elif variant.family == "rnn" and not variant.same_activations:
        problems.append(f"nonlinearity differing per direction ({[list(p) for p in variant.activations]})")
    if variant.direction == "reverse":
        problems.append("direction='reverse' (torch runs forward or bidirectional)")
    return problems


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
    from .._rnn_base import RNNBase

    if not isinstance(model, RNNBase):
        from ._torch_models import module_to_torch

        return module_to_torch(model)
    return layer_to_torch(cast(Model, check_model(model)))


def layer_to_torch(model: Model, *, output_only: bool = False) -> Any:
    """:func:`to_torch` of the rnnfast layer ``model`` (checked); with ``output_only`` the module is the
    subclass whose forward returns the output sequence only (:mod:`._torch_layers`, for a torch Sequential)."""
    variant = LayerVariant.of_layer(model)
    problems = _torch_refusals(variant)
    if problems:
        raise ValueError(f"to_torch cannot write this {type(model).__name__}: PyTorch's modules have no "
                         + "; ".join(problems))
    torch = import_optional("torch", "rnnfast.to_torch")
    kwargs: dict[str, Any] = dict(num_layers=model.num_layers, bias=model.bias, batch_first=model.batch_first,
                        dropout=model.dropout, bidirectional=variant.direction == "bidirectional",
                        dtype=torch.float64 if model.dtype == np.float64 else torch.float32)
    cls = getattr(torch.nn, variant.family.upper())  # rnnfast's layer classes have torch's names
    if output_only:
        from ._torch_layers import SEQUENCE_CLASSES

        cls = SEQUENCE_CLASSES[cls.__name__]
    if variant.family == "rnn":
        kwargs["nonlinearity"] = variant.activations[0][0].name
    if variant.proj_size:
        kwargs["proj_size"] = variant.proj_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # dropout with num_layers=1, as rnnfast allows
        module = cls(model.input_size, model.hidden_size, **kwargs)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    return module.eval()
