"""rnnfast.ray on a local Ray of two CPUs: predict on Ray Data equals the in-process call bit for bit for every
kind of model (rows restored to order by the id column); bad input refused; fit on actors equal to fit_local
bit for bit, repeatable, equal to nn.fit to float32 rounding, and exact after an actor is killed mid-fit."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
ray_data = pytest.importorskip("ray.data")

import rnnfast  # noqa: E402
import rnnfast.ray as rray  # noqa: E402
from helpers.engines import I, MODELS, N, T, in_process, inputs  # noqa: E402

# ---------------------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------------------


def rows_of(name: str, x: np.ndarray) -> np.ndarray:
    """The sequences of ``x`` one per row: (n, T, I), (n, T) indices, (n, I) for the Linear model."""
    batch_first = MODELS[name][1] or name == "linear-only"
    return x if batch_first else np.ascontiguousarray(np.swapaxes(x, 0, 1))


def gathered(result, column: str = "prediction") -> np.ndarray:
    rows = result.sort("id").take_all()
    assert [r["id"] for r in rows] == list(range(len(rows)))
    return np.stack([r[column] for r in rows])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_equals_the_in_process_call_bit_for_bit(ray_session, name):
    model = MODELS[name][0]()
    x = inputs(name)
    rows = rows_of(name, x)
    ds = ray_data.from_items([{"id": i, "x": rows[i]} for i in range(N)])
    expected = in_process(model, x)
    if expected.ndim == 3 and not (MODELS[name][1]):
        expected = np.swapaxes(expected, 0, 1)   # per row: (T, H)
    got = gathered(rray.predict(model, ds, batch_size=5, actors=2))
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
