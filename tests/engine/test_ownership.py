"""Behaviour 7: never touch what we do not own (Skip), Adopt, namespace-mapping collisions."""

from __future__ import annotations

import asyncio

from ray_syncer.engine.transform import ANN_SOURCE_NAMESPACE, MANAGED_BY_LABEL

from .conftest import CM, Env, eventually, running, spec_for, synced


async def test_unowned_destination_object_survives_under_skip(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "taken", {"src": "1"})
    await env.cm("prod", "free", {"src": "1"})
    await env.cm("prod", "taken", {"theirs": "1"}, client=env.dc)
    async with running(env, spec_for()) as shard:
        await synced(shard)
        dst = await env.items(env.dc, CM, "prod")
        assert dst["prod/taken"]["data"] == {"theirs": "1"}
        assert MANAGED_BY_LABEL not in (dst["prod/taken"]["metadata"].get("labels") or {})
        assert dst["prod/free"]["data"] == {"src": "1"}
        h = shard.health()
        assert h.conflicts == 1 and h.conflict_names == ["prod/taken"]
        # Deleting the source never deletes their object either.
        await env.delete(env.sc, CM, "prod", "taken")
        await asyncio.sleep(0.2)
        assert (await env.items(env.dc, CM, "prod"))["prod/taken"]["data"] == {"theirs": "1"}
        writes = [r for r in env.dst.request_log
                  if r.path.endswith("/taken") and (r.method in ("PUT", "DELETE") or (
                      r.method == "PATCH" and r.query.get("fieldManager") != "test"))]
        assert writes == []
        await eventually(lambda: shard.health().conflicts == 0)


async def test_adopt_takes_the_object_over(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "taken", {"src": "1"})
    await env.cm("prod", "taken", {"theirs": "1"}, client=env.dc)
    async with running(env, spec_for(conflict_policy="Adopt")) as shard:
        await synced(shard)
        got = (await env.items(env.dc, CM, "prod"))["prod/taken"]
        assert got["data"]["src"] == "1"
        assert got["metadata"]["labels"][MANAGED_BY_LABEL] == "ops.dr"
        assert shard.health().conflicts == 0
        await env.delete(env.sc, CM, "prod", "taken")
        await eventually(lambda: _absent(env, "prod/taken"))


async def test_namespace_mapping_collision_has_a_stable_winner(env: Env) -> None:
    await env.ns("a", "b", "c")
    await env.cm("b", "same", {"from": "b"})
    await env.cm("c", "same", {"from": "c"})
    await env.cm("c", "only-c", {"from": "c"})
    spec = spec_for(dest_namespace="dr")
    async with running(env, spec) as shard:
        await synced(shard)
        dst = await env.items(env.dc, CM, "dr")
        assert dst["dr/same"]["data"] == {"from": "b"}  # smallest namespace wins
        assert dst["dr/same"]["metadata"]["annotations"][ANN_SOURCE_NAMESPACE] == "b"
        assert dst["dr/only-c"]["data"] == {"from": "c"}
        assert "collision" in shard.health().message and "dr/same" in shard.health().message
        # Updates to the loser never flip the destination.
        env.dst.clear_log()
        for i in range(3):
            await env.cm("c", "same", {"from": "c", "i": str(i)})
        await asyncio.sleep(0.3)
        assert (await env.items(env.dc, CM, "dr"))["dr/same"]["data"] == {"from": "b"}
        assert not [r for r in env.dst.request_log if r.path.endswith("/same") and r.method == "PATCH"]
        # A new smaller namespace takes over, once.
        await env.cm("a", "same", {"from": "a"})
        await eventually(lambda: _data(env, "dr/same", {"from": "a"}))
        # The winner goes: the next in order takes over; the name is not deleted.
        await env.delete(env.sc, CM, "a", "same")
        await eventually(lambda: _data(env, "dr/same", {"from": "b"}))
        await env.delete(env.sc, CM, "b", "same")
        await eventually(lambda: _data(env, "dr/same", {"from": "c", "i": "2"}))
        await synced(shard)
        assert "collision" not in shard.health().message


async def test_namespace_mapping_creates_the_destination_namespace(env: Env) -> None:
    await env.ns("prod", side="src")
    await env.cm("prod", "x")
    async with running(env, spec_for(source_namespace="prod", dest_namespace="prod-dr")) as shard:
        await synced(shard)
        assert "prod-dr/x" in await env.items(env.dc, CM, "prod-dr")


async def test_source_namespace_missing_on_destination_is_created(env: Env) -> None:
    await env.ns("only-src", side="src")
    await env.cm("only-src", "x")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        assert "only-src/x" in await env.items(env.dc, CM, "only-src")


async def _data(env: Env, key: str, data: dict[str, str]) -> bool:
    got = (await env.items(env.dc, CM)).get(key)
    return got is not None and got.get("data") == data


async def _absent(env: Env, key: str) -> bool:
    return key not in await env.items(env.dc, CM)


async def test_unordered_relist_never_flips_a_collision(env: Env) -> None:
    # Real lists come ordered by namespace; the engine must not depend on it.
    await env.ns("a", "b")
    await env.cm("a", "same", {"from": "a"})
    await env.cm("b", "same", {"from": "b"})
    async with running(env, spec_for(dest_namespace="dr")) as shard:
        await synced(shard)
        objs = await env.items(env.sc, CM)
        env.dst.clear_log()
        # A relist that delivers b's object first, in an earlier page than a's.
        await shard.list_begin()
        await shard.source_object(objs["b/same"], watched=False)
        await asyncio.sleep(0.1)  # pages apart: the applier runs in between
        await shard.source_object(objs["a/same"], watched=False)
        await shard.list_end()
        await asyncio.sleep(0.2)
        assert not [r for r in env.dst.request_log if r.method == "PATCH"]
        assert (await env.items(env.dc, CM, "dr"))["dr/same"]["data"] == {"from": "a"}
        # A relist in which a's object is gone: b takes over at the end of the list.
        await shard.list_begin()
        await shard.source_object(objs["b/same"], watched=False)
        await shard.list_end()
        await eventually(lambda: _data(env, "dr/same", {"from": "b"}))
