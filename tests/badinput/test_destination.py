"""Hostile destinations and awkward objects: per-kind RBAC, missing kinds, huge and immutable
objects, namespace collisions, deletion mid-sync. Each problem is precise in status, a Warning
Event, and never stops the canary or the healthy parts of the same syncer.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

from ray_syncer_testkit.handlers import Target

from ray_syncer.engine.transform import (
    ANN_SOURCE_NAMESPACE,
    MANAGED_BY_LABEL,
    managed_by_value,
)
from ray_syncer.kube.client import KubeClient, ResourceInfo
from ray_syncer.operator.reconciler import KRMSYNCER_RES, SECRET_RES

from .world import (
    CM,
    World,
    canary_alive,
    cm_rule,
    dest_ref,
    dest_writes,
    ensure_ns,
    get_or_none,
    install_crd,
    put_cm,
    put_secret,
    put_syncer,
    status_of,
    syncer_obj,
    unique,
    wait_condition,
    wait_for,
    wait_warning,
    widget_crd,
)


async def _home(world: World, src: KubeClient, dst: KubeClient, *namespaces: str) -> str:
    ns = unique("home")
    for c in (src, dst):
        for n in (ns, *namespaces):
            await ensure_ns(c, n)
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig()})
    return ns


def _shard(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in status.get("shards", []) if s.get("kind") == kind)


async def test_token_lacking_rbac_is_reported_per_kind(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    data = unique("data")
    ns = await _home(world, src, dst, data)
    token = world.new_token("no-cm-rbac")
    granted: list[bool] = []

    def allow(verb: str, group: str, resource: str, namespace: str | None) -> bool:
        # May read everything and write Secrets, but not write ConfigMaps in `data` (until granted).
        return bool(granted) or not (
            resource == "configmaps" and namespace == data and verb not in ("get", "list", "watch")
        )

    world.dst.add_user(token, user="half-rbac", allow=allow)
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig(token=token)})
    await put_cm(src, data, "c1", {"k": "v"})
    await put_secret(src, data, "s1", {"k": "v"})
    secret_rule = {"group": "", "version": "v1", "kind": "Secret", "namespaces": [data]}
    await put_syncer(
        src, syncer_obj(ns, "bad", {"rules": [cm_rule(data), secret_rule], "destination": dest_ref()})
    )
    cm_shard = f"{ns}/bad/core/ConfigMap/{data}"
    degraded = await wait_condition(src, ns, "bad", "Degraded", "True", "ShardDegraded")
    assert degraded["message"].startswith(f"1 shard(s) with problems; ShardDegraded: {cm_shard} ("), degraded
    assert "403 Forbidden" in degraded["message"]
    st = await status_of(src, ns, "bad")
    assert "403" in _shard(st, "ConfigMap")["message"]
    assert "message" not in _shard(st, "Secret")  # the other kind is healthy
    await wait_warning(src, ns, "bad", "ShardDegraded")
    # The permitted kind syncs; the forbidden one never landed.
    await wait_for(lambda: get_or_none(dst, SECRET_RES, data, "s1"), what="the Secret synced")
    assert await get_or_none(dst, CM, data, "c1") is None
    await canary_alive(world)
    # RBAC fixed: the retries succeed and the problem clears (not Degraded forever).
    granted.append(True)
    await wait_for(lambda: get_or_none(dst, CM, data, "c1"), what="c1 synced once granted")
    await wait_condition(src, ns, "bad", "Degraded", "False", "Healthy")
    await wait_condition(src, ns, "bad", "Synced", "True", "Synced")


async def test_unknown_kind_on_the_source(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = await _home(world, src, dst)
    rule = {"group": "example.com", "version": "v1", "kind": "Gizmo", "namespaces": [ns]}
    await put_syncer(src, syncer_obj(ns, "bad", {"rules": [rule, cm_rule(ns)], "destination": dest_ref()}))
    degraded = await wait_condition(src, ns, "bad", "Degraded", "True", "KindNotServed")
    assert degraded["message"] == (
        "rules[0] example.com/v1/Gizmo is not served by the source cluster (is its CRD installed?)"
    )
    st = await status_of(src, ns, "bad")
    assert "rules[0] example.com/v1/Gizmo -> not served by the source cluster" in st["expandedRules"]
    await wait_warning(src, ns, "bad", "KindNotServed")
    # The other rule still runs.
    await put_cm(src, ns, "still", {"k": "v"})
    await wait_for(lambda: get_or_none(dst, CM, ns, "still"), what="the served kind syncs")
    await canary_alive(world)


async def test_kind_missing_on_destination_recovers_when_crd_installed(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    ns = await _home(world, src, dst)
    group = f"w{uuid.uuid4().hex[:6]}.example.com"
    crd = widget_crd("widgets", "Widget", group)
    await install_crd(src, crd)
    widgets = ResourceInfo(group, "v1", "Widget", "widgets", True, has_status=True)
    await src.create(
        widgets,
        {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": ns},
         "spec": {"size": 3}},
        namespace=ns,
    )
    rule = {"group": group, "version": "v1", "kind": "Widget", "namespaces": [ns]}
    await put_syncer(src, syncer_obj(ns, "bad", {"rules": [rule], "destination": dest_ref()}))
    degraded = await wait_condition(src, ns, "bad", "Degraded", "True", "KindMissing")
    assert f"the destination cluster does not serve {group}/v1/Widget (is its CRD installed there?)" in (
        degraded["message"]
    )
    await wait_warning(src, ns, "bad", "KindMissing")
    await canary_alive(world)
    # The fix: install the CRD on the destination; the shard notices on its own.
    await install_crd(dst, crd)
    got = await wait_for(lambda: get_or_none(dst, widgets, ns, "w1"), timeout=20, what="w1 synced")
    assert got["spec"] == {"size": 3}
    await wait_condition(src, ns, "bad", "Degraded", "False", "Healthy", timeout=20)


async def test_huge_object_rejected_by_destination(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    ns = await _home(world, src, dst)
    # 1.1 MiB: the source holds it (stored directly), the destination's 1 MiB body limit refuses it.
    def create(server: Any) -> None:
        rt = server.registry.get("", "v1", "configmaps")
        server.api.create(
            Target(rt, ns),
            {"metadata": {"name": "huge", "namespace": ns}, "data": {"blob": "x" * (1100 * 1024)}},
            {},
            user_agent="test",
        )

    world.src.call(create)
    await put_cm(src, ns, "small", {"k": "v"})
    await put_syncer(src, syncer_obj(ns, "bad", {"rules": [cm_rule(ns)], "destination": dest_ref()}))
    degraded = await wait_condition(src, ns, "bad", "Degraded", "True", "ObjectErrors")
    assert f"{ns}/huge: 413" in degraded["message"], degraded["message"]
    await wait_warning(src, ns, "bad", "ObjectErrors")
    await wait_for(lambda: get_or_none(dst, CM, ns, "small"), what="the small object syncs")
    # Terminal for this version: not retried in a loop (1 MiB per attempt is not free).
    await asyncio.sleep(2.0)
    # (A new copy is a POST to the collection: the huge one is the one answered 413.)
    attempts = [w for w in dest_writes(world.dst, ns) if w.endswith("-> 413")]
    assert 1 <= len(attempts) <= 2, attempts
    await canary_alive(world)


async def _owned_secret(world: World, dst: KubeClient, ns: str, syncer: str, type_: str) -> None:
    """A copy an earlier run of this syncer wrote (ownership marks), with an older type."""
    await dst.create(
        SECRET_RES,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "s1",
                "namespace": ns,
                "labels": {MANAGED_BY_LABEL: managed_by_value(ns, syncer)},
                "annotations": {ANN_SOURCE_NAMESPACE: ns},
            },
            "type": type_,
            "data": {"k": base64.b64encode(b"old").decode()},
        },
        namespace=ns,
    )


async def _typed_secret(src: KubeClient, ns: str, type_: str) -> None:
    await src.create(
        SECRET_RES,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s1", "namespace": ns},
            "type": type_,
            "data": {"k": base64.b64encode(b"new").decode()},
        },
        namespace=ns,
    )


async def test_immutable_field_change_reported(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = await _home(world, src, dst)
    await _owned_secret(world, dst, ns, "bad", "Opaque")
    await _typed_secret(src, ns, "example.com/v2")
    rule = {"group": "", "version": "v1", "kind": "Secret", "namespaces": [ns],
            "immutablePolicy": "Report", "labelSelector": {"matchLabels": {}}}
    await put_syncer(src, syncer_obj(ns, "bad", {"rules": [rule], "destination": dest_ref()}))
    degraded = await wait_condition(src, ns, "bad", "Degraded", "True", "ObjectErrors")
    assert f"{ns}/s1: 422 Invalid" in degraded["message"] and "immutable" in degraded["message"]
    await wait_warning(src, ns, "bad", "ObjectErrors")
    kept = await dst.get(SECRET_RES, namespace=ns, name="s1")
    assert kept["type"] == "Opaque"  # Report: only reported
    await canary_alive(world)


async def test_immutable_field_change_recreated(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = await _home(world, src, dst)
    await _owned_secret(world, dst, ns, "good", "Opaque")
    await _typed_secret(src, ns, "example.com/v2")
    rule = {"group": "", "version": "v1", "kind": "Secret", "namespaces": [ns]}
    await put_syncer(src, syncer_obj(ns, "good", {"rules": [rule], "destination": dest_ref()}))

    async def recreated() -> bool:
        got = await get_or_none(dst, SECRET_RES, ns, "s1")
        return bool(got and got.get("type") == "example.com/v2")

    await wait_for(recreated, what="the copy recreated with the new type")
    deletes = [w for w in dest_writes(world.dst, ns) if w.startswith("DELETE")]
    assert len(deletes) == 1, deletes


async def test_namespace_mapping_collision(world: World, src: KubeClient, dst: KubeClient) -> None:
    a, b = unique("col-a"), unique("col-b")
    ns = await _home(world, src, dst, a, b)
    tag = uuid.uuid4().hex[:8]
    merged = unique("merged")
    await ensure_ns(dst, merged)
    for n, value in ((a, "from-a"), (b, "from-b")):
        await src.apply(
            CM,
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "same", "namespace": n, "labels": {"collide": tag}},
             "data": {"v": value}},
            field_manager="badinput",
        )
    rule = {"group": "", "version": "v1", "kind": "ConfigMap",
            "labelSelector": {"matchLabels": {"collide": tag}}}
    dest = {**dest_ref(), "namespace": merged}
    await put_syncer(src, syncer_obj(ns, "bad", {"rules": [rule], "destination": dest}))
    degraded = await wait_condition(src, ns, "bad", "Degraded", "True", "Conflicts")
    first, second = sorted((a, b))
    assert f"{merged}/same <- {first}, {second} (winner {first})" in degraded["message"], degraded
    await wait_warning(src, ns, "bad", "Conflicts")
    got = await wait_for(lambda: get_or_none(dst, CM, merged, "same"), what="the winner synced")
    assert got["data"] == {"v": "from-a" if first == a else "from-b"}
    await canary_alive(world)


async def test_deleted_while_syncing_stops_cleanly_and_keeps_data(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    ns = await _home(world, src, dst)
    for i in range(5):
        await put_cm(src, ns, f"c{i}", {"i": str(i)})
    await put_syncer(src, syncer_obj(ns, "going", {"rules": [cm_rule(ns)], "destination": dest_ref()}))

    async def all_there() -> bool:
        return all([await get_or_none(dst, CM, ns, f"c{i}") for i in range(5)])

    await wait_for(all_there, what="5 copies")
    # Deleted with changes still arriving.
    await put_cm(src, ns, "c0", {"i": "changed"})
    await src.delete(KRMSYNCER_RES, namespace=ns, name="going")

    async def stopped() -> bool:
        return not [s for s in world.op.running_shards() if s.startswith(f"{ns}/")]

    await wait_for(stopped, what="the shard stopped")
    assert all([await get_or_none(dst, CM, ns, f"c{i}") for i in range(5)])
    assert [w for w in dest_writes(world.dst, ns) if w.startswith("DELETE")] == []
    errors = [line for line in world.capture.lines if line.startswith(("ERROR", "CRITICAL")) and ns in line]
    assert errors == []
    await canary_alive(world)


async def test_suspended_means_silent_then_resumes(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = await _home(world, src, dst)
    await put_cm(src, ns, "c1", {"k": "v"})
    await put_syncer(
        src, syncer_obj(ns, "quiet", {"rules": [cm_rule(ns)], "destination": dest_ref(), "suspend": True})
    )
    await wait_condition(src, ns, "quiet", "Suspended", "True", "Suspended")
    await asyncio.sleep(1.0)
    assert dest_writes(world.dst, ns) == []
    obj = await src.get(KRMSYNCER_RES, namespace=ns, name="quiet")
    obj["spec"]["suspend"] = False
    await src.request("PUT", KRMSYNCER_RES.path(namespace=ns, name="quiet"), body=obj)
    await wait_for(lambda: get_or_none(dst, CM, ns, "c1"), what="synced after resume")


async def test_rules_expanding_to_too_many_shards_are_refused(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    # Within every model limit (5 rules x 256 namespaces), yet 1,280 shards: refused, not spawned.
    ns = await _home(world, src, dst)
    rules = [
        cm_rule(*[f"t{r}-{i}" for i in range(256)]) for r in range(5)
    ]
    await put_syncer(src, syncer_obj(ns, "bad", {"rules": rules, "destination": dest_ref()}))
    ready = await wait_condition(src, ns, "bad", "Ready", "False", "TooManyShards")
    assert ready["message"] == (
        "the rules expand to 1280 shards (one per kind and listed namespace); a KRMSyncer may "
        "have at most 1000: list fewer namespaces, omit namespaces to sync all of them with one "
        "shard per kind, or split the KRMSyncer"
    )
    await wait_warning(src, ns, "bad", "TooManyShards")
    assert not [s for s in world.op.running_shards() if s.startswith(f"{ns}/")]
    await canary_alive(world)


async def test_longest_syncer_name_still_marks_ownership(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    # 253 characters: far over a label value's 63; the managed-by label must still be valid.
    ns = await _home(world, src, dst)
    name = ("a" * 60 + ".") * 4 + "z" * 9
    assert len(name) == 253
    await put_cm(src, ns, "c1", {"k": "v"})
    await put_syncer(src, syncer_obj(ns, name, {"rules": [cm_rule(ns)], "destination": dest_ref()}))
    got = await wait_for(lambda: get_or_none(dst, CM, ns, "c1"), what="synced by the long name")
    label = got["metadata"]["labels"][MANAGED_BY_LABEL]
    assert label == managed_by_value(ns, name) and len(label) <= 63
    await wait_condition(src, ns, name, "Synced", "True", "Synced")
    # Deleting in the source deletes the copy: ownership is recognised through the hashed label.
    await src.delete(CM, namespace=ns, name="c1")

    async def gone() -> bool:
        return await get_or_none(dst, CM, ns, "c1") is None

    await wait_for(gone, what="the copy deleted")


async def test_shortest_resync_period_costs_no_writes(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    # resyncPeriod 1s relists both sides every second: with nothing changing, zero writes.
    ns = await _home(world, src, dst)
    for i in range(5):
        await put_cm(src, ns, f"c{i}", {"i": str(i)})
    await put_syncer(src, syncer_obj(ns, "busy", {
        "rules": [cm_rule(ns)], "destination": dest_ref(), "resyncPeriod": "1s"}))
    await wait_condition(src, ns, "busy", "Synced", "True", "Synced")
    before = len(dest_writes(world.dst, ns))
    lists_before = _lists(world, ns)
    await asyncio.sleep(4.0)
    assert len(dest_writes(world.dst, ns)) == before
    assert _lists(world, ns) >= lists_before + 2  # it did resync, and it was free


def _lists(world: World, ns: str) -> int:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    return sum(
        1 for r in list(world.dst.request_log)
        if r.method == "GET" and r.path == path and r.query.get("watch") not in ("1", "true")
    )


async def test_two_syncers_claiming_the_same_objects_never_clobber(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    data = unique("shared")
    ns = await _home(world, src, dst, data)
    await put_cm(src, data, "c1", {"k": "v"})
    await put_syncer(src, syncer_obj(ns, "first", {"rules": [cm_rule(data)], "destination": dest_ref()}))
    got = await wait_for(lambda: get_or_none(dst, CM, data, "c1"), what="first syncer's copy")
    rv = got["metadata"]["resourceVersion"]
    await put_syncer(src, syncer_obj(ns, "second", {"rules": [cm_rule(data)], "destination": dest_ref()}))
    degraded = await wait_condition(src, ns, "second", "Degraded", "True", "Conflicts")
    assert f"{data}/c1: destination object exists, made by KRMSyncer {ns}/first, which still " \
        "exists" in degraded["message"], degraded["message"]
    await wait_warning(src, ns, "second", "Conflicts")
    st = await status_of(src, ns, "second")
    assert st["conflictsSample"] == [f"{data}/c1"]
    after = await dst.get(CM, namespace=data, name="c1")
    assert after["metadata"]["resourceVersion"] == rv
    assert after["metadata"]["labels"][MANAGED_BY_LABEL] == managed_by_value(ns, "first")
