"""The run's progress on stderr: a row counter and the estimated time left (:class:`RowProgress`)."""

from __future__ import annotations

import time
from typing import Callable, Optional


def format_duration(seconds: float) -> str:
    """``'45s'``, ``'1m20s'`` or ``'1h05m'``: to the nearest second."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class RowProgress:
    """``[ 7/18] edge   LSTM     T=100 B=1 I=64 H=128   elapsed 1m02s  ETA 1m20s``, one line per row as it starts.

    The estimate is the mean time of the rows measured so far times the rows still to run (this one included):
    rows differ (a training row takes longer than a streaming one), so it firms up as the run goes; before the
    first row is done there is none (``ETA ?``). ``write`` gets each line; ``clock`` is replaceable for tests.
    """

    def __init__(self, total: int, write: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self._write = write
        self._clock = clock
        self._start = clock()
        self._row_start: Optional[float] = None
        self.done = 0
        self.row_seconds: list[float] = []

    def eta(self) -> Optional[float]:
        """Seconds left by the rows' mean so far, or None before any row is done."""
        if not self.row_seconds:
            return None
        return sum(self.row_seconds) / len(self.row_seconds) * (self.total - self.done)

    def start(self, label: str) -> str:
        """Note that a row starts and write its line (returned too)."""
        self._finish_row()
        self._row_start = self._clock()
        eta = self.eta()
        width = len(str(self.total))
        line = (f"[{self.done + 1:{width}d}/{self.total}] {label}   elapsed "
                f"{format_duration(self._row_start - self._start)}  ETA "
                f"{'?' if eta is None else format_duration(eta)}")
        self._write(line)
        return line

    def finish(self) -> float:
        """Note that the last row is done; the run's seconds so far."""
        self._finish_row()
        return self._clock() - self._start

    def _finish_row(self) -> None:
        if self._row_start is not None:
            self.row_seconds.append(self._clock() - self._row_start)
            self.done += 1
            self._row_start = None
