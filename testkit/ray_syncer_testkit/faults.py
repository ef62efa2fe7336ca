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
import random
import threading
from collections.abc import Callable
from typing import Any

Match = Callable[[str, str], bool]


class Faults:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        drop: Callable[[bool], int],
        compact: Callable[[], None],
        set_outage: Callable[[bool], Any],
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
    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop; a coroutine it returns is awaited too.

        From another thread this waits for both; on the loop itself the coroutine becomes a
        task (the loop cannot block on itself).
        """
        if threading.get_ident() == self._thread:
            result = fn()
            if asyncio.iscoroutine(result):
                self._loop.create_task(result)
                return None
            return result

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def drop_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch stream now (abrupt=True resets the connection instead). Returns how many."""
        return int(self._on_loop(lambda: self._drop(abrupt)))

    def stall_watches(self, stalled: bool = True) -> None:
        """Keep watch connections open but deliver nothing (no events, no bookmarks) until un-stalled."""
        self._on_loop(self.unstalled.clear if stalled else self.unstalled.set)

    def compact(self) -> None:
        """Forget the event window: watches from any earlier resourceVersion get 410 Expired."""
        self._on_loop(self._compact)

    def outage(self, down: bool = True) -> None:
        """Refuse connections (and cut open ones) until ``outage(False)``.

        Called from another thread, ``outage(False)`` returns once the server listens again.
        """
        self._down = down
        self._on_loop(lambda: self._set_outage(down))

    def reset(self) -> None:
        """Back to a healthy server."""
        self.error_rate, self.error_codes, self.retry_after, self.latency = 0.0, [500], 1.0, 0.0
        self.match = None
        self.stall_watches(False)
        if self._down:
            self.outage(False)
