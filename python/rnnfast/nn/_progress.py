"""The training progress bar of :func:`rnnfast.nn.fit`, usable by hand-written training loops too."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import IO, Optional

from .._validation import positive_int

__all__ = ["ProgressBar"]

_BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    """A short human duration: '42s', '3:07', '1:02:03'."""
    s = int(math.ceil(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}:{s:02d}"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _format_metric(name: str, value: object) -> str:
    return f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"


class ProgressBar:
    """A live training progress line: epoch, step of steps, mean loss so far, rate and ETA.

    On a terminal the line of the current epoch is redrawn in place (``'\\r'``) as batches complete, at
    most every ``interval`` seconds, as a bar with the step counter, the epoch's mean loss so far, the
    rate in sequences per second and the estimated time left; when the epoch ends its final line (with
    the epoch's duration and any metrics, such as validation loss) stays, and the next epoch starts on a
    new line. When the stream is not a terminal (a file, a pipe, CI logs), redrawing would fill the log
    with partial lines, so only each epoch's final line is written. ``verbose=0`` writes nothing;
    ``verbose=2`` writes only the final lines, also on a terminal (as Keras' ``verbose=2``).

    A hand-written loop uses it as :func:`~rnnfast.nn.fit` does::

        bar = nn.ProgressBar(epochs, steps=len(batches))
        for epoch in range(1, epochs + 1):
            bar.start_epoch(epoch)
            for xb, yb in batches:
                ...                                   # forward, loss, backward, step
                bar.step(loss, len(yb))
            bar.end_epoch(val_loss=...)               # returns the epoch's mean loss
        bar.close()

    Parameters
    ----------
    epochs : int
        Number of epochs (shown as ``epoch e/epochs``).
    steps : int, optional
        Batches per epoch; without it the line shows the step count with no bar and no ETA.
    verbose : int, default 1
        0 silent, 1 live line on a terminal (final lines elsewhere), 2 final lines only.
    stream : text stream, optional
        Where to write; ``sys.stdout`` (at construction) by default.
    interval : float, default 0.1
        Least seconds between two redraws of the live line.

    Attributes
    ----------
    losses : list of float
        The mean loss of every finished epoch (each batch's loss weighted by its number of sequences).
    live : bool
        Whether the line is redrawn in place (verbose 1 on a terminal).
    """

    def __init__(self, epochs: int, steps: Optional[int] = None, *, verbose: int = 1,
                 stream: Optional[IO[str]] = None, interval: float = 0.1) -> None:
        self.epochs = positive_int("epochs", epochs)
        self.steps = None if steps is None else positive_int("steps", steps)
        if isinstance(verbose, bool):
            verbose = int(verbose)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (a line per epoch), got {verbose!r}")
        self.verbose = verbose
        self.stream: IO[str] = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.live = verbose == 1 and bool(isatty and isatty())
        self.interval = float(interval)
        self.losses: list[float] = []
        self.epoch = 0
        self._width = 0
        self._start = time.perf_counter()
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._step = 0
        self._loss_sum = 0.0
        self._seqs = 0
        self._epoch_start = self._last_draw = time.perf_counter()

    def start_epoch(self, epoch: int) -> None:
        """Begin epoch ``epoch`` (1-based): the counters start from zero."""
        self.epoch = int(epoch)
        self._reset_counts()
        if self.live:
            self._draw(self._line({}, final=False), final=False)

    def step(self, loss: float, n_seqs: int) -> None:
        """One batch of ``n_seqs`` sequences with mean loss ``loss`` is done."""
        self._step += 1
        self._loss_sum += float(loss) * n_seqs
        self._seqs += n_seqs
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.interval or self._step == self.steps:
            self._last_draw = now
            self._draw(self._line({}, final=False), final=False)

    @property
    def mean_loss(self) -> float:
        """The current epoch's mean loss so far (0 before its first step)."""
        return self._loss_sum / max(self._seqs, 1)

    def end_epoch(self, **metrics: object) -> float:
        """Close the epoch; returns (and records in :attr:`losses`) its mean loss. ``metrics`` (name ->
        value, floats shown with 4 decimals) are written after the loss."""
        loss = self.mean_loss
        self.losses.append(loss)
        if self.verbose:
            self._draw(self._line(metrics, final=True), final=True)
        return loss

    def close(self) -> None:
        """Finish the output (nothing to do unless a live line is still open)."""
        if self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    @property
    def seconds(self) -> float:
        """Seconds since the progress bar was created."""
        return time.perf_counter() - self._start

    def _line(self, metrics: Mapping[str, object], final: bool) -> str:
        elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
        e_width = len(str(self.epochs))
        parts = [f"epoch {self.epoch:{e_width}d}/{self.epochs}"]
        if self.steps is not None:
            s_width = len(str(self.steps))
            counter = f"{self._step:{s_width}d}/{self.steps}"
            if self.live:
                done = min(self._step, self.steps) * _BAR_WIDTH // self.steps
                arrow = ">" if done < _BAR_WIDTH else ""
                counter += " [" + ("=" * done + arrow).ljust(_BAR_WIDTH, ".") + "]"
            parts.append(counter)
        else:
            parts.append(f"step {self._step}")
        parts.append(f"loss {self.mean_loss:.4f}")
        parts.append(f"{self._seqs / elapsed:.0f} seq/s")
        if final:
            parts.append(f"{elapsed:.1f} s")
        elif self.steps is not None and self._step:
            parts.append("ETA " + _duration(elapsed / self._step * (self.steps - self._step)))
        parts += [_format_metric(name, value) for name, value in metrics.items()]
        return "  ".join(parts)

    def _draw(self, line: str, final: bool) -> None:
        if self.live:
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad + ("\n" if final else ""))
            self._width = 0 if final else len(line)
        elif final:
            self.stream.write(line + "\n")
        self.stream.flush()
