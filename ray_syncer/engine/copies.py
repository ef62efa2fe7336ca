"""The shard's copies in the destination, as its destination watch sees them.

Why it exists: what the shard holds in the destination (``Holdings``: uid,
resourceVersion, content hash per copy) must follow what is really there, and
what others do to the copies must become work, never silence. :class:`Copies`
is the destination watch's handler (``watcher.WatchHandler``):

* a complete list replaces the holdings (keys being written keep their entry);
  a copy that vanished while the watch was not looking is restored;
* an event on a copy labelled for this syncer: a DELETED by someone else is
  restored from its source, a write by someone else is verified against its
  source; a copy we did not know (an earlier run wrote it) is taken in; a copy
  whose label was removed is no longer ours to touch;
* an event on a key the shard is writing right now waits until that write is
  done (:meth:`written`), so our own write is never judged as someone else's.

``ready`` is set after the first complete list: from then on an unchanged source
object costs no write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ray_syncer.engine.clock import Clock
from ray_syncer.engine.holdings import Holdings, rv_newer
from ray_syncer.engine.queue import KeyedQueue
from ray_syncer.engine.reconciler import REFETCH, VERIFY, Work
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.engine.transform import held_hash, object_key, owned_by


class Copies:
    def __init__(
        self,
        *,
        spec: ShardSpec,
        managed_by: str,
        namespaced: bool,
        holdings: Holdings,
        queue: KeyedQueue[str, Work],
        clock: Clock,
        source_key_for: Callable[[str], str | None],
    ) -> None:
        self.spec = spec
        self.managed_by = managed_by
        self.namespaced = namespaced
        self.holdings = holdings
        self.queue = queue
        self.clock = clock
        self.source_key_for = source_key_for
        self.ready = asyncio.Event()
        self._snapshot: Holdings | None = None
        # Events that arrived while their key was being written, by key.
        self._stash: dict[str, tuple[str, dict[str, Any]]] = {}

    def _key(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return object_key(meta.get("namespace") if self.namespaced else None, meta.get("name", ""))

    def _restore(self, key: str, kind: str, dest_obj: dict[str, Any] | None = None) -> None:
        src = self.source_key_for(key)
        if src is not None:
            self.queue.put_nowait(
                key, Work(kind, source_key=src, dest_obj=dest_obj, seen=self.clock.monotonic())
            )

    # -- the watch's list ----------------------------------------------------------------

    async def list_begin(self) -> None:
        self._snapshot = Holdings()

    async def list_page(self, items: list[dict[str, Any]]) -> None:
        snap = self._snapshot
        if snap is None:
            return
        for obj in items:
            if not owned_by(obj, spec=self.spec, managed_by=self.managed_by):
                continue
            meta = obj.get("metadata") or {}
            snap.put(self._key(obj), uid=meta.get("uid", ""), rv=meta.get("resourceVersion", ""),
                     hash=held_hash(obj))

    async def list_end(self, resource_version: str = "") -> None:
        snap, self._snapshot = self._snapshot, None
        if snap is None:
            return
        before = set(self.holdings) if self.ready.is_set() else set()
        self.holdings.replace_with(snap, keep=set(self.queue.processing_keys()))
        # Copies that vanished while the watch was not looking: restore them.
        for key in before:
            if key not in self.holdings:
                self._restore(key, REFETCH)
        self.ready.set()

    async def list_abort(self) -> None:
        self._snapshot = None

    # -- the watch's events --------------------------------------------------------------

    async def event(self, type: str, obj: dict[str, Any]) -> None:
        key = self._key(obj)
        if self.queue.is_processing(key):
            self._stash[key] = (type, obj)  # judged once our own write finished
            return
        self._judge(key, type, obj)

    def written(self, key: str) -> None:
        """The shard finished writing ``key``: judge what the watch said of it meanwhile."""
        stashed = self._stash.pop(key, None)
        if stashed is not None:
            self._judge(key, *stashed)

    def _judge(self, key: str, etype: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid", "")
        rv = meta.get("resourceVersion", "")
        held = self.holdings.get(key)
        if not owned_by(obj, spec=self.spec, managed_by=self.managed_by):
            # Our label was removed (or never ours): no longer ours to touch.
            if held is not None and held.uid == uid:
                self.holdings.pop(key)
            return
        if etype == "DELETED":
            if held is not None and held.uid == uid:
                self.holdings.pop(key)
                self._restore(key, REFETCH)  # deleted by someone else: restore it
            return
        if held is None:
            # An owned copy we did not know (an earlier run wrote it).
            self.holdings.put(key, uid=uid, rv=rv, hash=held_hash(obj))
            return
        if held.uid != uid or rv_newer(rv, held.rv):
            # Someone else wrote our copy (our own writes are recorded with their rv).
            self.holdings.put(key, uid=uid, rv=rv, hash=held.hash if held.uid == uid else 0)
            self._restore(key, VERIFY, dest_obj=obj)
