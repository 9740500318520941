"""The examples' command line: the options they share, their closing lines and the optional loss-curve plot.

Every example's ``main(argv)`` builds its parser with :func:`parser` (``--epochs``, ``--seed``, ``--plot``,
``--quiet``) and adds its own options, runs its ``run(...)`` and ends with :func:`finish`. Their progress
line is :class:`rnnfast.nn.ProgressBar`, the one :func:`rnnfast.nn.fit` draws. Written for the examples,
but public and stable so that a script of one's own can look the same.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["parser", "finish", "plot_losses"]


def plot_losses(losses: Sequence[float], path: str, title: str, *, stream: Optional[IO[str]] = None) -> bool:
    """Save the loss curve to ``path`` (PNG) if matplotlib is installed; say so either way.

    matplotlib is optional (not a dependency of rnnfast): without it this prints a note and returns False.

    Parameters
    ----------
    losses : sequence of float
        The mean training loss of every epoch.
    path : str
        The PNG file to write.
    title : str
        The plot's title.
    stream : text stream, optional
        Where to say what was done; ``sys.stdout`` by default.

    Returns
    -------
    bool
        Whether the plot was saved.
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


def parser(description: str, *, epochs: int, seed: int = 0, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser with the options every example has: --epochs, --seed, --plot, --quiet.

    Parameters
    ----------
    description : str
        Shown by ``--help`` (the examples use their docstring's first line).
    epochs : int
        The default of ``--epochs``.
    seed : int, default 0
        The default of ``--seed``.
    prog : str, optional
        The program name in ``--help`` (``rnnfast demo NAME`` when run as a demo).
    """
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--seed", type=int, default=seed, help="seed of the data and the initial weights")
    p.add_argument("--plot", metavar="PATH", default=None,
                   help="save the loss curve as a PNG here (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def finish(result: Mapping[str, Any], title: str, plot: Optional[str]) -> None:
    """Print the example's closing lines (its ``summary``, the run time) and save the plot if asked.

    Parameters
    ----------
    result : mapping
        What the example's ``run`` returned: ``summary`` (str), ``seconds`` (float) and ``losses`` (the
        mean training loss per epoch).
    title : str
        The plot's title.
    plot : str or None
        Where to save the loss curve (PNG); None saves nothing.
    """
    print(result["summary"])
    print(f"time: {result['seconds']:.1f} s")
    if plot:
        plot_losses(result["losses"], plot, title)
