"""Helpers of the multi-node tests: a KRMSyncer over N namespaces, where its hosts run, churn."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from ray_syncer_testkit.http import RequestRecord

from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.fleet.plan import SUPERVISOR_NAME
from ray_syncer.kube.client import ApiError, KubeClient
from tests.e2e.harness import (
    CM,
    Clusters,
    Operator,
    ensure_namespace,
    put_cm,
    put_secret,
    unique,
)


@dataclass
class Fleet:
    """One KRMSyncer ``s`` in ``home`` syncing the ConfigMaps of ``spaces``, one shard each."""

    home: str
    spaces: list[str]

    @property
    def shard_ids(self) -> list[str]:
        return sorted(f"{self.home}/s/core/ConfigMap/{ns}" for ns in self.spaces)  # syncer "s"

    def rule(self) -> dict[str, object]:
        return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": self.spaces}


async def fleet(clusters: Clusters, src: KubeClient, dst: KubeClient, prefix: str, n: int,
                *, objects: int = 2, names: tuple[str, list[str]] | None = None) -> Fleet:  # fmt: skip
    """``n`` namespaces of ``objects`` ConfigMaps each (unique names, unless ``names`` are given)."""
    f = Fleet(*names) if names else Fleet(unique(prefix), [unique(f"{prefix}{i}") for i in range(n)])
    for c in (src, dst):
        for ns in (f.home, *f.spaces):
            await ensure_namespace(c, ns)
    await put_secret(src, f.home, "dest-kubeconfig", clusters.dest.kubeconfig)
    for ns in f.spaces:
        for i in range(objects):
            await put_cm(src, ns, f"obj-{i}", {"v": "0"})
    return f


async def contents(c: KubeClient, namespaces: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    out = {}
    for ns in namespaces:
        items, _ = await c.list_all(CM, namespace=ns)
        for o in items:
            if o["metadata"]["name"] != "kube-root-ca.crt":
                out[(ns, o["metadata"]["name"])] = dict(o.get("data") or {})
    return out


async def differences(src: KubeClient, dst: KubeClient, namespaces: list[str]) -> list[str]:
    a, b = await contents(src, namespaces), await contents(dst, namespaces)
    return [f"{ns}/{name}: {a.get((ns, name))} != {b.get((ns, name))}"
            for ns, name in sorted(set(a) | set(b)) if a.get((ns, name)) != b.get((ns, name))]  # fmt: skip


async def placement(timeout: float = 60.0) -> dict[str, str]:
    """Every shard host actor -> the node it runs on."""
    names = [n for n in fleet_testing.named_actors() if n != SUPERVISOR_NAME]
    nodes = await asyncio.gather(
        *(asyncio.to_thread(fleet_testing.actor_node, n, timeout) for n in names)
    )
    return dict(zip(names, nodes, strict=True))


async def supervisor_node() -> str:
    return await asyncio.to_thread(fleet_testing.actor_node, SUPERVISOR_NAME)


async def all_running(op: Operator, shard_ids: list[str]) -> bool:
    """Every shard reported by a live host, listed and in sync (the supervisor's last pass)."""
    report = op.reconciler.last_report
    if report is None:
        return False
    return all(
        s in report.health and report.health[s].synced and s not in report.lost
        for s in shard_ids
    )


@dataclass
class Churn:
    """Source writes while something breaks: updates, creates and deletes, with the time of each."""

    src: KubeClient
    spaces: list[str]
    seed: int = 7
    writes: int = 0
    deletes: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event, rate: float = 20.0) -> None:
        rng = random.Random(self.seed)
        n = 0
        while not stop.is_set():
            ns, name = rng.choice(self.spaces), f"obj-{rng.randrange(4)}"
            roll = rng.random()
            if roll < 0.1:
                self.deletes.setdefault((ns, name), []).append(time.time())
                try:
                    await self.src.delete(CM, namespace=ns, name=name)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
            else:
                n += 1
                await put_cm(self.src, ns, name, {"v": str(n)})
            self.writes += 1
            await asyncio.sleep(1 / rate)

    def wrong_deletes(self, dest_log: list[RequestRecord]) -> list[str]:
        """Destination DELETEs of objects with no earlier source delete to justify them."""
        budget = {k: sorted(v) for k, v in self.deletes.items()}
        wrong = []
        for r in sorted((r for r in dest_log if r.method == "DELETE"), key=lambda r: r.time):
            parts = r.path.strip("/").split("/")
            if len(parts) < 2 or parts[-2] != "configmaps" or "namespaces" not in parts:
                continue
            ns, name = parts[parts.index("namespaces") + 1], parts[-1]
            if ns not in self.spaces:
                continue
            times = budget.get((ns, name), [])
            earlier = next((t for t in times if t <= r.time), None)
            if earlier is None:
                wrong.append(f"DELETE {ns}/{name} -> {r.status}")
            else:
                times.remove(earlier)
        return wrong
