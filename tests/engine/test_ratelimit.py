"""TokenBucket, Retry-After pauses and Backoff, on a fake clock."""

from __future__ import annotations

import asyncio
import random

import pytest
from ray_syncer_testkit.clock import FakeClock

from ray_syncer.engine.ratelimit import Backoff, BudgetOptions, TokenBucket, WriteBudget, budget_for


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


def test_backoff_grows_capped_with_jitter_and_resets() -> None:
    b = Backoff(base=1, cap=8, rng=random.Random(1))
    delays = [b.next() for _ in range(6)]
    for d, nominal in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert nominal / 2 <= d <= nominal
    b.reset()
    assert b.next() <= 1


# -- WriteBudget: the adaptive write rate of one destination ------------------------------------


async def _demand(budget: WriteBudget, clock: FakeClock, seconds: float, *, step: float = 0.01) -> int:
    """Writers that always want to write, for ``seconds`` of fake time: how many went."""
    granted = 0
    stop = False

    async def writer() -> None:
        nonlocal granted
        while not stop:
            await budget.acquire()
            granted += 1

    tasks = [asyncio.ensure_future(writer()) for _ in range(4)]
    t = 0.0
    while t < seconds:
        await clock.advance(step)
        t += step
    stop = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return granted


async def test_budget_never_exceeds_its_cap() -> None:
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(cap=50, cap_burst=10, increase_per_s=1000), clock=clock)
    granted = await _demand(budget, clock, 10.0)
    assert budget.rate <= 50
    assert 450 <= granted <= 50 * 10 + 10  # the cap over 10 s, plus one burst


async def test_budget_backs_off_under_429s_from_what_was_achieved() -> None:
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(start_rate=200, increase_per_s=0), clock=clock)
    await _demand(budget, clock, 3.05)  # the first second spends the burst too
    assert budget.achieved == pytest.approx(200, rel=0.1)
    budget.throttled(retry_after=2.0)
    assert budget.rate == pytest.approx(100, rel=0.1)
    # Every writer waits out the Retry-After.
    granted = await _demand(budget, clock, 1.9)
    assert granted == 0
    # Each further interval of 429s halves it again, down to the floor and no further.
    for _ in range(12):
        await clock.advance(1.0)
        budget.throttled(retry_after=0.1)
    assert budget.rate == budget.options.floor


async def test_a_burst_of_concurrent_429s_counts_once() -> None:
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(start_rate=400), clock=clock)
    await clock.advance(1.0)
    for _ in range(32):  # 32 writes in flight all answered 429 at once
        budget.throttled(retry_after=1.0)
    assert budget.rate == pytest.approx(200) and budget.decreases == 1


async def test_budget_recovers_additively_while_it_is_the_limit() -> None:
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(start_rate=20, increase_per_s=10), clock=clock)
    budget.failed()  # a 5xx: down to 70% (14/s)
    low = budget.rate
    assert low == pytest.approx(14)
    await _demand(budget, clock, 5.0)
    # About 10 more writes/s per second of demand above the budget, not a jump back.
    assert low + 30 <= budget.rate <= low + 55


async def test_budget_does_not_grow_while_it_is_not_the_limit() -> None:
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(start_rate=100, increase_per_s=10), clock=clock)
    for _ in range(50):  # 10 writes/s, far below the budget
        await budget.acquire()
        await clock.advance(0.1)
    assert budget.rate == 100


async def test_budget_backs_off_when_latency_rises_well_above_its_baseline() -> None:
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(start_rate=500, increase_per_s=0), clock=clock)
    for _ in range(100):
        budget.succeeded(0.005)
    await clock.advance(1.0)
    assert budget.rate == 500 and budget.decreases == 0
    for _ in range(20):  # the apiserver now takes 1.5 s per write
        budget.succeeded(1.5)
    assert budget.decreases == 1 and budget.rate < 500


def test_budget_is_shared_per_destination() -> None:
    class Dest:
        pass

    a, b = Dest(), Dest()
    opts = BudgetOptions()
    assert budget_for(a, opts) is budget_for(a, BudgetOptions(cap=5))
    assert budget_for(a, opts) is not budget_for(b, opts)


async def test_a_few_slow_writes_of_a_fresh_host_do_not_collapse_the_budget() -> None:
    # A host restarted on a busy node: its first handful of writes is slow. What it "achieved"
    # in that second (3 writes) says nothing about the destination's capacity.
    clock = FakeClock()
    budget = WriteBudget(BudgetOptions(start_rate=400, increase_per_s=0), clock=clock)
    for _ in range(3):
        await budget.acquire()
    await clock.advance(1.0)
    for _ in range(10):
        budget.succeeded(0.001)
    for _ in range(20):
        budget.succeeded(2.0)
    assert budget.decreases == 1
    assert budget.rate == pytest.approx(400 * 0.85)  # from the budget, not from 3/s
