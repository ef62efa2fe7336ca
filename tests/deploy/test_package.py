"""The wheel users install: the operator only, without the test kit or its dependencies.

``pip install ray-syncer`` must not bring the in-memory API server (testkit/, a distribution
of its own) nor ``cryptography``, which only the test kit needs. Built here from the
checkout, as ``make build`` builds it.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.deploy.manifests import REPO, package_version


def test_the_wheel_holds_the_operator_and_not_the_test_kit(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(tmp_path), str(REPO)], check=True, timeout=300)
    (wheel,) = tmp_path.glob(f"ray_syncer-{package_version()}-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line for line in z.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    tops = {n.split("/")[0] for n in names if not n.endswith(".dist-info/") and "/" in n}
    assert tops == {"ray_syncer", f"ray_syncer-{package_version()}.dist-info"}, tops
    assert "ray_syncer/fleet/actors.py" in names and "ray_syncer/data/krmsyncer.yaml" in names
    assert not any("testkit" in n or "/testing/" in n for n in names)
    base = [r for r in requires if "extra ==" not in r]
    assert not any("cryptography" in r for r in base), base


def _license_text() -> bytes:
    text = (REPO / "LICENSE").read_bytes()
    assert b"Apache License" in text and b"Version 2.0, January 2004" in text
    assert b"END OF TERMS AND CONDITIONS" in text
    return text


def test_the_license_file_is_the_apache_license_pyproject_declares() -> None:
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text()
    assert len(_license_text().splitlines()) > 150  # the whole text, not a pointer to it


def test_the_wheel_carries_the_license(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(tmp_path), str(REPO)], check=True, timeout=300)
    (wheel,) = tmp_path.glob(f"ray_syncer-{package_version()}-*.whl")
    with zipfile.ZipFile(wheel) as z:
        dist_info = f"ray_syncer-{package_version()}.dist-info/"
        licenses = [n for n in z.namelist()
                    if n.startswith(dist_info) and n.rsplit("/", 1)[-1] == "LICENSE"]
        assert licenses, z.namelist()
        assert z.read(licenses[0]) == _license_text()


def test_the_sdist_carries_the_license(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="`make build` installs it: pip install build")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (sdist,) = tmp_path.glob(f"ray_syncer-{package_version()}.tar.gz")
    with tarfile.open(sdist) as t:
        member = t.extractfile(f"ray_syncer-{package_version()}/LICENSE")
        assert member is not None
        assert member.read() == _license_text()
