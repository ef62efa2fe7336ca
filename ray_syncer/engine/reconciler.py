"""Reconciler: what to do with one key of the work queue (docs/design.md §4 lives here).

The shard's watches turn changes into ``Work`` for a destination key; the
reconciler decides, per key, between no-op, apply, conflict, delete and
recreate, and records the outcome in the shard's ``Ledger``:

* **no clobbering** — a key the shard does not hold is looked up first; an
  unowned object is a conflict under ``Skip`` and is never written;
* **no-op is free** — a desired content hash equal to the held one is not
  written (unless drift forced it);
* **safe deletes** — only for DELETE work (a watch DELETED or a complete
  relist), only for held (owned) copies, always with the uid precondition,
  never under ``Orphan``;
* **no lost updates** — retryable failures go back to the queue with per-key
  backoff (at least Retry-After); the queue keeps any newer state;
* **drift** — VERIFY work (someone else changed our copy) re-reads the source
  and rewrites only if the copy no longer contains what we want.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.engine.applier import Applier, Failure, classify
from ray_syncer.engine.clock import Clock
from ray_syncer.engine.holdings import Held, Holdings
from ray_syncer.engine.ownership import OwnerProbe, foreign_owner, leftovers
from ray_syncer.engine.queue import KeyedQueue
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.engine.transform import (
    MANAGED_BY_LABEL,
    Desired,
    exclusion_reason,
    held_hash,
    owned_by,
    split_key,
)
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.errors import describe_error
from ray_syncer.metrics import ShardMetrics

log = logging.getLogger(__name__)

APPLY = "apply"  # write this desired state (from a source event or list)
DELETE = "delete"  # the source object is gone (watch DELETED, or a complete relist)
REFETCH = "refetch"  # re-read the source object and apply it (restore after a foreign delete)
VERIFY = "verify"  # someone changed our copy: re-read the source, rewrite if it differs


@dataclass(slots=True)
class Work:
    op: str
    desired: Desired | None = None
    source_key: str | None = None  # REFETCH/VERIFY: which source object
    dest_obj: dict[str, Any] | None = None  # VERIFY: our copy as the watch saw it
    # Write even if the held hash matches. On REFETCH it also marks a source-side change
    # (supersedes pending work) rather than drift.
    force: bool = False
    seen: float = 0.0  # monotonic time the oldest coalesced change was seen
    watched: bool = False  # came from a watch event (counts for sync latency)


def merge_work(old: Work, new: Work) -> Work:
    """Coalesce two pending entries of one key: the newest source truth wins."""
    if new.op in (REFETCH, VERIFY) and not new.force and old.op in (APPLY, DELETE):
        # Drift: the pending entry already carries the newest source state; drift forces it.
        # (A forced REFETCH is a source-side change, e.g. a new collision winner: it wins.)
        keep = old
        keep.force = keep.force or old.op == APPLY
    else:
        keep = new
        keep.force = new.force or old.op == VERIFY
    keep.seen = min(old.seen, new.seen)
    keep.watched = old.watched or new.watched
    return keep


def contains(actual: Any, wanted: Any) -> bool:
    """Whether ``actual`` holds everything ``wanted`` says (extra fields are fine)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


@dataclass
class Ledger:
    """What the shard reports about its keys (only keys with something to say)."""

    conflicts: dict[str, str] = field(default_factory=dict)  # dest key -> why
    errors: dict[str, str] = field(default_factory=dict)  # dest key -> last error
    failed: dict[str, int] = field(default_factory=dict)  # dest key -> hash rejected as invalid
    # dest key -> when the oldest change the destination rejected was seen: not written, so
    # it holds the recovery point back until a later version is.
    failed_since: dict[str, float] = field(default_factory=dict)
    took_over: dict[str, int] = field(default_factory=dict)  # deleted KRMSyncer -> copies taken
    owned_elsewhere: set[str] = field(default_factory=set)  # conflicts with a live KRMSyncer's copy
    last_sync_time: float | None = None
    last_error: str = ""
    denied: bool = False
    unreachable: bool = False

    def ok(self, key: str) -> None:
        self.errors.pop(key, None)
        self.failed.pop(key, None)
        self.failed_since.pop(key, None)
        self.conflicts.pop(key, None)
        self.owned_elsewhere.discard(key)

    def error(self, key: str, message: str) -> None:
        self.errors[key] = message
        self.last_error = f"{key}: {message}"

    def conflict_message(self) -> str:
        """Which objects conflict and why (unowned, or another syncer's): what a person acts on."""
        items = sorted(self.conflicts.items())[:3]
        more = len(self.conflicts) - len(items)
        text = "; ".join(f"{k}: {why}" for k, why in items)
        return f"conflicts: {text}" + (f" and {more} more" if more > 0 else "")


class Reconciler:
    def __init__(
        self,
        *,
        spec: ShardSpec,
        source: KubeClient,
        source_res: ResourceInfo,
        applier: Applier,
        holdings: Holdings,
        queue: KeyedQueue[str, Work],
        ledger: Ledger,
        clock: Clock,
        metrics: ShardMetrics,
        make_desired: Callable[[dict[str, Any]], Desired],
        namespaced: bool,
        owners: OwnerProbe | None = None,
    ) -> None:
        self._spec = spec
        self._source = source
        self._source_res = source_res
        self._applier = applier
        self._holdings = holdings
        self._queue = queue
        self._ledger = ledger
        self._clock = clock
        self._metrics = metrics
        self._make_desired = make_desired
        self._namespaced = namespaced
        self._owners = owners
        self.managed_by = ""

    async def process(self, key: str, work: Work) -> None:
        try:
            if work.op == DELETE:
                await self._delete(key)
            else:
                desired = work.desired
                if work.op in (REFETCH, VERIFY):
                    desired = await self._read_source(work.source_key)
                    if desired is None:
                        return  # gone or excluded: only a watch DELETED or a relist deletes
                    if work.op == VERIFY and not work.force and self._copy_is_current(
                        key, desired, work.dest_obj
                    ):
                        return
                    work.force = True
                assert desired is not None
                await self._apply(key, desired, force=work.force, work=work)
            self._queue.forget(key)
            self._ledger.errors.pop(key, None)
            self._ledger.unreachable = False
            self._ledger.denied = False
        except (ApiError, TransportError) as exc:
            self._failed(key, work, exc)

    # -- reads -------------------------------------------------------------------

    async def _read_source(self, source_key: str | None) -> Desired | None:
        if source_key is None:
            return None
        ns, name = split_key(source_key)
        try:
            obj = await self._source.get(self._source_res, namespace=ns, name=name)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        if exclusion_reason(obj, spec=self._spec) is not None:
            return None
        return self._make_desired(obj)

    def _copy_is_current(self, key: str, desired: Desired, dest_obj: dict[str, Any] | None) -> bool:
        if dest_obj is None:
            return False
        if not contains(dest_obj, desired.body):
            return False
        if desired.status is not None and not contains(dest_obj.get("status"), desired.status):
            return False
        held = self._holdings.get(key)
        meta = dest_obj.get("metadata") or {}
        if held is not None:
            self._holdings.put(key, uid=held.uid, rv=held.rv, hash=desired.hash)
        elif meta.get("uid"):
            self._holdings.put(
                key, uid=meta["uid"], rv=meta.get("resourceVersion", ""), hash=desired.hash
            )
        self._metrics.applied("noop")
        return True

    # -- writes ------------------------------------------------------------------

    async def _apply(self, key: str, desired: Desired, *, force: bool, work: Work) -> None:
        if not force and self._ledger.failed.get(key) == desired.hash:
            return  # this exact version was rejected as invalid; wait for a new one
        held = self._holdings.get(key)
        existed = held is not None
        if held is None:
            if desired.namespace:
                await self._applier.ensure_namespace(desired.namespace)
            look_first = self._spec.conflict_policy == "Adopt" or not self._applier.can_create
            if not look_first:
                # One request for a new copy; a name already taken is never written blindly.
                created = await self._applier.create(desired)
                if created is not None:
                    self._wrote(key, desired, created, existed=False, work=work)
                    return
            existing = await self._applier.get(namespace=desired.namespace, name=desired.name)
            if existing is None and not look_first:
                raise ApiError(409, "Conflict", "the object was deleted while we looked at it")
            if existing is not None:
                existed = True
                held = await self._take_or_refuse(key, desired, existing)
                if held is None and self._spec.conflict_policy != "Adopt":
                    return
        if held is not None and held.hash == desired.hash and not force:
            self._noop(key)
            return
        try:
            out = await self._applier.apply(desired, exists=existed)
            if leftovers(out, desired.body, manager=self._applier.field_manager):
                # A field we no longer want is still held by our create: hand it to the
                # apply manager, and apply again so it goes (engine.ownership).
                await self._applier.claim(out)
                out = await self._applier.apply(desired, exists=True)
        except ApiError as exc:
            if classify(exc) is not Failure.IMMUTABLE or self._spec.immutable_policy != "Recreate":
                raise
            if held is None:
                raise  # never recreate what we do not own
            recreated = await self._recreate(key, desired, held.uid, exc)
            if recreated is None:
                return
            out = recreated
        self._wrote(key, desired, out, existed=existed, work=work)

    async def _take_or_refuse(
        self, key: str, desired: Desired, existing: dict[str, Any]
    ) -> Held | None:
        """An existing destination object we did not hold: ours, taken over, or a conflict.

        Returns what we now hold (None: not ours; a conflict unless Adopt).
        """
        meta = existing.get("metadata") or {}
        if owned_by(existing, spec=self._spec, managed_by=self.managed_by):
            content = held_hash(existing)
        else:
            owner = foreign_owner(existing, desired.body, managed_by=self.managed_by)
            gone = owner is not None and self._owners is not None and (
                await self._owners.alive(owner) is False
            )
            if not gone:
                if self._spec.conflict_policy != "Adopt":
                    self._conflict(key, existing, owner)
                return None
            log.info("%s: taking over the copy of deleted KRMSyncer %s", key, owner)
            assert owner is not None
            self._ledger.took_over[owner] = self._ledger.took_over.get(owner, 0) + 1
            content = 0  # rewrite it: our label and annotations
        self._holdings.put(
            key, uid=meta.get("uid", ""), rv=meta.get("resourceVersion", ""), hash=content
        )
        return self._holdings.get(key)

    def _wrote(self, key: str, desired: Desired, out: dict[str, Any], *, existed: bool,
               work: Work) -> None:
        meta = out.get("metadata") or {}
        self._holdings.put(key, uid=meta.get("uid", ""), rv=meta.get("resourceVersion", ""),
                           hash=desired.hash)
        self._ledger.ok(key)
        self._ledger.last_sync_time = self._clock.now()
        self._metrics.applied("updated" if existed else "created")
        if work.watched:
            self._metrics.observe_latency(self._clock.monotonic() - work.seen)

    async def _recreate(
        self, key: str, desired: Desired, uid: str, exc: ApiError
    ) -> dict[str, Any] | None:
        log.info("recreating %s: immutable field changed (%s)", key, exc.reason)
        result = await self._applier.delete(namespace=desired.namespace, name=desired.name, uid=uid)
        self._metrics.deleted("recreate")
        self._holdings.pop(key)
        if result == "replaced":
            # Someone else's object now: re-evaluate ownership from scratch.
            self._queue.put_nowait(key, Work(APPLY, desired=desired, seen=self._clock.monotonic()))
            return None
        return await self._applier.apply(desired, exists=False)

    async def _delete(self, key: str) -> None:
        self._ledger.conflicts.pop(key, None)
        self._ledger.failed.pop(key, None)
        self._ledger.failed_since.pop(key, None)
        held = self._holdings.get(key)
        if held is None:
            return  # nothing of ours there
        if self._spec.deletion_policy == "Orphan":
            self._metrics.deleted("orphaned")
            return
        ns, name = split_key(key)
        result = await self._applier.delete(namespace=ns, name=name, uid=held.uid)
        self._holdings.pop(key)
        self._metrics.deleted(result)
        self._ledger.last_sync_time = self._clock.now()

    # -- outcomes ----------------------------------------------------------------

    def _noop(self, key: str) -> None:
        self._ledger.ok(key)
        self._ledger.last_sync_time = self._clock.now()
        self._metrics.applied("noop")

    def _conflict(self, key: str, existing: dict[str, Any], owner: str | None) -> None:
        labels = (existing.get("metadata") or {}).get("labels") or {}
        if owner is not None:
            # Looked at again every conflict_recheck_s (Shard): once it is deleted, we take over.
            self._ledger.owned_elsewhere.add(key)
            why = f"made by KRMSyncer {owner}, which still exists"
        elif labels.get(MANAGED_BY_LABEL):
            why = f"owned by syncer {labels[MANAGED_BY_LABEL]}"
        else:
            why = "not created by this syncer"
        self._ledger.conflicts[key] = f"destination object exists, {why} (conflictPolicy Skip)"
        self._metrics.applied("conflict")

    def _failed(self, key: str, work: Work, exc: ApiError | TransportError) -> None:
        kind = classify(exc)
        message = describe_error(exc)
        self._metrics.applied("error") if work.op != DELETE else self._metrics.deleted("error")
        if kind in (Failure.INVALID, Failure.IMMUTABLE):
            # Terminal for this object version: reported, retried only when the source changes.
            self._ledger.error(key, message)
            if work.desired is not None:
                self._ledger.failed[key] = work.desired.hash
            self._ledger.failed_since.setdefault(key, work.seen or self._clock.monotonic())
            self._queue.forget(key)
            return
        if kind is Failure.NOT_FOUND:
            self._applier.forget_namespace(split_key(key)[0])
        self._ledger.denied = kind is Failure.DENIED
        self._ledger.unreachable = isinstance(exc, TransportError)
        self._ledger.error(key, message)
        delay = self._queue.backoff(key)
        if isinstance(exc, ApiError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        self._queue.add_after(key, work, delay)
