"""The shard and ``ray-syncer diff`` make each per-object decision the same way (engine.claims).

Where a source object lands, which source namespace wins a destination name, what the copy
holds, and whether a copy whose source is gone goes too: the shard writes by these decisions,
``diff`` judges the standby by them. The end-to-end test runs a shard over a case that needs
every one of them (namespace mapping with collisions, an excluded object, deletionPolicy
Orphan) and then asks ``diff``, which must call the result in sync and agree, object by
object, with what the shard wrote. Before engine.claims, ``diff`` reported the copy that
Orphan keeps on purpose as "extra": a standby that was exactly as configured was never in sync.
"""

from __future__ import annotations

import asyncio
import itertools
import random

from ray_syncer.dr.compare import diff_shard
from ray_syncer.engine.claims import Claims
from ray_syncer.engine.transform import ANN_SOURCE_NAMESPACE, EXCLUDE_LABEL

from .conftest import CM, Env, running, spec_for, synced


def _cm(ns: str, name: str) -> dict[str, object]:
    return {"metadata": {"namespace": ns, "name": name}}


def test_incremental_claims_and_the_whole_list_pick_the_same_winner() -> None:
    spec = spec_for(dest_namespace="dr")
    objects = [_cm(ns, name) for ns, name in itertools.product("cab", ["x", "y"])]
    objects.append(_cm("d", "z"))
    batch = Claims.winners(spec, objects, namespaced=True)
    assert {k: o["metadata"]["namespace"] for k, o in batch.items()} == {  # type: ignore[index]
        "dr/x": "a", "dr/y": "a", "dr/z": "d"}
    for seed in range(20):
        order = objects[:]
        random.Random(seed).shuffle(order)
        claims = Claims()
        for o in order:
            claims.claim(f"dr/{o['metadata']['name']}", o["metadata"]["namespace"])  # type: ignore[index]
        assert {k: claims.winner(k) for k in batch} == {"dr/x": "a", "dr/y": "a", "dr/z": "d"}
    # The winner leaves: the next namespace in order takes over; the last one leaves the name.
    assert claims.release("dr/x", "a") == (True, "b")
    assert claims.release("dr/x", "c") == (True, None)
    assert claims.release("dr/x", "b") == (False, None)


def test_a_failed_relist_leaves_the_claims_as_they_were() -> None:
    claims = Claims()
    claims.claim("dr/x", "b")
    claims.claim("dr/x", "c")
    claims.list_begin()
    assert claims.claim("dr/x", "c") is False  # b held it before: c's win waits for the end
    claims.list_abort()
    assert claims.winner("dr/x") == "b" and claims.collisions == {"dr/x": ["b", "c"]}
    claims.list_begin()
    claims.claim("dr/x", "c")
    assert claims.list_end() == {"dr/x": "c"}  # b was really gone


async def test_the_shard_and_diff_agree_on_every_decision(env: Env) -> None:
    await env.ns("a", "b", "dr")
    await env.cm("a", "same", {"from": "a"})
    await env.cm("b", "same", {"from": "b"})
    await env.cm("b", "only-b", {"from": "b"})
    await env.cm("a", "private", {"from": "a"}, labels={EXCLUDE_LABEL: "true"})
    await env.cm("b", "gone", {"from": "b"})
    spec = spec_for(dest_namespace="dr", deletion_policy="Orphan")
    async with running(env, spec) as shard:
        await synced(shard)
        assert shard.health().objects == 3  # dr/same (from a), dr/only-b, dr/gone
        await env.delete(env.sc, CM, "b", "gone")
        await asyncio.sleep(0.5)  # the DELETED event: under Orphan the copy is kept
        await synced(shard)

        report = await diff_shard(spec, source=env.sc, dest=env.dc, fields=True)
        assert report.error is None
        assert report.in_sync, report
        assert report.orphaned == ["dr/gone"] and report.extra == []

        src = [o for ns in ("a", "b") for o in (await env.items(env.sc, CM, ns)).values()]
        winners = Claims.winners(spec, src, namespaced=True)
        written = await env.items(env.dc, CM, "dr")
        assert set(written) == set(winners) | {"dr/gone"}
        for key, obj in winners.items():
            annotations = written[key]["metadata"]["annotations"]
            assert annotations[ANN_SOURCE_NAMESPACE] == obj["metadata"]["namespace"], key
        assert "dr/private" not in written and report.source_objects == len(winners) == 2
