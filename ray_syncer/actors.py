"""Every Ray call in the project: connecting, the supervisor actor, shard host actors.

Why it exists: docs/design.md §5 keeps Ray a thin layer over plain asyncio, in one
module (a test enforces that nothing else imports ray). The logic these actors
run lives elsewhere and is tested without Ray:

* ``SupervisorActor`` (detached, named ``supervisor`` in Ray namespace
  ``krmsyncer``) wraps ``operator.executor.SupervisorCore``; its driver
  (``RayHostDriver``) finds hosts by name, so after a restart it re-attaches to
  the live ones and never duplicates a shard.
* ``ShardHostActor`` (detached, named after its shard, or ``host/<n>`` when
  packed) wraps ``operator.host.HostCore``. Its repr (the dashboard's Repr
  column) names its syncer, shards and how it started; ``RayShardGauges``
  records per-shard gauges in Ray's own metrics.
* ``RayBackend`` is what the operator process holds: it gets-or-creates the
  supervisor (on the head node, or a node with ``--supervisor-resource``) and
  forwards desired shards to it, returning health and metrics.
* ``LocalCluster`` is a multi-node Ray on one machine, for tests and benchmarks.

Stopping (``ray-syncer run``) must never hang on Ray: ``unavailable()`` tells,
within a bounded time, whether Ray is down or does not answer (then the calls
that would hang are skipped), ``disconnect(timeout=...)`` runs
``ray.shutdown()`` in a daemon thread, and ``kill_local_ray()`` ends whatever
is left of a local Ray this process started (never a cluster it only joined).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, RayActorError

from ray_syncer.engine.spec import ShardHealth
from ray_syncer.operator.executor import HostGone, SupervisorCore, SupervisorReport
from ray_syncer.operator.host import HostCore, HostLabel, HostReport, describe_host
from ray_syncer.operator.supervisor import (
    AUTO_PACK_SIZE,
    AUTO_PACK_THRESHOLD,
    AUTOMATIC,
    SUPERVISOR_NAME,
    DesiredShard,
    is_host_name,
)

log = logging.getLogger(__name__)

RAY_NAMESPACE = "krmsyncer"
PROBE_TIMEOUT_S = 1.5  # how long a stop waits for Ray's GCS to answer before skipping Ray calls
# A resource only the head node has (Ray adds it): the supervisor's default place, beside the
# operator. Losing a worker node never moves it.
HEAD_RESOURCE = "node:__internal_head__"

# Set by connect(): True when this process started the local Ray (so it may end it).
_started_local = False


class RayUnavailable(RuntimeError):
    """Ray is down or does not answer: a call that needs it would hang."""

    safe_to_log = True  # the message is ours (no cluster data): the operator logs it


@dataclass(frozen=True)
class ActorSettings:
    """Resource and restart settings for the actors (IO-bound: tiny CPU)."""

    host_num_cpus: float = 0.05
    supervisor_num_cpus: float = 0.0
    # The supervisor asks for a sliver of this resource, so it lands on a node that has it.
    supervisor_resource: str | None = HEAD_RESOURCE
    max_restarts: int = -1
    max_task_retries: int = 3
    shards_per_host: int = AUTOMATIC
    reconcile_interval_s: float = 2.0
    call_timeout_s: float = 15.0


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    include_dashboard: bool | None = None,
    log_to_driver: bool = True,
    object_store_memory: int | None = None,
    adopt_orphans: bool = False,
) -> bool:
    """Connect to Ray (``address``, else RAY_ADDRESS, else start a local Ray). True if started locally.

    ``adopt_orphans`` (``ray-syncer run``): before starting a local Ray, become a
    child subreaper (Linux), so that processes of that Ray whose parent died
    (workers and agents of a dead raylet) stay our descendants and
    ``kill_local_ray()`` finds them.
    """
    global _started_local
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _started_local = False
        ray.init(address=address, namespace=RAY_NAMESPACE, log_to_driver=log_to_driver)
        return False
    # Ray 2.60 enables token auth by default; the embedded local Ray runs without it.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict[str, Any] = {
        "namespace": RAY_NAMESPACE,
        "log_to_driver": log_to_driver,
    }
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if include_dashboard is not None:
        kwargs["include_dashboard"] = include_dashboard
    if object_store_memory is not None:
        kwargs["object_store_memory"] = object_store_memory
    if adopt_orphans:
        _become_subreaper()
    _started_local = True  # set first: a signal during ray.init must still clean up
    ray.init(**kwargs)
    return True


def disconnect(timeout: float | None = None) -> bool:
    """``ray.shutdown()``; with ``timeout``, in a daemon thread: False if it did not finish in time.

    A shutdown that did not finish is abandoned (its thread may stay blocked:
    the caller must then end the process with ``os._exit``; interpreter exit
    would run Ray's atexit shutdown and block on the same lock).
    """
    if not ray.is_initialized():
        return True
    if timeout is None:
        ray.shutdown()
        return True
    finished = threading.Event()

    def shutdown() -> None:
        try:
            ray.shutdown()
        except Exception as exc:
            log.warning("ray.shutdown failed: %s", type(exc).__name__)
        finally:
            finished.set()

    threading.Thread(target=shutdown, name="ray-shutdown", daemon=True).start()
    return finished.wait(max(0.0, timeout))


def unavailable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why Ray cannot be used now, or None when its GCS answers; blocks at most about ``timeout``.

    A local Ray (started by this process) is down when any of its processes
    (GCS, raylet, dashboard, log monitor...) has exited.
    """
    if not ray.is_initialized():
        return "not connected to Ray"
    reason = _local_down()
    if reason is None:
        deadline = time.monotonic() + timeout
        error = _bounded(_ping_gcs, timeout)
        if error is not None:
            # A local Ray that is going down (a signal to the whole process group) shows it
            # within the probe's time, even when the ping failed at once (its GCS went first).
            reason = _local_down()
            while reason is None and _started_local and time.monotonic() < deadline:
                time.sleep(0.05)
                reason = _local_down()
            reason = reason or f"Ray's GCS did not answer within {timeout:g}s ({error})"
    return reason


def local_ray_down() -> bool:
    """True when this process started the local Ray and some of its processes have exited."""
    return _local_down() is not None


def _local_down() -> str | None:
    if not _started_local:
        return None
    node = ray._private.worker._global_node
    if node is None or not ray.is_initialized():
        return "the local Ray is not running"  # or half started: what is left of it gets killed
    dead = sorted({kind for kind, _proc in node.dead_processes()})
    return f"the local Ray is down ({', '.join(dead)} exited)" if dead else None


def _ping_gcs(timeout: float) -> None:
    from ray._private.worker import global_worker

    gcs = getattr(global_worker, "gcs_client", None)
    if gcs is None:
        raise RayUnavailable("no GCS client")
    gcs.internal_kv_exists(b"ping", b"ray_syncer", timeout=timeout)


def _bounded(fn: Callable[[float], object], timeout: float) -> str | None:
    """Run ``fn(timeout)`` in a daemon thread: None if it returned in time, else what went wrong."""
    outcome: list[str | None] = []

    def call() -> None:
        try:
            fn(timeout)
            outcome.append(None)
        except Exception as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=call, name="ray-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else "no answer"


async def _off_loop(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a daemon thread (not the default executor, whose threads exit waits for)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def call() -> None:
        try:
            result, error = fn(), None
        except Exception as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=call, name="ray-call", daemon=True).start()
    return await future


# -- the processes of a local Ray this process started --


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        PR_SET_CHILD_SUBREAPER = 36
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception as exc:  # not fatal: only orphans of a dead raylet would be missed
        log.debug("cannot become a child subreaper: %s", exc)


def _live_descendants(root: int) -> list[int]:
    """Live (not zombie) descendants of ``root``, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 2 or fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def _reap() -> None:
    # Zombie children (ours, or orphans we adopted as subreaper): collect them.
    with contextlib.suppress(ChildProcessError, OSError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"{pid} ({f.read().strip()})"
    except OSError:
        return str(pid)


def kill_local_ray(grace: float = 0.0) -> list[str]:
    """End every process of the local Ray this process started; return those it had to SIGKILL.

    Waits up to ``grace`` seconds for them to exit on their own (``ray.shutdown``
    asks them to), then SIGKILLs what is left: GCS, raylet, dashboard, agents,
    workers (a stopped process too). Does nothing when this process only joined
    a Ray cluster (``--ray-address``): that cluster is not ours to end.
    """
    if not _started_local:
        return []
    me = os.getpid()
    deadline = time.monotonic() + grace
    left = _live_descendants(me)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap()
        left = _live_descendants(me)
    if not left:
        return []
    killed = [_describe(pid) for pid in left]
    for pid in left:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            log.debug(
                "killing %d: %s", pid, f.read().replace(b"\0", b" ")[:300].decode(errors="replace")
            )
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while _live_descendants(me) and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap()
    return killed


def is_connected() -> bool:
    return bool(ray.is_initialized())


class RayShardGauges:
    """``ShardGauges`` in Ray's own metrics (``ray.util.metrics``), beside the operator's /metrics.

    Every node exports them on its metrics port (``metrics-export-port``, 8080 on KubeRay:
    what the dashboard's Metrics view and KubeRay's Prometheus setup read) as
    ``ray_krmsyncer_*{syncer, shard, host}``. Ray cannot drop a series, so a stopped shard's
    gauges are set to 0.
    """

    FIELDS = (
        ("objects", "krmsyncer_objects", "Source objects tracked by the shard."),
        ("pending", "krmsyncer_queue_depth", "Keys waiting in the shard's queue."),
        ("lag_seconds", "krmsyncer_lag_seconds", "Age of the oldest pending change."),
        ("errors", "krmsyncer_errors", "Objects currently failing to sync."),
    )

    def __init__(self, host: str) -> None:
        from ray.util.metrics import Gauge

        self.host = host
        keys = ("syncer", "shard", "host")
        self._gauges = [
            (attr, Gauge(name, description=text, tag_keys=keys)) for attr, name, text in self.FIELDS
        ]

    def record(self, health: Sequence[ShardHealth], syncers: dict[str, str]) -> None:
        for h in health:
            tags = {"syncer": syncers.get(h.shard_id, ""), "shard": h.shard_id, "host": self.host}
            for attr, gauge in self._gauges:
                gauge.set(float(getattr(h, attr)), tags=tags)

    def clear(self, shard_id: str, syncer_key: str) -> None:
        tags = {"syncer": syncer_key, "shard": shard_id, "host": self.host}
        for _attr, gauge in self._gauges:
            gauge.set(0.0, tags=tags)


@ray.remote
class ShardHostActor:
    """One process running one shard (or several, when packed)."""

    def __init__(
        self,
        name: str,
        syncer_key: str,
        shard_factory: Any = None,
        client_factory: Any = None,
        planned: tuple[str, ...] = (),
    ) -> None:
        logging.basicConfig(level=logging.INFO)
        label = HostLabel(name, tuple(planned))
        with warnings.catch_warnings():  # Ray 2.60 warns from inside its own property
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        # Ray reads the repr once, after __init__ (a restart runs __init__ again, same arguments).
        self._repr = describe_host(label, restarted=restarted)
        self.core = HostCore(
            name,
            syncer_key,
            shard_factory=shard_factory,
            client_factory=client_factory,
            label=label,
            gauges=RayShardGauges(name),
        )

    def __repr__(self) -> str:
        return self._repr

    async def start_shard(self, desired: DesiredShard) -> bool:
        return await self.core.start_shard(desired)

    async def stop_shard(self, shard_id: str) -> bool:
        return await self.core.stop_shard(shard_id)

    async def stop_all(self) -> int:
        return await self.core.stop_all()

    async def report(self) -> HostReport:
        return self.core.report()

    async def pid(self) -> int:
        return os.getpid()

    async def node_id(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


class RayHostDriver:
    """``HostDriver`` over named, detached Ray actors in the ``krmsyncer`` namespace."""

    def __init__(
        self, settings: ActorSettings, *, shard_factory: Any = None, client_factory: Any = None
    ) -> None:
        self.settings = settings
        self.shard_factory = shard_factory
        self.client_factory = client_factory
        self._handles: dict[str, Any] = {}

    async def list_hosts(self) -> list[str]:
        named = ray.util.list_named_actors(all_namespaces=True)
        return sorted(
            a["name"]
            for a in named
            if a.get("namespace") == RAY_NAMESPACE and is_host_name(a["name"])
        )

    def _lookup(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            try:
                handle = ray.get_actor(name, namespace=RAY_NAMESPACE)
            except ValueError as exc:
                raise HostGone(name) from exc
            self._handles[name] = handle
        return handle

    async def report(self, name: str) -> HostReport:
        handle = self._lookup(name)
        try:
            report: HostReport = await handle.report.remote()
        except ActorDiedError as exc:
            self._handles.pop(name, None)
            raise HostGone(name) from exc
        return report

    def _create(self, name: str, syncer_key: str, planned: tuple[str, ...]) -> Any:
        s = self.settings
        handle = ShardHostActor.options(  # type: ignore[attr-defined]
            name=name,
            namespace=RAY_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=s.max_restarts,
            max_task_retries=s.max_task_retries,
            num_cpus=s.host_num_cpus,
            scheduling_strategy="SPREAD",
            max_concurrency=1000,
        ).remote(name, syncer_key, self.shard_factory, self.client_factory, planned)
        self._handles[name] = handle
        return handle

    async def start(
        self, name: str, desired: DesiredShard, planned: tuple[str, ...] = ()
    ) -> None:
        handle = self._handles.get(name)
        if handle is None:
            try:
                handle = self._lookup(name)
            except HostGone:
                handle = self._create(name, desired.spec.syncer_key, planned or (desired.shard_id,))
        await handle.start_shard.remote(desired)

    async def stop(self, name: str, shard_id: str) -> None:
        try:
            handle = self._lookup(name)
            await handle.stop_shard.remote(shard_id)
        except (HostGone, RayActorError):
            pass

    async def remove(self, name: str) -> None:
        try:
            handle = self._lookup(name)
        except HostGone:
            return
        try:
            await asyncio.wait_for(handle.stop_all.remote(), timeout=self.settings.call_timeout_s)
        except Exception as exc:  # dead or stuck: killing it is what we want anyway
            log.warning("host %s did not stop cleanly: %s", name, type(exc).__name__)
        ray.kill(handle, no_restart=True)
        self._handles.pop(name, None)


@ray.remote
class SupervisorActor:
    """Detached and named: the operator re-attaches to it; it re-attaches to its hosts."""

    def __init__(
        self, settings: ActorSettings, shard_factory: Any = None, client_factory: Any = None
    ) -> None:
        logging.basicConfig(level=logging.INFO)
        self.core = SupervisorCore(
            RayHostDriver(settings, shard_factory=shard_factory, client_factory=client_factory),
            shards_per_host=settings.shards_per_host,
            call_timeout_s=settings.call_timeout_s,
        )
        self.settings = settings
        self._loop_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        n = self.settings.shards_per_host
        packing = (
            f"automatic packing (own host up to {AUTO_PACK_THRESHOLD} shards, then "
            f"{AUTO_PACK_SIZE} per host)"
            if n == AUTOMATIC
            else "one host per shard" if n == 1 else f"up to {n} shards per host"
        )
        return f"ray-syncer supervisor · {packing} · pass every {self.settings.reconcile_interval_s:g}s"

    def _ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        # Restarts failed or vanished shards even when the operator is away.
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            try:
                await self.core.reconcile()
            except Exception:
                log.exception("supervisor pass failed")

    async def apply(
        self, desired: Mapping[str, DesiredShard], shards_per_host: int | None = None
    ) -> SupervisorReport:
        self._ensure_loop()
        if shards_per_host is not None:
            self.core.shards_per_host = shards_per_host
        return await self.core.apply(desired)

    async def collect(self) -> SupervisorReport:
        self._ensure_loop()
        _views, report = await self.core.observe()
        return report

    async def shutdown(self) -> int:
        if self._loop_task is not None:
            self._loop_task.cancel()
        return await self.core.shutdown()

    async def pid(self) -> int:
        return os.getpid()

    async def node_id(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


class RayBackend:
    """The operator's handle on the supervisor actor (get-or-create; re-attach after restarts)."""

    def __init__(
        self,
        settings: ActorSettings | None = None,
        *,
        shard_factory: Any = None,
        client_factory: Any = None,
    ) -> None:
        self.settings = settings or ActorSettings()
        self.shard_factory = shard_factory
        self.client_factory = client_factory
        self._handle: Any = None
        # What the probe in shutdown() found (a stop does not wait on an unreachable Ray twice).
        self.probed = False
        self.ray_problem: str | None = None

    def _supervisor(self) -> Any:
        if self._handle is None:
            where = self.settings.supervisor_resource
            self._handle = SupervisorActor.options(  # type: ignore[attr-defined]
                name=SUPERVISOR_NAME,
                namespace=RAY_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                max_restarts=-1,
                max_task_retries=-1,
                num_cpus=self.settings.supervisor_num_cpus,
                resources={where: 0.001} if where else None,
                max_concurrency=1000,
            ).remote(self.settings, self.shard_factory, self.client_factory)
        return self._handle

    async def apply(self, desired: Mapping[str, DesiredShard]) -> SupervisorReport:
        try:
            report: SupervisorReport = await self._supervisor().apply.remote(
                dict(desired), self.settings.shards_per_host
            )
        except ActorDiedError:
            self._handle = None  # killed for good: the next call re-creates it by name
            raise
        return report

    async def shutdown(self) -> int:
        """Stop all shards, remove hosts and the supervisor; destination data stays.

        Ray is probed first (at most about ``PROBE_TIMEOUT_S``): a local Ray that
        is already down took its shards with it (returns 0); a Ray that does not
        answer raises ``RayUnavailable`` instead of hanging.
        """
        problem = await _off_loop(unavailable)
        self.probed, self.ray_problem = True, problem
        if problem is not None:
            if local_ray_down():
                log.info("%s: its shards stopped with it", problem)
                return 0
            raise RayUnavailable(problem)
        handle = self._supervisor()
        try:
            count: int = await handle.shutdown.remote()
        finally:
            ray.kill(handle, no_restart=True)
            self._handle = None
        return count


# -- helpers for tests and tools (kept here because they touch Ray) --


def named_actors() -> list[str]:
    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a.get("namespace") == RAY_NAMESPACE
    )


def actor_pid(name: str) -> int:
    handle = ray.get_actor(name, namespace=RAY_NAMESPACE)
    pid: int = ray.get(handle.pid.remote(), timeout=60)
    return pid


def actor_node(name: str, timeout: float = 60) -> str:
    """The id of the Ray node a named actor (supervisor or host) runs on."""
    handle = ray.get_actor(name, namespace=RAY_NAMESPACE)
    node: str = ray.get(handle.node_id.remote(), timeout=timeout)
    return node


def kill_actor(name: str, *, restart: bool) -> None:
    """Kill a named actor (chaos tests): with ``restart`` Ray brings it back under the same name."""
    ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=not restart)


def kill_all() -> None:
    """Remove every actor in the namespace (test teardown)."""
    for name in named_actors():
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE), no_restart=True)


def session_log_dir() -> str:
    """The log directory of the connected Ray session (tests scan it for secrets)."""
    from ray._private.worker import global_worker

    node = global_worker.node
    if node is None:
        raise RuntimeError("not connected to Ray")
    return str(node.get_logs_dir_path())


# -- a multi-node Ray on one machine (tests and benchmarks) --


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A Ray cluster of several nodes on this machine (``ray.cluster_utils.Cluster``).

    Each node is its own raylet (with its agents), so removing one is losing a
    node: its actors die and Ray restarts them elsewhere. The head has
    ``head_cpus`` CPUs (0, like the deployment's head: shard hosts go to
    workers). Private: its own ``temp_dir`` and free ports, and the address is
    recorded there only (Ray would record it in its default temp dir, where any
    other ``ray.init()`` on this machine would find it and join).
    """

    def __init__(
        self,
        temp_dir: str,
        *,
        head_cpus: float = 0,
        dashboard: bool = False,
        object_store_mb: int = 80,
        system_config: dict[str, Any] | None = None,
    ) -> None:
        import ray._private.utils as ray_utils
        from ray.cluster_utils import Cluster

        self.temp_dir = temp_dir
        self._store = object_store_mb * 1024 * 1024
        self.dashboard_port = _free_port() if dashboard else None
        real = ray_utils.write_ray_address

        def here_only(ray_address: str, temp_dir: str | None = None) -> Any:
            return real(ray_address, self.temp_dir)

        ray_utils.write_ray_address = here_only
        try:
            self._cluster = Cluster(
                initialize_head=True,
                shutdown_at_exit=True,
                head_node_args=dict(
                    num_cpus=head_cpus,
                    temp_dir=temp_dir,
                    include_dashboard=dashboard,
                    dashboard_host="127.0.0.1",
                    dashboard_port=self.dashboard_port,
                    **self._ports(),
                    _system_config=system_config or {},
                ),
            )
        finally:
            ray_utils.write_ray_address = real
        self._nodes: dict[str, Any] = {}  # worker node id -> ray._private.node.Node

    def _ports(self) -> dict[str, Any]:
        return dict(
            object_store_memory=self._store,
            dashboard_agent_listen_port=_free_port(),
            metrics_export_port=_free_port(),
        )

    @property
    def address(self) -> str:
        return str(self._cluster.address)

    @property
    def head_id(self) -> str:
        head: Any = self._cluster.head_node
        return str(head.node_id)

    @property
    def dashboard_url(self) -> str | None:
        return f"http://127.0.0.1:{self.dashboard_port}" if self.dashboard_port else None

    def add_worker(self, num_cpus: float = 1, resources: dict[str, float] | None = None) -> str:
        """Start a worker node; returns its node id once the GCS knows it."""
        node = self._cluster.add_node(num_cpus=num_cpus, resources=resources or {}, **self._ports())
        self._nodes[node.node_id] = node
        return str(node.node_id)

    def remove_worker(self, node_id: str, *, graceful: bool = False) -> None:
        """Lose a worker node: all its processes are killed (SIGKILL unless ``graceful``)."""
        self._cluster.remove_node(self._nodes.pop(node_id), allow_graceful=graceful)

    def workers(self) -> list[str]:
        return sorted(self._nodes)

    def alive(self) -> set[str]:
        """Node ids the GCS reports alive (a killed node stays "alive" until its heartbeats stop)."""
        return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}

    def metrics_urls(self) -> dict[str, str]:
        """Node id -> its Prometheus endpoint (Ray's metrics export, ``ray_*`` series)."""
        head: Any = self._cluster.head_node
        nodes = [head, *self._nodes.values()]
        return {
            str(n.node_id): f"http://127.0.0.1:{n.metrics_export_port}/metrics" for n in nodes
        }

    def shutdown(self) -> None:
        self._cluster.shutdown()
