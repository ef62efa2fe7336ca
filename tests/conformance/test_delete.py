"""Deletion (API concepts and "Finalizers"): preconditions, finalizers, deletecollection, namespaces."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import watch
from kubernetes.client import ApiException

from .conftest import Cluster, unique


def _mk(cluster: Cluster, namespace: str, name: str, **meta: object) -> object:
    return cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": name, **meta}, "data": {}})


def test_delete_removes_the_object(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "d")
    cluster.core.delete_namespaced_config_map("d", namespace)
    with pytest.raises(ApiException) as exc:
        cluster.core.read_namespaced_config_map("d", namespace)
    assert exc.value.status == 404


def test_delete_of_missing_object_is_not_found(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/none")
    assert r.status == 404 and r.json()["reason"] == "NotFound"


def test_delete_with_wrong_uid_precondition_is_conflict(cluster: Cluster, namespace: str) -> None:
    uid = _mk(cluster, namespace, "pre").metadata.uid  # type: ignore[attr-defined]
    r = cluster.raw("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/pre",
                    body={"kind": "DeleteOptions", "apiVersion": "v1",
                          "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert r.status == 409 and r.json()["reason"] == "Conflict"
    # The precondition check names the Kind (not the resource) and both uids.
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on ConfigMap "pre": the UID in the precondition '
        f"(00000000-0000-0000-0000-000000000000) does not match the UID in record ({uid}). "
        "The object might have been deleted and then recreated")
    assert r.json()["details"] == {"name": "pre", "kind": "ConfigMap"}
    assert cluster.core.read_namespaced_config_map("pre", namespace)


def test_wrong_uid_precondition_of_a_grouped_kind_names_the_group(cluster: Cluster, namespace: str) -> None:
    made = cluster.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "pre-dep"},
        "spec": {"selector": {"matchLabels": {"app": "p"}},
                 "template": {"metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    r = cluster.raw("DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/pre-dep",
                    body={"preconditions": {"uid": "other"}})
    assert r.status == 409
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on Deployment.apps "pre-dep": the UID in the precondition (other) does '
        f"not match the UID in record ({made.metadata.uid}). The object might have been deleted and then recreated")
    assert r.json()["details"] == {"name": "pre-dep", "group": "apps", "kind": "Deployment"}


def test_delete_with_matching_uid_precondition_succeeds(cluster: Cluster, namespace: str) -> None:
    made = _mk(cluster, namespace, "pre2")
    cluster.core.delete_namespaced_config_map("pre2", namespace,
                                              body={"preconditions": {"uid": made.metadata.uid}})  # type: ignore[attr-defined]
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/pre2").status == 404


def test_delete_with_stale_resource_version_precondition_is_conflict(cluster: Cluster, namespace: str) -> None:
    made = _mk(cluster, namespace, "prerv")
    cluster.core.patch_namespaced_config_map("prerv", namespace, {"data": {"x": "1"}})
    r = cluster.raw("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/prerv",
                    body={"preconditions": {"resourceVersion": made.metadata.resource_version}})  # type: ignore[attr-defined]
    assert r.status == 409 and r.json()["reason"] == "Conflict"
    stale = made.metadata.resource_version  # type: ignore[attr-defined]
    current = cluster.core.read_namespaced_config_map("prerv", namespace).metadata.resource_version
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on ConfigMap "prerv": the ResourceVersion in the precondition '
        f"({stale}) does not match the ResourceVersion in record ({current}). The object might have been modified")


def test_finalizers_hold_the_object_until_removed(cluster: Cluster, namespace: str) -> None:
    made = _mk(cluster, namespace, "fin", finalizers=["example.com/hold"])
    cluster.core.delete_namespaced_config_map("fin", namespace)
    held = cluster.core.read_namespaced_config_map("fin", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]
    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def release() -> None:
        time.sleep(0.2)
        cluster.core.patch_namespaced_config_map("fin", namespace, {"metadata": {"finalizers": None}})

    threading.Thread(target=release).start()
    for ev in w.stream(cluster.core.list_namespaced_config_map, namespace, field_selector="metadata.name=fin",
                       resource_version=held.metadata.resource_version, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
    assert events[-1] == ("DELETED", "fin")
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/fin").status == 404
    assert made.metadata.uid  # type: ignore[attr-defined]


def test_no_new_finalizers_while_deleting(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "fin2", finalizers=["example.com/a"])
    cluster.core.delete_namespaced_config_map("fin2", namespace)
    with pytest.raises(ApiException) as exc:
        cluster.core.patch_namespaced_config_map("fin2", namespace,
                                                 {"metadata": {"finalizers": ["example.com/a", "example.com/b"]}})
    assert exc.value.status == 422
    cluster.core.patch_namespaced_config_map("fin2", namespace, {"metadata": {"finalizers": None}})


def test_deletecollection_with_label_selector(cluster: Cluster, namespace: str) -> None:
    for n, v in [("x1", "go"), ("x2", "go"), ("x3", "stay")]:
        _mk(cluster, namespace, n, labels={"fate": v})
    cluster.core.delete_collection_namespaced_config_map(namespace, label_selector="fate=go")
    left = sorted(i.metadata.name for i in cluster.core.list_namespaced_config_map(
        namespace, label_selector="fate").items)
    assert left == ["x3"]


def test_deleting_a_namespace_deletes_its_contents(cluster: Cluster) -> None:
    ns = unique("conf-del")
    cluster.core.create_namespace({"metadata": {"name": ns}})
    _mk(cluster, ns, "inside")
    cluster.core.delete_namespace(ns)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.raw("GET", f"/api/v1/namespaces/{ns}").status == 404:
            break
        phase = cluster.core.read_namespace(ns).status.phase
        assert phase == "Terminating"
        time.sleep(0.5)
    assert cluster.raw("GET", f"/api/v1/namespaces/{ns}").status == 404
    assert cluster.raw("GET", f"/api/v1/namespaces/{ns}/configmaps/inside").status == 404


def _owned(cluster: Cluster, namespace: str, name: str, owner: object) -> None:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name,  # type: ignore[attr-defined]
           "uid": owner.metadata.uid}  # type: ignore[attr-defined]
    _mk(cluster, namespace, name, ownerReferences=[ref])


def _gone_within(cluster: Cluster, path: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cluster.raw("GET", path).status == 404:
            return True
        time.sleep(0.2)
    return False


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(cluster: Cluster, namespace: str) -> None:
    owner = _mk(cluster, namespace, "owner")
    _owned(cluster, namespace, "dependent", owner)
    cluster.core.delete_namespaced_config_map("owner", namespace)
    assert _gone_within(cluster, f"/api/v1/namespaces/{namespace}/configmaps/dependent", 30)


def test_orphan_propagation_keeps_dependents_without_the_owner_reference(cluster: Cluster, namespace: str) -> None:
    owner = _mk(cluster, namespace, "owner2")
    _owned(cluster, namespace, "kept", owner)
    cluster.core.delete_namespaced_config_map("owner2", namespace, propagation_policy="Orphan")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        refs = cluster.core.read_namespaced_config_map("kept", namespace).metadata.owner_references
        if not refs:
            break
        time.sleep(0.2)
    assert not cluster.core.read_namespaced_config_map("kept", namespace).metadata.owner_references


def test_dependent_with_another_live_owner_is_kept(cluster: Cluster, namespace: str) -> None:
    a, b = _mk(cluster, namespace, "owner-a"), _mk(cluster, namespace, "owner-b")
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid}  # type: ignore[attr-defined]
            for o in (a, b)]
    _mk(cluster, namespace, "shared-dependent", ownerReferences=refs)
    cluster.core.delete_namespaced_config_map("owner-a", namespace)
    time.sleep(1.0)
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/shared-dependent").status == 200
