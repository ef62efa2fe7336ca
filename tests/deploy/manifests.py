"""Helpers shared by the deployment tests: where things are, YAML loading, kustomize resolution.

The manifest tests (test_manifests.py, test_raycluster.py, test_rbac.py, ...) read the files the
user applies; this module is the one place that knows the repository layout and how
`kubectl apply -k` assembles deploy/ (resources, nested kustomizations, the load restrictor
that forbids files outside a kustomization's root, and the `images` override).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BASE = DEPLOY / "base"  # the operator's manifests; deploy/ and deploy/overlays/* build on it
DATA = Path(__file__).resolve().parent / "data"
MANIFEST_DIRS = ("crds", "deploy", "examples")

Obj = dict[str, Any]


def ray_version() -> str:
    """The Ray version pinned in pyproject.toml: the one place that defines it."""
    # A regex, not tomllib: the package supports Python 3.10, which has no tomllib.
    pins = re.findall(
        r'"ray(?:\[[^\]]*\])?==([0-9][0-9A-Za-z.]*)"', (REPO / "pyproject.toml").read_text()
    )
    assert len(pins) == 1, f"pyproject.toml should pin ray exactly once, found {pins}"
    return pins[0]


def package_version() -> str:
    """pyproject.toml's ``version``: the one place that defines it (tests/test_version.py checks
    every other place that shows or uses it)."""
    found = re.findall(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert len(found) == 1, f"pyproject.toml should set version once, found {found}"
    return found[0]


def yaml_files() -> list[Path]:
    files: list[Path] = []
    for d in MANIFEST_DIRS:
        files += sorted((REPO / d).rglob("*.yaml")) + sorted((REPO / d).rglob("*.yml"))
    return files


def load_docs(path: Path) -> list[Obj]:
    """All non-empty YAML documents of a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def load_one(path: Path, *, kind: str, name: str | None = None) -> Obj:
    found = [
        d
        for d in load_docs(path)
        if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{path}: expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


class KustomizeError(AssertionError):
    pass


def _is_within(child: Path, root: Path) -> bool:
    try:
        child.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def kustomize_resources(root: Path) -> Iterator[tuple[Path, Obj]]:
    """Yield (file, object) for everything `kubectl kustomize root` would emit, before transforms.

    Mirrors kustomize's default load restrictor: a file must lie under the kustomization's own
    root; a directory is allowed anywhere but must hold a kustomization.yaml.
    """
    kfile = root / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{root} has no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(k) - {"apiVersion", "kind", "resources", "images", "namespace", "labels"}
    if unknown:
        raise KustomizeError(f"{kfile}: fields this resolver does not model: {sorted(unknown)}")
    for entry in k.get("resources", []):
        target = root / entry
        if target.is_dir():
            yield from kustomize_resources(target)
        elif target.is_file():
            if not _is_within(target, root):
                raise KustomizeError(
                    f"{kfile}: {entry} is outside the kustomization root; kustomize refuses it"
                )
            for doc in load_docs(target):
                yield target, doc
        else:
            raise KustomizeError(f"{kfile}: resource {entry} does not exist")


def kustomize_images(root: Path) -> list[Obj]:
    k = yaml.safe_load((root / "kustomization.yaml").read_text()) or {}
    return list(k.get("images", []))


def pod_templates(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(where, PodTemplateSpec) of a RayCluster."""
    spec = obj.get("spec", {})
    if obj.get("kind") == "RayCluster":
        yield "head", spec["headGroupSpec"]["template"]
        for g in spec.get("workerGroupSpecs", []):
            yield f"worker {g['groupName']}", g["template"]


def containers(template: Obj) -> list[Obj]:
    pod = template.get("spec", {})
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))
