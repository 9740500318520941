"""Fixtures of the engines' tests (tests/engines/). Each test module skips as a whole where its engine is not
installed (pytest.importorskip at its top), so the main suite runs without Dask or Ray."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def dask_client():
    """A real local cluster: two worker processes of one thread each, as the issue asks."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        yield client


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray of two CPUs for the module (started once: about 3 s), shut down after it."""
    ray = pytest.importorskip("ray")
    import rnnfast

    # Ray's workers start from the environment, not from this process's sys.path: give them the directories
    # of rnnfast (a source checkout's python/ or site-packages) and of the tests' helpers.
    paths = [os.path.dirname(os.path.dirname(rnnfast.__file__)), os.path.dirname(os.path.dirname(__file__))]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}})
    try:
        yield ray
    finally:
        ray.shutdown()
