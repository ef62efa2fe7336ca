"""Shard: one (KRMSyncer, kind, source namespace) mirrored into the destination.

It ties the engine together (docs/design.md §5):

    source Watcher ──▶ KeyedQueue[dest key, Work] ──▶ dispatcher ──▶ Reconciler ──▶ Applier
    dest Watcher (owned copies, by label) ──▶ Holdings (uid, rv, hash) + drift/foreign-delete work

* Startup: resolve the kind on both sides (``KindMissing`` + backoff until it
  appears), list the destination's owned copies (seeding Holdings, so a restart
  over unchanged objects writes nothing), then list+watch the source.
* A source object becomes an APPLY of its transformed desired state unless
  the held content hash already equals it; a watch DELETED becomes a DELETE;
  a complete relist diffs owned copies against what it saw and deletes the
  ones whose source is gone — unless the delete-storm guard trips.
* Namespace mapping collisions (two source namespaces -> one destination
  name) are resolved by the smallest source namespace, reported, and stable.
* A jittered periodic resync relists both sides; it costs zero writes when
  nothing changed.
* An optional ``WriteGate`` (``engine.gate``; the operator's split-brain
  fencing) is asked before a batch is handed out and again before every
  single write. While it refuses, the shard writes nothing — no applies, no
  deletes, no namespaces — keeps every key queued (newer source states still
  coalesce into them), reports ``Degraded`` with the gate's message, and
  resumes by itself when the gate opens. Any destination request or watch
  failing with a transport error or a 5xx invalidates the gate's cached
  answer, so the first write after an outage is preceded by a fresh check.
* ``run()`` never raises on API/transport errors: it reports them in
  ``health()`` and retries with backoff. ``stop()`` is clean: watches stop,
  queued work is abandoned, in-flight writes finish (up to a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from ray_syncer.engine.applier import Applier
from ray_syncer.engine.claims import (
    Claims,
    desired_copy,
    dest_key,
    maps_namespaces_together,
    removes_copies,
    writes_status,
)
from ray_syncer.engine.clock import Clock, RealClock
from ray_syncer.engine.copies import Copies
from ray_syncer.engine.gate import WriteGate, WriteRefused, is_outage
from ray_syncer.engine.guard import DeleteGuard
from ray_syncer.engine.holdings import Holdings
from ray_syncer.engine.options import EngineOptions
from ray_syncer.engine.ownership import OwnerProbe
from ray_syncer.engine.queue import KeyedQueue
from ray_syncer.engine.ratelimit import Backoff, budget_for
from ray_syncer.engine.reconciler import (
    APPLY,
    DELETE,
    REFETCH,
    Ledger,
    Reconciler,
    Work,
    merge_work,
)
from ray_syncer.engine.recovery import RecoveryPoint, probe_for
from ray_syncer.engine.resolve import resolve_kind
from ray_syncer.engine.spec import ShardHealth, ShardSpec, ShardState
from ray_syncer.engine.transform import (
    MANAGED_BY_LABEL,
    Desired,
    exclusion_reason,
    managed_by_value,
    object_key,
    split_key,
)
from ray_syncer.engine.watcher import Watcher
from ray_syncer.kube.client import KubeClient, ResourceInfo
from ray_syncer.metrics import ShardMetrics

log = logging.getLogger(__name__)


class Shard:
    def __init__(
        self,
        spec: ShardSpec,
        *,
        source: KubeClient,
        dest: KubeClient,
        options: EngineOptions | None = None,
        clock: Clock | None = None,
        metrics: ShardMetrics | None = None,
        write_gate: WriteGate | None = None,
    ) -> None:
        self.spec = spec
        self._gate = write_gate
        self._refused: str | None = None  # the gate's refusal while it is closed
        self._source = source
        self._dest = dest
        self._options = options or EngineOptions()
        self._clock: Clock = clock or RealClock()
        self._own_metrics = metrics is None
        self._metrics = metrics or ShardMetrics(spec.syncer_key, spec.shard_id)
        self.managed_by = managed_by_value(spec.syncer_namespace, spec.syncer_name)
        self._state = ShardState.PENDING
        self._message = ""
        self._holdings = Holdings()
        self._ledger = Ledger()
        self._queue: KeyedQueue[str, Work] = KeyedQueue(
            bound=self._options.queue_bound,
            clock=self._clock,
            merge=merge_work,
            backoff_base_s=self._options.backoff_base_s,
            backoff_max_s=self._options.backoff_max_s,
        )
        self._coalesced_reported = 0
        self._src_res: ResourceInfo | None = None
        self._dst_res: ResourceInfo | None = None
        self._applier: Applier | None = None
        self._reconciler: Reconciler | None = None
        self._src_watcher: Watcher | None = None
        self._dst_watcher: Watcher | None = None
        self._copies: Copies | None = None  # the destination side, once the kind is resolved
        self._recovery = RecoveryPoint(self._clock)
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        # Source relist bookkeeping (only while a list is running).
        self._listed: set[str] | None = None
        # Namespace mapping of all source namespaces into one: who wins each destination name.
        self._claims: Claims | None = None
        self._guard = DeleteGuard(fraction=self._options.delete_guard_fraction,
                                  min_objects=self._options.delete_guard_min,
                                  name=spec.shard_id)
        self._namespaced = True

    # -- public ------------------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop()`` or cancellation; errors are reported, never raised."""
        if self._running:
            raise RuntimeError("shard is already running")
        self._running = True
        try:
            main = asyncio.ensure_future(self._main())
            stopper = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
                if not main.done():
                    main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await main
        finally:
            await self._shutdown()

    async def stop(self) -> None:
        self._stop.set()
        if self._running:
            await self._done.wait()

    def resync(self) -> None:
        """Relist both sides now (the periodic resync does this on its own)."""
        if self._dst_watcher:
            self._dst_watcher.request_relist()
        if self._src_watcher:
            self._src_watcher.request_relist()

    def health(self) -> ShardHealth:
        q = self._queue
        src = self._src_watcher
        dst = self._dst_watcher
        state, message = self._state, self._message
        listed = src is not None and src.lists_completed > 0
        if state in (ShardState.LISTING, ShardState.SYNCING, ShardState.DEGRADED):
            problems = []
            if self._refused:
                problems.append(self._refused)
            if self._guard.tripped:
                problems.append(self._guard.message)
            for w in (src, dst):
                if w is not None and not w.healthy and w.message:
                    problems.append(w.message)
            if self._ledger.denied:
                problems.append(f"destination denied a write: {self._ledger.last_error}")
            elif self._ledger.unreachable:
                problems.append(f"destination unreachable: {self._ledger.last_error}")
            if problems:
                state, message = ShardState.DEGRADED, "; ".join(problems)
            elif not listed:
                state, message = ShardState.LISTING, "listing the source"
            else:
                state, message = ShardState.SYNCING, ""
            if self._collisions() and not problems:
                assert self._claims is not None
                message = self._claims.message(self._options.report_sample)
            elif self._ledger.conflicts and not problems:
                message = self._ledger.conflict_message()
        # A namespace-mapping collision leaves the losers unsynced: it counts as a conflict.
        conflicted = sorted({*self._ledger.conflicts, *self._collisions()})
        errors = len(self._ledger.errors)
        return ShardHealth(
            shard_id=self.spec.shard_id,
            state=state,
            message=message,
            objects=len(self._holdings),
            pending=len(q),
            in_flight=len(self._in_flight),
            conflicts=len(conflicted),
            conflict_names=conflicted[: self._options.report_sample],
            errors=errors,
            last_error=self._ledger.last_error if errors else "",
            lag_seconds=q.oldest_age(),
            last_sync_time=self._ledger.last_sync_time,
            watch_state=src.state if src else "idle",
            delete_guard_tripped=self._guard.tripped is not None,
            synced=bool(
                listed
                and self._oldest_unwritten() is None
                and errors == 0
                and self._guard.tripped is None
                and (dst is None or dst.healthy)
                and state == ShardState.SYNCING
            ),
            writes=self._applier.writes if self._applier else 0,
            took_over=dict(self._ledger.took_over),
            write_budget_per_s=round(self._applier.budget.rate, 1) if self._applier else 0.0,
            write_budget_decreases=self._applier.budget.decreases if self._applier else 0,
            recovery_point=self._current_at(),
        )

    def _current_at(self) -> float | None:
        # Settled as it is read, so a report is not up to a follow period behind the truth.
        self._recovery.settle(self._oldest_unwritten())
        return self._recovery.current_at

    # -- lifecycle ---------------------------------------------------------------

    async def _main(self) -> None:
        self._src_res, self._dst_res = await self._resolve()
        self._namespaced = self._dst_res.namespaced
        spec = self.spec
        if maps_namespaces_together(spec, namespaced=self._namespaced):
            self._claims = Claims()
        self._applier = Applier(
            dest=self._dest,
            res=self._dst_res,
            budget=budget_for(self._dest, self._options.budget, clock=self._clock),
            field_manager=self._options.field_manager,
            managed_by=self.managed_by,
            gate=self._gate,
        )
        self._reconciler = Reconciler(
            spec=spec,
            source=self._source,
            source_res=self._src_res,
            applier=self._applier,
            holdings=self._holdings,
            queue=self._queue,
            ledger=self._ledger,
            clock=self._clock,
            metrics=self._metrics,
            make_desired=self._desired,
            namespaced=self._namespaced,
            owners=OwnerProbe(source=self._source, dest=self._dest, clock=self._clock.monotonic),
        )
        self._reconciler.managed_by = self.managed_by
        self._start_watches(spec)
        self._state = ShardState.LISTING
        self._message = "listing the destination's owned copies"
        assert self._dst_watcher and self._src_watcher and self._copies
        self._spawn("destination watch", self._dst_watcher.run)
        await self._copies.ready.wait()  # holdings seeded: no-op detection works from the start
        self._state = ShardState.SYNCING
        self._message = ""
        self._spawn("source watch", self._src_watcher.run)
        self._spawn("dispatcher", self._dispatch)
        self._spawn("resync", self._resync_loop)
        self._spawn("conflict recheck", self._recheck_loop)
        self._spawn("metrics", self._metrics_loop)
        await asyncio.gather(*self._tasks)

    def _start_watches(self, spec: ShardSpec) -> None:
        """The destination and source watches, and the recovery point following the source."""
        assert self._src_res is not None and self._dst_res is not None
        dest_ns = (spec.dest_namespace or spec.source_namespace) if self._namespaced else None
        src_ns = spec.source_namespace if self._src_res.namespaced else None
        self._copies = Copies(
            spec=spec, managed_by=self.managed_by, namespaced=self._namespaced,
            holdings=self._holdings, queue=self._queue, clock=self._clock,
            source_key_for=self._source_key_for,
        )
        self._dst_watcher = Watcher(
            name="destination",
            client=self._dest,
            res=self._dst_res,
            handler=self._copies,
            options=self._options,
            clock=self._clock,
            metrics=None,
            namespace=dest_ns,
            label_selector=f"{MANAGED_BY_LABEL}={self.managed_by}",
            on_error=self._dest_failed,
        )
        self._src_watcher = Watcher(
            name="source",
            client=self._source,
            res=self._src_res,
            handler=self,  # the source side below is the watch's handler
            options=self._options,
            clock=self._clock,
            metrics=self._metrics,
            namespace=src_ns,
            label_selector=spec.label_selector,
            on_progress=self._recovery.seen,
        )
        probe = probe_for(self._source, self._src_res, namespace=src_ns,
                          label_selector=spec.label_selector, clock=self._clock,
                          interval_s=self._options.rpo_probe_s)
        self._spawn("recovery point", lambda: self._recovery.follow(
            probe, self._oldest_unwritten, every_s=self._options.rpo_probe_s / 2))

    def _spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.ensure_future(self._supervise(name, factory)))

    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Keep a loop alive: an unexpected exception is reported and the loop restarted."""
        backoff = Backoff(base=self._options.retry_base_s, cap=self._options.retry_max_s)
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not silently stop the shard
                log.exception("shard %s: %s failed; restarting it", self.spec.shard_id, name)
                self._ledger.last_error = f"internal error in {name}: {type(exc).__name__}"
                await self._clock.sleep(backoff.next())

    async def _resolve(self) -> tuple[ResourceInfo, ResourceInfo]:
        def report(state: ShardState, message: str | None) -> None:
            self._state = state
            if message is not None:
                self._message = message

        return await resolve_kind(self.spec, source=self._source, dest=self._dest,
                                  options=self._options, clock=self._clock, report=report)

    async def _shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._queue.shutdown()
        if self._in_flight:
            _, pending = await asyncio.wait(
                set(self._in_flight), timeout=self._options.stop_timeout_s
            )
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        self._state = ShardState.STOPPED
        self._message = "stopped"
        if self._own_metrics:
            self._metrics.remove()
        self._running = False
        self._done.set()

    # -- work --------------------------------------------------------------------

    async def _dispatch(self) -> None:
        slots = asyncio.Semaphore(self._options.max_in_flight)
        while True:
            batch = await self._queue.get_batch(self._options.batch_size)
            if not batch:
                return  # queue shut down
            if self._gate is not None:
                refusal = await self._gate()
                if refusal is not None:
                    self._hold(batch, refusal)
                    continue
                self._refused = None
            for key, work in batch:
                await slots.acquire()
                task = asyncio.ensure_future(self._process(key, work))
                self._in_flight.add(task)

                def _finished(t: asyncio.Task[None], key: str = key) -> None:
                    self._in_flight.discard(t)
                    slots.release()

                task.add_done_callback(_finished)

    def _hold(self, batch: list[tuple[str, Work]], refusal: str) -> None:
        """The gate is closed: give the keys back untouched, to be tried again later."""
        if self._refused != refusal:
            log.warning("shard %s: writes refused: %s", self.spec.shard_id, refusal)
        self._refused = refusal
        for key, work in batch:
            self._queue.add_after(key, work, self._options.gate_retry_s)
            self._queue.done(key)

    def _dest_failed(self, exc: BaseException) -> None:
        if self._gate is not None and is_outage(exc):
            self._gate.invalidate()

    async def _process(self, key: str, work: Work) -> None:
        assert self._reconciler is not None
        try:
            await self._reconciler.process(key, work)
        except WriteRefused as exc:
            # The gate closed between the batch check and this write: nothing was written.
            self._refused = exc.message
            self._queue.add_after(key, work, self._options.gate_retry_s)
        except Exception as exc:
            log.exception("shard %s: processing %s failed", self.spec.shard_id, key)
            self._ledger.error(key, f"internal error: {type(exc).__name__}")
            self._queue.add_after(key, work, self._queue.backoff(key))
        finally:
            if self._copies is not None:
                self._copies.written(key)
            self._queue.done(key)

    def _desired(self, obj: dict[str, Any]) -> Desired:
        return desired_copy(self.spec, obj, managed_by=self.managed_by,
                            namespaced=self._namespaced,
                            status_subresource=writes_status(self.spec, self._dst_res))

    def _collisions(self) -> dict[str, list[str]]:
        return self._claims.collisions if self._claims is not None else {}

    def _source_key_for(self, dest_key: str) -> str | None:
        """The source object a destination key mirrors (None if not known right now)."""
        ns, name = split_key(dest_key)
        if self._claims is not None:
            winner = self._claims.winner(dest_key)
            return object_key(winner, name) if winner else None
        if ns and self.spec.dest_namespace:
            return object_key(self.spec.source_namespace, name) if self.spec.source_namespace else None
        return dest_key

    def _busy(self, key: str) -> bool:
        return self._queue.is_pending(key) or self._queue.is_processing(key)

    # -- source side ---------------------------------------------------------------

    async def source_object(self, obj: dict[str, Any], *, watched: bool) -> None:
        src_ns, name, dkey = dest_key(self.spec, obj, namespaced=self._namespaced)
        if not name:
            return
        if exclusion_reason(obj, spec=self.spec) is not None:
            # An excluded object is treated as absent from the source.
            if watched:
                await self.source_gone(obj)
            return
        if self._listed is not None:
            self._listed.add(dkey)
        if self._claims is not None and src_ns is not None and not self._claims.claim(dkey, src_ns):
            return  # a collision loser, or a win that waits for the end of this list
        desired = self._desired(obj)
        held = self._holdings.get(dkey)
        if held is not None and held.hash == desired.hash and not self._busy(dkey):
            self._ledger.ok(dkey)
            self._metrics.applied("noop")
            return
        if self._ledger.failed.get(dkey) == desired.hash and not self._busy(dkey):
            return  # rejected as invalid before; unchanged since
        await self._queue.put(
            dkey, Work(APPLY, desired=desired, seen=self._clock.monotonic(), watched=watched)
        )

    async def source_gone(self, obj: dict[str, Any]) -> None:
        src_ns, name, dkey = dest_key(self.spec, obj, namespaced=self._namespaced)
        if self._claims is not None and src_ns is not None:
            still_claimed, successor = self._claims.release(dkey, src_ns)
            if successor is not None:
                # The next namespace in order takes over the destination name.
                await self._queue.put(
                    dkey,
                    Work(REFETCH, source_key=object_key(successor, name), force=True,
                         seen=self._clock.monotonic(), watched=True),
                )
            if still_claimed:
                return
        self._ledger.ok(dkey)
        if dkey in self._holdings or self._busy(dkey):
            await self._queue.put(
                dkey, Work(DELETE, seen=self._clock.monotonic(), watched=True)
            )

    async def list_page(self, items: list[dict[str, Any]]) -> None:
        for obj in items:
            await self.source_object(obj, watched=False)

    async def event(self, type: str, obj: dict[str, Any]) -> None:
        self._metrics.event(type)
        if type == "DELETED":
            await self.source_gone(obj)
        else:
            await self.source_object(obj, watched=True)

    async def list_begin(self) -> None:
        self._listed = set()
        if self._claims is not None:
            self._claims.list_begin()

    async def list_end(self, resource_version: str = "") -> None:
        deferred = self._claims.list_end() if self._claims is not None else {}
        for dkey, src_ns in deferred.items():  # the smaller namespace is really gone
            await self._queue.put(
                dkey,
                Work(REFETCH, source_key=object_key(src_ns, split_key(dkey)[1]), force=True,
                     seen=self._clock.monotonic()),
            )
        listed, self._listed = self._listed, None
        if listed is None:
            return
        # Work queued before this list is older than it: what the list lacks is gone.
        for key in self._queue.pending_keys() + self._queue.processing_keys():
            if key not in listed and key not in self._holdings:
                await self._queue.put(key, Work(DELETE, seen=self._clock.monotonic()))
        if not removes_copies(self.spec):
            return
        gone = [k for k in self._holdings if k not in listed]
        allowed = self._guard.allows(len(gone), len(self._holdings))
        self._metrics.set_guard(not allowed)
        if not allowed:
            return
        for key in gone:
            await self._queue.put(key, Work(DELETE, seen=self._clock.monotonic()))

    async def list_abort(self) -> None:
        self._listed = None  # a partial list proves nothing: no deletes from it
        if self._claims is not None:
            self._claims.list_abort()

    # -- periodic ------------------------------------------------------------------

    async def _resync_loop(self) -> None:
        # A zero or tiny period would turn the backstop into a relist loop.
        period = max(1e-3, self._options.resync_period_s or self.spec.resync_period_s or 600.0)
        jitter = self._options.resync_jitter_fraction
        rng = random.Random()
        while True:
            await self._clock.sleep(period * (1.0 + jitter * rng.uniform(-1.0, 1.0)))
            self.resync()

    async def _recheck_loop(self) -> None:
        """Conflicts with copies another KRMSyncer made are looked at again: it may be gone."""
        while True:
            await self._clock.sleep(self._options.conflict_recheck_s)
            ledger = self._ledger
            for key in sorted(ledger.owned_elsewhere):
                src = self._source_key_for(key)
                if key not in ledger.conflicts or src is None:
                    ledger.owned_elsewhere.discard(key)
                elif not self._busy(key):
                    self._queue.put_nowait(
                        key, Work(REFETCH, source_key=src, seen=self._clock.monotonic())
                    )

    def _oldest_unwritten(self) -> float | None:
        """When the oldest change still queued, being written or rejected by the destination
        was seen (None: none). Conflicts are not counted: conflictPolicy Skip leaves them."""
        q = self._queue
        rejected = min(self._ledger.failed_since.values(), default=None)
        if not (len(q) or q.in_flight or self._in_flight):
            return rejected
        queued = self._clock.monotonic() - q.oldest_age()
        return queued if rejected is None else min(queued, rejected)

    async def _metrics_loop(self) -> None:
        m = self._metrics
        while True:
            q = self._queue
            m.set_queue_depth(len(q))
            m.set_in_flight(len(self._in_flight))
            m.set_objects(len(self._holdings))
            m.set_lag(q.oldest_age())
            m.set_conflicts(len(self._ledger.conflicts))
            m.set_errors(len(self._ledger.errors))
            m.set_guard(self._guard.tripped is not None)
            if q.coalesced > self._coalesced_reported:
                m.coalesced(q.coalesced - self._coalesced_reported)
                self._coalesced_reported = q.coalesced
            await self._clock.sleep(1.0)
