"""The status subresource of built-in kinds (API conventions: spec and status)."""

from __future__ import annotations

from .conftest import Cluster


def _deploy(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}})


def test_status_in_create_is_ignored(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body={
        "metadata": {"name": "s0"},
        "spec": {"selector": {"matchLabels": {"app": "s0"}},
                 "template": {"metadata": {"labels": {"app": "s0"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"observedGeneration": 77}})
    assert r.status == 201
    assert (r.json().get("status") or {}).get("observedGeneration") != 77


def test_status_patch_changes_only_status(cluster: Cluster, namespace: str) -> None:
    _deploy(cluster, namespace, "s1")
    out = cluster.apps.patch_namespaced_deployment_status(
        "s1", namespace, {"spec": {"replicas": 9}, "status": {"observedGeneration": 1, "replicas": 1}})
    assert out.status.observed_generation == 1
    assert out.spec.replicas != 9


def test_main_resource_patch_does_not_change_status(cluster: Cluster, namespace: str) -> None:
    _deploy(cluster, namespace, "s2")
    out = cluster.apps.patch_namespaced_deployment("s2", namespace, {"status": {"observedGeneration": 5}})
    assert (out.status.observed_generation if out.status else None) != 5


def test_status_subresource_of_a_kind_without_one_is_not_found(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "nostatus"}})
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/nostatus/status").status == 404
