"""The Dockerfile and the local stand-in for its base, checked statically.

The Dockerfile must build FROM ``BASE_IMAGE``, whose default is the official Ray image of exactly
the pinned Ray version, install this release's wheel from dist/ (what `make build` produces), run
as a numeric non-root user, and its build context (.dockerignore) must contain what its COPY
lines need and little else. The local base (hack/image/ray-base.Containerfile, used where the
official image cannot be pulled) must keep what the Dockerfile relies on in the official one.
The image actually built is checked by tests/rehearsal/test_image.py.
"""

from __future__ import annotations

import fnmatch
import re

from tests.deploy.manifests import BASE, REPO, package_version, ray_version


def _instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _args() -> dict[str, str]:
    return dict(rest.split("=", 1) for op, rest in _instructions() if op == "ARG" and "=" in rest)


def _expand(s: str) -> str:
    args = _args()
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], s)


def test_base_image_defaults_to_the_pinned_ray_release() -> None:
    froms = [rest for op, rest in _instructions() if op == "FROM"]
    assert froms == ["${BASE_IMAGE}"]
    base = _args()["BASE_IMAGE"]
    m = re.fullmatch(r"rayproject/ray:(\S+?)-py3(\d+)(-cpu)?", base)
    assert m, f"not an official rayproject/ray tag: {base}"
    assert m.group(1) == ray_version()
    # The image's Python must be one the package supports (requires-python >= 3.10).
    assert int(m.group(2)) >= 10


def test_the_local_base_keeps_the_official_images_user_and_paths() -> None:
    text = (REPO / "hack" / "image" / "ray-base.Containerfile").read_text()
    assert re.search(r"useradd[^\n]*--home-dir /home/ray --uid 1000 --gid 100[^\n]* ray\b", text)
    assert re.search(r"^USER 1000:100$", text, re.M)
    assert re.search(r"^WORKDIR /home/ray$", text, re.M)
    assert re.search(r"PATH=/home/ray/anaconda3/bin:", text), "Python must come first on PATH"
    assert "python3 -m venv /home/ray/anaconda3" in text
    assert '"ray[default]==${RAY_VERSION}"' in text
    # Same Python minor as the official tag (py311), checked in the build itself.
    m = re.fullmatch(r"rayproject/ray:\S+?-py3(\d+)", _args()["BASE_IMAGE"])
    assert m and f"sys.version_info[:2] == (3, {m.group(1)})" in text
    # KubeRay's injected probes run wget.
    assert "wget" in (REPO / "hack" / "image.sh").read_text()


def test_pip_gets_a_build_time_ca_bundle_only() -> None:
    # The bundle is an ARG (mounted by hack/image.sh for the build), never an ENV of the image.
    assert _args()["PIP_CERT"] == ""
    envs = " ".join(rest for op, rest in _instructions() if op == "ENV")
    assert "PIP_CERT" not in envs


def test_no_floating_tags() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert ":latest" not in text and "nightly" not in text


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for op, rest in _instructions() if op == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot needs a numeric, non-zero uid"
    # The RayCluster's pods run as that same uid.
    from tests.deploy.manifests import load_one, pod_templates

    rc = load_one(BASE / "ray-cluster.yaml", kind="RayCluster")
    for _, t in pod_templates(rc):
        assert t["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_installs_this_release_wheel_from_dist() -> None:
    assert _args()["RAY_SYNCER_VERSION"] == package_version()
    copies = [_expand(rest) for op, rest in _instructions() if op == "COPY"]
    wheel = f"dist/ray_syncer-{package_version()}-py3-none-any.whl"
    assert any(wheel in c.split() for c in copies), copies
    runs = " ".join(_expand(rest) for op, rest in _instructions() if op == "RUN")
    assert re.search(rf"pip install [^&]*/ray_syncer-{re.escape(package_version())}-", runs)
    # The build fails if pip moved Ray away from the pinned version.
    assert f"ray.__version__ == '{ray_version()}'" in runs


def test_head_entrypoint_is_installed() -> None:
    copies = [rest for op, rest in _instructions() if op == "COPY"]
    assert any(
        "deploy/ray-syncer-head.sh" in c and c.endswith("/usr/local/bin/ray-syncer-head")
        for c in copies
    )


def _dockerignore_allows(path: str) -> bool:
    allowed = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        if fnmatch.fnmatch(path, pattern):
            allowed = negate
    return allowed


def test_build_context_holds_what_copy_needs_and_nothing_else() -> None:
    sources = []
    for op, rest in _instructions():
        if op == "COPY":
            parts = [p for p in _expand(rest).split() if not p.startswith("--")]
            sources += parts[:-1]
    assert sources
    for src in sources:
        assert _dockerignore_allows(src), f".dockerignore excludes {src}"
    for unwanted in [".venv/bin/python", ".git/config", "tests/__init__.py", "README.md"]:
        assert not _dockerignore_allows(unwanted), unwanted
