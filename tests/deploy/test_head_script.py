"""deploy/ray-syncer-head.sh, run for real with stand-ins for `ray start`, `ray` and `ray-syncer`.

The script is how the operator lives in the Ray head container (see deploy/base/ray-cluster.yaml).
What matters, and is checked here on the processes it actually starts and signals:
the operator starts only after the GCS answers, with --ray-address=auto and the manifest's flags;
an operator crash restarts the operator but not Ray; Ray dying ends the container (non-zero) and
stops the operator; SIGTERM stops the operator before Ray.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.deploy.manifests import DEPLOY

SCRIPT = DEPLOY / "ray-syncer-head.sh"

# Each stand-in appends what happened to $STATE/log, one line per event.
FAKE_RAY_START = """#!/usr/bin/env bash
echo "ray-start $*" >> "$STATE/log"
trap 'echo "ray-start TERM" >> "$STATE/log"; exit 0' TERM
[[ -e "$STATE/ray-start-fails" ]] && exit 1
touch "$STATE/gcs-ready"
while [[ ! -e "$STATE/ray-dies" && ! -e "$STATE/ray-stopped" ]]; do sleep 0.05; done
exit 3
"""
FAKE_RAY = """#!/usr/bin/env bash
case "$1" in
  health-check) [[ -e "$STATE/gcs-ready" ]] ;;
  stop) echo "ray stop" >> "$STATE/log"; touch "$STATE/ray-stopped" ;;
  *) exit 2 ;;
esac
"""
FAKE_OPERATOR = """#!/usr/bin/env bash
echo "operator $* auth=${RAY_AUTH_TOKEN:-}" >> "$STATE/log"
if [[ -e "$STATE/operator-crashes" ]]; then rm "$STATE/operator-crashes"; exit 7; fi
trap 'echo "operator TERM" >> "$STATE/log"; exit 0' TERM
while :; do sleep 0.05; done
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {
        "fake-ray-start": FAKE_RAY_START,
        "ray": FAKE_RAY,
        "ray-syncer": FAKE_OPERATOR,
    }.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "log").touch()
    return tmp_path


@pytest.fixture
def start(state: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def _start(
        *args: str, gen_cmd: str | None = "fake-ray-start --head --block"
    ) -> subprocess.Popen[str]:
        env = {
            "PATH": f"{state / 'bin'}:{os.environ['PATH']}",
            "STATE": str(state),
            "RAY_AUTH_TOKEN": "t0ken",
        }
        if gen_cmd is not None:
            env["KUBERAY_GEN_RAY_START_CMD"] = gen_cmd
        p = subprocess.Popen(
            ["bash", str(SCRIPT), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        procs.append(p)
        return p

    yield _start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        p.communicate()


def _log(state: Path) -> list[str]:
    return (state / "log").read_text().splitlines()


def _wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_operator_starts_after_ray_with_auto_address_and_the_given_flags(
    state: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    start("--metrics-port=9090", "--cluster-name=primary")
    _wait_for(lambda: any(line.startswith("operator") for line in _log(state)))
    log = _log(state)
    assert log[0] == "ray-start --head --block"
    # The Ray token KubeRay injects reaches the operator through the environment.
    assert (
        log[1]
        == "operator run --ray-address=auto --metrics-port=9090 --cluster-name=primary auth=t0ken"
    )


def test_an_operator_crash_restarts_the_operator_but_not_ray(
    state: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    (state / "operator-crashes").touch()
    proc = start("--metrics-port=9090")
    _wait_for(lambda: sum(line.startswith("operator run") for line in _log(state)) == 2)
    assert sum(line.startswith("ray-start --head") for line in _log(state)) == 1
    assert proc.poll() is None, "the container must survive an operator crash"


def test_ray_exiting_stops_the_operator_and_fails_the_container(
    state: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = start()
    _wait_for(lambda: any(line.startswith("operator run") for line in _log(state)))
    (state / "ray-dies").touch()
    assert proc.wait(timeout=15) == 1
    assert "operator TERM" in _log(state)
    assert "Ray exited" in proc.communicate()[1]


def test_sigterm_stops_the_operator_before_ray(
    state: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = start()
    _wait_for(lambda: any(line.startswith("operator run") for line in _log(state)))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    log = _log(state)
    assert log.index("operator TERM") < log.index("ray stop")


def test_ray_failing_to_start_fails_without_starting_the_operator(
    state: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    (state / "ray-start-fails").touch()
    proc = start()
    assert proc.wait(timeout=15) == 1
    assert not any(line.startswith("operator") for line in _log(state))


def test_refuses_to_run_outside_kuberay(start: Callable[..., subprocess.Popen[str]]) -> None:
    proc = start(gen_cmd=None)
    assert proc.wait(timeout=15) != 0
    assert "KUBERAY_GEN_RAY_START_CMD" in proc.communicate()[1]


def test_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
