"""The wheel users install: the operator only, without the test kit or its dependencies.

``pip install ray-syncer`` must not bring the in-memory API server (testkit/, a distribution
of its own) nor ``cryptography``, which only the test kit needs. Built here from the
checkout, as ``make build`` builds it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

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
