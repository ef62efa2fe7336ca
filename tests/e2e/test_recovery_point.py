"""The recovery point end to end, on both substrates: it grows when the standby falls behind,
whatever the cause, and a target it misses is told (condition, Event, metric), then recovers.

* A source watch that stops delivering while its connection stays open (what users of other
  syncers report most): the shard hosts run in this process, and the source's clients are
  wrapped so that the test can hold every watch event back (``StallableClients``).
* A destination that refuses writes: the kubeconfig's identity may only read there (403).

The source keeps changing in both, as an application would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import KubeClient, ResourceInfo
from ray_syncer.kube.config import ClusterConfig
from ray_syncer.operator.status import condition

from .harness import (
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    syncer_status,
    unique,
    wait_condition,
    wait_for,
)

EVENTS = ResourceInfo("", "v1", "Event", "events", True)
TARGET = "4s"


class StallableClients:
    """Client factory for in-process hosts: clients of the source cluster whose watches the
    test can stall (events held back, the connection kept open)."""

    def __init__(self, source: ClusterConfig) -> None:
        self.source_server = source.server
        self.stalled = False

    def __call__(self, config: ClusterConfig) -> Any:
        client = KubeClient(config)
        return _Stallable(client, self) if config.server == self.source_server else client


class _Stallable:
    def __init__(self, inner: KubeClient, switch: StallableClients) -> None:
        self._inner = inner
        self._switch = switch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        return self._held(self._inner.watch(*args, **kwargs))

    async def _held(self, stream: Any) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.aclosing(stream):
            async for event in stream:
                while self._switch.stalled:
                    await asyncio.sleep(0.05)
                yield event


def cm_rule(ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}


async def _churn(src: KubeClient, ns: str, values: list[int]) -> None:
    """The application: a ConfigMap updated every 0.3 s."""
    n = 0
    while True:
        n += 1
        await put_cm(src, ns, "app", {"n": str(n)})
        values.append(n)
        await asyncio.sleep(0.3)


async def _events(src: KubeClient, ns: str, reason: str) -> list[dict[str, Any]]:
    items, _ = await src.list_all(EVENTS, namespace=ns)
    return [e for e in items if e.get("reason") == reason]


def _metric(port: int, syncer: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = [float(m.group(1)) for m in re.finditer(
        rf'^krmsyncer_rpo_seconds{{[^}}]*syncer="{re.escape(syncer)}"[^}}]*}} (\S+)$', text, re.M)]
    return max(values) if values else None


async def test_a_stalled_watch_makes_the_recovery_point_miss_its_target_and_recover(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("rpo")
    for c in (src, dst):
        await ensure_namespace(c, home)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    stall = StallableClients(clusters.source.config)
    fleet = SupervisorCore(LocalDriver(client_factory=stall), call_timeout_s=10.0)
    values: list[int] = []
    async with operator(clusters, namespace=home, backend=fleet) as op:
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)], rpoTarget=TARGET))
        writer = asyncio.create_task(_churn(src, home, values))
        try:
            st = await wait_condition(src, home, "s", "RecoveryPointObjective", "True",
                                      reason="WithinTarget", timeout=60)
            assert st["rpoTargetSeconds"] == 4 and st["recoveryPointSeconds"] <= 4
            stall.stalled = True  # the watch stops delivering; its connection stays open
            st = await wait_condition(src, home, "s", "RecoveryPointObjective", "False",
                                      reason="TargetMissed", timeout=60)
            assert st["recoveryPointSeconds"] > 4
            assert st["shards"][0]["recoveryPointSeconds"] > 4
            assert await wait_for(lambda: _events(src, home, "RecoveryPointObjectiveMissed"),
                                  what="the Warning Event", timeout=30)
            # The operator serves /metrics on this event loop: fetch from a thread.
            metric = await asyncio.to_thread(_metric, op.http.port, f"{home}/s")
            assert metric is not None and metric > 4, metric
            # Meanwhile the pass-through lag of pending changes says nothing is wrong.
            assert st["shards"][0]["lagSeconds"] < 4
            stall.stalled = False
            await wait_condition(src, home, "s", "RecoveryPointObjective", "True",
                                 reason="WithinTarget", timeout=60)
            assert await wait_for(lambda: _events(src, home, "RecoveryPointObjectiveMet"),
                                  what="the Normal Event", timeout=30)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        last = values[-1]
        await wait_for(lambda: _has(dst, home, last), what="the last change on the standby",
                       timeout=60)


async def _has(dst: KubeClient, ns: str, n: int) -> bool:
    return await cm_data(dst, ns, "app") == {"n": str(n)}


async def test_a_destination_that_refuses_writes_makes_the_recovery_point_grow(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("rpo-ro")
    for c in (src, dst):
        await ensure_namespace(c, home)
    reader = await clusters.dest.add_user(f"{home}-reader", read_only=True)
    await put_secret(src, home, "dest-kubeconfig", reader.kubeconfig)
    values: list[int] = []
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)], rpoTarget=TARGET))
        writer = asyncio.create_task(_churn(src, home, values))
        try:
            st = await wait_condition(src, home, "s", "RecoveryPointObjective", "False",
                                      reason="TargetMissed", timeout=90)
            first = st["recoveryPointSeconds"]

            async def grew() -> bool:
                later = await syncer_status(src, home, "s")
                return later.get("recoveryPointSeconds", 0) > first + 5

            await wait_for(grew, what="the recovery point growing", timeout=90, interval=1)
            degraded = condition(await syncer_status(src, home, "s"), "Degraded")
            assert degraded is not None and degraded["status"] == "True"
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
    assert await cm_data(dst, home, "app") is None  # nothing was written there
