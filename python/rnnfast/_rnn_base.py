"""The implementation shared by the layers :class:`~rnnfast.RNN`, :class:`~rnnfast.LSTM` and
:class:`~rnnfast.GRU` (see :mod:`rnnfast.layers` for the conventions): :class:`RNNBase`.

It makes the parameters (held by its base :class:`~rnnfast._layer_parameters.LayerParameters`), checks and
converts the arguments and states, stacks the single-layer, single-direction functional ops into layers and
directions (forward and backward), and keeps what a training forward saves
(:class:`~rnnfast._training_cache.TrainingCache`).

A layer made by :func:`rnnfast.quantize` is the same class holding reduced-precision parameters: what
that adds (holding them, the reduced-precision op of one direction, refusing training) is its base
:class:`~rnnfast._quantized_layer.QuantizedLayer`; this module stacks its directions and layers the same
way, in float32.

A direction whose cell options are PyTorch's cell runs on the fused ops (``rnn``/``lstm``/``gru``); any
other (a cell variant) on ``variant_forward``/``variant_backward``. The options, their properties and
which directions are fused come from the other base, :class:`~rnnfast._layer_options.CellOptionsLayer`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Optional, Union
from typing import cast as typing_cast

import numpy as np

from . import _core
from . import functional as F
from ._cells import cell_facts
from ._layer_options import CellOptionsLayer, layer_options, resolve_direction
from ._layer_parameters import LayerParameters, parameter_name
from ._quantized_layer import QuantizedLayer
from ._training_cache import TrainingCache
from ._types import ArrayLike, LSTMState, StateLike, StateT
from ._validation import ForwardArgs, as_array, cast, float_dtype, positive_int, prepare_lengths

if TYPE_CHECKING:
    from .stepper import Stepper

#: An LSTM state is a pair ``(h, c)``; RNN and GRU states are a single array ``h``.
State = Union[np.ndarray, LSTMState]


def functional_ops() -> ModuleType:
    """The module providing the functional ops the layers run on.

    Always :mod:`rnnfast.functional` (native kernels); tests replace this function to run the same layers
    on :mod:`rnnfast.reference`.
    """
    return F


def _dropout_prob(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"dropout must be a number in [0, 1), got {value!r} of type {type(value).__name__}")
    p = float(value)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")
    return p


def parameter_count(I: int, H: int, L: int, G: int, D: int, bias: bool, proj_size: int = 0,
                    peepholes: bool = False) -> int:
    """The number of parameter values of a layer (all layers and directions): exact, in Python integers.

    ``proj_size`` P > 0 adds ``weight_hr`` (P, H) and makes h (and layer k > 0's input per direction) P
    wide; ``peepholes`` adds ``weight_ch`` (3H,).
    """
    R = proj_size or H
    extra = proj_size * H + (3 * H if peepholes else 0)
    per_direction_first = G * H * (I + R + (2 if bias else 0)) + extra
    per_direction_rest = G * H * (D * R + R + (2 if bias else 0)) + extra
    return D * (per_direction_first + (L - 1) * per_direction_rest)


def _check_parameter_memory(title: str, I: int, H: int, L: int, G: int, D: int, bias: bool, dtype: np.dtype,
                            proj_size: int = 0, peepholes: bool = False) -> None:
    """Raise MemoryError before drawing any parameter if the parameters and their gradients cannot be had.

    The count is exact (:func:`parameter_count`); a trial ``np.empty`` of that size, never touched, fails at
    once when the memory cannot be allocated, instead of after many layers have been drawn.
    """
    count = parameter_count(I, H, L, G, D, bias, proj_size, peepholes)
    try:
        np.empty(2 * count, dtype=dtype)  # parameters and their gradients
    except (MemoryError, ValueError):
        raise MemoryError(
            f"{title}(input_size={I}, hidden_size={H}, num_layers={L}) has {count} parameters, which with their "
            f"gradients need {2 * count * dtype.itemsize / 2**30:.3g} GiB ({dtype}): more than can be allocated"
        ) from None


def _reverse_time(a: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    """``a`` (T, B, ...) with each sequence reversed in time within its own length.

    Without lengths this is ``a[::-1]``; with them, row b's steps ``[0, lengths[b])`` are reversed and
    its padding steps stay where they are, as PyTorch's reverse direction over a packed sequence does.
    The map is its own inverse, so it also brings the reverse direction's results back.
    """
    if lengths is None:
        return a[::-1]
    T = a.shape[0]
    t = np.arange(T)[:, None]
    source = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return np.take_along_axis(a, source.reshape(source.shape + (1,) * (a.ndim - 2)), axis=0)


class RNNBase(CellOptionsLayer, LayerParameters, QuantizedLayer, Generic[StateT]):
    """Shared implementation of :class:`RNN`, :class:`LSTM` and :class:`GRU` (not for direct use).

    Generic in the state the layer returns (:data:`rnnfast._types.StateT`): ``RNNBase[np.ndarray]`` for the RNN
    and GRU, ``RNNBase[tuple[np.ndarray, np.ndarray]]`` for the LSTM, so that a type checker knows
    ``out, (h, c) = lstm(x)`` and ``out, h = gru(x)``. At run time the parameter changes nothing.
    """

    _cell: str = ""

    def __init__(
        self,
        family: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: Optional[bool] = None,
        direction: Optional[str] = None,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Optional[Union[int, np.random.SeedSequence, np.random.Generator]] = None,
        cell_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._input_size = positive_int("input_size", input_size)
        self._hidden_size = positive_int("hidden_size", hidden_size)
        self._num_layers = positive_int("num_layers", num_layers)
        self._direction = resolve_direction(direction, bidirectional)
        self._bidirectional = self._direction == "bidirectional"
        # One CellOptions per direction slot (make_options checks them and raises the option errors).
        self._options = layer_options(family, self._hidden_size, self.num_directions, **dict(cell_options or {}))
        first = self._options[0]
        self._cell = ("rnn_" + (first.nonlinearity or "tanh")) if family == "rnn" else family
        self._bias = bool(bias)
        self._batch_first = bool(batch_first)
        self._dropout = _dropout_prob(dropout)
        self._dtype = float_dtype(dtype)
        if self._dropout > 0 and self._num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={self._dropout} and num_layers={self._num_layers}",
                UserWarning,
                stacklevel=3,
            )
        try:
            self._rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"seed must be None, a non-negative int, a SeedSequence or a Generator, got {seed!r} ({exc})"
            ) from None

        H, G, D = self._hidden_size, cell_facts(self._cell).gates, self.num_directions
        P, R, peepholes = first.proj_size, self.state_size, first.peepholes
        _check_parameter_memory(type(self).__name__, self._input_size, H, self._num_layers, G, D, self._bias,
                                self._dtype, P, peepholes)
        bound = 1.0 / np.sqrt(H)
        self._params: dict[str, np.ndarray] = {}
        for k in range(self._num_layers):
            in_k = self._input_size if k == 0 else D * R
            for d in self._direction_ids:
                # PyTorch's order (weight_hr last); the peepholes, which PyTorch lacks, before it.
                shapes: list[tuple[str, tuple[int, ...]]] = [("weight_ih", (G * H, in_k)), ("weight_hh", (G * H, R))]
                if self._bias:
                    shapes += [("bias_ih", (G * H,)), ("bias_hh", (G * H,))]
                if peepholes:
                    shapes.append(("weight_ch", (3 * H,)))
                if P:
                    shapes.append(("weight_hr", (P, H)))
                for base, shape in shapes:
                    value = self._rng.uniform(-bound, bound, size=shape)
                    self._params[parameter_name(base, k, d)] = value.astype(self._dtype)
        self.grads: dict[str, np.ndarray] = {k: np.zeros_like(v) for k, v in self._params.items()}
        self._cache: Optional[TrainingCache] = None

    def __getstate__(self) -> dict[str, Any]:
        """What pickling carries: the configuration, the parameters and the dropout generator; not what a
        training forward keeps for backward (often far larger than the model: 51.7 MB against 1.7 MB for an
        LSTM(32, 128, 2 layers) after T=100, B=64), nor the accumulated gradients. A model shipped to another
        process (a worker of Dask or Ray, a checkpoint) starts with zero gradients and no pending backward."""
        state = dict(self.__dict__)
        state["_cache"] = None
        state["grads"] = None if self.grads else {}  # a quantized layer's {} (nothing to train) stays {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.grads is None:
            self.grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    # ------------------------------------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------------------------------------

    @property
    def input_size(self) -> int:
        """Number of features of the input ``x`` (its last axis)."""
        return self._input_size

    @property
    def hidden_size(self) -> int:
        """Number of features H of the hidden state of each layer and direction."""
        return self._hidden_size

    @property
    def num_layers(self) -> int:
        """Number of stacked recurrent layers L."""
        return self._num_layers

    @property
    def bias(self) -> bool:
        """Whether the layers have the biases ``bias_ih_l*`` and ``bias_hh_l*``."""
        return self._bias

    @property
    def batch_first(self) -> bool:
        """Whether batched input and output are (B, T, features) instead of (T, B, features)."""
        return self._batch_first

    @property
    def bidirectional(self) -> bool:
        """Whether each layer also runs over the time-reversed sequence (D = 2)."""
        return self._bidirectional

    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional, else 1 (also for ``direction='reverse'``)."""
        return 2 if self._bidirectional else 1

    @property
    def dropout(self) -> float:
        """Probability of zeroing each output feature of all but the last layer during training."""
        return self._dropout

    @property
    def dtype(self) -> np.dtype:
        """The dtype (float32 or float64) of the parameters and of every computation; float32 for a quantized
        layer (its inputs, outputs, states, biases and gate arithmetic)."""
        return self._dtype

    @property
    def mode(self) -> str:
        """'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU', as PyTorch's ``mode``: the cell of the forward direction
        (an RNN whose activation is neither tanh nor relu says 'RNN_TANH'; see :attr:`activations` and
        :meth:`variant_options` for what a cell variant changes)."""
        return cell_facts(self._cell).torch_mode

    # ------------------------------------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------------------------------------

    def __call__(self, x: ArrayLike, state: Optional[StateLike] = None, *,
                 lengths: Optional[ArrayLike] = None) -> tuple[np.ndarray, StateT]:
        """Inference: ``m(x, state)`` is ``m.forward(x, state, lengths=lengths, training=False)``."""
        return self.forward(x, state, lengths=lengths, training=False)

    def _input(self, x: ArrayLike) -> tuple[np.ndarray, bool]:
        """``x`` as a time-major (T, B, I) array of the layer dtype, and whether it was unbatched."""
        arr = as_array("x", x)
        if arr.ndim not in (2, 3) or arr.shape[-1] != self._input_size:
            layout = "(batch, seq_len, input_size)" if self._batch_first else "(seq_len, batch, input_size)"
            raise ValueError(
                f"x must be 3-D {layout} or 2-D (seq_len, input_size) unbatched, with input_size "
                f"{self._input_size}; got shape {arr.shape}"
            )
        arr = cast("x", arr, self._dtype)
        if arr.ndim == 2:
            return arr[:, None, :], True
        if self._batch_first:
            arr = arr.transpose(1, 0, 2)
        return arr, False

    def _state_array(self, name: str, value: ArrayLike, B: int, unbatched: bool) -> np.ndarray:
        LD = self._num_layers * self.num_directions
        # h is proj_size wide with a projection; c (and h without one) hidden_size.
        width, width_name = ((self.state_size, "proj_size") if name == "h0" and self.proj_size
                             else (self._hidden_size, "hidden_size"))
        arr = as_array(name, value)
        expected = (LD, width) if unbatched else (LD, B, width)
        if arr.shape != expected:
            what = f"(num_layers*num_directions, {width_name}) for unbatched x" if unbatched else \
                f"(num_layers*num_directions, batch, {width_name})"
            raise ValueError(f"{name} has shape {arr.shape}, expected {expected} = {what}")
        arr = cast(name, arr, self._dtype)
        return arr[:, None, :] if unbatched else arr

    def _initial_state(self, state: Optional[StateLike], B: int,
                       unbatched: bool) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """(h0, c0) as (L*D, B, H) arrays of the layer dtype, either None for zeros."""
        lstm = cell_facts(self._cell).cell_state
        if state is None:
            return None, None
        if lstm:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    "the LSTM state must be a tuple (h0, c0) of arrays of shape "
                    f"(num_layers*num_directions, batch, hidden_size) or None, got {type(state).__name__}"
                )
            h0, c0 = state
            h0 = None if h0 is None else self._state_array("h0", h0, B, unbatched)
            c0 = None if c0 is None else self._state_array("c0", c0, B, unbatched)
            return h0, c0
        if isinstance(state, tuple):
            raise TypeError(
                f"the {type(self).__name__} state must be a single array h0 of shape "
                "(num_layers*num_directions, batch, hidden_size) or None, got a tuple"
            )
        return self._state_array("h0", state, B, unbatched), None

    def _exact_inference(self, x: Any) -> Optional[tuple[np.ndarray, StateT]]:
        """:meth:`forward`'s results for inference on an input that needs nothing done to it, else None.

        The common inference call (a C-contiguous, aligned (T, B, I) ndarray of the layer's dtype, no state, no
        lengths, unidirectional, time-major) goes straight to the kernel, layer after layer, skipping the
        general path's argument conversion and checks, which cost about 20 us a call (7% of a 0.3 ms
        B = 1 LSTM). The results are the general path's, bit for bit: the same kernel calls on the same
        arrays. The kernel binding still checks every shape, dtype and layout. A reverse-direction layer never
        takes it. A quantized layer takes the same path to ``_core.reduced_forward`` (8 us of a 0.14 ms edge int8
        LSTM call); a cell variant (float) to ``_core.variant_forward`` (the edge reset-before GRU's Python
        checks cost about 60 us of 0.32 ms).
        """
        if (
            x.__class__ is not np.ndarray
            or x.dtype != self._dtype
            or x.ndim != 3
            or self._batch_first
            or self.direction != "forward"
            or not (self._fast(0) or self._weight_dtype is None)
            or not (x.flags.c_contiguous and x.flags.aligned)
            or x.shape[2] != self._input_size
            or x.shape[0] == 0
            or x.shape[1] == 0
        ):
            return None
        T, B, _ = x.shape
        L, H, dtype, cell = self._num_layers, self._hidden_size, self._dtype, self._cell
        lstm = cell_facts(cell).cell_state
        if not self._fast(0):  # a cell variant: its native op, layer after layer
            R, options = self.state_size, F.variant_kernel_options(self.options[0])
            h_n = np.empty((L, B, R), dtype=dtype)
            c_n = np.empty((L, B, H), dtype=dtype) if lstm else None
            inp = x
            for k in range(L):
                out = np.empty((T, B, R), dtype=dtype)
                w_ih, w_hh, b_ih, b_hh, w_hr, w_ch = self._variant_weights(k, 0)
                _core.variant_forward(*options, inp, None, None, w_ih, w_hh, b_ih, b_hh, w_hr, w_ch, out, h_n[k],
                                      None if c_n is None else c_n[k], None, None)
                inp = out
            return inp, typing_cast(StateT, (h_n, c_n) if lstm else h_n)
        h_n = np.empty((L, B, H), dtype=dtype)
        c_n = np.empty((L, B, H), dtype=dtype) if lstm else None
        inp = x
        for k in range(L):
            w_ih, w_hh, b_ih, b_hh = self._weights(k, 0)
            if self._weight_dtype is not None:
                inp, h_n[k], c_k = _core.reduced_forward(cell, inp, None, None, w_ih.native(), w_hh.native(), b_ih,
                                                         b_hh, None)
                if c_n is not None:  # the LSTM's
                    c_n[k] = c_k
                continue
            out = np.empty((T, B, H), dtype=dtype)
            _core.forward(cell, inp, None, None, w_ih, w_hh, b_ih, b_hh, out, h_n[k],
                          None if c_n is None else c_n[k], None, None)
            inp = out
        return inp, typing_cast(StateT, (h_n, c_n) if lstm else h_n)

    def _run_direction(self, ops: ModuleType, x: np.ndarray, h0: Optional[np.ndarray], c0: Optional[np.ndarray],
                       weights: tuple[Any, ...], training: bool,
                       lengths: Optional[np.ndarray]) -> tuple[Any, ...]:
        """Run one layer in one direction; returns the op's results (out, h_n[, c_n][, workspace]).

        ``x`` (T, B, I_k), ``h0``, ``c0`` (B, H) or None and the weights are of the layer dtype, checked by
        :meth:`forward` (``lengths`` by prepare_lengths): the native ops take them without a second check.
        """
        if self._weight_dtype is not None:
            return self._run_reduced_direction(ops is F, ops, x, h0, c0, weights, lengths)
        if ops is F:
            T, B, I = x.shape
            facts = cell_facts(self._cell)
            x_c, w_ih, w_hh = (np.ascontiguousarray(a) for a in (x, weights[0], weights[1]))
            h0_c, c0_c, b_ih, b_hh = (None if a is None else np.ascontiguousarray(a)
                                      for a in (h0, c0, weights[2], weights[3]))
            args = ForwardArgs(self._cell, self._dtype, T, B, I, self._hidden_size, facts.gates, x_c, h0_c, c0_c,
                               w_ih, w_hh, b_ih, b_hh)
            return F.forward_checked(args, training, lengths)
        results: tuple[Any, ...]  # the reference's (tests swap the ops)
        if self._cell == "lstm":
            results = ops.lstm(x, h0, c0, *weights, training=training, lengths=lengths)
        elif self._cell == "gru":
            results = ops.gru(x, h0, *weights, training=training, lengths=lengths)
        else:
            results = ops.rnn(x, h0, *weights, nonlinearity=cell_facts(self._cell).nonlinearity, training=training,
                              lengths=lengths)
        return results

    def forward(
        self,
        x: ArrayLike,
        state: Optional[StateLike] = None,
        *,
        lengths: Optional[ArrayLike] = None,
        training: bool = False,
    ) -> tuple[np.ndarray, StateT]:
        """Run the stacked recurrent layers over a sequence.

        Parameters
        ----------
        x : array-like
            (T, B, I), or (B, T, I) with ``batch_first``, or unbatched (T, I); converted to the layer's
            dtype by NumPy's ``same_kind`` rule (complex or non-numeric input is a TypeError).
        state : array-like, tuple of two array-likes, or None
            Initial state: ``h0`` for RNN/GRU, ``(h0, c0)`` for the LSTM, ``h0`` (L*D, B, R) and ``c0``
            (L*D, B, H) (R = proj_size or H), or (L*D, R) and (L*D, H) for unbatched ``x``; None (or None
            for ``h0`` or ``c0`` of the LSTM) means zeros.
        lengths : array-like of int, (B,), or None
            Per-sequence lengths in [0, T] (any order), with the meaning of PyTorch's packed sequences:
            outputs past a sequence's end are zero, its final state is the one after its last step, and
            the reverse direction (also of ``direction='reverse'``) starts at each sequence's own end.
            None means every sequence has
            length T. Unbatched x takes a length of shape (1,).
        training : bool
            If True, apply inter-layer dropout and save what :meth:`backward` needs (replacing anything
            saved before). If False (inference), nothing is saved and nothing is dropped. A quantized
            layer is inference-only: True is a RuntimeError.

        Returns
        -------
        out : ndarray
            (T, B, D*R), (B, T, D*R) with ``batch_first``, or (T, D*R) unbatched: the last layer's hidden
            states, the directions concatenated on the last axis (forward first).
        state : ndarray or tuple of two ndarrays
            ``h_n`` (RNN/GRU) or ``(h_n, c_n)`` (LSTM), h_n (L*D, B, R) and c_n (L*D, B, H), or without
            the batch axis unbatched; index ``layer*D + direction``.
        """
        ops = functional_ops()
        training = bool(training)
        if training:
            self._refuse_training("forward(..., training=True)")
        if not training and state is None and lengths is None and ops is F:
            fast = self._exact_inference(x)
            if fast is not None:
                return fast
        xs, unbatched = self._input(x)
        T, B, _ = xs.shape
        lengths = prepare_lengths(lengths, T, B)
        h0, c0 = self._initial_state(state, B, unbatched)
        if training:
            # The caller may change its arrays after this call; backward needs what forward saw.
            xs = xs.copy()
            h0 = None if h0 is None else h0.copy()
            c0 = None if c0 is None else c0.copy()
        L, D, H, R = self._num_layers, self.num_directions, self._hidden_size, self.state_size
        lstm = cell_facts(self._cell).cell_state
        dir_ids = self._direction_ids
        cache: Optional[TrainingCache] = None
        if training:
            out_shape = (T, D * R) if unbatched else ((B, T, D * R) if self._batch_first else (T, B, D * R))
            state_shape = (L * D, R) if unbatched else (L * D, B, R)
            cache = TrainingCache(self._batch_first, unbatched, out_shape, state_shape, lengths)

        h_n = np.empty((L * D, B, R), dtype=self._dtype)
        c_n = np.empty((L * D, B, H), dtype=self._dtype) if lstm else None
        inp = xs
        for k in range(L):
            outs: list[np.ndarray] = []
            workspaces: list[Optional[np.ndarray]] = []
            h0s: list[Optional[np.ndarray]] = []
            c0s: list[Optional[np.ndarray]] = []
            for d, dir_id in enumerate(dir_ids):
                idx = k * D + d
                h0_kd = None if h0 is None else h0[idx]
                c0_kd = None if c0 is None else c0[idx]
                x_kd = inp if dir_id == 0 else _reverse_time(inp, lengths)
                if self._fast(d):
                    res = self._run_direction(ops, x_kd, h0_kd, c0_kd, self._weights(k, dir_id), training, lengths)
                else:
                    res = ops.variant_forward(self.options[d], x_kd, h0_kd, c0_kd, *self._variant_weights(k, dir_id),
                                              training=training, lengths=lengths)
                outs.append(res[0])
                h_n[idx] = res[1]
                if c_n is not None:  # the LSTM's
                    c_n[idx] = res[2]
                if training:
                    workspaces.append(res[-1])
                    h0s.append(h0_kd)
                    c0s.append(c0_kd)
            if dir_ids == (1,):
                # A copy (never a view of what the training cache keeps: dropout scales it in place).
                layer_out = np.ascontiguousarray(_reverse_time(outs[0], lengths))
            elif D == 1:
                layer_out = np.concatenate(outs, axis=-1) if training else outs[0]
            else:
                layer_out = np.concatenate([outs[0], _reverse_time(outs[1], lengths)], axis=-1)
            mask = None
            if training and self._dropout > 0 and k < L - 1:
                mask = self._rng.random(layer_out.shape) >= self._dropout
                layer_out *= mask
                layer_out *= self._dtype.type(1.0 / (1.0 - self._dropout))
            if cache is not None:  # training
                cache.inputs.append(inp)
                cache.h0.append(h0s)
                cache.c0.append(c0s)
                cache.outs.append(outs)
                cache.workspaces.append(workspaces)
                cache.masks.append(mask)
            inp = layer_out

        out = inp
        if unbatched:
            out, h_n = out[:, 0, :], h_n[:, 0, :]
            c_n = None if c_n is None else c_n[:, 0, :]
        elif self._batch_first:
            out = np.ascontiguousarray(out.transpose(1, 0, 2))
        if training:
            self._cache = cache
        return out, typing_cast(StateT, (h_n, c_n) if lstm else h_n)

    # ------------------------------------------------------------------------------------------------
    # Backward
    # ------------------------------------------------------------------------------------------------

    def _grad_array(self, name: str, value: ArrayLike, shape: tuple[int, ...], meaning: str) -> np.ndarray:
        arr = as_array(name, value)
        if arr.shape != tuple(shape):
            raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(shape)} {meaning}")
        return cast(name, arr, self._dtype)

    def backward(self, d_out: Optional[ArrayLike], d_state_n: Optional[StateLike] = None) -> tuple[np.ndarray, StateT]:
        """Backpropagate through the last training forward; add parameter gradients into :attr:`grads`.

        Parameters
        ----------
        d_out : array-like or None
            Gradient of the loss with respect to ``out``, the same shape as ``out``; None means zeros.
        d_state_n : array-like, tuple of two array-likes, or None
            Gradient with respect to the final state: ``d_h_n`` (RNN/GRU) or ``(d_h_n, d_c_n)`` (LSTM),
            each the shape of ``h_n``; None (or None for either LSTM part) means zeros.

        Returns
        -------
        d_x : ndarray
            Gradient with respect to ``x``, the shape of ``x``.
        d_state : ndarray or tuple of two ndarrays
            Gradient with respect to the initial state: ``d_h0`` or ``(d_h0, d_c0)``, the shape of ``h_n``
            (also when the forward was given ``state=None``).

        Raises
        ------
        RuntimeError
            If no ``forward(..., training=True)`` preceded this call. What the forward saved is released
            by ``backward``, so each training forward supports one backward (as PyTorch without
            ``retain_graph``). On a quantized layer, always (it is inference-only).
        """
        self._refuse_training("backward()")
        cache = self._cache
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs the saved state of a preceding "
                "forward(x, state, training=True); none is available (inference calls save nothing, and "
                "backward releases what the forward saved)"
            )
        ops = functional_ops()
        lstm = cell_facts(self._cell).cell_state
        L, D, H, R = self._num_layers, self.num_directions, self._hidden_size, self.state_size
        c_shape = cache.state_shape[:-1] + (H,)  # c is H wide also where h is proj_size wide
        shape_note = "(the shape of the output of the training forward)"
        if d_out is not None:
            d_out = self._grad_array("d_out", d_out, cache.out_shape, shape_note)
            if cache.unbatched:
                d_out = d_out[:, None, :]
            elif cache.batch_first:
                d_out = d_out.transpose(1, 0, 2)
        d_h_n: Optional[np.ndarray] = None
        d_c_n: Optional[np.ndarray] = None
        state_note = "(the shape of h_n of the training forward)"
        if d_state_n is not None:
            if lstm:
                if not isinstance(d_state_n, (tuple, list)) or len(d_state_n) != 2:
                    raise TypeError(
                        "the LSTM d_state_n must be a tuple (d_h_n, d_c_n) or None, got "
                        f"{type(d_state_n).__name__}"
                    )
                d_h_n, d_c_n = d_state_n
                if d_c_n is not None:
                    d_c_n = self._grad_array("d_c_n", d_c_n, c_shape, state_note.replace("h_n", "c_n"))
            else:
                if isinstance(d_state_n, tuple):
                    raise TypeError(
                        f"the {type(self).__name__} d_state_n must be a single array d_h_n or None, got a tuple"
                    )
                d_h_n = d_state_n
            if d_h_n is not None:
                d_h_n = self._grad_array("d_h_n", d_h_n, cache.state_shape, state_note)
            if cache.unbatched:
                d_h_n = None if d_h_n is None else d_h_n[:, None, :]
                d_c_n = None if d_c_n is None else d_c_n[:, None, :]

        T, B = cache.inputs[0].shape[:2]
        d_h0 = np.empty((L * D, B, R), dtype=self._dtype)
        d_c0 = np.empty((L * D, B, H), dtype=self._dtype) if lstm else None
        grads_k: list[tuple[int, int, Any]] = []  # (layer, direction, the op's *Grads)
        d_layer = d_out  # gradient w.r.t. the current layer's output (T, B, D*R), None = zeros
        for k in reversed(range(L)):
            inp = cache.inputs[k]
            d_inp: Optional[np.ndarray] = None
            for d, dir_id in enumerate(self._direction_ids):
                idx = k * D + d
                x_kd = inp if dir_id == 0 else _reverse_time(inp, cache.lengths)
                dy = None if d_layer is None else d_layer[..., d * R:(d + 1) * R]
                if dy is not None and dir_id == 1:
                    dy = _reverse_time(dy, cache.lengths)
                dh = None if d_h_n is None else d_h_n[idx]
                out_kd, ws_kd, h0_kd = cache.outs[k][d], cache.workspaces[k][d], cache.h0[k][d]
                dc = None if d_c_n is None else d_c_n[idx]
                if not self._fast(d):
                    w_ih, w_hh, _, _, w_hr, w_ch = self._variant_weights(k, dir_id)
                    g = ops.variant_backward(self.options[d], dy, dh, dc, x_kd, h0_kd, cache.c0[k][d], w_ih, w_hh,
                                             w_hr, w_ch, out_kd, ws_kd, lengths=cache.lengths)
                else:
                    w_ih, w_hh, _, _ = self._weights(k, dir_id)
                    if lstm:
                        g = ops.lstm_backward(dy, dh, dc, x_kd, h0_kd, cache.c0[k][d], w_ih, w_hh, out_kd, ws_kd,
                                              lengths=cache.lengths)
                    elif self._cell == "gru":
                        g = ops.gru_backward(dy, dh, x_kd, h0_kd, w_ih, w_hh, out_kd, ws_kd, lengths=cache.lengths)
                    else:
                        g = ops.rnn_backward(dy, dh, x_kd, h0_kd, w_ih, w_hh, out_kd, ws_kd,
                                             nonlinearity=cell_facts(self._cell).nonlinearity, lengths=cache.lengths)
                if d_c0 is not None:  # the LSTM's
                    d_c0[idx] = g.d_c0
                d_h0[idx] = g.d_h0
                grads_k.append((k, dir_id, g))
                d_x = g.d_x if dir_id == 0 else _reverse_time(g.d_x, cache.lengths)
                if d_inp is None:
                    d_inp = d_x
                else:
                    d_inp = d_inp + d_x
            assert d_inp is not None  # every layer has a direction
            if k > 0 and cache.masks[k - 1] is not None:
                d_inp = d_inp * cache.masks[k - 1]
                d_inp *= self._dtype.type(1.0 / (1.0 - self._dropout))
            d_layer = d_inp

        # Only now, with every op done, touch the accumulated gradients (an error above leaves them alone).
        for k, d, g in grads_k:
            self.grads[parameter_name("weight_ih", k, d)] += g.d_w_ih
            self.grads[parameter_name("weight_hh", k, d)] += g.d_w_hh
            if self._bias:
                self.grads[parameter_name("bias_ih", k, d)] += g.d_b_ih
                self.grads[parameter_name("bias_hh", k, d)] += g.d_b_hh
            for base, field in (("weight_hr", "d_w_hr"), ("weight_ch", "d_w_ch")):
                value = getattr(g, field, None)
                if value is not None:
                    self.grads[parameter_name(base, k, d)] += value
        self._cache = None

        d_x = d_layer
        assert d_x is not None  # set by the layer loop (num_layers >= 1)
        if cache.unbatched:
            d_x, d_h0 = d_x[:, 0, :], d_h0[:, 0, :]
            d_c0 = None if d_c0 is None else d_c0[:, 0, :]
        elif cache.batch_first:
            d_x = np.ascontiguousarray(d_x.transpose(1, 0, 2))
        else:
            d_x = np.ascontiguousarray(d_x)
        return d_x, typing_cast(StateT, (d_h0, d_c0) if lstm else d_h0)

    # ------------------------------------------------------------------------------------------------

    def _functional_ops(self) -> ModuleType:
        """The functional ops this layer runs on (:func:`functional_ops`), for its stepper."""
        return functional_ops()

    def stepper(self, batch: Optional[int] = 1) -> Stepper[StateT]:
        """A :class:`~rnnfast.stepper.Stepper` for streaming inference: ``y = s.step(x_t)`` advances one
        step with the state kept inside. It packs a copy of the current weights (make a new stepper
        after changing them). ``batch=None`` makes an unbatched stepper. Bidirectional and
        ``direction='reverse'`` models cannot stream (ValueError). A quantized layer's stepper runs its
        reduced-precision op; a cell variant's, ``variant_forward`` one step at a time."""
        from .stepper import Stepper

        return Stepper(self, batch)

    def _extra_repr(self) -> str:
        s = f"{self._input_size}, {self._hidden_size}"
        if self._num_layers != 1:
            s += f", num_layers={self._num_layers}"
        s += self._options_repr()
        if not self._bias:
            s += ", bias=False"
        if self._batch_first:
            s += ", batch_first=True"
        if self._dropout != 0:
            s += f", dropout={self._dropout}"
        if self._bidirectional:
            s += ", bidirectional=True"
        elif self.direction == "reverse":
            s += ", direction='reverse'"
        if self._dtype != np.float32:
            s += f", dtype='{self._dtype.name}'"
        if self._weight_dtype is not None:
            s += f", weight_dtype='{self._weight_dtype}'"
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._extra_repr()})"
