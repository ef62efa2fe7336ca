"""The rehearsal's one deployment, shared by its tests in file order, and its measured figures.

It needs podman, the image (``make image``) and real control planes (``KUBEBUILDER_ASSETS``, or
``../shared/envtest`` through ``make deploy-rehearsal``); without any of them every test skips and
says which is missing. ``KRMSYNCER_REQUIRE_REHEARSAL=1`` (CI sets it) turns those skips into a
failed run (tests/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_syncer_testkit.envtest import find_assets

from tests.deploy.manifests import REPO, package_version
from tests.rehearsal.deployment import Deployment, rehearsal
from tests.rehearsal.podman import Podman

IMAGE = f"ray-syncer:{package_version()}"
RESULTS = REPO / ".cache" / "rehearsal" / "results.json"
# What the tests measured, for the summary at the end of the run and RESULTS.
figures: dict[str, Any] = {}


def _cannot_rehearse() -> str:
    assets, why = find_assets()
    if assets is None:
        return why
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman buildah runc mmdebstrap)"
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    probe = Podman("probe", Path("/nonexistent"))
    if not probe.image_exists(IMAGE):
        return f"the image {IMAGE} is not built (make image)"
    return probe.cannot_run(IMAGE)


@pytest.fixture(scope="package")
def deployment() -> Iterator[Deployment]:
    why = _cannot_rehearse()
    if why:
        pytest.skip(f"no deploy rehearsal: {why}")
    assets, _ = find_assets()
    assert assets is not None
    t0 = time.monotonic()
    with rehearsal(assets) as d:
        figures.update({k: round(v, 1) for k, v in d.timings.items()})
        yield d
    figures["rehearsal_s"] = round(time.monotonic() - t0, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if figures:
        terminalreporter.section("deploy rehearsal")
        for key, value in figures.items():
            terminalreporter.write_line(f"{key}: {value}")
