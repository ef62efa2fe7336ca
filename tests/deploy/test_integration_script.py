"""hack/test-integration.sh (`make test-integration`), run with stand-ins for kind, kubectl, docker.

No Docker engine or kind exists on the build machines, so the script's three paths are driven
here with fakes that record what they are asked: given kubeconfigs -> the suites run against
them; kind available -> two clusters, the CRD in both, the walkthrough's kubeconfig Secret with
the destination's Docker-network address, the suites, and teardown even when the suites fail;
neither -> exit 2 naming exactly what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import REPO

SCRIPT = REPO / "hack" / "test-integration.sh"
BASH = shutil.which("bash") or "/bin/bash"

FAKE_PYTHON = """#!/usr/bin/env bash
{ echo "args $*"; echo "src=$KRMSYNCER_E2E_SOURCE_KUBECONFIG"; echo "dst=$KRMSYNCER_E2E_DEST_KUBECONFIG";
  echo "require=$KRMSYNCER_REQUIRE_REAL assets=${KUBEBUILDER_ASSETS:-}"; echo "secret=${KRMSYNCER_E2E_DEST_SECRET:-}";
  [[ -n "$KRMSYNCER_E2E_DEST_KUBECONFIG" && -f "$KRMSYNCER_E2E_DEST_KUBECONFIG" ]] && sed 's/^/destfile /' "$KRMSYNCER_E2E_DEST_KUBECONFIG"
} >> "$STATE/log"
exit "${SUITE_EXIT:-0}"
"""
FAKE_KIND = """#!/usr/bin/env bash
echo "kind $*" >> "$STATE/log"
case "$1 $2" in
  "get clusters") cat "$STATE/existing" 2>/dev/null ;;
  "get kubeconfig")
    printf 'apiVersion: v1\\nkind: Config\\nclusters:\\n- cluster:\\n    server: https://127.0.0.1:40%s\\n  name: kind-%s\\ncurrent-context: kind-%s\\n' "${#4}" "$4" "$4" ;;
esac
"""
FAKE_KUBECTL = """#!/usr/bin/env bash
echo "kubectl $*" >> "$STATE/log"
if [[ "$*" == *"config view --minify --flatten"* ]]; then cat "$2"; fi
for a in "$@"; do
  if [[ "$a" == --from-file=kubeconfig=* ]]; then cp "${a#--from-file=kubeconfig=}" "$STATE/secret"; fi
done
"""
FAKE_DOCKER = """#!/usr/bin/env bash
echo "docker $*" >> "$STATE/log"
[[ "$1" == inspect ]] && echo 172.18.0.3
exit 0
"""


def _bin(tmp_path: Path, tools: dict[str, str]) -> Path:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name, body in tools.items():
        (d / name).write_text(body)
        (d / name).chmod(0o755)
    return d


def _run(
    tmp_path: Path, *args: str, path: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "log").touch()
    full = {"PATH": path, "STATE": str(tmp_path), "PYTHON": str(tmp_path / "bin" / "python")}
    full.update(env or {})
    return subprocess.run(
        [BASH, str(SCRIPT), *args], env=full, capture_output=True, text=True, timeout=60
    )


def _log(tmp_path: Path) -> list[str]:
    return (tmp_path / "log").read_text().splitlines()


def _minimal_path(tmp_path: Path) -> str:
    # Only what the script needs besides the tools under test, so the host's own kind,
    # kubectl or docker cannot leak in.
    d = _bin(tmp_path, {"python": FAKE_PYTHON})
    for tool in ("bash", "dirname", "cat", "sed", "grep", "mktemp", "rm", "cp"):
        real = shutil.which(tool)
        assert real
        (d / tool).symlink_to(real)
    return str(d)


def test_given_kubeconfigs_run_the_suites_against_them(tmp_path: Path) -> None:
    path = _minimal_path(tmp_path)
    r = _run(
        tmp_path,
        "-k",
        "failover",
        path=path,
        env={
            "KRMSYNCER_E2E_SOURCE_KUBECONFIG": "/k/src",
            "KRMSYNCER_E2E_DEST_KUBECONFIG": "/k/dst",
        },
    )
    assert r.returncode == 0, r.stderr
    assert _log(tmp_path)[:4] == [
        "args -m pytest -q tests/e2e tests/dr tests/conformance -k failover",
        "src=/k/src",
        "dst=/k/dst",
        "require=1 assets=",
    ]


def test_a_failing_suite_fails_the_run(tmp_path: Path) -> None:
    r = _run(
        tmp_path,
        path=_minimal_path(tmp_path),
        env={
            "KRMSYNCER_E2E_SOURCE_KUBECONFIG": "/k/src",
            "KRMSYNCER_E2E_DEST_KUBECONFIG": "/k/dst",
            "SUITE_EXIT": "1",
        },
    )
    assert r.returncode == 1


def test_without_kind_or_kubeconfigs_it_says_what_is_missing(tmp_path: Path) -> None:
    r = _run(tmp_path, path=_minimal_path(tmp_path))
    assert r.returncode == 2
    for needed in ("KRMSYNCER_E2E_SOURCE_KUBECONFIG", "KRMSYNCER_E2E_DEST_KUBECONFIG",
                   "kind (https://kind.sigs.k8s.io) on PATH", "kubectl on PATH", "docker on PATH"):  # fmt: skip
        assert needed in r.stderr
    assert _log(tmp_path) == [], "nothing may run"


def test_one_kubeconfig_alone_is_reported(tmp_path: Path) -> None:
    r = _run(
        tmp_path, path=_minimal_path(tmp_path), env={"KRMSYNCER_E2E_DEST_KUBECONFIG": "/k/dst"}
    )
    assert r.returncode == 2
    assert "only one is set" in r.stderr


def test_docker_without_an_engine_is_reported(tmp_path: Path) -> None:
    path = _minimal_path(tmp_path)
    _bin(tmp_path, {"kind": FAKE_KIND, "kubectl": FAKE_KUBECTL, "docker": "#!/bin/sh\nexit 1\n"})
    r = _run(tmp_path, path=path)
    assert r.returncode == 2
    assert "a running Docker engine ('docker info' failed)" in r.stderr
    assert "kind (" not in r.stderr


@pytest.mark.parametrize("suite_exit", [0, 1])
def test_kind_path_builds_both_clusters_stores_the_secret_and_tears_down(
    tmp_path: Path, suite_exit: int
) -> None:
    path = _minimal_path(tmp_path)
    _bin(tmp_path, {"kind": FAKE_KIND, "kubectl": FAKE_KUBECTL, "docker": FAKE_DOCKER})
    r = _run(tmp_path, path=path, env={"SUITE_EXIT": str(suite_exit)})
    assert r.returncode == suite_exit, r.stderr
    log = _log(tmp_path)
    creates = [line for line in log if line.startswith("kind create cluster")]
    assert creates == [
        "kind create cluster --name source --wait 120s",
        "kind create cluster --name destination --wait 120s",
    ]
    crd_applies = [line for line in log if "apply --server-side -f crds/krmsyncer.yaml" in line]
    assert len(crd_applies) == 2
    # The walkthrough's command, then the Secret in the SOURCE cluster.
    assert any("config view --minify --flatten --context kind-destination" in line for line in log)
    (secret_cmd,) = [line for line in log if "create secret generic remote-kubeconfig" in line]
    assert "source.host.kubeconfig" in secret_cmd
    secret = (tmp_path / "secret").read_text()
    assert "server: https://172.18.0.3:6443" in secret and "127.0.0.1" not in secret
    # The suites got that same in-cluster-reachable kubeconfig for the destination.
    assert "destfile     server: https://172.18.0.3:6443" in log
    assert "secret=remote-kubeconfig" in log
    # Teardown happens whatever the suites returned, after they ran.
    deletes = [i for i, line in enumerate(log) if line.startswith("kind delete cluster")]
    assert len(deletes) == 2
    assert min(deletes) > max(i for i, line in enumerate(log) if line.startswith("args "))


def test_existing_clusters_are_never_touched(tmp_path: Path) -> None:
    path = _minimal_path(tmp_path)
    _bin(tmp_path, {"kind": FAKE_KIND, "kubectl": FAKE_KUBECTL, "docker": FAKE_DOCKER})
    (tmp_path / "existing").write_text("destination\n")
    r = _run(tmp_path, path=path)
    assert r.returncode == 2
    assert "already exists" in r.stderr
    assert not any(line.startswith(("kind create", "kind delete")) for line in _log(tmp_path))


def test_script_is_valid_bash_and_shellcheck_clean() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(
            ["shellcheck", str(SCRIPT), str(REPO / "deploy" / "ray-syncer-head.sh")], check=True
        )


def test_make_target_runs_this_script() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "bash hack/test-integration.sh" in makefile
    assert os.access(SCRIPT, os.X_OK)
