"""Injectable time for the engine.

Every wait the engine makes (backoff, Retry-After, token bucket, resync timer,
delayed queue entries) goes through a ``Clock`` so tests can run them
instantly: ``RealClock`` is asyncio time; ``FakeClock`` only moves when a test
calls ``advance()``, and records every sleep it was asked for.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock unix time (for reports)."""

    def monotonic(self) -> float:
        """Monotonic seconds (for deadlines, lag and latency)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class RealClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


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

    @property
    def sleeping(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())
