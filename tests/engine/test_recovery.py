"""The recovery point's rule (engine.recovery), on a fake clock.

A shard knew it was current at ``t`` once its source watch delivered everything up to the
source's resourceVersion of ``t`` and every change seen by then was written. Each test plays a
source, a watch and a queue over minutes of fake time and checks what the rule makes of them:
a quiet source stays within the bookmark interval, a stalled watch and unwritten changes make
the recovery point grow, and it comes back once they end.
"""

from __future__ import annotations

import asyncio
import time

from ray_syncer_testkit.clock import FakeClock

from ray_syncer.engine.recovery import Probe, RecoveryPoint

from .conftest import SECRET, Env, eventually, fast, running, spec_for, synced

PROBE_S = 1.0
BOOKMARK_S = 60.0


def _at_most(rp: RecoveryPoint, seconds: float) -> bool:
    value = rp.seconds()
    return value is not None and value <= seconds


class World:
    """A source whose resourceVersion moves on (other kinds change), a watch, a queue."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.rp = RecoveryPoint(self.clock)
        self.rv = 100
        self.oldest_unwritten: float | None = None
        self.worst = 0.0

    async def run(self, seconds: float, *, writes_per_s: int = 3, bookmarks: bool = True,
                  events: bool = False, stalled: bool = False) -> None:
        """Advance in probe steps: the source moves, the probe sees it, the watch follows."""
        steps = int(seconds / PROBE_S)
        for _ in range(steps):
            await self.clock.advance(PROBE_S)
            self.rv += writes_per_s
            self.rp.probed(Probe(self.rv, self.clock.monotonic(), self.clock.now()))
            now = self.clock.monotonic()
            if not stalled and (events or (bookmarks and now % BOOKMARK_S == 0)):
                self.rp.seen(str(self.rv))  # an event of this kind, or a bookmark
            self.rp.settle(self.oldest_unwritten)
            seconds_now = self.rp.seconds()
            if seconds_now is not None:
                self.worst = max(self.worst, seconds_now)


async def test_a_quiet_kind_stays_within_the_bookmark_interval_for_five_minutes() -> None:
    w = World()
    await w.run(300, events=False, bookmarks=True)  # the kind never changes; others do
    assert w.rp.current_at is not None
    assert w.worst <= BOOKMARK_S + PROBE_S, w.worst
    # And a source where nothing at all changes is current at every probe.
    still = World()
    await still.run(60, writes_per_s=0, bookmarks=False)
    assert still.worst <= PROBE_S


async def test_a_stalled_watch_makes_it_grow_and_it_recovers() -> None:
    w = World()
    await w.run(10, events=True)
    assert _at_most(w.rp, PROBE_S)
    await w.run(120, stalled=True)  # the connection stays open; nothing arrives, bookmarks too
    assert (w.rp.seconds() or 0) >= 119
    await w.run(2, events=True)
    assert _at_most(w.rp, PROBE_S)


async def test_changes_not_yet_written_hold_it_back() -> None:
    w = World()
    await w.run(5, events=True)
    w.oldest_unwritten = w.clock.monotonic()  # a change seen now cannot be written
    await w.run(30, events=True)
    assert (w.rp.seconds() or 0) >= 29
    w.oldest_unwritten = None  # written at last
    await w.run(1, events=True)
    assert _at_most(w.rp, PROBE_S)


async def test_nothing_is_claimed_before_the_first_list() -> None:
    w = World()
    await w.run(30, bookmarks=False, stalled=True)
    assert w.rp.current_at is None and w.rp.seconds() is None


async def test_a_shard_over_a_quiet_source_stays_within_the_bookmark_interval(env: Env) -> None:
    """The same, with a real shard and API servers: five fake minutes in which its kind
    (ConfigMaps) never changes while another (Secrets) changes every second, so only the
    watch's bookmarks (one a fake minute here) can tell the shard that it is still current."""
    clock = FakeClock()
    # Bookmarks every 50 ms of real time, but held back (a stall delivers nothing) except
    # when the test lets one through, once a fake minute.
    env.src.bookmark_interval = 0.05
    await env.ns("prod")
    await env.cm("prod", "quiet")
    worst = 0.0
    async with running(env, spec_for(), clock=clock) as shard:
        await synced(shard)
        env.src.faults.stall_watches(True)
        for second in range(1, 301):
            await env.put(env.sc, SECRET, {"metadata": {"name": "busy", "namespace": "prod"},
                                           "stringData": {"n": str(second)}})
            if second % int(BOOKMARK_S) == 0:
                await _one_bookmark(env)
            await clock.advance(PROBE_S)
            await asyncio.sleep(0.005)  # the probe's list and the shard's bookkeeping
            value = shard.health().recovery_point
            assert value is not None
            worst = max(worst, clock.now() - value)
    # Bounded by the bookmark interval (plus a probe step and the real time a step takes).
    assert worst <= BOOKMARK_S + 3 * PROBE_S, worst
    assert worst >= BOOKMARK_S - 3 * PROBE_S, worst  # the bookmarks are what bounds it


async def _one_bookmark(env: Env) -> None:
    env.src.faults.stall_watches(False)
    await asyncio.sleep(0.2)
    env.src.faults.stall_watches(True)


async def test_a_change_the_destination_rejects_holds_it_back(env: Env) -> None:
    """An object the destination refuses as invalid (422) is not written: the standby lacks
    that change, so the recovery point stays before it, however much else is written, until
    a later version of it is."""
    await env.ns("prod")
    await env.cm("prod", "fine")
    options = fast(rpo_probe_s=0.05)
    async with running(env, spec_for(), options=options) as shard:
        await synced(shard)
        # A create goes to the collection ("fine" exists already, so only "bad" is created).
        env.dst.faults.match = lambda method, path: (
            path.endswith("/bad") or (method == "POST" and path.endswith("/configmaps")))
        env.dst.faults.error_codes = [422]
        env.dst.faults.error_rate = 1.0
        rejected_at = time.time()
        await env.cm("prod", "bad", {"v": "1"})
        await eventually(lambda: shard.health().errors == 1)
        for i in range(10):  # the rest keeps flowing
            await env.cm("prod", "fine", {"v": str(i)})
            await asyncio.sleep(0.05)
        await eventually(lambda: shard.health().pending == 0)
        point = shard.health().recovery_point
        assert point is not None and point <= rejected_at, (point, rejected_at)
        env.dst.faults.error_rate = 0.0
        await env.cm("prod", "bad", {"v": "2"})  # a version the destination takes
        await eventually(lambda: (shard.health().recovery_point or 0) > rejected_at + 0.1)
        assert shard.health().errors == 0
