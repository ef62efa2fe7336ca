"""Object storage: the revision counter, the event window and watch fan-out.

One :class:`Store` per server. Objects are indexed by resource key (group,
plural), namespace and name, and are immutable once stored: a write builds a
new dict, so reads and lists never copy. Every committed write takes the next
value of one global revision counter (the object's ``resourceVersion``),
appends an :class:`Event` to a bounded window (for watch replay) and is
offered to every open :class:`Watcher` of that resource. Each event is
serialized once per (type, apiVersion) and the same bytes are handed to all
watchers. Everything runs on the server's event loop, so a write is atomic.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson

from .errors import expired
from .kinds import ResourceKey
from .selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]

# A watcher that falls this many events behind is closed, as kube-apiserver does
# for consumers that cannot keep up (the client then re-watches or relists).
MAX_WATCHER_BACKLOG = 200_000


class Event:
    __slots__ = ("_lines", "key", "namespace", "obj", "old", "rv", "type")

    def __init__(self, rv: int, type_: str, key: ResourceKey, namespace: str, obj: Obj, old: Obj | None) -> None:
        self.rv = rv
        self.type = type_
        self.key = key
        self.namespace = namespace
        self.obj = obj
        self.old = old
        self._lines: dict[tuple[str, str], bytes] = {}

    def line(self, type_: str, api_version: str) -> bytes:
        cached = self._lines.get((type_, api_version))
        if cached is None:
            obj = self.obj
            if obj.get("apiVersion") != api_version:
                obj = {**obj, "apiVersion": api_version}
            cached = orjson.dumps({"type": type_, "object": obj}) + b"\n"
            self._lines[(type_, api_version)] = cached
        return cached


class Watcher:
    """One open watch stream's filter and pending output."""

    def __init__(
        self,
        *,
        key: ResourceKey,
        namespace: str | None,
        api_version: str,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
    ) -> None:
        self.key = key
        self.namespace = namespace
        self.api_version = api_version
        self.labels = labels
        self.fields = fields
        self.pending: list[bytes] = []
        self.wake = asyncio.Event()
        self.closed = False
        self.abort = False  # close the TCP connection instead of ending the stream cleanly

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.labels is not None and not self.labels.matches(obj):
            return False
        return self.fields is None or self.fields.matches(obj)

    def offer(self, ev: Event) -> None:
        if self.closed or (self.namespace is not None and ev.namespace != self.namespace):
            return
        type_: str | None = ev.type
        if self.labels is not None or self.fields is not None:
            now = self.matches(ev.obj)
            if ev.type == "MODIFIED":
                before = self.matches(ev.old)
                # Objects moving in or out of the selection appear as ADDED/DELETED.
                type_ = ("MODIFIED" if before else "ADDED") if now else ("DELETED" if before else None)
            elif not now:
                type_ = None
        if type_ is None:
            return
        self.push(ev.line(type_, self.api_version))

    def push(self, line: bytes) -> None:
        self.pending.append(line)
        if len(self.pending) > MAX_WATCHER_BACKLOG:
            self.close()
        self.wake.set()

    def take(self) -> list[bytes]:
        out, self.pending = self.pending, []
        self.wake.clear()
        return out

    def close(self, *, abort: bool = False) -> None:
        self.closed = True
        self.abort = self.abort or abort
        self.wake.set()


class Store:
    def __init__(self, *, window: int = 20_000, first_revision: int = 1000) -> None:
        self.revision = first_revision
        self.window_size = window
        self.window: deque[Event] = deque()
        # Events with rv > floor are all in the window; older resourceVersions get 410.
        self.floor = first_revision
        self._objects: dict[ResourceKey, dict[str, dict[str, Obj]]] = {}
        self._watchers: dict[ResourceKey, set[Watcher]] = {}
        self._by_uid: dict[str, tuple[ResourceKey, str, str]] = {}
        self._dependents: dict[str, set[tuple[ResourceKey, str, str]]] = {}

    # -- reads -------------------------------------------------------------
    def get(self, key: ResourceKey, namespace: str, name: str) -> Obj | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def count(self, key: ResourceKey, namespace: str | None = None) -> int:
        spaces = self._objects.get(key, {})
        if namespace is not None:
            return len(spaces.get(namespace, {}))
        return sum(len(v) for v in spaces.values())

    def iter(self, key: ResourceKey, namespace: str | None = None) -> Iterator[Obj]:
        """Objects in (namespace, name) order, the order list pagination relies on."""
        spaces = self._objects.get(key, {})
        names = [namespace] if namespace is not None else sorted(spaces)
        for ns in names:
            objs = spaces.get(ns, {})
            for name in sorted(objs):
                yield objs[name]

    def resource_keys(self) -> list[ResourceKey]:
        return list(self._objects)

    # -- writes ------------------------------------------------------------
    def commit(self, key: ResourceKey, obj: Obj, type_: str, *, old: Obj | None) -> Obj:
        """Store ``obj`` (or remove it for DELETED) under a fresh resourceVersion."""
        self.revision += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.revision)
        namespace = meta.get("namespace", "")
        name = meta["name"]
        spaces = self._objects.setdefault(key, {})
        where = (key, namespace, name)
        if old is not None:
            self._unindex(old, where)
        if type_ == "DELETED":
            objs = spaces.get(namespace)
            if objs is not None:
                objs.pop(name, None)
                if not objs:
                    del spaces[namespace]
        else:
            spaces.setdefault(namespace, {})[name] = obj
            self._index(obj, where)
        ev = Event(self.revision, type_, key, namespace, obj, old)
        if len(self.window) >= self.window_size:
            self.floor = self.window.popleft().rv
        self.window.append(ev)
        for w in self._watchers.get(key, ()):
            w.offer(ev)
        return obj

    # -- uid and owner indexes (for the garbage collector in handlers.py) ------
    def _index(self, obj: Obj, where: tuple[ResourceKey, str, str]) -> None:
        meta = obj["metadata"]
        if meta.get("uid"):
            self._by_uid[meta["uid"]] = where
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict) and ref.get("uid"):
                self._dependents.setdefault(ref["uid"], set()).add(where)

    def _unindex(self, obj: Obj, where: tuple[ResourceKey, str, str]) -> None:
        meta = obj.get("metadata") or {}
        if self._by_uid.get(meta.get("uid", "")) == where:
            del self._by_uid[meta["uid"]]
        for ref in meta.get("ownerReferences") or ():
            deps = self._dependents.get(ref.get("uid", "")) if isinstance(ref, dict) else None
            if deps is not None:
                deps.discard(where)
                if not deps:
                    del self._dependents[ref["uid"]]

    def alive(self, uid: str) -> bool:
        return uid in self._by_uid

    def dependents(self, uid: str) -> list[tuple[ResourceKey, str, str]]:
        """Where the objects naming ``uid`` in their ownerReferences are."""
        return sorted(self._dependents.get(uid, ()))

    def compact(self) -> None:
        """Forget the event window: every resourceVersion before now becomes too old."""
        self.window.clear()
        self.floor = self.revision

    # -- watch -------------------------------------------------------------
    def since(self, key: ResourceKey, rv: int) -> list[Event]:
        if rv < self.floor:
            raise expired(f"too old resource version: {rv} ({self.floor})")
        out: list[Event] = []
        for ev in reversed(self.window):
            if ev.rv <= rv:
                break
            if ev.key == key:
                out.append(ev)
        out.reverse()
        return out

    def add_watcher(self, w: Watcher) -> None:
        self._watchers.setdefault(w.key, set()).add(w)

    def remove_watcher(self, w: Watcher) -> None:
        ws = self._watchers.get(w.key)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self._watchers[w.key]

    def watchers(self) -> list[Watcher]:
        return [w for ws in self._watchers.values() for w in ws]

    def close_watchers(self, key: ResourceKey | None = None, *, abort: bool = False) -> int:
        targets = self.watchers() if key is None else list(self._watchers.get(key, ()))
        for w in targets:
            w.close(abort=abort)
        return len(targets)
