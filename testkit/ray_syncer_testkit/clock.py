"""A fake clock for the engine's injectable time (``ray_syncer.engine.clock.Clock``).

It moves only when a test calls ``advance()``, waking sleepers in deadline order,
and records every sleep it was asked for: backoff, Retry-After and resync tests
run instantly and can assert the waits themselves.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class FakeClock:
    """A clock that moves only when told to; sleepers wake as ``advance`` passes them."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = 0.0
        self._wall0 = start
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self.sleeps: list[float] = []  # every requested duration, in order

    def now(self) -> float:
        return self._wall0 + self._t

    def monotonic(self) -> float:
        return self._t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passed, in order."""
        target = self._t + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self._t = max(self._t, when)
            if not fut.done():
                fut.set_result(None)
            # Let the woken task run before waking the next one.
            for _ in range(3):
                await asyncio.sleep(0)
        self._t = target
        await asyncio.sleep(0)
