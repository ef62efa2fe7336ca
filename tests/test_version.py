"""The version lives in one place, pyproject.toml; everything that shows or uses it agrees.

``ray_syncer.__version__`` (and so ``ray-syncer --version``) comes from the installed
distribution's metadata, which pip builds from pyproject.toml. The image tag is derived from
pyproject.toml by hack/image.sh. The YAML that names the image (deploy/) and the Dockerfile's
default cannot read pyproject.toml, so they carry the version literally; this file fails when any
of them, or any other file that spells the version, disagrees.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import ray_syncer
from tests.deploy.manifests import REPO, package_version

VERSION = package_version()

# Files that may spell the version literally, each checked below (or elsewhere, as noted).
LITERAL_COPIES = {
    "pyproject.toml",  # the one definition
    "Dockerfile",  # ARG RAY_SYNCER_VERSION's default; hack/image.sh always passes it
    "deploy/base/kustomization.yaml",  # images[].newTag
    "deploy/base/ray-cluster.yaml",  # the head's and the workers' image
    "CHANGELOG.md",  # the release's own section
}
# Files that spell the same digits for another reason.
UNRELATED = (
    "testkit/pyproject.toml",  # the test kit is a distribution of its own, versioned apart
    "benchmarks/results/",  # each result records the version that produced it: history
)


def _tracked_text_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def test_pyproject_defines_a_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.+-]?[0-9A-Za-z.]+)?", VERSION), VERSION


def test_the_package_reports_the_pyproject_version() -> None:
    assert ray_syncer.__version__ == VERSION
    # An editable install's metadata is from the last `pip install`: stale if pyproject moved.
    assert metadata.version("ray-syncer") == VERSION, "reinstall: make install"


def test_a_checkout_that_was_never_installed_reads_pyproject(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert ray_syncer._version() == VERSION


def test_cli_version_flag_shows_it() -> None:
    cli = Path(sys.executable).parent / "ray-syncer"
    argv = [str(cli)] if cli.exists() else [sys.executable, "-m", "ray_syncer.cli"]
    out = subprocess.run([*argv, "--version"], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert out.strip() == f"ray-syncer {VERSION}"


def test_make_image_tags_the_image_with_it() -> None:
    makefile = (REPO / "Makefile").read_text()
    (recipe,) = re.findall(r"^image:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert "hack/image.sh" in recipe
    script = (REPO / "hack" / "image.sh").read_text()
    # The lines of hack/image.sh that derive the version and the tag, run as the script runs them.
    lines = [ln for ln in script.splitlines()
             if re.match(r"(version|IMAGE)=", ln)]
    assert len(lines) == 2, lines
    out = subprocess.run(["bash", "-c", "\n".join([*lines, 'echo "$version $IMAGE"'])],
                         cwd=REPO, env={"PATH": "/usr/bin:/bin"}, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [VERSION, f"ray-syncer:{VERSION}"]
    assert '--build-arg "RAY_SYNCER_VERSION=$version"' in script


def test_dockerfile_default_and_deploy_images_are_current() -> None:
    # test_dockerfile.py and test_raycluster.py check these in depth; here, only the digits.
    assert re.search(rf"^ARG RAY_SYNCER_VERSION={re.escape(VERSION)}$",
                     (REPO / "Dockerfile").read_text(), re.M)
    assert re.search(rf"^\s+newTag: {re.escape(VERSION)}$",
                     (REPO / "deploy" / "base" / "kustomization.yaml").read_text(), re.M)
    images = re.findall(r"image: (\S+)", (REPO / "deploy" / "base" / "ray-cluster.yaml").read_text())
    assert images and set(images) == {f"ray-syncer:{VERSION}"}, images


def test_the_rehearsal_runs_the_image_of_this_version() -> None:
    text = (REPO / "tests" / "rehearsal" / "conftest.py").read_text()
    assert 'IMAGE = f"ray-syncer:{package_version()}"' in text


def test_documented_image_tags_are_current() -> None:
    stale = []
    for f in _tracked_text_files():
        if not f.endswith(".md") or f == "CHANGELOG.md":
            continue
        for tag in re.findall(r"ray-syncer:(\d+\.\d+\.\d+\S*?)(?=[\s`)'\"]|$)",
                              (REPO / f).read_text(errors="replace"), re.M):
            if tag != VERSION:
                stale.append((f, tag))
    assert not stale, f"docs name another version than pyproject's {VERSION}: {stale}"


def test_the_changelog_has_a_section_for_it() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)
    assert re.search(r"^## \[Unreleased\]$", text, re.M)


def test_no_other_file_carries_its_own_copy() -> None:
    pattern = re.compile(rf"(?<![\d.]){re.escape(VERSION)}(?![\d])")
    found = []
    for f in _tracked_text_files():
        if f in LITERAL_COPIES or f.startswith(UNRELATED):
            continue
        try:
            text = (REPO / f).read_text()
        except UnicodeDecodeError:
            continue
        if f.endswith(".md"):
            # Image names in the docs' commands: test_documented_image_tags_are_current.
            text = text.replace(f"ray-syncer:{VERSION}", "")
        if pattern.search(text):
            found.append(f)
    assert not found, (
        f"these files spell the version {VERSION} themselves; derive it from pyproject.toml "
        f"(ray_syncer.__version__, tests.deploy.manifests.package_version) or add the file to "
        f"LITERAL_COPIES with a check: {found}"
    )
