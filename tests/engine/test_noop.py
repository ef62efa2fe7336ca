"""Behaviour 6: no-op is free: a restart or a resync over unchanged objects makes zero writes."""

from __future__ import annotations

import asyncio

from .conftest import CM, Env, eventually, running, spec_for, synced

WRITES = ("PATCH", "PUT", "POST", "DELETE")


async def _create_many(env: Env, n: int) -> None:
    await env.ns("bulk")
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            await env.cm("bulk", f"c{i:04d}", {"i": str(i)})

    await asyncio.gather(*(one(i) for i in range(n)))


async def test_restart_over_1000_unchanged_objects_makes_zero_writes(env: Env) -> None:
    await _create_many(env, 1000)
    async with running(env, spec_for()) as shard:
        await synced(shard, timeout=30)
        assert shard.health().objects == 1000
    env.dst.clear_log()
    async with running(env, spec_for()) as shard:
        await synced(shard, timeout=30)
        assert shard.health().objects == 1000
        # Resync on top of the restart: still nothing to write.
        shard.resync()
        await eventually(lambda: _lists(env) >= 2)
        await synced(shard)
    writes = [r for r in env.dst.request_log if r.method in WRITES]
    assert writes == []
    # And no per-object reads either: the destination list seeded what it holds.
    per_object = [r for r in env.dst.request_log
                  if r.method == "GET" and r.path.startswith("/api/v1/namespaces/bulk/configmaps/")]
    assert per_object == []
    assert len(await env.items(env.dc, CM, "bulk")) == 1000


def _lists(env: Env) -> int:
    return len([r for r in env.dst.request_log if r.method == "GET"
                and r.path.endswith("/configmaps") and r.query.get("watch") != "true"])


async def test_content_hash_annotation_is_trusted_after_restart(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "a", {"v": "1"})
    async with running(env, spec_for()) as shard:
        await synced(shard)
    # Changed while down: exactly that object is written on restart.
    await env.cm("prod", "a", {"v": "2"})
    await env.cm("prod", "b", {"v": "1"})
    env.dst.clear_log()
    async with running(env, spec_for()) as shard:
        await synced(shard)
    writes = sorted((r.method, r.path.rsplit("/", 1)[-1], r.content_type)
                    for r in env.dst.request_log if r.method in WRITES)
    # a: one apply; b: one create.
    assert writes == [("PATCH", "a", "application/apply-patch+yaml"),
                      ("POST", "configmaps", "application/json")]
