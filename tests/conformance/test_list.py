"""Listing: label and field selectors, all-namespaces lists, pagination (limit/continue)."""

from __future__ import annotations

import pytest

from .conftest import Cluster, unique


@pytest.fixture
def labelled(cluster: Cluster, namespace: str) -> str:
    for name, labels in [("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev", "tier": "web"}),
                         ("c", {"env": "prod"}), ("d", {})]:
        cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})
    return namespace


def _names(cluster: Cluster, namespace: str, **kw: str) -> list[str]:
    items = cluster.core.list_namespaced_config_map(namespace, **kw).items
    return sorted(i.metadata.name for i in items if i.metadata.name in ("a", "b", "c", "d"))


@pytest.mark.parametrize("selector,expected", [
    ("env=prod", ["a", "c"]),
    ("env==prod", ["a", "c"]),
    ("env!=prod", ["b", "d"]),
    ("env in (dev,staging)", ["b"]),
    ("env notin (dev)", ["a", "c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("env=prod,tier=web", ["a"]),
    ("env in (prod),!tier", ["c"]),
])
def test_label_selector_operators(cluster: Cluster, labelled: str, selector: str, expected: list[str]) -> None:
    assert _names(cluster, labelled, label_selector=selector) == expected


def test_malformed_label_selector_is_bad_request(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=a%20in%20(b")
    assert r.status == 400


def test_field_selector_on_metadata_name(cluster: Cluster, labelled: str) -> None:
    assert _names(cluster, labelled, field_selector="metadata.name=b") == ["b"]
    assert _names(cluster, labelled, field_selector="metadata.name!=b") == ["a", "c", "d"]


def test_field_selector_on_metadata_namespace_across_namespaces(cluster: Cluster, labelled: str) -> None:
    items = cluster.core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={labelled}").items
    assert {i.metadata.namespace for i in items} == {labelled}
    assert {"a", "b", "c", "d"} <= {i.metadata.name for i in items}


def test_unsupported_field_selector_is_bad_request(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps?fieldSelector=data.k%3Dv")
    assert r.status == 400


def test_all_namespaces_list_spans_namespaces(cluster: Cluster, namespace: str) -> None:
    other = unique("conf-other")
    cluster.core.create_namespace({"metadata": {"name": other}})
    try:
        cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "one", "labels": {"m": other}}})
        cluster.core.create_namespaced_config_map(other, {"metadata": {"name": "two", "labels": {"m": other}}})
        items = cluster.core.list_config_map_for_all_namespaces(label_selector=f"m={other}").items
        assert sorted((i.metadata.namespace, i.metadata.name) for i in items) == sorted(
            [(namespace, "one"), (other, "two")])
    finally:
        cluster.core.delete_namespace(other)


def test_list_carries_a_resource_version(cluster: Cluster, namespace: str) -> None:
    lst = cluster.core.list_namespaced_config_map(namespace)
    assert lst.metadata.resource_version
    raw = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps").json()
    assert raw["kind"] == "ConfigMapList" and raw["apiVersion"] == "v1"


def test_pagination_returns_every_object_exactly_once(cluster: Cluster, namespace: str) -> None:
    for i in range(7):
        cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": f"p{i}", "labels": {"page": "y"}}})
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        lst = cluster.core.list_namespaced_config_map(namespace, label_selector="page=y", limit=3,
                                                      _continue=token)
        pages += 1
        assert len(lst.items) <= 3
        seen += [i.metadata.name for i in lst.items]
        token = lst.metadata._continue
        if not token:
            break
        assert lst.metadata.remaining_item_count is None or lst.metadata.remaining_item_count > 0
    assert sorted(seen) == [f"p{i}" for i in range(7)]
    assert pages == 3


def test_limit_without_more_results_has_no_continue_token(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "only"}})
    lst = cluster.core.list_namespaced_config_map(namespace, field_selector="metadata.name=only", limit=5)
    assert [i.metadata.name for i in lst.items] == ["only"]
    assert not lst.metadata._continue
