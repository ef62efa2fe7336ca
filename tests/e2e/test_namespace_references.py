"""Namespace mapping carries RBAC across: the ServiceAccount a copied RoleBinding names is the
one in the destination namespace, so it may act there (``kubectl auth can-i --as`` on real
control planes, whose authorizer is RBAC); a subject in another namespace is left alone.
A Deployment's pod affinity to its own namespace follows it too. Both substrates check what
lands in the destination; the in-memory server has no RBAC authorizer, so the can-i checks
run on real control planes.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ray_syncer.kube.client import KubeClient, ResourceInfo

from .harness import (
    DEPLOY,
    Clusters,
    ensure_namespace,
    get_or_none,
    krmsyncer,
    operator,
    put_secret,
    put_syncer,
    unique,
    wait_for,
)

SA = ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True)
ROLE = ResourceInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", True)
BINDING = ResourceInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True)
REVIEW = ResourceInfo("authorization.k8s.io", "v1", "SubjectAccessReview",
                      "subjectaccessreviews", False)


def _rule(group: str, kind: str, ns: str) -> dict[str, Any]:
    return {"group": group, "version": "v1", "kind": kind, "namespaces": [ns]}


def _deployment(ns: str, other: str) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
            "namespaces": [ns, other]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "serviceAccountName": "app",
                    "affinity": {"podAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [term]}},
                    "containers": [{"name": "web", "image": "example.invalid/web:1"}],
                },
            },
        },
    }


async def _app(src: KubeClient, ns: str, other: str) -> None:
    """What an application namespace holds: its account, a Role, the binding, a workload."""
    for body, res in (
        ({"metadata": {"name": "app", "namespace": ns}}, SA),
        ({"metadata": {"name": "reader", "namespace": ns},
          "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]},
         ROLE),
        ({"metadata": {"name": "app-reads", "namespace": ns},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
          "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": ns},
                       {"kind": "ServiceAccount", "name": "ci", "namespace": other}]},
         BINDING),
        (_deployment(ns, other), DEPLOY),
    ):
        body = {"apiVersion": res.group_version, "kind": res.kind, **body}
        await src.apply(res, body, field_manager="e2e-test")


async def _can(dst: KubeClient, kubeconfig: Path, *, user: str, ns: str) -> bool:
    """``kubectl auth can-i get configmaps -n ns --as user`` on the destination (the same
    question as a SubjectAccessReview, which answers where kubectl is not installed)."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        proc = await asyncio.to_thread(
            subprocess.run,
            [kubectl, "--kubeconfig", str(kubeconfig), "auth", "can-i", "get", "configmaps",
             "-n", ns, f"--as={user}"], capture_output=True, text=True, timeout=60)
        assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
        return proc.stdout.strip() == "yes"
    review = await dst.create(REVIEW, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"],
                 "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "configmaps"}},
    })
    return bool((review.get("status") or {}).get("allowed"))


async def test_a_mapped_role_binding_grants_the_destination_namespaces_account(
    clusters: Clusters, src: KubeClient, dst: KubeClient, tmp_path: Path
) -> None:
    home, app, mirror, other = unique("ref"), unique("shop"), unique("shop-dr"), unique("ci")
    for c in (src, dst):
        for ns in (home, app, mirror, other):
            await ensure_namespace(c, ns)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    rules = [_rule("", "ServiceAccount", app),
             _rule("rbac.authorization.k8s.io", "Role", app),
             _rule("rbac.authorization.k8s.io", "RoleBinding", app),
             _rule("apps", "Deployment", app)]
    syncer = krmsyncer(home, "s", rules=rules, destination={
        "clusterConfig": {"kubeConfigSecretRef": {"name": "dest-kubeconfig"}}, "namespace": mirror})
    await _app(src, app, other)
    async with operator(clusters, namespace=home):
        await put_syncer(src, syncer)

        async def copied() -> bool:
            return all([await get_or_none(dst, res, namespace=mirror, name=name)
                        for res, name in ((SA, "app"), (BINDING, "app-reads"), (DEPLOY, "web"))])

        await wait_for(copied, what="the application's RBAC and workload in the mirror namespace",
                       timeout=60)
    binding = await dst.get(BINDING, namespace=mirror, name="app-reads")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "app", "namespace": mirror},
        {"kind": "ServiceAccount", "name": "ci", "namespace": other},
    ]
    assert binding["roleRef"]["name"] == "reader"
    web = await dst.get(DEPLOY, namespace=mirror, name="web")
    term = web["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["namespaces"] == [mirror, other]
    # The source is as it was.
    source = await src.get(BINDING, namespace=app, name="app-reads")
    assert source["subjects"][0]["namespace"] == app

    if clusters.in_memory:
        return  # no RBAC authorizer in the in-memory server: the contents above are the test
    kubeconfig = tmp_path / "dest.kubeconfig"
    kubeconfig.write_text(clusters.dest.kubeconfig)
    assert await _can(dst, kubeconfig, user=f"system:serviceaccount:{mirror}:app", ns=mirror)
    # Nothing more: the source namespace's account gets no rights in the mirror, and an
    # account the binding never named gets none.
    assert not await _can(dst, kubeconfig, user=f"system:serviceaccount:{app}:app", ns=mirror)
    assert not await _can(dst, kubeconfig, user=f"system:serviceaccount:{mirror}:other", ns=mirror)
