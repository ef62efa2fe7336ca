"""The README's walkthrough, run as written: its shell blocks, literally, through bash.

Twice: on the README's own in-memory dev clusters (its "without clusters" block, run as written,
with the ``--validate=false`` it asks for), and on two fresh real control planes
(``KUBEBUILDER_ASSETS``) as the contexts ``active`` and ``passive``. ``ray-syncer run`` is the
README's own command line, in the background, as a user runs it in a second terminal. The
metrics port is a free one instead of 9090, which may be taken on a shared machine. The planes are the test's own: the
walkthrough writes into ``default``, which on someone's cluster is not the suite's to touch, so
it never runs against the clusters of ``make test-integration``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_syncer_testkit.envtest import control_planes, find_assets, free_port

from tests.readme.blocks import blocks, command_lines, shell_blocks
from tests.readme.shell import Shell

pytestmark = [pytest.mark.ray, pytest.mark.realcluster]


@pytest.fixture(params=["memory", "real"])
def contexts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shell]:
    """A shell whose kubectl contexts ``active`` and ``passive`` are two clusters: the README's
    own in-memory dev clusters (its "without clusters" block, run as written), or two real
    control planes."""
    folder = tmp_path / "clone"
    folder.mkdir()
    links, port = ("crds", "examples"), {"9090": str(free_port())}
    if request.param == "real":
        assets, why_not = find_assets()
        if assets is None:
            pytest.skip(f"real control planes: {why_not}")
        with control_planes(("active", "passive"), assets=assets) as planes:
            yield Shell(folder, planes, links=links, replace=port)
        return
    (block,) = blocks("dev-clusters")
    *servers, export = command_lines(block)
    shell = Shell(folder, None, links=links, prelude=export,
                  replace={**port, " apply ": " apply --validate=false "})
    procs = [shell.start(line, tmp_path / f"dev-cluster-{i}.log") for i, line in enumerate(servers)]
    try:
        for line in servers:
            out = folder / line.split("--kubeconfig-out", 1)[1].split()[0]
            deadline = time.monotonic() + 30
            while not out.exists():
                assert time.monotonic() < deadline, f"{line} wrote no kubeconfig"
                time.sleep(0.1)
        yield shell
    finally:
        for proc in procs:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the operator's process group (a closing terminal), then SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def test_the_walkthrough_runs_as_written(contexts: Shell, tmp_path: Path) -> None:
    # The walkthrough's blocks before the operator's command run first, the rest while it runs.
    tagged = [b for b in shell_blocks() if b.tag in ("walkthrough", "operator")]
    at = [b.tag for b in tagged].index("operator")
    before, operator, after = tagged[:at], tagged[at].body, tagged[at + 1:]
    assert before and after
    shell = contexts
    for block in before:
        shell.run(block.body)
    log = tmp_path / "operator.log"
    proc = shell.start(operator, log)
    try:
        outputs = [shell.run(block.body) for block in after]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- operator log ---\n{log.read_text()[-4000:]}") from None
    finally:
        stop(proc)
    # The last block's answers: the syncer in the status table, diff in sync, the RPO gauge.
    last = outputs[-1]
    assert "configmap-sync" in last and "krmsyncer_rpo_seconds{" in last, last
