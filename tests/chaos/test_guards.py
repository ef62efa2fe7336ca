"""Deletes under doubt, with the whole operator (in-process shard hosts, fast): docs/design.md §4.2.

* A source outage (the operator's own cluster, push mode), with a compaction while it is
  down and failing lists when it returns, never causes a destination delete.
* A relist that would remove most owned objects (the source namespace emptied while the
  syncer was paused) trips the delete-storm guard: KRMSyncer Degraded=True
  DeleteGuardTripped with a Warning Event, and nothing is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ray_syncer_testkit import start_in_thread

from ray_syncer.engine.options import EngineOptions
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.reconciler import KRMSYNCER_RES
from ray_syncer.operator.serve import serve
from tests.badinput.world import (
    CM,
    cm_rule,
    dest_ref,
    ensure_ns,
    get_or_none,
    install_crd,
    permissive_crd,
    put_cm,
    put_secret,
    put_syncer,
    syncer_obj,
    wait_condition,
    wait_for,
    wait_warning,
)

NS = "guarded"


@contextlib.asynccontextmanager
async def _world() -> AsyncIterator[tuple[Any, Any, KubeClient, KubeClient]]:
    src, dst = start_in_thread(name="source"), start_in_thread(name="destination")
    sc = KubeClient(load_kubeconfig_text(src.kubeconfig()))
    dc = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
    options = OperatorOptions(
        namespace=NS, metrics_port=0, metrics_host="127.0.0.1", cluster_name="source",
        tick_s=0.3, discovery_ttl_s=1.0, probe_ttl_s=1.0,
        engine_options=EngineOptions(backoff_base_s=0.05, backoff_max_s=0.5, retry_base_s=0.05,
                                     retry_max_s=0.5, delete_guard_fraction=0.5,
                                     delete_guard_min=5),
    )
    stop = asyncio.Event()
    task: asyncio.Task[Any] | None = None
    try:
        await install_crd(sc, permissive_crd())
        for c in (sc, dc):
            await ensure_ns(c, NS)
        await put_secret(sc, NS, "dest", {"kubeconfig": dst.kubeconfig()})
        task = asyncio.create_task(serve(
            options, backend=SupervisorCore(LocalDriver()),
            own_config=load_kubeconfig_text(src.kubeconfig()), stop=stop,
        ))
        yield src, dst, sc, dc
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        await sc.close()
        await dc.close()
        src.stop()
        dst.stop()


async def _all_there(dc: KubeClient, names: list[str]) -> bool:
    return all([await get_or_none(dc, CM, NS, n) for n in names])


def _deletes(dst: Any) -> list[str]:
    return [f"{r.method} {r.path}" for r in list(dst.request_log) if r.method == "DELETE"]


@pytest.mark.timeout(90)
async def test_source_outage_never_causes_destination_deletes() -> None:
    async with _world() as (src, dst, sc, dc):
        names = [f"c{i}" for i in range(8)]
        for n in names:
            await put_cm(sc, NS, n, {"v": "1"})
        await put_syncer(sc, syncer_obj(NS, "s", {"rules": [cm_rule(NS)], "destination": dest_ref()}))
        await wait_for(lambda: _all_there(dc, names), what="initial sync")
        # The source goes away; its event window is compacted meanwhile (410 on return), and
        # when it comes back its first answers are errors (lists fail half-way).
        await asyncio.to_thread(src.faults.outage, True)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(src.faults.compact)
        src.faults.error_codes, src.faults.error_rate = [500, 503], 0.6
        await asyncio.to_thread(src.faults.outage, False)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(src.faults.reset)
        await put_cm(sc, NS, "c0", {"v": "after"})

        async def updated() -> bool:
            got = await get_or_none(dc, CM, NS, "c0")
            return bool(got and got["data"] == {"v": "after"})

        await wait_for(updated, timeout=15, what="a change after the outage")
        assert await _all_there(dc, names)
        assert _deletes(dst) == []


@pytest.mark.timeout(90)
async def test_relist_that_would_remove_most_objects_trips_the_guard() -> None:
    async with _world() as (_src, dst, sc, dc):
        names = [f"c{i}" for i in range(20)]
        for n in names:
            await put_cm(sc, NS, n, {"v": "1"})
        syncer = syncer_obj(NS, "s", {"rules": [cm_rule(NS)], "destination": dest_ref()})
        await put_syncer(sc, syncer)
        await wait_for(lambda: _all_there(dc, names), what="initial sync")
        # Paused; meanwhile 15 of 20 source objects vanish; resumed: the relist sees 5 of 20.
        await sc.patch(KRMSYNCER_RES, namespace=NS, name="s", body={"spec": {"suspend": True}},
                       content_type="application/merge-patch+json")
        await wait_condition(sc, NS, "s", "Suspended", "True", "Suspended")
        for n in names[:15]:
            await sc.delete(CM, namespace=NS, name=n)
        await sc.patch(KRMSYNCER_RES, namespace=NS, name="s", body={"spec": {"suspend": False}},
                       content_type="application/merge-patch+json")
        degraded = await wait_condition(sc, NS, "s", "Degraded", "True", "DeleteGuardTripped")
        assert "delete-storm guard tripped: a relist would delete 15 of 20 owned objects" in (
            degraded["message"]
        ), degraded
        await wait_warning(sc, NS, "s", "DeleteGuardTripped")
        await asyncio.sleep(1.0)
        assert await _all_there(dc, names)
        assert _deletes(dst) == []


@pytest.mark.timeout(90)
async def test_pull_mode_active_cluster_dying_never_deletes_on_the_standby() -> None:
    """Pull mode: the operator runs in the standby; the active (source) dies, comes back empty-
    handed for a while (500s), and nothing on the standby is deleted."""
    src, dst = start_in_thread(name="active"), start_in_thread(name="standby")
    sc = KubeClient(load_kubeconfig_text(src.kubeconfig()))
    dc = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
    stop = asyncio.Event()
    task: asyncio.Task[Any] | None = None
    try:
        await install_crd(dc, permissive_crd())
        for c in (sc, dc):
            await ensure_ns(c, NS)
        await put_secret(dc, NS, "active", {"kubeconfig": src.kubeconfig()})
        names = [f"c{i}" for i in range(6)]
        for n in names:
            await put_cm(sc, NS, n, {"v": "1"})
        options = OperatorOptions(
            namespace=NS, metrics_port=0, metrics_host="127.0.0.1", cluster_name="standby",
            tick_s=0.3, discovery_ttl_s=1.0, probe_ttl_s=1.0,
            engine_options=EngineOptions(backoff_base_s=0.05, backoff_max_s=0.5,
                                         retry_base_s=0.05, retry_max_s=0.5),
        )
        task = asyncio.create_task(serve(
            options, backend=SupervisorCore(LocalDriver()),
            own_config=load_kubeconfig_text(dst.kubeconfig()), stop=stop,
        ))
        await put_syncer(dc, syncer_obj(NS, "s", {
            "mode": "pull", "rules": [cm_rule(NS)], "destination": dest_ref("active")}))
        await wait_for(lambda: _all_there(dc, names), what="initial pull")
        await asyncio.to_thread(src.faults.outage, True)
        await wait_condition(dc, NS, "s", "DestinationReachable", "False", "Unreachable")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(src.faults.compact)
        src.faults.error_codes, src.faults.error_rate = [500], 0.6
        await asyncio.to_thread(src.faults.outage, False)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(src.faults.reset)
        await put_cm(sc, NS, "c1", {"v": "after"})

        async def updated() -> bool:
            got = await get_or_none(dc, CM, NS, "c1")
            return bool(got and got["data"] == {"v": "after"})

        await wait_for(updated, timeout=15, what="a change after the active came back")
        assert await _all_there(dc, names)
        assert _deletes(dst) == []
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        await sc.close()
        await dc.close()
        src.stop()
        dst.stop()
