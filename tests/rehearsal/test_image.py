"""The image `make image` built, as a container engine sees it (podman; skipped without it).

Same entry points, same non-root user and the wheel of this release, whichever base it was
built on; not the test kit; no build-time CA bundle left behind (tests/deploy/test_dockerfile.py checks the
Dockerfile's text, this checks what came out of it).
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.deploy.manifests import package_version, ray_version
from tests.rehearsal.conftest import IMAGE, figures
from tests.rehearsal.podman import Podman

pytestmark = pytest.mark.rehearsal


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    if shutil.which("podman") is None:
        pytest.skip("no image check: podman is not installed")
    p = Podman("image", tmp_path_factory.mktemp("image"))
    if not p.image_exists(IMAGE):
        pytest.skip(f"no image check: {IMAGE} is not built (make image)")
    return p


def run(podman: Podman, *cmd: str) -> str:
    return podman("run", "--rm", *podman.flags, "--entrypoint", json.dumps(list(cmd)), IMAGE)


def test_the_image_runs_this_release_as_the_ray_user(podman: Podman) -> None:
    (info,) = json.loads(podman("image", "inspect", IMAGE))
    assert info["Config"]["User"] == "1000:100"
    assert info["Config"]["WorkingDir"] == "/home/ray"
    assert info["Config"]["Labels"]["org.opencontainers.image.version"] == package_version()
    assert "PIP_CERT" not in " ".join(info["Config"].get("Env", []))
    figures["image_size_mb"] = round(info["Size"] / 1e6)
    assert run(podman, "ray-syncer", "--version").strip() == f"ray-syncer {package_version()}"
    assert run(podman, "python", "-c", "import ray; print(ray.__version__)").strip() == ray_version()
    assert run(podman, "id", "-un").strip() == "ray"
    # The operator without the test kit: not installed, not required.
    assert run(podman, "sh", "-c", "python -c 'import ray_syncer_testkit' 2>&1 || echo absent"
               ).strip().endswith("absent")
    requires = run(podman, "sh", "-c", "pip show ray-syncer | sed -n 's/^Requires: //p'")
    assert "cryptography" not in requires and "kubernetes" in requires
    # The head's entry point, and wget for KubeRay's injected probes.
    assert run(podman, "sh", "-c", "for c in ray-syncer-head wget; do command -v $c; done").split() == [
        "/usr/local/bin/ray-syncer-head", "/usr/bin/wget"]
