"""The facts about the four recurrent cells, in one table, checked at import against the kernels.

Every module that needs a cell's gate count, gate order, workspace width, PyTorch mode name or whether
it carries a cell state ``c`` reads it here, so that no module restates them. The kernels
(:mod:`rnnfast._core`) have their own copy, compiled in; :func:`check_against_kernels` compares the two
when rnnfast is imported and refuses to import on any difference, so the Python side can never disagree
silently with the C++ side about what a cell is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import _core


@dataclass(frozen=True)
class CellFacts:
    """What one cell is, in rnnfast's (PyTorch's) conventions.

    ``gate_names`` are the gate blocks in the row order of ``w_ih``/``w_hh`` (each H rows);
    ``workspace_slots`` the blocks of H per (t, b) row that a training forward saves for backward.
    """

    name: str                            # the kernels' name: 'rnn_tanh', 'rnn_relu', 'lstm', 'gru'
    torch_mode: str                      # PyTorch's RNNBase.mode: 'RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'
    layer_class: str                     # the rnnfast layer class computing it: 'RNN', 'LSTM', 'GRU'
    gate_names: tuple[str, ...]
    workspace_slots: int
    cell_state: bool                     # whether the state is (h, c) rather than h alone
    nonlinearity: Optional[str] = None   # the vanilla RNN's activation: 'tanh' or 'relu'

    @property
    def gates(self) -> int:
        """Number of gates G: weights have G*H rows."""
        return len(self.gate_names)

    @property
    def family(self) -> str:
        """'rnn' for both vanilla RNN cells, else the cell name ('lstm', 'gru')."""
        return self.layer_class.lower()

    def workspace_width(self, hidden_size: int) -> int:
        """Width W of the training workspace (T, B, W) for hidden size H."""
        return self.workspace_slots * int(hidden_size)


# In the kernels' order (the order of _core.cell_facts()).
# Workspace per (t, b) row, in blocks of H:
#   LSTM: [i, f, g, o, c_t, tanh(c_t)]  (gates after their activation)
#   GRU:  [r, z, n, W_hn h_{t-1} + b_hn] (gates after their activation)
#   RNN:  nothing: the output h_t alone gives the activation's derivative.
CELL_FACTS: tuple[CellFacts, ...] = (
    CellFacts("rnn_tanh", "RNN_TANH", "RNN", ("h",), 0, False, "tanh"),
    CellFacts("rnn_relu", "RNN_RELU", "RNN", ("h",), 0, False, "relu"),
    CellFacts("lstm", "LSTM", "LSTM", ("i", "f", "g", "o"), 6, True),
    CellFacts("gru", "GRU", "GRU", ("r", "z", "n"), 4, False),
)

#: The cell names, in the kernels' order.
CELL_NAMES: tuple[str, ...] = tuple(f.name for f in CELL_FACTS)
#: The vanilla RNN's activations ('tanh', 'relu').
RNN_NONLINEARITIES: tuple[str, ...] = tuple(f.nonlinearity for f in CELL_FACTS if f.nonlinearity)
#: The most threads the kernels' pool can run (rnnfast.set_num_threads refuses more).
MAX_THREADS = 4096

_BY_NAME = {f.name: f for f in CELL_FACTS}
_BY_TORCH_MODE = {f.torch_mode: f for f in CELL_FACTS}


def cell_facts(name: str) -> CellFacts:
    """The facts of cell ``name`` ('rnn_tanh', 'rnn_relu', 'lstm', 'gru'); KeyError for another name."""
    return _BY_NAME[name]


def cell_for_torch_mode(mode: str) -> CellFacts:
    """The facts of the cell PyTorch calls ``mode`` ('RNN_TANH', ...); KeyError for another mode."""
    return _BY_TORCH_MODE[mode]


def rnn_cell(nonlinearity: str) -> CellFacts:
    """The vanilla RNN cell with activation ``nonlinearity``; KeyError if there is none."""
    return _BY_NAME["rnn_" + nonlinearity]


def check_against_kernels(kernel_cells: list, kernel_max_threads: int) -> None:
    """Raise ImportError naming every difference between this table and the kernels' own facts.

    ``kernel_cells`` is ``_core.cell_facts()`` (a list of dicts with 'name', 'gates', 'workspace_slots',
    'cell_state', in the kernels' cell order) and ``kernel_max_threads`` is ``_core.MAX_THREADS``.
    """
    ours = [{"name": f.name, "gates": f.gates, "workspace_slots": f.workspace_slots, "cell_state": f.cell_state}
            for f in CELL_FACTS]
    theirs = [dict(c) for c in kernel_cells]
    problems = []
    if [c.get("name") for c in theirs] != [c["name"] for c in ours]:
        problems.append(f"cells {[c.get('name') for c in theirs]} in the kernels, "
                        f"{[c['name'] for c in ours]} in rnnfast._cells")
    else:
        for mine, kernel in zip(ours, theirs):
            for key, value in mine.items():
                if kernel.get(key) != value:
                    problems.append(f"{mine['name']} {key}: {kernel.get(key)!r} in the kernels, {value!r} in "
                                    "rnnfast._cells")
    if kernel_max_threads != MAX_THREADS:
        problems.append(f"MAX_THREADS: {kernel_max_threads!r} in the kernels, {MAX_THREADS!r} in rnnfast._cells")
    if problems:
        raise ImportError("rnnfast's cell facts disagree with the native kernels (rnnfast._core): "
                          + "; ".join(problems) + ". The extension and the Python package come from different "
                          "builds; reinstall rnnfast.")


check_against_kernels(_core.cell_facts(), _core.MAX_THREADS)
