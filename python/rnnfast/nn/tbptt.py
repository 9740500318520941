"""Truncated backpropagation through time: a long sequence trained in chunks, state carried forward."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional, Union

import numpy as np

from .._reference_reduced import REDUCED_WEIGHT_DTYPES
from .._validation import as_array, positive_int

__all__ = ["TruncatedBPTT"]

ArrayLike = Any


class TruncatedBPTT:
    """Train a recurrent layer on a long sequence in chunks: state carried forward, gradient stopped.

    Backpropagation through a whole long sequence costs memory in its length and its gradients can
    explode or vanish. Truncated BPTT runs the sequence in chunks of ``chunk_len`` steps: each chunk
    starts from the final state of the previous one (so the model still sees the whole history), but the
    state is *detached* at the boundary, so each backward stops at its chunk's start. ::

        tbptt = nn.TruncatedBPTT(lstm, chunk_len=50)
        for x_chunk, y_chunk in tbptt.chunks(x, y):          # x, y (T, B, ...) split on the time axis
            out = tbptt.forward(x_chunk)                     # starts from the carried state
            loss, d_pred = nn.mse(head.forward(out, training=True), y_chunk)
            opt.zero_grad()
            tbptt.backward(head.backward(d_pred))            # no gradient into earlier chunks
            opt.step()
        tbptt.reset()                                        # before the next, unrelated batch of sequences

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        A unidirectional layer (the reverse direction of a bidirectional one has no state to carry forward).
    chunk_len : int, optional
        Steps per chunk for :meth:`chunks`.

    Raises
    ------
    ValueError
        From :meth:`forward` when a chunk's batch size (or batched-ness) does not match the carried state,
        naming both shapes; from the constructor for a bidirectional layer.
    """

    def __init__(self, layer: Any, chunk_len: Optional[int] = None) -> None:
        if getattr(layer, "weight_dtype", None) in REDUCED_WEIGHT_DTYPES:
            raise TypeError(f"layer ({type(layer).__name__} quantized to {layer.weight_dtype}) is inference-only: "
                            "train the float model and quantize it again")
        if getattr(layer, "bidirectional", False):
            raise ValueError("TruncatedBPTT needs a unidirectional layer: the reverse direction of a bidirectional "
                             "layer runs from the end of the sequence, so it has no state to carry into the next chunk")
        self.layer = layer
        self.chunk_len = None if chunk_len is None else positive_int("chunk_len", chunk_len)
        self._state: Any = None

    @property
    def state(self) -> Any:
        """The carried (detached) state: ``h`` or ``(h, c)``, or None before the first chunk."""
        return self._state

    def reset(self, state: Any = None) -> None:
        """Forget the carried state (start of new sequences), or set it to ``state``."""
        self._state = self._detach(state)

    @staticmethod
    def _detach(state: Any) -> Any:
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(None if s is None else np.array(s, copy=True) for s in state)
        return np.array(state, copy=True)

    def chunks(self, *arrays: ArrayLike, chunk_len: Optional[int] = None, axis: Optional[int] = None
               ) -> Iterator[Union[np.ndarray, tuple[np.ndarray, ...]]]:
        """Split ``arrays`` (all the same length on the time axis) into consecutive chunks.

        The time axis is 1 for a ``batch_first`` layer's 3-D input, else 0 (pass ``axis`` to override).
        Yields one array per chunk if one array is given, else a tuple; the last chunk may be shorter.
        """
        n = self.chunk_len if chunk_len is None else positive_int("chunk_len", chunk_len)
        if n is None:
            raise ValueError("chunks() needs chunk_len (given here or to the constructor)")
        if not arrays:
            raise ValueError("chunks() needs at least one array")
        arrs = [np.asarray(a) for a in arrays]
        if axis is None:
            axis = 1 if getattr(self.layer, "batch_first", False) and arrs[0].ndim == 3 else 0
        T = arrs[0].shape[axis]
        for i, a in enumerate(arrs[1:], 1):
            if a.shape[axis] != T:
                raise ValueError(f"arrays[{i}] has shape {a.shape}: length {a.shape[axis]} on the time axis "
                                 f"{axis}, expected {T} (the length of arrays[0], shape {arrs[0].shape})")
        for start in range(0, T, n):
            sl = [np.take(a, np.arange(start, min(start + n, T)), axis=axis) for a in arrs]
            yield sl[0] if len(sl) == 1 else tuple(sl)

    def _check_chunk(self, x: np.ndarray) -> None:
        state = self._state
        if state is None:
            return
        h = state[0] if isinstance(state, tuple) else state
        if x.ndim == 2:
            chunk_batch, what = None, "an unbatched chunk (seq_len, input_size)"
        elif x.ndim == 3:
            chunk_batch = x.shape[0] if getattr(self.layer, "batch_first", False) else x.shape[1]
            what = f"batch {chunk_batch}"
        else:
            return  # the layer reports the bad rank
        state_batch = h.shape[1] if h.ndim == 3 else None
        if chunk_batch != state_batch:
            carried = f"batch {state_batch}" if state_batch is not None else "unbatched"
            raise ValueError(f"truncated-BPTT x_chunk has shape {x.shape} ({what}) but the carried state "
                             f"has shape {h.shape} ({carried}); every chunk must continue the same sequences "
                             "- call reset() before starting new ones")

    def forward(self, x_chunk: ArrayLike, *, training: bool = True) -> np.ndarray:
        """Run the layer on the next chunk from the carried state; keep its final state (detached).

        Returns the chunk's output ``out``; with ``training=True`` the layer saves what
        :meth:`backward` needs.
        """
        x = as_array("x_chunk", x_chunk)
        self._check_chunk(x)
        out, state = self.layer.forward(x, self._state, training=training)
        self._state = self._detach(state)
        result: np.ndarray = out
        return result

    def backward(self, d_out: ArrayLike) -> np.ndarray:
        """Backward through the last chunk only (no gradient flows into the carried state); returns ``d_x``.

        Parameter gradients are added into ``layer.grads``.
        """
        d_x, _ = self.layer.backward(d_out, None)
        result: np.ndarray = d_x
        return result
