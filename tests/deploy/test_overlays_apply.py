"""The DR-pair overlays applied to real control planes, as docs/deploy.md ("A DR pair") says.

One control plane per side (envtest, from ``KUBEBUILDER_ASSETS``; skipped without): KubeRay's
RayCluster CRD stands in for the KubeRay operator, then ``kubectl apply --server-side -k
deploy/crd``, a wait for it to be Established, and ``-k deploy/overlays/<side>``. The apiserver must accept every object (its
own validation of the RayCluster and of the KRMSyncer against the CRD, CEL rules included),
and what it stores must carry the side's name and suspension.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ray_syncer_testkit.envtest import control_planes, find_assets

from tests.deploy.manifests import DATA, DEPLOY, REPO

KUBECTL = shutil.which("kubectl")
ESTABLISHED = "--for=condition=Established"
# kubectl wait fails at once, rather than waiting, on a CRD too new to have conditions; as
# docs/deploy.md says, it is run again.
NO_CONDITIONS_YET = ("accessor error", "is not array or slice")
SIDES = {"primary": False, "standby": True}  # side -> its KRMSyncer is suspended


@pytest.fixture(scope="module")
def planes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    assets, why = find_assets()
    if assets is None:
        pytest.skip(f"real control planes: {why}")
    if KUBECTL is None:
        pytest.skip("kubectl absent")
    folder = tmp_path_factory.mktemp("overlays")
    with control_planes(tuple(SIDES), assets=assets) as started:
        kubeconfigs = {}
        for side, plane in started.items():
            kubeconfigs[side] = folder / f"{side}.kubeconfig"
            kubeconfigs[side].write_text(plane.kubeconfig())
        yield kubeconfigs


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("side", SIDES)
def test_overlay_applies_as_documented_and_the_cluster_holds_its_side(
    planes: dict[str, Path], side: str
) -> None:
    kc = planes[side]
    steps = [
        ("apply", "--server-side", "-f", str(DATA / "ray.io_rayclusters.yaml")),  # KubeRay's
        ("wait", ESTABLISHED, "crd/rayclusters.ray.io"),  # KubeRay's install
        ("apply", "--server-side", "-k", str(DEPLOY / "crd")),
        ("wait", ESTABLISHED, "crd/krmsyncers.syncer.gkelabs.io"),
        ("apply", "--server-side", "-k", str(DEPLOY / "overlays" / side)),
    ]
    for step in steps:  # as docs/deploy.md says; only the wait is ever run again
        r = _kubectl(kc, *step)
        deadline = time.monotonic() + 30
        while (step[0] == "wait" and r.returncode != 0 and time.monotonic() < deadline
               and any(m in r.stderr for m in NO_CONDITIONS_YET)):
            time.sleep(0.2)
            r = _kubectl(kc, *step)
        assert r.returncode == 0, (step, r.stderr)

    rc = yaml.safe_load(_kubectl(kc, "-n", "krmsyncer-system", "get", "raycluster", "krmsyncer",
                                 "-o", "yaml").stdout)
    env = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "KRMSYNCER_CLUSTER_NAME", "value": side} in env
    syncer = yaml.safe_load(_kubectl(kc, "-n", "default", "get", "krmsyncer", "configmap-sync",
                                     "-o", "yaml").stdout)
    assert syncer["spec"]["suspend"] is SIDES[side]
