"""The cell-variant attributes of ONNX's recurrent operators, read into and written from rnnfast's terms:
``activations`` with ``activation_alpha``/``activation_beta`` (:func:`read_activations`,
:func:`activation_attributes`) and the peephole weights ``P`` (:func:`peepholes_to_rnnfast`,
:func:`peepholes_to_onnx`).

``activation_alpha`` and ``activation_beta`` are read as ONNX Runtime reads them (the reference a
converted model is checked against): one value per activation *that takes the parameter*, in the order of
``activations`` (forward direction's roles first), each list consumed on its own; an activation left without
a value takes its default. The defaults are where runtimes disagree: ONNX Runtime gives ``Affine``,
``ScaledTanh`` and ``ThresholdedRelu`` 0 where the ONNX operators of those names default to 1 (and
``ScaledTanh``'s beta 1, ``Affine``'s beta 0), so such an activation without its values is refused, as is
a list with more values than its activations take (whose intent is ambiguous). :func:`activation_attributes`
always writes every value, so that every reader computes the same.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .._variants import ROLES, Activation, activation_from_onnx

__all__ = ["read_activations", "activation_attributes", "peepholes_to_rnnfast", "peepholes_to_onnx",
           "default_onnx_names", "attribute_float"]

# The activations whose parameters' defaults differ between ONNX Runtime (0) and the ONNX operators.
_AMBIGUOUS_DEFAULTS = {"affine", "scaled_tanh", "thresholded_relu"}
# ONNX P holds the peepholes of the gates i, o, f; rnnfast's weight_ch those of i, f, o. Block j of
# one order is block _PEEPHOLE_PERM[j] of the other (the permutation is its own inverse).
_PEEPHOLE_PERM = (0, 2, 1)


def default_onnx_names(family: str) -> list:
    """ONNX's default activation names of one direction of ``family`` ('rnn', 'lstm', 'gru')."""
    return {"rnn": ["Tanh"], "lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"]}[family]


def attribute_float(value) -> float:
    """An ONNX float attribute (stored as float32) as the shortest decimal that float32 value prints as, so
    that ``clip=0.3`` written by :func:`rnnfast.to_onnx` reads back as 0.3, not 0.30000001192092896."""
    return float(str(np.float32(value)))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_activations(where: str, family: str, attrs: dict, num_directions: int) -> tuple:
    """The activations of an ONNX node with attributes ``attrs``, one tuple of :class:`Activation` per
    direction (in ONNX's role order), read as ONNX Runtime reads them (the module's docstring).

    Raises NotImplementedError naming the attribute for an activation rnnfast does not have or parameters
    whose meaning runtimes disagree on, ValueError for a wrong count of activations.
    """
    n = len(ROLES[family])
    names = [_text(a) for a in attrs.get("activations", [])]
    alphas = [attribute_float(a) for a in attrs.get("activation_alpha", [])]
    betas = [attribute_float(b) for b in attrs.get("activation_beta", [])]
    if not names:
        names = default_onnx_names(family) * num_directions
    elif len(names) == n and num_directions == 2:
        if alphas or betas:
            raise NotImplementedError(
                f"{where} is bidirectional with one direction's activations {names} and activation_alpha/"
                "activation_beta: runtimes disagree on which direction takes the values (ONNX Runtime refuses "
                "it); give the activations of both directions (attribute 'activations')")
        names = names * 2
    if len(names) != n * num_directions:
        raise ValueError(f"{where} has {len(names)} activations {names}; expected {n * num_directions} ({n} per "
                         f"direction) (attribute 'activations')")
    acts = []
    alpha_at = beta_at = 0
    for name in names:
        try:
            kind = activation_from_onnx(name)
        except ValueError as exc:
            raise NotImplementedError(f"{where} has activations={names}: {exc} (attribute 'activations')") from None
        params = {}
        for param, values, at in (("alpha", alphas, alpha_at), ("beta", betas, beta_at)):
            if getattr(kind, param) is None:
                continue
            if at < len(values):
                params[param] = values[at]
            elif kind.name in _AMBIGUOUS_DEFAULTS:
                raise NotImplementedError(
                    f"{where} has the activation {name!r} without its {param} (attribute 'activation_{param}'): "
                    f"ONNX Runtime then uses 0, the ONNX operator {kind.onnx_name} {getattr(kind, param)}; "
                    f"write activation_{param} explicitly")
            if param == "alpha":
                alpha_at += 1
            else:
                beta_at += 1
        try:
            acts.append(activation_from_onnx(name, params.get("alpha"), params.get("beta")))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc} (attributes 'activation_alpha', 'activation_beta')") from None
    for param, values, used in (("alpha", alphas, alpha_at), ("beta", betas, beta_at)):
        if len(values) > used:
            raise NotImplementedError(
                f"{where} has {len(values)} values in activation_{param} but its activations {names} take "
                f"{used}: ONNX Runtime reads one per activation that takes a {param}, in order, and ignores the "
                f"rest, another reader one per activation; the meaning is ambiguous (attribute "
                f"'activation_{param}')")
    return tuple(tuple(acts[d * n:(d + 1) * n]) for d in range(num_directions))


def activation_attributes(per_direction: Sequence[Sequence[Activation]]) -> dict:
    """The attributes ``activations``, and ``activation_alpha``/``activation_beta`` where an activation
    takes them (every value written), of the activations ``per_direction`` (ONNX's role order).

    ValueError naming the activations ONNX's recurrent operators do not have.
    """
    missing = sorted({a.name for per in per_direction for a in per if a.onnx_name is None})
    if missing:
        raise ValueError(f"ONNX's recurrent operators have no activation {', '.join(missing)} (option "
                         "'activations'); their activations are Sigmoid, Tanh, Relu, Affine, LeakyRelu, "
                         "ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus")
    flat = [a for per in per_direction for a in per]
    attrs: dict = {"activations": [a.onnx_name for a in flat]}
    alphas = [a.alpha for a in flat if a.alpha is not None]
    betas = [a.beta for a in flat if a.beta is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


def peepholes_to_rnnfast(p: np.ndarray) -> np.ndarray:
    """One direction of ONNX's ``P`` (3H,), gates i, o, f, as rnnfast's ``weight_ch`` (3H,), gates i, f, o."""
    blocks = np.split(np.asarray(p), 3)
    return np.concatenate([blocks[j] for j in _PEEPHOLE_PERM])


def peepholes_to_onnx(w_ch: np.ndarray) -> np.ndarray:
    """rnnfast's ``weight_ch`` (3H,), gates i, f, o, as one direction of ONNX's ``P`` (3H,), gates i, o, f."""
    return peepholes_to_rnnfast(w_ch)   # swapping the last two blocks is its own inverse
