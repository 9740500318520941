"""Encoder-decoder (sequence to sequence): learn to add, from "57+8" to "65".

The input and output sequences have different lengths, so one RNN cannot emit an output per input step.
An encoder GRU reads the question character by character; its final hidden state is the fixed-size
"context" that initialises a decoder GRU, which writes the answer one digit at a time and ends it with
an end-of-sequence token - the architecture of machine translation. (LSTMs work too - their context is
the pair (h, c) - but on this task GRUs learn faster and more reliably.)

- Questions have variable lengths ("3+4" to "57+86"), passed to the encoder with ``lengths=`` so its
  final state is the one after each question's last character.
- Training uses teacher forcing: the decoder's input at step t is the true previous character (a start
  token at t = 0), its targets the answer followed by the end token; the loss is masked past the end. The
  decoder's gradient with respect to its initial state is the encoder's ``d_state_n``: backpropagation
  flows from the answer back through the context into the question.
- Answering (inference) is greedy decoding driven by the decoder's stepper, ``dec.stepper(batch=B)``:
  reset to the encoder's state, then one ``step`` per output character, each fed the character it just
  chose, until every answer has ended.

Accuracy is the share of questions, never seen in training, answered exactly right.

The training loop is written out here rather than left to :func:`rnnfast.nn.fit`: fit trains a chain of
modules from one input to one output, and this model has two inputs (the question, and the decoder's
teacher-forced answer) joined by a state handed from one layer to the other, forward and backward. The
progress line is fit's, :class:`rnnfast.nn.ProgressBar`.

    python examples/addition.py
    rnnfast demo addition --digits 3 --epochs 40
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

import rnnfast
from rnnfast import nn
from rnnfast.examples.command_line import finish, parser

QUESTION_CHARS = "0123456789+"          # encoder vocabulary
ANSWER_CHARS = "0123456789"              # decoder output classes 0-9, then the end token
END, START = 10, 11                      # decoder tokens: outputs are 0-10, inputs 0-11


def encode_questions(pairs: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) operands -> one-hot questions (T, N, 11) padded at the end, and their lengths (N,)."""
    texts = [f"{a}+{b}" for a, b in pairs]
    T = 2 * digits + 1
    codes = np.zeros((T, len(texts)), dtype=np.int64)
    lengths = np.array([len(t) for t in texts])
    for n, t in enumerate(texts):
        codes[:len(t), n] = [QUESTION_CHARS.index(c) for c in t]
    x = nn.one_hot(codes, len(QUESTION_CHARS)) * (np.arange(T)[:, None] < lengths)[..., None]
    return x, lengths


def encode_answers(pairs: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder inputs (T_out, N, 12) one-hot [START, a0, a1, ...], targets (T_out, N) [a0, a1, ..., END]
    and the mask of real target steps (T_out, N)."""
    T_out = digits + 2                     # at most digits + 1 answer digits, then END
    targets = np.full((T_out, len(pairs)), END, dtype=np.int64)
    mask = np.zeros((T_out, len(pairs)), dtype=bool)
    for n, (a, b) in enumerate(pairs):
        answer = [int(c) for c in str(a + b)]
        targets[:len(answer), n] = answer
        mask[:len(answer) + 1, n] = True   # the answer and its END
    inputs = np.concatenate([np.full((1, len(pairs)), START), targets[:-1]])
    return nn.one_hot(inputs, 12), targets, mask


class Seq2Seq:
    """Encoder GRU -> context h -> decoder GRU -> dense layer over the 11 output tokens."""

    def __init__(self, hidden: int, seed: int) -> None:
        self.encoder = rnnfast.GRU(len(QUESTION_CHARS), hidden, seed=seed)
        self.decoder = rnnfast.GRU(12, hidden, seed=seed + 1)
        self.head = nn.Linear(hidden, 11, seed=seed + 2)
        self.modules = [self.encoder, self.decoder, self.head]

    def train_step(self, x: np.ndarray, lengths: np.ndarray, dec_in: np.ndarray, targets: np.ndarray,
                   mask: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward with teacher forcing and backward; returns the loss (gradients in the modules)."""
        _, context = self.encoder.forward(x, lengths=lengths, training=True)
        out, _ = self.decoder.forward(dec_in, context, training=True)
        loss, d_logits = nn.softmax_cross_entropy(self.head.forward(out, training=True), targets, mask=mask)
        _, d_context = self.decoder.backward(self.head.backward(d_logits))
        self.encoder.backward(None, d_context)     # the context's gradient trains the encoder
        return loss, d_logits

    def answer(self, x: np.ndarray, lengths: np.ndarray, max_len: int) -> np.ndarray:
        """Greedy decoding with the decoder's stepper: (T_out, B) tokens, END after each answer."""
        B = x.shape[1]
        _, context = self.encoder(x, lengths=lengths)
        stepper = self.decoder.stepper(batch=B)   # packs the trained decoder weights
        stepper.reset(context)
        token = np.full(B, START)
        tokens = np.full((max_len, B), END)
        done = np.zeros(B, dtype=bool)
        for t in range(max_len):
            h = stepper.step(nn.one_hot(token, 12))          # (B, H): one step for every question
            token = self.head(h).argmax(-1)
            tokens[t] = np.where(done, END, token)
            done |= token == END
            if done.all():
                break
        return tokens


def decode(tokens: np.ndarray) -> list[str]:
    """(T, B) answer tokens -> strings, each up to its END."""
    out = []
    for col in tokens.T:
        s = ""
        for k in col:
            if k == END:
                break
            s += ANSWER_CHARS[k]
        out.append(s)
    return out


def run(*, digits: int = 2, hidden: int = 128, epochs: int = 20, batch_size: int = 64, lr: float = 0.01,
        test_size: int = 1000, train_size: Optional[int] = None, seed: int = 0,
        verbose: bool = True) -> dict[str, Any]:
    """Train on all but ``test_size`` of the (10**digits)**2 questions (or ``train_size`` of them)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = 10 ** digits
    all_pairs = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    all_pairs = all_pairs[rng.permutation(len(all_pairs))]
    test, train = all_pairs[:test_size], all_pairs[test_size:]
    if train_size:
        train = train[:train_size]
    x, lengths = encode_questions(train, digits)
    dec_in, targets, mask = encode_answers(train, digits)
    x_test, len_test = encode_questions(test, digits)
    want = [str(a + b) for a, b in test]
    model = Seq2Seq(hidden, seed)
    opt = nn.Adam(model.modules, lr=lr)

    def accuracy() -> float:
        return float(np.mean([g == w for g, w in zip(decode(model.answer(x_test, len_test, digits + 2)), want)]))

    steps = -(-len(train) // batch_size)
    progress = nn.ProgressBar(epochs, steps, verbose=int(verbose))
    for epoch in range(1, epochs + 1):
        progress.start_epoch(epoch)
        order = rng.permutation(len(train))
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            opt.zero_grad()
            loss, _ = model.train_step(x[:, idx], lengths[idx], dec_in[:, idx], targets[:, idx], mask[:, idx])
            nn.clip_grad_norm(model.modules, 5.0)
            opt.step()
            progress.step(loss, len(idx))
        progress.end_epoch(test_accuracy=accuracy())
    progress.close()
    acc = accuracy()
    got = decode(model.answer(x_test[:, :5], len_test[:5], digits + 2))
    examples = "  ".join(f"{a}+{b}={g}{'' if g == str(a + b) else ' (wrong)'}" for (a, b), g in zip(test[:5], got))
    summary = (f"{digits}-digit addition, GRU({hidden}) encoder-decoder, {len(train)} training questions: loss "
               f"{progress.losses[0]:.3f} -> {progress.losses[-1]:.3f}; exact answers to {len(test)} unseen "
               f"questions {acc:.1%}\n  {examples}")
    return {"losses": progress.losses, "accuracy": acc, "summary": summary, "model": model,
            "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None, *, prog: Optional[str] = None) -> int:
    p = parser(str(__doc__).splitlines()[0], epochs=20, prog=prog)
    p.add_argument("--digits", type=int, default=2, help="digits per operand")
    p.add_argument("--hidden", type=int, default=128, help="GRU hidden units (encoder and decoder)")
    a = p.parse_args(argv)
    result = run(digits=a.digits, hidden=a.hidden, epochs=a.epochs, seed=a.seed, verbose=not a.quiet)
    finish(result, "addition (encoder-decoder)", a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
