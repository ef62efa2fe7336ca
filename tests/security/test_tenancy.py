"""``--restrict-to-own-namespace`` (docs/design.md §4.7): refusals are enforced (nothing is written) and
reported (Ready=False with the reason, a Warning Event); tenant namespaces stay unrestricted.
"""

from __future__ import annotations

import asyncio

import pytest

from ray_syncer.kube.client import KubeClient
from tests.badinput.world import (
    CM,
    cm_rule,
    dest_ref,
    dest_writes,
    ensure_ns,
    get_or_none,
    put_cm,
    put_secret,
    put_syncer,
    syncer_obj,
    wait_condition,
    wait_for,
    wait_warning,
)

from .operator import Env, operator_env


async def _tenant(env: Env, ns: str, *data: str) -> None:
    for c in (env.sc, env.dc):
        for n in (ns, *data):
            await ensure_ns(c, n)
    await put_secret(env.sc, ns, "dest", {"kubeconfig": env.dst.kubeconfig()})


async def _synced(dc: KubeClient, ns: str, name: str) -> bool:
    return await get_or_none(dc, CM, ns, name) is not None


@pytest.mark.timeout(90)
async def test_restricted_syncers_only_sync_their_own_namespace() -> None:
    async with operator_env(
        restrict_to_own_namespace=True, tenant_namespaces=frozenset({"platform"})
    ) as env:
        await _tenant(env, "team-a", "team-b")
        await _tenant(env, "platform")
        for ns in ("team-a", "team-b"):
            await put_cm(env.sc, ns, "cfg", {"owner": ns})

        # Naming another namespace: refused, reported, nothing written there.
        await put_syncer(env.sc, syncer_obj("team-a", "other", {
            "rules": [cm_rule("team-b")], "destination": dest_ref()}))
        ready = await wait_condition(env.sc, "team-a", "other", "Ready", "False",
                                     "NamespaceNotAllowed")
        assert ready["message"] == (
            "rules[0] v1/ConfigMap: this operator only lets KRMSyncers in namespace 'team-a' "
            "sync their own namespace; it names team-b"
        )
        await wait_warning(env.sc, "team-a", "other", "NamespaceNotAllowed")

        # A cluster-scoped kind, named explicitly: refused too.
        await put_syncer(env.sc, syncer_obj("team-a", "cluster", {
            "rules": [{"group": "", "version": "v1", "kind": "Namespace"}],
            "destination": dest_ref()}))
        ready = await wait_condition(env.sc, "team-a", "cluster", "Ready", "False",
                                     "ClusterScopedNotAllowed")
        assert ready["message"] == (
            "rules[0] v1/Namespace: Namespace is cluster-scoped; this operator only lets "
            "KRMSyncers in namespace 'team-a' sync their own namespace"
        )
        await wait_warning(env.sc, "team-a", "cluster", "ClusterScopedNotAllowed")

        # No namespaces listed: narrowed to its own namespace (team-b's object stays home).
        await put_syncer(env.sc, syncer_obj("team-a", "own", {
            "rules": [cm_rule()], "destination": dest_ref()}))
        await wait_for(lambda: _synced(env.dc, "team-a", "cfg"), what="team-a synced")
        await asyncio.sleep(1.0)
        assert dest_writes(env.dst, "team-b") == []
        assert [n for n in env.driver.hosts if "team-b" in n] == []

        # A tenant namespace may sync anywhere.
        await put_syncer(env.sc, syncer_obj("platform", "all", {
            "rules": [cm_rule("team-b")], "destination": dest_ref()}))
        await wait_for(lambda: _synced(env.dc, "team-b", "cfg"), what="platform synced team-b")
        await wait_condition(env.sc, "platform", "all", "Ready", "True", "Running")
