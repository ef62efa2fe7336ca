"""The envtest harness itself: it finds the binaries, starts a usable cluster, and never leaks one.

A run that is interrupted (Ctrl-C), killed outright (SIGKILL: no Python cleanup
at all) or simply finishes must leave no etcd, apiserver or controller-manager
running. Each case runs the harness in a child Python and checks the
processes it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_syncer_testkit.envtest import ASSETS_ENV, find_assets

ASSETS, WHY = find_assets()
needs_assets = pytest.mark.skipif(ASSETS is None, reason=f"real control planes: {WHY}")

# Starts one control plane (no controller-manager: faster), prints its pids, then waits.
CHILD = r"""
import json, signal, sys, time
# Ctrl-C must reach it even when started from a background job (which inherits SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from ray_syncer_testkit.envtest import ControlPlaneOptions, control_planes, find_assets
assets, _ = find_assets()
with control_planes(("one",), assets=assets, options=ControlPlaneOptions(controller_manager=False)) as planes:
    plane = planes["one"]
    print(json.dumps({"pids": plane.pids(), "folder": str(plane.folder.parent)}), flush=True)
    if sys.argv[1] == "wait":
        time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    # A zombie is dead; only init has not reaped it yet.
    return "State:\tZ" not in state


def _start_child(mode: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[2])
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"the child printed nothing (exit {proc.wait()})"
    return proc, json.loads(line)


def _wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_find_assets_says_why_not() -> None:
    assets, why = find_assets({})
    assert assets is None and ASSETS_ENV in why
    assets, why = find_assets({ASSETS_ENV: "/nonexistent"})
    assert assets is None and "kube-apiserver" in why and "etcd" in why


@needs_assets
@pytest.mark.parametrize("how", ["finish", "sigint", "sigkill"])
def test_no_process_outlives_the_harness(how: str) -> None:
    proc, info = _start_child("finish" if how == "finish" else "wait")
    pids = list(info["pids"])  # type: ignore[call-overload]
    try:
        assert len(pids) == 2
        if how != "finish":
            assert all(_alive(p) for p in pids)
        if how == "sigint":
            proc.send_signal(signal.SIGINT)
        elif how == "sigkill":
            proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # a failed test leaves nothing behind (its planes die with it)
            proc.kill()
            proc.wait()
    assert _wait_gone(pids) == [], f"still running after {how}: {pids}"
    if how != "sigkill":  # SIGKILL runs no cleanup at all; the folder is in the temp dir
        assert not Path(str(info["folder"])).exists()


@needs_assets
def test_a_plane_serves_the_official_client_with_its_kubeconfig(tmp_path: Path) -> None:
    from kubernetes import client, config
    from ray_syncer_testkit.envtest import ControlPlane, ControlPlaneOptions

    assert ASSETS is not None
    plane = ControlPlane(ASSETS, name="t", folder=tmp_path / "t",
                         options=ControlPlaneOptions(controller_manager=False)).start()
    try:
        api = config.new_client_from_config(str(plane.kubeconfig_path))
        names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
        assert {"default", "kube-system"} <= names
        # The audit log is the real cluster's request log.
        mark = plane.audit_offset()
        client.CoreV1Api(api).create_namespaced_config_map(
            "default", {"metadata": {"name": "audited"}, "data": {"a": "b"}})
        deadline = time.monotonic() + 5
        events: list[dict[str, object]] = []
        while time.monotonic() < deadline and not events:
            events = [e for e in plane.audit_events(mark) if e.get("verb") == "create"
                      and str(e.get("requestURI", "")).endswith("/configmaps")]
            time.sleep(0.1)
        assert events and events[0]["user"]["username"] == "envtest-admin"  # type: ignore[index]
    finally:
        pids = plane.pids()
        plane.stop()
    assert _wait_gone(pids) == []


def test_ci_fails_when_the_real_substrate_did_not_run(tmp_path: Path) -> None:
    # KRMSYNCER_REQUIRE_REAL=1 and a conformance run whose real tests all skip: a failed run.
    env = {k: v for k, v in os.environ.items() if k not in (ASSETS_ENV, "KRMSYNCER_E2E_SOURCE_KUBECONFIG",
                                                             "KRMSYNCER_E2E_DEST_KUBECONFIG")}
    env["KRMSYNCER_REQUIRE_REAL"] = "1"
    root = Path(__file__).parents[2]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/conformance/test_discovery.py"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0, r.stdout[-2000:]
    assert "no real-cluster test passed" in r.stdout
    assert "real: 0 passed" in r.stdout
