"""Behaviour 9: drift and foreign deletes of our copies are corrected; resync is a backstop."""

from __future__ import annotations

import asyncio

from ray_syncer.engine.transform import MANAGED_BY_LABEL

from .conftest import CM, Env, eventually, fast, running, spec_for, synced


async def test_modified_copy_is_restored(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "c", {"want": "1"})
    async with running(env, spec_for()) as shard:
        await synced(shard)
        # Someone edits our copy in the destination (a different field manager).
        await env.dc.patch(CM, namespace="prod", name="c", body={"data": {"want": "hacked"}})
        await eventually(lambda: _data(env, "prod/c", {"want": "1"}), timeout=5)


async def test_deleted_copy_is_restored(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "c", {"want": "1"})
    async with running(env, spec_for()) as shard:
        await synced(shard)
        await env.delete(env.dc, CM, "prod", "c")
        await eventually(lambda: _data(env, "prod/c", {"want": "1"}), timeout=5)


async def test_unrelated_change_to_copy_costs_no_write(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "c", {"want": "1"})
    async with running(env, spec_for()) as shard:
        await synced(shard)
        env.dst.clear_log()
        # Another controller adds its own label: our fields are intact, nothing to do.
        await env.dc.patch(CM, namespace="prod", name="c",
                           body={"metadata": {"labels": {"other": "x"}}})
        await asyncio.sleep(0.3)
        ours = [r for r in env.dst.request_log
                if r.method == "PATCH" and r.query.get("fieldManager") == "krm-syncer"]
        assert ours == []
        await synced(shard)


async def test_periodic_resync_restores_missed_drift_without_writes_when_clean(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "c", {"want": "1"})
    async with running(env, spec_for(), options=fast(resync_period_s=0.2)) as shard:
        await synced(shard)
        env.dst.clear_log()
        await asyncio.sleep(0.7)  # a few resyncs over unchanged objects
        relists = [r for r in env.src.request_log if r.path.endswith("/configmaps")
                   and r.query.get("watch") != "true"]
        assert len(relists) >= 3
        writes = [r for r in env.dst.request_log if r.method in ("PATCH", "PUT", "POST", "DELETE")]
        assert writes == []
        # Our label removed from the copy: it is no longer ours, so it becomes a conflict.
        await env.dc.patch(CM, namespace="prod", name="c",
                           body={"metadata": {"labels": {MANAGED_BY_LABEL: None}}})
        await eventually(lambda: shard.health().conflicts == 1)


async def _data(env: Env, key: str, data: dict[str, str]) -> bool:
    got = (await env.items(env.dc, CM)).get(key)
    return got is not None and got.get("data") == data
