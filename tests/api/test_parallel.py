"""rnnfast.parallel: the split of a batch (shard_bounds), the dropout streams (step_rng), the shards' weighted
gradients summing to the whole batch's (against a forward/loss/backward written out with the public API),
the reduction in rank order and its refusals, fit_local against nn.fit (bit for bit with one worker, to float
rounding with more), the same bits through pickle and through real spawned processes, and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import rnnfast
from helpers.fit_problems import C, H, I, N, T, assert_same_parameters, sequences, snapshot
from helpers.parallel_executors import PickledExecutor, ProcessExecutor
from rnnfast import nn, parallel


# ---------------------------------------------------------------------------------------------------------
# Small problems (as tests/api/test_fit.py's)
# ---------------------------------------------------------------------------------------------------------


def classifier(seed=0, dtype="float32", dropout=0.0, batch_first=False, softmax=False) -> nn.Sequential:
    """LSTM (-> Dropout) -> LastStep -> Linear (-> Softmax): many-to-one over C classes."""
    mods = [rnnfast.LSTM(I, H, batch_first=batch_first, dtype=dtype, seed=seed)]
    mods += [nn.Dropout(dropout, seed=99)] if dropout else []
    mods += [nn.LastStep(batch_first=batch_first), nn.Linear(H, C, dtype=dtype, seed=seed + 1)]
    return nn.Sequential(*mods, *([nn.Softmax()] if softmax else []))


def tagger(seed=0, dtype="float32", batch_first=False, out=C, dropout=0.0) -> nn.Sequential:
    """GRU (-> Dropout) -> Linear at every step: many-to-many."""
    mods = [rnnfast.GRU(I, H, batch_first=batch_first, dtype=dtype, seed=seed)]
    mods += [nn.Dropout(dropout, seed=98)] if dropout else []
    return nn.Sequential(*mods, nn.Linear(H, out, dtype=dtype, seed=seed + 1))


def assert_close_parameters(a: dict, b: dict, dtype: str) -> None:
    """Within float rounding: a few ulps of the parameters' magnitudes, accumulated over the steps run."""
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=tol, atol=tol, err_msg=k)


# ---------------------------------------------------------------------------------------------------------
# shard_bounds and step_rng
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 31, 32, 33])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 40])
def test_shard_bounds_split_contiguously_in_near_equal_parts(n, k):
    bounds = parallel.shard_bounds(n, k)
    assert len(bounds) == k
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))       # contiguous, in rank order
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert sum(sizes) == n


def test_shard_bounds_example_and_bad_input():
    assert parallel.shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert parallel.shard_bounds(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    with pytest.raises(ValueError, match="world_size must be a positive int, got 0"):
        parallel.shard_bounds(5, 0)
    with pytest.raises(TypeError, match="world_size"):
        parallel.shard_bounds(5, 2.0)
    with pytest.raises(ValueError, match="n must be a non-negative int, got -1"):
        parallel.shard_bounds(-1, 2)


def test_step_rng_rank_0_is_fits_stream_and_every_rank_has_its_own():
    fit_stream = np.random.default_rng([7, 1, 2]).random(8)
    np.testing.assert_array_equal(parallel.step_rng(7, 1, 2, 0).random(8), fit_stream)
    draws = {(e, s, r): parallel.step_rng(7, e, s, r).random(4).tobytes()
             for e in range(2) for s in range(3) for r in range(4)}
    assert len(set(draws.values())) == len(draws)                     # every (epoch, step, rank) differs
    assert parallel.step_rng(7, 1, 2, 3).random(4).tobytes() == draws[(1, 2, 3)]  # a function of its arguments
    with pytest.raises(ValueError, match="rank must be a non-negative int"):
        parallel.step_rng(7, 0, 0, -1)
    with pytest.raises(TypeError, match="seed"):
        parallel.step_rng(None, 0, 0, 0)


# ---------------------------------------------------------------------------------------------------------
# The shards' gradients sum to the whole batch's
# ---------------------------------------------------------------------------------------------------------


def whole_batch_gradient(model, x, y, loss, lengths, batch_axis, per_step):
    """forward, loss and backward on the whole batch, written out with the public API."""
    model.zero_grad()
    pred = model.forward(x, training=True, lengths=lengths)
    mask = None
    if lengths is not None and per_step:
        valid = np.arange(T)[:, None] < lengths[None, :]
        mask = valid.T if batch_axis == 0 else valid
        if loss is nn.mse:
            mask = mask[..., None]
    value, d = loss(pred, y, mask=mask)
    model.backward(d)
    return value, {k: g.copy() for k, g in model.grads.items()}


PROBLEMS = {
    # name: (model maker, loss name, loss function, per-step targets)
    "many-to-one-ce": (classifier, "cross_entropy", nn.softmax_cross_entropy, False),
    "many-to-many-ce": (tagger, "cross_entropy", nn.softmax_cross_entropy, True),
    "many-to-many-mse": (lambda **kw: tagger(out=2, **kw), "mse", nn.mse, True),
}


def targets(name, per_seq, per_step, x, batch_first):
    if name == "many-to-many-mse":
        axis = 1 if batch_first else 0
        return np.concatenate([np.cumsum(x[..., :1], axis=axis) / 3, x[..., 1:2]], axis=-1)
    return per_step if PROBLEMS[name][3] else per_seq


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_the_weighted_shard_gradients_sum_to_the_whole_batch_gradient(problem, dtype, batch_first, with_lengths, k):
    make, loss_name, loss_fn, per_step = PROBLEMS[problem]
    x, lengths, per_seq, per_step_y = sequences(3, n=17, batch_first=batch_first, dtype=dtype)
    y = targets(problem, per_seq, per_step_y, x, batch_first).astype(dtype if loss_name == "mse" else np.int64)
    lengths = lengths if with_lengths else None
    model = make(seed=4, dtype=dtype, batch_first=batch_first)
    want_loss, want = whole_batch_gradient(model, x, y, loss_fn, lengths, 0 if batch_first else 1, per_step)

    plan = parallel.plan_fit(model, x, y, world_size=k, loss=loss_name, optimizer="sgd", batch_size=17,
                             lengths=lengths, shuffle=False, seed=0)
    tasks = plan.tasks(0, 0, np.arange(17))
    assert [len(t.indices) for t in tasks] == [b - a for a, b in parallel.shard_bounds(17, k)]
    assert sum(t.weight for t in tasks) == pytest.approx(1.0, abs=1e-15)
    replica = parallel.model_spec(model).build()
    results = [parallel.shard_gradient(replica, plan.x, plan.y, plan.lengths, t, plan.config) for t in tasks]
    got = parallel.reduce_gradients(results, world_size=k)
    tol = dict(rtol=2e-6, atol=2e-7) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype
        np.testing.assert_allclose(got[name], want[name], err_msg=name, **tol)
    assert sum(r.loss_sum for r in results) == pytest.approx(want_loss, rel=tol["rtol"])


def test_one_shard_is_the_whole_batch_bit_for_bit():
    x, lengths, y, _ = sequences(4)
    model = classifier(seed=2)
    _, want = whole_batch_gradient(model, x, y, nn.softmax_cross_entropy, lengths, 1, False)
    plan = parallel.plan_fit(model, x, y, world_size=1, loss="cross_entropy", optimizer="sgd", batch_size=N,
                             lengths=lengths, shuffle=False, seed=0)
    (task,) = plan.tasks(0, 0, np.arange(N))
    assert task.weight == 1.0
    result = parallel.shard_gradient(parallel.model_spec(model).build(), plan.x, plan.y, plan.lengths, task,
                                     plan.config)
    assert_same_parameters(result.grads, want)


def test_an_empty_shard_gives_zeros_without_running_the_model():
    x, lengths, y, _ = sequences(5, n=3)
    model = classifier(seed=1)
    plan = parallel.plan_fit(model, x, y, world_size=5, loss="cross_entropy", optimizer="sgd", batch_size=3,
                             seed=0, verbose=0)
    tasks = plan.tasks(0, 0, np.arange(3))
    assert [len(t.indices) for t in tasks] == [1, 1, 1, 0, 0] and [t.weight for t in tasks[3:]] == [0.0, 0.0]
    empty = parallel.shard_gradient(model, plan.x, plan.y, plan.lengths, tasks[4], plan.config)
    assert empty.count == 0 and empty.loss_sum == 0.0 and empty.correct == (0, 0)
    assert all(not g.any() and g.shape == p.shape for g, p in zip(empty.grads.values(), model.parameters().values()))


# ---------------------------------------------------------------------------------------------------------
# reduce_gradients
# ---------------------------------------------------------------------------------------------------------


def result(rank, grads, epoch=0, step=0):
    return parallel.ShardResult(rank, 1, 0.0, None, grads, epoch, step)


def test_reduce_sums_in_rank_order_whatever_the_arrival_order():
    # float32: (1e8 - 1e8) + 1 is 1, but 1e8 + (-1e8 + 1) is 0: the order shows in the bits.
    values = [np.float32(1e8), np.float32(-1e8), np.float32(1.0)]
    results = [result(r, {"w": np.full(3, v, dtype=np.float32)}) for r, v in enumerate(values)]
    in_rank_order = (values[0] + values[1]) + values[2]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        total = parallel.reduce_gradients([results[i] for i in order], world_size=3)
        assert total["w"].dtype == np.float32
        np.testing.assert_array_equal(total["w"], np.full(3, in_rank_order, dtype=np.float32))
    assert in_rank_order != values[0] + (values[1] + values[2])      # the test can see the order
    # The results' own arrays are not changed.
    np.testing.assert_array_equal(results[0].grads["w"], np.full(3, 1e8, dtype=np.float32))


def test_reduce_refuses_duplicate_missing_and_unexpected_ranks():
    g = {"w": np.ones(2, dtype=np.float32)}
    with pytest.raises(ValueError, match=r"rank 0\.\.1: duplicate rank\(s\) \[1\]$"):
        parallel.reduce_gradients([result(0, g), result(1, g), result(1, g)], world_size=2)
    with pytest.raises(ValueError, match=r"missing rank\(s\) \[2\]"):
        parallel.reduce_gradients([result(0, g), result(1, g)], world_size=3)
    with pytest.raises(ValueError, match=r"missing rank\(s\) \[1\]"):
        parallel.reduce_gradients([result(0, g), result(2, g)])      # without world_size: up to the largest
    with pytest.raises(ValueError, match=r"unexpected rank\(s\) \[3\]"):
        parallel.reduce_gradients([result(0, g), result(3, g)], world_size=2)
    with pytest.raises(ValueError, match="none"):
        parallel.reduce_gradients([], world_size=1)
    with pytest.raises(TypeError, match="ShardResult"):
        parallel.reduce_gradients([g], world_size=1)
    with pytest.raises(ValueError, match="rank 1's gradient 'w' is float64"):
        parallel.reduce_gradients([result(0, g), result(1, {"w": np.ones(2)})], world_size=2)
    with pytest.raises(ValueError, match="rank 1's gradients name"):
        parallel.reduce_gradients([result(0, g), result(1, {"v": np.ones(2, dtype=np.float32)})], world_size=2)


# ---------------------------------------------------------------------------------------------------------
# fit_local against nn.fit
# ---------------------------------------------------------------------------------------------------------


def run_both(make, x, y, k, *, fit_kw, opt=lambda m: nn.Adam(m, lr=0.01)):
    a, b = make(), make()
    h_fit = nn.fit(a, x, y, optimizer=opt(a), verbose=0, **fit_kw)
    h_par = parallel.fit_local(b, x, y, world_size=k, optimizer=opt(b), verbose=0, **fit_kw)
    return a, b, h_fit, h_par


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_one_worker_is_nn_fit_bit_for_bit(dropout):
    """world_size=1: the same batches, the same dropout stream (rank 0 draws fit's), weight 1: the same bits."""
    x, lengths, y, _ = sequences(6)
    vx, vl, vy, _ = sequences(7, n=20)
    fit_kw = dict(loss="cross_entropy", epochs=3, batch_size=16, seed=11, lengths=lengths, clip_norm=0.5,
                  validation_data=(vx, vy, vl))
    a, b, h_fit, h_par = run_both(lambda: classifier(seed=3, dropout=dropout), x, y, 1, fit_kw=fit_kw)
    assert_same_parameters(snapshot(a), snapshot(b))
    assert h_par.history == h_fit.history
    assert h_par.params == {**h_fit.params, "world_size": 1}


CASES = {
    "many-to-one-ce": dict(make=classifier, loss="cross_entropy", per_step=False),
    "many-to-one-softmax": dict(make=lambda **kw: classifier(softmax=True, **kw), loss="cross_entropy",
                                per_step=False),
    "many-to-many-ce": dict(make=tagger, loss="cross_entropy", per_step=True),
    "many-to-many-mse": dict(make=lambda **kw: tagger(out=2, **kw), loss="mse", per_step=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("batch_first,with_lengths,dtype", [(False, True, "float32"), (True, False, "float32"),
                                                            (True, True, "float64")])
def test_fit_local_equals_nn_fit_to_float_rounding(case, k, batch_first, with_lengths, dtype):
    spec = CASES[case]
    x, lengths, per_seq, per_step = sequences(8, batch_first=batch_first, dtype=dtype)
    name = "many-to-many-mse" if spec["loss"] == "mse" else "many-to-one-ce"
    y = targets(name, per_seq, per_step, x, batch_first) if spec["loss"] == "mse" else (
        per_step if spec["per_step"] else per_seq)
    vx, vl, vps, vpt = sequences(9, n=12, batch_first=batch_first, dtype=dtype)
    vy = targets(name, vps, vpt, vx, batch_first) if spec["loss"] == "mse" else (vpt if spec["per_step"] else vps)
    fit_kw = dict(loss=spec["loss"], epochs=2, batch_size=16, seed=5, clip_norm=1.0,
                  lengths=lengths if with_lengths else None,
                  validation_data=(vx, vy, vl) if with_lengths else (vx, vy))
    a, b, h_fit, h_par = run_both(lambda: spec["make"](seed=2, dtype=dtype, batch_first=batch_first), x, y, k,
                                  fit_kw=fit_kw)
    if k == 1:  # the same bits
        assert_same_parameters(snapshot(a), snapshot(b))
        assert h_par.history == h_fit.history
        return
    assert_close_parameters(snapshot(a), snapshot(b), dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert h_par.history.keys() == h_fit.history.keys()
    for metric, values in h_fit.history.items():
        assert h_par.history[metric] == pytest.approx(values, rel=tol, abs=tol), metric


def test_token_models_with_an_embedding_shard_their_integer_inputs():
    """Integer token ids (N, T) into an Embedding, batch_first: the shards index x on its batch axis too."""
    rng = np.random.default_rng(20)
    tokens = rng.integers(0, 30, size=(N, T))
    lengths = rng.integers(1, T + 1, size=N)
    y = (tokens[np.arange(N), lengths - 1] % C).astype(np.int64)

    def make():
        return nn.Sequential(nn.Embedding(30, 5, seed=0), rnnfast.GRU(5, H, batch_first=True, seed=1),
                             nn.LastStep(batch_first=True), nn.Linear(H, C, seed=2))

    fit_kw = dict(loss="cross_entropy", epochs=2, batch_size=16, seed=6, lengths=lengths)
    for k in (1, 3):
        a, b, h_fit, h_par = run_both(make, tokens, y, k, fit_kw=fit_kw)
        if k == 1:
            assert_same_parameters(snapshot(a), snapshot(b))
        else:
            assert_close_parameters(snapshot(a), snapshot(b), "float32")
        assert h_par.history["loss"] == pytest.approx(h_fit.history["loss"], rel=1e-5)


def test_more_workers_than_samples_per_batch_is_allowed():
    """world_size beyond batch_size: the extra ranks get empty shards (weight 0) and change nothing but
    rounding; the epoch's short last batch (45 = 2 * 16 + 13) leaves some ranks empty too."""
    x, lengths, y, _ = sequences(10)
    fit_kw = dict(loss="cross_entropy", epochs=2, batch_size=16, seed=1, lengths=lengths)
    a, b, h_fit, h_par = run_both(lambda: classifier(seed=5), x, y, 20, fit_kw=fit_kw)
    assert_close_parameters(snapshot(a), snapshot(b), "float32")
    assert h_par.history["loss"] == pytest.approx(h_fit.history["loss"], rel=1e-5)


def test_fit_local_learns():
    x, lengths, y, _ = sequences(11, n=120)
    model = classifier(seed=0)
    history = parallel.fit_local(model, x, y, world_size=3, lengths=lengths, loss="cross_entropy",
                                 optimizer=nn.Adam(model, lr=0.02), epochs=12, batch_size=24, seed=0, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert history.params["world_size"] == 3 and history.epoch == list(range(12))


# ---------------------------------------------------------------------------------------------------------
# Dropout: repeatable, seeded, one stream per rank
# ---------------------------------------------------------------------------------------------------------


def test_dropout_runs_repeat_with_their_seed_and_differ_with_another():
    x, lengths, _, y = sequences(12)

    def run(seed, k=2):
        model = tagger(seed=1, dropout=0.4)
        h = parallel.fit_local(model, x, y, world_size=k, lengths=lengths, loss="cross_entropy",
                               optimizer=nn.Adam(model, lr=0.01), epochs=2, batch_size=16, seed=seed, verbose=0)
        return snapshot(model), h.history

    p1, h1 = run(3)
    p2, h2 = run(3)
    assert_same_parameters(p1, p2)
    assert h1 == h2
    p3, _ = run(4)
    assert any(not np.array_equal(p1[k], p3[k]) for k in p1)
    # Each rank draws its own masks: two workers do not repeat nn.fit's (which one worker does, bit for bit).
    model = tagger(seed=1, dropout=0.4)
    nn.fit(model, x, y, lengths=lengths, loss="cross_entropy", optimizer=nn.Adam(model, lr=0.01), epochs=2,
           batch_size=16, seed=3, verbose=0)
    assert any(not np.allclose(p1[k], snapshot(model)[k], rtol=1e-4, atol=1e-5) for k in p1)


def test_each_rank_draws_its_own_dropout_masks():
    """Two ranks given the same samples (a batch of a repeated sample) get different masks: their shard
    gradients differ, though their inputs and parameters are the same."""
    x, lengths, _, y = sequences(13, n=1)
    x2, y2, l2 = np.concatenate([x, x], axis=1), np.concatenate([y, y], axis=1), np.concatenate([lengths, lengths])
    model = tagger(seed=1, dropout=0.5)
    plan = parallel.plan_fit(model, x2, y2, world_size=2, lengths=l2, loss="cross_entropy", optimizer="sgd",
                             batch_size=2, seed=0, shuffle=False)
    tasks = plan.tasks(0, 0, np.arange(2))
    r0, r1 = (parallel.shard_gradient(model, plan.x, plan.y, plan.lengths, t, plan.config) for t in tasks)
    assert any(not np.array_equal(r0.grads[k], r1.grads[k]) for k in r0.grads)
    again = parallel.shard_gradient(model, plan.x, plan.y, plan.lengths, tasks[1], plan.config)
    assert_same_parameters(again.grads, r1.grads)   # a retry of a task gives its bits again


# ---------------------------------------------------------------------------------------------------------
# The same bits through pickle, in any arrival order, and on real worker processes
# ---------------------------------------------------------------------------------------------------------


def test_an_executor_behind_pickle_and_out_of_order_gives_fit_locals_bits():
    x, lengths, _, y = sequences(14)
    fit_kw = dict(lengths=lengths, loss="cross_entropy", epochs=2, batch_size=16, seed=2, verbose=0, clip_norm=1.0)
    a, b = tagger(seed=3, dropout=0.3), tagger(seed=3, dropout=0.3)
    h_local = parallel.fit_local(a, x, y, world_size=3, optimizer=nn.Adam(a, lr=0.01), **fit_kw)
    executor = PickledExecutor(3)
    h_pickled = parallel.run_data_parallel(executor, b, x, y, optimizer=nn.Adam(b, lr=0.01), **fit_kw)
    assert_same_parameters(snapshot(a), snapshot(b))
    assert h_pickled.history == h_local.history
    assert executor.log == ["start", "close"]


def test_worker_processes_at_another_thread_count_give_fit_locals_bits(restore_threads):
    """Two spawned processes at one thread each (this one at two): the kernels' bits do not depend on the
    thread count, and the results, gathered as they finish, are summed in rank order."""
    x, lengths, y, _ = sequences(15)
    fit_kw = dict(lengths=lengths, loss="cross_entropy", epochs=1, batch_size=15, seed=4, verbose=0)
    rnnfast.set_num_threads(2)
    a, b = classifier(seed=6, dropout=0.2), classifier(seed=6, dropout=0.2)
    h_local = parallel.fit_local(a, x, y, world_size=3, optimizer=nn.Adam(a, lr=0.01), **fit_kw)
    h_procs = parallel.run_data_parallel(ProcessExecutor(3, processes=2, threads=1), b, x, y,
                                         optimizer=nn.Adam(b, lr=0.01), **fit_kw)
    assert_same_parameters(snapshot(a), snapshot(b))
    assert h_procs.history == h_local.history


# ---------------------------------------------------------------------------------------------------------
# ModelSpec and set_parameters
# ---------------------------------------------------------------------------------------------------------


def test_model_spec_ships_the_model_as_its_saved_bytes():
    model = nn.Sequential(nn.Embedding(20, 4, seed=0), rnnfast.GRU(4, 6, seed=1), nn.LastStep(),
                          nn.Linear(6, 3, seed=2, dtype="float32"))
    spec = parallel.model_spec(model)
    assert spec.nbytes == len(spec.data) > sum(p.nbytes for p in model.parameters().values())
    for copy in (spec.build(), pickle.loads(pickle.dumps(spec)).build()):
        assert type(copy) is nn.Sequential and repr(copy) == repr(model)
        assert_same_parameters(snapshot(copy), snapshot(model))
    tokens = np.random.default_rng(0).integers(0, 20, size=(5, 4))
    np.testing.assert_array_equal(spec.build()(tokens), model(tokens))
    layer_spec = parallel.model_spec(rnnfast.LSTM(3, 4, seed=0))     # a layer ships too (for predict)
    assert type(layer_spec.build()) is rnnfast.LSTM
    with pytest.raises(TypeError, match="model"):
        parallel.model_spec(object())


def test_set_parameters_copies_in_and_refuses_what_does_not_match():
    a, b = classifier(seed=0), classifier(seed=9)
    parallel.set_parameters(b, a.parameters())
    assert_same_parameters(snapshot(a), snapshot(b))
    params = snapshot(a)
    before = snapshot(b)
    with pytest.raises(ValueError, match=r"missing \['2.bias'\]"):
        parallel.set_parameters(b, {k: v for k, v in params.items() if k != "2.bias"})
    with pytest.raises(ValueError, match=r"params\['2.bias'\] is float64"):
        parallel.set_parameters(b, {**params, "2.bias": params["2.bias"].astype(np.float64)})
    with pytest.raises(ValueError, match=r"expected float32 \(3,\)"):
        parallel.set_parameters(b, {**params, "2.bias": np.zeros(4, dtype=np.float32)})
    assert_same_parameters(snapshot(b), before)  # nothing copied


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("world_size,error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                              (True, TypeError), ("2", TypeError), (None, TypeError)])
def test_world_size_must_be_a_positive_int(world_size, error):
    x, lengths, y, _ = sequences(16, n=8)
    model = classifier()
    before = snapshot(model)
    with pytest.raises(error, match="world_size must be a positive int"):
        parallel.fit_local(model, x, y, world_size=world_size, loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(error, match="world_size must be a positive int"):
        parallel.plan_fit(model, x, y, world_size=world_size, loss="cross_entropy", optimizer="sgd")
    assert_same_parameters(snapshot(model), before)


def test_fits_checks_come_first_and_nothing_starts():
    x, lengths, y, _ = sequences(17, n=8)
    model = classifier()
    executor = PickledExecutor(2)
    with pytest.raises(ValueError, match="y has shape"):
        parallel.run_data_parallel(executor, model, x, y[:5], loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match=r"y must be class indices in \[0, 3\)"):
        parallel.fit_local(model, x, y + 3, world_size=2, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert executor.log == []


class _Misbehaving(PickledExecutor):
    def __init__(self, world_size, change):
        super().__init__(world_size)
        self.change = change

    def gradients(self, params, tasks):
        return self.change(super().gradients(params, tasks))


@pytest.mark.parametrize("change,message", [
    (lambda rs: rs + rs[:1], r"duplicate rank\(s\)"),                                  # a retry counted twice
    (lambda rs: rs[1:], r"missing rank\(s\)"),                                        # a lost worker
    (lambda rs: [parallel.ShardResult(r.rank, r.count, r.loss_sum, r.correct, r.grads, r.epoch, r.step + 1)
                 for r in rs], "answered epoch 0 step 1"),                             # another step's result
    (lambda rs: tuple(rs)[:0] or None, "must return a list of ShardResult"),
])
def test_results_that_do_not_answer_the_step_are_refused_and_the_executor_closed(change, message):
    x, lengths, y, _ = sequences(18, n=10)
    model = classifier()
    before = snapshot(model)
    executor = _Misbehaving(2, change)
    with pytest.raises((ValueError, TypeError), match=message):
        parallel.run_data_parallel(executor, model, x, y, loss="cross_entropy", optimizer="sgd", batch_size=5,
                                   verbose=0)
    assert executor.log == ["start", "close"]
    assert_same_parameters(snapshot(model), before)   # no step was taken on a wrong gradient


def test_a_model_rnnfast_cannot_save_is_refused_before_anything_ships():
    class Scaled(nn.Module):
        def forward(self, x, *, training=False, lengths=None, rng=None):
            return x * 2

        def backward(self, d_y):
            return d_y * 2

    x, lengths, y, _ = sequences(19, n=8)
    model = nn.Sequential(rnnfast.LSTM(I, H, seed=0), Scaled(), nn.LastStep(), nn.Linear(H, C, seed=1))
    executor = PickledExecutor(2)
    with pytest.raises(TypeError, match="Scaled"):
        parallel.run_data_parallel(executor, model, x, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert executor.log == []
