"""A shard host: runs one or more engine shards in one process, shares their clients.

Why it exists: a Ray actor is a process (≈47 MB), so large fleets pack many
shards into one host. This is the plain-asyncio core of a host; the Ray actor
in ``fleet.actors`` is a thin wrapper around it, and tests drive it
directly with fake shards. It meets its neighbours like this:

* the supervisor (``fleet.supervisor``) calls ``start_shard`` / ``stop_shard``
  and reads ``report()``, which says which shards run, at which revision,
  whether their task died (``failed``), their ``ShardHealth`` and this
  process's metrics snapshot;
* the engine's ``Shard`` (interface 6) is built by ``shard_factory``; clients
  are built from picklable ``ClusterConfig`` values and shared: one client per
  cluster config in this process, so a syncer's shards share one destination
  connection pool and its rate limit;
* split-brain fencing reaches the engine here: for a ``DesiredShard`` that
  carries a ``FenceIdentity`` the host builds the shard's write gate
  (``engine.gate.CachedGate`` over ``fencing.write_gate_check`` on the shared
  destination client), one per syncer identity and destination in this
  process, shared by that syncer's shards so the check costs one KRMSyncer
  list per syncer per gate TTL, not one per shard.
* the Ray actor shows ``describe_host(label)`` as its repr (the dashboard's
  Actors tab) and may pass ``ShardGauges`` that record per-shard gauges in
  Ray's own metrics on every report; both stay Ray-free here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ray_syncer.engine.spec import ShardHealth, ShardState
from ray_syncer.fleet.plan import DesiredShard, RunningShard

log = logging.getLogger(__name__)

# How long a stopping shard may take before its task is cancelled.
STOP_DEADLINE_S = 10.0


class ShardLike(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> ShardHealth: ...


class ClientLike(Protocol):
    async def close(self) -> None: ...


class ShardGauges(Protocol):
    """Per-shard gauges kept somewhere else too (Ray's metrics: ``fleet.actors``)."""

    def record(self, health: Sequence[ShardHealth], syncers: dict[str, str]) -> None: ...
    def clear(self, shard_id: str, syncer_key: str) -> None: ...


ShardFactory = Callable[[DesiredShard, Any, Any], ShardLike]
ClientFactory = Callable[[Any], ClientLike]


@dataclass(frozen=True)
class HostLabel:
    """What a host was created for: its name and the shards planned for it in that pass.

    Ray reads an actor's repr once, right after ``__init__`` (again after a
    restart, with the same arguments), so the dashboard's Repr column can only
    say this, not live state; the supervisor gives a restarted host these same
    shards back, which keeps it true.
    """

    name: str
    shards: tuple[str, ...] = ()


def describe_host(label: HostLabel, *, restarted: bool = False) -> str:
    """One line for the Ray dashboard: the syncer(s), the shards, and how the host started.

    ``default/app · 1 shard: core/ConfigMap/web · started`` (a dedicated host, named
    like its shard) or ``host/3 · bench/fleet · 50 shards: core/ConfigMap/shard-0150 …
    core/ConfigMap/shard-0199 · restarted by Ray``.
    """
    shards = sorted(label.shards)
    syncers = sorted({"/".join(s.split("/", 2)[:2]) for s in shards})
    parts = [] if shards == [label.name] else [label.name]
    if len(syncers) == 1:
        parts.append(syncers[0])
        prefix = syncers[0] + "/"
        shards = [s.removeprefix(prefix) for s in shards]
    elif syncers:
        more = f" +{len(syncers) - 3}" if len(syncers) > 3 else ""
        parts.append(f"{len(syncers)} syncers: {', '.join(syncers[:3])}{more}")
    if len(shards) == 1:
        parts.append(f"1 shard: {shards[0]}")
    elif len(shards) == 2:
        parts.append(f"2 shards: {shards[0]}, {shards[1]}")
    elif shards:
        parts.append(f"{len(shards)} shards: {shards[0]} … {shards[-1]}")
    else:
        parts.append("no shards planned")
    parts.append("restarted by Ray" if restarted else "started")
    return " · ".join(parts)


@dataclass
class HostReport:
    """What a host says about itself; crosses the Ray boundary as plain data."""

    name: str
    syncer_key: str
    incarnation: str
    pid: int
    shards: list[RunningShard] = field(default_factory=list)
    health: list[ShardHealth] = field(default_factory=list)
    metrics: Any = None  # ray_syncer.metrics.snapshot() of this process, when available
    planned: tuple[str, ...] = ()  # HostLabel.shards: what it was created for


def default_client_factory(config: Any) -> ClientLike:
    from ray_syncer.kube.client import KubeClient

    return KubeClient(config)


def default_shard_factory(
    desired: DesiredShard, source: Any, dest: Any, *, write_gate: Any = None
) -> ShardLike:
    from ray_syncer.engine.shard import Shard
    from ray_syncer.metrics import ShardMetrics

    metrics = ShardMetrics(desired.spec.syncer_key, desired.shard_id)
    return Shard(
        desired.spec, source=source, dest=dest, options=desired.options, metrics=metrics,
        write_gate=write_gate,
    )


def _metrics_snapshot() -> Any:
    from ray_syncer import metrics

    return metrics.snapshot()


@dataclass
class _Running:
    desired: DesiredShard
    shard: ShardLike
    task: asyncio.Task[None]
    stopping: bool = False
    last_error: str = ""


class HostCore:
    """Runs shards; idempotent start/stop; reports health and death of shard tasks."""

    def __init__(
        self,
        name: str,
        syncer_key: str,
        *,
        shard_factory: ShardFactory | None = None,
        client_factory: ClientFactory | None = None,
        label: HostLabel | None = None,
        gauges: ShardGauges | None = None,
    ) -> None:
        self.name = name
        self.syncer_key = syncer_key
        self.label = label or HostLabel(name)
        self._gauges = gauges
        self.incarnation = uuid.uuid4().hex[:12]
        self._shard_factory = shard_factory or self._default_shard
        self._client_factory = client_factory or default_client_factory
        self._shards: dict[str, _Running] = {}
        self._clients: dict[Any, tuple[ClientLike, int]] = {}
        # Write gates per (fence identity, destination config), refcounted by shard id.
        self._gates: dict[Any, tuple[Any, set[str]]] = {}
        self._lock = asyncio.Lock()

    # -- clients, shared per cluster config within this process --
    def _acquire(self, config: Any) -> Any:
        client, refs = self._clients.get(config, (None, 0))
        if client is None:
            client = self._client_factory(config)
        self._clients[config] = (client, refs + 1)
        return client

    async def _release(self, config: Any) -> None:
        client, refs = self._clients.get(config, (None, 0))
        if client is None:
            return
        if refs <= 1:
            del self._clients[config]
            await client.close()
        else:
            self._clients[config] = (client, refs - 1)

    # -- write gates (split-brain fencing before every write), shared per syncer --
    def _default_shard(self, desired: DesiredShard, source: Any, dest: Any) -> ShardLike:
        gate = None
        if desired.fence is not None:
            from ray_syncer.engine.gate import CachedGate
            from ray_syncer.fencing import GATE_TTL_S, write_gate_check

            key = (desired.fence, desired.dest)
            entry = self._gates.get(key)
            if entry is None:
                check = write_gate_check(dest, desired.fence)
                entry = (CachedGate(check, ttl_s=GATE_TTL_S, name="split-brain check"), set())
                self._gates[key] = entry
            entry[1].add(desired.shard_id)
            gate = entry[0]
        return default_shard_factory(desired, source, dest, write_gate=gate)

    async def _release_gate(self, shard_id: str) -> None:
        for key, (gate, users) in list(self._gates.items()):
            users.discard(shard_id)
            if not users:
                del self._gates[key]
                await gate.close()

    # -- lifecycle --
    async def start_shard(self, desired: DesiredShard) -> bool:
        """Start (or restart at a new revision); returns False when it already ran as wanted."""
        async with self._lock:
            current = self._shards.get(desired.shard_id)
            if current is not None:
                if current.desired.revision == desired.revision and not current.task.done():
                    return False
                await self._stop_locked(desired.shard_id)
            source = self._acquire(desired.source)
            dest = self._acquire(desired.dest)
            try:
                shard = self._shard_factory(desired, source, dest)
            except Exception:
                await self._release_gate(desired.shard_id)
                await self._release(desired.source)
                await self._release(desired.dest)
                raise
            task = asyncio.get_running_loop().create_task(
                self._run(desired.shard_id, shard), name=f"shard:{desired.shard_id}"
            )
            self._shards[desired.shard_id] = _Running(desired=desired, shard=shard, task=task)
            log.info("shard started: %s (host %s)", desired.shard_id, self.name)
            return True

    async def _run(self, shard_id: str, shard: ShardLike) -> None:
        try:
            await shard.run()
        except asyncio.CancelledError:
            raise
        except (
            Exception
        ) as exc:  # the engine should never raise; if it does, report and get restarted
            entry = self._shards.get(shard_id)
            if entry is not None:
                entry.last_error = f"shard task crashed: {type(exc).__name__}: {exc}"[:300]
            log.exception("shard %s crashed", shard_id)

    async def stop_shard(self, shard_id: str) -> bool:
        async with self._lock:
            return await self._stop_locked(shard_id)

    async def _stop_locked(self, shard_id: str) -> bool:
        entry = self._shards.get(shard_id)
        if entry is None:
            return False
        entry.stopping = True
        try:
            await asyncio.wait_for(entry.shard.stop(), timeout=STOP_DEADLINE_S)
        except Exception:
            log.warning("shard %s did not stop cleanly; cancelling", shard_id)
        if not entry.task.done():
            entry.task.cancel()
        await asyncio.gather(entry.task, return_exceptions=True)
        del self._shards[shard_id]
        await self._release_gate(shard_id)
        await self._release(entry.desired.source)
        await self._release(entry.desired.dest)
        try:
            from ray_syncer.metrics import ShardMetrics

            ShardMetrics(entry.desired.spec.syncer_key, shard_id).remove()
            if self._gauges is not None:
                self._gauges.clear(shard_id, entry.desired.spec.syncer_key)
        except Exception:  # metrics are best effort; a stopped shard must still stop
            pass
        log.info("shard stopped: %s (host %s)", shard_id, self.name)
        return True

    async def stop_all(self) -> int:
        async with self._lock:
            ids = list(self._shards)
            await asyncio.gather(*(self._stop_locked(i) for i in ids))
            return len(ids)

    def shard_ids(self) -> list[str]:
        return sorted(self._shards)

    def report(self) -> HostReport:
        shards: list[RunningShard] = []
        health: list[ShardHealth] = []
        for shard_id, entry in sorted(self._shards.items()):
            failed = entry.task.done() and not entry.stopping
            shards.append(
                RunningShard(
                    shard_id=shard_id,
                    syncer_key=entry.desired.spec.syncer_key,
                    revision=entry.desired.revision,
                    failed=failed,
                )
            )
            try:
                h = entry.shard.health()
            except Exception as exc:
                h = ShardHealth(
                    shard_id=shard_id, last_error=f"health failed: {type(exc).__name__}"
                )
            if failed:
                h.state = ShardState.STOPPED
                h.synced = False
                h.last_error = entry.last_error or "shard task ended unexpectedly"
            health.append(h)
        if self._gauges is not None:
            try:
                self._gauges.record(health, {s.shard_id: s.syncer_key for s in shards})
            except Exception as exc:  # best effort: a report must not fail on metrics
                log.debug("shard gauges not recorded: %s", type(exc).__name__)
        return HostReport(
            name=self.name,
            syncer_key=self.syncer_key,
            incarnation=self.incarnation,
            pid=os.getpid(),
            shards=shards,
            health=health,
            metrics=_metrics_snapshot(),
            planned=self.label.shards,
        )
