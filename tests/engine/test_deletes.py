"""Behaviour 8: deletes only from a watch DELETED or a complete relist, with a uid precondition."""

from __future__ import annotations

import asyncio

from ray_syncer.engine.applier import Applier
from ray_syncer.engine.ratelimit import WriteBudget

from .conftest import CM, Env, eventually, fast, running, spec_for, synced


async def test_relist_after_restart_deletes_copies_whose_source_is_gone(env: Env) -> None:
    await env.ns("prod")
    for i in range(6):
        await env.cm("prod", f"c{i}")
    async with running(env, spec_for()) as shard:
        await synced(shard)
    for i in range(2):  # deleted while no shard was running
        await env.delete(env.sc, CM, "prod", f"c{i}")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        assert set(await env.items(env.dc, CM, "prod")) == {f"prod/c{i}" for i in range(2, 6)}


async def test_orphan_policy_never_deletes(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "a")
    await env.cm("prod", "b")
    async with running(env, spec_for(deletion_policy="Orphan")) as shard:
        await synced(shard)
        await env.delete(env.sc, CM, "prod", "a")
        shard.resync()
        await asyncio.sleep(0.3)
        await synced(shard)
        assert set(await env.items(env.dc, CM, "prod")) == {"prod/a", "prod/b"}
        assert not [r for r in env.dst.request_log if r.method == "DELETE"]


async def test_delete_storm_guard_pauses_mass_deletes_after_relist(env: Env) -> None:
    await env.ns("prod")
    for i in range(20):
        await env.cm("prod", f"c{i}")
    opts = fast(delete_guard_fraction=0.5, delete_guard_min=5)
    async with running(env, spec_for(), options=opts) as shard:
        await synced(shard)
    for i in range(15):  # 15 of 20 vanish while the shard is down
        await env.delete(env.sc, CM, "prod", f"c{i}")
    async with running(env, spec_for(), options=opts) as shard:
        await eventually(lambda: shard.health().delete_guard_tripped)
        h = shard.health()
        assert "delete-storm guard" in h.message and "15 of 20" in h.message
        assert not h.synced
        await asyncio.sleep(0.2)
        assert len(await env.items(env.dc, CM, "prod")) == 20
        assert not [r for r in env.dst.request_log if r.method == "DELETE"]
        # Below the guard (the source comes back), the guard clears on the next relist.
        for i in range(12):
            await env.cm("prod", f"c{i}")
        shard.resync()
        await eventually(lambda: not shard.health().delete_guard_tripped)
        await synced(shard)
        assert len(await env.items(env.dc, CM, "prod")) == 17


async def test_source_outage_never_causes_deletes(env: Env) -> None:
    await env.ns("prod")
    for i in range(5):
        await env.cm("prod", f"c{i}")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        env.src.faults.outage(True)
        shard.resync()
        await asyncio.sleep(0.5)
        assert not shard.health().synced
        env.src.faults.error_rate, env.src.faults.error_codes = 1.0, [500]
        env.src.faults.outage(False)
        shard.resync()
        await asyncio.sleep(0.3)
        env.src.faults.reset()
        await synced(shard)
        assert len(await env.items(env.dc, CM, "prod")) == 5
        assert not [r for r in env.dst.request_log if r.method == "DELETE"]


async def test_delete_carries_a_uid_precondition(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "x", client=env.dc)
    applier = Applier(dest=env.dc, res=CM, budget=WriteBudget(),
                      field_manager="krm-syncer", managed_by="ops.dr")
    assert await applier.delete(namespace="prod", name="x", uid="not-its-uid") == "replaced"
    assert "prod/x" in await env.items(env.dc, CM, "prod")
    uid = (await env.items(env.dc, CM, "prod"))["prod/x"]["metadata"]["uid"]
    assert await applier.delete(namespace="prod", name="x", uid=uid) == "deleted"
    assert await applier.delete(namespace="prod", name="x", uid=uid) == "absent"
