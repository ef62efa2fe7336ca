"""Rate limits for destination writes: an adaptive write budget per destination, and Backoff.

Why adaptive: a fixed token bucket is either too low for a healthy apiserver
(it becomes the bottleneck of every initial sync) or too high for a struggling
one. ``WriteBudget`` is a token bucket whose rate follows what the destination
says, AIMD-style, like TCP's congestion control:

* it starts high (``start_rate``), so a healthy apiserver is limited only by the
  shards' bounded in-flight writes;
* it backs off multiplicatively, from the rate actually achieved, on the
  destination's signals: a 429 (API Priority and Fairness rejecting us, or
  max-inflight; the ``Retry-After`` also pauses every writer), a 5xx or a
  transport error, and write latency rising well above its recent baseline;
  at most once per ``decrease_interval_s``, so one burst of concurrent 429s
  counts once;
* it recovers additively (``increase_per_s`` more writes/s for every quiet
  second in which the budget was the limit);
* ``cap`` (``--dest-qps``) is an optional hard ceiling it never exceeds.

Every shard writing to one destination client shares one budget
(``budget_for``), so a syncer with many shards cannot exceed it. ``Backoff`` is
the capped exponential delay for whole-shard retries (discovery, list/watch
errors); per-key backoff lives in the KeyedQueue.
"""

from __future__ import annotations

import math
import random
import weakref
from dataclasses import dataclass
from typing import Any

from ray_syncer.engine.clock import Clock, RealClock

_EPSILON = 1e-9


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
            # Within a rounding error of a whole token is a token: waiting for the last
            # 1e-12 of one would spin on ever smaller sleeps.
            if self._tokens >= 1.0 - _EPSILON:
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            await self._clock.sleep(max((1.0 - self._tokens) / self.rate, 1e-6))

    def retune(self, *, rate: float, burst: int) -> None:
        """A new rate and burst from now on (tokens already saved beyond the burst are dropped)."""
        self._refill()
        self.rate, self.burst = rate, float(burst)
        self._tokens = min(self._tokens, self.burst)

    def ready(self) -> bool:
        """Whether ``acquire`` would return at once."""
        if self._clock.monotonic() < self._paused_until:
            return False
        self._refill()
        return self._tokens >= 1.0 - _EPSILON

    def pause(self, seconds: float) -> None:
        """Stop handing out tokens for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock.monotonic())


@dataclass(frozen=True)
class BudgetOptions:
    cap: float | None = None  # hard ceiling in writes/s (--dest-qps); None: adaptive only
    cap_burst: int | None = None  # burst at the cap (--dest-burst); default: one second's worth
    start_rate: float = 10_000.0  # "high": far above what one apiserver takes from one client
    floor: float = 5.0
    increase_per_s: float = 50.0
    throttle_factor: float = 0.5  # 429
    error_factor: float = 0.7  # 5xx, transport errors
    latency_factor: float = 0.85  # write latency well above its baseline
    latency_ratio: float = 4.0  # "well above": EWMA > ratio x baseline ...
    # ... and more than this over it. Generous: on a busy node our own CPU starvation also
    # slows answers, and backing off then only queues work without sparing the apiserver.
    latency_margin_s: float = 1.0
    decrease_interval_s: float = 1.0
    # A rate "achieved" over fewer writes than this says nothing about the load we put on the
    # destination (a host that just started, an idle one): back off from the budget instead.
    min_samples: int = 20


class WriteBudget:
    """The adaptive write rate of one destination (see the module docstring)."""

    def __init__(self, options: BudgetOptions | None = None, *, clock: Clock | None = None) -> None:
        self.options = o = options or BudgetOptions()
        self._clock: Clock = clock or RealClock()
        start = o.start_rate if o.cap is None else min(o.start_rate, o.cap)
        self._bucket = TokenBucket(rate=start, burst=self._burst(start), clock=self._clock)
        now = self._clock.monotonic()
        self._last_decrease = -math.inf  # the first signal always counts
        self._window_start, self._window_count = now, 0
        self.achieved = 0.0  # writes/s granted over the last full window
        self._achieved_samples = 0  # ... out of this many writes
        self._waited = False  # whether the budget made a writer wait in this window
        self._ewma: float | None = None
        self._baseline: float | None = None
        self.decreases = 0

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def _burst(self, rate: float) -> int:
        o = self.options
        if o.cap is not None and rate >= o.cap and o.cap_burst is not None:
            return o.cap_burst
        return max(1, int(rate))

    def _set_rate(self, rate: float) -> None:
        o = self.options
        rate = max(o.floor, rate if o.cap is None else min(rate, o.cap))
        self._bucket.retune(rate=rate, burst=self._burst(rate))

    def _tick(self) -> None:
        # Per-second accounting: achieved rate, and additive recovery after a quiet, binding second.
        now = self._clock.monotonic()
        elapsed = now - self._window_start
        if elapsed < 1.0:
            return
        self.achieved = self._window_count / elapsed
        self._achieved_samples = self._window_count
        if self._waited and now - self._last_decrease >= self.options.decrease_interval_s:
            self._set_rate(self.rate + self.options.increase_per_s * elapsed)
        self._window_start, self._window_count, self._waited = now, 0, False

    async def acquire(self) -> None:
        """Wait until a write may go (honouring any Retry-After pause), then take a token."""
        self._tick()
        if not self._bucket.ready():
            self._waited = True
        await self._bucket.acquire()
        self._window_count += 1

    def _decrease(self, factor: float) -> bool:
        now = self._clock.monotonic()
        if now - self._last_decrease < self.options.decrease_interval_s:
            return False  # one signal per interval: a burst of answers is one event
        # Back off from what actually went through (the rate may be far above it), when
        # enough went through to say so; otherwise from the budget itself.
        elapsed = now - self._window_start
        recent = self._window_count / elapsed if elapsed >= 0.1 else 0.0
        achieved = max(self.achieved, recent)
        samples = max(self._achieved_samples, self._window_count)
        base = min(self.rate, achieved) if samples >= self.options.min_samples else self.rate
        self._set_rate(base * factor)
        self._last_decrease = now
        self.decreases += 1
        return True

    def throttled(self, retry_after: float | None) -> None:
        """A 429 (or 503 with Retry-After): every writer pauses, and the rate halves."""
        self.pause(retry_after if retry_after else 1.0)
        self._decrease(self.options.throttle_factor)

    def failed(self) -> None:
        """A 5xx or a transport error on a write."""
        self._decrease(self.options.error_factor)

    def succeeded(self, latency_s: float) -> None:
        """A write answered in ``latency_s``; rising latency is the early sign of overload."""
        self._ewma = latency_s if self._ewma is None else 0.8 * self._ewma + 0.2 * latency_s
        # The baseline follows the fastest answers, and drifts up slowly (a slower cluster is fine).
        if self._baseline is None or latency_s < self._baseline:
            self._baseline = latency_s
        else:
            self._baseline += (latency_s - self._baseline) * 0.001
        o = self.options
        if self._ewma > max(self._baseline * o.latency_ratio, self._baseline + o.latency_margin_s):
            self._decrease(o.latency_factor)

    def pause(self, seconds: float) -> None:
        self._bucket.pause(seconds)

    @property
    def paused_for(self) -> float:
        return self._bucket.paused_for


_BUDGETS: weakref.WeakKeyDictionary[Any, WriteBudget] = weakref.WeakKeyDictionary()


def budget_for(dest: Any, options: BudgetOptions, *, clock: Clock | None = None) -> WriteBudget:
    """The one budget of a destination client (created on first use, dropped with the client)."""
    budget = _BUDGETS.get(dest)
    if budget is None:
        budget = WriteBudget(options, clock=clock)
        _BUDGETS[dest] = budget
    return budget


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

