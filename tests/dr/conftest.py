"""Fixtures for the DR suite: two clusters (real via the e2e kubeconfig variables, else in-memory).

The operator runs in-process with the supervisor's ``LocalDriver`` (no Ray):
the failover and fencing behaviour under test lives in the reconciler and the
engine, which are the same code the Ray actors run. One operator per cluster,
each watching only the test's namespace, like two real installations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ray_syncer.api.crd import load_crd
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import ApiError, KubeClient
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, Reconciler
from ray_syncer.operator.serve import serve
from tests import cleanup
from tests.e2e.harness import Cluster, Clusters, fast_engine, substrate_clusters, wait_for


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
def dr_clusters(substrate: str, request: pytest.FixtureRequest) -> Iterator[Clusters]:
    with substrate_clusters(substrate, request, ("alpha", "beta")) as given:
        asyncio.run(_install_crd(given.source))
        asyncio.run(_install_crd(given.dest))
        yield given


@pytest.fixture
async def ca(dr_clusters: Clusters) -> AsyncIterator[KubeClient]:
    async with dr_clusters.source.client() as c:
        yield c


@pytest.fixture
async def cb(dr_clusters: Clusters) -> AsyncIterator[KubeClient]:
    async with dr_clusters.dest.client() as c:
        yield c


@contextlib.asynccontextmanager
async def local_operator(
    cluster: Cluster, *, namespace: str, tick_s: float = 0.3, probe_ttl_s: float = 1.0
) -> AsyncIterator[Reconciler]:
    """``ray-syncer run`` for one cluster, in-process, shards in this event loop."""
    options = OperatorOptions(
        namespace=namespace,
        metrics_port=0,
        metrics_host="127.0.0.1",
        cluster_name=cluster.name,
        tick_s=tick_s,
        discovery_ttl_s=2.0,
        probe_ttl_s=probe_ttl_s,
        engine_options=fast_engine(),
    )
    backend = SupervisorCore(LocalDriver())
    stop = asyncio.Event()
    holder: dict[str, Any] = {}

    def started(reconciler: Reconciler, http: Any) -> None:
        holder["r"] = reconciler

    task = asyncio.create_task(
        serve(options, backend=backend, own_config=cluster.config, stop=stop, on_started=started)
    )

    async def ready() -> bool:
        if task.done():
            task.result()
        return "r" in holder

    await wait_for(ready, timeout=20, what=f"operator on {cluster.name}")
    try:
        yield holder["r"]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
