"""`kubectl apply -k deploy/` and `-k deploy/destination/` assemble what the docs promise.

The pure-Python resolver in manifests.py models kustomize's resources and load restrictor and
always runs; where a kubectl with built-in kustomize is on the machine, its real output is
compared with the resolver's, and the documented image override is shown to reach the
RayCluster's containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import (
    DEPLOY,
    REPO,
    KustomizeError,
    containers,
    kustomize_images,
    kustomize_resources,
    pod_templates,
)

NAMESPACE = "krmsyncer-system"


def _keys(root: Path) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for _, o in kustomize_resources(root)]


def test_deploy_copy_of_the_crd_is_current() -> None:
    # kustomize refuses ../crds/krmsyncer.yaml, so deploy/crd carries a copy; keep it exact.
    src = (REPO / "crds" / "krmsyncer.yaml").read_text()
    copy = (DEPLOY / "crd" / "krmsyncer.yaml").read_text()
    assert copy == src, "deploy/crd/krmsyncer.yaml is stale: cp crds/krmsyncer.yaml deploy/crd/"


def test_operator_side_has_everything_and_nothing_twice() -> None:
    keys = _keys(DEPLOY)
    assert len(keys) == len(set(keys)), keys
    assert set(keys) == {
        ("CustomResourceDefinition", "krmsyncers.syncer.gkelabs.io"),
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "krmsyncer"),
        ("ClusterRole", "krmsyncer-operator"),
        ("ClusterRoleBinding", "krmsyncer-operator"),
        ("ClusterRole", "krmsyncer-operator-secrets"),
        ("ClusterRoleBinding", "krmsyncer-operator-secrets"),
        ("ClusterRole", "krmsyncer-source"),
        ("ClusterRoleBinding", "krmsyncer-source"),
        ("RayCluster", "krmsyncer"),
        ("Service", "krmsyncer-metrics"),
        ("NetworkPolicy", "krmsyncer-ray"),
    }


def test_destination_side_has_the_crd_and_the_writer() -> None:
    keys = set(_keys(DEPLOY / "destination"))
    assert ("CustomResourceDefinition", "krmsyncers.syncer.gkelabs.io") in keys
    assert ("ClusterRole", "krmsyncer-destination") in keys
    assert ("ServiceAccount", "krmsyncer-writer") in keys
    assert not any(kind == "RayCluster" for kind, _ in keys)


@pytest.mark.parametrize("root", [DEPLOY, DEPLOY / "destination"], ids=["deploy", "destination"])
def test_namespaced_objects_live_in_the_operator_namespace(root: Path) -> None:
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for path, obj in kustomize_resources(root):
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"], path
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, (path, obj["kind"])
        for s in obj.get("subjects", []):
            assert s["namespace"] == NAMESPACE


def test_image_override_names_the_image_the_cluster_uses() -> None:
    images = {
        c["image"].rsplit(":", 1)[0]
        for _, o in kustomize_resources(DEPLOY)
        for _, t in pod_templates(o)
        for c in containers(t)
    }
    assert {i["name"] for i in kustomize_images(DEPLOY)} == images


def test_the_resolver_enforces_the_load_restrictor(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    root = tmp_path / "k"
    root.mkdir()
    (root / "kustomization.yaml").write_text("resources: [../outside.yaml]\n")
    with pytest.raises(KustomizeError, match="outside the kustomization root"):
        list(kustomize_resources(root))


KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (built-in kustomize) absent")


def _kubectl_kustomize(root: Path) -> list[dict]:
    assert KUBECTL
    out = subprocess.run(
        [KUBECTL, "kustomize", str(root)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@needs_kubectl
@pytest.mark.parametrize("root", [DEPLOY, DEPLOY / "destination"], ids=["deploy", "destination"])
def test_real_kustomize_agrees_with_the_resolver(root: Path) -> None:
    real = sorted((o["kind"], o["metadata"]["name"]) for o in _kubectl_kustomize(root))
    assert real == sorted(_keys(root))


@needs_kubectl
def test_documented_image_override_reaches_the_raycluster(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        # kustomize refuses absolute roots; a relative one may point anywhere.
        f"resources: [{os.path.relpath(DEPLOY, overlay)}]\n"
        "images:\n- name: ray-syncer\n  newName: registry.example.com/ray-syncer\n  newTag: 9.9.9\n"
    )
    (rc,) = [o for o in _kubectl_kustomize(overlay) if o["kind"] == "RayCluster"]
    images = {c["image"] for _, t in pod_templates(rc) for c in containers(t)}
    assert images == {"registry.example.com/ray-syncer:9.9.9"}
