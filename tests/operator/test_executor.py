"""The supervisor loop without Ray: hosts run fake shards; crashes, restarts, re-attachment."""

from __future__ import annotations

import asyncio

from ray_syncer.engine.spec import ShardSpec
from ray_syncer.fleet.host import HostCore, HostReport
from ray_syncer.fleet.plan import DesiredShard
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore

from .fakes import ShardFactory


def want(*namespaces: str, revision: str = "r1", dest: str = "dest-A") -> dict[str, DesiredShard]:
    out = {}
    for ns in namespaces:
        spec = ShardSpec("team", "s", "", "v1", "ConfigMap", source_namespace=ns)
        out[spec.shard_id] = DesiredShard(spec, revision, source="src", dest=dest)
    return out


def make(shards_per_host: int = 1) -> tuple[SupervisorCore, LocalDriver, ShardFactory]:
    factory = ShardFactory()
    driver = LocalDriver(shard_factory=factory, client_factory=factory.client)
    return SupervisorCore(driver, shards_per_host=shards_per_host), driver, factory


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_apply_starts_reports_and_stops_redundant_first() -> None:
    core, driver, factory = make()
    await core.apply(want("a", "b"))
    await settle()
    report = await core.reconcile()
    assert sorted(report.health) == ["team/s/core/ConfigMap/a", "team/s/core/ConfigMap/b"]
    assert report.actions == []
    factory.log.clear()
    report = await core.apply(want("b", "c"))
    await settle()
    assert factory.log[0] == "stop team/s/core/ConfigMap/a"
    assert "run team/s/core/ConfigMap/c r1" in factory.log
    assert sorted(driver.hosts) == ["team/s/core/ConfigMap/b", "team/s/core/ConfigMap/c"]


async def test_crashed_shard_is_restarted_by_the_next_pass() -> None:
    core, _driver, factory = make()
    await core.apply(want("a"))
    await settle()
    first = factory.shards["team/s/core/ConfigMap/a"]
    first.crash(RuntimeError("boom"))
    await settle()
    report = await core.reconcile()
    assert report.failed == ["team/s/core/ConfigMap/a"]
    assert report.health["team/s/core/ConfigMap/a"].last_error.startswith("shard task crashed")
    await settle()
    second = factory.shards["team/s/core/ConfigMap/a"]
    assert second is not first and second.running
    assert (await core.reconcile()).failed == []


async def test_credential_change_restarts_with_new_clients_and_closes_old() -> None:
    core, _driver, factory = make(shards_per_host=10)
    await core.apply(want("a", "b"))
    await settle()
    old_dest = factory.shards["team/s/core/ConfigMap/a"].dest
    # Shards of one syncer in one host share one destination client.
    assert factory.shards["team/s/core/ConfigMap/b"].dest is old_dest
    await core.apply(want("a", "b", revision="r2", dest="dest-B"))
    await settle()
    new = factory.shards["team/s/core/ConfigMap/a"]
    assert new.dest.config == "dest-B" and new.desired.revision == "r2"
    assert old_dest.closed


async def test_a_restarted_supervisor_reattaches_and_duplicates_nothing() -> None:
    core, driver, factory = make(shards_per_host=2)
    await core.apply(want("a", "b", "c"))
    await settle()
    hosts_before = {n: h.shard_ids() for n, h in driver.hosts.items()}
    runs_before = len([x for x in factory.log if x.startswith("run")])
    # A new supervisor over the same hosts (what a Ray restart of the actor gives).
    fresh = SupervisorCore(driver, shards_per_host=2)
    report = await fresh.reconcile()  # desired unknown: observe only
    assert report.actions == [] and not report.desired_known
    assert sorted(report.health) == sorted(want("a", "b", "c"))
    report = await fresh.apply(want("a", "b", "c"))
    assert report.actions == []
    assert {n: h.shard_ids() for n, h in driver.hosts.items()} == hosts_before
    assert len([x for x in factory.log if x.startswith("run")]) == runs_before


async def test_host_start_is_idempotent_and_shutdown_stops_all() -> None:
    factory = ShardFactory()
    host = HostCore("h", "team/s", shard_factory=factory, client_factory=factory.client)
    (d,) = want("a").values()
    assert await host.start_shard(d) is True
    await settle()
    assert await host.start_shard(d) is False
    core, driver, factory2 = make()
    await core.apply(want("a", "b"))
    await settle()
    assert await core.shutdown() == 2
    assert driver.hosts == {}
    assert all(c.closed for c in factory2.clients)
    await host.stop_all()


class Silent:
    """A driver whose hosts stop answering on demand (their node was lost)."""

    def __init__(self, inner: LocalDriver) -> None:
        self.inner = inner
        self.dead: set[str] = set()

    async def list_hosts(self) -> list[str]:
        return await self.inner.list_hosts()

    async def report(self, name: str) -> HostReport:
        if name in self.dead:
            await asyncio.sleep(3600)
        return await self.inner.report(name)

    async def start(self, name: str, desired: DesiredShard, planned: tuple[str, ...] = ()) -> None:
        await self.inner.start(name, desired, planned)

    async def stop(self, name: str, shard_id: str) -> None:
        await self.inner.stop(name, shard_id)

    async def remove(self, name: str) -> None:
        await self.inner.remove(name)


async def test_hosts_are_labelled_with_their_planned_shards_and_a_silent_host_loses_them() -> None:
    factory = ShardFactory()
    inner = LocalDriver(shard_factory=factory, client_factory=factory.client)
    driver = Silent(inner)
    core = SupervisorCore(driver, shards_per_host=2, call_timeout_s=0.2)
    await core.apply(want("a", "b", "c"))
    await settle()
    labels = {n: h.label.shards for n, h in inner.hosts.items()}
    assert labels == {
        "host/0": ("team/s/core/ConfigMap/a", "team/s/core/ConfigMap/b"),
        "host/1": ("team/s/core/ConfigMap/c",),
    }
    await core.reconcile()  # seen running once
    driver.dead.add("host/0")
    report = await core.reconcile()
    assert report.unreachable == ["host/0"]
    assert sorted(report.lost) == ["team/s/core/ConfigMap/a", "team/s/core/ConfigMap/b"]
    assert report.actions == []  # nothing started twice while it is silent
