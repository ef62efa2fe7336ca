"""Server-side apply merge strategies for lists ("Server-Side Apply": merge strategy markers).

``x-kubernetes-list-type: map`` entries are owned per key, ``set`` values per value, and
``atomic`` lists (the default) as a whole.
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

from .conftest import Cluster, Response

SCHEMA = {
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
    }}},
}


@pytest.fixture(scope="module")
def group(cluster: Cluster) -> Iterator[str]:
    g = f"lists{secrets.token_hex(3)}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": cleanup.labelled({"name": f"gadgets.{g}"}),
           "spec": {"group": g, "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": SCHEMA}}]}}
    try:
        cluster.apiext.create_custom_resource_definition(crd)
    except ApiException as exc:
        if exc.status == 403:
            pytest.skip("creating CRDs needs cluster-admin")
        raise
    deadline = time.monotonic() + 20
    while cluster.raw("GET", f"/apis/{g}/v1").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    yield g
    with contextlib.suppress(ApiException):
        cluster.apiext.delete_custom_resource_definition(f"gadgets.{g}")


def _apply(cluster: Cluster, group: str, namespace: str, spec: dict[str, Any], manager: str,
           force: bool = False) -> Response:
    body = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec}
    q = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return cluster.raw("PATCH", f"/apis/{group}/v1/namespaces/{namespace}/gadgets/g{q}", body=body,
                       content_type="application/apply-patch+yaml")


def test_map_list_entries_from_two_managers_coexist(cluster: Cluster, group: str, namespace: str) -> None:
    assert _apply(cluster, group, namespace, {"ports": [{"name": "http", "port": 80}]}, "a").status == 201
    r = _apply(cluster, group, namespace, {"ports": [{"name": "metrics", "port": 9090}]}, "b")
    assert r.status == 200, r.body
    assert sorted((p["name"], p["port"]) for p in r.json()["spec"]["ports"]) == [("http", 80), ("metrics", 9090)]


def test_map_list_entry_dropped_by_its_manager_is_removed_others_stay(
    cluster: Cluster, group: str, namespace: str
) -> None:
    _apply(cluster, group, namespace, {"ports": [{"name": "http", "port": 80}, {"name": "extra", "port": 81}]}, "a")
    _apply(cluster, group, namespace, {"ports": [{"name": "metrics", "port": 9090}]}, "b")
    r = _apply(cluster, group, namespace, {"ports": [{"name": "http", "port": 80}]}, "a")
    assert sorted(p["name"] for p in r.json()["spec"]["ports"]) == ["http", "metrics"]


def test_same_map_list_entry_with_a_different_value_conflicts(cluster: Cluster, group: str, namespace: str) -> None:
    _apply(cluster, group, namespace, {"ports": [{"name": "http", "port": 80}]}, "a")
    r = _apply(cluster, group, namespace, {"ports": [{"name": "http", "port": 8080}]}, "b")
    assert r.status == 409
    forced = _apply(cluster, group, namespace, {"ports": [{"name": "http", "port": 8080}]}, "b", force=True)
    assert forced.json()["spec"]["ports"] == [{"name": "http", "port": 8080}]


def test_set_list_values_from_two_managers_are_merged(cluster: Cluster, group: str, namespace: str) -> None:
    _apply(cluster, group, namespace, {"tags": ["a", "b"]}, "a")
    r = _apply(cluster, group, namespace, {"tags": ["c"]}, "b")
    assert sorted(r.json()["spec"]["tags"]) == ["a", "b", "c"]
    r = _apply(cluster, group, namespace, {"tags": ["a"]}, "a")
    assert sorted(r.json()["spec"]["tags"]) == ["a", "c"]


def test_atomic_list_is_owned_as_a_whole(cluster: Cluster, group: str, namespace: str) -> None:
    _apply(cluster, group, namespace, {"args": ["--one"]}, "a")
    r = _apply(cluster, group, namespace, {"args": ["--two"]}, "b")
    assert r.status == 409
    r = _apply(cluster, group, namespace, {"args": ["--two"]}, "b", force=True)
    assert r.json()["spec"]["args"] == ["--two"]
