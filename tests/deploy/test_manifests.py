"""Every manifest a user applies parses, and the core objects are valid Kubernetes objects.

Core kinds (ServiceAccount, ClusterRole, Service, NetworkPolicy, ...) are validated offline and
strictly (unknown fields fail) with the `kubernetes-validate` package's OpenAPI schemas. The
RayCluster has its own test against the KubeRay CRD (test_raycluster.py). ServiceMonitor and
PodMonitor are prometheus-operator CRDs whose schemas we do not carry: they get structural
checks only (the fields prometheus-operator requires, and that they point at real ports).
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from tests.deploy.manifests import (
    BASE,
    DEPLOY,
    REPO,
    Obj,
    containers,
    load_docs,
    load_one,
    pod_templates,
    yaml_files,
)

# The oldest Kubernetes minor we document support for; strict = unknown fields are errors.
K8S_VERSION = "1.30"
CORE_API_VERSIONS = {
    "v1",
    "rbac.authorization.k8s.io/v1",
    "networking.k8s.io/v1",
    "apps/v1",
    "apiextensions.k8s.io/v1",
}


def _all_objects() -> list[tuple[Path, Obj]]:
    return [(p, d) for p in yaml_files() for d in load_docs(p)]


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def test_there_are_manifests_to_check() -> None:
    names = {_rel(p) for p in yaml_files()}
    assert {"deploy/base/rbac.yaml", "deploy/base/ray-cluster.yaml", "deploy/kustomization.yaml"} <= names


@pytest.mark.parametrize("path", yaml_files(), ids=_rel)
def test_every_yaml_parses_into_objects(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{_rel(path)} is empty"
    for d in docs:
        assert isinstance(d, dict), f"{_rel(path)}: a document is not a mapping"
        if path.name == "kustomization.yaml":
            assert d.get("kind") == "Kustomization"
            continue
        assert d.get("apiVersion") and d.get("kind"), f"{_rel(path)}: apiVersion/kind missing"
        assert d.get("metadata", {}).get("name"), f"{_rel(path)}: {d['kind']} has no name"


def _core_objects() -> list[tuple[Path, Obj]]:
    return [(p, d) for p, d in _all_objects() if d.get("apiVersion") in CORE_API_VERSIONS]


@pytest.mark.parametrize(
    ("path", "obj"),
    _core_objects(),
    ids=[f"{_rel(p)}:{d['kind']}/{d['metadata']['name']}" for p, d in _core_objects()],
)
def test_core_objects_validate_against_the_kubernetes_schema(path: Path, obj: Obj) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_typo() -> None:
    # The strict validation above must be able to fail: a misspelt field is an error.
    role = load_one(BASE / "rbac.yaml", kind="ClusterRole", name="krmsyncer-operator")
    bad = {**role, "rules": [{**role["rules"][0], "verb": ["get"]}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_the_ray_pod_templates_are_valid_pod_templates() -> None:
    # The KubeRay CRD embeds the PodTemplateSpec; also check it against core's own schema.
    rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
    for where, template in pod_templates(rc):
        wrapped = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"krmsyncer-{where.replace(' ', '-')}"},
            "template": template,
        }
        kubernetes_validate.validate(wrapped, K8S_VERSION, strict=True)


def test_port_names_are_valid_service_names() -> None:
    # IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-' (the schema does
    # not check it; the API server does).
    import re

    rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
    svc = load_one(BASE / "metrics-service.yaml", kind="Service")
    names = [p["name"] for _, t in pod_templates(rc) for c in containers(t) for p in c["ports"]]
    names += [p["name"] for p in svc["spec"]["ports"]]
    for n in names:
        assert len(n) <= 15 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", n), n


def test_both_kustomizations_define_the_same_namespace() -> None:
    # deploy/ and deploy/destination/ may both be applied to the standby; a differing copy
    # would make each apply undo the other's labels.
    a = load_one(BASE / "namespace.yaml", kind="Namespace")
    b = load_one(DEPLOY / "destination" / "rbac.yaml", kind="Namespace")
    assert a == b


@pytest.mark.parametrize("name", ["service-monitor.yaml", "pod-monitor.yaml"])
def test_prometheus_monitors_point_at_real_ports(name: str) -> None:
    # Structural only: the prometheus-operator CRDs are not vendored here.
    obj = load_docs(DEPLOY / "monitoring" / name)[0]
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    spec = obj["spec"]
    assert spec["selector"]["matchLabels"]
    assert spec["namespaceSelector"]["matchNames"] == [obj["metadata"]["namespace"]]
    if obj["kind"] == "ServiceMonitor":
        svc = load_one(BASE / "metrics-service.yaml", kind="Service")
        labels = svc["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        ports = {p["name"] for p in svc["spec"]["ports"]}
        endpoints = spec["endpoints"]
    else:
        assert obj["kind"] == "PodMonitor"
        rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
        # KubeRay labels every pod of the cluster with ray.io/cluster=<name>.
        assert spec["selector"]["matchLabels"] == {"ray.io/cluster": rc["metadata"]["name"]}
        ports = {p["name"] for _, t in pod_templates(rc) for c in containers(t) for p in c["ports"]}
        endpoints = spec["podMetricsEndpoints"]
    assert endpoints
    for ep in endpoints:
        assert ep["port"] in ports, f"{name}: no port named {ep['port']}"
        assert ep["path"] == "/metrics"


def test_metrics_service_targets_the_head_ports() -> None:
    svc = load_one(BASE / "metrics-service.yaml", kind="Service")
    rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
    assert svc["spec"]["selector"] == {
        "ray.io/cluster": rc["metadata"]["name"],
        "ray.io/node-type": "head",
    }
    head = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    by_name = {p["name"]: p["containerPort"] for p in head["ports"]}
    targets = {p["port"]: by_name[p["targetPort"]] for p in svc["spec"]["ports"]}
    assert targets == {9090: 9090, 8080: 8080}


def test_network_policy_admits_the_cluster_itself_and_the_scrapers() -> None:
    np = load_one(BASE / "network-policy.yaml", kind="NetworkPolicy")
    rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
    sel = {"ray.io/cluster": rc["metadata"]["name"]}
    assert np["spec"]["podSelector"]["matchLabels"] == sel
    rules = np["spec"]["ingress"]
    intra = [r for r in rules if r.get("from") == [{"podSelector": {"matchLabels": sel}}]]
    assert intra and "ports" not in intra[0], "Ray pods must reach each other on every port"
    open_ports = {p["port"] for r in rules if "from" not in r for p in r.get("ports", [])}
    assert open_ports == {9090, 8080}, "only metrics may be reached from outside the cluster"
