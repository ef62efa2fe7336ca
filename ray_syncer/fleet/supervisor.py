"""The supervisor's loop body: observe hosts, plan, execute actions in order.

Why it exists: the supervisor actor (``fleet.actors.SupervisorActor``) must
re-attach to live hosts by name after a restart, restart failed shards and
never duplicate one. This module is that loop in plain asyncio, written
against a small ``HostDriver`` protocol; ``fleet.actors`` implements the
driver with named Ray actors, ``LocalDriver`` below runs hosts in this process
(the demo, tests). Decisions come from ``fleet.plan.plan``; hosts are run by
``fleet.host.HostCore``. ``Fleet`` is what the operator holds of all this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ray_syncer.engine.spec import ShardHealth
from ray_syncer.fleet.host import HostLabel, HostReport
from ray_syncer.fleet.plan import (
    AUTOMATIC,
    DesiredShard,
    HostView,
    RemoveHost,
    StartShard,
    StopShard,
    plan,
)

log = logging.getLogger(__name__)


class HostGone(Exception):
    """The host actor no longer exists (its name is free)."""


class Fleet(Protocol):
    """What the operator holds of the fleet: the desired shards in, a report out, and a stop.

    ``SupervisorCore`` is one, in this process over any ``HostDriver``;
    ``fleet.actors.RayBackend`` is the Ray one (the supervisor actor). The
    controller (``operator/``) depends on the fleet through this alone.
    """

    async def apply(self, desired: Mapping[str, DesiredShard]) -> SupervisorReport: ...
    async def shutdown(self) -> int: ...


class HostDriver(Protocol):
    async def list_hosts(self) -> list[str]: ...
    async def report(self, name: str) -> HostReport: ...
    # ``planned``: every shard this pass starts on ``name``; a host created now is labelled so.
    async def start(
        self, name: str, desired: DesiredShard, planned: tuple[str, ...] = ()
    ) -> None: ...
    async def stop(self, name: str, shard_id: str) -> None: ...
    async def remove(self, name: str) -> None: ...


@dataclass
class SupervisorReport:
    """What the operator learns from one supervisor pass."""

    health: dict[str, ShardHealth] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    # Shards of hosts that did not answer (lost with their node, restarting): Ray brings the
    # host back, then the supervisor starts them again.
    lost: list[str] = field(default_factory=list)
    hosts: dict[str, list[str]] = field(default_factory=dict)  # host -> shard ids
    revisions: dict[str, str] = field(default_factory=dict)  # shard id -> running revision
    unreachable: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # host -> its metrics snapshot
    actions: list[str] = field(default_factory=list)  # what this pass did
    desired_known: bool = False


class SupervisorCore:
    """Holds the desired shards and converges the hosts to them."""

    def __init__(
        self,
        driver: HostDriver,
        *,
        shards_per_host: int = AUTOMATIC,
        call_timeout_s: float = 15.0,
        max_parallel: int = 64,
    ) -> None:
        self.driver = driver
        self.shards_per_host = shards_per_host
        self.call_timeout_s = call_timeout_s
        self.desired: dict[str, DesiredShard] | None = None
        self._last_views: dict[str, HostView] = {}
        self._lock = asyncio.Lock()
        self._sem = asyncio.Semaphore(max_parallel)
        self.actions_total = 0

    async def apply(self, desired: Mapping[str, DesiredShard]) -> SupervisorReport:
        self.desired = dict(desired)
        return await self.reconcile()

    async def _call(self, coro: Any) -> Any:
        async with self._sem:
            return await asyncio.wait_for(coro, timeout=self.call_timeout_s)

    async def observe(self) -> tuple[dict[str, HostView], SupervisorReport]:
        names = await self.driver.list_hosts()
        results = await asyncio.gather(
            *(self._call(self.driver.report(n)) for n in names), return_exceptions=True
        )
        views: dict[str, HostView] = {}
        report = SupervisorReport(desired_known=self.desired is not None)
        for name, res in zip(names, results, strict=True):
            if isinstance(res, HostGone):
                continue
            if isinstance(res, BaseException):
                # Restarting or slow: keep what we last knew so nothing starts twice.
                last = self._last_views.get(name)
                views[name] = HostView(
                    name=name,
                    syncer_key=last.syncer_key if last else "",
                    shards=last.shards if last else (),
                    reachable=False,
                    planned=last.planned if last else (),
                )
                report.unreachable.append(name)
                report.lost.extend(s.shard_id for s in views[name].shards)
                log.warning("host %s did not report: %s", name, type(res).__name__)
                continue
            views[name] = HostView(
                name=name, syncer_key=res.syncer_key, shards=tuple(res.shards), planned=res.planned
            )
            report.hosts[name] = [s.shard_id for s in res.shards]
            for s in res.shards:
                report.revisions[s.shard_id] = s.revision
                if s.failed:
                    report.failed.append(s.shard_id)
            for h in res.health:
                report.health[h.shard_id] = h
            if res.metrics is not None:
                report.metrics[name] = res.metrics
        self._last_views = views
        return views, report

    async def reconcile(self) -> SupervisorReport:
        async with self._lock:
            views, report = await self.observe()
            actions = plan(self.desired, views, shards_per_host=self.shards_per_host)
            if not actions:
                return report
            stops = [a for a in actions if isinstance(a, StopShard)]
            removals = [a for a in actions if isinstance(a, RemoveHost)]
            starts = [a for a in actions if isinstance(a, StartShard)]
            await self._run_all([self.driver.stop(a.host, a.shard_id) for a in stops], stops)
            await self._run_all([self.driver.remove(a.host) for a in removals], removals)
            planned: dict[str, list[str]] = {}
            for start in starts:
                planned.setdefault(start.host, []).append(start.shard.shard_id)
            await self._run_all(
                [self.driver.start(s.host, s.shard, tuple(planned[s.host])) for s in starts],
                starts,
            )
            for a in actions:
                report.actions.append(_describe(a))
            self.actions_total += len(actions)
            log.info("supervisor pass: %d action(s)", len(actions))
            return report

    async def _run_all(self, coros: list[Any], actions: list[Any]) -> None:
        results = await asyncio.gather(*(self._call(c) for c in coros), return_exceptions=True)
        for action, res in zip(actions, results, strict=True):
            if isinstance(res, BaseException):
                # The next pass observes the real state and plans again.
                log.warning("action failed: %s: %s", _describe(action), type(res).__name__)

    async def shutdown(self) -> int:
        """Stop every shard and remove every host (destination data stays)."""
        async with self._lock:
            self.desired = {}
            names = await self.driver.list_hosts()
            await asyncio.gather(
                *(self._call(self.driver.remove(n)) for n in names), return_exceptions=True
            )
            self._last_views = {}
            return len(names)


def _describe(action: Any) -> str:
    if isinstance(action, StopShard):
        return f"stop {action.shard_id} on {action.host} ({action.reason})"
    if isinstance(action, StartShard):
        return f"start {action.shard.shard_id} on {action.host} ({action.reason})"
    return f"remove host {action.host}"


class LocalDriver:
    """Hosts as in-process ``HostCore`` objects: the supervisor without Ray (tests, dry runs)."""

    def __init__(self, *, shard_factory: Any = None, client_factory: Any = None) -> None:
        from ray_syncer.fleet.host import HostCore

        self._new = lambda name, key, planned: HostCore(
            name,
            key,
            shard_factory=shard_factory,
            client_factory=client_factory,
            label=HostLabel(name, planned),
        )
        self.hosts: dict[str, Any] = {}

    async def list_hosts(self) -> list[str]:
        return sorted(self.hosts)

    async def report(self, name: str) -> HostReport:
        host = self.hosts.get(name)
        if host is None:
            raise HostGone(name)
        report: HostReport = host.report()
        return report

    async def start(
        self, name: str, desired: DesiredShard, planned: tuple[str, ...] = ()
    ) -> None:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = self._new(name, desired.spec.syncer_key, planned)
        await host.start_shard(desired)

    async def stop(self, name: str, shard_id: str) -> None:
        host = self.hosts.get(name)
        if host is not None:
            await host.stop_shard(shard_id)

    async def remove(self, name: str) -> None:
        host = self.hosts.pop(name, None)
        if host is not None:
            await host.stop_all()
