"""Every Ray call in the project: connecting, the supervisor actor, shard host actors.

Why it exists: DESIGN §5 keeps Ray a thin layer over plain asyncio, in one
module (a test enforces that nothing else imports ray). The logic these actors
run lives elsewhere and is tested without Ray:

* ``SupervisorActor`` (detached, named ``supervisor`` in Ray namespace
  ``krmsyncer``) wraps ``operator.executor.SupervisorCore``; its driver
  (``RayHostDriver``) finds hosts by name, so after a restart it re-attaches to
  the live ones and never duplicates a shard.
* ``ShardHostActor`` (detached, named after its shard, or
  ``host/<ns>/<syncer>/<n>`` when packed) wraps ``operator.host.HostCore``.
* ``RayBackend`` is what the operator process holds: it gets-or-creates the
  supervisor and forwards desired shards to it, returning health and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, RayActorError

from ray_syncer.operator.executor import HostGone, SupervisorCore, SupervisorReport
from ray_syncer.operator.host import HostCore, HostReport
from ray_syncer.operator.supervisor import SUPERVISOR_NAME, DesiredShard, is_host_name

log = logging.getLogger(__name__)

RAY_NAMESPACE = "krmsyncer"


@dataclass(frozen=True)
class ActorSettings:
    """Resource and restart settings for the actors (IO-bound: tiny CPU)."""

    host_num_cpus: float = 0.05
    supervisor_num_cpus: float = 0.0
    max_restarts: int = -1
    max_task_retries: int = 3
    shards_per_host: int = 1
    reconcile_interval_s: float = 2.0
    call_timeout_s: float = 15.0


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    include_dashboard: bool | None = None,
    log_to_driver: bool = True,
    object_store_memory: int | None = None,
) -> bool:
    """Connect to Ray (``address``, else RAY_ADDRESS, else start a local Ray). True if started locally."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
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
    ray.init(**kwargs)
    return True


def disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


def is_connected() -> bool:
    return bool(ray.is_initialized())


@ray.remote
class ShardHostActor:
    """One process running one shard (or several, when packed)."""

    def __init__(
        self, name: str, syncer_key: str, shard_factory: Any = None, client_factory: Any = None
    ) -> None:
        logging.basicConfig(level=logging.INFO)
        self.core = HostCore(
            name, syncer_key, shard_factory=shard_factory, client_factory=client_factory
        )

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

    def _create(self, name: str, syncer_key: str) -> Any:
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
        ).remote(name, syncer_key, self.shard_factory, self.client_factory)
        self._handles[name] = handle
        return handle

    async def start(self, name: str, desired: DesiredShard) -> None:
        handle = self._handles.get(name)
        if handle is None:
            try:
                handle = self._lookup(name)
            except HostGone:
                handle = self._create(name, desired.spec.syncer_key)
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

    def _supervisor(self) -> Any:
        if self._handle is None:
            self._handle = SupervisorActor.options(  # type: ignore[attr-defined]
                name=SUPERVISOR_NAME,
                namespace=RAY_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                max_restarts=-1,
                max_task_retries=-1,
                num_cpus=self.settings.supervisor_num_cpus,
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
        """Stop all shards, remove hosts and the supervisor; destination data stays."""
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
