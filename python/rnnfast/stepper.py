"""Streaming inference: advance a model one time step per call, the state kept inside.

Made by a layer's :meth:`~rnnfast._rnn_base.RNNBase.stepper`. The weights are copied and packed for the
kernels when the stepper is made (later changes to the layer's parameters do not reach it: make a new
stepper), and every buffer a step needs is allocated then too, so a step in steady state allocates
nothing in the kernels; pass ``out=`` and it allocates nothing in Python either.

Results: feeding a sequence step by step gives **bit-identical** results to one call of the layer on
the whole sequence. Both run the same input-projection micro-kernels and the same fused recurrent step,
which compute every output element with the same sequence of multiply-adds whatever the number of rows,
and the same gate code.

Pickling: a stepper pickles with its weight snapshot (the copies it was made from, which it keeps for this:
one more copy of the weights in memory) and its current state; the unpickled stepper, in this process or
another, packs the snapshot again and continues with exactly the bits the original would (the kernels'
results do not depend on the number of threads).

Speed: ``step`` hands arrays that need no conversion (the stepper's dtype, the exact shape,
C-contiguous, aligned; ``out`` writeable) straight to the C++ stepper, whose checks read the array
structures directly; anything else goes through the Python checks below, which convert or explain.

A quantized layer (:func:`rnnfast.quantize`) streams with the same contract on the native stepper of its
reduced-precision kernels (``_core.Stepper`` over ``_core.ReducedWeights``): float32 in and out, the state
float32, the bits of one layer call on the whole sequence.

A cell variant (a layer with options other than PyTorch's cell, see :mod:`rnnfast.layers`) streams on the
native variant stepper (``_core.VariantStepper``): its weights packed once, each call running the variant
layer's own forward on its steps from the kept state, so stepping gives the bits of the layer's forward
(whose values do not depend on the number of steps of a call). On :mod:`rnnfast.reference` (tests swap the
ops), each step is one ``variant_forward`` call per layer, the state ``(h, c)`` kept here (NumPy's matrix
products over T*B rows and over B rows may round apart). A ``direction='reverse'`` layer cannot stream, as the reverse half of a bidirectional one
cannot.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Generic, Optional, Union
from typing import cast as typing_cast

import numpy as np

from . import _core
from ._cells import cell_for_torch_mode
from ._quantized import REDUCED_WEIGHT_DTYPES, SCALE_SUFFIX, QuantizedWeight
from ._types import ArrayLike, StateLike, StateT
from ._validation import as_array, cast

__all__ = ["Stepper"]


class _VariantSteps:
    """The stepper of a cell variant, with the native stepper's interface (``step``, ``run``, ``reset``,
    ``get_state``): on the native ops, ``_core.VariantStepper`` (weights packed once, the steps run by the
    variant layer's forward); on other ops (tests run :mod:`rnnfast.reference`), one ``variant_forward`` call
    per layer and step, the state kept here.

    It keeps copies of the weights it was made from (the snapshot), so that it pickles: the native stepper
    cannot, and is packed again from them, its state put back, on unpickling."""

    def __init__(self, ops: ModuleType, layer: Any, batch: int) -> None:
        self._options = layer.options[0]
        self._dims = (layer.num_layers, layer.hidden_size, layer.state_size, batch)
        self._dtype = layer.dtype
        # Copies, so that later changes of the layer's parameters do not reach the stepper.
        self._weights = [tuple(None if w is None else w.copy() for w in layer._variant_weights(k, 0))
                         for k in range(layer.num_layers)]
        self._start(ops)

    def _start(self, ops: ModuleType) -> None:
        """Make the stepping machinery from the snapshot, in the zero state."""
        from . import functional

        self._ops = ops
        L, H, R, batch = self._dims
        self._native: Optional[_core.VariantStepper] = None
        if ops is functional:  # it packs copies of the weights
            self._native = _core.VariantStepper(*functional.variant_kernel_options(self._options), H,
                                                self._options.proj_size, batch, self._weights)
            return
        self._h = np.zeros((L, batch, R), dtype=self._dtype)
        self._c: Optional[np.ndarray] = (np.zeros((L, batch, H), dtype=self._dtype)
                                         if self._options.family == "lstm" else None)

    def __getstate__(self) -> dict[str, Any]:
        L, H, R, batch = self._dims
        h = np.empty((L, batch, R), dtype=self._dtype)
        c = np.empty((L, batch, H), dtype=self._dtype) if self._options.family == "lstm" else None
        self.get_state(h, c)
        # A module does not pickle: its name does (rnnfast.functional, or the reference the tests swap in).
        return {"options": self._options, "dims": self._dims, "dtype": self._dtype, "weights": self._weights,
                "ops": self._ops.__name__, "h": h, "c": c}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import importlib

        self._options, self._dims, self._dtype = state["options"], state["dims"], state["dtype"]
        self._weights = state["weights"]
        self._start(importlib.import_module(state["ops"]))
        self.reset(state["h"], state["c"])

    def step(self, x_t: Any, out: Any, unbatched: bool) -> Optional[np.ndarray]:
        """None: no shortcut, every step goes through the checks of Stepper.step (``_core.Stepper.step``'s
        interface, which returns the output when it took the arrays as they are)."""
        return None

    def run(self, x: np.ndarray, y: np.ndarray) -> None:
        """``x`` (steps, B, I) -> ``y`` (steps, B, R), or one step (B, I) -> (B, R), advancing the state."""
        if self._native is not None:
            self._native.run(x, y)
            return
        if x.ndim == 2:
            self.run(x[None], y[None])
            return
        c = self._c  # the LSTM's cell state, else None
        for t in range(x.shape[0]):
            inp = x[t:t + 1]
            for k, weights in enumerate(self._weights):
                inp, h_n, c_n, _ = self._ops.variant_forward(self._options, inp, self._h[k],
                                                            None if c is None else c[k], *weights)
                self._h[k] = h_n
                if c is not None:
                    c[k] = c_n
            y[t] = inp[0]

    def reset(self, h0: Optional[np.ndarray], c0: Optional[np.ndarray]) -> None:
        if self._native is not None:
            self._native.reset(h0, c0)
            return
        self._h[...] = 0 if h0 is None else h0
        if self._c is not None:
            self._c[...] = 0 if c0 is None else c0

    def get_state(self, h: np.ndarray, c: Optional[np.ndarray]) -> None:
        if self._native is not None:
            self._native.get_state(h, c)
            return
        h[...] = self._h
        if c is not None:
            c[...] = self._c


class Stepper(Generic[StateT]):
    """Streaming inference over a unidirectional (possibly stacked) RNN, LSTM or GRU.

    Generic in the layer's state type (:data:`rnnfast._types.StateT`), which :attr:`state` returns:
    ``layer.stepper()`` of an :class:`~rnnfast.LSTM` is a ``Stepper[tuple[np.ndarray, np.ndarray]]``, of an
    RNN or GRU a ``Stepper[np.ndarray]``.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The model; bidirectional and ``direction='reverse'`` models cannot stream (a reverse direction needs
        the whole sequence).
    batch : int or None
        Number of independent streams. None means unbatched: ``step`` takes (I,) and returns (R,), R the
        layer's ``proj_size`` or H.

    Examples
    --------
    >>> s = rnnfast.LSTM(64, 128, seed=0).stepper(batch=1)
    >>> y = s.step(x_t)            # x_t (1, 64) -> y (1, 128)
    >>> ys = s.step_many(chunk)    # chunk (T, 1, 64) -> (T, 1, 128)
    >>> s.reset()                  # back to the zero state
    """

    # ``layer`` is an RNNBase, not annotated so: _rnn_base imports this module (RNNBase.stepper), and an import
    # back would make a cycle (tests/system/test_layering.py). RNNBase.stepper's return type gives the StateT.
    def __init__(self, layer: Any, batch: Optional[int] = 1) -> None:
        if layer.bidirectional:
            raise ValueError(
                "a bidirectional model cannot run step by step: its reverse direction needs the whole sequence"
            )
        if layer.direction == "reverse":
            raise ValueError(
                "a model with direction='reverse' cannot run step by step: it reads each sequence from its end"
            )
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
            raise ValueError(f"batch must be a positive integer or None (unbatched), got {batch!r}")
        self._unbatched = batch is None
        self._batch = 1 if batch is None else int(batch)
        self._dtype = layer.dtype
        facts = cell_for_torch_mode(layer.mode)
        self._cell_kind = layer.mode
        self._lstm = facts.cell_state
        self._cell = facts.name  # the kernels' name of PyTorch's cell
        self._batch_first = layer.batch_first
        self._num_layers = layer.num_layers
        self._input_size = layer.input_size
        self._hidden_size = layer.hidden_size
        self._state_size = layer.state_size  # R: the width of h and of the output
        self._step_shape = (self._input_size,) if self._unbatched else (self._batch, self._input_size)
        self._out_shape = (self._state_size,) if self._unbatched else (self._batch, self._state_size)
        self._variant = layer.variant_options()
        if self._variant:
            self._cell_kind = type(layer).__name__  # a variant is none of PyTorch's modes
            self._weight_dtype = layer.weight_dtype
            # The layer's ops (looked up as its forward does, so that tests swapping them reach the stepper too).
            self._impl: Union[_VariantSteps, _core.Stepper] = _VariantSteps(layer._functional_ops(), layer,
                                                                                self._batch)
            return
        params = layer.parameters()
        self._weight_dtype = layer.weight_dtype
        quantized = self._weight_dtype in REDUCED_WEIGHT_DTYPES
        # The snapshot: copies of the weights (a quantized weight copies its arrays), so that later changes of
        # the layer's parameters do not reach the stepper, and so that it pickles (the native stepper cannot:
        # it is packed again from these on unpickling).
        weights: list[tuple[Any, ...]] = []
        for k in range(layer.num_layers):
            names = (f"weight_ih_l{k}", f"weight_hh_l{k}")
            if quantized:
                w_ih, w_hh = (QuantizedWeight(facts.name, self._weight_dtype, params[name],
                                              params.get(name + SCALE_SUFFIX)) for name in names)
            else:
                w_ih, w_hh = (params[name].copy() for name in names)
            b_ih, b_hh = (None if b is None else b.copy()
                          for b in (params.get(f"bias_ih_l{k}"), params.get(f"bias_hh_l{k}")))
            weights.append((w_ih, w_hh, b_ih, b_hh))
        self._weights = weights
        self._impl = self._native_stepper()

    def _native_stepper(self) -> _core.Stepper:
        """The native stepper of PyTorch's cells, packed from the snapshot, in the zero state."""
        layers = [tuple(w.native() if isinstance(w, QuantizedWeight) else w for w in ws) for ws in self._weights]
        return _core.Stepper(self._cell, self._hidden_size, self._batch, layers)

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (and ``copy.copy``) carries the configuration, the weight snapshot and the current state: an
        unpickled stepper (in this process or another) is a stepper of its own that continues with the bits
        this one would."""
        state = dict(self.__dict__)
        state["_impl"] = None  # the native stepper does not pickle: its state does
        if isinstance(self._impl, _VariantSteps):
            state["_variant_steps"] = self._impl.__getstate__()
        else:
            state["_h"], state["_c"] = self._full_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        variant_steps = state.pop("_variant_steps", None)
        h, c = state.pop("_h", None), state.pop("_c", None)
        self.__dict__.update(state)
        if variant_steps is not None:
            steps = _VariantSteps.__new__(_VariantSteps)
            steps.__setstate__(variant_steps)
            self._impl = steps
        else:
            native = self._native_stepper()
            native.reset(h, c)
            self._impl = native

    def _full_state(self) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Copies of ``h`` (num_layers, batch, R) and ``c`` (num_layers, batch, H) (None but for the LSTM)."""
        h = np.empty((self._num_layers, self._batch, self._state_size), dtype=self._dtype)
        c = np.empty((self._num_layers, self._batch, self._hidden_size), dtype=self._dtype) if self._lstm else None
        self._impl.get_state(h, c)
        return h, c

    @property
    def batch(self) -> Optional[int]:
        """Number of streams (None: unbatched)."""
        return None if self._unbatched else self._batch

    def _x(self, name: str, value: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
        # Arrays that need no conversion never get here when out is fine (_core.Stepper.step takes them).
        arr = as_array(name, value)
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
        return cast(name, arr, self._dtype)

    def _out(self, out: Optional[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=self._dtype)
        if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != self._dtype \
                or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(
                f"out must be a writeable C-contiguous {self._dtype} array of shape {shape}, got "
                f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
            )
        return out

    def step(self, x_t: ArrayLike, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Advance one time step.

        Parameters
        ----------
        x_t : array-like, (batch, input_size), or (input_size,) unbatched
        out : ndarray, optional
            C-contiguous array of the stepper's dtype and the output's shape to write into (then the call
            allocates nothing).

        Returns
        -------
        ndarray, (batch, R) or (R,): the top layer's output ``h_t`` (R = proj_size or hidden_size).
        """
        y = self._impl.step(x_t, out, self._unbatched)  # arrays that need no conversion: done in C++
        if y is not None:
            return y
        x = self._x("x_t", x_t, self._step_shape)
        y = self._out(out, self._out_shape)
        if self._unbatched:
            self._impl.run(x.reshape(1, -1), y.reshape(1, -1))
        else:
            self._impl.run(x, y)
        return y

    def step_many(self, x_chunk: ArrayLike, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Advance over a chunk of steps in one call.

        Parameters
        ----------
        x_chunk : array-like, (T, batch, input_size) ((batch, T, input_size) if the layer is
            batch_first), or (T, input_size) unbatched

        Returns
        -------
        ndarray of the top layer's outputs, (T, batch, R) in the layer's layout, or (T, R) unbatched
        (R = proj_size or hidden_size).
        """
        arr = as_array("x_chunk", x_chunk)
        if self._unbatched:
            if arr.ndim != 2 or arr.shape[1] != self._input_size:
                raise ValueError(f"x_chunk has shape {arr.shape}, expected (steps, {self._input_size})")
            steps = arr.shape[0]
            x = cast("x_chunk", arr, self._dtype).reshape(steps, 1, self._input_size)
        else:
            layout = (self._batch, None) if self._batch_first else (None, self._batch)
            if arr.ndim != 3 or arr.shape[2] != self._input_size or any(
                    want is not None and got != want for want, got in zip(layout, arr.shape)):
                expected = "(batch, steps, input_size)" if self._batch_first else "(steps, batch, input_size)"
                raise ValueError(
                    f"x_chunk has shape {arr.shape}, expected {expected} with batch {self._batch} and "
                    f"input_size {self._input_size}"
                )
            if self._batch_first:
                arr = arr.transpose(1, 0, 2)
            x = cast("x_chunk", arr, self._dtype)
            steps = x.shape[0]
        y = np.empty((steps, self._batch, self._state_size), dtype=self._dtype)
        self._impl.run(x, y)
        if self._unbatched:
            result = y[:, 0, :]
        elif self._batch_first:
            result = y.transpose(1, 0, 2)
        else:
            result = y
        if out is not None:
            if not isinstance(out, np.ndarray) or out.shape != result.shape:
                raise ValueError(f"out must be an array of shape {result.shape}")
            np.copyto(out, result, casting="same_kind")
            return out
        return np.ascontiguousarray(result)

    def reset(self, state: Optional[StateLike] = None) -> None:
        """Set the state: None for zeros, else ``h0`` (RNN/GRU) or ``(h0, c0)`` (LSTM), ``h0``
        (num_layers, batch, R) (R = proj_size or hidden_size) and ``c0`` (num_layers, batch, hidden_size),
        without the batch axis unbatched."""
        def shape(width: int) -> tuple[int, ...]:
            return (self._num_layers, width) if self._unbatched else (self._num_layers, self._batch, width)
        h0 = c0 = None
        if state is not None:
            if self._lstm:
                if not isinstance(state, (tuple, list)) or len(state) != 2:
                    raise TypeError("the LSTM state must be a tuple (h0, c0) or None")
                h0, c0 = state
            elif isinstance(state, tuple):
                raise TypeError("the state must be a single array h0 or None, got a tuple")
            else:
                h0 = state
        h0 = None if h0 is None else self._x("h0", h0, shape(self._state_size)).reshape(
            self._num_layers, self._batch, self._state_size)
        c0 = None if c0 is None else self._x("c0", c0, shape(self._hidden_size)).reshape(
            self._num_layers, self._batch, self._hidden_size)
        self._impl.reset(h0, c0)

    @property
    def state(self) -> StateT:
        """A copy of the current state: ``h`` or ``(h, c)``, h (num_layers, batch, R) and c (num_layers,
        batch, hidden_size), without the batch axis unbatched; index = layer (a stepper has one direction)."""
        h, c = self._full_state()
        if self._unbatched:
            h = h[:, 0, :]
            c = None if c is None else c[:, 0, :]
        return typing_cast(StateT, (h, c) if self._lstm else h)

    def __repr__(self) -> str:
        batch = "None" if self._unbatched else self._batch
        weights = "" if self._weight_dtype == self._dtype.name else f", weight_dtype={self._weight_dtype}"
        if self._variant:
            weights += f", variant={'+'.join(self._variant)}"
        return (f"Stepper({self._cell_kind}, input_size={self._input_size}, hidden_size={self._hidden_size}, "
                f"num_layers={self._num_layers}, batch={batch}, dtype={self._dtype.name}{weights})")
