"""List+watch of one resource scope, with resume, bookmarks and relist on 410.

The ``Watcher`` is the only place that talks list/watch for the engine; the
shard uses two (source objects, and owned destination copies) and receives
what they see through a ``WatchHandler``:

* a complete list arrives as ``list_begin`` / ``list_page``* / ``list_end(rv)``;
  a list that fails half-way ends with ``list_abort`` instead, so the handler
  never mistakes a partial list for the truth (docs/design.md §4.2: no deletes from
  doubt);
* then ``event(type, obj)`` for each watch event, starting from the list's
  resourceVersion.

A stream that ends or drops is resumed from the last resourceVersion seen
(including bookmarks), so no event in between is lost. A 410 Gone means the
server no longer has those events: the watcher relists and the handler diffs
the fresh list against what it knew, which finds deletes that happened in the
gap. ``request_relist()`` forces a relist (periodic resync); because the watch
is stopped before the list starts, every event handed over earlier is older
than the list, so the newest state still wins.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from ray_syncer.engine.clock import Clock
from ray_syncer.engine.options import EngineOptions
from ray_syncer.engine.ratelimit import Backoff
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.errors import describe_error
from ray_syncer.metrics import ShardMetrics

# A watch stream that stays open this long (real seconds) counts as healthy again.
_HEALTHY_AFTER_S = 0.5


class WatchHandler(Protocol):
    async def list_begin(self) -> None: ...

    async def list_page(self, items: list[dict[str, Any]]) -> None: ...

    async def list_end(self, resource_version: str) -> None: ...

    async def list_abort(self) -> None: ...

    async def event(self, type: str, obj: dict[str, Any]) -> None: ...


class Watcher:
    def __init__(
        self,
        *,
        name: str,
        client: KubeClient,
        res: ResourceInfo,
        handler: WatchHandler,
        options: EngineOptions,
        clock: Clock,
        metrics: ShardMetrics | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._on_error = on_error  # told of every list/watch failure (the shard's write gate)
        # Told the resourceVersion up to which everything was delivered: after a complete
        # list, each event and each bookmark (the shard's recovery point).
        self._on_progress = on_progress
        self._client = client
        self._res = res
        self._handler = handler
        self._options = options
        self._clock = clock
        self._metrics = metrics
        self._namespace = namespace
        self._label_selector = label_selector
        self._rv: str | None = None
        self._relist = asyncio.Event()
        self._backoff = Backoff(base=options.retry_base_s, cap=options.retry_max_s)
        self.state = "idle"  # idle | listing | watching | error
        self.message = ""
        self.lists_completed = 0
        self.healthy = False  # True while the last list/watch attempt worked

    @property
    def resource_version(self) -> str | None:
        return self._rv

    def request_relist(self) -> None:
        self._relist.set()

    async def run(self) -> None:
        while True:
            if self._rv is None or self._relist.is_set():
                self._relist.clear()
                if not await self._list():
                    await self._clock.sleep(self._backoff.next())
                    continue
            await self._watch()

    async def _list(self) -> bool:
        self.state = "listing"
        await self._handler.list_begin()
        try:
            token: str | None = None
            rv = ""
            while True:
                page = await self._client.list_page(
                    self._res,
                    namespace=self._namespace,
                    label_selector=self._label_selector,
                    limit=self._options.list_page_size,
                    continue_token=token,
                )
                await self._handler.list_page(page.get("items") or [])
                meta = page.get("metadata") or {}
                rv = meta.get("resourceVersion") or rv
                token = meta.get("continue") or None
                if not token:
                    break
        except (ApiError, TransportError) as exc:
            await self._handler.list_abort()
            self._fail(exc, "error")
            self._relist.set()  # a failed relist is retried as a relist, never skipped
            return False
        except BaseException:
            await self._handler.list_abort()
            raise
        self._rv = rv
        self.lists_completed += 1
        if self._metrics:
            self._metrics.relisted()
        await self._handler.list_end(rv)
        self._progress(rv)
        self.healthy = True
        self.message = ""
        return True

    async def _watch(self) -> None:
        self.state = "watching"
        consumer = asyncio.ensure_future(self._consume())
        relist = asyncio.ensure_future(self._relist.wait())
        try:
            done, _ = await asyncio.wait(
                {consumer, relist}, timeout=_HEALTHY_AFTER_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                # The stream has been up for a while without failing: the watch works,
                # even if nothing changed (and so no event proved it).
                self.healthy = True
                self.message = ""
                await asyncio.wait({consumer, relist}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            relist.cancel()
            if not consumer.done():
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
        if consumer.cancelled():
            return  # a relist was requested
        exc = consumer.exception()
        if exc is None:
            got_events = consumer.result()
            if self._metrics:
                self._metrics.watch_restart("dropped")
            if got_events:
                self._backoff.reset()
            else:
                # A stream that closes at once, again and again, must not become a busy loop.
                await self._clock.sleep(self._backoff.next())
            return
        if isinstance(exc, ApiError) and exc.gone:
            if self._metrics:
                self._metrics.watch_restart("expired")
            self.message = "watch expired (410 Gone); relisting"
            # Relist and diff (safe); otherwise watch on from "now" (events in the gap are lost).
            self._rv = None if self._options.relist_on_410 else ""
            return
        if isinstance(exc, ApiError | TransportError):
            self._fail(exc, "error")
            await self._clock.sleep(self._backoff.next())
            return
        raise exc

    async def _consume(self) -> bool:
        """Read one watch stream; returns whether it delivered anything."""
        got = False
        stream = self._client.watch(
            self._res,
            namespace=self._namespace,
            label_selector=self._label_selector,
            resource_version=self._rv or None,
            allow_bookmarks=True,
            timeout_seconds=self._options.watch_timeout_s,
        )
        async with contextlib.aclosing(stream):
            async for ev in stream:
                got = True
                self.healthy = True
                etype = ev.get("type") or ""
                obj = ev.get("object") or {}
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if etype in ("ADDED", "MODIFIED", "DELETED"):
                    await self._handler.event(etype, obj)
                if rv:
                    self._rv = rv
                    self._progress(rv)
        return got

    def _progress(self, rv: str) -> None:
        if self._on_progress is not None and rv:
            self._on_progress(rv)

    def _fail(self, exc: BaseException, reason: str) -> None:
        self.state = "error"
        self.healthy = False
        self.message = f"{self.name}: {describe_error(exc)}"
        if self._metrics:
            self._metrics.watch_restart(reason)
        if self._on_error is not None:
            self._on_error(exc)
