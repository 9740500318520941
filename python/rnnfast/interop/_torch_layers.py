"""The recurrent layers of a ``torch.nn.Sequential`` that :func:`rnnfast.to_torch` writes for an
:class:`rnnfast.nn.Sequential`: ``torch.nn.RNN``, ``LSTM`` and ``GRU`` whose ``forward`` returns the output
sequence only.

A torch recurrent module returns ``(output, state)``, which the next module of a ``torch.nn.Sequential``
cannot take; inside rnnfast's Sequential a recurrent layer passes on its output sequence and drops its state
(which starts at zeros). These subclasses do the same and change nothing else: the same constructor,
parameters and ``state_dict`` keys (so the Sequential's keys are rnnfast's), and :func:`rnnfast.from_torch`
reads them back. They are defined at module level so that ``torch.save`` of a whole model pickles them.

This module imports torch: it is imported only by the converters, when torch is needed.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

__all__ = ["SequenceRNN", "SequenceLSTM", "SequenceGRU", "SEQUENCE_CLASSES"]


class SequenceRNN(torch.nn.RNN):
    """``torch.nn.RNN`` returning only its output sequence (for a ``torch.nn.Sequential``)."""

    def forward(self, input: Any, hx: Optional[Any] = None) -> Any:  # noqa: A002 (torch's argument name)
        return super().forward(input, hx)[0]


class SequenceLSTM(torch.nn.LSTM):
    """``torch.nn.LSTM`` returning only its output sequence (for a ``torch.nn.Sequential``)."""

    def forward(self, input: Any, hx: Optional[Any] = None) -> Any:  # noqa: A002
        return super().forward(input, hx)[0]


class SequenceGRU(torch.nn.GRU):
    """``torch.nn.GRU`` returning only its output sequence (for a ``torch.nn.Sequential``)."""

    def forward(self, input: Any, hx: Optional[Any] = None) -> Any:  # noqa: A002
        return super().forward(input, hx)[0]


#: The output-only class of each torch recurrent class name.
SEQUENCE_CLASSES: dict[str, type] = {"RNN": SequenceRNN, "LSTM": SequenceLSTM, "GRU": SequenceGRU}
