"""`kubectl apply -k deploy/` and `-k deploy/destination/` assemble what the docs promise.

The pure-Python resolver in manifests.py models kustomize's resources and load restrictor and
always runs; where a kubectl with built-in kustomize is on the machine, its real output is
compared with the resolver's, and the documented image override is shown to reach the
RayCluster's containers.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import (
    BASE,
    DEPLOY,
    REPO,
    KustomizeError,
    containers,
    kustomize_images,
    kustomize_resources,
    package_version,
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
    assert {i["name"] for i in kustomize_images(BASE)} == images


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


# -- the DR pair: deploy/overlays/primary and deploy/overlays/standby -----------------------------

OVERLAYS = DEPLOY / "overlays"
# side -> (the example its KRMSyncer copies, whether that KRMSyncer is suspended)
PAIR = {
    "primary": ("krmsyncer-usage.yaml", False),
    "standby": ("krmsyncer-standby.yaml", True),
}
CLUSTER_NAME_ENV = "KRMSYNCER_CLUSTER_NAME"


@pytest.mark.parametrize("side", PAIR)
def test_overlay_krmsyncer_is_the_example_it_names(side: str) -> None:
    # kustomize refuses ../../../examples/..., so each overlay carries a copy; keep it exact.
    example, _ = PAIR[side]
    copy = (OVERLAYS / side / "krmsyncer.yaml").read_text()
    assert copy == (REPO / "examples" / example).read_text(), (
        f"deploy/overlays/{side}/krmsyncer.yaml is stale: cp examples/{example} deploy/overlays/{side}/"
    )


def _cluster_names(rc: dict) -> dict[str, str | None]:
    """container name -> its KRMSYNCER_CLUSTER_NAME value (None when it has none)."""
    out: dict[str, str | None] = {}
    for _, t in pod_templates(rc):
        for c in containers(t):
            values = [e.get("value") for e in c.get("env", []) if e["name"] == CLUSTER_NAME_ENV]
            assert len(values) <= 1, (c["name"], values)
            out[c["name"]] = values[0] if values else None
    return out


def check_overlay(objs: list[dict], side: str) -> None:
    """What an overlay must render: the operator named ``side`` and its KRMSyncer."""
    from ray_syncer.api.parse import is_suspended_effectively, parse_krmsyncer
    from tests.deploy.test_raycluster import _errors

    (rc,) = [o for o in objs if o["kind"] == "RayCluster"]
    names = _cluster_names(rc)
    # Every container that carries a cluster name carries this one; the head, which passes it
    # to `ray-syncer run --cluster-name`, must carry it. (The workers get it from the operator.)
    assert names["ray-head"] == side, names
    assert {v for v in names.values() if v is not None} == {side}, names
    (head,) = [c for _, t in pod_templates(rc) for c in containers(t) if c["name"] == "ray-head"]
    assert f"--cluster-name=$({CLUSTER_NAME_ENV})" in head["args"]
    assert _errors(rc) == [], "the RayCluster no longer fits the KubeRay v1 schema"

    (syncer,) = [o for o in objs if o["kind"] == "KRMSyncer"]
    parsed = parse_krmsyncer(syncer)  # the operator's own validator; raises on an invalid spec
    _, suspended = PAIR[side]
    assert syncer["spec"]["suspend"] is suspended
    assert parsed.spec.suspend is suspended and is_suspended_effectively(syncer) is suspended


@needs_kubectl
@pytest.mark.parametrize("side", PAIR)
def test_overlay_renders_its_cluster_name_and_its_krmsyncer(side: str) -> None:
    check_overlay(_kubectl_kustomize(OVERLAYS / side), side)


@needs_kubectl
@pytest.mark.parametrize("side", PAIR)
def test_overlay_is_the_operator_side_plus_its_krmsyncer(side: str) -> None:
    objs = _kubectl_kustomize(OVERLAYS / side)
    keys = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    base = sorted((o["kind"], o["metadata"]["name"]) for o in _kubectl_kustomize(DEPLOY))
    assert keys == sorted([*base, ("KRMSyncer", "configmap-sync")])
    images = {c["image"] for o in objs for _, t in pod_templates(o) for c in containers(t)}
    assert images == {f"ray-syncer:{package_version()}"}, "the overlays take deploy/base's image"


@needs_kubectl
def test_the_two_sides_differ_only_in_name_and_suspension() -> None:
    primary, standby = (_kubectl_kustomize(OVERLAYS / s) for s in ("primary", "standby"))
    assert len(primary) == len(standby)
    for a, b in zip(primary, standby, strict=True):
        if a["kind"] not in ("RayCluster", "KRMSyncer"):
            assert a == b, a["kind"]


@needs_kubectl
def test_the_overlay_check_fails_on_a_wrong_name_or_suspension() -> None:
    objs = _kubectl_kustomize(OVERLAYS / "primary")
    with pytest.raises(AssertionError):
        check_overlay(objs, "standby")  # the primary's name and an active KRMSyncer
    bad = copy.deepcopy(objs)
    (rc,) = [o for o in bad if o["kind"] == "RayCluster"]
    rc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["env"].append(
        {"name": CLUSTER_NAME_ENV, "value": "standby"})
    with pytest.raises(AssertionError, match="standby"):
        check_overlay(bad, "primary")


@needs_kubectl
def test_the_name_patch_refuses_a_reordered_env(tmp_path: Path) -> None:
    # The overlays patch env[0] of containers[0]; their JSON-patch test operations must make
    # kustomize fail, not patch another variable, if ray-cluster.yaml is ever reordered.
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    rc_file = tmp_path / "deploy" / "base" / "ray-cluster.yaml"
    docs = list(yaml.safe_load_all(rc_file.read_text()))
    head = docs[0]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["env"].reverse()
    rc_file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    assert KUBECTL
    r = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "deploy" / "overlays" / "primary")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "test" in r.stderr.lower(), r.stderr
