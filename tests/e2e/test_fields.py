"""Removing a field in the source removes it in the destination, for copies the syncer created.

A new copy is created with one POST, and kube-apiserver files a POST's fields
under the creator's Update entry, where server-side apply cannot remove them;
the engine hands them to its apply manager when a removal needs it
(engine.ownership). This holds on both substrates, and costs no extra request
when nothing is removed.
"""

from __future__ import annotations

from ray_syncer.kube.client import KubeClient

from .harness import (
    CM,
    Clusters,
    cm_data,
    ensure_namespace,
    get_or_none,
    krmsyncer,
    operator,
    put_secret,
    put_syncer,
    unique,
    wait_for,
)


async def test_removed_data_key_label_and_annotation_go_from_a_created_copy(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("fields")
    for c in (src, dst):
        await ensure_namespace(c, home)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    full = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": home, "labels": {"tier": "web"},
                         "annotations": {"note": "hello"}},
            "data": {"a": "1", "b": "2"}}
    await src.apply(CM, full, field_manager="app")
    rule = {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [home]}
    async with operator(clusters, namespace=home):
        await put_syncer(src, krmsyncer(home, "s", rules=[rule]))
        await wait_for(lambda: _data(dst, home, {"a": "1", "b": "2"}), what="created copy")
        # The application drops b, the label and the annotation (its own apply, without them).
        await src.apply(CM, {**full, "metadata": {"name": "c", "namespace": home},
                             "data": {"a": "1"}}, field_manager="app")
        await wait_for(lambda: _data(dst, home, {"a": "1"}), what="b removed in the copy")
        copy = await get_or_none(dst, CM, namespace=home, name="c")
        assert copy is not None
        assert "tier" not in (copy["metadata"].get("labels") or {})
        assert "note" not in (copy["metadata"].get("annotations") or {})
        managers = {(e["manager"], e["operation"]) for e in copy["metadata"]["managedFields"]}
        assert ("krm-syncer", "Apply") in managers


async def _data(dst: KubeClient, ns: str, want: dict[str, str]) -> bool:
    return await cm_data(dst, ns, "c") == want
