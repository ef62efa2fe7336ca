"""Injectable time for the engine.

Every wait the engine makes (backoff, Retry-After, token bucket, resync timer,
delayed queue entries) goes through a ``Clock`` so tests can run them
instantly: ``RealClock`` is asyncio time; the test kit's ``FakeClock``
(``ray_syncer_testkit.clock``) only moves when a test advances it.
"""

from __future__ import annotations

import asyncio
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
