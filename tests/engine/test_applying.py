"""Behaviours 3 and 5: coalescing, batched bounded writes, 429/Retry-After, 5xx retry, 4xx terminal."""

from __future__ import annotations

import asyncio

from ray_syncer_testkit.clock import FakeClock

from .conftest import CM, Env, eventually, fast, running, spec_for, synced

APPLY = "application/apply-patch+yaml"


def _patches(env: Env, name: str | None = None) -> list:  # type: ignore[type-arg]
    """The server-side applies (not creates, not the claims of created fields)."""
    return [r for r in env.dst.request_log
            if r.method == "PATCH" and r.content_type == APPLY
            and r.query.get("fieldManager") == "krm-syncer"
            and (name is None or r.path.endswith(f"/{name}"))]


async def test_writes_are_concurrent_but_bounded(env: Env) -> None:
    await env.ns("prod")
    async with running(env, spec_for(), options=fast(max_in_flight=4, batch_size=10)) as shard:
        await synced(shard)
        env.dst.faults.latency = 0.05
        env.dst.faults.match = lambda method, path: method == "POST"  # 24 creates
        for i in range(24):
            await env.cm("prod", f"c{i}")
        peak = 0

        async def watch_peak() -> None:
            nonlocal peak
            while True:
                peak = max(peak, shard.health().in_flight)
                await asyncio.sleep(0.005)

        sampler = asyncio.ensure_future(watch_peak())
        await eventually(lambda: _count(env, 24), timeout=10)
        sampler.cancel()
        assert 1 < peak <= 4
        creates = [r for r in env.dst.request_log if r.method == "POST" and "/configmaps" in r.path]
        assert len(creates) == 24 and all(r.query.get("fieldManager") == "krm-syncer" for r in creates)
        # Then updates are server-side applies, forced (the syncer owns its copies' fields).
        env.dst.faults.reset()
        await env.cm("prod", "c1", {"k": "v", "more": "1"})
        await eventually(lambda: _data(env, "prod/c1", {"k": "v", "more": "1"}))
        assert [r.query.get("force") for r in _patches(env, "c1")] == ["true"]
        # A removal (key k) that the create's field ownership would keep: the apply's answer
        # shows it, the fields are handed to the apply manager, and the apply repeated.
        await env.cm("prod", "c0", {"v": "2"})
        await eventually(lambda: _data(env, "prod/c0", {"v": "2"}))
        assert [(r.method, r.content_type) for r in env.dst.request_log
                if r.path.endswith("/c0") and r.method == "PATCH"] == [
            ("PATCH", APPLY), ("PATCH", "application/json-patch+json"), ("PATCH", APPLY)]


async def test_burst_of_updates_to_one_object_is_coalesced(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "hot", {"i": "0"})
    async with running(env, spec_for()) as shard:
        await synced(shard)
        env.dst.clear_log()
        env.dst.faults.latency = 0.1
        for i in range(1, 31):
            await env.cm("prod", "hot", {"i": str(i)})
        await eventually(lambda: _data(env, "prod/hot", {"i": "30"}), timeout=10)
        await synced(shard)
        assert len(_patches(env, "hot")) < 15  # 30 source versions, far fewer writes


async def test_429_retry_after_is_honoured(env: Env) -> None:
    clock = FakeClock()
    await env.ns("prod")
    await env.cm("prod", "c", {"v": "1"})
    async with running(env, spec_for(), clock=clock) as shard:
        await synced(shard)
        faults = env.dst.faults
        faults.error_rate, faults.error_codes, faults.retry_after = 1.0, [429], 7
        faults.match = lambda method, path: method == "PATCH"
        env.dst.clear_log()
        await env.cm("prod", "c", {"v": "2"})
        await eventually(lambda: len(_all_patches(env)) == 1)
        faults.reset()
        await asyncio.sleep(0.2)
        await clock.advance(6.5)
        await asyncio.sleep(0.2)
        assert len(_all_patches(env)) == 1  # nothing before Retry-After elapsed
        assert shard.health().errors == 1 and "429" in shard.health().last_error
        await clock.advance(1.0)
        await eventually(lambda: _data(env, "prod/c", {"v": "2"}))
        assert [(r.status, r.content_type) for r in _all_patches(env)] == [(429, APPLY), (200, APPLY)]
        assert any(s >= 6.4 for s in clock.sleeps)
        await eventually(lambda: shard.health().errors == 0)


async def test_5xx_and_transport_errors_are_retried_until_converged(env: Env) -> None:
    await env.ns("prod")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        faults = env.dst.faults
        # (429/503 carry Retry-After, which pauses every writer: covered on its own above.)
        faults.error_rate, faults.error_codes = 0.5, [500, 502, 504]
        faults.match = lambda method, path: method == "PATCH"
        for i in range(20):
            await env.cm("prod", f"c{i}", {"v": "1"})
        await eventually(lambda: _count(env, 20), timeout=15)
        faults.reset()
        await synced(shard)
        assert shard.health().errors == 0


async def test_invalid_is_terminal_for_that_version_and_reported(env: Env) -> None:
    await env.ns("prod")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        faults = env.dst.faults
        faults.error_rate, faults.error_codes = 1.0, [422]
        faults.match = lambda method, path: method == "POST" or path.endswith("/bad")
        env.dst.clear_log()
        await env.cm("prod", "bad", {"v": "1"})
        await eventually(lambda: shard.health().errors == 1)
        assert "prod/bad" in shard.health().last_error
        await asyncio.sleep(0.3)
        creates = [r for r in env.dst.request_log if r.method == "POST"]
        assert len(creates) == 1  # not retried in a loop
        # A new source version is tried again.
        faults.reset()
        await env.cm("prod", "bad", {"v": "2"})
        await eventually(lambda: _data(env, "prod/bad", {"v": "2"}))
        await synced(shard)


def _all_patches(env: Env, name: str | None = None) -> list:  # type: ignore[type-arg]
    return [r for r in env.dst.request_log if r.method == "PATCH"
            and r.query.get("fieldManager") == "krm-syncer"
            and (name is None or r.path.endswith(f"/{name}"))]


async def _count(env: Env, n: int) -> bool:
    return len(await env.items(env.dc, CM, "prod")) == n


async def _data(env: Env, key: str, data: dict[str, str]) -> bool:
    got = (await env.items(env.dc, CM)).get(key)
    return got is not None and got.get("data") == data
