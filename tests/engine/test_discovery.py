"""Behaviour 1: the kind is resolved on both sides; a missing kind is reported and retried."""

from __future__ import annotations

import asyncio

from ray_syncer.engine.spec import ShardState

from .conftest import WIDGET, Env, eventually, fast, running, spec_for, synced


async def test_kind_missing_on_destination_is_reported_then_recovers(env: Env) -> None:
    await env.crd(side="src")
    await env.ns("prod")
    await env.put(env.sc, WIDGET, {"metadata": {"name": "w", "namespace": "prod"}, "spec": {"a": 1}})
    opts = fast(retry_base_s=0.05, retry_max_s=0.2)
    async with running(env, spec_for("Widget"), options=opts) as shard:
        await eventually(lambda: shard.health().state == ShardState.KIND_MISSING)
        h = shard.health()
        assert "destination" in h.message and "example.com/v1/Widget" in h.message
        assert not h.synced
        # No busy loop: over 0.5 s the retries stay few (backoff capped at 0.2 s).
        env.dst.clear_log()
        await asyncio.sleep(0.5)
        discovery = [r for r in env.dst.request_log if r.path.startswith("/apis")]
        assert len(discovery) <= 12, len(discovery)
        # The CRD appears on the destination: the shard proceeds and syncs.
        await env.crd(side="dst")
        await synced(shard)
        assert "prod/w" in await env.items(env.dc, WIDGET, "prod")
