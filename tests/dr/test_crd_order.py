"""CRDs before their objects: the custom-resource shard waits, visibly, for Established."""

from __future__ import annotations

from typing import Any

from ray_syncer.engine.spec import ShardSpec
from ray_syncer.kube.client import KubeClient, ResourceInfo
from ray_syncer.operator.crd_order import CRD_RES, CrdGate, crd_gates, established
from tests import cleanup
from tests.e2e.harness import (
    Clusters,
    ensure_namespace,
    get_or_none,
    krmsyncer,
    put_secret,
    put_syncer,
    syncer_status,
    unique,
    wait_for,
)

from .conftest import local_operator


def crd(group: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": cleanup.labelled({"name": f"orders.{group}", "labels": labels or {}}),
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "orders", "singular": "order", "kind": "Order", "listKind": "OrderList"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


def spec(group: str, kind: str) -> ShardSpec:
    return ShardSpec(syncer_namespace="ns", syncer_name="s", group=group, version="v1", kind=kind)


def test_gates_only_crd_defined_kinds_of_a_syncer_that_syncs_crds() -> None:
    crds = spec("apiextensions.k8s.io", "CustomResourceDefinition")
    orders, cms = spec("shop.example.com", "Order"), spec("", "ConfigMap")
    metrics = spec("metrics.k8s.io", "PodMetrics")  # aggregated: no CRD on the source
    infos = [ResourceInfo("shop.example.com", "v1", "Order", "orders", True),
             ResourceInfo("metrics.k8s.io", "v1", "PodMetrics", "pods", True)]
    source_crds = {"orders.shop.example.com"}
    assert crd_gates([crds, orders, cms, metrics], infos, source_crds) == {
        orders.shard_id: "orders.shop.example.com"
    }
    assert crd_gates([orders, cms], infos, source_crds) == {}
    assert established({"status": {"conditions": [{"type": "Established", "status": "True"}]}}) == (True, "")
    assert not established({"status": {}})[0]


async def test_cr_shard_waits_for_the_crd_then_syncs(
    dr_clusters: Clusters, ca: KubeClient, cb: KubeClient
) -> None:
    alpha, beta = dr_clusters.source, dr_clusters.dest
    home = unique("crd")
    group = f"{home}.example.com"
    for c in (ca, cb):
        await ensure_namespace(c, home)
    await put_secret(ca, home, "to-beta", beta.kubeconfig)
    # The CRD exists on alpha but is not (yet) selected by the CRD rule.
    await ca.create(CRD_RES, crd(group))
    order_res = await wait_for(lambda: _resolve(ca, group), what="Order served on alpha")
    await ca.create(order_res, {"apiVersion": f"{group}/v1", "kind": "Order",
                                "metadata": {"name": "o1", "namespace": home}, "spec": {"qty": 3}})
    rules: list[dict[str, Any]] = [
        {"group": "apiextensions.k8s.io", "version": "v1", "kind": "CustomResourceDefinition",
         "labelSelector": {"matchLabels": {"sync": home}}},
        {"group": group, "version": "v1", "kind": "Order", "namespaces": [home]},
    ]
    mark = beta.log_mark()
    async with local_operator(alpha, namespace=home):
        await put_syncer(ca, krmsyncer(home, "app", rules=rules, secret="to-beta"))

        async def waiting_in_status() -> str | None:
            st = await syncer_status(ca, home, "app")
            for sh in st.get("shards") or []:
                if sh.get("kind") == "Order" and "waiting for CRD" in (sh.get("message") or ""):
                    return str(sh["message"])
            return None

        message = await wait_for(waiting_in_status, what="the Order shard reported as waiting")
        assert f"orders.{group}" in message and "not created there yet" in message
        assert await get_or_none(cb, CRD_RES, namespace=None, name=f"orders.{group}") is None

        # Select the CRD: the CRD shard applies it, beta establishes it, then the Order follows.
        await ca.patch(CRD_RES, namespace=None, name=f"orders.{group}",
                       body={"metadata": {"labels": {"sync": home}}})
        dst_res = await wait_for(lambda: _resolve(cb, group), timeout=20, what="CRD on beta")
        got = await wait_for(lambda: get_or_none(cb, dst_res, namespace=home, name="o1"),
                             timeout=20, what="Order in beta")
        assert got["spec"] == {"qty": 3}
        order_writes = [r for r in await beta.requests(mark)
                        if f"/namespaces/{home}/orders" in r.path and r.method in ("PATCH", "POST", "PUT")]
        assert order_writes, "the Order was synced without a write in the request log"
        assert all(r.status < 400 for r in order_writes), "a write to an unserved kind was tried"


async def test_gate_remembers_established_crds(dr_clusters: Clusters, ca: KubeClient, cb: KubeClient) -> None:
    group = f"{unique('mem')}.example.com"
    await ca.create(CRD_RES, crd(group))
    specs = [spec("apiextensions.k8s.io", "CustomResourceDefinition"), spec(group, "Order")]
    infos = [ResourceInfo(group, "v1", "Order", "orders", True)]
    gate = CrdGate()
    held = await gate.waits(source=ca, dest=cb, shards=specs, infos=infos)
    assert list(held) == [specs[1].shard_id]
    await cb.create(CRD_RES, crd(group))
    assert await wait_for(lambda: _none_held(gate, ca, cb, specs, infos), what="released") is True
    assert f"orders.{group}" in gate.ready


async def _none_held(gate: CrdGate, ca: KubeClient, cb: KubeClient, specs: list[ShardSpec],
                     infos: list[ResourceInfo]) -> bool:
    return not await gate.waits(source=ca, dest=cb, shards=specs, infos=infos)


async def _resolve(c: KubeClient, group: str) -> ResourceInfo | None:
    c.invalidate_discovery()
    return await c.resolve(group, "v1", "Order")
