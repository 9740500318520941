"""PyTorch's recurrent modules: ``torch.nn.RNN``, ``LSTM``, ``GRU`` <-> rnnfast's layers (:func:`layer_from_torch`,
:func:`layer_to_torch`), below both the public :mod:`.pytorch` and the whole-model :mod:`._torch_models`.

The parameter names, shapes and gate orders are the same in both libraries, so the conversion copies.
torch is imported by the callers.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._cells import CELL_FACTS, cell_for_torch_mode
from .._layer_parameters import parameter_name
from ._conversion import Model, build_layer, import_optional
from ._variant import LayerVariant

__all__ = ["layer_from_torch", "layer_to_torch"]


def layer_from_torch(torch: Any, module: Any) -> Model:
    """:func:`rnnfast.from_torch` of a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` (``module`` a ``torch.nn.RNNBase``;
    :mod:`.pytorch` has the details)."""
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


def layer_to_torch(model: Model, *, output_only: bool = False) -> Any:
    """:func:`rnnfast.to_torch` of the rnnfast layer ``model`` (checked); with ``output_only`` the module is the
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
