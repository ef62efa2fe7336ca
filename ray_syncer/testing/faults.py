"""Fault injection, controlled by tests at run time.

``server.faults`` answers a fraction (``error_rate``) of the requests that
``match`` (a callable on (method, path), default all) with one of
``error_codes`` (429 and 503 carry ``Retry-After: retry_after``), adds
``latency`` seconds to each matching request, and drives the server: close
every open watch (:meth:`drop_watches`), hold watch output
(:meth:`stall_watches`), forget the event window so older resourceVersions
get 410 (:meth:`compact`), and refuse connections (:meth:`outage`).

The methods may be called from any thread (ThreadedApiServer hands this same
object to synchronous tests): actions that touch the event loop are run on it
and waited for. The server passes its actions in as callables, so this module
knows nothing about aiohttp.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Match = Callable[[str, str], bool]


class Faults:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        drop: Callable[[bool], int],
        compact: Callable[[], None],
        set_outage: Callable[[bool], None],
        seed: int | None = None,
    ) -> None:
        self.error_rate: float = 0.0
        self.error_codes: list[int] = [500]
        self.retry_after: float = 1.0
        self.latency: float = 0.0
        self.match: Match | None = None
        self.rng = random.Random(seed)
        self._loop = loop
        self._thread = threading.get_ident()
        self._drop = drop
        self._compact = compact
        self._set_outage = set_outage
        self._down = False
        self.unstalled = asyncio.Event()
        self.unstalled.set()

    # -- called by http.py per request ----------------------------------------
    def applies(self, method: str, path: str) -> bool:
        return self.match is None or bool(self.match(method, path))

    def pick_error(self, method: str, path: str) -> int | None:
        if self.error_rate <= 0 or not self.error_codes or not self.applies(method, path):
            return None
        if self.rng.random() >= self.error_rate:
            return None
        return self.rng.choice(self.error_codes)

    def delay(self, method: str, path: str) -> float:
        return self.latency if self.latency > 0 and self.applies(method, path) else 0.0

    @property
    def stalled(self) -> bool:
        return not self.unstalled.is_set()

    @property
    def down(self) -> bool:
        return self._down

    # -- controls -------------------------------------------------------------
    def _on_loop(self, fn: Callable[[], T]) -> T:
        if threading.get_ident() == self._thread:
            return fn()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return fut.result(timeout=30)

    def drop_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch stream now (abrupt=True resets the connection instead). Returns how many."""
        return self._on_loop(lambda: self._drop(abrupt))

    def stall_watches(self, stalled: bool = True) -> None:
        """Keep watch connections open but deliver nothing (no events, no bookmarks) until un-stalled."""
        self._on_loop(self.unstalled.clear if stalled else self.unstalled.set)

    def compact(self) -> None:
        """Forget the event window: watches from any earlier resourceVersion get 410 Expired."""
        self._on_loop(self._compact)

    def outage(self, down: bool = True) -> None:
        """Refuse connections (and cut open ones) until ``outage(False)``."""
        self._down = down
        self._on_loop(lambda: self._set_outage(down))

    def reset(self) -> None:
        """Back to a healthy server."""
        self.error_rate, self.error_codes, self.retry_after, self.latency = 0.0, [500], 1.0, 0.0
        self.match = None
        self.stall_watches(False)
        if self._down:
            self.outage(False)
