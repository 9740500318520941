"""One-to-many: one input, a sequence out - spell a number, 42 -> "forty two".

Like image captioning (one picture, a sentence of words), a single input becomes a whole sequence. The
article's recipe: a dense layer transforms the input, a "RepeatVector" feeds that same vector to the RNN
at every time step, and a dense softmax layer predicts an output at each step. Here the input is a
number from 0 to 99 (its tens and units digits, one-hot), the output its English name, one character
per step, then end marks ``$`` filling the remaining steps. The model is a small class of its own (there
is no RepeatVector module), trained by :func:`rnnfast.nn.fit` all the same.

    python examples/spell_number.py
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
       "sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
CHARS = "$ abcdefghijklmnopqrstuvwxyz"   # '$' ends the name (and pads it)
STEPS = 14                               # the longest name, "seventy seven", and one '$'


def name(n: int) -> str:
    """English name of 0 <= n < 100: 'zero', 'thirteen', 'forty', 'forty two'."""
    if n < 20:
        return ONES[n]
    return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])


def encode(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (B, 20): one-hot tens digit and units digit; targets (STEPS, B): the name's characters."""
    x = np.concatenate([nn.one_hot(numbers // 10, 10), nn.one_hot(numbers % 10, 10)], axis=-1)
    targets = np.zeros((STEPS, len(numbers)), dtype=np.int64)      # 0 is '$'
    for b, n in enumerate(numbers):
        targets[:len(name(n)), b] = [CHARS.index(c) for c in name(n)]
    return x, targets


class Speller:
    """Dense(20 -> E, tanh) -> repeated over STEPS -> GRU(E -> H) -> Dense(H -> characters) at every step.

    RepeatVector has no module in :mod:`rnnfast.nn`, so this model is a class of its own; it still trains
    with :func:`rnnfast.nn.fit`, which needs of a model only ``forward(x, *, training, lengths, rng)``,
    ``backward(d_y)``, ``parameters()``, ``grads`` and ``zero_grad()``. Its input (B, 20) has the batch
    first; fit finds the batch axis of its output (STEPS, B, characters) by itself.
    """

    def __init__(self, hidden: int, seed: int) -> None:
        self.embed = nn.Linear(20, hidden, seed=seed)
        self.rnn = rnnfast.GRU(hidden, hidden, seed=seed + 1)
        self.head = nn.Linear(hidden, len(CHARS), seed=seed + 2)
        self._children: dict[str, Any] = {"embed": self.embed, "rnn": self.rnn, "head": self.head}
        self._e = np.zeros((0, hidden), dtype=np.float32)

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameters of the three layers, named '<layer>.<parameter>'."""
        return {f"{n}.{k}": v for n, m in self._children.items() for k, v in m.parameters().items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The layers' gradient arrays, under the names of :meth:`parameters`."""
        return {f"{n}.{k}": v for n, m in self._children.items() for k, v in m.grads.items()}

    def zero_grad(self) -> None:
        for m in self._children.values():
            m.zero_grad()

    def forward(self, x: np.ndarray, *, training: bool = False, lengths: Optional[np.ndarray] = None,
                rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """(B, 20) inputs -> (STEPS, B, characters) scores; ``lengths`` and ``rng`` are not used."""
        self._e = np.tanh(self.embed.forward(x, training=training))     # (B, E)
        repeated = np.broadcast_to(self._e, (STEPS,) + self._e.shape)   # RepeatVector: (STEPS, B, E)
        out, _ = self.rnn.forward(repeated, training=training)          # (STEPS, B, H)
        return self.head.forward(out, training=training)                # (STEPS, B, characters)

    def backward(self, d_logits: np.ndarray) -> None:
        d_repeated, _ = self.rnn.backward(self.head.backward(d_logits))
        d_e = d_repeated.sum(axis=0)                                    # the one input fed every step
        self.embed.backward(d_e * (1 - self._e ** 2))                   # through the tanh

    def spell(self, numbers: np.ndarray) -> list[str]:
        codes = self.forward(encode(numbers)[0]).argmax(-1)             # (STEPS, B)
        return ["".join(CHARS[k] for k in col).split("$")[0] for col in codes.T]


def run(*, epochs: int = 150, hidden: int = 64, batch_size: int = 20, lr: float = 0.01, seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    numbers = np.arange(100)
    x, targets = encode(numbers)
    model = Speller(hidden, seed)
    history = nn.fit(model, x, targets, loss="cross_entropy", optimizer=nn.Adam(model, lr=lr), epochs=epochs,
                     batch_size=batch_size, clip_norm=1.0, seed=seed, verbose=int(verbose))
    losses = history.history["loss"]
    spelled = model.spell(numbers)
    acc = float(np.mean([s == name(int(n)) for s, n in zip(spelled, numbers)]))
    shown = ", ".join(f"{n} -> {spelled[n]!r}" for n in (7, 13, 42, 90, 99))
    summary = (f"spelling 0-99, GRU({hidden}) fed the same input at all {STEPS} steps: loss "
               f"{losses[0]:.3f} -> {losses[-1]:.4f}, {acc:.0%} of the 100 names exactly right\n  {shown}")
    return {"losses": losses, "accuracy": acc, "summary": summary, "model": model,
            "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=150, prog=prog)
    p.add_argument("--hidden", type=int, default=64, help="GRU hidden units")
    a = p.parse_args(argv)
    result = run(epochs=a.epochs, hidden=a.hidden, seed=a.seed, verbose=not a.quiet)
    finish(result, "spelling numbers (one-to-many)", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
