"""PATCH (API concepts: "Patch operations"): JSON merge, JSON patch, strategic merge."""

from __future__ import annotations

from .conftest import Cluster


def _path(namespace: str, name: str, plural: str = "configmaps", group: str = "") -> str:
    base = f"/apis/{group}" if group else "/api/v1"
    return f"{base}/namespaces/{namespace}/{plural}/{name}"


def _mk(cluster: Cluster, namespace: str, name: str, data: dict) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": data})


def test_merge_patch_sets_and_removes_keys(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "m", {"a": "1", "b": "2"})
    r = cluster.raw("PATCH", _path(namespace, "m"), body={"data": {"a": "9", "b": None, "c": "3"}},
                    content_type="application/merge-patch+json")
    assert r.status == 200
    assert r.json()["data"] == {"a": "9", "c": "3"}


def test_json_patch_operations(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "j", "annotations": {"keep": "1"}}, "data": {"a": "1", "b": "2"}})
    # "~1" is an escaped "/" in a JSON pointer: annotation keys may hold one, data keys may not.
    ops = [{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "x"},
           {"op": "remove", "path": "/data/b"}, {"op": "add", "path": "/data/c.d", "value": "dot"},
           {"op": "add", "path": "/metadata/annotations/example.com~1note", "value": "slash"}]
    r = cluster.raw("PATCH", _path(namespace, "j"), body=ops, content_type="application/json-patch+json")
    assert r.status == 200, r.body
    assert r.json()["data"] == {"a": "x", "c.d": "dot"}
    assert r.json()["metadata"]["annotations"] == {"keep": "1", "example.com/note": "slash"}


_CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                   "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def test_json_patch_adding_an_invalid_data_key_is_invalid_422(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "jk", {"a": "1"})
    r = cluster.raw("PATCH", _path(namespace, "jk"), body=[{"op": "add", "path": "/data/c~1d", "value": "slash"}],
                    content_type="application/json-patch+json")
    assert r.status == 422, r.body
    status = r.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "data[c/d]",
                                            "message": f'Invalid value: "c/d": {_CONFIG_KEY_MSG}'}]
    assert status["message"] == f'ConfigMap "jk" is invalid: data[c/d]: Invalid value: "c/d": {_CONFIG_KEY_MSG}'
    assert cluster.core.read_namespaced_config_map("jk", namespace).data == {"a": "1"}


def test_data_keys_of_configmaps_and_secrets_are_validated(cluster: Cluster, namespace: str) -> None:
    long_key = "k" * 254
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={
        "metadata": {"name": "keys"}, "data": {"a b": "1", "..x": "2", "dup": "3", long_key: "4", "ok-_.9": "5"},
        "binaryData": {"c/d": "eA==", "dup": "eA=="}})
    assert r.status == 422, r.body
    causes = sorted((c["field"], c["message"]) for c in r.json()["details"]["causes"])
    assert causes == sorted([
        ("data[a b]", f'Invalid value: "a b": {_CONFIG_KEY_MSG}'),
        ("data[..x]", "Invalid value: \"..x\": must not start with '..'"),
        ("data[dup]", 'Invalid value: "dup": duplicate of key present in binaryData'),
        (f"data[{long_key}]", f'Invalid value: "{long_key}": must be no more than 253 characters'),
        ("binaryData[c/d]", f'Invalid value: "c/d": {_CONFIG_KEY_MSG}'),
    ])
    # A Secret's stringData is folded into data first, so its bad key is reported under data.
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/secrets", body={
        "metadata": {"name": "keys"}, "stringData": {"x/y": "1"}})
    assert r.status == 422, r.body
    assert [c["field"] for c in r.json()["details"]["causes"]] == ["data[x/y]"]
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/secrets/keys").status == 404


def test_json_patch_failed_test_operation_changes_nothing(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "t", {"a": "1"})
    ops = [{"op": "replace", "path": "/data/a", "value": "2"}, {"op": "test", "path": "/data/a", "value": "nope"}]
    r = cluster.raw("PATCH", _path(namespace, "t"), body=ops, content_type="application/json-patch+json")
    assert 400 <= r.status < 500 and r.json()["kind"] == "Status"
    assert cluster.core.read_namespaced_config_map("t", namespace).data == {"a": "1"}


def test_json_patch_that_does_not_apply_is_422_without_saying_why(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "w", {"a": "1"})
    for ops in ([{"op": "test", "path": "/data/a", "value": "nope"}],
                [{"op": "remove", "path": "/data/missing"}],
                [{"op": "replace", "path": "/missing/x", "value": "1"}],
                [{"op": "bogus", "path": "/data/a"}]):
        r = cluster.raw("PATCH", _path(namespace, "w"), body=ops, content_type="application/json-patch+json")
        assert r.status == 422, (ops, r.body)
        status = r.json()
        assert (status["reason"], status["message"], status["details"]) == (
            "Invalid", "the server rejected our request due to an error in our request", {}), ops


def test_json_patch_replace_of_a_missing_key_adds_it(cluster: Cluster, namespace: str) -> None:
    # kube-apiserver's json-patch library replaces a missing object key (RFC 6902 says it
    # must exist); a missing list index is still an error.
    _mk(cluster, namespace, "r", {"a": "1"})
    ops = [{"op": "replace", "path": "/data/b", "value": "2"},
           {"op": "replace", "path": "/metadata/labels", "value": {"l": "1"}}]
    r = cluster.raw("PATCH", _path(namespace, "r"), body=ops, content_type="application/json-patch+json")
    assert r.status == 200, r.body
    assert r.json()["data"] == {"a": "1", "b": "2"}
    assert r.json()["metadata"]["labels"] == {"l": "1"}
    ops = [{"op": "replace", "path": "/metadata/managedFields/5/operation", "value": "Apply"}]
    r = cluster.raw("PATCH", _path(namespace, "r"), body=ops, content_type="application/json-patch+json")
    assert r.status == 422, r.body


def test_patch_with_stale_resource_version_is_conflict(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "o", {"a": "1"})
    cur = cluster.core.read_namespaced_config_map("o", namespace).metadata.resource_version
    cluster.core.patch_namespaced_config_map("o", namespace, {"data": {"a": "2"}})
    r = cluster.raw("PATCH", _path(namespace, "o"),
                    body={"metadata": {"resourceVersion": cur}, "data": {"a": "3"}},
                    content_type="application/merge-patch+json")
    assert r.status == 409


def test_patch_of_missing_object_is_not_found(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("PATCH", _path(namespace, "absent"), body={"data": {}},
                    content_type="application/merge-patch+json")
    assert r.status == 404


def test_strategic_merge_merges_containers_by_name(cluster: Cluster, namespace: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "app:1"},
                                                      {"name": "sidecar", "image": "side:1"}]}}}})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    r = cluster.raw("PATCH", _path(namespace, "web", "deployments", "apps/v1"), body=patch,
                    content_type="application/strategic-merge-patch+json")
    assert r.status == 200, r.body
    containers = r.json()["spec"]["template"]["spec"]["containers"]
    assert {c["name"]: c["image"] for c in containers} == {"app": "app:2", "sidecar": "side:1"}


def test_strategic_merge_delete_directive_removes_a_list_entry(cluster: Cluster, namespace: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "web2"},
        "spec": {"selector": {"matchLabels": {"app": "w"}},
                 "template": {"metadata": {"labels": {"app": "w"}},
                              "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}}}})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}}}
    r = cluster.raw("PATCH", _path(namespace, "web2", "deployments", "apps/v1"), body=patch,
                    content_type="application/strategic-merge-patch+json")
    assert r.status == 200, r.body
    assert [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]] == ["a"]


def test_merge_patch_replaces_lists_wholesale(cluster: Cluster, namespace: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "web3"},
        "spec": {"selector": {"matchLabels": {"app": "w3"}},
                 "template": {"metadata": {"labels": {"app": "w3"}},
                              "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}}}})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a2"}]}}}}
    r = cluster.raw("PATCH", _path(namespace, "web3", "deployments", "apps/v1"), body=patch,
                    content_type="application/merge-patch+json")
    assert r.status == 200
    assert [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]] == ["a"]


def test_unknown_patch_content_type_is_unsupported_media_type(cluster: Cluster, namespace: str) -> None:
    _mk(cluster, namespace, "u", {})
    r = cluster.raw("PATCH", _path(namespace, "u"), body={"data": {}}, content_type="text/plain")
    assert r.status == 415
    assert r.json()["reason"] == "UnsupportedMediaType"
