"""rnnfast.ray on a local Ray of two CPUs: predict on Ray Data equals the in-process call bit for bit for every
kind of model (rows restored to order by the id column); bad input refused; fit on actors equal to fit_local
bit for bit, repeatable, equal to nn.fit to float32 rounding, and exact after an actor is killed mid-fit; workers
that cannot import rnnfast named at the call, not left to an actor's death."""

from __future__ import annotations

import os
import re
import textwrap

import numpy as np
import pytest

ray = pytest.importorskip("ray")
ray_data = pytest.importorskip("ray.data")

import rnnfast  # noqa: E402
import rnnfast.ray as rray  # noqa: E402
from helpers.engines import I, MODELS, N, T, KillWorkerOnce, in_process, inputs, same_fit, training_problem  # noqa: E402
from rnnfast import nn, parallel  # noqa: E402

# ---------------------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------------------


def rows_of(name: str, x: np.ndarray) -> np.ndarray:
    """The sequences of ``x`` one per row: (n, T, I), (n, T) indices, (n, I) for the Linear model."""
    batch_first = MODELS[name][1] or name == "linear-only"
    return x if batch_first else np.ascontiguousarray(np.swapaxes(x, 0, 1))


def gathered(result, column: str = "prediction") -> np.ndarray:
    """The predictions in the input's order, restored by the id column (here, after gathering: Dataset.sort
    would shuffle on the cluster, seconds for these few rows)."""
    rows = sorted(result.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(len(rows)))
    return np.stack([r[column] for r in rows])


# Each prediction starts a pool of actors (seconds): the kinds of model whose rows differ in layout (the
# Dask tests run every kind through the same inference call).
RAY_MODELS = ["lstm-int8", "gru-batch-first-bidirectional", "sequential-many-to-one", "embedding-tagger"]


@pytest.mark.parametrize("name", RAY_MODELS)
def test_predict_equals_the_in_process_call_bit_for_bit(ray_session, name):
    model = MODELS[name][0]()
    x = inputs(name)
    rows = rows_of(name, x)
    ds = ray_data.from_items([{"id": i, "x": rows[i]} for i in range(N)])
    expected = in_process(model, x)
    if expected.ndim == 3 and not (MODELS[name][1]):
        expected = np.swapaxes(expected, 0, 1)   # per row: (T, H)
    got = gathered(rray.predict(model, ds, batch_size=5, actors=2 if name == RAY_MODELS[0] else 1))
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_predict_with_lengths_and_threads_from_the_actors_cpus(ray_session):
    model = MODELS["sequential-many-to-one"][0]()
    x = inputs("sequential-many-to-one")
    lengths = np.random.default_rng(5).integers(0, T + 1, size=N)
    ds = ray_data.from_items([{"id": i, "x": x[:, i], "n": int(lengths[i])} for i in range(N)])
    got = gathered(rray.predict(model, ds, lengths_column="n", batch_size=7, kernel_batch_size=2, num_cpus=2))
    np.testing.assert_array_equal(got, model.predict(x, lengths=lengths))

    @ray.remote(num_cpus=2)
    class Probe(rray.Predictor):
        def threads(self) -> int:
            return rnnfast.get_num_threads()

    from rnnfast._engine_common import spec_ref
    from rnnfast.parallel import model_spec

    probe = Probe.remote(spec_ref(model_spec(model)), "x", "id", "prediction", None, None)
    assert ray.get(probe.threads.remote()) == 2
    ray.kill(probe)


def test_predict_bad_input(ray_session):
    model = MODELS["lstm"][0]()
    rows = rows_of("lstm", inputs("lstm"))
    ds = ray_data.from_items([{"id": i, "x": rows[i]} for i in range(N)])
    with pytest.raises(ValueError, match=r"feature_column 'seq' is not a column of the dataset \(its columns: "
                                         r"\['id', 'x'\]\)"):
        rray.predict(model, ds, feature_column="seq")
    with pytest.raises(ValueError, match="id_column 'key' is not a column"):
        rray.predict(model, ds, id_column="key")
    with pytest.raises(ValueError, match="actors"):
        rray.predict(model, ds, actors=0)
    with pytest.raises(TypeError, match="dataset must be a ray.data.Dataset"):
        rray.predict(model, rows)
    wrong = ray_data.from_items([{"id": i, "x": np.zeros((T, I + 2), np.float32)} for i in range(3)])
    with pytest.raises(ValueError, match="input_size|features|shape"):
        rray.predict(model, wrong)


# ---------------------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------------------

FIT = dict(loss="cross_entropy", epochs=2, batch_size=10, seed=7, verbose=0)


def test_fit_equals_fit_local_bit_for_bit_and_repeats(ray_session):
    _, xv, lv, yv = training_problem(seed=1, n=9)
    runs = []
    for _ in range(2):
        a, x, lengths, y = training_problem()
        ha = rray.fit(a, x, y, lengths=lengths, optimizer=nn.Adam(a, lr=0.01), world_size=2, clip_norm=0.5,
                      validation_data=(xv, yv, lv), **FIT)
        runs.append((a, ha))
    b, x, lengths, y = training_problem()
    hb = parallel.fit_local(b, x, y, lengths=lengths, optimizer=nn.Adam(b, lr=0.01), world_size=2, clip_norm=0.5,
                            validation_data=(xv, yv, lv), **FIT)
    same_fit(runs[0][0], b, runs[0][1], hb)
    same_fit(runs[0][0], runs[1][0], runs[0][1], runs[1][1])


def test_fit_equals_nn_fit_to_float32_rounding(ray_session):
    a, x, lengths, y = training_problem(dropout=0.0)
    b, *_ = training_problem(dropout=0.0)
    ha = rray.fit(a, x, y, lengths=lengths, optimizer=nn.SGD(a, lr=0.1), world_size=2, **FIT)
    hb = nn.fit(b, x, y, lengths=lengths, optimizer=nn.SGD(b, lr=0.1), **FIT)
    for name in a.parameters():
        np.testing.assert_allclose(a.parameters()[name], b.parameters()[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)


def test_an_actor_killed_mid_fit_changes_nothing(ray_session, tmp_path):
    """The loss kills the actor's process once: Ray restarts the actor and retries its call, and the fit ends
    with fit_local's bits, every gradient counted once."""
    flag = tmp_path / "kill-once"
    flag.touch()
    a, x, lengths, y = training_problem()
    b, *_ = training_problem()
    kw = {**FIT, "loss": KillWorkerOnce(str(flag))}
    ha = rray.fit(a, x, y, lengths=lengths, optimizer=nn.Adam(a, lr=0.01), world_size=2, **kw)
    assert not flag.exists(), "no actor ran the killing loss"
    kw["loss"] = nn.softmax_cross_entropy
    hb = parallel.fit_local(b, x, y, lengths=lengths, optimizer=nn.Adam(b, lr=0.01), world_size=2, **kw)
    same_fit(a, b, ha, hb)


def test_an_actor_lost_for_good_fails_the_fit_clearly(ray_session, tmp_path):
    flag = tmp_path / "kill-once"
    flag.touch()
    a, x, lengths, y = training_problem()
    before = {k: v.copy() for k, v in a.parameters().items()}
    with pytest.raises(RuntimeError, match=r"actor died at epoch 0 step 0 more often than it is restarted \(0\)"):
        rray.fit(a, x, y, lengths=lengths, optimizer=nn.Adam(a, lr=0.01), world_size=2, max_restarts=0,
                 **{**FIT, "loss": KillWorkerOnce(str(flag))})
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, before[name])


def test_fit_actors_threads_and_bad_input(ray_session):
    a, x, lengths, y = training_problem()
    with pytest.raises(ValueError, match="y|samples"):
        rray.fit(a, x, y[:-1], lengths=lengths, optimizer="sgd", world_size=2, **FIT)
    with pytest.raises(ValueError, match="world_size"):
        rray.fit(a, x, y, lengths=lengths, optimizer="sgd", world_size=0, **FIT)
    from rnnfast.parallel import ShardConfig, model_spec, plan_fit

    plan = plan_fit(a, x, y, world_size=1, lengths=lengths, optimizer="sgd", **FIT)
    executor = rray.RayExecutor(1, num_cpus=2)
    executor.start(model_spec(a), plan.x, plan.y, plan.lengths, plan.config)
    try:
        assert executor.actor_threads() == [2]
    finally:
        executor.close()
    assert isinstance(plan.config, ShardConfig)


# ---------------------------------------------------------------------------------------------------------
# workers without rnnfast
# ---------------------------------------------------------------------------------------------------------


def without_rnnfast(tmp_path) -> dict:
    """A runtime_env whose workers cannot import rnnfast, as a worker from an environment without the package
    would fail (simulated: a sitecustomize on the workers' PYTHONPATH installs an import hook refusing it)."""
    block = tmp_path / "no_rnnfast"
    block.mkdir()
    (block / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys

        class RefuseRnnfast:
            def find_spec(self, name, path=None, target=None):
                if name == "rnnfast" or name.startswith("rnnfast."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, RefuseRnnfast())
    """))
    # The job's PYTHONPATH (conftest's ray_session) after it: rnnfast is there, and still refused.
    paths = [str(block), os.path.dirname(os.path.dirname(rnnfast.__file__))]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


def test_workers_without_rnnfast_are_named_at_the_call(ray_session, tmp_path, monkeypatch):
    """predict and fit refuse at the call, naming the node (or the actor) and the import error, instead of an
    actor dying in Ray's stand-in class (predict: only once the lazy Dataset is consumed)."""
    env = without_rnnfast(tmp_path)
    (node,) = [n for n in ray.nodes() if n["Alive"]]
    facts = rray.check_workers()
    assert [f["version"] for f in facts.values()] == [rnnfast.__version__]
    named = (rf"^1 of 1 Ray nodes cannot import rnnfast in their workers: node "
             rf"{re.escape(node['NodeManagerAddress'])} {node['NodeID']}: ModuleNotFoundError: No module named "
             r"'rnnfast'\. rnnfast must be installed in the Ray workers' environment")
    with pytest.raises(RuntimeError, match=named) as info:
        rray.check_workers(env)
    assert info.value.__cause__ is not None  # Ray's report, chained

    model = MODELS["lstm"][0]()
    rows = rows_of("lstm", inputs("lstm"))
    ds = ray_data.from_items([{"id": i, "x": rows[i]} for i in range(N)])
    with pytest.raises(RuntimeError, match=named):
        rray.predict(model, ds, runtime_env=env)

    a, x, lengths, y = training_problem()
    before = {k: v.copy() for k, v in a.parameters().items()}
    with pytest.raises(RuntimeError, match=named):
        rray.fit(a, x, y, lengths=lengths, optimizer="sgd", world_size=2, runtime_env=env, **FIT)
    # A node joining after the check (here: the check skipped): the actor's death is translated, naming it.
    monkeypatch.setattr("rnnfast.ray._fit.ensure_workers", lambda runtime_env: None)
    with pytest.raises(RuntimeError, match=r"^rnnfast.ray.fit: actor \w+ on node \S+ cannot import rnnfast "
                                           r"\(ModuleNotFoundError: No module named 'rnnfast'\); rnnfast must be "
                                           r"installed in the Ray workers' environment") as info:
        rray.fit(a, x, y, lengths=lengths, optimizer="sgd", world_size=1, runtime_env=env, **FIT)
    assert isinstance(info.value.__cause__, ray.exceptions.RayActorError)
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, before[name])
