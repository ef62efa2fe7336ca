"""CustomResourceDefinitions (the CRD and "Versions in CRDs" docs): discovery, pruning, subresources.

Creating CRDs needs cluster-admin on a real cluster; these tests skip with that reason when
the credentials may not.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiException

from tests import cleanup

from .conftest import Cluster

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer", "minimum": 0},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "mode": {"type": "string", "default": "push"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}, "count": {"type": "integer"}}},
    },
}


def _crd(group: str, *, versions: tuple[str, ...] = ("v1",), scope: str = "Namespaced") -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": cleanup.labelled({"name": f"widgets.{group}"}),
        "spec": {
            "group": group, "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                      "shortNames": ["wd"]},
            "versions": [{"name": v, "served": True, "storage": i == 0, "schema": {"openAPIV3Schema": SCHEMA},
                          "subresources": {"status": {}}} for i, v in enumerate(versions)],
        },
    }


def _wait_established(cluster: Cluster, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        crd = cluster.apiext.read_custom_resource_definition(name)
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            # Discovery can lag a little behind the condition on a real cluster.
            group = crd.spec.group
            if cluster.raw("GET", f"/apis/{group}/{crd.spec.versions[0].name}").status == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"CRD {name} never became Established")


@pytest.fixture
def crd_group(cluster: Cluster) -> Iterator[str]:
    group = f"conf{secrets.token_hex(3)}.example.com"
    try:
        cluster.apiext.create_custom_resource_definition(_crd(group, versions=("v1", "v1beta1")))
    except ApiException as exc:
        if exc.status == 403:
            pytest.skip("creating CRDs needs cluster-admin")
        raise
    _wait_established(cluster, f"widgets.{group}")
    yield group
    with contextlib.suppress(ApiException):
        cluster.apiext.delete_custom_resource_definition(f"widgets.{group}")


def _create(cluster: Cluster, group: str, namespace: str, name: str, spec: dict, version: str = "v1") -> dict[str, Any]:
    return cluster.custom.create_namespaced_custom_object(group, version, namespace, "widgets", {
        "apiVersion": f"{group}/{version}", "kind": "Widget", "metadata": {"name": name}, "spec": spec})


def test_crd_becomes_established_with_accepted_names(cluster: Cluster, crd_group: str) -> None:
    crd = cluster.apiext.read_custom_resource_definition(f"widgets.{crd_group}")
    types = {c.type: c.status for c in crd.status.conditions}
    assert types.get("Established") == "True" and types.get("NamesAccepted") == "True"
    assert crd.status.accepted_names.kind == "Widget"
    assert crd.status.stored_versions == ["v1"]


def test_crd_registers_every_served_version_in_discovery(cluster: Cluster, crd_group: str) -> None:
    group = cluster.raw("GET", f"/apis/{crd_group}").json()
    assert {v["version"] for v in group["versions"]} == {"v1", "v1beta1"}
    assert group["preferredVersion"]["version"] == "v1"
    for version in ("v1", "v1beta1"):
        res = {r["name"]: r for r in cluster.raw("GET", f"/apis/{crd_group}/{version}").json()["resources"]}
        assert res["widgets"]["kind"] == "Widget" and res["widgets"]["namespaced"] is True
        assert "widgets/status" in res
        assert "wd" in res["widgets"].get("shortNames", [])
    listed = [g["name"] for g in cluster.raw("GET", "/apis").json()["groups"]]
    assert crd_group in listed


def test_custom_resource_crud_with_generation(cluster: Cluster, crd_group: str, namespace: str) -> None:
    w = _create(cluster, crd_group, namespace, "w1", {"size": 1})
    assert w["metadata"]["generation"] == 1 and w["metadata"]["uid"]
    w = cluster.custom.patch_namespaced_custom_object(crd_group, "v1", namespace, "widgets", "w1",
                                                      {"metadata": {"labels": {"a": "b"}}})
    assert w["metadata"]["generation"] == 1
    w = cluster.custom.patch_namespaced_custom_object(crd_group, "v1", namespace, "widgets", "w1",
                                                      {"spec": {"size": 2}})
    assert w["metadata"]["generation"] == 2


def test_same_object_is_served_under_every_version(cluster: Cluster, crd_group: str, namespace: str) -> None:
    _create(cluster, crd_group, namespace, "multi", {"size": 3})
    other = cluster.custom.get_namespaced_custom_object(crd_group, "v1beta1", namespace, "widgets", "multi")
    assert other["apiVersion"] == f"{crd_group}/v1beta1"
    assert other["spec"]["size"] == 3


def test_unknown_fields_are_pruned(cluster: Cluster, crd_group: str, namespace: str) -> None:
    w = _create(cluster, crd_group, namespace, "prune", {"size": 1, "unknownField": "dropped"})
    assert "unknownField" not in w["spec"]
    got = cluster.custom.get_namespaced_custom_object(crd_group, "v1", namespace, "widgets", "prune")
    assert "unknownField" not in got["spec"]
    top = cluster.raw("POST", f"/apis/{crd_group}/v1/namespaces/{namespace}/widgets", body={
        "apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "prune2"}, "extra": {"x": 1}})
    assert top.status == 201 and "extra" not in top.json()


def test_preserve_unknown_fields_keeps_arbitrary_content(cluster: Cluster, crd_group: str, namespace: str) -> None:
    w = _create(cluster, crd_group, namespace, "free", {"free": {"anything": {"nested": [1, 2]}}})
    assert w["spec"]["free"] == {"anything": {"nested": [1, 2]}}


def test_schema_defaults_are_applied(cluster: Cluster, crd_group: str, namespace: str) -> None:
    w = _create(cluster, crd_group, namespace, "dflt", {"size": 1})
    assert w["spec"]["mode"] == "push"


def test_schema_violations_are_invalid_422(cluster: Cluster, crd_group: str, namespace: str) -> None:
    for spec in ({"size": "big"}, {"size": -1}, {"color": "green"}):
        with pytest.raises(ApiException) as exc:
            _create(cluster, crd_group, namespace, f"bad-{secrets.token_hex(2)}", spec)
        assert exc.value.status == 422, spec


def test_strict_field_validation_rejects_unknown_fields(cluster: Cluster, crd_group: str, namespace: str) -> None:
    r = cluster.raw("POST", f"/apis/{crd_group}/v1/namespaces/{namespace}/widgets?fieldValidation=Strict", body={
        "apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "strict"},
        "spec": {"nope": 1}})
    assert r.status in (400, 422)


def test_main_resource_writes_ignore_status(cluster: Cluster, crd_group: str, namespace: str) -> None:
    w = cluster.custom.create_namespaced_custom_object(crd_group, "v1", namespace, "widgets", {
        "apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "st"},
        "spec": {"size": 1}, "status": {"ready": True}})
    assert "status" not in w or not w["status"]
    w = cluster.custom.patch_namespaced_custom_object(crd_group, "v1", namespace, "widgets", "st",
                                                      {"status": {"ready": True}})
    assert not (w.get("status") or {}).get("ready")


def test_status_subresource_writes_change_only_status(cluster: Cluster, crd_group: str, namespace: str) -> None:
    _create(cluster, crd_group, namespace, "sub", {"size": 1})
    w = cluster.custom.patch_namespaced_custom_object_status(
        crd_group, "v1", namespace, "widgets", "sub", {"spec": {"size": 99}, "status": {"ready": True}})
    assert w["status"] == {"ready": True}
    assert w["spec"]["size"] == 1
    assert w["metadata"]["generation"] == 1, "status writes do not bump generation"
    got = cluster.custom.get_namespaced_custom_object_status(crd_group, "v1", namespace, "widgets", "sub")
    assert got["status"] == {"ready": True}


def test_put_to_status_subresource_replaces_status(cluster: Cluster, crd_group: str, namespace: str) -> None:
    w = _create(cluster, crd_group, namespace, "putst", {"size": 1})
    w["status"] = {"count": 5}
    w["spec"]["size"] = 42
    out = cluster.custom.replace_namespaced_custom_object_status(crd_group, "v1", namespace, "widgets", "putst", w)
    assert out["status"] == {"count": 5} and out["spec"]["size"] == 1


def test_server_side_apply_on_status(cluster: Cluster, crd_group: str, namespace: str) -> None:
    _create(cluster, crd_group, namespace, "applyst", {"size": 1})
    body = {"apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "applyst"},
            "status": {"ready": True, "count": 2}}
    r = cluster.raw("PATCH", f"/apis/{crd_group}/v1/namespaces/{namespace}/widgets/applyst/status"
                    "?fieldManager=status-writer&force=true", body=body, content_type="application/apply-patch+yaml")
    assert r.status == 200, r.body
    obj = r.json()
    assert obj["status"] == {"ready": True, "count": 2} and obj["spec"]["size"] == 1
    entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "status-writer")
    assert entry.get("subresource") == "status"


def test_strategic_merge_patch_on_custom_resource_is_unsupported_media_type(
    cluster: Cluster, crd_group: str, namespace: str
) -> None:
    _create(cluster, crd_group, namespace, "smp", {"size": 1})
    r = cluster.raw("PATCH", f"/apis/{crd_group}/v1/namespaces/{namespace}/widgets/smp",
                    body={"spec": {"size": 2}}, content_type="application/strategic-merge-patch+json")
    assert r.status == 415


def test_server_side_apply_on_custom_resource(cluster: Cluster, crd_group: str, namespace: str) -> None:
    body = {"apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "ssa"},
            "spec": {"size": 1, "tags": ["a", "b"]}}
    path = f"/apis/{crd_group}/v1/namespaces/{namespace}/widgets/ssa?fieldManager=m"
    r1 = cluster.raw("PATCH", path, body=body, content_type="application/apply-patch+yaml")
    assert r1.status == 201
    r2 = cluster.raw("PATCH", path, body=body, content_type="application/apply-patch+yaml")
    assert r2.json()["metadata"]["resourceVersion"] == r1.json()["metadata"]["resourceVersion"]
    body["spec"] = {"size": 1}
    r3 = cluster.raw("PATCH", path, body=body, content_type="application/apply-patch+yaml")
    assert "tags" not in r3.json()["spec"]


def test_deleting_the_crd_removes_its_objects_and_discovery(cluster: Cluster, namespace: str) -> None:
    group = f"conf{secrets.token_hex(3)}.example.com"
    try:
        cluster.apiext.create_custom_resource_definition(_crd(group))
    except ApiException as exc:
        if exc.status == 403:
            pytest.skip("creating CRDs needs cluster-admin")
        raise
    _wait_established(cluster, f"widgets.{group}")
    _create(cluster, group, namespace, "doomed", {"size": 1})
    cluster.apiext.delete_custom_resource_definition(f"widgets.{group}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if cluster.raw("GET", f"/apis/{group}/v1").status == 404:
            break
        time.sleep(0.2)
    assert cluster.raw("GET", f"/apis/{group}/v1").status == 404
    assert cluster.raw("GET", f"/apis/{group}/v1/namespaces/{namespace}/widgets/doomed").status == 404
    assert group not in [g["name"] for g in cluster.raw("GET", "/apis").json()["groups"]]
    # Recreating the CRD does not bring the old objects back.
    cluster.apiext.create_custom_resource_definition(_crd(group))
    _wait_established(cluster, f"widgets.{group}")
    try:
        items = cluster.custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")["items"]
        assert items == []
    finally:
        cluster.apiext.delete_custom_resource_definition(f"widgets.{group}")


def test_cluster_scoped_custom_resources(cluster: Cluster) -> None:
    group = f"conf{secrets.token_hex(3)}.example.com"
    try:
        cluster.apiext.create_custom_resource_definition(_crd(group, scope="Cluster"))
    except ApiException as exc:
        if exc.status == 403:
            pytest.skip("creating CRDs needs cluster-admin")
        raise
    try:
        _wait_established(cluster, f"widgets.{group}")
        res = {r["name"]: r for r in cluster.raw("GET", f"/apis/{group}/v1").json()["resources"]}
        assert res["widgets"]["namespaced"] is False
        w = cluster.custom.create_cluster_custom_object(group, "v1", "widgets", {
            "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "cw"}, "spec": {"size": 1}})
        assert "namespace" not in w["metadata"]
    finally:
        cluster.apiext.delete_custom_resource_definition(f"widgets.{group}")


def test_invalid_crd_name_is_rejected(cluster: Cluster) -> None:
    crd = _crd("bad.example.com")
    crd["metadata"]["name"] = "wrong.bad.example.com"
    r = cluster.raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd)
    assert r.status in (403, 422)
    if r.status == 403:
        pytest.skip("creating CRDs needs cluster-admin")


def test_status_is_pruned_and_validated_against_the_schema(cluster: Cluster, crd_group: str, namespace: str) -> None:
    _create(cluster, crd_group, namespace, "stprune", {"size": 1})
    w = cluster.custom.patch_namespaced_custom_object_status(
        crd_group, "v1", namespace, "widgets", "stprune", {"status": {"ready": True, "bogus": 1}})
    assert w["status"] == {"ready": True}
    with pytest.raises(ApiException) as exc:
        cluster.custom.patch_namespaced_custom_object_status(
            crd_group, "v1", namespace, "widgets", "stprune", {"status": {"count": "many"}})
    assert exc.value.status == 422
