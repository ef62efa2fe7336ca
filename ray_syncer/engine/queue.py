"""KeyedQueue: the coalescing, bounded work queue between the watches and the applier.

Modelled on client-go's ``util/workqueue`` (dirty / processing sets) with a
value per key, so the newest state of an object rides with its key and no
older state is ever written after a newer one was seen.

Guarantees:

* **One pending entry per key.** ``put`` on a key that is already pending
  replaces its value (or merges it with ``merge(old, new)``): the newest state
  wins and the older one is counted as coalesced.
* **A key is never processed by two workers at once.** ``get_batch`` hands out
  a key and marks it processing until ``done(key)``.
* **No lost updates.** A ``put`` arriving while its key is processing is kept
  pending and becomes ready only after ``done(key)``.
* **Per-key exponential backoff.** ``backoff(key)`` returns the next delay
  (base * 2**failures, capped) and ``add_after(key, value, delay)`` makes the key
  ready only once that delay passed on the injected clock; ``forget(key)``
  resets the failure count after a success. A newer ``put`` during the delay
  replaces the value but keeps the delay (the destination asked us to wait).
* **Bounded.** ``put`` of a *new* key waits while ``bound`` keys are pending, so
  the watch reader slows down instead of memory growing; a key that is
  already pending never blocks (coalescing needs no room). ``add_after`` never
  blocks (a worker re-queueing must not deadlock against the reader).
* **FIFO** among ready keys: the key dirtied first is handed out first.
* ``shutdown()`` wakes every waiter; ``get_batch`` then returns ``[]`` and
  ``put`` returns without queueing.

Only pending keys hold a value; processed keys leave nothing behind except a
failure counter for keys that are backing off.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from ray_syncer.engine.clock import Clock, RealClock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeyedQueue(Generic[K, V]):
    def __init__(
        self,
        *,
        bound: int,
        clock: Clock | None = None,
        merge: Callable[[V, V], V] | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 60.0,
    ) -> None:
        self._bound = bound
        self._clock: Clock = clock or RealClock()
        self._merge = merge
        self._base = backoff_base_s
        self._max = backoff_max_s
        self._items: dict[K, V] = {}  # dirty: key -> newest value
        self._since: dict[K, float] = {}  # dirty key -> monotonic time it became dirty
        self._taken_since: dict[K, float] = {}  # processing key -> when its change was first seen
        self._ready: deque[K] = deque()
        self._processing: set[K] = set()
        self._delayed: dict[K, float] = {}  # key -> ready-at
        self._heap: list[tuple[float, int, K]] = []
        self._seq = 0
        self._failures: dict[K, int] = {}
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._shut = False
        self.coalesced = 0  # puts that replaced a pending value

    # -- producers ---------------------------------------------------------------

    async def put(self, key: K, value: V) -> None:
        while (
            not self._shut
            and key not in self._items
            and len(self._items) >= self._bound
        ):
            self._space.clear()
            await self._space.wait()
        self.put_nowait(key, value)

    def put_nowait(self, key: K, value: V) -> None:
        """Queue without waiting for room (for re-queues the engine itself makes)."""
        if self._shut:
            return
        if key in self._items:
            old = self._items[key]
            self._items[key] = self._merge(old, value) if self._merge else value
            self.coalesced += 1
            return
        self._items[key] = value
        self._since[key] = self._clock.monotonic()
        if key not in self._processing and key not in self._delayed:
            self._ready.append(key)
            self._wake.set()

    def add_after(self, key: K, value: V, delay: float) -> None:
        """Re-queue ``key`` to become ready after ``delay``; a newer pending value wins."""
        if self._shut:
            return
        if key in self._items:
            old = self._items[key]
            self._items[key] = self._merge(value, old) if self._merge else old
        else:
            self._items[key] = value
            # A retried change keeps its age: lag counts from when it was first seen.
            self._since[key] = self._taken_since.get(key, self._clock.monotonic())
        if delay <= 0:
            if key not in self._processing and key not in self._delayed and key not in self._ready:
                self._ready.append(key)
                self._wake.set()
            return
        if key in self._ready:
            self._ready.remove(key)
        at = self._clock.monotonic() + delay
        self._delayed[key] = at
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, key))
        self._wake.set()

    # -- backoff -----------------------------------------------------------------

    def backoff(self, key: K) -> float:
        """Count a failure of ``key`` and return how long to wait before the retry."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return float(min(self._max, self._base * (2**n)))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    # -- consumer ----------------------------------------------------------------

    async def get_batch(self, max_items: int) -> list[tuple[K, V]]:
        """Wait for at least one ready key; hand out up to ``max_items`` of them."""
        while True:
            if self._shut:
                return []
            self._promote()
            if self._ready:
                out: list[tuple[K, V]] = []
                while self._ready and len(out) < max_items:
                    key = self._ready.popleft()
                    value = self._items.pop(key)
                    since = self._since.pop(key, None)
                    if since is not None:
                        self._taken_since[key] = since
                    self._processing.add(key)
                    out.append((key, value))
                if not self._items:
                    # Dicts never shrink; after a burst, drop the empty high-water tables.
                    self._items, self._since = {}, {}
                self._space.set()
                return out
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            timeout = self._heap[0][0] - self._clock.monotonic()
            waiter = asyncio.ensure_future(self._wake.wait())
            sleeper = asyncio.ensure_future(self._clock.sleep(timeout))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()

    def done(self, key: K) -> None:
        """Mark ``key`` processed; a value that arrived meanwhile becomes ready now."""
        self._processing.discard(key)
        self._taken_since.pop(key, None)
        if not self._processing and self._taken_since:
            self._taken_since = {}
        if key in self._items and key not in self._delayed:
            self._ready.append(key)
            self._wake.set()

    def _promote(self) -> None:
        now = self._clock.monotonic()
        while self._heap and self._heap[0][0] <= now:
            at, _, key = heapq.heappop(self._heap)
            if self._delayed.get(key) != at:
                continue  # superseded entry
            del self._delayed[key]
            if key in self._items and key not in self._processing:
                self._ready.append(key)

    def shutdown(self) -> None:
        self._shut = True
        self._wake.set()
        self._space.set()

    # -- introspection -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def is_pending(self, key: K) -> bool:
        return key in self._items

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def pending_keys(self) -> list[K]:
        return list(self._items)

    def processing_keys(self) -> list[K]:
        return list(self._processing)

    @property
    def in_flight(self) -> int:
        return len(self._processing)

    @property
    def delayed(self) -> int:
        return len(self._delayed)

    def oldest_age(self) -> float:
        """Seconds since the oldest change still pending or being written was seen (0 if none)."""
        inf = float("inf")
        oldest = min(
            min(self._since.values(), default=inf), min(self._taken_since.values(), default=inf)
        )
        if oldest == inf:
            return 0.0
        return max(0.0, self._clock.monotonic() - oldest)
