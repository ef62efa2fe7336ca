"""The multi-node suite's world: one Ray of several nodes on this machine, two in-memory clusters.

The Ray is ``ray_syncer.fleet_testing.LocalCluster`` (Ray's own ``ray.cluster_utils.Cluster``):
a head with no CPUs, like the deployment's, and worker nodes of one logical CPU each, every
node its own raylet. Shard hosts ask for 0.05 CPU, so two real cores carry it.

This process can hold one Ray connection at a time, and the rest of the suite keeps a
one-node session Ray connected to the end (tests/e2e/conftest.py). So these tests are moved
to the front of the run, and the package fixture disconnects and removes every node when
they are done.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from ray_syncer.fleet import local
from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.kube.client import KubeClient
from tests.e2e.conftest import _install_crd
from tests.e2e.harness import Clusters, substrate_clusters

WORKERS = 3
HERE = os.path.dirname(__file__)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [i for i in items if str(i.fspath).startswith(HERE)]
    for item in mine:
        item.add_marker(pytest.mark.ray)
    if mine and len(mine) < len(items):
        items[:] = mine + [i for i in items if not str(i.fspath).startswith(HERE)]


class Nodes:
    """The multi-node Ray, and the few things tests do with its nodes."""

    def __init__(self, cluster: fleet_testing.LocalCluster) -> None:
        self.cluster = cluster

    @property
    def head(self) -> str:
        return self.cluster.head_id

    def workers(self) -> list[str]:
        return self.cluster.workers()

    # Starting a node installs signal handlers: it runs in the main thread (a second or two).
    async def ensure_workers(self, n: int) -> None:
        while len(self.cluster.workers()) < n:
            self.cluster.add_worker(1)

    async def add_worker(self, **resources: float) -> str:
        node = self.cluster.add_worker(1, dict(resources))
        # Spread scheduling only picks nodes the scheduler has seen resources for.
        while node not in await asyncio.to_thread(self.cluster.alive):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        return node


@pytest.fixture(scope="package")
def ray_nodes() -> Iterator[Nodes]:
    if local.is_connected():
        pytest.fail("tests/distributed must run before any test that connects Ray in-process")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(prefix="rs-nodes-", dir="/tmp")  # short: Ray's socket paths
    # Metrics reach each node's export port every second (Ray's default is 10 s).
    cluster = fleet_testing.LocalCluster(
        temp, dashboard=True, system_config={"metrics_report_interval_ms": 1000}
    )
    try:
        for _ in range(WORKERS):
            cluster.add_worker(num_cpus=1)
        local.connect(cluster.address, log_to_driver=False)
        fleet_testing.kill_all()
        yield Nodes(cluster)
    finally:
        if local.is_connected():
            fleet_testing.kill_all()
            local.disconnect()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="package")
def clusters(ray_nodes: Nodes, request: pytest.FixtureRequest) -> Iterator[Clusters]:
    with substrate_clusters("memory", request, ("source", "destination")) as given:
        asyncio.run(_install_crd(given.source))
        asyncio.run(_install_crd(given.dest))
        yield given


@pytest.fixture
async def src(clusters: Clusters) -> KubeClient:
    async with clusters.source.client() as c:
        yield c  # type: ignore[misc]


@pytest.fixture
async def dst(clusters: Clusters) -> KubeClient:
    async with clusters.dest.client() as c:
        yield c  # type: ignore[misc]
