"""rnnfast.nn.fit and its progress bar: fit against a hand-written loop (bit for bit), learning, seeds,
clipping, models ending in Softmax, History, the progress output, and every bad input refused before the
first training step."""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest

import rnnfast
from helpers.fit_problems import C, H, I, N, T, assert_same_parameters, sequences, snapshot
from rnnfast import nn
from rnnfast.nn import _progress

# ---------------------------------------------------------------------------------------------------------
# Small problems
# ---------------------------------------------------------------------------------------------------------


def classifier(dropout: float = 0.25, seed: int = 0, dtype: str = "float32", softmax: bool = False,
               batch_first: bool = False) -> nn.Sequential:
    """LSTM -> Dropout -> LastStep -> Linear (-> Softmax): many-to-one over C classes."""
    mods = [rnnfast.LSTM(I, H, batch_first=batch_first, dtype=dtype, seed=seed), nn.Dropout(dropout, seed=99),
            nn.LastStep(), nn.Linear(H, C, dtype=dtype, seed=seed + 1)]
    return nn.Sequential(*mods, *([nn.Softmax()] if softmax else []))


def tagger(seed: int = 0, dtype: str = "float32", batch_first: bool = False, softmax: bool = False,
           out: int = C) -> nn.Sequential:
    """GRU -> Dropout -> Linear (-> Softmax) at every step: many-to-many."""
    mods = [rnnfast.GRU(I, H, batch_first=batch_first, dtype=dtype, seed=seed), nn.Dropout(0.2, seed=98),
            nn.Linear(H, out, dtype=dtype, seed=seed + 1)]
    return nn.Sequential(*mods, *([nn.Softmax()] if softmax else []))


def hand_loop(model, x, y, *, loss, opt, epochs, batch_size, seed, lengths=None, clip=None, batch_axis=1,
              y_axis=0, mask_fn=None):
    """fit written out: the documented order, the documented shuffling and Dropout streams."""
    order_rng = np.random.default_rng(seed)
    n = x.shape[batch_axis]
    losses = []
    for epoch in range(epochs):
        order = order_rng.permutation(n)
        total = seen = 0.0
        for step, start in enumerate(range(0, n, batch_size)):
            idx = order[start:start + batch_size]
            xb = np.take(x, idx, axis=batch_axis)
            yb = np.take(y, idx, axis=y_axis)
            lb = None if lengths is None else lengths[idx]
            model.zero_grad()
            pred = model.forward(xb, training=True, lengths=lb, rng=np.random.default_rng([seed, epoch, step]))
            mask = None if mask_fn is None else mask_fn(lb, pred)
            value, d_pred = loss(pred, yb, mask=mask)
            model.backward(d_pred)
            if clip is not None:
                nn.clip_grad_norm(model, clip)
            opt.step()
            total += value * len(idx)
            seen += len(idx)
        losses.append(total / seen)
    return losses


# ---------------------------------------------------------------------------------------------------------
# fit is the hand-written loop
# ---------------------------------------------------------------------------------------------------------


def test_fit_equals_a_hand_written_loop_many_to_one():
    x, lengths, y, _ = sequences(0)
    a, b = classifier(seed=3), classifier(seed=3)
    history = nn.fit(a, x, y, lengths=lengths, loss="cross_entropy", optimizer=nn.Adam(a, lr=0.01), epochs=3,
                     batch_size=16, seed=11, clip_norm=0.5, verbose=0)
    losses = hand_loop(b, x, y, loss=nn.softmax_cross_entropy, opt=nn.Adam(b, lr=0.01), epochs=3, batch_size=16,
                       seed=11, lengths=lengths, clip=0.5)
    assert_same_parameters(snapshot(a), snapshot(b))
    assert history.history["loss"] == pytest.approx(losses, rel=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_fit_equals_a_hand_written_loop_per_step_masked(batch_first):
    """Per-step targets with lengths: the loss is masked past each sequence's end, on either layout."""
    x, lengths, _, y_step = sequences(1, batch_first=batch_first)
    target = np.cumsum(x[..., :1], axis=1 if batch_first else 0) / 3  # (.., 1) regression per step
    a, b = tagger(seed=5, batch_first=batch_first, out=1), tagger(seed=5, batch_first=batch_first, out=1)

    def mask_fn(lb, pred):
        valid = np.arange(pred.shape[1 if batch_first else 0])[:, None] < lb[None, :]   # (T, B)
        return (valid.T if batch_first else valid)[..., None]

    axis = 0 if batch_first else 1
    history = nn.fit(a, x, target, lengths=lengths, loss="mse", optimizer=nn.SGD(a, lr=0.05, momentum=0.9),
                     epochs=2, batch_size=10, seed=2, verbose=0)
    losses = hand_loop(b, x, target, loss=nn.mse, opt=nn.SGD(b, lr=0.05, momentum=0.9), epochs=2, batch_size=10,
                       seed=2, lengths=lengths, batch_axis=axis, y_axis=axis, mask_fn=mask_fn)
    assert_same_parameters(snapshot(a), snapshot(b))
    assert history.history["loss"] == pytest.approx(losses, rel=1e-12)


def test_optimizer_names_are_keras_defaults():
    x, lengths, y, _ = sequences(2)
    for name, make in [("sgd", lambda m: nn.SGD(m, lr=0.01)), ("adam", lambda m: nn.Adam(m, lr=1e-3))]:
        a, b = classifier(seed=1), classifier(seed=1)
        nn.fit(a, x, y, lengths=lengths, loss="cross_entropy", optimizer=name, epochs=1, seed=0, verbose=0)
        hand_loop(b, x, y, loss=nn.softmax_cross_entropy, opt=make(b), epochs=1, batch_size=32, seed=0,
                  lengths=lengths)
        assert_same_parameters(snapshot(a), snapshot(b))


def test_a_callable_loss_is_called_with_the_mask():
    """nn.mse passed as a callable trains exactly as loss='mse' (so it got the same mask)."""
    x, lengths, _, _ = sequences(3)
    target = np.cumsum(x[..., :1], axis=0)
    calls = []

    def my_mse(pred, tgt, mask=None):
        calls.append(mask is not None)
        return nn.mse(pred, tgt, mask=mask)

    a, b = tagger(seed=2, out=1), tagger(seed=2, out=1)
    nn.fit(a, x, target, lengths=lengths, loss="mse", optimizer="adam", epochs=1, seed=4, verbose=0)
    nn.fit(b, x, target, lengths=lengths, loss=my_mse, optimizer="adam", epochs=1, seed=4, verbose=0)
    assert_same_parameters(snapshot(a), snapshot(b))
    assert calls and all(calls)


# ---------------------------------------------------------------------------------------------------------
# Learning, seeds, clipping
# ---------------------------------------------------------------------------------------------------------


def test_loss_decreases_on_a_learnable_task():
    x, lengths, y, _ = sequences(4, n=400)
    x_val, len_val, y_val, _ = sequences(5, n=200)
    model = classifier(dropout=0.0, seed=0)
    h = nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer=nn.Adam(model, lr=0.02), epochs=12,
               batch_size=32, seed=0, validation_data=(x_val, y_val, len_val), verbose=0).history
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["val_accuracy"][-1] > 0.8  # chance about 1/3


def test_a_model_without_recurrent_layer_takes_samples_on_axis_0():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:]).astype(np.float32)                   # (N, 1): not linear in x
    model = nn.Sequential(nn.Linear(2, 16, seed=0), nn.Tanh(), nn.Linear(16, 1, seed=1))
    h = nn.fit(model, x, y, loss="mse", optimizer=nn.Adam(model, lr=0.02), epochs=30, batch_size=30, seed=0,
               verbose=0)
    assert h.history["loss"][-1] < 0.3 * h.history["loss"][0]


def test_same_seed_same_run_other_seed_another():
    x, lengths, y, _ = sequences(6)
    runs = {}
    for key, seed in [("a", 7), ("b", 7), ("c", 8)]:
        m = classifier(seed=0)
        h = nn.fit(m, x, y, lengths=lengths, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=8,
                   seed=seed, verbose=0)
        runs[key] = (snapshot(m), h.history["loss"])
    assert_same_parameters(runs["a"][0], runs["b"][0])
    assert runs["a"][1] == runs["b"][1]
    assert runs["a"][1] != runs["c"][1]
    assert any(not np.array_equal(runs["a"][0][k], runs["c"][0][k]) for k in runs["a"][0])


def test_without_a_seed_the_drawn_one_repeats_the_run():
    x, lengths, y, _ = sequences(7)
    m1, m2 = classifier(seed=0), classifier(seed=0)
    h1 = nn.fit(m1, x, y, lengths=lengths, loss="cross_entropy", optimizer="adam", epochs=1, verbose=0)
    seed = h1.params["seed"]
    assert isinstance(seed, int) and seed >= 0
    h2 = nn.fit(m2, x, y, lengths=lengths, loss="cross_entropy", optimizer="adam", epochs=1, seed=seed, verbose=0)
    assert h1.history == h2.history
    assert_same_parameters(snapshot(m1), snapshot(m2))


def test_dropout_gets_the_documented_generator_at_every_step():
    """Step s of epoch e hands the model np.random.default_rng([seed, e, s]), reaching its Dropout."""
    states = []

    class Recorder(nn.Dropout):
        def forward(self, x, *, training=False, lengths=None, rng=None):
            if training:
                states.append(rng.bit_generator.state)
            return super().forward(x, training=training, lengths=lengths, rng=rng)

    x = np.ones((20, 4), dtype=np.float32)
    model = nn.Sequential(nn.Linear(4, 8, seed=0), Recorder(0.5), nn.Linear(8, 1, seed=1))
    nn.fit(model, x, np.zeros((20, 1), np.float32), loss="mse", optimizer="sgd", epochs=2, batch_size=8,
           seed=3, verbose=0)
    expected = [np.random.default_rng([3, e, s]).bit_generator.state for e in range(2) for s in range(3)]
    assert states == expected


def test_clip_norm_bounds_every_update():
    """With plain SGD one step moves the parameters by lr * the clipped gradient: global norm lr * clip_norm."""
    x, lengths, y, _ = sequences(8)
    lr, clip = 0.1, 1e-3
    for clip_norm, bound in [(clip, lr * clip), (None, None)]:
        m = classifier(dropout=0.0, seed=0, dtype="float64")
        before = snapshot(m)
        nn.fit(m, x.astype(np.float64), y, lengths=lengths, loss="cross_entropy", optimizer=nn.SGD(m, lr=lr),
               epochs=1, batch_size=N, seed=0, clip_norm=clip_norm, verbose=0)
        moved = math.sqrt(sum(float(np.sum((m.parameters()[k] - before[k]) ** 2)) for k in before))
        if bound is not None:
            assert moved == pytest.approx(bound, rel=1e-5)
        else:
            assert moved > 100 * lr * clip  # the unclipped gradient is far larger: the clip did bind


# ---------------------------------------------------------------------------------------------------------
# A model ending in Softmax with cross-entropy
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_step", [False, True])
def test_softmax_ended_model_trains_as_the_logits_model(per_step):
    """-log p[target] through the Softmax is the cross-entropy on the logits: the same run, to rounding
    (float64). Were the probabilities taken as logits, the loss would be another number."""
    x, lengths, y_seq, y_step = sequences(9)
    x = x.astype(np.float64)
    make = tagger if per_step else classifier
    kw = {} if per_step else {"dropout": 0.0}
    probs, logits = make(seed=4, dtype="float64", softmax=True, **kw), make(seed=4, dtype="float64", **kw)
    y = y_step if per_step else y_seq
    args = dict(lengths=lengths, loss="cross_entropy", epochs=2, batch_size=16, seed=1, verbose=0,
                validation_data=(x, y, lengths))
    hp = nn.fit(probs, x, y, optimizer=nn.SGD(probs, lr=0.5), **args).history
    hl = nn.fit(logits, x, y, optimizer=nn.SGD(logits, lr=0.5), **args).history
    for k in logits.parameters():
        np.testing.assert_allclose(probs.parameters()[k], logits.parameters()[k], rtol=1e-9, atol=1e-12)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert hp[key] == pytest.approx(hl[key], rel=1e-9)
    # and the loss is the cross-entropy of the probabilities, computed here independently
    p = probs.predict(x, lengths=lengths)
    if per_step:
        valid = np.arange(T)[:, None] < lengths                 # (padded steps are 0 in the output)
        nll = -np.log(np.take_along_axis(p, y[..., None], -1)[..., 0][valid])
        assert hp["val_loss"][-1] == pytest.approx(nll.mean(), rel=1e-9)
    else:
        assert hp["val_loss"][-1] == pytest.approx(-np.log(p[np.arange(N), y]).mean(), rel=1e-9)


def test_softmax_ended_model_survives_a_probability_of_zero():
    """A saturated softmax (p[target] underflows to 0) gives a finite loss and no NaN in the parameters."""
    model = nn.Sequential(nn.Linear(2, 2, seed=0), nn.Softmax())
    model[0].weight[...] = [[500.0, 0.0], [-500.0, 0.0]]
    x = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    h = nn.fit(model, x, np.array([1, 1]), loss="cross_entropy", optimizer="sgd", epochs=1, seed=0, verbose=0)
    assert math.isfinite(h.history["loss"][0]) and h.history["loss"][0] > 80  # -log(smallest float32)
    assert all(np.isfinite(p).all() for p in model.parameters().values())


# ---------------------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------------------


def test_history_holds_every_epoch_and_the_validation_metrics():
    x, lengths, y, _ = sequences(10)
    x_val, len_val, y_val, _ = sequences(11, n=30)
    model = classifier(seed=2)
    h = nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=20,
               seed=5, validation_data=(x_val, y_val, len_val), verbose=0)
    assert list(h.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(v) == 3 for v in h.history.values()) and h.epoch == [0, 1, 2]
    assert h.params == {"epochs": 3, "steps": 3, "batch_size": 20, "samples": N, "seed": 5}
    # The last validation figures are those of the trained model, computed here without fit.
    logits = model.predict(x_val, lengths=len_val)
    assert h.history["val_loss"][-1] == pytest.approx(nn.softmax_cross_entropy(logits, y_val)[0], rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(float(np.mean(logits.argmax(-1) == y_val)))
    assert all(0.0 <= a <= 1.0 for a in h.history["accuracy"])
    assert "History(epochs=3" in repr(h)


def test_history_of_mse_has_no_accuracy():
    x, lengths, _, _ = sequences(12)
    target = np.cumsum(x[..., :1], axis=0)
    h = nn.fit(tagger(out=1), x, target, lengths=lengths, loss="mse", optimizer="adam", epochs=2, seed=0,
               validation_data=(x[:, :5], target[:, :5], lengths[:5]), verbose=0)
    assert list(h.history) == ["loss", "val_loss"]


def test_per_step_accuracy_counts_only_real_steps():
    """Training accuracy of a model that predicts class 0 everywhere: the share of 0 labels at real steps."""
    x, lengths, _, y = sequences(13)
    model = nn.Sequential(rnnfast.GRU(I, H, seed=0), nn.Linear(H, C, seed=1))
    model[1].weight[...] = 0
    model[1].bias[...] = [100.0, 0.0, 0.0]
    h = nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer=nn.SGD(model, lr=0.0), epochs=1,
               seed=0, verbose=0)
    valid = np.arange(T)[:, None] < lengths
    assert h.history["accuracy"][0] == pytest.approx(float(np.mean(y[valid] == 0)))


# ---------------------------------------------------------------------------------------------------------
# Progress output
# ---------------------------------------------------------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _fit_printing(verbose, epochs=2):
    x, lengths, y, _ = sequences(14)
    return nn.fit(classifier(), x, y, lengths=lengths, loss="cross_entropy", optimizer="adam", epochs=epochs,
                  batch_size=16, seed=0, validation_data=(x, y, lengths), verbose=verbose)


def test_progress_is_plain_lines_when_not_a_terminal(capsys):
    _fit_printing(1)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\r" not in out and len(lines) == 2
    for e, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {e}/2  3/3  loss ")
        assert "seq/s" in line and "accuracy" in line and "val_loss" in line and "val_accuracy" in line


def test_progress_is_redrawn_in_place_on_a_terminal(monkeypatch):
    out = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    _fit_printing(1)
    text = out.getvalue()
    lines = text.split("\n")
    assert len(lines) == 3 and lines[-1] == ""          # each epoch's final line stays
    for e, line in enumerate(lines[:2], 1):
        redraws = line.split("\r")[1:]
        assert len(redraws) >= 3                        # the start, the last step, the final line
        assert redraws[0].startswith(f"epoch {e}/2  0/3 [")
        assert any("3/3 [====================]" in r and "ETA 0s" in r for r in redraws)
        assert "val_accuracy" in redraws[-1] and "ETA" not in redraws[-1]


def test_progress_verbose_2_is_a_line_per_epoch_even_on_a_terminal(monkeypatch):
    out = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    _fit_printing(2, epochs=3)
    assert "\r" not in out.getvalue() and len(out.getvalue().splitlines()) == 3


def test_progress_is_silent_at_verbose_0(capsys, monkeypatch):
    _fit_printing(0)
    assert capsys.readouterr().out == ""
    out = FakeTTY()
    monkeypatch.setattr(sys, "stdout", out)
    _fit_printing(0)
    assert out.getvalue() == ""


def test_progress_bar_shows_step_counter_rate_and_eta(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: clock[0])
    out = FakeTTY()
    bar = nn.ProgressBar(2, 4, stream=out, interval=0.0)
    bar.start_epoch(1)
    clock[0] += 10.0
    bar.step(2.0, 10)                                   # 1 of 4 steps in 10 s: 3 more take 30 s
    line = out.getvalue().split("\r")[-1]
    assert line.startswith("epoch 1/2  1/4 [=====>..............]  loss 2.0000  1 seq/s  ETA 30s")
    clock[0] += 110.0
    bar.step(1.0, 30)                                   # 2 of 4 in 120 s: 2 more take 2 minutes
    line = out.getvalue().split("\r")[-1]
    assert "2/4 [==========>.........]" in line and "loss 1.2500" in line and "ETA 2:00" in line
    assert bar.end_epoch(val_loss=0.5, note="x") == 1.25
    assert out.getvalue().endswith("120.0 s  val_loss 0.5000  note x\n")
    bar.close()
    assert bar.losses == [1.25]


def test_progress_bar_refuses_bad_settings():
    with pytest.raises(ValueError, match="verbose"):
        nn.ProgressBar(1, verbose=3)
    with pytest.raises(ValueError, match="epochs"):
        nn.ProgressBar(0)


# ---------------------------------------------------------------------------------------------------------
# Bad input: refused before the first training step
# ---------------------------------------------------------------------------------------------------------


def _good():
    x, lengths, y, _ = sequences(15)
    model = classifier(seed=0)
    return model, dict(x=x, y=y, lengths=lengths, loss="cross_entropy", optimizer=nn.Adam(model), epochs=1,
                       batch_size=8, verbose=0)


BAD = [
    # (change to the good arguments, error, message)
    ({"y": lambda a: a["y"].astype(np.float32)}, ValueError, r"y must be integer class indices in \[0, 3\)"),
    ({"y": lambda a: a["y"] + 1}, ValueError, r"y must be class indices in \[0, 3\).*\[1, 3\]"),
    ({"y": lambda a: a["y"] - 1}, ValueError, r"y must be class indices in \[0, 3\).*\[-1, 1\]"),
    ({"y": lambda a: a["y"][:-1]}, ValueError, r"y has shape \(44,\), expected \(45,\)"),
    ({"y": lambda a: np.eye(3)[a["y"]]}, ValueError, "one-hot"),
    ({"x": lambda a: a["x"][..., :2]}, ValueError, r"input_size 3.*\(7, 1, 2\)"),
    ({"lengths": lambda a: a["lengths"][:-1]}, ValueError, r"lengths has shape \(44,\), expected \(45,\)"),
    ({"lengths": lambda a: a["lengths"] + T}, ValueError, r"lengths must be in \[0, 7\]"),
    ({"lengths": lambda a: a["lengths"].astype(float)}, TypeError, "lengths must be integer"),
    ({"epochs": lambda a: 0}, ValueError, "epochs must be a positive int"),
    ({"epochs": lambda a: 2.0}, TypeError, "epochs must be a positive int"),
    ({"batch_size": lambda a: -1}, ValueError, "batch_size must be a positive int"),
    ({"batch_size": lambda a: "32"}, TypeError, "batch_size must be a positive int"),
    ({"loss": lambda a: "hinge"}, ValueError, "loss must be 'cross_entropy', 'mse' or a callable"),
    ({"loss": lambda a: 3}, TypeError, "loss must be"),
    ({"loss": lambda a: "mse"}, ValueError, r"y has shape \(45,\), expected \(45, 3\) for loss 'mse'"),
    ({"optimizer": lambda a: "rmsprop"}, ValueError, "optimizer must be 'adam', 'sgd'"),
    ({"optimizer": lambda a: object()}, TypeError, "optimizer must be"),
    ({"optimizer": lambda a: nn.Adam(classifier())}, ValueError, "optimizer does not update 6 of the model's"),
    ({"verbose": lambda a: 3}, ValueError, "verbose must be 0"),
    ({"clip_norm": lambda a: 0.0}, ValueError, "clip_norm must be"),
    ({"seed": lambda a: -1}, ValueError, "seed must be None or a non-negative int"),
    ({"seed": lambda a: 1.5}, TypeError, "seed must be"),
    ({"shuffle": lambda a: "yes"}, TypeError, "shuffle must be"),
    ({"validation_data": lambda a: a["x"]}, TypeError, r"validation_data must be a tuple \(x_val, y_val\)"),
    ({"validation_data": lambda a: (a["x"][..., :2], a["y"], a["lengths"])}, ValueError,
     r"x_val has shape \(7, 45, 2\), which does not match x's shape \(7, 45, 3\)"),
    ({"validation_data": lambda a: (a["x"], a["y"][:5], a["lengths"])}, ValueError,
     r"y_val has shape \(5,\), expected \(45,\)"),
    ({"validation_data": lambda a: (a["x"], a["y"] + 3, a["lengths"])}, ValueError, r"y_val must be class indices"),
    ({"validation_data": lambda a: (a["x"], a["y"])}, ValueError, "lengths_val"),
    ({"validation_data": lambda a: (a["x"][:, :5], a["y"][:5], a["lengths"])}, ValueError,
     r"lengths_val has shape \(45,\), expected \(5,\)"),
]


@pytest.mark.parametrize("change,error,match", BAD, ids=[f"{next(iter(c))}-{i}" for i, (c, _, _) in enumerate(BAD)])
def test_bad_input_is_refused_before_any_step(change, error, match):
    model, args = _good()
    before = snapshot(model)
    for key, make in change.items():
        args[key] = make(args)
    with pytest.raises(error, match=match):
        nn.fit(model, args.pop("x"), args.pop("y"), **args)
    assert_same_parameters(snapshot(model), before)


def test_a_bare_layer_or_a_non_model_is_refused():
    x, _, _, _ = sequences(16)
    with pytest.raises(TypeError, match=r"nn.Sequential\(layer\)"):
        nn.fit(rnnfast.GRU(I, H), x, x, loss="mse", optimizer="adam", verbose=0)
    with pytest.raises(TypeError, match="is not a model fit can train: it lacks forward"):
        nn.fit(object(), x, x, loss="mse", optimizer="adam", verbose=0)


def test_a_callable_loss_returning_the_wrong_gradient_is_refused():
    x, lengths, y, _ = sequences(17)
    with pytest.raises(ValueError, match=r"returned a gradient of shape \(3,\), expected the prediction's shape"):
        nn.fit(classifier(), x, y, lengths=lengths, loss=lambda p, t: (0.0, np.zeros(3)), optimizer="adam",
               verbose=0)


def test_a_softmax_over_another_axis_is_refused_with_cross_entropy():
    x, lengths, y, _ = sequences(18)
    model = nn.Sequential(rnnfast.GRU(I, H, seed=0), nn.LastStep(), nn.Linear(H, C, seed=1), nn.Softmax(axis=0))
    with pytest.raises(ValueError, match=r"ends in Softmax\(axis=0\)"):
        nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer="adam", verbose=0)


def test_a_model_of_its_own_gives_its_layout_with_batch_first():
    """A model that is not a Sequential: time-major when it says batch_first = False, like the layers."""

    class Model:
        batch_first = False

        def __init__(self) -> None:
            self.net = nn.Sequential(rnnfast.GRU(I, H, seed=0), nn.Linear(H, 1, seed=1))
            self.parameters, self.zero_grad, self.backward = (self.net.parameters, self.net.zero_grad,
                                                              self.net.backward)

        @property
        def grads(self):
            return self.net.grads

        def forward(self, x, *, training=False, lengths=None, rng=None):
            return self.net.forward(x, training=training, lengths=lengths, rng=rng)

    x, lengths, _, _ = sequences(19)
    target = np.cumsum(x[..., :1], axis=0)
    own, seq = Model(), nn.Sequential(rnnfast.GRU(I, H, seed=0), nn.Linear(H, 1, seed=1))
    val = (x[:, :20], target[:, :20], lengths[:20])   # validated in batches of 8 by forward: it has no predict
    h_own = nn.fit(own, x, target, lengths=lengths, loss="mse", optimizer="adam", epochs=2, batch_size=8, seed=0,
                   validation_data=val, verbose=0)
    h_seq = nn.fit(seq, x, target, lengths=lengths, loss="mse", optimizer="adam", epochs=2, batch_size=8, seed=0,
                   validation_data=val, verbose=0)
    assert h_own.history["loss"] == h_seq.history["loss"]
    assert h_own.history["val_loss"] == pytest.approx(h_seq.history["val_loss"], rel=1e-6)
