"""Character-level text generation, as the classic Keras tutorial does it.

The tutorial (see the last section of the article shipped as ``rnnfast/data/rnn-article.txt``): take a
text, cut it into windows of ``seq_length`` characters, each labelled with the character that follows;
one-hot encode; train a ``SimpleRNN(50, activation='relu')`` followed by ``Dense(vocab,
activation='softmax')`` with Adam on categorical cross-entropy; then generate text character by
character from a seed string, each time feeding the last ``seq_length`` characters back in.

Here the RNN is :class:`rnnfast.RNN` (``nonlinearity='relu'``) or, with ``--cell lstm``, an
:class:`rnnfast.LSTM`, the dense layer :class:`rnnfast.nn.Linear`, and the text is the article itself.
This is the many-to-one pattern: only the last step's output is used (:class:`rnnfast.nn.LastStep` in an
:class:`rnnfast.nn.Sequential`, trained by :func:`rnnfast.nn.fit`). The last tenth of the text is held
out: the next-character accuracy is measured there as well as on the training text, in float32 and with
the trained RNN quantized for inference (``rnnfast.quantize``: int8 and bf16 weights).

    python examples/char_rnn.py                 # relu RNN, 50 units
    python examples/char_rnn.py --cell lstm
    rnnfast demo char_rnn --epochs 5 --plot loss.png
"""

from __future__ import annotations

import copy
import time
from importlib import resources
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser


def load_text() -> str:
    """The article on RNNs shipped with the package (``rnnfast/data/rnn-article.txt``)."""
    return resources.files("rnnfast").joinpath("data/rnn-article.txt").read_text(encoding="utf-8")


class CharModel:
    """An RNN (relu, as the tutorial) or LSTM over one-hot characters, and a dense softmax layer.

    The network is :attr:`net`, ``nn.Sequential(rnn=..., last=nn.LastStep(), dense=...)``: time-major
    one-hot windows (T, B, V) -> the RNN's outputs (T, B, H) -> the last step (B, H) -> scores (B, V).
    """

    def __init__(self, chars: str, seq_length: int, hidden: int, cell: str, seed: int) -> None:
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.seq_length = seq_length
        V = len(chars)
        self.rnn: Any
        if cell == "lstm":
            self.rnn = rnnfast.LSTM(V, hidden, seed=seed)
        else:
            self.rnn = rnnfast.RNN(V, hidden, nonlinearity="relu", seed=seed)
        self.dense = nn.Linear(hidden, V, seed=seed + 1)

    @property
    def net(self) -> nn.Sequential:
        """The layers :attr:`rnn` and :attr:`dense` as a Sequential (a new container of the same layers on
        each access, so that a copy whose ``rnn`` was replaced, as :meth:`quantized` does, runs its own)."""
        return nn.Sequential(rnn=self.rnn, last=nn.LastStep(), dense=self.dense)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def windows(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every window of ``seq_length`` characters (N, T), and the character that follows each (N,)."""
        starts = np.arange(len(codes) - self.seq_length)
        return codes[starts[:, None] + np.arange(self.seq_length)], codes[starts + self.seq_length]

    def one_hot(self, windows: np.ndarray) -> np.ndarray:
        """(B, T) character indices -> time-major one-hot inputs (T, B, V), as booleans: a quarter of
        float32's memory, and the layers cast each batch to float32 as they read it."""
        one_hot: np.ndarray = windows.T[..., None] == np.arange(len(self.chars))
        return one_hot

    def logits(self, windows: np.ndarray) -> np.ndarray:
        """(B, T) character indices -> (B, V) scores for the next character (inference, 1024 at a time)."""
        scores: np.ndarray = self.net.predict(self.one_hot(windows), batch_size=1024)
        return scores

    def accuracy(self, windows: np.ndarray, labels: np.ndarray) -> float:
        """How often the most likely next character is the right one."""
        return float(np.mean(self.logits(windows).argmax(-1) == labels))

    def quantized(self, weight_dtype: str) -> "CharModel":
        """A copy for inference with the RNN's weights in ``weight_dtype`` ('int8' or 'bf16'); the dense
        layer stays float32 (and is shared)."""
        q = copy.copy(self)
        q.rnn = rnnfast.quantize(self.rnn, weight_dtype)
        return q

    def generate(self, seed_text: str, length: int, temperature: float, rng: np.random.Generator) -> str:
        """Continue ``seed_text`` by ``length`` characters, one at a time (0 temperature: most likely)."""
        text = "".join(c for c in seed_text if c in self.index) or self.chars[0]
        for _ in range(length):
            window = self.encode(text[-self.seq_length:])[None, :]
            scores = self.logits(window)[0].astype(np.float64)
            if temperature <= 0:
                k = int(np.argmax(scores))
            else:
                k = int(rng.choice(len(self.chars), p=nn.softmax(scores / temperature)))
            text += self.chars[k]
        return text


def run(*, cell: str = "rnn", epochs: int = 20, seq_length: int = 25, hidden: int = 50,
        batch_size: int = 64, lr: float = 0.005, text_chars: Optional[int] = None, held_out: float = 0.1,
        seed_text: str = "Recurrent neural networks ", generate: int = 300, temperature: float = 0.5,
        seed: int = 0, verbose: bool = True) -> dict[str, Any]:
    """Train the character model on the shipped article; returns losses, accuracies and a generated text.

    ``text_chars`` uses the article's first characters only (a small setting for tests); the last
    ``held_out`` fraction of them is not trained on. ``accuracy`` is measured on the training windows,
    ``held_out_accuracy`` on the held-out ones, by weight dtype: 'float32' (the trained model), 'int8' and
    'bf16' (its RNN quantized).
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    text = load_text()
    if text_chars:
        text = text[:text_chars]
    model = CharModel("".join(sorted(set(text))), seq_length, hidden, cell, seed)
    codes = model.encode(text)
    split = len(codes) - int(held_out * len(codes))
    # Sequences and labels: every window of seq_length characters, labelled with the next character.
    windows, labels = model.windows(codes[:split])               # (N, T), (N,)
    test_windows, test_labels = model.windows(codes[split:])     # the held-out text
    if len(test_labels) == 0:
        raise ValueError(f"held_out={held_out} of {len(text)} characters leaves no held-out window of "
                         f"{seq_length + 1} characters")
    # The whole training set one-hot at once (booleans), cut by fit into shuffled batches.
    net = model.net
    history = nn.fit(net, model.one_hot(windows), labels, loss="cross_entropy",
                     optimizer=nn.Adam(net, lr=lr), epochs=epochs, batch_size=batch_size,
                     clip_norm=5.0,  # relu RNNs can explode: clip by the global norm
                     seed=seed, verbose=int(verbose))
    losses = history.history["loss"]
    accuracy = model.accuracy(windows, labels)
    # Inference in reduced precision: the trained RNN's weights quantized to int8 and to bf16.
    held_out_accuracy = {"float32": model.accuracy(test_windows, test_labels)}
    for dtype in ("int8", "bf16"):
        held_out_accuracy[dtype] = model.quantized(dtype).accuracy(test_windows, test_labels)
    sample = model.generate(seed_text, generate, temperature, rng)
    name = "LSTM" if cell == "lstm" else "relu RNN"
    summary = (f"{name} ({hidden} units), {split} characters (and {len(text) - split} held out), vocabulary "
               f"{len(model.chars)}: loss {losses[0]:.3f} (epoch 1; chance ln V = "
               f"{np.log(len(model.chars)):.3f}) -> {losses[-1]:.3f}, next-character accuracy {accuracy:.1%}\n"
               f"next-character accuracy on the held-out text, the RNN quantized for inference: "
               + ", ".join(f"{dtype} {acc:.1%}" for dtype, acc in held_out_accuracy.items()) + "\n"
               f"generated from {seed_text!r} (temperature {temperature}):\n{sample}")
    return {"losses": losses, "accuracy": accuracy, "held_out_accuracy": held_out_accuracy,
            "held_out": (test_windows, test_labels), "sample": sample, "chance_loss": float(np.log(
        len(model.chars))), "model": model, "summary": summary, "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None, cell: str = "rnn") -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=20, prog=prog)
    p.add_argument("--cell", choices=["rnn", "lstm"], default=cell, help="relu RNN (the tutorial's) or LSTM")
    p.add_argument("--hidden", type=int, default=50, help="hidden units")
    p.add_argument("--seq-length", type=int, default=25, help="characters per training window")
    p.add_argument("--lr", type=float, default=0.005, help="Adam learning rate")
    p.add_argument("--seed-text", default="Recurrent neural networks ", help="start of the generated text")
    p.add_argument("--generate", type=int, default=300, help="characters to generate")
    p.add_argument("--temperature", type=float, default=0.5, help="sampling temperature (0: most likely)")
    a = p.parse_args(argv)
    result = run(cell=a.cell, epochs=a.epochs, hidden=a.hidden, seq_length=a.seq_length, lr=a.lr,
                 seed_text=a.seed_text, generate=a.generate, temperature=a.temperature, seed=a.seed,
                 verbose=not a.quiet)
    finish(result, f"character model ({a.cell})", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
