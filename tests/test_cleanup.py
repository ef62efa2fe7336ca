"""The cleanup of a test run and its leftover check (tests/cleanup.py), on in-memory servers.

Objects are left on purpose, as a test that forgot them (or was interrupted) would leave
them: the check must name each one and fail; the cleanup must delete KRMSyncers before the
namespaces, on both clusters, and leave alone what is not the run's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from ray_syncer_testkit import start_in_thread

from ray_syncer.api.crd import load_crd
from tests import cleanup
from tests.cleanup import (
    ACCOUNTS,
    BINDINGS,
    CRDS,
    KRMSYNCERS,
    NAMESPACES,
    USERS_NS,
    LeftoversError,
    client_for,
)


@pytest.fixture
def pair() -> Iterator[dict[str, Any]]:
    servers = [start_in_thread(name=n) for n in ("source", "destination")]
    try:
        kubeconfigs = {n: s.kubeconfig() for n, s in zip(("source", "destination"), servers,
                                                          strict=True)}
        for kc in kubeconfigs.values():
            asyncio.run(_install_crd(kc))
        yield {"kubeconfigs": kubeconfigs, "servers": dict(zip(kubeconfigs, servers, strict=True))}
    finally:
        for s in servers:
            s.stop()


async def _install_crd(kubeconfig: str) -> None:
    async with client_for(kubeconfig) as c:
        await c.create(CRDS, load_crd())
        for _ in range(100):
            c.invalidate_discovery()
            if await c.resolve("syncer.gkelabs.io", "v1alpha1", "KRMSyncer"):
                return
            await asyncio.sleep(0.05)


def _syncer(ns: str, name: str, *, ours: bool = True) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns}
    return {
        "apiVersion": "syncer.gkelabs.io/v1alpha1", "kind": "KRMSyncer",
        "metadata": cleanup.labelled(meta) if ours else meta,
        "spec": {"rules": [{"group": "", "version": "v1", "kind": "ConfigMap"}],
                 "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "k"}}}},
    }


def _ns(name: str, *, ours: bool = True) -> dict[str, Any]:
    meta = {"name": name}
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": cleanup.labelled(meta) if ours else meta}


async def _leave(kubeconfig: str, objs: list[tuple[Any, dict[str, Any]]]) -> None:
    async with client_for(kubeconfig) as c:
        for res, body in objs:
            await c.create(res, body)


def _left(kubeconfig: str, names: set[str]) -> list[str]:
    async def go() -> list[str]:
        async with client_for(kubeconfig) as c:
            return await cleanup.leftovers(c, names)
    return asyncio.run(go())


def test_the_check_names_what_a_test_left_and_fails_the_run(pair: dict[str, Any]) -> None:
    src, dst = pair["kubeconfigs"]["source"], pair["kubeconfigs"]["destination"]
    asyncio.run(_leave(src, [
        (NAMESPACES, _ns("walk-1a2b3c")),
        (KRMSYNCERS, _syncer("walk-1a2b3c", "app")),
        (NAMESPACES, _ns(USERS_NS)),
        (ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": cleanup.labelled({"name": "u-1", "namespace": USERS_NS})}),
        (BINDINGS, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": cleanup.labelled({"name": "e2e-u-1"}),
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "view"},
                    "subjects": [{"kind": "ServiceAccount", "name": "u-1",
                                  "namespace": USERS_NS}]}),
    ]))
    # The destination namespace the syncer made: not labelled by us, but a noted name.
    asyncio.run(_leave(dst, [(NAMESPACES, _ns("walk-1a2b3c", ours=False))]))
    names = {"walk-1a2b3c", "u-1"}
    assert _left(src, names) == [
        "ClusterRoleBinding e2e-u-1",
        "KRMSyncer walk-1a2b3c/app",
        "Namespace walk-1a2b3c",
        f"ServiceAccount {USERS_NS}/u-1",
    ]
    assert _left(dst, names) == ["Namespace walk-1a2b3c"]

    with pytest.raises(LeftoversError) as failed:
        cleanup.finish(pair["kubeconfigs"], names, wait_s=0)
    message = str(failed.value)
    assert "left 5 object(s)" in message and cleanup.RUN_ID in message
    assert "source: KRMSyncer walk-1a2b3c/app" in message
    assert "destination: Namespace walk-1a2b3c" in message
    # ... and they are gone, on both sides, with the shared namespace of the identities.
    assert _left(src, names) == [] and _left(dst, names) == []

    async def users_ns_gone() -> bool:
        async with client_for(src) as c:
            return await cleanup._gone(c, NAMESPACES, None, USERS_NS)
    assert asyncio.run(users_ns_gone())


def test_a_clean_run_passes_the_check(pair: dict[str, Any]) -> None:
    cleanup.finish(pair["kubeconfigs"], {"never-made-1a2b3c"}, wait_s=0)


def test_the_check_leaves_other_peoples_objects_alone(pair: dict[str, Any]) -> None:
    src = pair["kubeconfigs"]["source"]
    # A user's namespace and KRMSyncer, and another run's: none of this run's business.
    asyncio.run(_leave(src, [
        (NAMESPACES, _ns("prod", ours=False)),
        (KRMSYNCERS, _syncer("prod", "theirs", ours=False)),
        (NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "other-run", "labels": {cleanup.RUN_LABEL: "another-run"}}}),
    ]))
    cleanup.finish(pair["kubeconfigs"], {"walk-1a2b3c"}, wait_s=0)
    assert _left(src, {"prod", "other-run"}) == [
        "KRMSyncer prod/theirs", "Namespace other-run", "Namespace prod"]


def test_after_a_test_its_krmsyncers_go_before_its_namespaces_on_both_sides(
    pair: dict[str, Any],
) -> None:
    src, dst = pair["kubeconfigs"]["source"], pair["kubeconfigs"]["destination"]
    for kc in (src, dst):
        asyncio.run(_leave(kc, [(NAMESPACES, _ns("bidi-1a2b3c")),
                                (KRMSYNCERS, _syncer("bidi-1a2b3c", "s"))]))
    servers = pair["servers"]
    marks = {n: len(s.request_log) for n, s in servers.items()}
    cleanup.clean(pair["kubeconfigs"], {"bidi-1a2b3c"})
    for name, server in servers.items():
        deletes = [r.path for r in server.request_log[marks[name]:] if r.method == "DELETE"]
        assert deletes == ["/apis/syncer.gkelabs.io/v1alpha1/namespaces/bidi-1a2b3c/krmsyncers/s",
                           "/api/v1/namespaces/bidi-1a2b3c"], (name, deletes)
    assert _left(src, {"bidi-1a2b3c"}) == [] and _left(dst, {"bidi-1a2b3c"}) == []


def test_a_krmsyncer_held_by_a_finalizer_is_released(pair: dict[str, Any]) -> None:
    src = pair["kubeconfigs"]["source"]
    held = _syncer("fin-1a2b3c", "held")
    held["metadata"]["finalizers"] = ["example.com/never-lifted"]
    asyncio.run(_leave(src, [(NAMESPACES, _ns("fin-1a2b3c")), (KRMSYNCERS, held)]))

    async def go() -> None:
        async with client_for(src) as c:
            await cleanup.clean_cluster(c, {"fin-1a2b3c"}, syncer_timeout=0.5)
    asyncio.run(go())
    assert _left(src, {"fin-1a2b3c"}) == []


def test_crds_of_the_run_go_and_the_suites_krmsyncer_crd_only_at_the_end(
    pair: dict[str, Any],
) -> None:
    src = pair["kubeconfigs"]["source"]
    widget = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.g-1a2b3c.example.com"},  # unlabelled, but a noted name
        "spec": {"group": "g-1a2b3c.example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    asyncio.run(_leave(src, [(CRDS, widget)]))
    assert _left(src, {"g-1a2b3c"}) == ["CustomResourceDefinition widgets.g-1a2b3c.example.com"]
    cleanup.clean({"source": src}, {"g-1a2b3c"})
    assert _left(src, {"g-1a2b3c"}) == []

    async def crd_labels() -> dict[str, str] | None:
        async with client_for(src) as c:
            try:
                crd = await c.get(CRDS, namespace=None, name=cleanup.KRMSYNCER_CRD)
            except Exception:
                return None
            return dict(crd["metadata"].get("labels") or {})

    # The KRMSyncer CRD this run installed (labelled) stays through the tests, goes at the end.
    async def label_it() -> None:
        async with client_for(src) as c:
            await c.patch(CRDS, namespace=None, name=cleanup.KRMSYNCER_CRD,
                          body={"metadata": {"labels": cleanup.labels()}})
    asyncio.run(label_it())
    cleanup.clean({"source": src}, set())
    assert (asyncio.run(crd_labels()) or {}).get(cleanup.RUN_LABEL) == cleanup.RUN_ID
    cleanup.finish({"source": src}, set(), wait_s=0)
    assert asyncio.run(crd_labels()) is None


def test_names_are_noted_per_test_and_kept_for_real_clusters_only() -> None:
    cleanup.begin_test()
    cleanup.note("mem-1a2b3c")
    assert cleanup.end_test(real=False) == {"mem-1a2b3c"}
    assert "mem-1a2b3c" not in cleanup.run_names()
    cleanup.begin_test()
    cleanup.note("real-1a2b3c")
    assert cleanup.end_test(real=True) == {"real-1a2b3c"}
    assert "real-1a2b3c" in cleanup.run_names()
    cleanup._run_names.discard("real-1a2b3c")


def test_a_module_fixtures_labelled_crd_outlives_each_test_but_not_the_run(
    pair: dict[str, Any],
) -> None:
    # tests/conformance/test_apply_lists.py keeps one CRD for its module's tests.
    src = pair["kubeconfigs"]["source"]
    gadgets = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": cleanup.labelled({"name": "gadgets.lists1a2b3c.example.com"}),
        "spec": {"group": "lists1a2b3c.example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    asyncio.run(_leave(src, [(CRDS, gadgets)]))
    cleanup.clean({"source": src}, {"conf-1a2b3c"})  # a test of the module ends
    assert _left(src, set()) == ["CustomResourceDefinition gadgets.lists1a2b3c.example.com"]
    with pytest.raises(LeftoversError, match=r"gadgets\.lists1a2b3c\.example\.com"):
        cleanup.finish({"source": src}, set(), wait_s=0)  # its fixture forgot to delete it
    assert _left(src, set()) == []
