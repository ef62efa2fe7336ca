"""Behaviour 4 (in a live shard): every default exclusion, and includeOwned."""

from __future__ import annotations

from .conftest import CM, SECRET, Env, eventually, running, spec_for, synced

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
