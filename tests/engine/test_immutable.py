"""Behaviour 10: immutable-field rejections -> Recreate (delete with precondition, apply) or Report."""

from __future__ import annotations

import asyncio

from .conftest import CM, SECRET, Env, eventually, running, spec_for, synced


async def test_secret_type_change_is_recreated(env: Env) -> None:
    await env.ns("prod")
    await env.put(env.sc, SECRET, {"metadata": {"name": "s", "namespace": "prod"},
                                   "type": "Opaque", "data": {"a": "YQ=="}})
    async with running(env, spec_for("Secret")) as shard:
        await synced(shard)
        old_uid = (await env.items(env.dc, SECRET, "prod"))["prod/s"]["metadata"]["uid"]
        # The type of a Secret is immutable: the source is deleted and recreated with another.
        # The watch misses the delete (410 -> relist), so the destination sees an update.
        env.src.faults.stall_watches(True)
        await env.delete(env.sc, SECRET, "prod", "s")
        await env.put(env.sc, SECRET, {"metadata": {"name": "s", "namespace": "prod"},
                                       "type": "example.com/custom", "data": {"a": "YQ=="}})
        _relist(env)
        await eventually(lambda: _type(env, "example.com/custom"))
        got = (await env.items(env.dc, SECRET, "prod"))["prod/s"]
        assert got["metadata"]["uid"] != old_uid
        await synced(shard)


async def test_immutable_configmap_under_report_policy_is_reported_not_recreated(env: Env) -> None:
    await env.ns("prod")
    await env.put(env.sc, CM, {"metadata": {"name": "frozen", "namespace": "prod"},
                               "data": {"a": "1"}, "immutable": True})
    async with running(env, spec_for(immutable_policy="Report")) as shard:
        await synced(shard)
        uid = (await env.items(env.dc, CM, "prod"))["prod/frozen"]["metadata"]["uid"]
        # Recreate the source with new data (an immutable ConfigMap cannot be updated).
        env.src.faults.stall_watches(True)
        await env.delete(env.sc, CM, "prod", "frozen")
        await env.put(env.sc, CM, {"metadata": {"name": "frozen", "namespace": "prod"},
                                   "data": {"a": "2"}, "immutable": True})
        _relist(env)
        await eventually(lambda: shard.health().errors == 1)
        h = shard.health()
        assert "immutable" in h.last_error and "prod/frozen" in h.last_error
        await asyncio.sleep(0.2)
        got = (await env.items(env.dc, CM, "prod"))["prod/frozen"]
        assert got["metadata"]["uid"] == uid and got["data"] == {"a": "1"}
        # Terminal for this version: not retried in a loop.
        writes = [r for r in env.dst.request_log if r.method == "PATCH" and r.path.endswith("/frozen")]
        await asyncio.sleep(0.3)
        assert len([r for r in env.dst.request_log
                    if r.method == "PATCH" and r.path.endswith("/frozen")]) == len(writes)


def _relist(env: Env) -> None:
    env.src.faults.compact()
    env.src.faults.drop_watches()
    env.src.faults.stall_watches(False)


async def _type(env: Env, want: str) -> bool:
    got = (await env.items(env.dc, SECRET, "prod")).get("prod/s")
    return got is not None and got.get("type") == want
