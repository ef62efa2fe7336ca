"""Behaviours 11 and 12: health and metrics report what happened; stop is clean."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ray_syncer_testkit.clock import FakeClock

from ray_syncer.engine.shard import Shard
from ray_syncer.engine.spec import ShardState
from ray_syncer.metrics import REGISTRY, ShardMetrics

from .conftest import CM, Env, eventually, fast, running, spec_for, synced


def _value(m: ShardMetrics, name: str, **labels: str) -> float:
    got = REGISTRY.get_sample_value(name, {"syncer": m.syncer, "shard": m.shard, **labels})
    return got or 0.0


async def test_health_and_metrics_report_the_work(env: Env) -> None:
    clock = FakeClock()
    await env.ns("prod")
    await env.cm("prod", "a")
    await env.cm("prod", "taken", client=env.dc)
    await env.cm("prod", "taken")
    async with running(env, spec_for(), clock=clock) as shard:
        await synced(shard)
        m = shard._metrics
        await env.cm("prod", "b")
        await env.delete(env.sc, CM, "prod", "a")
        await eventually(lambda: _value(m, "krmsyncer_deletes_total", result="deleted") == 1)
        await synced(shard)
        synced_at = clock.now()
        await clock.advance(1.0)  # the gauge refresh tick
        h = shard.health()
        assert h.state == ShardState.SYNCING and h.synced
        assert h.objects == 1 and h.pending == 0 and h.in_flight == 0
        assert h.conflicts == 1 and h.conflict_names == ["prod/taken"]
        assert h.watch_state == "watching" and h.last_sync_time == synced_at
        assert h.writes == 3  # create a, create b, delete a
        assert _value(m, "krmsyncer_applies_total", result="created") == 2
        assert _value(m, "krmsyncer_applies_total", result="conflict") == 1
        assert _value(m, "krmsyncer_events_total", type="ADDED") == 1
        assert _value(m, "krmsyncer_events_total", type="DELETED") == 1
        assert _value(m, "krmsyncer_relists_total") == 1
        assert _value(m, "krmsyncer_objects") == 1
        assert _value(m, "krmsyncer_conflicts") == 1
        assert _value(m, "krmsyncer_sync_latency_seconds_count") >= 1
        # Lag: the age of the oldest pending change.
        env.dst.faults.outage(True)
        await env.cm("prod", "c")
        await eventually(lambda: shard.health().errors == 1)
        await clock.advance(5)
        assert shard.health().lag_seconds >= 5
        assert not shard.health().synced
        env.dst.faults.outage(False)
        await clock.advance(5)
        await eventually(lambda: shard.health().errors == 0)
        assert shard.health().lag_seconds == 0


async def test_stop_is_clean_and_silent_afterwards(env: Env) -> None:
    await env.ns("prod")
    for i in range(10):
        await env.cm("prod", f"c{i}")
    env.dst.faults.latency = 0.2
    env.dst.faults.match = lambda method, path: method in ("POST", "PATCH")
    env.src.bookmark_interval = env.dst.bookmark_interval = 0.05
    metrics = ShardMetrics("ops/dr", "stop-test")
    shard = Shard(spec_for(), source=env.sc, dest=env.dc, options=fast(max_in_flight=4),
                  metrics=metrics)
    task = asyncio.ensure_future(shard.run())
    await eventually(lambda: shard.health().in_flight > 0)
    assert len(env.src.store.watchers()) == 1 and len(env.dst.store.watchers()) == 1
    t0 = time.monotonic()
    await shard.stop()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - t0 < 2.5  # in-flight writes finished, queued ones abandoned
    assert shard.health().state == ShardState.STOPPED
    assert shard.health().in_flight == 0
    # Its watches are closed: the servers notice at their next bookmark write.
    await eventually(lambda: not env.src.store.watchers() and not env.dst.store.watchers(),
                     timeout=2, message="watch streams left open after stop")
    count = len([r for r in env.dst.request_log if r.method in ("POST", "PATCH")])
    await env.cm("prod", "after-stop")
    await asyncio.sleep(0.3)
    assert len([r for r in env.dst.request_log if r.method in ("POST", "PATCH")]) == count
    # Clients it does not own stay open and usable.
    assert (await env.items(env.dc, CM, "prod")) is not None
    metrics.remove()


async def test_cancelling_run_also_stops_cleanly(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "a")
    metrics = ShardMetrics("ops/dr", "cancel-test")
    shard = Shard(spec_for(), source=env.sc, dest=env.dc, options=fast(), metrics=metrics)
    task = asyncio.ensure_future(shard.run())
    await synced(shard)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert shard.health().state == ShardState.STOPPED
    metrics.remove()
