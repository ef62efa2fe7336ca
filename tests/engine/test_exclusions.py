"""Behaviour 4 (in a live shard): every default exclusion, and includeOwned."""

from __future__ import annotations

import contextlib

from ray_syncer.engine.transform import ANN_CONTENT_HASH, MANAGED_BY_LABEL
from ray_syncer.kube.client import ApiError, ResourceInfo

from .conftest import CM, SECRET, Env, eventually, running, spec_for, synced

SYSTEM = ("kube-system", "kube-public", "kube-node-lease")

OWNER = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u-1",
          "controller": True}]


async def test_default_exclusions_are_never_synced(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "plain")
    await env.cm("prod", "opted-out", labels={"syncer.gkelabs.io/exclude": "true"})
    await env.cm("prod", "owned", ownerReferences=OWNER)
    async with running(env, spec_for()) as shard:
        await synced(shard)
        dst = await env.items(env.dc, CM, "prod")
        assert set(dst) == {"prod/plain"}
        # kube-root-ca.crt: the destination keeps its own, untouched by us.
        ca = [r for r in env.dst.request_log if "kube-root-ca.crt" in r.path]
        assert ca == []
        # Labelling an object excluded later removes our copy (it left the scope).
        await env.cm("prod", "plain", labels={"syncer.gkelabs.io/exclude": "true"})
        await eventually(lambda: _keys(env, set()))


async def test_service_account_token_secrets_are_not_synced(env: Env) -> None:
    await env.ns("prod")
    await env.put(env.sc, SECRET, {"metadata": {"name": "opaque", "namespace": "prod"},
                                   "type": "Opaque", "data": {"a": "YQ=="}})
    await env.put(env.sc, SECRET, {
        "metadata": {"name": "tok", "namespace": "prod",
                     "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token", "data": {"token": "YQ=="}})
    async with running(env, spec_for("Secret")) as shard:
        await synced(shard)
        assert set(await env.items(env.dc, SECRET, "prod")) == {"prod/opaque"}


async def test_include_owned_syncs_controller_owned_objects(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "owned", ownerReferences=OWNER)
    async with running(env, spec_for(include_owned=True)) as shard:
        await synced(shard)
        got = (await env.items(env.dc, CM, "prod"))["prod/owned"]
        assert "ownerReferences" not in got["metadata"]


async def _keys(env: Env, want: set[str]) -> bool:
    return set(await env.items(env.dc, CM, "prod")) == want


SA = ResourceInfo(group="", version="v1", kind="ServiceAccount", plural="serviceaccounts",
                  namespaced=True)


async def test_default_service_account_is_never_synced(env: Env) -> None:
    # Every namespace gets a `default` ServiceAccount from its own cluster's controllers.
    await env.ns("prod")
    for client in (env.sc, env.dc):
        with contextlib.suppress(ApiError):  # made by the namespace controller, or by us
            await client.create(SA, {"metadata": {"name": "default", "namespace": "prod"}})
    theirs = await env.dc.get(SA, namespace="prod", name="default")
    await env.put(env.sc, SA, {"metadata": {"name": "app", "namespace": "prod"}})
    async with running(env, spec_for("ServiceAccount")) as shard:
        await synced(shard)
        assert set(await env.items(env.dc, SA, "prod")) == {"prod/app", "prod/default"}
        h = shard.health()
        assert h.conflicts == 0, h.conflict_names
        # The destination's own `default` is left exactly as it was.
        assert await env.dc.get(SA, namespace="prod", name="default") == theirs


async def test_bootstrap_token_secrets_are_not_synced(env: Env) -> None:
    await env.ns("prod")
    await env.put(env.sc, SECRET, {"metadata": {"name": "opaque", "namespace": "prod"},
                                   "type": "Opaque", "data": {"a": "YQ=="}})
    await env.put(env.sc, SECRET, {
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "prod"},
        "type": "bootstrap.kubernetes.io/token",
        "data": {"token-id": "YWJjZGVm", "token-secret": "MDEyMzQ1Njc4OWFiY2RlZg=="}})
    async with running(env, spec_for("Secret")) as shard:
        await synced(shard)
        assert set(await env.items(env.dc, SECRET, "prod")) == {"prod/opaque"}


async def test_all_namespaces_leave_system_namespaces_alone(env: Env) -> None:
    await env.ns("prod")
    for ns in ("prod", *SYSTEM):
        await env.cm(ns, "app")
    # In the destination: a copy of ours from before (it leaves the scope, like an object
    # labelled excluded) and one that is not ours (never touched, never a conflict).
    await env.cm("kube-system", "ours", client=env.dc, labels={MANAGED_BY_LABEL: "ops.dr"},
                 annotations={ANN_CONTENT_HASH: "0000000000000001"})
    await env.cm("kube-public", "app", {"theirs": "1"}, client=env.dc)
    env.dst.clear_log()
    async with running(env, spec_for()) as shard:
        await synced(shard)
        h = shard.health()
        assert h.conflicts == 0, h.conflict_names
        dst = await env.items(env.dc, CM)
        assert "prod/app" in dst and "kube-system/app" not in dst
        assert "kube-node-lease/app" not in dst
        assert dst["kube-public/app"]["data"] == {"theirs": "1"}
        await eventually(lambda: _absent(env, "kube-system", "ours"))
        # Written or deleted in the system namespaces: only our own stale copy.
        touched = [r for r in env.dst.request_log if r.method in ("POST", "PUT", "PATCH", "DELETE")
                   and any(f"/namespaces/{ns}/" in r.path for ns in SYSTEM)]
        assert [(r.method, r.path) for r in touched] == [
            ("DELETE", "/api/v1/namespaces/kube-system/configmaps/ours")]


async def test_a_rule_naming_a_system_namespace_syncs_it(env: Env) -> None:
    await env.cm("kube-system", "app")
    async with running(env, spec_for(source_namespace="kube-system")) as shard:
        await synced(shard)
        assert "kube-system/app" in await env.items(env.dc, CM, "kube-system")


async def _absent(env: Env, ns: str, name: str) -> bool:
    return f"{ns}/{name}" not in await env.items(env.dc, CM, ns)
