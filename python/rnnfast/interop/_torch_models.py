"""PyTorch: whole models. :func:`rnnfast.from_torch` of ``torch.nn.Sequential`` (and of a list or mapping of
modules), ``Linear``, ``Embedding``, ``Dropout`` and the activations; :func:`rnnfast.to_torch` of
:class:`rnnfast.nn.Sequential` and of those modules. The recurrent layers go through :mod:`.pytorch`.

Every conversion is exact or refuses naming the module and the option that does not map (nothing
half-converted: a Sequential is converted child by child and returned only when all converted).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable, cast

import numpy as np

from .. import nn
from .._rnn_base import RNNBase
from ..nn.sequential import Sequential
from ._conversion import Model, check_model, import_optional
from ._torch_layer import layer_from_torch, layer_to_torch

__all__ = ["module_from_torch", "module_to_torch", "TORCH_MODULES"]

# torch.nn classes that take no options (their ``inplace`` flag changes no value) and rnnfast's module of each.
_PLAIN: dict[str, Callable[[], Any]] = {
    "ReLU": nn.ReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "SELU": nn.SELU, "SiLU": nn.SiLU,
    "Identity": nn.Identity,
}
#: The torch.nn classes from_torch converts besides the recurrent ones (for the messages).
TORCH_MODULES = ("Sequential", "Linear", "Embedding", "Dropout", "GELU", "ELU", "LeakyReLU", "Softplus",
                 "Softmax") + tuple(_PLAIN)


def _dtype(module: Any, what: str) -> np.dtype:
    """The one float dtype (float32 or float64) of ``module``'s parameters, else TypeError naming it."""
    dtypes = {str(p.dtype).replace("torch.", "") for p in module.parameters()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in ("float32", "float64"):
        raise TypeError(f"{what} has parameters of dtype {', '.join(sorted(dtypes)) or 'none'}; rnnfast computes in "
                        "float32 or float64 (convert the module with .float() or .double() first)")
    return np.dtype(next(iter(dtypes)))


def _array(tensor: Any) -> np.ndarray:
    out: np.ndarray = tensor.detach().cpu().numpy().copy()
    return out


def _torch_class(torch: Any, module: Any, what: str) -> str:
    """The name of the supported torch.nn class ``module`` is (a subclass only if it keeps the class's
    ``forward``), else TypeError naming what it is."""
    for name in TORCH_MODULES:
        cls = getattr(torch.nn, name)
        if isinstance(module, cls):
            if type(module).forward is not cls.forward:
                raise TypeError(f"{what} is a {type(module).__name__}, a subclass of torch.nn.{name} that overrides "
                                "forward; only the computation of the torch class itself converts exactly")
            return name
    raise TypeError(f"{what} is a {type(module).__name__}, which rnnfast does not convert; it converts "
                    f"torch.nn.RNN, LSTM, GRU and {', '.join(TORCH_MODULES)}")


def _from_linear(module: Any, what: str) -> nn.Linear:
    dtype = _dtype(module, what)
    m = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None, dtype=dtype)
    m.load_state_dict({k: _array(v) for k, v in module.state_dict().items()})
    return m


def _from_embedding(module: Any, what: str) -> nn.Embedding:
    if module.max_norm is not None:
        raise ValueError(f"{what} (torch.nn.Embedding) has max_norm={module.max_norm}: torch renormalises the rows "
                         "it looks up (changing the weight) at every forward, which rnnfast's Embedding does not do "
                         "(option 'max_norm')")
    if module.scale_grad_by_freq:
        raise ValueError(f"{what} (torch.nn.Embedding) has scale_grad_by_freq=True: its gradients are scaled by the "
                         "batch's token counts, rnnfast's are not (option 'scale_grad_by_freq')")
    dtype = _dtype(module, what)
    # sparse=True only changes the layout of torch's gradient, not its values.
    m = nn.Embedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx, dtype=dtype)
    m.load_state_dict({"weight": _array(module.weight)})
    return m


def _from_activation(name: str, module: Any, what: str) -> Any:
    if name in _PLAIN:
        return _PLAIN[name]()
    if name == "GELU":
        if module.approximate != "none":
            raise ValueError(f"{what} is torch.nn.GELU(approximate={module.approximate!r}): rnnfast's GELU is the "
                             "exact erf form, approximate='none' (option 'approximate')")
        return nn.GELU()
    if name == "ELU":
        return nn.ELU(alpha=float(module.alpha))
    if name == "LeakyReLU":
        return nn.LeakyReLU(negative_slope=float(module.negative_slope))
    if name == "Softplus":
        return nn.Softplus(beta=float(module.beta), threshold=float(module.threshold))
    if name == "Softmax":
        if module.dim is None:
            raise ValueError(f"{what} is torch.nn.Softmax(dim=None), whose axis torch picks from the input's rank "
                             "(deprecated); give dim explicitly (option 'dim')")
        return nn.Softmax(axis=int(module.dim))
    if name == "Dropout":
        return nn.Dropout(float(module.p))
    raise AssertionError(name)  # pragma: no cover (every name of TORCH_MODULES is handled)


def module_from_torch(torch: Any, module: Any, what: str = "module") -> Any:
    """The rnnfast module computing what the torch module ``module`` computes (a recurrent one through
    :func:`.pytorch.from_torch`, a Sequential child by child); ``what`` names it in the messages."""
    if isinstance(module, torch.nn.RNNBase):
        try:
            return layer_from_torch(torch, module)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{what}: {exc}") from None
    if isinstance(module, (list, tuple, Mapping)) and not isinstance(module, torch.nn.Module):
        items = list(module.items()) if isinstance(module, Mapping) else [(str(i), m) for i, m in enumerate(module)]
        return _sequential_from_torch(torch, items, what)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{what} must be a torch.nn.Module (or a list, tuple or mapping of them), got "
                        f"{type(module).__name__}")
    name = _torch_class(torch, module, what)
    if name == "Sequential":
        return _sequential_from_torch(torch, list(module.named_children()), what)
    if name == "Linear":
        return _from_linear(module, what)
    if name == "Embedding":
        return _from_embedding(module, what)
    return _from_activation(name, module, what)


def _sequential_from_torch(torch: Any, items: list[tuple[str, Any]], what: str) -> Sequential:
    if not items:
        raise ValueError(f"{what} has no modules; rnnfast's Sequential needs at least one")
    children: OrderedDict[str, Any] = OrderedDict()
    for name, child in items:
        if not isinstance(child, torch.nn.Module):
            raise TypeError(f"{what}[{name!r}] is a {type(child).__name__}, not a torch.nn.Module")
        children[str(name)] = module_from_torch(torch, child, f"{what}[{name!r}] ({type(child).__name__})")
    return Sequential(children)


# ----------------------------------------------------------------------------------------------------
# to_torch
# ----------------------------------------------------------------------------------------------------

def _torch_dtype(torch: Any, dtype: Any) -> Any:
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def module_to_torch(module: Any, what: str = "model", *, in_sequential: bool = False) -> Any:
    """The torch module computing what the rnnfast module ``module`` computes (in eval mode); a recurrent layer
    inside a Sequential (``in_sequential``) as the output-only subclass of :mod:`._torch_layers`."""
    if isinstance(module, RNNBase):
        try:
            return layer_to_torch(cast(Model, check_model(module, what)), output_only=in_sequential)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{what}: {exc}" if in_sequential else str(exc)) from None
    if isinstance(module, nn.LastStep):
        raise ValueError(f"{what} is a LastStep, which has no torch.nn equivalent (torch picks the last step in "
                         "the code around its modules, e.g. out[-1] or the final state h_n); convert the modules "
                         "before and after it separately")
    torch = import_optional("torch", "rnnfast.to_torch")
    if isinstance(module, Sequential):
        children = OrderedDict((name, module_to_torch(child, f"{what}[{name!r}] ({type(child).__name__})",
                                                      in_sequential=True))
                               for name, child in module.named_children())
        return torch.nn.Sequential(children).eval()
    # exact classes: a subclass may compute something else
    if type(module) is nn.Linear:
        out: Any = torch.nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                                   dtype=_torch_dtype(torch, module.dtype))
    elif type(module) is nn.Embedding:
        out = torch.nn.Embedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx,
                                 dtype=_torch_dtype(torch, module.dtype))
    elif type(module) is nn.Dropout:
        out = torch.nn.Dropout(module.p)
    elif type(module) is nn.ELU:
        out = torch.nn.ELU(alpha=module.alpha)
    elif type(module) is nn.LeakyReLU:
        out = torch.nn.LeakyReLU(negative_slope=module.negative_slope)
    elif type(module) is nn.Softplus:
        out = torch.nn.Softplus(beta=module.beta, threshold=module.threshold)
    elif type(module) is nn.Softmax:
        out = torch.nn.Softmax(dim=module.axis)
    elif type(module) is nn.GELU:
        out = torch.nn.GELU()   # the exact erf form, torch's default
    else:
        plain = next((name for name, cls in _PLAIN.items() if type(module) is cls), None)
        if plain is None:
            raise TypeError(f"{what} is a {type(module).__name__}, which to_torch does not convert; it converts "
                            "rnnfast.RNN, rnnfast.LSTM or rnnfast.GRU layers, and rnnfast.nn's Sequential, Linear, "
                            "Embedding, Dropout and activations")
        out = getattr(torch.nn, plain)()
    if module.state_dict():
        out.load_state_dict({k: torch.from_numpy(v) for k, v in module.state_dict().items()}, strict=True)
    return out.eval()
