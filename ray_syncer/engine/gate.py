"""Write gate: a check every destination write must pass (split-brain fencing lives behind it).

Why it exists: the operator decides whether a syncer may write (fencing, in
``ray_syncer.fencing``) only every probe interval, so a shard that kept running
through a partition could write into a destination that was promoted
meanwhile. The engine therefore asks an injected ``WriteGate`` right before
each write (``Applier._take``) and before handing out a batch (``Shard``).

The engine knows nothing of fencing: a gate answers ``None`` (writes allowed)
or a refusal message. ``CachedGate`` is the gate the operator's host builds,
one per syncer in a process, shared by that syncer's shards:

* an answer is cached for ``ttl_s`` (default 2 s), so the check costs one
  destination read per syncer per TTL while writes flow, and none when idle;
* ``invalidate()`` is called by the shard whenever a destination request fails
  with a transport error or a 5xx (``is_outage``): the first write after the
  destination comes back is always preceded by a fresh check;
* the check failing (destination unreachable) is a refusal that is not
  cached: fail closed, and ask again next time;
* concurrent callers share one check in flight (single flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from ray_syncer.engine.clock import Clock, RealClock
from ray_syncer.kube.client import ApiError, TransportError

log = logging.getLogger(__name__)

GATE_TTL_S = 2.0


class WriteGate(Protocol):
    async def __call__(self) -> str | None:
        """None when writes are allowed now, else why not (a message a person can act on)."""

    def invalidate(self) -> None:
        """Forget the cached answer: the next call checks afresh."""


class WriteRefused(Exception):
    """Raised by the applier instead of writing while the gate is closed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_outage(exc: BaseException) -> bool:
    """A failure that means the destination (or the way to it) was down, not a refusal."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and exc.status >= 500


Check = Callable[[], Awaitable[str | None]]


class CachedGate:
    """A ``WriteGate`` over an async ``check``: TTL cache, invalidation, fail closed."""

    def __init__(self, check: Check, *, ttl_s: float = GATE_TTL_S, clock: Clock | None = None,
                 name: str = "write gate") -> None:
        self._check = check
        self.ttl_s = ttl_s
        self._clock: Clock = clock or RealClock()
        self._name = name
        self._answer: str | None = None
        self._at: float | None = None  # monotonic time of the cached answer; None: nothing cached
        self._generation = 0  # bumped by invalidate(): an answer begun before it is not cached
        self._inflight: asyncio.Future[tuple[int, str | None, bool]] | None = None
        self.checks = 0  # how many real checks were made (tests and metrics read it)

    def invalidate(self) -> None:
        self._generation += 1
        self._at = None

    async def __call__(self) -> str | None:
        for _ in range(3):
            if self._at is not None and self._clock.monotonic() - self._at < self.ttl_s:
                return self._answer
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.ensure_future(self._run(self._generation))
            generation, answer, ok = await asyncio.shield(self._inflight)
            if not ok or generation == self._generation:
                return answer
            # Invalidated while the check ran (the destination failed meanwhile): ask again.
        return f"{self._name}: the destination keeps failing while its safety check runs"

    async def _run(self, generation: int) -> tuple[int, str | None, bool]:
        self.checks += 1
        try:
            answer = await self._check()
        except Exception as exc:
            # Cannot tell whether writing is safe: refuse, and do not remember the refusal.
            if not isinstance(exc, ApiError | TransportError):
                log.exception("%s failed", self._name)  # a bug must not open the gate
            what = f"{exc.status} {exc.reason}" if isinstance(exc, ApiError) else type(exc).__name__
            return generation, f"{self._name}: cannot check the destination ({what}); writes wait", False
        if generation == self._generation:
            self._answer, self._at = answer, self._clock.monotonic()
        return generation, answer, True

    async def close(self) -> None:
        """Cancel a check still in flight (the last shard using this gate stopped)."""
        task = self._inflight
        self._inflight = None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
