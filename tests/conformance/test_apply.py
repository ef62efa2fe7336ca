"""Server-side apply (the "Server-Side Apply" reference): ownership, conflicts, removal."""

from __future__ import annotations

from typing import Any

import orjson

from .conftest import Cluster, Response

APPLY = "application/apply-patch+yaml"


def _apply(cluster: Cluster, namespace: str, name: str, data: dict | None, *, manager: str,
           force: bool = False, labels: dict | None = None, extra: dict | None = None) -> Response:
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data is not None:
        body["data"] = data
    body.update(extra or {})
    q = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return cluster.raw("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}{q}", body=body,
                       content_type=APPLY)


def test_apply_creates_a_missing_object(cluster: Cluster, namespace: str) -> None:
    r = _apply(cluster, namespace, "new", {"a": "1"}, manager="mgr")
    assert r.status == 201, r.body
    assert cluster.core.read_namespaced_config_map("new", namespace).data == {"a": "1"}


def test_apply_accepts_a_yaml_body(cluster: Cluster, namespace: str) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\ndata:\n  a: '1'\n"
    r = cluster.raw("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/yml?fieldManager=y", body=body,
                    content_type=APPLY)
    assert r.status == 201, r.body
    assert r.json()["data"] == {"a": "1"}


def test_apply_without_field_manager_is_invalid_422(cluster: Cluster, namespace: str) -> None:
    # kube-apiserver validates the PatchOptions: a 422 on the options, not a 400.
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nomgr"}}
    r = cluster.raw("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/nomgr", body=body, content_type=APPLY)
    assert r.status == 422, r.body
    status = r.json()
    assert status["reason"] == "Invalid"
    assert status["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                 "is required for apply patch")
    assert status["details"]["kind"] == "PatchOptions" and status["details"]["group"] == "meta.k8s.io"
    assert status["details"]["causes"] == [{"reason": "FieldValueRequired",
                                            "message": "Required value: is required for apply patch",
                                            "field": "fieldManager"}]
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/nomgr").status == 404


def test_apply_records_the_manager_in_managed_fields(cluster: Cluster, namespace: str) -> None:
    obj = _apply(cluster, namespace, "mf", {"a": "1"}, manager="krm-syncer").json()
    entries = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "krm-syncer"]
    assert len(entries) == 1
    e = entries[0]
    assert e["operation"] == "Apply" and e["fieldsType"] == "FieldsV1"
    assert "f:a" in e["fieldsV1"]["f:data"]


def test_reapplying_the_same_configuration_does_not_bump_resource_version(cluster: Cluster, namespace: str) -> None:
    first = _apply(cluster, namespace, "noop", {"a": "1"}, manager="m", labels={"x": "y"}).json()
    again = _apply(cluster, namespace, "noop", {"a": "1"}, manager="m", labels={"x": "y"})
    assert again.status == 200
    assert again.json()["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_changed_apply_bumps_resource_version(cluster: Cluster, namespace: str) -> None:
    first = _apply(cluster, namespace, "chg", {"a": "1"}, manager="m").json()
    second = _apply(cluster, namespace, "chg", {"a": "2"}, manager="m").json()
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert second["data"] == {"a": "2"}


def test_conflicting_apply_by_another_manager_is_409_with_causes(cluster: Cluster, namespace: str) -> None:
    _apply(cluster, namespace, "c", {"a": "1"}, manager="first")
    r = _apply(cluster, namespace, "c", {"a": "2"}, manager="second")
    assert r.status == 409
    body = r.json()
    assert body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "first": .data.a'
    # A StatusCause's type travels as "reason"; the details carry only the causes.
    assert body["details"] == {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "first"',
                                           "field": ".data.a"}]}
    assert cluster.core.read_namespaced_config_map("c", namespace).data == {"a": "1"}


def test_apply_conflicts_with_several_managers_are_grouped_by_manager(cluster: Cluster, namespace: str) -> None:
    _apply(cluster, namespace, "cc", {"a": "1", "b": "1"}, manager="first")
    r = cluster.raw("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/cc?fieldManager=editor",
                    body={"data": {"c": "1"}}, content_type="application/merge-patch+json")
    assert r.status == 200, r.body
    r = _apply(cluster, namespace, "cc", {"a": "2", "b": "2", "c": "2"}, manager="second")
    assert r.status == 409
    body = r.json()
    # An Update manager is named with the API version it wrote through.
    assert body["message"] == ('Apply failed with 3 conflicts: conflicts with "editor" using v1:\n- .data.c\n'
                               'conflicts with "first":\n- .data.a\n- .data.b')
    causes = sorted(body["details"]["causes"], key=lambda c: c["field"])
    assert causes == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "first"', "field": ".data.a"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "first"', "field": ".data.b"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "editor" using v1', "field": ".data.c"},
    ]
    assert cluster.core.read_namespaced_config_map("cc", namespace).data == {"a": "1", "b": "1", "c": "1"}


def test_forced_apply_takes_ownership(cluster: Cluster, namespace: str) -> None:
    _apply(cluster, namespace, "f", {"a": "1"}, manager="first")
    r = _apply(cluster, namespace, "f", {"a": "2"}, manager="second", force=True)
    assert r.status == 200
    obj = r.json()
    assert obj["data"] == {"a": "2"}
    owners = {e["manager"]: e.get("fieldsV1", {}) for e in obj["metadata"]["managedFields"]}
    assert "f:a" in owners["second"]["f:data"]
    assert "f:a" not in owners.get("first", {}).get("f:data", {})


def test_applying_the_same_value_as_another_manager_is_shared_not_a_conflict(cluster: Cluster, namespace: str) -> None:
    _apply(cluster, namespace, "s", {"a": "1"}, manager="first")
    r = _apply(cluster, namespace, "s", {"a": "1"}, manager="second")
    assert r.status == 200, r.body
    managers = {e["manager"] for e in r.json()["metadata"]["managedFields"]}
    assert {"first", "second"} <= managers


def test_field_dropped_from_the_configuration_is_removed(cluster: Cluster, namespace: str) -> None:
    _apply(cluster, namespace, "rm", {"keep": "1", "drop": "2"}, manager="m", labels={"l1": "a", "l2": "b"})
    r = _apply(cluster, namespace, "rm", {"keep": "1"}, manager="m", labels={"l1": "a"})
    obj = r.json()
    assert obj["data"] == {"keep": "1"}
    assert obj["metadata"].get("labels") == {"l1": "a"}


def test_field_still_owned_by_another_manager_is_kept_when_one_stops_applying(cluster: Cluster, namespace: str) -> None:
    _apply(cluster, namespace, "co", {"shared": "1", "mine": "x"}, manager="first")
    _apply(cluster, namespace, "co", {"shared": "1"}, manager="second")
    r = _apply(cluster, namespace, "co", {"mine": "x"}, manager="first")
    assert r.json()["data"] == {"shared": "1", "mine": "x"}


def test_fields_set_by_update_belong_to_that_manager_and_conflict_with_apply(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldManager=editor",
                    body={"metadata": {"name": "upd"}, "data": {"a": "1"}})
    assert r.status == 201
    entry = next(e for e in r.json()["metadata"]["managedFields"] if e["manager"] == "editor")
    assert entry["operation"] == "Update"
    conflict = _apply(cluster, namespace, "upd", {"a": "2"}, manager="applier")
    assert conflict.status == 409
    assert any("editor" in c["message"] for c in conflict.json()["details"]["causes"])


def test_apply_leaves_fields_it_never_owned_alone(cluster: Cluster, namespace: str) -> None:
    cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps?fieldManager=editor",
                body={"metadata": {"name": "other"}, "data": {"theirs": "1"}})
    r = _apply(cluster, namespace, "other", {"mine": "2"}, manager="applier")
    assert r.status == 200
    assert r.json()["data"] == {"theirs": "1", "mine": "2"}
    r = _apply(cluster, namespace, "other", {}, manager="applier")
    assert r.json()["data"] == {"theirs": "1"}


def test_apply_with_wrong_name_in_body_is_bad_request(cluster: Cluster, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other-name"}}
    r = cluster.raw("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/bn?fieldManager=m",
                    body=orjson.dumps(body), content_type=APPLY)
    assert r.status == 400


def test_apply_through_the_python_client(cluster: Cluster, namespace: str) -> None:
    d = cluster.dynamic.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn", "namespace": namespace},
            "data": {"a": "1"}}
    out = d.server_side_apply(body=body, name="dyn", namespace=namespace, field_manager="dyn-mgr")
    assert out.data.a == "1"


def _deployment(name: str, containers: list[dict]) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}}


def _apply_deployment(cluster: Cluster, namespace: str, body: dict, manager: str) -> Response:
    return cluster.raw("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/{body['metadata']['name']}"
                       f"?fieldManager={manager}", body=body, content_type=APPLY)


def test_containers_are_merged_by_name_between_managers(cluster: Cluster, namespace: str) -> None:
    # PodSpec.containers is a list-map keyed by name: a second manager's sidecar is kept.
    r = _apply_deployment(cluster, namespace, _deployment("dep", [{"name": "app", "image": "app:1"}]), "owner")
    assert r.status == 201, r.body
    sidecar = _deployment("dep", [{"name": "sidecar", "image": "side:1"}])
    del sidecar["spec"]["selector"]
    r = _apply_deployment(cluster, namespace, sidecar, "injector")
    assert r.status == 200, r.body
    names = [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["app", "sidecar"]
    r = _apply_deployment(cluster, namespace, _deployment("dep", [{"name": "app", "image": "app:2"}]), "owner")
    images = {c["name"]: c["image"] for c in r.json()["spec"]["template"]["spec"]["containers"]}
    assert images == {"app": "app:2", "sidecar": "side:1"}
