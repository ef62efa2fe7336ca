"""A typical app namespace under `core/v1 *` + `apps/v1 *`: in sync, not Degraded, nothing of the
destination's own control plane copied over it.

The globs name the namespace, so they never expand to cluster-scoped kinds (Namespace, Node,
PersistentVolume); the `default` ServiceAccount, `kube-root-ca.crt` and the ServiceAccount-token
Secret are each cluster's own; the Deployment's ReplicaSets and Pods are made by each cluster's
controllers from the synced Deployment. On real control planes the controller-manager does that
on both sides; the in-memory server has no ReplicaSet controller, so the test makes the source's
ReplicaSet and Pod as that controller would.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ray_syncer.engine.transform import MANAGED_BY_LABEL, managed_by_value
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.operator.reconciler import SECRET_RES
from ray_syncer.operator.status import condition
from tests import cleanup

from .harness import (
    CM,
    DEPLOY,
    Clusters,
    ensure_namespace,
    get_or_none,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    syncer_status,
    unique,
    wait_for,
)

SA = ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True)
SVC = ResourceInfo("", "v1", "Service", "services", True, has_status=True)
RS = ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", True, has_status=True)
POD = ResourceInfo("", "v1", "Pod", "pods", True, has_status=True)
NODE = ResourceInfo("", "v1", "Node", "nodes", False, has_status=True)
NAMESPACE = ResourceInfo("", "v1", "Namespace", "namespaces", False, has_status=True)
LABELS = {"app": "web"}


async def test_app_namespace_syncs_healthy_and_leaves_the_control_planes_own_objects(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, app = unique("ops"), unique("shop")
    # A destination in use: another syncer's copy is there already, and must not be counted.
    await dst.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": cleanup.labelled(
        {"name": unique("theirs"), "labels": {MANAGED_BY_LABEL: "elsewhere.their-syncer"}})})
    await ensure_namespace(src, home)
    await ensure_namespace(src, app)  # the destination's is made by the syncer, as it would be
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    deploy = await _app(src, app)
    if clusters.in_memory:
        await _source_controllers(src, app, deploy)
    dest_controllers = clusters.dest.server is None and (
        clusters.dest.plane is None or clusters.dest.plane.has_controller_manager
    )

    syncer = krmsyncer(
        home,
        "app",
        rules=[
            {"group": "", "version": "v1", "kind": "*", "namespaces": [app]},
            {"group": "apps", "version": "v1", "kind": "*", "namespaces": [app]},
        ],
    )
    async with operator(clusters, namespace=home, shards_per_host=16):
        await put_syncer(src, syncer)
        for res, name in [(DEPLOY, "web"), (SVC, "web"), (CM, "settings"),
                          (SECRET_RES, "creds"), (SA, "app")]:
            try:
                await wait_for(lambda res=res, name=name: _copied(dst, res, app, name),
                               timeout=90, what=f"{res.kind} {name} in the destination")
            except AssertionError as exc:
                st = await syncer_status(src, home, "app")
                raise AssertionError(f"{exc}; status: {st}") from exc
        st = await wait_for(lambda: _synced(src, home, "app"), timeout=90, what="Synced=True")
        # Read again: a conflict (the `default` ServiceAccount, a Namespace) would show by now.
        st = await syncer_status(src, home, "app")
        degraded = condition(st, "Degraded")
        assert degraded is not None and degraded["status"] == "False", (degraded, st)
        assert sum(s["conflicts"] for s in st["shards"]) == 0, st["shards"]

        # The globs stayed in the namespace: no Namespace or Node shard, and status says why.
        kinds = {s["kind"] for s in st["shards"]}
        assert {"ConfigMap", "Secret", "Service", "ServiceAccount", "Deployment"} <= kinds
        assert not kinds & {"Namespace", "Node", "PersistentVolume", "Pod", "ReplicaSet"}, kinds
        assert "Namespace (" in st["expandedRules"][0], st["expandedRules"]
        assert all(s.get("namespace") == app for s in st["shards"]), st["shards"]

        # The destination's own `default` ServiceAccount and kube-root-ca.crt, untouched.
        for res, name in [(SA, "default"), (CM, "kube-root-ca.crt")]:
            theirs = await wait_for(lambda res=res, name=name: get_or_none(
                dst, res, namespace=app, name=name), timeout=60, what=f"the destination's {name}")
            assert not _ours(theirs), theirs["metadata"]
        # The ServiceAccount-token Secret is the source's own: not copied.
        assert await get_or_none(dst, SECRET_RES, namespace=app, name="app-token") is None
        # Of the destination's Namespaces and Nodes, this syncer made only the app's namespace.
        # (Only its own: a destination in use holds other syncers' copies, issue 23.)
        assert await _labelled(dst, NAMESPACE, home, "app") == [app]
        assert await _labelled(dst, NODE, home, "app") == []

        # ReplicaSets and Pods: the source's stay there; the destination's are its own.
        src_rs = await wait_for(lambda: _children(src, RS, app), timeout=60,
                                what="the source's ReplicaSet")
        if dest_controllers:
            await wait_for(lambda: _children(dst, RS, app), timeout=60,
                           what="the destination's own ReplicaSet")
        dest_deploy = await dst.get(DEPLOY, namespace=app, name="web")
        source_uids = {deploy["metadata"]["uid"]} | {o["metadata"]["uid"] for o in src_rs}
        dest_rs = await _children(dst, RS, app)
        for obj in dest_rs + await _children(dst, POD, app):
            assert not _ours(obj), obj["metadata"]
            owners = {r["uid"] for r in obj["metadata"].get("ownerReferences") or ()}
            assert owners and not owners & source_uids, obj["metadata"]
        for obj in dest_rs:
            (ref,) = obj["metadata"]["ownerReferences"]
            assert ref["uid"] == dest_deploy["metadata"]["uid"]
        if not dest_controllers:
            assert dest_rs == []  # nothing makes them there, and the syncer did not copy them


async def _app(client: KubeClient, ns: str) -> dict[str, Any]:
    """Deployment, Service, ConfigMap, Secret, ServiceAccount and its token Secret."""
    await put_cm(client, ns, "settings", {"mode": "prod"})
    await client.apply(SECRET_RES, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
        "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}, field_manager="e2e-test")
    for name in ("default", "app"):  # `default`: made by the namespace's controllers, or here
        with contextlib.suppress(ApiError):
            await client.create(SA, {"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": name, "namespace": ns}})
    # On a real cluster the token controller fills it in.
    await client.apply(SECRET_RES, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app-token", "namespace": ns,
                     "annotations": {"kubernetes.io/service-account.name": "app"}},
        "type": "kubernetes.io/service-account-token"}, field_manager="e2e-test")
    await client.apply(SVC, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": LABELS, "ports": [{"port": 80, "targetPort": 8080}]}},
        field_manager="e2e-test")
    return await client.apply(DEPLOY, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS},
                 "template": {"metadata": {"labels": LABELS},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        field_manager="e2e-test")


async def _source_controllers(client: KubeClient, ns: str, deploy: dict[str, Any]) -> None:
    """What the source's Deployment and ReplicaSet controllers would make (in memory only)."""
    rs = await client.create(RS, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d8f7c", "namespace": ns, "labels": LABELS,
                     "ownerReferences": [_controller_ref(deploy)]},
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS},
                 "template": deploy["spec"]["template"]}})
    await client.create(POD, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-5d8f7c-x2x7q", "namespace": ns, "labels": LABELS,
                     "ownerReferences": [_controller_ref(rs)]},
        "spec": deploy["spec"]["template"]["spec"]})


def _controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _ours(obj: dict[str, Any]) -> bool:
    # The label, as the syncer itself decides: a Deployment controller copies the Deployment's
    # annotations (the syncer's source annotations included) onto the ReplicaSets it makes.
    return MANAGED_BY_LABEL in (obj["metadata"].get("labels") or {})


async def _copied(client: KubeClient, res: ResourceInfo, ns: str, name: str) -> bool:
    obj = await get_or_none(client, res, namespace=ns, name=name)
    return obj is not None and _ours(obj)


async def _children(client: KubeClient, res: ResourceInfo, ns: str) -> list[dict[str, Any]]:
    items, _ = await client.list_all(res, namespace=ns)
    return list(items)


async def _labelled(client: KubeClient, res: ResourceInfo, namespace: str, name: str) -> list[str]:
    """The objects of ``res`` that the KRMSyncer ``namespace/name`` made (its managed-by label)."""
    mine = f"{MANAGED_BY_LABEL}={managed_by_value(namespace, name)}"
    try:
        items, _ = await client.list_all(res, label_selector=mine)
    except ApiError as exc:
        if exc.not_found:
            return []  # the in-memory server has no Nodes
        raise
    return [o["metadata"]["name"] for o in items]


async def _synced(client: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    st = await syncer_status(client, ns, name)
    ok = all((condition(st, t) or {}).get("status") == "True" for t in ("Ready", "Synced"))
    return st if ok else None
