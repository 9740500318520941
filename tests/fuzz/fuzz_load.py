"""Coverage-guided fuzzing of :func:`rnnfast.load` with atheris (libFuzzer for Python): every input is a file to
load, and the only acceptable outcomes are a model or a ``ValueError`` whose message starts with the file's name
(``load``'s documented contract for a file that is not a valid model). Any other exception, or a ``ValueError``
that does not name the file, is a finding: the harness re-raises it, and libFuzzer stops and writes the input
(``crash-<sha1>``) for replay.

Usage (.ci/fuzz runs it bounded)::

    python tests/fuzz/fuzz_load.py --make-corpus CORPUS      # the seed files, written by rnnfast.save
    python tests/fuzz/fuzz_load.py CORPUS -max_total_time=60 -rss_limit_mb=4096 -timeout=30
    python tests/fuzz/fuzz_load.py crash-...                 # replay one input (a file argument)

The seeds are small layers of every kind ``save`` writes: RNN (tanh, relu), LSTM, GRU, bidirectional and
stacked, batch_first, without biases, float64, the cell variants (format version 3: projection, peepholes,
clip, input_forget, other activations, reset_after=False, direction='reverse'), int8 and bf16 quantized layers,
and, where the package has it (``rnnfast.nn.Sequential``), a whole model.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, Callable

import atheris

# rnnfast's own Python (the checks of io.py and the layers' constructors) and the archive readers are what the
# fuzzer should learn its way through; the rest of NumPy is too big to instrument usefully.
with atheris.instrument_imports(include=["rnnfast", "zipfile", "json"]):
    import numpy as np

    import rnnfast
    from rnnfast import nn

LABEL = "fuzzed.npz"


def check_load(data: bytes) -> None:
    """Load ``data`` as a model file; raise (a finding) unless it loads or is refused as documented."""
    f = io.BytesIO(data)
    f.name = LABEL  # what load names the file by
    try:
        rnnfast.load(f)
    except ValueError as exc:
        if not str(exc).startswith(LABEL + ": "):
            raise AssertionError(f"load raised a ValueError that does not name the file: {exc!r}") from exc


def seed_models() -> dict[str, Any]:
    """Small models of every kind ``save`` writes, by file name."""
    kw: dict[str, Any] = {"seed": 0}
    models: dict[str, Any] = {
        "rnn_tanh": rnnfast.RNN(3, 4, **kw),
        "rnn_relu_2layers_bf": rnnfast.RNN(3, 4, 2, nonlinearity="relu", batch_first=True, **kw),
        "lstm": rnnfast.LSTM(3, 4, **kw),
        "lstm_bidir_2layers": rnnfast.LSTM(3, 4, 2, bidirectional=True, **kw),
        "gru_nobias_f64": rnnfast.GRU(3, 4, bias=False, dtype="float64", **kw),
        "gru_bidir": rnnfast.GRU(3, 4, bidirectional=True, **kw),
        "lstm_proj_peepholes": rnnfast.LSTM(3, 4, proj_size=2, peepholes=True, **kw),
        "lstm_clip_input_forget": rnnfast.LSTM(3, 4, clip=2.0, input_forget=True, **kw),
        "lstm_activations": rnnfast.LSTM(3, 4, activations=["hard_sigmoid", "tanh", "softsign"], **kw),
        "gru_reset_before_reverse": rnnfast.GRU(3, 4, reset_after=False, direction="reverse", **kw),
        "rnn_leaky_relu": rnnfast.RNN(3, 4, nonlinearity=rnnfast.Activation("leaky_relu", alpha=0.1), **kw),
    }
    models["lstm_int8"] = rnnfast.quantize(rnnfast.LSTM(3, 4, bidirectional=True, **kw), "int8")
    models["gru_bf16"] = rnnfast.quantize(rnnfast.GRU(3, 4, 2, **kw), "bf16")
    models["rnn_int8"] = rnnfast.quantize(rnnfast.RNN(3, 4, **kw), "int8")
    if hasattr(nn, "Sequential"):  # whole models (issue 18), where this rnnfast has them
        models["sequential"] = _sequential()
    return models


def _sequential() -> Any:
    """Embedding -> LSTM -> LastStep -> Linear, built from what this rnnfast.nn has."""
    modules: list[Any] = []
    if hasattr(nn, "Embedding"):
        modules.append(nn.Embedding(10, 3, seed=0))
    modules.append(rnnfast.LSTM(3, 4, seed=0))
    if hasattr(nn, "LastStep"):
        modules.append(nn.LastStep())
    modules.append(nn.Linear(4, 2, seed=0))
    return nn.Sequential(*modules)


def make_corpus(folder: str) -> list[str]:
    """Write the seed files (:func:`seed_models` through rnnfast.save) into ``folder``; their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, model in seed_models().items():
        path = os.path.join(folder, name + ".npz")
        rnnfast.save(path, model)
        with open(path, "rb") as f:
            check_load(f.read())  # a seed must load: else the run would start from a finding
        paths.append(path)
    return paths


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--make-corpus":
        for path in make_corpus(argv[2]):
            print(path)
        return
    np.seterr(all="ignore")  # the layers' arithmetic on fuzzed parameters may overflow: not a finding
    test: Callable[[bytes], None] = check_load
    atheris.Setup(argv, test)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
