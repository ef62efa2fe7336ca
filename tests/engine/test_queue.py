"""KeyedQueue: coalescing, exclusivity, no lost updates, backoff, bounds."""

from __future__ import annotations

import asyncio

from ray_syncer_testkit.clock import FakeClock

from ray_syncer.engine.queue import KeyedQueue


async def test_newest_value_wins_and_counts_coalesced() -> None:
    q: KeyedQueue[str, int] = KeyedQueue(bound=10)
    await q.put("a", 1)
    await q.put("b", 1)
    await q.put("a", 2)
    assert len(q) == 2
    assert q.coalesced == 1
    assert await q.get_batch(10) == [("a", 2), ("b", 1)]


async def test_key_is_never_handed_out_twice_and_update_during_processing_is_kept() -> None:
    q: KeyedQueue[str, int] = KeyedQueue(bound=10)
    await q.put("a", 1)
    assert await q.get_batch(10) == [("a", 1)]
    await q.put("a", 2)  # arrives while "a" is processing
    await q.put("b", 1)
    assert await q.get_batch(10) == [("b", 1)]  # "a" is not handed out again yet
    q.done("b")
    q.done("a")
    assert await q.get_batch(10) == [("a", 2)]


async def test_batch_is_limited_and_fifo() -> None:
    q: KeyedQueue[int, int] = KeyedQueue(bound=100)
    for i in range(7):
        await q.put(i, i)
    assert [k for k, _ in await q.get_batch(3)] == [0, 1, 2]
    assert [k for k, _ in await q.get_batch(10)] == [3, 4, 5, 6]


async def test_put_waits_when_full_but_pending_key_never_blocks() -> None:
    q: KeyedQueue[str, int] = KeyedQueue(bound=2)
    await q.put("a", 1)
    await q.put("b", 1)
    await asyncio.wait_for(q.put("a", 5), 1)  # coalesces, no room needed
    blocked = asyncio.ensure_future(q.put("c", 1))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    await q.get_batch(1)
    await asyncio.wait_for(blocked, 1)
    assert q.is_pending("c")


async def test_backoff_is_exponential_capped_and_forgotten() -> None:
    q: KeyedQueue[str, int] = KeyedQueue(bound=2, backoff_base_s=1, backoff_max_s=5)
    assert [q.backoff("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    q.forget("k")
    assert q.backoff("k") == 1


async def test_add_after_waits_on_the_clock_and_newer_put_keeps_delay() -> None:
    clock = FakeClock()
    q: KeyedQueue[str, int] = KeyedQueue(bound=10, clock=clock)
    await q.put("a", 1)
    [(key, _)] = await q.get_batch(10)
    q.add_after(key, 1, 5.0)
    q.done(key)
    await q.put("a", 2)  # newer state during the delay
    getter = asyncio.ensure_future(q.get_batch(10))
    await asyncio.sleep(0.01)
    assert not getter.done()
    await clock.advance(4.9)
    assert not getter.done()
    await clock.advance(0.2)
    assert await asyncio.wait_for(getter, 1) == [("a", 2)]


async def test_retry_value_does_not_override_newer_pending_value() -> None:
    q: KeyedQueue[str, int] = KeyedQueue(bound=10)
    await q.put("a", 1)
    await q.get_batch(1)
    await q.put("a", 2)
    q.add_after("a", 1, 0)
    q.done("a")
    assert await q.get_batch(1) == [("a", 2)]


async def test_merge_function_combines_values() -> None:
    q: KeyedQueue[str, set[int]] = KeyedQueue(bound=10, merge=lambda old, new: old | new)
    await q.put("a", {1})
    await q.put("a", {2})
    assert await q.get_batch(1) == [("a", {1, 2})]


async def test_shutdown_wakes_waiters() -> None:
    q: KeyedQueue[str, int] = KeyedQueue(bound=1)
    getter = asyncio.ensure_future(q.get_batch(1))
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(getter, 1) == []


async def test_oldest_age_tracks_lag() -> None:
    clock = FakeClock()
    q: KeyedQueue[str, int] = KeyedQueue(bound=10, clock=clock)
    assert q.oldest_age() == 0
    await q.put("a", 1)
    await clock.advance(3)
    await q.put("b", 1)
    assert q.oldest_age() == 3
    [(key, value)] = await q.get_batch(1)
    assert q.oldest_age() == 3  # being written still counts
    await clock.advance(2)
    q.add_after(key, value, 1.0)  # a retry keeps the change's age
    q.done(key)
    assert q.oldest_age() == 5
    await clock.advance(1)
    assert sorted(k for k, _ in await q.get_batch(10)) == ["a", "b"]
    q.done("b")
    q.done("a")
    assert q.oldest_age() == 0
