"""`ray-syncer run` always stops: every stop path ends the process within 10 s.

Each test starts the real command as a subprocess in its own session (so it
starts its own local Ray, with a shard actor, against an in-memory API server),
stops it one way, and asserts: the exit time (printed), the exit code, that the
metrics port can be bound again at once, and that no process of that Ray
instance is left. The instance's processes are recorded before the stop as
every process of the operator's session (Ray workers get their own process
group but keep the session, and an orphan keeps it too).

Paths: SIGTERM or SIGINT to the process, SIGTERM to the whole process group
(what `timeout`, systemd and a closing terminal do: Ray dies at the same
moment), Ray already dead, Ray unreachable (its GCS stopped), a second signal
(exit at once), a Ray cluster it only joined (``--ray-address``), which
must be left running, and a stop during start-up, while its local Ray comes up
(as fast as a later stop; on both substrates: the operator's own cluster is the
in-memory server or a real control plane).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ray_syncer_testkit import start_in_thread

from ray_syncer.api.crd import load_crd
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, SECRET_RES
from tests.substrate import SUBSTRATES, RealClusters

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

STOP_BOUND_S = 10.0  # every stop path
LATER_STOP_S = 3.0  # a stop once running takes 0.6-2.7 s (SIGTERM to the process or the group)
NS_RES = ResourceInfo("", "v1", "Namespace", "namespaces", False)
START_TIMEOUT_S = 90.0  # Ray's start on a loaded 2-core machine
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# -- processes, from /proc ------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    state: str
    ppid: int
    session: int


def _procs() -> list[Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        head, _, tail = stat.rpartition(b")")
        name = head.partition(b"(")[2].decode(errors="replace")
        fields = tail.split()
        found.append(Proc(int(entry), name, fields[0].decode(), int(fields[1]), int(fields[3])))
    return found


def session_procs(sid: int, *, alive_only: bool = True) -> dict[int, Proc]:
    return {
        p.pid: p
        for p in _procs()
        if p.session == sid and not (alive_only and p.state in ("Z", "X"))
    }


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session this test created (stopped ones too)."""
    for p in session_procs(sid).values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)


def port_is_free(port: int) -> bool:
    # As the next `ray-syncer run` binds it (aiohttp: 0.0.0.0 with SO_REUSEADDR).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the world: one API server with the CRD, a Secret and a KRMSyncer --------------------


@dataclass
class World:
    kubeconfig: Path
    port: int
    tmp: Path


async def _install(source: object, dest: object, namespace: str = "default") -> None:
    client = KubeClient(load_kubeconfig_text(source.kubeconfig(context="source")))  # type: ignore[attr-defined]
    try:
        with contextlib.suppress(ApiError):  # a real cluster may have it from another test
            await client.create(CRD_RES, load_crd())
        for _ in range(100):
            client.invalidate_discovery()
            if await client.resolve(KRMSYNCER_RES.group, KRMSYNCER_RES.version, "KRMSyncer"):
                break
            await asyncio.sleep(0.1)
        dest_kubeconfig = dest.kubeconfig(context="destination").encode()  # type: ignore[attr-defined]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "remote-kubeconfig", "namespace": namespace},
            "data": {"kubeconfig": base64.b64encode(dest_kubeconfig).decode()},
        }
        if namespace != "default":
            await client.create(NS_RES, {"metadata": {"name": namespace}})
        await client.create(SECRET_RES, secret, namespace=namespace)
        syncer = yaml.safe_load((EXAMPLES / "krmsyncer-usage.yaml").read_text())
        syncer["metadata"]["namespace"] = namespace
        syncer["spec"]["rules"][0]["namespaces"] = [namespace]
        await client.create(KRMSYNCER_RES, syncer, namespace=namespace)
    finally:
        await client.close()


@pytest.fixture(scope="module", params=SUBSTRATES)
def startup_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The world of the start-up test, on either substrate (a skip without a real cluster)."""
    if request.param == "memory":
        yield request.getfixturevalue("world")
        return
    pair: RealClusters = request.getfixturevalue("real_pair")
    tmp = tmp_path_factory.mktemp("stop-real")
    source, dest = _Plain(pair.source.kubeconfig), _Plain(pair.dest.kubeconfig)
    asyncio.run(_install(source, dest, namespace=f"stop-{os.getpid()}"))
    path = tmp / "source.kubeconfig"
    path.write_text(pair.source.kubeconfig)
    yield World(path, free_port(), tmp)


@dataclass
class _Plain:
    """A real cluster, as far as _install needs one: its kubeconfig."""

    text: str

    def kubeconfig(self, context: str) -> str:
        return self.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("stop")
    source = start_in_thread(name="source")
    dest = start_in_thread(name="destination")
    try:
        asyncio.run(_install(source, dest))
        # One port for every test: each start also proves the previous stop released it.
        yield World(
            source.write_kubeconfig(tmp / "source.kubeconfig", context="source"), free_port(), tmp
        )
    finally:
        source.stop()
        dest.stop()


# -- the operator under test -------------------------------------------------------------


def _env() -> dict[str, str]:
    # No token auth: `run` starts its local Ray so, and the test's joined cluster runs so.
    env = dict(
        os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1", RAY_AUTH_MODE="disabled"
    )
    env.pop("RAY_ADDRESS", None)
    return env


class Operator:
    def __init__(self, world: World, name: str, *args: str) -> None:
        self.port = world.port
        self.log_path = world.tmp / f"{name}.log"
        with self.log_path.open("wb") as out:  # a file, not a pipe: a full pipe would block it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ray_syncer", "run", "--kubeconfig", str(world.kubeconfig),
                 "--metrics-port", str(world.port), "--cluster-name", "source", *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(),
                start_new_session=True,
            )  # fmt: skip
        self.pid = self.proc.pid  # also its session and process group id
        self.ray_session = self.pid  # where its Ray's processes are (another one when joined)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_running(self) -> dict[int, Proc]:
        """Until /readyz answers and the shard actor runs; then the Ray instance's processes."""
        deadline = time.monotonic() + START_TIMEOUT_S
        ready = False
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"operator exited early:\n{self.log()[-3000:]}"
            if not ready:
                with contextlib.suppress(OSError):
                    url = f"http://127.0.0.1:{self.port}/readyz"
                    with urllib.request.urlopen(url, timeout=2) as r:
                        ready = r.status == 200
            if ready:
                procs = self.instance()
                if any(p.name.startswith("ray::ShardHost") for p in procs.values()):
                    return procs
            time.sleep(0.5)
        raise AssertionError(
            f"operator not running within {START_TIMEOUT_S}s:\n{self.log()[-3000:]}"
        )

    def instance(self) -> dict[int, Proc]:
        """The live processes of its Ray instance: its session, but itself."""
        procs = session_procs(self.ray_session)
        procs.pop(self.pid, None)
        return procs

    def find(self, name: str) -> int:
        return next(p.pid for p in self.instance().values() if p.name == name)

    def wait_exit(self, since: float) -> tuple[int | None, float]:
        """The exit code (None: still running at the bound) and seconds since ``since``."""
        try:
            code: int | None = self.proc.wait(
                timeout=max(0.0, since + STOP_BOUND_S - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - since

    def cleanup(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)
        kill_session(self.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@pytest.fixture
def start(world: World, request: pytest.FixtureRequest) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def run(*args: str) -> Operator:
        op = Operator(world, request.node.name, *args)
        started.append(op)
        return op

    yield run
    for op in started:
        op.cleanup()


def check_stopped(op: Operator, how: str, code: int | None, seconds: float, before: dict[int, Proc],
                  expected_code: int) -> None:  # fmt: skip
    print(f"\n{how}: exit code {code} after {seconds:.2f}s")
    tail = op.log()[-4000:]
    assert code is not None, f"{how}: still running {STOP_BOUND_S}s after the stop\n{tail}"
    assert seconds < STOP_BOUND_S, f"{how}: took {seconds:.1f}s\n{tail}"
    assert port_is_free(op.port), f"{how}: port {op.port} still bound after exit\n{tail}"
    # Dead processes may take a moment to be reaped; a live one 3 s after the exit is left behind.
    # Left: anything alive in its session (the operator itself is reaped), or recorded before.
    left: dict[int, Proc] = {}
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        alive = {p.pid: p for p in _procs() if p.state not in ("Z", "X")}
        left = {pid: p for pid, p in alive.items() if p.session == op.pid or pid in before}
        if not left:
            break
        time.sleep(0.1)
    assert not left, (
        f"{how}: Ray processes left behind: {sorted((p.pid, p.name) for p in left.values())}\n{tail}"
    )
    assert code == expected_code, f"{how}: exit code {code}, expected {expected_code}\n{tail}"


def _ray_parts(procs: dict[int, Proc]) -> set[str]:
    names = {p.name for p in procs.values()}
    return {n for n in ("gcs_server", "raylet") if n in names} | (
        {"workers"} if any(n.startswith("ray::") for n in names) else set()
    )


# -- the stop paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["sigterm-process", "sigint-process", "sigterm-group"],
)
def test_a_signal_stops_it(
    start: Callable[..., Operator], sig: signal.Signals, group: bool
) -> None:
    op = start()
    before = op.wait_running()
    assert _ray_parts(before) == {"gcs_server", "raylet", "workers"}, before
    t0 = time.monotonic()
    if group:
        os.killpg(op.pid, sig)  # Ray's own processes get it at the same moment
    else:
        os.kill(op.pid, sig)
    code, seconds = op.wait_exit(t0)
    check_stopped(op, f"{sig.name} to the {'group' if group else 'process'}", code, seconds,
                  before, expected_code=0)  # fmt: skip


def test_ray_already_dead(start: Callable[..., Operator]) -> None:
    op = start()
    before = op.wait_running()
    for pid in before:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while op.instance() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert op.proc.poll() is None, f"operator exited with Ray:\n{op.log()[-3000:]}"
    t0 = time.monotonic()
    op.proc.send_signal(signal.SIGTERM)
    code, seconds = op.wait_exit(t0)
    # Its local Ray is gone and took the shards with it: nothing was left undone.
    check_stopped(op, "SIGTERM with Ray already dead", code, seconds, before, expected_code=0)


def test_ray_unreachable(start: Callable[..., Operator]) -> None:
    op = start()
    before = op.wait_running()
    os.kill(op.find("gcs_server"), signal.SIGSTOP)  # alive but silent: calls to it hang
    t0 = time.monotonic()
    op.proc.send_signal(signal.SIGTERM)
    code, seconds = op.wait_exit(t0)
    # The shards could not be stopped cleanly: the stop was abandoned, the local Ray killed.
    check_stopped(op, "SIGTERM with Ray unreachable", code, seconds, before, expected_code=1)


def test_a_second_signal_exits_at_once(start: Callable[..., Operator]) -> None:
    op = start()
    before = op.wait_running()
    os.kill(op.find("gcs_server"), signal.SIGSTOP)  # so that the first stop takes a while
    t0 = time.monotonic()
    op.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    t1 = time.monotonic()
    op.proc.send_signal(signal.SIGINT)
    code, seconds = op.wait_exit(t0)
    print(f"\nsecond signal: exit {time.monotonic() - t1:.2f}s after it")
    assert time.monotonic() - t1 < 2.0, op.log()[-4000:]
    check_stopped(
        op, "SIGTERM then SIGINT", code, seconds, before, expected_code=128 + signal.SIGINT
    )


@pytest.fixture
def ray_head() -> Iterator[tuple[str, int]]:
    """A Ray cluster started apart (``ray start --head``): its address and session id.

    Its own temp dir keeps other processes' ``ray.init()`` from finding it, and
    its own ports keep it clear of other Ray instances on this machine.
    """
    temp = tempfile.mkdtemp(prefix="rs-head-", dir="/tmp")  # short: Ray's socket paths
    gcs, client, agent = free_port(), free_port(), free_port()
    env = _env()
    with open(os.path.join(temp, "head.log"), "wb") as out:
        head = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
             f"--port={gcs}", f"--ray-client-server-port={client}",
             f"--dashboard-agent-listen-port={agent}", f"--temp-dir={temp}",
             "--include-dashboard=false", "--num-cpus=2", "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(os.path.join(temp, "ray_current_cluster")):
            assert head.poll() is None, Path(temp, "head.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{gcs}", head.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGCONT)
        kill_session(head.pid)  # workers have their own process groups: the whole session
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_joined_ray_cluster_is_left_running(
    start: Callable[..., Operator], ray_head: tuple[str, int]
) -> None:
    address, head_session = ray_head
    op = start("--ray-address", address)
    op.ray_session = head_session
    cluster = op.wait_running()
    keep = {
        pid: p
        for pid, p in cluster.items()
        if not p.name.startswith(("ray::ShardHost", "ray::Supervisor"))
    }
    assert {"gcs_server", "raylet"} <= {p.name for p in keep.values()}, keep
    t0 = time.monotonic()
    os.killpg(op.pid, signal.SIGTERM)
    code, seconds = op.wait_exit(t0)
    # Nothing of its own was running besides itself (check_stopped looks at its session) ...
    check_stopped(op, "SIGTERM to the group, Ray joined", code, seconds, {}, expected_code=0)
    # ... and the cluster it joined is all there (only its shard actors were stopped).
    alive = session_procs(head_session)
    gone = sorted((p.pid, p.name) for pid, p in keep.items() if pid not in alive)
    assert not gone, f"the joined cluster lost processes: {gone}"


def _wait_for_process(op: Operator, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(p.name == name for p in op.instance().values()):
        assert op.proc.poll() is None, f"operator exited early:\n{op.log()[-3000:]}"
        assert time.monotonic() < deadline, f"no {name} within {START_TIMEOUT_S}s"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", ["importing", "ray-starting"])
def test_a_stop_during_start_up_is_as_fast_as_a_later_one(
    startup_world: World, request: pytest.FixtureRequest, moment: str
) -> None:
    """SIGTERM to the whole group while Python imports, or while its local Ray comes up (its
    GCS has just started: ray.init runs). Nothing runs yet that a stop would drain."""
    op = Operator(startup_world, request.node.name)
    try:
        if moment == "importing":
            time.sleep(0.3)
            allowed = {-signal.SIGTERM}  # before any handler: the default action, at once
        else:
            _wait_for_process(op, "gcs_server")
            # 0: it ended its start itself; -SIGKILL: Ray held it frozen (the GIL, waiting on
            # the GCS the same signal stopped) and its start guard ended it.
            allowed = {0, -signal.SIGKILL}
        t0 = time.monotonic()
        os.killpg(op.pid, signal.SIGTERM)
        code, seconds = op.wait_exit(t0)
        check_stopped(op, f"SIGTERM to the group while {moment}", code, seconds, {},
                      expected_code=code if code in allowed else min(allowed))
        assert seconds < LATER_STOP_S, f"{moment}: took {seconds:.1f}s\n{op.log()[-3000:]}"
    finally:
        op.cleanup()
