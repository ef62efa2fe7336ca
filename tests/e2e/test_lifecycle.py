"""A KRMSyncer's life: created, edited, suspended, resumed, deleted — shard actors follow."""

from __future__ import annotations

from ray_syncer.kube.client import KubeClient
from ray_syncer.operator.reconciler import KRMSYNCER_RES

from .harness import (
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    shard_actors,
    syncer_status,
    unique,
    wait_condition,
    wait_for,
)


def cm_rule(*namespaces: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": list(namespaces)}


async def test_created_edited_suspended_resumed_deleted(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home, a, b = unique("life"), unique("la"), unique("lb")
    for c in (src, dst):
        for ns in (home, a, b):
            await ensure_namespace(c, ns)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    prefix = f"{home}/s/"

    def expected(*suffixes: str) -> list[str]:
        return sorted(prefix + s for s in suffixes)

    async def actors_are(*suffixes: str) -> bool:
        return sorted(shard_actors(home)) == expected(*suffixes)

    async with operator(clusters, namespace=home):
        # Created: one shard per namespace.
        await put_syncer(src, krmsyncer(home, "s", rules=[cm_rule(a, b)]))
        await wait_for(
            lambda: actors_are(f"core/ConfigMap/{a}", f"core/ConfigMap/{b}"), what="2 shards"
        )
        await put_cm(src, a, "one", {"v": "1"})
        await put_cm(src, b, "two", {"v": "1"})
        await wait_for(lambda: _eq(dst, a, "one", {"v": "1"}), what="a synced")
        await wait_for(lambda: _eq(dst, b, "two", {"v": "1"}), what="b synced")

        # Edited: namespace b removed, a Secret rule added.
        edited = krmsyncer(
            home,
            "s",
            rules=[
                cm_rule(a),
                {"group": "", "version": "v1", "kind": "Service", "namespaces": [a]},
            ],
        )
        await put_syncer(src, edited)
        await wait_for(
            lambda: actors_are(f"core/ConfigMap/{a}", f"core/Service/{a}"),
            what="b stopped, Service started",
        )
        try:
            st = await wait_for(lambda: _status_at(src, home, 2), what="status of generation 2")
        except AssertionError:
            obj = await src.get(KRMSYNCER_RES, namespace=home, name="s")
            print("DEBUG", obj["metadata"], obj.get("status"))
            raise
        assert st["shardCount"] == 2
        assert [c["status"] for c in st["conditions"] if c["type"] == "Ready"] == ["True"]
        # b is no longer synced (and its destination copy is kept).
        await put_cm(src, b, "two", {"v": "2"})
        await put_cm(src, a, "one", {"v": "2"})
        await wait_for(lambda: _eq(dst, a, "one", {"v": "2"}), what="a still synced")
        assert await cm_data(dst, b, "two") == {"v": "1"}

        # Suspended: no shards, no writes.
        await put_syncer(src, {**edited, "spec": {**edited["spec"], "suspend": True}})
        await wait_for(lambda: actors_are(), what="all shards stopped")
        await wait_condition(src, home, "s", "Suspended", "True", reason="Suspended")
        await put_cm(src, a, "one", {"v": "3"})
        await wait_condition(src, home, "s", "Ready", "True", reason="Suspended")
        assert await cm_data(dst, a, "one") == {"v": "2"}

        # Resumed: the change made while suspended arrives.
        await put_syncer(src, {**edited, "spec": {**edited["spec"], "suspend": False}})
        await wait_for(lambda: _eq(dst, a, "one", {"v": "3"}), what="caught up after resume")
        await wait_condition(src, home, "s", "Suspended", "False")

        # Deleted: shards stop; destination data stays.
        await src.delete(KRMSYNCER_RES, namespace=home, name="s")
        await wait_for(lambda: actors_are(), what="shards gone after delete")
        assert await cm_data(dst, a, "one") == {"v": "3"}


async def _status_at(c: KubeClient, ns: str, generation: int) -> dict[str, object] | None:
    st = await syncer_status(c, ns, "s")
    ready = [x for x in st.get("conditions", []) if x["type"] == "Ready"]
    if st.get("observedGeneration") == generation and ready and ready[0]["reason"] == "Running":
        return st
    return None


async def _eq(c: KubeClient, ns: str, name: str, want: dict[str, str]) -> bool:
    return await cm_data(c, ns, name) == want
