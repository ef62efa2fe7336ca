"""Copies of a KRMSyncer that is gone are taken over; a live one's stay a conflict (engine.ownership).

Syncer ``ops/a`` writes copies; then ``ops/b`` with the same rule starts. Whether
``b`` may take them depends on whether ``a`` still exists where it could run
(the source cluster, or as a pull-mode syncer on the destination) and on the
copy being made from the very source object ``b`` syncs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray_syncer.api.crd import load_crd
from ray_syncer.engine.transform import ANN_SOURCE_UID, ANN_SYNCER, MANAGED_BY_LABEL
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo

from .conftest import CM, Env, eventually, fast, running, spec_for, synced

CRD = ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                   "customresourcedefinitions", False)
KRMSYNCER = ResourceInfo("syncer.gkelabs.io", "v1alpha1", "KRMSyncer", "krmsyncers", True)
OPTIONS = fast(conflict_recheck_s=0.2)


async def _made_by_a(env: Env, names: list[str]) -> None:
    await env.ns("prod")
    for n in names:
        await env.cm("prod", n, {"v": "1"})
    async with running(env, spec_for(syncer_name="a")) as shard:
        await synced(shard)
    for n in names:
        labels = (await env.items(env.dc, CM, "prod"))[f"prod/{n}"]["metadata"]["labels"]
        assert labels[MANAGED_BY_LABEL] == "ops.a"


async def _syncer(client: KubeClient, name: str, *, mode: str = "push") -> None:
    try:
        await client.create(CRD, load_crd())
    except ApiError as exc:
        if not exc.conflict:
            raise
    for _ in range(100):
        client.invalidate_discovery()
        if await client.resolve("syncer.gkelabs.io", "v1alpha1", "KRMSyncer"):
            break
        await asyncio.sleep(0.05)
    await client.create(KRMSYNCER, {
        "apiVersion": "syncer.gkelabs.io/v1alpha1", "kind": "KRMSyncer",
        "metadata": {"name": name, "namespace": "ops"},
        "spec": {"mode": mode, "rules": [{"group": "", "version": "v1", "kind": "ConfigMap"}],
                 "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "k"}}}},
    })


def _labels(items: dict[str, dict[str, Any]], key: str) -> dict[str, str]:
    return dict(items[key]["metadata"].get("labels") or {})


async def test_copies_of_a_deleted_syncer_are_taken_over(env: Env) -> None:
    await _made_by_a(env, ["x", "y"])
    env.dst.clear_log()
    async with running(env, spec_for(syncer_name="b"), options=OPTIONS) as shard:
        await synced(shard)
        h = shard.health()
        assert h.conflicts == 0 and h.took_over == {"ops/a": 2}
        dst = await env.items(env.dc, CM, "prod")
        for key in ("prod/x", "prod/y"):
            assert _labels(dst, key)[MANAGED_BY_LABEL] == "ops.b"
            assert dst[key]["metadata"]["annotations"][ANN_SYNCER] == "ops/b"
        # b owns them now: a source delete removes b's copy.
        await env.delete(env.sc, CM, "prod", "x")
        await eventually(lambda: _gone(env, "prod/x"))


async def test_a_live_owner_is_a_conflict_that_names_it_until_it_is_deleted(env: Env) -> None:
    await _made_by_a(env, ["x"])
    await env.ns("ops", side="src")
    await _syncer(env.sc, "a")
    env.dst.clear_log()
    async with running(env, spec_for(syncer_name="b"), options=OPTIONS) as shard:
        await synced(shard)
        await eventually(lambda: shard.health().conflicts == 1)
        assert "KRMSyncer ops/a, which still exists" in shard.health().message
        await asyncio.sleep(0.5)  # several re-checks
        writes = [r for r in env.dst.request_log if r.method in ("PUT", "PATCH", "DELETE")]
        assert writes == [] and _labels(await env.items(env.dc, CM, "prod"), "prod/x")[
            MANAGED_BY_LABEL] == "ops.a"
        # The user deletes a: b takes its copy over without any other change.
        await env.delete(env.sc, KRMSYNCER, "ops", "a")
        await eventually(lambda: shard.health().took_over == {"ops/a": 1}, timeout=10)
        await eventually(lambda: shard.health().conflicts == 0)
        assert _labels(await env.items(env.dc, CM, "prod"), "prod/x")[MANAGED_BY_LABEL] == "ops.b"


async def test_a_pull_mode_owner_on_the_destination_is_live_a_push_mode_one_is_not(env: Env) -> None:
    await _made_by_a(env, ["x"])
    await env.ns("ops", side="dst")
    # A push-mode ops/a on the destination syncs *from* there: it did not make our copies.
    await _syncer(env.dc, "a", mode="push")
    async with running(env, spec_for(syncer_name="b"), options=OPTIONS) as shard:
        await synced(shard)
        assert shard.health().took_over == {"ops/a": 1}
    # Now a pull-mode ops/a on the destination (it pulls from our source): a live owner.
    await env.delete(env.dc, KRMSYNCER, "ops", "a")
    await _syncer(env.dc, "a", mode="pull")
    await env.cm("prod", "z", {"v": "1"})
    async with running(env, spec_for(syncer_name="a"), options=OPTIONS) as shard:
        await synced(shard)  # a makes z
    async with running(env, spec_for(syncer_name="c"), options=OPTIONS) as shard:
        await eventually(lambda: shard.health().conflicts == 2)  # x (b's: b is gone), z (a's)
        message = shard.health().message
        assert "KRMSyncer ops/a, which still exists" in message
        assert "prod/z" in message


async def test_a_copy_made_from_another_source_object_is_never_taken_over(env: Env) -> None:
    # Same names, but made from another cluster's object (its source uid is not ours).
    await env.ns("prod")
    await env.cm("prod", "x", {"v": "mine"})
    await env.cm("prod", "x", {"v": "theirs"}, client=env.dc, labels={MANAGED_BY_LABEL: "ops.a"},
                 annotations={ANN_SYNCER: "ops/a", ANN_SOURCE_UID: "11111111-2222-3333-4444-555555555555"})
    env.dst.clear_log()
    async with running(env, spec_for(syncer_name="b"), options=OPTIONS) as shard:
        await synced(shard)
        await eventually(lambda: shard.health().conflicts == 1)
        await asyncio.sleep(0.5)
        assert shard.health().took_over == {}
    assert (await env.items(env.dc, CM, "prod"))["prod/x"]["data"] == {"v": "theirs"}
    assert [r for r in env.dst.request_log if r.method in ("PUT", "PATCH", "DELETE")] == []


async def test_a_new_copy_costs_one_request(env: Env) -> None:
    await env.ns("bulk")
    for i in range(50):
        await env.cm("bulk", f"c{i}", {"i": str(i)})
    async with running(env, spec_for(source_namespace="bulk")) as shard:
        await synced(shard)
    per_object = [(r.method, r.path) for r in env.dst.request_log
                  if "/namespaces/bulk/configmaps" in r.path and r.query.get("watch") != "true"
                  and not (r.method == "GET" and r.path.endswith("/configmaps"))]
    assert len(per_object) == 50
    assert {m for m, _ in per_object} == {"POST"}


async def _gone(env: Env, key: str) -> bool:
    return key not in await env.items(env.dc, CM)
