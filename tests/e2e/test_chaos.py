"""Crashes and restarts: shard actor killed, supervisor killed, operator restarted."""

from __future__ import annotations

import asyncio

from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.kube.client import KubeClient

from .harness import (
    CM,
    WRITE_METHODS,
    Clusters,
    ensure_namespace,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    shard_actors,
    unique,
    wait_condition,
    wait_for,
)


async def _contents(c: KubeClient, ns: str) -> dict[str, dict[str, str]]:
    items, _ = await c.list_all(CM, namespace=ns)
    return {
        o["metadata"]["name"]: dict(o.get("data") or {})
        for o in items
        if o["metadata"]["name"] != "kube-root-ca.crt"
    }


async def _converged(src: KubeClient, dst: KubeClient, ns: str) -> bool:
    return await _contents(src, ns) == await _contents(dst, ns)


async def _setup(clusters: Clusters, src: KubeClient, dst: KubeClient, *namespaces: str) -> None:
    for c in (src, dst):
        for ns in namespaces:
            await ensure_namespace(c, ns)
    await put_secret(src, namespaces[0], "dest-kubeconfig", clusters.dest.kubeconfig)


def cm_rule(*ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": list(ns)}


async def test_killed_shard_actor_restarts_and_converges_without_lost_updates(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("kill")
    await _setup(clusters, src, dst, home)
    shard = f"{home}/s/core/ConfigMap/{home}"
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)]))
        await wait_condition(src, home, "s", "Ready", "True", reason="Running")
        pid = fleet_testing.actor_pid(shard)

        async def writer() -> None:
            for i in range(40):
                await put_cm(src, home, "counter", {"n": str(i)})
                await put_cm(src, home, f"obj-{i % 7}", {"i": str(i)})
                await asyncio.sleep(0.02)

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.3)
        fleet_testing.kill_actor(shard, restart=True)
        await task
        await wait_for(
            lambda: _converged(src, dst, home), timeout=30, what="converged after the crash"
        )
        assert (await _contents(dst, home))["counter"] == {"n": "39"}
        assert fleet_testing.actor_pid(shard) != pid, "the shard actor was not restarted"
        # Still live after the restart.
        await put_cm(src, home, "after", {"x": "1"})
        await wait_for(
            lambda: _converged(src, dst, home), timeout=15, what="syncing after the restart"
        )


async def test_killed_supervisor_reattaches_without_duplicates(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, a, b = unique("sup"), unique("sa"), unique("sb")
    await _setup(clusters, src, dst, home, a, b)
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(a, b)]))
        await wait_condition(src, home, "s", "Ready", "True", reason="Running")
        before = {name: fleet_testing.actor_pid(name) for name in shard_actors(home)}
        assert len(before) == 2
        supervisor_pid = fleet_testing.actor_pid("supervisor")
        fleet_testing.kill_actor("supervisor", restart=True)
        await wait_for(
            lambda: _restarted("supervisor", supervisor_pid), timeout=30, what="supervisor restart"
        )
        # Work continues, and a change after the restart is applied without duplicating anything.
        await put_cm(src, a, "post-restart", {"k": "v"})
        await wait_for(
            lambda: _converged(src, dst, a), timeout=15, what="sync after supervisor restart"
        )
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(a)]))
        await wait_for(
            lambda: _names(home, 1), timeout=20, what="b's shard stopped by the new supervisor"
        )
        for _ in range(6):  # several supervisor passes
            await asyncio.sleep(0.5)
            names = shard_actors(home)
            assert names == [f"{home}/s/core/ConfigMap/{a}"]
        assert fleet_testing.actor_pid(names[0]) == before[names[0]], "a live shard was restarted"


async def _restarted(name: str, old_pid: int) -> bool:
    try:
        return fleet_testing.actor_pid(name) != old_pid
    except Exception:
        return False


async def _names(prefix: str, n: int) -> bool:
    return len(shard_actors(prefix)) == n


async def test_operator_restart_over_unchanged_objects_makes_zero_writes(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    clusters.dest.require_log()
    home = unique("noop")
    await _setup(clusters, src, dst, home)
    for i in range(5):
        await put_cm(src, home, f"c{i}", {"i": str(i)})
    syncer = krmsyncer(home, "s", rules=[cm_rule(home)])
    async with operator(clusters, namespace=home):
        await put_syncer(src, syncer)
        await wait_for(lambda: _converged(src, dst, home), what="initial sync")
        await wait_condition(src, home, "s", "Synced", "True")
    # A clean stop stopped the shards; a new operator relists everything.
    assert shard_actors(home) == []
    mark = clusters.dest.log_mark()
    async with operator(clusters, namespace=home) as op:
        await wait_for(lambda: _names(home, 1), what="shard back")
        await wait_for(lambda: _synced(op), timeout=30, what="restarted shard synced")
        await asyncio.sleep(1.0)
    log = await clusters.dest.requests(mark)
    writes = [
        (r.method, r.path)
        for r in log
        if r.method in WRITE_METHODS and f"/namespaces/{home}/" in r.path
    ]
    reads = [r for r in log if r.method == "GET" and f"/namespaces/{home}/configmaps" in r.path]
    assert reads, "the restarted shard did not relist the destination"
    assert writes == []


async def _synced(op: object) -> bool:
    report = op.reconciler.last_report  # type: ignore[attr-defined]
    return bool(report and report.health and all(h.synced for h in report.health.values()))


async def test_crashed_operator_is_replaced_and_reattaches_to_running_shards(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("crash")
    await _setup(clusters, src, dst, home)
    shard = f"{home}/s/core/ConfigMap/{home}"
    # The first operator "crashes": it exits without stopping anything.
    async with operator(clusters, namespace=home, stop_shards_on_exit=False):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)]))
        await wait_condition(src, home, "s", "Ready", "True", reason="Running")
    pid, supervisor = fleet_testing.actor_pid(shard), fleet_testing.actor_pid("supervisor")
    await put_cm(src, home, "while-away", {"k": "v"})  # the shard keeps syncing without an operator
    await wait_for(lambda: _converged(src, dst, home), timeout=15, what="sync with no operator")
    async with operator(clusters, namespace=home) as op:
        await wait_for(lambda: _synced(op), timeout=20, what="re-attached")
        assert fleet_testing.actor_pid(shard) == pid and fleet_testing.actor_pid("supervisor") == supervisor
        assert shard_actors(home) == [shard]
        assert op.reconciler.last_report is not None
        assert op.reconciler.last_report.actions == []
