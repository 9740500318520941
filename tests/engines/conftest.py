"""Fixtures of the engines' tests (tests/engines/). Each test module skips as a whole where its engine is not
installed (pytest.importorskip at its top), so the main suite runs without Dask or Ray."""

from __future__ import annotations

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
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
