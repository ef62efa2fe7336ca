"""The Ray actors: the supervisor and the shard hosts, and the operator's handle on them.

Why it exists: docs/design.md §5 keeps Ray a thin layer over plain asyncio. The
logic these actors run lives beside them in ``fleet/`` and is tested without
Ray; this module only wraps it:

* ``SupervisorActor`` (detached, named ``supervisor`` in Ray namespace
  ``krmsyncer``) wraps ``fleet.supervisor.SupervisorCore``; its driver
  (``RayHostDriver``) finds hosts by name, so after a restart it re-attaches to
  the live ones and never duplicates a shard.
* ``ShardHostActor`` (detached, named after its shard, or ``host/<n>`` when
  packed) wraps ``fleet.host.HostCore``. Its repr (the dashboard's Repr
  column) names its syncer, shards and how it started; ``RayShardGauges``
  records per-shard gauges in Ray's own metrics.
* ``RayBackend`` is the operator's ``Fleet``: it gets-or-creates the supervisor
  (on the head node, or a node with ``--supervisor-resource``) and forwards
  desired shards to it, returning health and metrics. Its ``shutdown`` probes
  Ray first (``fleet.local``), so a stop never hangs on a Ray that is gone.

Only public Ray API is used here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, RayActorError

from ray_syncer.engine.spec import ShardHealth
from ray_syncer.fleet import local
from ray_syncer.fleet.host import HostCore, HostLabel, HostReport, describe_host
from ray_syncer.fleet.local import RAY_NAMESPACE
from ray_syncer.fleet.plan import (
    AUTO_PACK_SIZE,
    AUTO_PACK_THRESHOLD,
    AUTOMATIC,
    SUPERVISOR_NAME,
    DesiredShard,
    is_host_name,
)
from ray_syncer.fleet.supervisor import HostGone, SupervisorCore, SupervisorReport

log = logging.getLogger(__name__)

# A resource only the head node has (Ray adds it): the supervisor's default place, beside the
# operator. Losing a worker node never moves it.
HEAD_RESOURCE = "node:__internal_head__"


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
        self._handle_lock = threading.Lock()
        # What the probe in shutdown() found (a stop does not wait on an unreachable Ray twice).
        self.probed = False
        self.ray_problem: str | None = None

    async def _supervisor_handle(self) -> Any:
        # Getting (or creating) a named actor is a blocking call to Ray's GCS, which can hang
        # for many seconds on a Ray that is going down: never on the event loop, where it would
        # hold up the operator's stop.
        return await local.off_loop(self._supervisor)

    def _supervisor(self) -> Any:
        with self._handle_lock:
            return self._get_or_create()

    def _get_or_create(self) -> Any:
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
            handle = await self._supervisor_handle()
            report: SupervisorReport = await handle.apply.remote(
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
        problem = await local.probe()
        self.probed, self.ray_problem = True, problem
        if problem is not None:
            if local.local_ray_down():
                log.info("%s: its shards stopped with it", problem)
                return 0
            raise local.RayUnavailable(problem)
        handle = await self._supervisor_handle()
        try:
            count: int = await handle.shutdown.remote()
        finally:
            await local.off_loop(lambda: ray.kill(handle, no_restart=True))
            self._handle = None
        return count
