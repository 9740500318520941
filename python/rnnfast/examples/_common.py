"""What the examples share: the live progress line, the optional loss-curve plot, batching and options."""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Iterator, Optional, Sequence

import numpy as np


class Progress:
    """A live training progress line: epoch, mean loss so far, sequences per second, and any metrics.

    On a terminal the line is redrawn in place (``'\\r'``) as batches complete, at most every
    ``interval`` seconds, and each epoch's final line stays until the next epoch overwrites it; when
    output goes to a file or pipe (CI logs), one line is printed per epoch instead. ``verbose=False``
    prints nothing. The mean loss of every epoch is kept in :attr:`losses`.
    """

    def __init__(self, epochs: int, *, verbose: bool = True, stream: Optional[IO[str]] = None,
                 interval: float = 0.1) -> None:
        self.epochs = epochs
        self.verbose = verbose
        self.stream = sys.stdout if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.interval = interval
        self.losses: list[float] = []
        self._width = 0
        self._start = time.perf_counter()

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._loss_sum = 0.0
        self._seqs = 0
        self._epoch_start = self._last_draw = time.perf_counter()

    def step(self, loss: float, n_seqs: int) -> None:
        """One batch of ``n_seqs`` sequences with mean loss ``loss`` is done."""
        self._loss_sum += float(loss) * n_seqs
        self._seqs += n_seqs
        now = time.perf_counter()
        if self.verbose and self.live and now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(self._line({}), final=False)

    def end_epoch(self, **metrics: float) -> float:
        """Close the epoch; returns (and records) its mean loss. ``metrics`` are shown after the loss."""
        loss = self._loss_sum / max(self._seqs, 1)
        self.losses.append(loss)
        if self.verbose:
            self._draw(self._line(metrics), final=True)
        return loss

    def close(self) -> None:
        """End the live line (on a terminal); call once after the last epoch."""
        if self.verbose and self.live and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    @property
    def seconds(self) -> float:
        """Seconds since the progress line was created."""
        return time.perf_counter() - self._start

    def _line(self, metrics: dict) -> str:
        elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
        width = len(str(self.epochs))
        line = (f"epoch {self.epoch:{width}d}/{self.epochs}  loss {self._loss_sum / max(self._seqs, 1):.4f}  "
                f"{self._seqs / elapsed:8.0f} seq/s")
        for name, value in metrics.items():
            line += f"  {name} {value:.4f}" if isinstance(value, float) else f"  {name} {value}"
        return line

    def _draw(self, line: str, final: bool) -> None:
        if self.live:
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        elif final:
            self.stream.write(line + "\n")
        self.stream.flush()


def plot_losses(losses: Sequence[float], path: str, title: str, *, stream: Optional[IO[str]] = None) -> bool:
    """Save the loss curve to ``path`` (PNG) if matplotlib is installed; say so either way.

    matplotlib is optional (not a dependency of rnnfast): without it this prints a note and returns False.
    """
    out = sys.stdout if stream is None else stream
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        out.write(f"matplotlib is not installed, so no loss curve was saved to {path} "
                  "(pip install matplotlib to get one)\n")
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(losses) + 1), losses, marker="o" if len(losses) < 40 else None)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    out.write(f"saved the loss curve to {path}\n")
    return True


def batches(n: int, batch_size: int, rng: Optional[np.random.Generator]) -> Iterator[np.ndarray]:
    """Index arrays of consecutive mini-batches over ``range(n)``, shuffled when ``rng`` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def parser(description: str, *, epochs: int, seed: int = 0, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser with the options every example has: --epochs, --seed, --plot, --quiet."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--seed", type=int, default=seed, help="seed of the data and the initial weights")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="save the loss curve as a PNG here (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def finish(result: dict, title: str, plot: Optional[str]) -> None:
    """Print the example's closing lines (its ``summary``, the run time) and save the plot if asked."""
    print(result["summary"])
    print(f"time: {result['seconds']:.1f} s")
    if plot:
        plot_losses(result["losses"], plot, title)
