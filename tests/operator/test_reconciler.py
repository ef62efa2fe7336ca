"""The reconciler without Ray: in-memory clusters, in-process hosts with fake shards.

What is asserted is what lands on the wire: status subresource writes, Events,
and which shards the supervisor core runs.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ray_syncer_testkit import ApiServer

from ray_syncer.api.crd import load_crd
from ray_syncer.api.status import parse_rfc3339, rfc3339
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import KubeClient, ResourceInfo
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, SECRET_RES, Reconciler, Settings
from ray_syncer.operator.status import condition

from .fakes import ShardFactory

NS = ResourceInfo("", "v1", "Namespace", "namespaces", False)
EVENTS = ResourceInfo("", "v1", "Event", "events", True)


class World:
    def __init__(self, source: ApiServer, dest: ApiServer, client: KubeClient) -> None:
        self.source, self.dest, self.client = source, dest, client
        self.stop = asyncio.Event()
        self.reconciler_task: asyncio.Task[None] | None = None
        self.volatile_s = 30.0  # refresh of changing numbers alone (the recovery point)
        self.restart()

    def restart(self) -> None:
        """A new operator process: nothing of the last one's memory is kept."""
        self.factory = ShardFactory()
        self.driver = LocalDriver(shard_factory=self.factory, client_factory=self.factory.client)
        self.core = SupervisorCore(self.driver)
        self.reconciler = Reconciler(
            self.client,
            load_kubeconfig_text(self.source.kubeconfig()),
            self.core,
            Settings(
                namespace="team",
                tick_s=0.05,
                debounce_s=0.01,
                probe_ttl_s=0.1,
                watch_crds=False,
                status_min_interval_s=0.1,
                status_volatile_interval_s=self.volatile_s,
            ),
        )

    async def status(self, name: str) -> dict[str, Any]:
        obj = await self.client.get(KRMSYNCER_RES, namespace="team", name=name)
        return dict(obj.get("status") or {})

    async def until(
        self, name: str, ctype: str, status: str, reason: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            st = await self.status(name)
            c = condition(st, ctype)
            if c and (c["status"], c["reason"]) == (status, reason):
                return st
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{name}: {ctype} never became {status}/{reason}: {await self.status(name)}"
        )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    source = await ApiServer.start(name="source")
    dest = await ApiServer.start(name="dest")
    client = KubeClient(load_kubeconfig_text(source.kubeconfig()))
    await client.create(CRD_RES, load_crd())
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    for _ in range(50):
        client.invalidate_discovery()
        if await client.resolve(KRMSYNCER_RES.group, KRMSYNCER_RES.version, "KRMSyncer"):
            break
        await asyncio.sleep(0.05)
    w = World(source, dest, client)
    w.reconciler_task = asyncio.create_task(w.reconciler.run(w.stop))
    yield w
    w.stop.set()
    await w.reconciler_task
    await w.core.shutdown()
    await client.close()
    await source.stop()
    await dest.stop()


async def put_secret(w: World, text: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "dest", "namespace": "team"},
        "data": {"kubeconfig": base64.b64encode(text.encode()).decode()},
    }
    await w.client.apply(SECRET_RES, body, field_manager="test")


async def put_syncer(w: World, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": "syncer.gkelabs.io/v1alpha1",
        "kind": "KRMSyncer",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {
            "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "dest"}}},
            "rules": [{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["team"]}],
            **spec,
        },
    }
    await w.client.apply(KRMSYNCER_RES, body, field_manager="test")


def status_writes(server: ApiServer) -> int:
    return sum(1 for r in server.request_log if r.method == "PATCH" and r.path.endswith("/status"))


async def test_status_is_written_on_change_only(world: World) -> None:
    await put_secret(world, world.dest.kubeconfig())
    await put_syncer(world, "s")
    await world.until("s", "Synced", "True", "Synced")
    settled = status_writes(world.source)
    # Many ticks later, nothing changed: no further status writes.
    passes = world.reconciler.passes
    await asyncio.sleep(0.6)
    assert world.reconciler.passes > passes + 5
    assert status_writes(world.source) == settled
    # A real change (suspend) is written.
    await put_syncer(world, "s", suspend=True)
    await world.until("s", "Suspended", "True", "Suspended")
    assert status_writes(world.source) > settled
    assert world.driver.hosts == {}


async def test_invalid_spec_is_reported_with_an_event_and_isolated(world: World) -> None:
    await put_secret(world, world.dest.kubeconfig())
    await put_syncer(
        world,
        "bad",
        destination={
            "clusterConfig": {"kubeConfigSecretRef": {"name": "dest", "namespace": "other"}}
        },
    )
    await put_syncer(world, "good")
    st = await world.until("bad", "Ready", "False", "InvalidSpec")
    assert "kubeConfigSecretRef.namespace" in condition(st, "Ready")["message"]  # type: ignore[index]
    await world.until("good", "Ready", "True", "Running")
    assert list(world.driver.hosts) == ["team/good/core/ConfigMap/team"]
    items, _ = await world.client.list_all(EVENTS, namespace="team")
    warnings = [e for e in items if e["type"] == "Warning" and e["involvedObject"]["name"] == "bad"]
    assert [e["reason"] for e in warnings] == ["InvalidSpec"]


async def test_a_failing_secret_read_keeps_running_shards(world: World) -> None:
    await put_secret(world, world.dest.kubeconfig())
    await put_syncer(world, "s")
    await world.until("s", "Ready", "True", "Running")
    runs = [x for x in world.factory.log if x.startswith("run")]
    # The Secret cannot be read for a while (500s): shards must not be stopped on doubt.
    world.reconciler.remotes.secret_changed()
    world.source.faults.match = lambda method, path: "/secrets/" in path
    world.source.faults.error_codes = [500]
    world.source.faults.error_rate = 1.0
    await world.until("s", "DestinationReachable", "False", "SecretUnavailable")
    assert list(world.driver.hosts) == ["team/s/core/ConfigMap/team"]
    assert not any(x.startswith("stop") for x in world.factory.log)
    world.source.faults.error_rate = 0.0
    await world.until("s", "Ready", "True", "Running")
    assert [x for x in world.factory.log if x.startswith("run")] == runs


async def test_deleted_secret_stops_shards_and_recovery_restarts_them(world: World) -> None:
    await put_secret(world, world.dest.kubeconfig())
    await put_syncer(world, "s")
    await world.until("s", "Ready", "True", "Running")
    await world.client.delete(SECRET_RES, namespace="team", name="dest")
    await world.until("s", "DestinationReachable", "False", "SecretNotFound")
    assert world.driver.hosts == {}
    await put_secret(world, world.dest.kubeconfig())
    await world.until("s", "Ready", "True", "Running")
    assert list(world.driver.hosts) == ["team/s/core/ConfigMap/team"]


async def _keep_current(w: World) -> None:
    """Every running fake shard reports itself current, as a healthy shard does."""
    while True:
        for shard in w.factory.shards.values():
            if shard.running:
                shard.current_at = time.time()
        await asyncio.sleep(0.05)


async def test_a_shard_that_is_not_running_ages_its_recovery_point(world: World) -> None:
    world.reconciler.settings.status_volatile_interval_s = 0.2
    await put_secret(world, world.dest.kubeconfig())
    await put_syncer(world, "s", rpoTarget="2s")
    current = asyncio.create_task(_keep_current(world))
    try:
        await world.until("s", "RecoveryPointObjective", "True", "WithinTarget")
    finally:
        current.cancel()
    # It crashes, and every shard started in its place never gets current: the last point
    # known stays where it was, and the recovery point grows past the target.
    (sid,) = world.factory.shards
    world.factory.shards[sid].crash(RuntimeError("boom"))
    st = await world.until("s", "RecoveryPointObjective", "False", "TargetMissed")
    assert st["recoveryPointSeconds"] > 2 and sid in condition(st, "RecoveryPointObjective")["message"]  # type: ignore[index]
    assert any(x.startswith(f"run {sid}") for x in world.factory.log[1:])  # restarted, yet behind


async def test_a_restarted_operator_counts_its_downtime(world: World) -> None:
    """The next operator starts from the recovery point the last one wrote: an hour in which
    no operator ran is an hour the standby may have missed."""
    world.volatile_s = world.reconciler.settings.status_volatile_interval_s = 0.2
    await put_secret(world, world.dest.kubeconfig())
    await put_syncer(world, "s", rpoTarget="10m")
    current = asyncio.create_task(_keep_current(world))
    try:
        st = await world.until("s", "RecoveryPointObjective", "True", "WithinTarget")
        assert parse_rfc3339(st["recoveryPointTime"]) > time.time() - 30
        # The operator stops; the last status it wrote is an hour old by now.
        world.stop.set()
        assert world.reconciler_task is not None
        await world.reconciler_task
        await world.core.shutdown()
        hour_ago = rfc3339(time.time() - 3600)
        await world.client.patch(KRMSYNCER_RES, namespace="team", name="s",
                                 body={"status": {"recoveryPointTime": hour_ago}},
                                 subresource="status")
        world.restart()
        world.stop.clear()
        world.reconciler_task = asyncio.create_task(world.reconciler.run(world.stop))
        current.cancel()  # the new shards are not current yet
        st = await world.until("s", "RecoveryPointObjective", "False", "TargetMissed")
        assert st["recoveryPointSeconds"] >= 3600
        current = asyncio.create_task(_keep_current(world))
        st = await world.until("s", "RecoveryPointObjective", "True", "WithinTarget")
        assert st["recoveryPointSeconds"] < 30
    finally:
        current.cancel()
