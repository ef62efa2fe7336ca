"""Secrets and specs: rotation, missing/broken Secrets that recover, invalid specs, refusals."""

from __future__ import annotations

import yaml

from ray_syncer import FIELD_MANAGER
from ray_syncer.fleet.supervisor import SupervisorReport
from ray_syncer.kube.client import KubeClient, ResourceInfo

from .harness import (
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    unique,
    wait_condition,
    wait_for,
)

EVENTS = ResourceInfo("", "v1", "Event", "events", True)


def cm_rule(ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}


async def _eq(c: KubeClient, ns: str, name: str, want: dict[str, str]) -> bool:
    return await cm_data(c, ns, name) == want


async def test_secret_rotation_restarts_shards_with_the_new_credentials(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("rot")
    for c in (src, dst):
        await ensure_namespace(c, home)
    one = await clusters.dest.add_user(f"{home}-one")
    two = await clusters.dest.add_user(f"{home}-two")
    mark = clusters.dest.log_mark()
    await put_secret(src, home, "dest-kubeconfig", one.kubeconfig)
    async with operator(clusters, namespace=home) as op:
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)]))
        await put_cm(src, home, "c", {"v": "1"})
        await wait_for(lambda: _eq(dst, home, "c", {"v": "1"}), what="synced with the first Secret")
        report = op.reconciler.last_report
        assert report is not None
        await put_secret(src, home, "dest-kubeconfig", two.kubeconfig)

        async def restarted() -> bool:
            st = op.reconciler.state.get(f"{home}/s")
            digests = {d.revision for d in st.shards.values()} if st else set()
            current = op.reconciler.last_report
            return bool(
                current
                and digests
                and not (digests & _revisions(report))
                and _revisions(current) == digests
            )

        await wait_for(restarted, timeout=20, what="shards restarted at the new revision")
        await put_cm(src, home, "c", {"v": "2"})
        await wait_for(
            lambda: _eq(dst, home, "c", {"v": "2"}), what="synced with the rotated Secret"
        )
    # The operator's writes only (its field manager): on a real cluster the controller-manager
    # publishes the namespace's kube-root-ca.crt a moment after the namespace is created, as
    # its own user, and that write can land after the mark.
    writers = [
        r.user
        for r in await clusters.dest.requests(mark)
        if r.method in ("PATCH", "POST", "PUT")
        and f"/namespaces/{home}/configmaps" in r.path
        and r.query.get("fieldManager") == FIELD_MANAGER
    ]
    assert writers and writers[0] == one.user and writers[-1] == two.user, writers


def _revisions(report: SupervisorReport) -> set[str]:
    return set(report.revisions.values())


async def test_missing_or_broken_secret_reports_and_recovers(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("sec")
    for c in (src, dst):
        await ensure_namespace(c, home)
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)]))
        await wait_condition(
            src, home, "s", "DestinationReachable", "False", reason="SecretNotFound"
        )
        await put_secret(src, home, "dest-kubeconfig", "not: [a kubeconfig")
        await wait_condition(
            src, home, "s", "DestinationReachable", "False", reason="KubeconfigInvalid"
        )
        plugin = yaml.safe_load(clusters.dest.kubeconfig)
        plugin["users"][0]["user"] = {
            "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "evil"}
        }
        await put_secret(src, home, "dest-kubeconfig", yaml.safe_dump(plugin))
        await wait_condition(
            src, home, "s", "DestinationReachable", "False", reason="ExecPluginRefused"
        )
        dead = yaml.safe_load(clusters.dest.kubeconfig)
        dead["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
        await put_secret(src, home, "dest-kubeconfig", yaml.safe_dump(dead))
        st = await wait_condition(
            src, home, "s", "DestinationReachable", "False", reason="Unreachable"
        )
        assert "127.0.0.1:9" in next(
            c["message"] for c in st["conditions"] if c["type"] == "DestinationReachable"
        )
        # Fixed: recovers by itself.
        await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
        await wait_condition(src, home, "s", "Ready", "True", reason="Running")
        await put_cm(src, home, "after-fix", {"ok": "yes"})
        await wait_for(
            lambda: _eq(dst, home, "after-fix", {"ok": "yes"}), what="synced after the fix"
        )


async def test_invalid_spec_next_to_a_valid_one(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("inv")
    for c in (src, dst):
        await ensure_namespace(c, home)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    bad = krmsyncer(home, "bad", rules=[cm_rule(home)])
    bad["spec"]["destination"]["clusterConfig"]["kubeConfigSecretRef"]["namespace"] = "elsewhere"
    async with operator(clusters, namespace=home):
        await put_syncer(src, bad)
        await put_syncer(src, krmsyncer(home, "good", rules=[cm_rule(home)]))
        st = await wait_condition(src, home, "bad", "Ready", "False", reason="InvalidSpec")
        message = next(c["message"] for c in st["conditions"] if c["type"] == "Ready")
        assert "kubeConfigSecretRef.namespace" in message
        await wait_condition(src, home, "good", "Ready", "True", reason="Running")
        await put_cm(src, home, "fine", {"a": "b"})
        await wait_for(lambda: _eq(dst, home, "fine", {"a": "b"}), what="the valid syncer syncs")

        async def warning_event() -> bool:
            items, _ = await src.list_all(EVENTS, namespace=home)
            return any(
                e.get("type") == "Warning"
                and e.get("reason") == "InvalidSpec"
                and (e.get("involvedObject") or {}).get("name") == "bad"
                for e in items
            )

        await wait_for(warning_event, what="a Warning Event for the invalid spec")


async def test_a_syncer_targeting_its_own_cluster_is_refused(
    clusters: Clusters, src: KubeClient
) -> None:
    home = unique("self")
    await ensure_namespace(src, home)
    await put_secret(src, home, "dest-kubeconfig", clusters.source.kubeconfig)
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "loop", rules=[cm_rule(home)]))
        await wait_condition(src, home, "loop", "Ready", "False", reason="DestinationIsSource")


async def test_restricted_tenancy_refuses_other_namespaces(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, other = unique("ten"), unique("other")
    for c in (src, dst):
        for ns in (home, other):
            await ensure_namespace(c, ns)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    async with operator(clusters, namespace=home, restrict_to_own_namespace=True):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(other)]))
        st = await wait_condition(src, home, "s", "Ready", "False", reason="NamespaceNotAllowed")
        assert other in next(c["message"] for c in st["conditions"] if c["type"] == "Ready")
