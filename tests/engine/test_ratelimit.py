"""TokenBucket, Retry-After pauses and Backoff, on a fake clock."""

from __future__ import annotations

import asyncio
import random

from ray_syncer.engine.clock import FakeClock
from ray_syncer.engine.ratelimit import Backoff, TokenBucket, bucket_for


async def test_bucket_allows_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    for _ in range(3):
        await asyncio.wait_for(bucket.acquire(), 1)
    waiting = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    await clock.advance(0.1)
    await asyncio.wait_for(waiting, 1)


async def test_pause_blocks_until_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=100, clock=clock)
    bucket.pause(2.0)
    waiting = asyncio.ensure_future(bucket.acquire())
    await clock.advance(1.9)
    assert not waiting.done()
    await clock.advance(0.2)
    await asyncio.wait_for(waiting, 1)


def test_bucket_is_shared_per_destination() -> None:
    class Dest:
        pass

    a, b = Dest(), Dest()
    assert bucket_for(a, rate=1, burst=1) is bucket_for(a, rate=5, burst=5)
    assert bucket_for(a, rate=1, burst=1) is not bucket_for(b, rate=1, burst=1)


def test_backoff_grows_capped_with_jitter_and_resets() -> None:
    b = Backoff(base=1, cap=8, rng=random.Random(1))
    delays = [b.next() for _ in range(6)]
    for d, nominal in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert nominal / 2 <= d <= nominal
    b.reset()
    assert b.next() <= 1
