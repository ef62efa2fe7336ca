"""Behaviour 2: paginated list, watch, label selector and namespace; 410 and dropped watches."""

from __future__ import annotations

import asyncio

from .conftest import CM, Env, eventually, fast, running, spec_for, synced


async def test_paginated_list_then_watch(env: Env) -> None:
    await env.ns("prod")
    for i in range(12):
        await env.cm("prod", f"c{i}", {"i": str(i)})
    async with running(env, spec_for(), options=fast(list_page_size=5)) as shard:
        await synced(shard)
        # The list's pages (not the recovery point's limit=1 probes of the source's version).
        pages = [r for r in env.src.request_log
                 if r.method == "GET" and r.path.endswith("/configmaps") and "watch" not in r.query
                 and r.query.get("limit") != "1"]
        assert len(pages) >= 3  # 12 objects in pages of 5
        assert all(r.query.get("limit") == "5" for r in pages)
        assert len(await env.items(env.dc, CM, "prod")) == 12
        await env.cm("prod", "late")
        await eventually(lambda: _has(env, "prod/late"))


async def test_label_selector_and_namespace_apply(env: Env) -> None:
    await env.ns("prod", "dev")
    await env.cm("prod", "yes", labels={"tier": "gold"})
    await env.cm("prod", "no", labels={"tier": "bronze"})
    await env.cm("dev", "other-ns", labels={"tier": "gold"})
    spec = spec_for(source_namespace="prod", label_selector="tier=gold")
    async with running(env, spec) as shard:
        await synced(shard)
        await env.cm("prod", "yes-later", labels={"tier": "gold"})
        await env.cm("dev", "no-later", labels={"tier": "gold"})
        await eventually(lambda: _has(env, "prod/yes-later"))
        await synced(shard)
        assert set(await env.items(env.dc, CM)) == {"prod/yes", "prod/yes-later"}


async def test_410_during_a_burst_of_changes_loses_nothing(env: Env) -> None:
    await env.ns("prod")
    for i in range(20):
        await env.cm("prod", f"c{i}", {"v": "0"})
    async with running(env, spec_for()) as shard:
        await synced(shard)
        env.src.faults.stall_watches(True)  # the watch sees nothing of the burst
        for i in range(20):
            await env.cm("prod", f"c{i}", {"v": "1"})
        for i in range(5):
            await env.delete(env.sc, CM, "prod", f"c{i}")
        for i in range(20, 25):
            await env.cm("prod", f"c{i}", {"v": "1"})
        env.src.clear_log()
        env.src.faults.compact()  # those events are gone: resuming gets 410
        env.src.faults.drop_watches()
        env.src.faults.stall_watches(False)
        await eventually(lambda: _equal(env), timeout=10)
        await synced(shard)
        relists = [r for r in env.src.request_log if r.method == "GET"
                   and r.path.endswith("/configmaps") and r.query.get("watch") != "true"]
        assert relists  # the 410 forced a relist, whose diff found the deletes


async def test_dropped_watch_during_deletes_finds_the_deletes(env: Env) -> None:
    await env.ns("prod")
    for i in range(10):
        await env.cm("prod", f"c{i}")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        env.src.faults.stall_watches(True)
        for i in range(4):
            await env.delete(env.sc, CM, "prod", f"c{i}")
        env.src.faults.drop_watches(abrupt=True)
        env.src.faults.stall_watches(False)
        await eventually(lambda: _equal(env), timeout=10)
        assert len(await env.items(env.dc, CM, "prod")) == 6


async def test_watch_resumes_from_last_resource_version(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "a")
    async with running(env, spec_for()) as shard:
        await synced(shard)
        env.src.clear_log()
        env.src.faults.drop_watches()
        await env.cm("prod", "b")
        await eventually(lambda: _has(env, "prod/b"))
        await asyncio.sleep(0.1)
        relists = [r for r in env.src.request_log
                   if r.path.endswith("/configmaps") and r.query.get("watch") != "true"
                   and r.method == "GET"]
        watches = [r for r in env.src.request_log if r.query.get("watch") == "true"]
        assert relists == []  # resumed, not relisted
        assert watches and all(w.query.get("resourceVersion") for w in watches)


async def _has(env: Env, key: str) -> bool:
    return key in await env.items(env.dc, CM)


async def _equal(env: Env) -> bool:
    src = await env.items(env.sc, CM, "prod")
    dst = await env.items(env.dc, CM, "prod")
    return set(src) == set(dst) and all(src[k]["data"] == dst[k]["data"] for k in src)


async def test_bookmarks_keep_the_resume_point_fresh(env: Env) -> None:
    await env.ns("prod", "other")
    await env.cm("prod", "a")
    env.src.bookmark_interval = 0.05
    async with running(env, spec_for(source_namespace="prod")) as shard:
        await synced(shard)
        for i in range(5):  # changes outside the shard's scope move the resourceVersion on
            await env.cm("other", f"x{i}")
        await asyncio.sleep(0.3)  # a few bookmarks carry the new resourceVersion
        env.src.clear_log()
        env.src.faults.compact()
        env.src.faults.drop_watches()
        await env.cm("prod", "b")
        await eventually(lambda: _has(env, "prod/b"))
        lists = [r for r in env.src.request_log if r.method == "GET"
                 and r.path.endswith("/configmaps") and r.query.get("watch") != "true"]
        assert lists == []  # resumed from the bookmark: no 410, no relist
