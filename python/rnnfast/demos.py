"""The registry of runnable examples behind ``rnnfast demo``.

The examples' code lives in the package, in :mod:`rnnfast.examples` (so an installed wheel can run
them); the scripts in the repository's ``examples/`` directory are thin wrappers around the same
modules. Each example module has ``main(argv)`` (the command line) and ``run(...)`` (the training, with
keyword settings, returning its results).

``rnnfast demo`` lists the demos; ``rnnfast demo NAME [options]`` runs one (``NAME --help`` shows its
options); from Python, :func:`run` does the same.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Optional, Sequence

__all__ = ["Demo", "DEMOS", "get", "module", "run", "listing"]


@dataclass(frozen=True)
class Demo:
    """One runnable example: its name, module in :mod:`rnnfast.examples`, pattern and one-line summary."""

    name: str
    module: str
    pattern: str
    summary: str
    argv: tuple = ()  # options put before the user's (e.g. the LSTM variant of the character model)


DEMOS: dict[str, Demo] = {d.name: d for d in [
    Demo("one_to_one", "one_to_one", "one-to-one",
         "inside or outside a circle: an RNN over a single time step as a classifier"),
    Demo("char_rnn", "char_rnn", "many-to-one",
         "character-level text generation, the classic tutorial: relu RNN(50), dense softmax, Adam"),
    Demo("char_lstm", "char_rnn", "many-to-one",
         "the same character model with an LSTM", ("--cell", "lstm")),
    Demo("parity", "parity", "many-to-one",
         "parity of variable-length bit strings (lengths=), GRU, stated accuracy"),
    Demo("spell_number", "spell_number", "one-to-many",
         "spell a number 0-99 in English from a single input (RepeatVector style)"),
    Demo("tagging", "tagging", "many-to-many, synced",
         "tag peaks and valleys at every step: stacked bidirectional GRU, masked loss"),
    Demo("addition", "addition", "encoder-decoder",
         "seq2seq addition '57+86' -> '143': GRU encoder, stepper-driven GRU decoder"),
    Demo("timeseries", "timeseries", "many-to-many, streaming",
         "forecast a noisy signal (truncated BPTT) and detect anomalies through the stepper"),
]}


def get(name: str) -> Demo:
    """The demo called ``name`` (``-`` and ``_`` are interchangeable); KeyError listing the names if none."""
    key = name.replace("-", "_")
    if key not in DEMOS:
        raise KeyError(f"no demo called {name!r}; the demos are: {', '.join(DEMOS)}")
    return DEMOS[key]


def module(name: str) -> ModuleType:
    """The example module of demo ``name`` (``rnnfast.examples.<module>``)."""
    return importlib.import_module(f"rnnfast.examples.{get(name).module}")


def run(name: str, argv: Optional[Sequence[str]] = None) -> int:
    """Run demo ``name`` as from the command line, with options ``argv``; returns the exit status."""
    demo = get(name)
    return int(module(name).main(list(demo.argv) + list(argv or []), prog=f"rnnfast demo {demo.name}") or 0)


def listing() -> str:
    """The table printed by ``rnnfast demo``."""
    width = max(len(n) for n in DEMOS)
    pwidth = max(len(d.pattern) for d in DEMOS.values())
    lines = ["rnnfast demos: run one with 'rnnfast demo NAME [options]' ('rnnfast demo NAME --help' for its options)",
             ""]
    lines += [f"  {d.name:{width}s}  {d.pattern:{pwidth}s}  {d.summary}" for d in DEMOS.values()]
    return "\n".join(lines)
