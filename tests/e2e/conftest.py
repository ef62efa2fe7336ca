"""Session fixtures for the end-to-end suite: one Ray for all tests, two clusters, the CRD."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from ray_syncer.api.crd import load_crd
from ray_syncer.fleet import local
from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.kube.client import ApiError, KubeClient
from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES
from tests import cleanup

from .harness import Cluster, Clusters, substrate_clusters


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = local.connect(
        None,
        num_cpus=4,  # logical: actors declare 0.05 CPU each; the driver needs none
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 1024 * 1024,
    )
    fleet_testing.kill_all()
    yield
    fleet_testing.kill_all()
    if started:
        local.disconnect()


async def _install_crd(cluster: Cluster) -> None:
    async with cluster.client() as c:
        try:
            # Labelled: if this run installs it, the run's end removes it (tests/cleanup.py).
            crd = load_crd()
            crd["metadata"] = cleanup.labelled(crd["metadata"])
            await c.create(CRD_RES, crd)
        except ApiError as exc:
            if not exc.conflict:
                raise
        for _ in range(100):
            c.invalidate_discovery()
            if await c.resolve(KRMSYNCER_RES.group, KRMSYNCER_RES.version, "KRMSyncer"):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("KRMSyncer CRD not served")


@pytest.fixture(scope="session")
def clusters(ray_session: None, substrate: str, request: pytest.FixtureRequest) -> Iterator[Clusters]:
    with substrate_clusters(substrate, request, ("source", "destination")) as given:
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
