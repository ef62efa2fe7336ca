"""Watch streams: chunked JSON lines, as kube-apiserver writes them.

resourceVersion unset or "0": a synthetic ADDED for every current object,
then live events. resourceVersion N: the buffered events after N from the
store's window, then live events; N older than the window: a single ERROR
event carrying a 410 Expired Status (HTTP 200, as kube-apiserver does).
``allowWatchBookmarks=true`` adds BOOKMARK events every
``bookmark_interval`` seconds; ``sendInitialEvents=true`` ends the initial
ADDED batch with the ``k8s.io/initial-events-end`` bookmark. The stream ends
after ``timeoutSeconds``, when faults.drop_watches() closes it, or when the
watched CRD goes away. The snapshot and the watcher registration happen in the
same loop step, so no event can fall between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import web

from .errors import StatusError, bad_request
from .faults import Faults
from .handlers import Target
from .selectors import FieldSelector, LabelSelector
from .store import Event, Store, Watcher

DEFAULT_TIMEOUT = 1800.0


def _bookmark(t: Target, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": t.rt.kind, "apiVersion": t.rt.api_version, "metadata": meta}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def serve(
    request: web.BaseRequest,
    *,
    t: Target,
    query: dict[str, str],
    store: Store,
    faults: Faults,
    bookmark_interval: float,
) -> web.StreamResponse:
    rt = t.rt
    labels = LabelSelector.parse(query.get("labelSelector"))
    fields = FieldSelector.parse(query.get("fieldSelector"), allowed=rt.field_labels, kind=rt.kind)
    if t.name:
        extra = FieldSelector([("metadata.name", True, t.name)])
        fields = extra if fields is None else FieldSelector(fields.terms + extra.terms)
    timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    bookmarks = query.get("allowWatchBookmarks") == "true"
    send_initial = query.get("sendInitialEvents") == "true"
    rv_param = query.get("resourceVersion") or ""
    w = Watcher(key=rt.key, namespace=t.namespace if rt.namespaced else None, api_version=rt.api_version,
                labels=labels, fields=fields)
    first: list[bytes] = []
    if rv_param in ("", "0") or send_initial:
        for obj in store.iter(rt.key, w.namespace):
            if w.matches(obj):
                first.append(Event(0, "ADDED", rt.key, "", obj, None).line("ADDED", rt.api_version))
        if send_initial and bookmarks:
            first.append(_bookmark(t, store.revision, initial_end=True))
    else:
        try:
            since = int(rv_param)
        except ValueError:
            raise bad_request(f'invalid resource version: "{rv_param}"') from None
        try:
            for ev in store.since(rt.key, since):
                w.offer(ev)
        except StatusError as err:
            first.append(orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n")
            w.closed = True
    if not w.closed:
        store.add_watcher(w)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        pending = first + w.take()
        if pending:
            await resp.write(b"".join(pending))
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + bookmark_interval
        while not w.closed:
            now = time.monotonic()
            if now >= deadline:
                break
            if faults.stalled:
                # Hold everything; only a drop, a close or the deadline ends a stall.
                stall = asyncio.ensure_future(faults.unstalled.wait())
                closed = asyncio.ensure_future(w.wake.wait())
                while faults.stalled and not w.closed and time.monotonic() < deadline:
                    w.wake.clear()
                    await asyncio.wait({stall, closed}, timeout=deadline - time.monotonic(),
                                       return_when=asyncio.FIRST_COMPLETED)
                    if closed.done() and not w.closed and faults.stalled:
                        closed = asyncio.ensure_future(w.wake.wait())
                stall.cancel()
                closed.cancel()
                w.wake.set()
                continue
            wait_for = min(deadline, next_bookmark if bookmarks else deadline) - now
            if not w.pending:
                # Wake at least every second to notice a client that went away.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(w.wake.wait(), timeout=max(min(wait_for, 1.0), 0))
            if request.transport is None or request.transport.is_closing():
                break
            if w.closed or faults.stalled:
                continue
            lines = w.take()
            if bookmarks and time.monotonic() >= next_bookmark:
                lines.append(_bookmark(t, store.revision))
                next_bookmark = time.monotonic() + bookmark_interval
            if lines:
                await resp.write(b"".join(lines))
        if w.abort and request.transport is not None:
            request.transport.abort()
            return resp
        lines = w.take() if not w.abort else []
        if lines and not faults.stalled:
            await resp.write(b"".join(lines))
        await resp.write_eof()
    except (ConnectionResetError, RuntimeError):
        # The client went away (or the server is stopping): nothing to tell anyone.
        pass
    finally:
        store.remove_watcher(w)
    return resp
