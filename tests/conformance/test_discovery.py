"""Discovery (API concepts: "Discovery API"): /version, /api, /apis and resource lists."""

from __future__ import annotations

import pytest

from .conftest import Cluster


def test_version_reports_major_and_minor(cluster: Cluster) -> None:
    r = cluster.raw("GET", "/version")
    assert r.status == 200
    body = r.json()
    assert body["major"] and body["minor"] and body["gitVersion"].startswith("v")


def test_core_group_lists_v1(cluster: Cluster) -> None:
    body = cluster.raw("GET", "/api").json()
    assert body["kind"] == "APIVersions"
    assert "v1" in body["versions"]


@pytest.mark.parametrize("group,version", [("apps", "v1"), ("networking.k8s.io", "v1"),
                                           ("apiextensions.k8s.io", "v1"), ("events.k8s.io", "v1")])
def test_group_list_contains_builtin_groups_with_preferred_version(cluster: Cluster, group: str, version: str) -> None:
    body = cluster.raw("GET", "/apis").json()
    assert body["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in body["groups"]}
    assert group in groups
    assert f"{group}/{version}" in [v["groupVersion"] for v in groups[group]["versions"]]
    assert groups[group]["preferredVersion"]["groupVersion"] in [v["groupVersion"] for v in groups[group]["versions"]]


def test_single_group_document_with_and_without_trailing_slash(cluster: Cluster) -> None:
    a = cluster.raw("GET", "/apis/apps")
    b = cluster.raw("GET", "/apis/apps/")
    assert a.status == b.status == 200
    assert a.json()["name"] == b.json()["name"] == "apps"


def _resources(cluster: Cluster, path: str) -> dict[str, dict]:
    r = cluster.raw("GET", path)
    assert r.status == 200, r.body
    body = r.json()
    assert body["kind"] == "APIResourceList"
    return {res["name"]: res for res in body["resources"]}


@pytest.mark.parametrize("name,kind,namespaced", [
    ("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True), ("secrets", "Secret", True),
    ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True), ("events", "Event", True),
])
def test_core_v1_resource_list_describes_builtin_kinds(cluster: Cluster, name: str, kind: str, namespaced: bool) -> None:
    res = _resources(cluster, "/api/v1")
    assert res[name]["kind"] == kind
    assert res[name]["namespaced"] is namespaced
    assert {"get", "list", "watch", "create", "delete"} <= set(res[name]["verbs"])
    assert res[name]["singularName"] == kind.lower()


def test_resource_list_has_trailing_slash_variant_and_short_names(cluster: Cluster) -> None:
    res = _resources(cluster, "/apis/apps/v1/")
    assert res["deployments"]["kind"] == "Deployment"
    assert "deploy" in res["deployments"].get("shortNames", [])


def test_status_subresource_is_listed_for_kinds_that_have_it(cluster: Cluster) -> None:
    apps = _resources(cluster, "/apis/apps/v1")
    assert "deployments/status" in apps
    assert set(apps["deployments/status"]["verbs"]) >= {"get", "patch", "update"}
    core = _resources(cluster, "/api/v1")
    assert "configmaps/status" not in core


def test_unknown_group_version_is_not_found(cluster: Cluster) -> None:
    assert cluster.raw("GET", "/apis/nonexistent.example.com/v1").status == 404
    assert cluster.raw("GET", "/apis/apps/v9").status == 404


def test_unknown_resource_is_not_found(cluster: Cluster) -> None:
    assert cluster.raw("GET", "/api/v1/namespaces/default/widgets").status == 404


def test_dynamic_client_resolves_builtin_kinds(cluster: Cluster) -> None:
    res = cluster.dynamic.resources.get(api_version="networking.k8s.io/v1", kind="Ingress")
    assert res.name == "ingresses" and res.namespaced
