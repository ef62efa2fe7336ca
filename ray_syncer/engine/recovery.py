"""The recovery point: how old the standby's view of the source may be, at most (the RPO).

Why it exists: the lag of pending changes cannot see a watch that stopped
delivering, a shard that is not running, or a destination that refuses writes
since before the last change; DR users need an upper bound that does. A shard
*knows it was current* at time ``t`` when both hold:

1. the source was at resourceVersion ``R`` at ``t`` (a ``limit=1`` list of the
   shard's kind, sent at ``t``: a consistent read, so ``R`` is at least every
   change committed before ``t``), and the shard's source watch has since
   delivered everything up to ``R`` (an event, a bookmark or a complete list at
   ``R`` or later: a watch delivers in resourceVersion order);
2. every change the shard had seen by then is written: the oldest change still
   queued or being written was seen after that.

The recovery point is then ``now - t`` for the latest such ``t``. A watch that
stalls with its connection open never passes ``R``, a destination that refuses
writes keeps old changes queued, a shard that is not running reports nothing
(the operator ages its last known point): each makes it grow. A quiet source
does not: when nothing changed anywhere ``R`` is already passed; when other
kinds changed, the watch passes ``R`` at its next bookmark (kube-apiserver sends
one about every minute), so a quiet kind's recovery point stays under that.

The probe is shared: one per source client and kind in a process
(:func:`probe_for`), at most every ``interval_s``, whatever number of shards ask.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray_syncer.engine.clock import Clock
from ray_syncer.engine.holdings import rv_int
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.resources import ResourceInfo


@dataclass(frozen=True)
class Probe:
    """The source's resourceVersion, as of a moment (the request was sent at ``mono``)."""

    rv: int
    mono: float  # monotonic
    wall: float  # unix time


class RevisionProbe:
    """``limit=1`` lists of one kind, shared by every shard of it on one client (see above)."""

    def __init__(
        self, client: KubeClient, res: ResourceInfo, *, namespace: str | None,
        label_selector: str | None, clock: Clock, interval_s: float,
    ) -> None:
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.clock = clock
        self.interval_s = interval_s
        self._last: Probe | None = None
        self._inflight: asyncio.Task[Probe | None] | None = None

    async def current(self) -> Probe | None:
        """A probe no older than ``interval_s`` (one request for all callers); None on error."""
        last = self._last
        if last is not None and self.clock.monotonic() - last.mono < self.interval_s:
            return last
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._inflight)

    async def _probe(self) -> Probe | None:
        mono, wall = self.clock.monotonic(), self.clock.now()
        try:
            page = await self.client.list_page(
                self.res, namespace=self.namespace, label_selector=self.label_selector, limit=1
            )
        except Exception:  # the shard's own watch reports the cluster's trouble
            return None
        rv = rv_int((page.get("metadata") or {}).get("resourceVersion") or "")
        if rv is None:
            return None
        self._last = Probe(rv, mono, wall)
        return self._last


_PROBES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], RevisionProbe]] = (
    weakref.WeakKeyDictionary()
)


def probe_for(
    client: KubeClient, res: ResourceInfo, *, namespace: str | None, label_selector: str | None,
    clock: Clock, interval_s: float,
) -> RevisionProbe:
    """The probe of ``res`` on ``client`` in this process (the first shard to ask sets its
    scope: a kind's resourceVersion is the same whatever namespace it is listed in)."""
    probes = _PROBES.setdefault(client, {})
    key = (res.group, res.plural)
    probe = probes.get(key)
    if probe is None:
        probe = RevisionProbe(client, res, namespace=namespace, label_selector=label_selector,
                              clock=clock, interval_s=interval_s)
        probes[key] = probe
    return probe


class RecoveryPoint:
    """One shard's recovery point (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.current_at: float | None = None  # unix time the shard last knew it was current
        self._seen: int | None = None  # the source watch delivered everything up to this rv
        # Probes not yet confirmed: (probe, monotonic time the watch passed it, or None).
        self._open: deque[tuple[Probe, float | None]] = deque(maxlen=64)

    def probed(self, probe: Probe) -> None:
        if self._open and self._open[-1][0] == probe:
            return
        self._open.append((probe, None))

    def seen(self, rv: str) -> None:
        """The source watch delivered everything up to ``rv`` (an event, a bookmark, a list)."""
        n = rv_int(rv)
        if n is None or (self._seen is not None and n <= self._seen):
            return
        self._seen = n
        now = self.clock.monotonic()
        self._open = deque(((p, passed if passed is not None or p.rv > n else now)
                            for p, passed in self._open), maxlen=self._open.maxlen)

    def settle(self, oldest_unwritten_mono: float | None) -> None:
        """Confirm the probes whose changes are all written (``oldest_unwritten_mono``: when
        the oldest change still queued or being written was seen; None when there is none)."""
        while self._open:
            probe, passed = self._open[0]
            if passed is None:
                return
            if oldest_unwritten_mono is not None and oldest_unwritten_mono <= passed:
                return
            self._open.popleft()
            self.current_at = max(self.current_at or 0.0, probe.wall)

    async def follow(
        self, probe: RevisionProbe, oldest_unwritten: Callable[[], float | None], *,
        every_s: float,
    ) -> None:
        """Probe the source and confirm what is written, every ``every_s``, until cancelled."""
        while True:
            found = await probe.current()
            if found is not None:
                self.probed(found)
            self.settle(oldest_unwritten())
            await self.clock.sleep(every_s)

    def seconds(self) -> float | None:
        """Now minus the last time the shard knew it was current (None: not yet once)."""
        if self.current_at is None:
            return None
        return max(0.0, self.clock.now() - self.current_at)
