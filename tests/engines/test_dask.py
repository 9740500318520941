"""rnnfast.dask on a real local cluster (two worker processes of one thread): predict and predict_partitions
equal the in-process call bit for bit for every kind of model; bad chunking, lengths and DataFrame columns
refused; the RnnfastThreads plugin and the per-worker rnnfast check; fit equal to fit_local bit for bit,
repeatable, equal to nn.fit to float32 rounding, and exact after a worker is killed mid-fit."""

from __future__ import annotations

import pickle
import sys
import textwrap

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")

import rnnfast  # noqa: E402
import rnnfast.dask as rdask  # noqa: E402
from helpers.engines import I, MODELS, N, T, KillWorkerOnce, in_process, inputs, same_fit, training_problem  # noqa: E402
from rnnfast import nn, parallel  # noqa: E402
from rnnfast.parallel import model_spec  # noqa: E402

# ---------------------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------------------


def batch_axis(name: str) -> int:
    _, batch_first, _ = MODELS[name]
    return 0 if batch_first or name == "linear-only" else 1


def chunked(x: np.ndarray, axis: int, sizes: tuple[int, ...]):
    chunks = [(s,) for s in x.shape]
    chunks[axis] = sizes
    return da.from_array(x, chunks=tuple(chunks))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_equals_the_in_process_call_bit_for_bit(dask_client, name):
    model = MODELS[name][0]()
    x = inputs(name)
    axis = batch_axis(name)
    out = rdask.predict(model, chunked(x, axis, (10, 1, 7, 5)))
    expected = in_process(model, x)
    assert isinstance(out, da.Array) and out.dtype == expected.dtype and out.shape == expected.shape
    got = out.compute()
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype


@pytest.mark.parametrize("dask_lengths", [False, True])
def test_predict_with_lengths_and_batch_size(dask_client, dask_lengths):
    model = MODELS["sequential-many-to-one"][0]()
    x = inputs("sequential-many-to-one")
    lengths = np.random.default_rng(3).integers(0, T + 1, size=N)
    lens = da.from_array(lengths, chunks=5) if dask_lengths else lengths  # chunked otherwise than x: realigned
    out = rdask.predict(model, chunked(x, 1, (12, 11)), lengths=lens, batch_size=4)
    np.testing.assert_array_equal(out.compute(), model.predict(x, lengths=lengths))
    layer = MODELS["lstm"][0]()
    out = rdask.predict(layer, chunked(x, 1, (12, 11)), lengths=lens, batch_size=5)
    np.testing.assert_array_equal(out.compute(), layer.forward(x, lengths=lengths)[0])


def test_the_model_is_one_key_of_the_graph_and_later_changes_do_not_reach_it(dask_client):
    model = MODELS["lstm"][0]()
    x = inputs("lstm")
    expected = model.forward(x)[0]
    out = rdask.predict(model, chunked(x, 1, (5,) * 4 + (3,)))
    spec_bytes = model_spec(model).nbytes
    graph = dict(out.__dask_graph__())
    holding = [k for k, v in graph.items() if len(pickle.dumps(v)) >= spec_bytes]
    assert len(holding) == 1, "the model must be shipped in one key, not in every chunk's task"
    model.parameters()["weight_ih_l0"][...] = 0
    np.testing.assert_array_equal(out.compute(), expected)


@pytest.mark.parametrize("chunks, axis", [(((3, 3), (N,), (3,)), 0), (((T,), (N,), (2, 1)), 2)])
def test_predict_refuses_chunks_along_time_or_features(chunks, axis):
    x = da.from_array(inputs("lstm"), chunks=chunks)
    with pytest.raises(ValueError, match=rf"chunked along axis {axis} into 2 chunks.*rechunk it with "
                                         rf"x.rechunk\(\{{{axis}: -1\}}\)"):
        rdask.predict(MODELS["lstm"][0](), x)


def test_predict_bad_input():
    model = MODELS["lstm"][0]()
    x = inputs("lstm")
    with pytest.raises(TypeError, match="x must be a dask.array.Array"):
        rdask.predict(model, x)
    with pytest.raises(ValueError, match=r"lengths has shape \(5,\), expected \(23,\)"):
        rdask.predict(model, chunked(x, 1, (N,)), lengths=np.ones(5, dtype=int))
    with pytest.raises(ValueError, match="input_size|features|shape"):
        rdask.predict(model, da.zeros((T, N, I + 1), chunks=(T, 5, I + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        rdask.predict(model, chunked(x, 1, (N,)), batch_size=0)
    with pytest.raises(TypeError, match="model must be"):
        rdask.predict(object(), chunked(x, 1, (N,)))





# ---------------------------------------------------------------------------------------------------------
# predict_partitions
# ---------------------------------------------------------------------------------------------------------


def wide_frame(x: np.ndarray, lengths: np.ndarray, npartitions: int):
    """One row per sequence, its features step-major in columns f0 .. f{T*I-1}, and a lengths column."""
    rows = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(x.shape[1], -1)
    names = [f"f{i}" for i in range(rows.shape[1])]
    frame = pd.DataFrame(rows, columns=names, index=pd.RangeIndex(100, 100 + len(rows)))
    frame["n"] = lengths
    return dd.from_pandas(frame, npartitions=npartitions), names


@pytest.mark.parametrize("name", ["sequential-many-to-one", "sequential-batch-first", "gru-bf16"])
def test_predict_partitions_equals_the_in_process_call(dask_client, name):
    model = MODELS[name][0]()
    x = inputs("lstm")  # time-major; the frame's rows do not depend on the model's layout
    lengths = np.random.default_rng(4).integers(1, T + 1, size=N)
    df, names = wide_frame(x, lengths, npartitions=4)
    out = rdask.predict_partitions(model, df, columns=names, lengths_column="n", batch_size=3)
    assert isinstance(out, dd.DataFrame) and out.npartitions == 4
    got = out.compute()
    seq_x = x.transpose(1, 0, 2).copy() if MODELS[name][1] else x
    expected = in_process(model, seq_x, lengths)
    if expected.ndim == 3:  # a sequence out: rows of it, flattened step-major
        expected = np.moveaxis(expected, 0 if MODELS[name][1] else 1, 0).reshape(N, -1)
    assert list(got.columns) == [f"y{k}" for k in range(expected.shape[1])]
    assert list(got.index) == list(range(100, 100 + N))
    np.testing.assert_array_equal(got.to_numpy(), expected)


def test_predict_partitions_of_indices(dask_client):
    model = MODELS["embedding-tagger"][0]()
    x = inputs("embedding-tagger")                       # (T, N) indices
    frame = pd.DataFrame(x.T, columns=[f"t{i}" for i in range(T)])
    out = rdask.predict_partitions(model, dd.from_pandas(frame, npartitions=3), columns=list(frame.columns),
                                   prefix="p").compute()
    np.testing.assert_array_equal(out.to_numpy(), np.moveaxis(model.predict(x), 1, 0).reshape(N, -1))


def test_predict_partitions_bad_input():
    model = MODELS["sequential-many-to-one"][0]()
    df, names = wide_frame(inputs("lstm"), np.ones(N, dtype=int), npartitions=2)
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the DataFrame"):
        rdask.predict_partitions(model, df, columns=names[:-1] + ["nope"])
    with pytest.raises(ValueError, match="17 names, not a multiple of the model's 3 input features"):
        rdask.predict_partitions(model, df, columns=names[:17])
    with pytest.raises(TypeError, match="columns must be a non-empty list"):
        rdask.predict_partitions(model, df, columns="f0")
    with pytest.raises(ValueError, match="lengths_column 'm' is not in the DataFrame"):
        rdask.predict_partitions(model, df, columns=names, lengths_column="m")
    with pytest.raises(TypeError, match="df must be a dask.dataframe.DataFrame"):
        rdask.predict_partitions(model, df.compute(), columns=names)


# ---------------------------------------------------------------------------------------------------------
# Workers: rnnfast on each, the thread plugin
# ---------------------------------------------------------------------------------------------------------


def test_the_thread_plugin_sets_each_workers_share(dask_client):
    facts = rdask.check_workers(dask_client)
    assert len(facts) == 2 and all(f["version"] == rnnfast.__version__ for f in facts.values())
    try:
        assert rdask.setup_workers(dask_client, threads=2) == {addr: 2 for addr in facts}
        assert set(dask_client.run(rnnfast.get_num_threads).values()) == {2}
        # None: each worker's nthreads (1 in this cluster)
        assert rdask.setup_workers(dask_client) == {addr: 1 for addr in facts}
    finally:
        dask_client.unregister_worker_plugin(rdask.RnnfastThreads.name)
    with pytest.raises(ValueError, match="threads"):
        rdask.RnnfastThreads(0)


def test_workers_without_rnnfast_are_named(tmp_path):
    """A worker whose Python cannot import rnnfast (simulated: a preload script blocks the import, as a worker
    from an environment without the package would fail)."""
    block = tmp_path / "no_rnnfast.py"
    block.write_text(textwrap.dedent("""
        import sys
        for name in [m for m in sys.modules if m == "rnnfast" or m.startswith("rnnfast.")]:
            del sys.modules[name]
        sys.modules["rnnfast"] = None  # import rnnfast: ModuleNotFoundError
    """))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  preload=[str(block)], silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(1)
        (address,) = client.scheduler_info()["workers"]
        with pytest.raises(RuntimeError, match=rf"1 of 1 Dask workers cannot import rnnfast .*{address}: .*rnnfast"):
            rdask.check_workers(client)
        with pytest.raises(RuntimeError, match=rf"cannot import rnnfast .*{address}"):
            rdask.setup_workers(client)


# ---------------------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------------------

FIT = dict(loss="cross_entropy", epochs=2, batch_size=10, seed=7, verbose=0)


def fit_both(client, world_size=None, **overrides):
    """rnnfast.dask.fit and parallel.fit_local on the same problem: (dask model, its history, local model,
    its history)."""
    kw = {**FIT, **overrides}
    a, x, lengths, y = training_problem()
    b, *_ = training_problem()
    k = world_size or 2
    ha = rdask.fit(client, a, x, y, lengths=lengths, optimizer=nn.Adam(a, lr=0.01), world_size=world_size, **kw)
    hb = parallel.fit_local(b, x, y, lengths=lengths, optimizer=nn.Adam(b, lr=0.01), world_size=k, **kw)
    return a, ha, b, hb


def test_fit_equals_fit_local_bit_for_bit(dask_client):
    _, xv, lv, yv = training_problem(seed=1, n=9)
    a, ha, b, hb = fit_both(dask_client, clip_norm=0.5, validation_data=(xv, yv, lv))
    same_fit(a, b, ha, hb)
    assert ha.params["world_size"] == 2 and set(ha.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_fit_with_more_ranks_than_workers(dask_client):
    a, ha, b, hb = fit_both(dask_client, world_size=3, epochs=1)
    same_fit(a, b, ha, hb)


def test_two_runs_with_the_same_seed_are_identical(dask_client):
    a, ha, _, _ = fit_both(dask_client, epochs=1)
    c, hc, _, _ = fit_both(dask_client, epochs=1)
    same_fit(a, c, ha, hc)


def test_fit_equals_nn_fit(dask_client):
    """One worker: nn.fit's bits, dropout included; two: nn.fit's to float32 rounding (no dropout: its masks
    are drawn per rank)."""
    a, x, lengths, y = training_problem()
    b, *_ = training_problem()
    ha = rdask.fit(dask_client, a, x, y, lengths=lengths, optimizer=nn.SGD(a, lr=0.1), world_size=1, **FIT)
    hb = nn.fit(b, x, y, lengths=lengths, optimizer=nn.SGD(b, lr=0.1), **FIT)
    for name in a.parameters():
        np.testing.assert_array_equal(a.parameters()[name], b.parameters()[name], err_msg=name)
    assert ha.history == hb.history

    a, x, lengths, y = training_problem(dropout=0.0)
    b, *_ = training_problem(dropout=0.0)
    ha = rdask.fit(dask_client, a, x, y, lengths=lengths, optimizer=nn.SGD(a, lr=0.1), **FIT)
    hb = nn.fit(b, x, y, lengths=lengths, optimizer=nn.SGD(b, lr=0.1), **FIT)
    for name in a.parameters():
        np.testing.assert_allclose(a.parameters()[name], b.parameters()[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)


def test_a_worker_killed_mid_fit_changes_nothing(dask_client, tmp_path):
    """The loss kills the worker process computing it once (at the first shard): the scheduler reruns that
    rank elsewhere and the fit ends with fit_local's bits, every gradient counted once."""
    flag = tmp_path / "kill-once"
    flag.touch()
    a, x, lengths, y = training_problem()
    b, *_ = training_problem()
    kw = {**FIT, "loss": KillWorkerOnce(str(flag))}
    ha = rdask.fit(dask_client, a, x, y, lengths=lengths, optimizer=nn.Adam(a, lr=0.01), **kw)
    assert not flag.exists(), "no worker ran the killing loss"
    kw["loss"] = nn.softmax_cross_entropy
    hb = parallel.fit_local(b, x, y, lengths=lengths, optimizer=nn.Adam(b, lr=0.01), world_size=2, **kw)
    same_fit(a, b, ha, hb)
    dask_client.wait_for_workers(2)


def test_fit_bad_input(dask_client):
    a, x, lengths, y = training_problem()
    with pytest.raises(ValueError, match="y|samples"):
        rdask.fit(dask_client, a, x, y[:-1], lengths=lengths, optimizer="sgd", **FIT)
    dx = da.from_array(x, chunks=(T, 10, I))
    dy = da.from_array(y, chunks=12)
    with pytest.raises(ValueError, match=r"x and y are dask arrays cut into different partitions along the batch "
                                         r"axis \(x: \(10, 10, 10, 7\), y: \(12, 12, 12, 1\)\)"):
        rdask.fit(dask_client, a, dx, dy, lengths=lengths, optimizer="sgd", **FIT)
    # Cut alike: accepted, and the same as NumPy input.
    b, *_ = training_problem()
    ha = rdask.fit(dask_client, a, dx, da.from_array(y, chunks=10), lengths=lengths, optimizer=nn.SGD(a, lr=0.1),
                   **FIT)
    hb = rdask.fit(dask_client, b, x, y, lengths=lengths, optimizer=nn.SGD(b, lr=0.1), **FIT)
    same_fit(a, b, ha, hb)
    with pytest.raises(ValueError, match="world_size"):
        rdask.fit(dask_client, a, x, y, lengths=lengths, optimizer="sgd", world_size=0, **FIT)


def test_a_task_that_keeps_killing_workers_fails_the_fit_clearly(tmp_path):
    """With Dask's allowed-failures at 0, one killed worker is one too many: a RuntimeError naming the step,
    and the model left as it was before that step (here: untouched)."""
    import dask

    flag = tmp_path / "kill-once"
    flag.touch()
    a, x, lengths, y = training_problem()
    before = {k: v.copy() for k, v in a.parameters().items()}
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     silence_logs=50) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        with pytest.raises(RuntimeError, match=r"killed its workers at epoch 0 step 0 more often than Dask retries"):
            rdask.fit(client, a, x, y, lengths=lengths, optimizer=nn.Adam(a, lr=0.01),
                      **{**FIT, "loss": KillWorkerOnce(str(flag))})
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, before[name])


def test_unaligned_chunks_are_copied_not_refused():
    """A worker may receive a chunk whose buffer starts at an odd byte (distributed's deserialisation gave an
    unaligned lengths chunk, once in a few runs): it runs, the layers' argument checks copying it for the
    kernels, which once refused it ('lengths must be C-contiguous and aligned')."""
    from rnnfast._engine_common import spec_ref
    from rnnfast.dask._predict import _block

    model = MODELS["sequential-many-to-one"][0]()
    x = inputs("sequential-many-to-one")
    lengths = np.random.default_rng(6).integers(1, T + 1, size=N)

    def odd(a: np.ndarray) -> np.ndarray:
        raw = np.frombuffer(bytearray(a.nbytes + 1), dtype=np.uint8)[1:].view(a.dtype).reshape(a.shape)
        raw[...] = a
        assert not raw.flags.aligned
        return raw

    out = _block(spec_ref(model_spec(model)), odd(x), odd(lengths), 4)  # batches: slices of the chunk
    np.testing.assert_array_equal(out, model.predict(x, lengths=lengths))
