"""The operator loop: KRMSyncers and their Secrets in, desired shards and status out.

Why it exists: this is the controller. It watches KRMSyncer objects (all
namespaces or ``--namespace``), the Secrets they reference and CRDs (so glob
rules re-expand), and on every change (plus a periodic tick) it recomputes the
whole desired state, level-triggered:

1. validate each KRMSyncer (``api.parse.parse_krmsyncer``; invalid ->
   ``Ready=False InvalidSpec`` with the precise message, others unaffected);
2. read the Secret, load the kubeconfig safely (``kube.config``), refuse a
   destination that is the operator's own cluster, probe the remote;
3. expand rules on the source cluster and plan shards (``operator.planner``);
4. hand the desired shards to the backend (the supervisor actor, or an
   in-process ``SupervisorCore`` in tests) and receive shard health + metrics;
5. write ``status`` through the ``/status`` subresource only on change,
   rate-limited (``operator.status``), and emit Events on transitions.

Safety: a failure to *read* (Secret 5xx, discovery error) keeps the previous
shards running; shards are only stopped on a definite answer (syncer deleted or
suspended, Secret gone, spec invalid). Secret contents never leave this module
except as a ``ClusterConfig`` handed to shard hosts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ray_syncer import API_GROUP, API_VERSION, KIND, PLURAL
from ray_syncer.api.models import KRMSyncer
from ray_syncer.api.parse import SpecError, is_suspended_effectively, parse_krmsyncer
from ray_syncer.api.status import parse_rfc3339
from ray_syncer.engine.spec import ShardHealth, ShardSpec
from ray_syncer.fencing import (
    FenceCache,
    FenceDecision,
    FenceIdentity,
    check_identity,
    fence_identity,
)
from ray_syncer.fleet.plan import DesiredShard
from ray_syncer.fleet.supervisor import Fleet, SupervisorReport
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.config import ClusterConfig
from ray_syncer.metrics import set_recovery_points
from ray_syncer.operator.notify import Notifier
from ray_syncer.operator.planner import Tenancy, expand_rules, plan_syncer, revision
from ray_syncer.operator.remotes import SECRET_RES, Remote, Remotes, server_key
from ray_syncer.operator.status import (
    Problem,
    SyncerFacts,
    compute_status,
    should_write,
)

log = logging.getLogger(__name__)

KRMSYNCER_RES = ResourceInfo(
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    namespaced=True,
    has_status=True,
    verbs=frozenset({"get", "list", "watch", "patch", "update"}),
)
CRD_RES = ResourceInfo(
    "apiextensions.k8s.io",
    "v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    False,
    verbs=frozenset({"get", "list", "watch"}),
)


@dataclass
class Settings:
    """Operator flags that shape reconciliation (``ray-syncer run``)."""

    namespace: str | None = None
    allow_kubeconfig_exec: bool = False
    tenancy: Tenancy = field(default_factory=Tenancy)
    cluster_name: str = "in-cluster"
    tick_s: float = 5.0  # periodic full pass (also picks up shard health for status)
    discovery_ttl_s: float = 30.0  # glob re-expansion when no CRD event says so earlier
    probe_ttl_s: float = 15.0  # remote reachability re-check
    debounce_s: float = 0.2
    engine_options: Any = None
    watch_crds: bool = True
    status_min_interval_s: float = 2.0  # per syncer, between two status writes
    status_volatile_interval_s: float = 30.0  # refresh of lag/last-sync numbers alone


@dataclass
class _SyncerState:
    shards: dict[str, DesiredShard] = field(default_factory=dict)
    expansion: dict[int, list[ResourceInfo]] | None = None
    expansion_key: tuple[Any, ...] = ()
    expanded_at: float = 0.0
    last_write: float | None = None
    written: dict[str, Any] | None = None
    events: set[tuple[str, str]] = field(default_factory=set)
    # Takeovers already told in an Event: (shard, former owner) -> copies.
    took_over: dict[tuple[str, str], int] = field(default_factory=dict)


class Reconciler:
    """Drives the backend from KRMSyncer objects; writes status and Events."""

    def __init__(
        self,
        client: KubeClient,
        own_config: ClusterConfig,
        backend: Fleet,
        settings: Settings | None = None,
        *,
        client_factory: Callable[[ClusterConfig], Any] = KubeClient,
        clock: Callable[[], float] = time.time,
        on_report: Callable[[SupervisorReport], None] | None = None,
    ) -> None:
        self.client = client
        self.own_config = own_config
        self.backend = backend
        self.settings = settings or Settings()
        self.client_factory = client_factory
        self.clock = clock
        self.on_report = on_report
        self.syncers: dict[str, dict[str, Any]] = {}  # "ns/name" -> raw object
        self.state: dict[str, _SyncerState] = {}
        self.remotes = Remotes(client, client_factory=client_factory,
                               allow_exec=self.settings.allow_kubeconfig_exec,
                               probe_ttl_s=self.settings.probe_ttl_s)
        self.referenced_secrets: set[str] = set()
        self.notifier = Notifier(client, clock=clock)
        self.ready = False
        self.synced_once = False
        self.last_pass: float = 0.0
        self.last_report: SupervisorReport | None = None
        self.passes = 0
        # Per shard id: the last time it was known current (unix), and when it was first
        # desired (its recovery point counts from then until it reports one).
        self._current_at: dict[str, float] = {}
        self._desired_since: dict[str, float] = {}
        self._resumed: set[str] = set()  # syncers whose last recovery point was picked up
        self._trigger = asyncio.Event()
        # Split-brain decisions per syncer, re-checked every probe_ttl_s (ray_syncer.fencing).
        self.fences = FenceCache(ttl_s=self.settings.probe_ttl_s, clock=clock)

    def trigger(self) -> None:
        self._trigger.set()

    # ------------------------------------------------------------------ loops

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(
                self._informer(KRMSYNCER_RES, self.settings.namespace, self._on_syncer)
            ),
            asyncio.create_task(
                self._informer(SECRET_RES, self.settings.namespace, self._on_secret)
            ),
            asyncio.create_task(self._ticker()),
        ]
        if self.settings.watch_crds:
            tasks.append(asyncio.create_task(self._informer(CRD_RES, None, self._on_crd)))
        try:
            while not stop.is_set():
                waiter = asyncio.create_task(self._trigger.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop.is_set():
                    break
                await asyncio.sleep(self.settings.debounce_s)
                self._trigger.clear()
                if not self.synced_once:
                    continue
                try:
                    await self.reconcile_all()
                except Exception:
                    log.exception("reconcile pass failed")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.remotes.close()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_s)
            self.trigger()

    async def _informer(
        self,
        res: ResourceInfo,
        namespace: str | None,
        on_event: Callable[[str, dict[str, Any]], None],
    ) -> None:
        """List then watch, forever; relist on 410 or error (with backoff)."""
        backoff = 0.5
        while True:
            try:
                items, rv = await self.client.list_all(res, namespace=namespace)
                on_event("SYNC", {"items": items})
                backoff = 0.5
                while True:
                    stream = self.client.watch(
                        res, namespace=namespace, resource_version=rv, timeout_seconds=300
                    )
                    try:
                        async for ev in stream:
                            obj = ev.get("object") or {}
                            new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                            if new_rv:
                                rv = new_rv
                            if ev.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                                on_event(ev["type"], obj)
                    finally:
                        closer = getattr(stream, "aclose", None)
                        if closer is not None:
                            await closer()
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.not_found:
                    log.warning(
                        "%s: not served by the cluster (is its CRD installed?); retrying", res.kind
                    )
                elif not exc.gone:
                    log.warning("%s informer: %s %s", res.kind, exc.status, exc.reason)
            except TransportError as exc:
                log.warning("%s informer: %s", res.kind, exc)
            except Exception:
                log.exception("%s informer failed", res.kind)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"

    def _on_syncer(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "SYNC":
            self.syncers = {self._key(o): o for o in obj["items"]}
            self.synced_once = True
        elif kind == "DELETED":
            self.syncers.pop(self._key(obj), None)
        else:
            self.syncers[self._key(obj)] = obj
        self.trigger()

    def _on_secret(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "SYNC":
            self.remotes.secret_changed()
            self.trigger()
            return
        key = self._key(obj)
        self.remotes.secret_changed(key)
        if key in self.referenced_secrets:
            self.trigger()

    def _on_crd(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "SYNC":
            return
        # A CRD came or went: globs may expand differently now.
        self.client.invalidate_discovery()
        for st in self.state.values():
            st.expanded_at = 0.0
        self.trigger()

    # ------------------------------------------------------------------ one pass

    async def reconcile_all(self) -> SupervisorReport | None:
        now = self.clock()
        desired: dict[str, DesiredShard] = {}
        facts: dict[str, SyncerFacts] = {}
        parsed: dict[str, KRMSyncer | None] = {}
        referenced: set[str] = set()
        # A snapshot: informer callbacks may change self.syncers while this pass awaits.
        syncers = dict(sorted(self.syncers.items()))
        for key, raw in syncers.items():
            st = self.state.setdefault(key, _SyncerState())
            try:
                f, syncer = await self._syncer_facts(key, raw, st, now, referenced)
            except Exception as exc:
                # One syncer's unexpected failure must not stall the others. Its shards keep
                # running (no definite answer); only the type is told: text may carry secrets.
                log.error("%s: reconcile failed: %s", key, type(exc).__name__)
                generation = int((raw.get("metadata") or {}).get("generation") or 0)
                f, syncer = SyncerFacts(generation=generation), None
                f.refused = Problem(
                    "InternalError",
                    f"the operator failed on this KRMSyncer ({type(exc).__name__}); what it "
                    "already ran keeps running, and other KRMSyncers are unaffected",
                )
                f.expected_shards = list(st.shards)
            facts[key] = f
            parsed[key] = syncer
            desired.update(st.shards)
        self.referenced_secrets = referenced
        for key in list(self.state):
            if key not in syncers:
                del self.state[key]
                await self.remotes.drop(key)

        try:
            report = await self.backend.apply(desired)
        except Exception as exc:
            log.warning("supervisor unavailable: %s", type(exc).__name__)
            self.ready = False
            return None
        self.last_report = report
        self.ready = True
        self.last_pass = time.monotonic()
        # The report is as of now: an apply waits out hosts that do not answer (a lost node),
        # and a status stamped with the pass's start would be throttled as if written early.
        now = self.clock()
        self.passes += 1
        if self.on_report is not None:
            self.on_report(report)
        self._recovery_points(facts, parsed, report, now)
        for key, f in facts.items():
            # Crashed, or on a host that does not answer (its node was lost): being restarted.
            restarting = [*report.failed, *report.lost]
            f.failed_shards = [s for s in restarting if s in self.state[key].shards]
            await self._write_status(key, syncers[key], f, report.health, now)
        return report

    def _recovery_points(
        self, facts: Mapping[str, SyncerFacts], parsed: Mapping[str, KRMSyncer | None],
        report: SupervisorReport, now: float,
    ) -> None:
        """Every expected shard's recovery point into its syncer's facts, and the metrics.

        A shard that does not report (not running, its host lost) keeps its last known
        point, so its recovery point grows; one never current counts from when it was first
        desired."""
        points: dict[tuple[str, str], float] = {}
        targets: dict[str, float] = {}
        expected: set[str] = set()
        for key, f in facts.items():
            syncer = parsed.get(key)
            f.rpo_target_s = syncer.spec.rpo_target_seconds if syncer is not None else None
            if f.rpo_target_s is not None:
                targets[key] = f.rpo_target_s
            if f.invalid is not None or f.suspended:
                continue
            self._resume_recovery_point(key, syncer, f.expected_shards, now)
            recovery: dict[str, float] = {}
            for sid in f.expected_shards:
                expected.add(sid)
                since = self._desired_since.setdefault(sid, now)
                health = report.health.get(sid)
                if health is not None and health.recovery_point is not None:
                    self._current_at[sid] = max(self._current_at.get(sid, 0.0),
                                                health.recovery_point)
                recovery[sid] = max(0.0, now - self._current_at.get(sid, since))
                points[(key, sid)] = recovery[sid]
            f.recovery = recovery
        for gone in set(self._desired_since) - expected:
            self._desired_since.pop(gone, None)
            self._current_at.pop(gone, None)
        self._resumed &= set(facts)
        set_recovery_points(points, targets)

    def _resume_recovery_point(
        self, key: str, syncer: KRMSyncer | None, shards: Sequence[str], now: float
    ) -> None:
        """The first time this process sees a syncer, its shards start from the recovery point
        the last operator wrote (status.recoveryPointTime): the standby was not kept current
        while no operator ran, so that time counts."""
        if key in self._resumed:
            return
        self._resumed.add(key)
        written = syncer.status.recovery_point_time if syncer and syncer.status else None
        if written is None:
            return
        at = min(now, parse_rfc3339(written))
        for sid in shards:
            self._desired_since.setdefault(sid, at)

    async def _syncer_facts(
        self,
        key: str,
        raw: dict[str, Any],
        st: _SyncerState,
        now: float,
        referenced: set[str],
    ) -> tuple[SyncerFacts, KRMSyncer | None]:
        meta = raw.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        if meta.get("deletionTimestamp"):
            st.shards = {}
            return SyncerFacts(generation=generation, suspended=True), None
        try:
            syncer = parse_krmsyncer(raw)
        except SpecError as exc:
            st.shards = {}
            return SyncerFacts(
                generation=generation, invalid=Problem("InvalidSpec", str(exc))
            ), None
        spec = syncer.spec
        if is_suspended_effectively(raw):
            st.shards = {}
            return SyncerFacts(generation=generation, suspended=True, mode=spec.mode), syncer
        ref = spec.secret_ref
        referenced.add(f"{syncer.namespace}/{ref.name}")
        facts = SyncerFacts(generation=generation, mode=spec.mode)

        remote, problem, transient = await self.remotes.load(key, syncer, now)
        if remote is None:
            facts.destination = problem
            if not transient:
                st.shards = {}
            facts.expected_shards = list(st.shards)
            return facts, syncer
        if server_key(remote.config.server) == server_key(self.own_config.server):
            st.shards = {}
            facts.refused = Problem(
                "DestinationIsSource",
                f"the kubeconfig in Secret {syncer.namespace}/{ref.name} points at this operator's "
                f"own cluster ({remote.config.server}); syncing a cluster into itself would loop",
            )
            return facts, syncer
        facts.destination = remote.problem
        await self._plan_shards(key, raw, syncer, remote, st, facts, now)
        return facts, syncer

    async def _plan_shards(
        self, key: str, raw: dict[str, Any], syncer: KRMSyncer, remote: Remote, st: _SyncerState,
        facts: SyncerFacts, now: float,
    ) -> None:
        """The syncer's desired shards into ``st.shards``, unless fenced or refused (``facts``)."""
        spec = syncer.spec
        push = spec.mode == "push"
        source_cfg, dest_cfg = (
            (self.own_config, remote.config) if push else (remote.config, self.own_config)
        )
        source_cluster = (
            self.settings.cluster_name if push else (remote.config.name or remote.config.server)
        )
        ident = fence_identity(
            syncer=key,
            raw=raw,
            push=push,
            source_server=source_cfg.server,
            dest_name=(remote.config.name or remote.config.server)
            if push
            else self.settings.cluster_name,
        )
        fence = await self._fence(ident, remote)
        if fence is not None and fence.fenced:
            # Both directions active: write nothing until a person resolves it.
            st.shards = {}
            facts.refused = Problem(fence.reason, fence.message)
            return
        if not await self._expand(key, raw, syncer, remote, st, facts, now):
            return
        plan = plan_syncer(
            syncer,
            st.expansion or {},
            tenancy=self.settings.tenancy,
            source_cluster=source_cluster,
        )
        facts.expansions = plan.expansions
        facts.not_served = plan.not_served
        if plan.refused is not None:
            st.shards = {}
            facts.refused = plan.refused
            return
        options = self.settings.engine_options
        st.shards = {
            s.shard_id: DesiredShard(
                spec=s,
                revision=revision(
                    s, credentials=remote.digest, options=options, fence=ident.token()
                ),
                source=source_cfg,
                dest=dest_cfg,
                options=options,
                fence=ident,  # the shards' write gate re-checks this before every write
            )
            for s in plan.shards
        }
        facts.expected_shards = list(st.shards)
        facts.shard_specs = {s.shard_id: s for s in plan.shards}

    async def _expand(
        self, key: str, raw: dict[str, Any], syncer: KRMSyncer, remote: Remote, st: _SyncerState,
        facts: SyncerFacts, now: float,
    ) -> bool:
        """Refresh the rules' expansion through the source's discovery when it is stale.

        False when discovery failed and there is no expansion of this generation to keep:
        the running shards stay as they are (no definite answer) and ``facts`` says why.
        """
        push = syncer.spec.mode == "push"
        exp_key = (raw.get("metadata", {}).get("generation"), remote.digest, syncer.spec.mode)
        stale = (
            st.expansion is None
            or st.expansion_key != exp_key
            or now - st.expanded_at >= self.settings.discovery_ttl_s
        )
        if not stale:
            return True
        source_client = self.client if push else remote.client
        try:
            if not push:
                source_client.invalidate_discovery()
            st.expansion = await expand_rules(source_client, syncer)
            st.expansion_key = exp_key
            st.expanded_at = now
        except (ApiError, TransportError) as exc:
            # Could not ask: keep the previous expansion (and shards) rather than guess.
            log.warning("%s: discovery failed: %s", key, type(exc).__name__)
            if st.expansion is None or st.expansion_key != exp_key:
                facts.expected_shards = list(st.shards)
                if facts.destination is None:
                    facts.destination = Problem(
                        "DiscoveryFailed",
                        f"cannot read the source cluster's API discovery: {exc}"[:300],
                    )
                return False
        return True

    async def _fence(self, ident: FenceIdentity, remote: Remote) -> FenceDecision | None:
        """Split-brain check before shards are planned (cached; fresh after an unreachable spell).

        Between these checks, each shard's write gate asks the same question before it
        writes (``ray_syncer.fencing``), so a partition healing between two passes
        cannot let a fenced syncer write.
        """
        key = ident.syncer
        cache_key = f"{key}@{ident.epoch}"
        if remote.problem is not None:
            self.fences.invalidate(cache_key)  # re-check first thing once it answers again
            return self.fences.last(cache_key)
        cached = self.fences.get(cache_key)
        if cached is not None:
            return cached
        try:
            decision = await check_identity(remote.client if ident.push else self.client, ident)
        except (ApiError, TransportError) as exc:
            log.warning("%s: split-brain check failed: %s", key, type(exc).__name__)
            self.fences.invalidate(cache_key)
            return self.fences.last(cache_key)
        if decision.fenced and not (self.fences.last(cache_key) or decision).fenced:
            log.warning("%s: %s", key, decision.message)
        self.fences.put(cache_key, decision)
        return decision

    # ------------------------------------------------------------------ status and events

    async def _write_status(
        self,
        key: str,
        raw: dict[str, Any],
        facts: SyncerFacts,
        health: Mapping[str, ShardHealth],
        now: float,
    ) -> None:
        st = self.state[key]
        current = st.written if st.written is not None else raw.get("status")
        shards = [health[s] for s in facts.expected_shards if s in health]
        new = compute_status(facts, shards, previous=current, now=now)
        await self.notifier.transitions(raw, current, new, st.events)
        await self.notifier.takeovers(raw, shards, st.took_over)
        if not should_write(
            current,
            new,
            last_write=st.last_write,
            now=now,
            min_interval_s=self.settings.status_min_interval_s,
            volatile_interval_s=self.settings.status_volatile_interval_s,
        ):
            return
        body = {"status": {**{k: None for k in (current or {}) if k not in new}, **new}}
        meta = raw.get("metadata") or {}
        try:
            await self.client.patch(
                KRMSYNCER_RES,
                namespace=meta.get("namespace"),
                name=meta["name"],
                body=body,
                content_type="application/merge-patch+json",
                subresource="status",
            )
        except ApiError as exc:
            if not exc.not_found:
                log.warning("%s: status write failed: %s %s", key, exc.status, exc.reason)
            return
        except TransportError as exc:
            log.warning("%s: status write failed: %s", key, exc)
            return
        st.written = new
        st.last_write = now

    def shard_specs(self) -> dict[str, ShardSpec]:
        return {sid: d.spec for st in self.state.values() for sid, d in st.shards.items()}
