"""Replacing a KRMSyncer: the new one takes over the old one's copies; a live owner stays a conflict.

Users rename and replace KRMSyncers all the time. The old syncer's copies stay
in the destination by design; once it is gone, a syncer whose rules cover them
takes them over and says so in an Event. While the owner lives, the copies are
its own: a conflict that names it. A copy made from another cluster's object
is never taken over.
"""

from __future__ import annotations

from ray_syncer.engine.transform import ANN_SOURCE_UID, ANN_SYNCER, MANAGED_BY_LABEL
from ray_syncer.kube.client import KubeClient
from ray_syncer.operator.reconciler import KRMSYNCER_RES
from ray_syncer.operator.status import condition

from .harness import (
    CM,
    Clusters,
    cm_data,
    ensure_namespace,
    get_or_none,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    syncer_status,
    unique,
    wait_condition,
    wait_for,
)
from .test_credentials import EVENTS


def cm_rule(ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}


async def _label(dst: KubeClient, ns: str, name: str) -> str | None:
    obj = await get_or_none(dst, CM, namespace=ns, name=name)
    return None if obj is None else (obj["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL)


async def _setup(clusters: Clusters, src: KubeClient, dst: KubeClient, prefix: str) -> str:
    home = unique(prefix)
    for c in (src, dst):
        await ensure_namespace(c, home)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    for name in ("x", "y"):
        await put_cm(src, home, name, {"v": "1"})
    return home


async def test_renamed_syncer_takes_over_the_copies_and_says_from_whom(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = await _setup(clusters, src, dst, "rename")
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "old", rules=[cm_rule(home)]))
        await wait_for(lambda: _is(dst, home, "y", f"{home}.old"), what="old's copies")
        await src.delete(KRMSYNCER_RES, namespace=home, name="old")
        await wait_for(lambda: _gone(src, home, "old"), what="old deleted")
        assert await _label(dst, home, "x") == f"{home}.old"  # its copies stay, by design

        await put_syncer(src, krmsyncer(home, "new", rules=[cm_rule(home)]))
        await wait_condition(src, home, "new", "Synced", "True", timeout=60)
        st = await syncer_status(src, home, "new")
        assert condition(st, "Degraded")["status"] == "False", st  # type: ignore[index]
        for name in ("x", "y"):
            assert await _label(dst, home, name) == f"{home}.new"
        # New and updated objects flow as before, under the new owner.
        await put_cm(src, home, "x", {"v": "2"})
        await wait_for(lambda: _data_is(dst, home, "x", {"v": "2"}), what="update after takeover")

        async def told() -> list[str]:
            items, _ = await src.list_all(EVENTS, namespace=home)
            return [e["message"] for e in items if e.get("reason") == "TookOver"
                    and e["involvedObject"]["name"] == "new"]

        messages = await wait_for(told, what="a TookOver Event")
        assert f"KRMSyncer {home}/old" in messages[0] and "2 ConfigMap copies" in messages[0]


async def test_two_live_syncers_over_the_same_objects_stay_a_conflict_naming_the_owner(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = await _setup(clusters, src, dst, "overlap")
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "first", rules=[cm_rule(home)]))
        await wait_condition(src, home, "first", "Synced", "True", timeout=60)
        await put_syncer(src, krmsyncer(home, "second", rules=[cm_rule(home)]))
        st = await wait_condition(src, home, "second", "Degraded", "True", reason="Conflicts",
                                  timeout=60)
        message = condition(st, "Degraded")["message"]  # type: ignore[index]
        assert f"KRMSyncer {home}/first, which still exists" in message
        for name in ("x", "y"):
            assert await _label(dst, home, name) == f"{home}.first"


async def test_a_copy_from_another_source_cluster_is_not_taken_over(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = await _setup(clusters, src, dst, "elsewhere")
    # x in the destination was made by a syncer of another source cluster (whose syncer we
    # cannot see): same names, but not from our source object.
    theirs = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "x", "namespace": home,
                           "labels": {MANAGED_BY_LABEL: f"{home}.gone"},
                           "annotations": {ANN_SYNCER: f"{home}/gone",
                                           ANN_SOURCE_UID: "00000000-1111-2222-3333-444444444444"}},
              "data": {"v": "other-cluster"}}
    await dst.apply(CM, theirs, field_manager="other-operator")
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(home)]))
        st = await wait_condition(src, home, "s", "Degraded", "True", reason="Conflicts", timeout=60)
        assert f"{home}/x" in condition(st, "Degraded")["message"]  # type: ignore[index]
        await wait_for(lambda: _is(dst, home, "y", f"{home}.s"), what="y synced")
    assert await cm_data(dst, home, "x") == {"v": "other-cluster"}
    assert await _label(dst, home, "x") == f"{home}.gone"


async def _is(dst: KubeClient, ns: str, name: str, label: str) -> bool:
    return await _label(dst, ns, name) == label


async def _data_is(dst: KubeClient, ns: str, name: str, data: dict[str, str]) -> bool:
    return await cm_data(dst, ns, name) == data


async def _gone(src: KubeClient, ns: str, name: str) -> bool:
    return await get_or_none(src, KRMSYNCER_RES, namespace=ns, name=name) is None
