"""Rate limits for destination writes: a token bucket per destination, and Backoff.

Every shard writing to one destination client shares one ``TokenBucket``
(``bucket_for``), so a syncer with many shards cannot exceed its write budget.
A 429 with Retry-After pauses the whole bucket (``pause``): the server is
telling *all* our writers to wait, not just the key that got the answer.
``Backoff`` is the capped exponential delay for whole-shard retries
(discovery, list/watch errors); per-key backoff lives in the KeyedQueue.
"""

from __future__ import annotations

import random
import weakref
from typing import Any

from ray_syncer.engine.clock import Clock, RealClock


class TokenBucket:
    def __init__(self, *, rate: float, burst: int, clock: Clock | None = None) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock: Clock = clock or RealClock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()
        self._paused_until = 0.0

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> None:
        """Wait until a write may go (honouring any Retry-After pause), then take a token."""
        while True:
            now = self._clock.monotonic()
            if now < self._paused_until:
                await self._clock.sleep(self._paused_until - now)
                continue
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await self._clock.sleep((1.0 - self._tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """Stop handing out tokens for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock.monotonic())


_BUCKETS: weakref.WeakKeyDictionary[Any, TokenBucket] = weakref.WeakKeyDictionary()


def bucket_for(dest: Any, *, rate: float, burst: int, clock: Clock | None = None) -> TokenBucket:
    """The one bucket of a destination client (created on first use, dropped with the client)."""
    bucket = _BUCKETS.get(dest)
    if bucket is None:
        bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
        _BUCKETS[dest] = bucket
    return bucket


class Backoff:
    """Capped exponential backoff with full jitter in [delay/2, delay]; ``reset`` after success."""

    def __init__(self, *, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self._n = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2**self._n))
        self._n = min(self._n + 1, 30)
        return delay * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self._n = 0

    @property
    def attempts(self) -> int:
        return self._n
