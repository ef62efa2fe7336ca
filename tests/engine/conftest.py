"""Two in-memory API servers (source, destination) spoken to over real HTTP, and shard helpers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from ray_syncer_testkit import ApiServer

from ray_syncer.engine.clock import Clock
from ray_syncer.engine.gate import WriteGate
from ray_syncer.engine.options import EngineOptions
from ray_syncer.engine.shard import Shard
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.metrics import ShardMetrics

FAST = EngineOptions(
    batch_size=50,
    max_in_flight=16,
    dest_qps=100_000,
    dest_burst=100_000,
    backoff_base_s=0.02,
    backoff_max_s=0.3,
    retry_base_s=0.02,
    retry_max_s=0.3,
    resync_period_s=3600,
    delete_guard_fraction=0.5,
    delete_guard_min=10,
    stop_timeout_s=2,
)

CM = ResourceInfo(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
SECRET = ResourceInfo(group="", version="v1", kind="Secret", plural="secrets", namespaced=True)
NS = ResourceInfo(group="", version="v1", kind="Namespace", plural="namespaces", namespaced=False)
WIDGET = ResourceInfo(
    group="example.com", version="v1", kind="Widget", plural="widgets", namespaced=True,
    has_status=True,
)

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                }},
            }
        ],
    },
}

_ids = itertools.count()


def spec_for(kind: str = "ConfigMap", **kw: Any) -> ShardSpec:
    group = kw.pop("group", "example.com" if kind == "Widget" else "")
    kw.setdefault("syncer_name", "dr")
    return ShardSpec(syncer_namespace="ops", group=group, version="v1", kind=kind, **kw)


@dataclass
class Env:
    src: Any  # ApiServer
    dst: Any
    sc: KubeClient
    dc: KubeClient

    async def ns(self, *names: str, side: str = "both") -> None:
        clients = {"both": (self.sc, self.dc), "src": (self.sc,), "dst": (self.dc,)}[side]
        for c in clients:
            for name in names:
                try:
                    await c.create(NS, {"metadata": {"name": name}})
                except ApiError as exc:
                    if not exc.conflict:
                        raise

    async def put(self, client: KubeClient, res: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        obj = dict(obj)
        obj.setdefault("apiVersion", res.group_version)
        obj.setdefault("kind", res.kind)
        return await client.apply(res, obj, field_manager="test")

    async def cm(self, ns: str, name: str, data: dict[str, str] | None = None, *,
                 client: KubeClient | None = None, **meta: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name, "namespace": ns, **meta}, "data": data or {"k": "v"}}
        return await self.put(client or self.sc, CM, body)

    async def delete(self, client: KubeClient, res: ResourceInfo, ns: str | None, name: str) -> None:
        await client.delete(res, namespace=ns, name=name)

    async def items(self, client: KubeClient, res: ResourceInfo, ns: str | None = None,
                    ) -> dict[str, dict[str, Any]]:
        """Objects by key, without each cluster's own kube-root-ca.crt."""
        items, _ = await client.list_all(res, namespace=ns)
        out = {}
        for o in items:
            m = o["metadata"]
            if m["name"] == "kube-root-ca.crt":
                continue
            out[f"{m['namespace']}/{m['name']}" if m.get("namespace") else m["name"]] = o
        return out

    async def crd(self, *, side: str = "both") -> None:
        clients = {"both": (self.sc, self.dc), "src": (self.sc,), "dst": (self.dc,)}[side]
        crd_res = ResourceInfo(group="apiextensions.k8s.io", version="v1",
                               kind="CustomResourceDefinition",
                               plural="customresourcedefinitions", namespaced=False)
        for c in clients:
            await c.create(crd_res, WIDGET_CRD)
            c.invalidate_discovery()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    src = await ApiServer.start(name="source")
    dst = await ApiServer.start(name="destination")
    sc = KubeClient(load_kubeconfig_text(src.kubeconfig()))
    dc = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
    try:
        yield Env(src=src, dst=dst, sc=sc, dc=dc)
    finally:
        await sc.close()
        await dc.close()
        await src.stop()
        await dst.stop()


@asynccontextmanager
async def running(
    env: Env,
    spec: ShardSpec,
    *,
    options: EngineOptions = FAST,
    clock: Clock | None = None,
    dest: KubeClient | None = None,
    write_gate: WriteGate | None = None,
) -> AsyncIterator[Shard]:
    metrics = ShardMetrics(spec.syncer_key, f"{spec.shard_id}#{next(_ids)}")
    shard = Shard(spec, source=env.sc, dest=dest or env.dc, options=options, clock=clock,
                  metrics=metrics, write_gate=write_gate)
    task = asyncio.ensure_future(shard.run())
    try:
        yield shard
    finally:
        await asyncio.wait_for(shard.stop(), 20)
        await asyncio.wait_for(task, 20)
        metrics.remove()


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, timeout: float = 10.0,
    message: str = "condition not reached",
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(message)
        await asyncio.sleep(0.02)


async def synced(shard: Shard, *, timeout: float = 10.0) -> None:
    await eventually(lambda: shard.health().synced, timeout=timeout,
                     message=f"shard never synced: {shard.health()}")


def fast(**kw: Any) -> EngineOptions:
    return replace(FAST, **kw)
