"""Push and pull modes, namespace mapping, a glob rule that picks up a CRD installed later, status sync."""

from __future__ import annotations

from typing import Any

from ray_syncer.kube.client import KubeClient, ResourceInfo
from ray_syncer.operator.reconciler import CRD_RES
from tests import cleanup

from .harness import (
    Clusters,
    cm_data,
    ensure_namespace,
    get_or_none,
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


async def test_pull_mode_runs_in_the_standby_and_reads_the_active(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, a = unique("pull"), unique("pa")
    for c in (src, dst):
        for ns in (home, a):
            await ensure_namespace(c, ns)
    # The operator runs against the destination; the Secret there points at the source.
    await put_secret(dst, home, "active-kubeconfig", clusters.source.kubeconfig)
    syncer = krmsyncer(
        home,
        "s",
        mode="pull",
        secret="active-kubeconfig",
        rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [a]}],
    )
    await put_cm(src, a, "from-active", {"k": "v"})
    async with operator(clusters, namespace=home, own="destination"):
        await put_syncer(dst, syncer)
        await wait_for(lambda: _eq(dst, a, "from-active", {"k": "v"}), what="pulled")
        await put_cm(src, a, "from-active", {"k": "v2"})
        await wait_for(lambda: _eq(dst, a, "from-active", {"k": "v2"}), what="pulled update")
        st = await wait_condition(dst, home, "s", "Ready", "True", reason="Running")
        assert "pull" in next(c["message"] for c in st["conditions"] if c["type"] == "Suspended")
        # Nothing flows the other way.
        await put_cm(dst, a, "standby-only", {"x": "y"})
        assert await cm_data(src, a, "standby-only") is None


async def test_push_mode_with_namespace_mapping(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, a, mirror = unique("map"), unique("ma"), unique("mirror")
    for c in (src, dst):
        for ns in (home, a, mirror):
            await ensure_namespace(c, ns)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    syncer = krmsyncer(
        home,
        "s",
        mode="push",
        rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [a]}],
        destination={
            "clusterConfig": {"kubeConfigSecretRef": {"name": "dest-kubeconfig"}},
            "namespace": mirror,
        },
    )
    async with operator(clusters, namespace=home):
        await put_syncer(src, syncer)
        await put_cm(src, a, "mapped", {"k": "v"})
        await wait_for(
            lambda: _eq(dst, mirror, "mapped", {"k": "v"}), what="mapped into the mirror namespace"
        )
        assert await cm_data(dst, a, "mapped") is None


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": cleanup.labelled({"name": f"widgets.{group}"}),
        "spec": {
            "group": group,
            "names": {
                "kind": "Widget",
                "plural": "widgets",
                "singular": "widget",
                "listKind": "WidgetList",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


async def test_glob_rule_picks_up_a_crd_installed_later_and_syncs_status(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, a, u = unique("glob"), unique("ga"), unique("g")
    group = f"widgets.{u}.example.com"
    for c in (src, dst):
        for ns in (home, a):
            await ensure_namespace(c, ns)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    syncer = krmsyncer(
        home,
        "s",
        rules=[
            {
                "group": f"*.{u}.example.com",
                "version": "*",
                "kind": "*",
                "namespaces": [a],
                "syncStatus": True,
            }
        ],
    )
    widget = ResourceInfo(group, "v1", "Widget", "widgets", True, has_status=True)
    async with operator(clusters, namespace=home):
        await put_syncer(src, syncer)
        st = await wait_condition(src, home, "s", "Ready", "True", reason="NoShards")
        assert "no kinds" in st["expandedRules"][0]
        # The kind arrives later: first in the destination, then in the source.
        await dst.create(CRD_RES, widget_crd(group))
        await src.create(CRD_RES, widget_crd(group))
        await wait_for(
            lambda: _actors(home, [f"{home}/s/{group}/Widget/{a}"]),
            timeout=30,
            what="glob re-expanded",
        )
        st = await wait_condition(src, home, "s", "Ready", "True", reason="Running")
        assert "1 kind(s): Widget." + group in st["expandedRules"][0]

        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1", "namespace": a},
            "spec": {"size": 3},
        }
        await src.create(widget, body, namespace=a)
        await src.patch(
            widget,
            namespace=a,
            name="w1",
            body={"status": {"phase": "Ready"}},
            subresource="status",
        )

        async def status_synced() -> bool:
            got = await get_or_none(dst, widget, namespace=a, name="w1")
            return bool(
                got
                and got.get("spec") == {"size": 3}
                and (got.get("status") or {}).get("phase") == "Ready"
            )

        await wait_for(status_synced, timeout=20, what="widget spec and status in the destination")


async def _actors(prefix: str, want: list[str]) -> bool:
    return sorted(shard_actors(prefix)) == sorted(want)


async def _eq(c: KubeClient, ns: str, name: str, want: dict[str, str]) -> bool:
    return await cm_data(c, ns, name) == want
