"""The write gate (split-brain fencing's hook in the engine): closed means not one write.

The gate here reads a marker ConfigMap on the destination, the way fencing
reads failover markers there: present means refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray_syncer.engine.gate import CachedGate
from ray_syncer.engine.spec import ShardState
from ray_syncer.kube.client import ApiError

from .conftest import CM, Env, eventually, fast, running, spec_for, synced

WRITES = {"PATCH", "PUT", "POST", "DELETE"}
FENCE_NS, FENCE_NAME = "ops", "fence"


def marker_gate(env: Env, *, ttl_s: float) -> CachedGate:
    async def check() -> str | None:
        try:
            obj = await env.dc.get(CM, namespace=FENCE_NS, name=FENCE_NAME)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return f"split brain: {(obj.get('data') or {}).get('why', 'fenced')}"

    return CachedGate(check, ttl_s=ttl_s)


def writes(log: list[Any]) -> list[str]:
    return [f"{r.method} {r.path}" for r in log if r.method in WRITES]


async def converged(env: Env, ns: str) -> bool:
    src = {k: o.get("data") for k, o in (await env.items(env.sc, CM, ns)).items()}
    dst = {k: o.get("data") for k, o in (await env.items(env.dc, CM, ns)).items()}
    return src == dst


async def test_closed_gate_writes_nothing_and_opening_loses_nothing(env: Env) -> None:
    await env.ns("app", FENCE_NS)
    for name in ("a", "b", "d"):
        await env.cm("app", name, {"v": "1"})
    gate = marker_gate(env, ttl_s=0.2)
    opts = fast(gate_retry_s=0.05)
    async with running(env, spec_for(source_namespace="app"), options=opts, write_gate=gate) as shard:
        await synced(shard)
        assert await converged(env, "app")

        # The destination is promoted: the marker appears there (written by someone else).
        await env.cm(FENCE_NS, FENCE_NAME, {"why": "promoted elsewhere"}, client=env.dc)
        await asyncio.sleep(0.3)  # the cached "open" answer expires (TTL 0.2 s)
        env.dst.clear_log()
        checks_before = gate.checks

        # The source keeps changing: updates, a create, deletes (of owned copies).
        for i in range(5):
            await env.cm("app", "a", {"v": f"a{i}"})
            await env.cm("app", f"new{i}", {"v": "n"})
            await asyncio.sleep(0.05)
        await env.delete(env.sc, CM, "app", "b")
        await env.delete(env.sc, CM, "app", "d")

        def refused() -> bool:
            h = shard.health()
            return h.state == ShardState.DEGRADED and "promoted elsewhere" in h.message
        await eventually(refused, message=f"never reported the refusal: {shard.health()}")
        await asyncio.sleep(0.8)  # many gate retries (0.05 s) and TTLs (0.2 s) later
        h = shard.health()
        assert h.state == ShardState.DEGRADED and "split brain" in h.message, h
        assert h.pending > 0 and not h.synced
        assert writes(env.dst.request_log) == []
        assert gate.checks > checks_before  # it kept asking, it did not give up
        dst_now = await env.items(env.dc, CM, "app")
        assert set(dst_now) == {"app/a", "app/b", "app/d"}
        assert dst_now["app/a"]["data"] == {"v": "1"}

        # The marker goes (the person resolved it): everything queued is written.
        await env.delete(env.dc, CM, FENCE_NS, FENCE_NAME)
        await eventually(lambda: converged(env, "app"), message="no convergence after opening")
        await synced(shard)
        dst_now = await env.items(env.dc, CM, "app")
        assert dst_now["app/a"]["data"] == {"v": "a4"}
        assert {f"app/new{i}" for i in range(5)} <= set(dst_now)
        assert "app/b" not in dst_now and "app/d" not in dst_now
        assert shard.health().state == ShardState.SYNCING


async def test_outage_makes_the_first_write_after_recovery_check_again(env: Env) -> None:
    await env.ns("app", FENCE_NS)
    await env.cm("app", "a", {"v": "1"})
    # A TTL far longer than the test: only invalidation can cause a second check.
    gate = marker_gate(env, ttl_s=3600)
    opts = fast(gate_retry_s=0.05)
    async with running(env, spec_for(source_namespace="app"), options=opts, write_gate=gate) as shard:
        await synced(shard)
        assert gate.checks == 1
        env.dst.faults.outage(True)
        await env.cm("app", "a", {"v": "during-outage"})

        def noticed() -> bool:
            return shard.health().state == ShardState.DEGRADED
        await eventually(noticed, message=f"outage not noticed: {shard.health()}")
        checks_at_outage = gate.checks
        mark = len(env.dst.request_log)
        env.dst.faults.outage(False)
        await eventually(lambda: converged(env, "app"), message="no convergence after the outage")
        await synced(shard)

        after = env.dst.request_log[mark:]
        order = [("check" if r.path.endswith(f"/configmaps/{FENCE_NAME}") else r.method)
                 for r in after if r.method in WRITES or r.path.endswith(f"/configmaps/{FENCE_NAME}")]
        assert "PATCH" in order, order
        assert order.index("check") < order.index("PATCH"), order
        assert gate.checks > checks_at_outage >= 1


async def test_gate_caches_for_its_ttl_and_shares_one_check() -> None:
    calls = 0
    release = asyncio.Event()

    async def check() -> str | None:
        nonlocal calls
        calls += 1
        await release.wait()
        return None

    gate = CachedGate(check, ttl_s=3600)
    waiters = [asyncio.ensure_future(gate()) for _ in range(10)]
    await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(*waiters) == [None] * 10
    assert calls == 1
    assert await gate() is None and calls == 1
    gate.invalidate()
    assert await gate() is None and calls == 2


async def test_a_failing_check_refuses_and_is_not_remembered() -> None:
    answers: list[Any] = [ApiError(503, "ServiceUnavailable"), KeyError("bug"), None]

    async def check() -> str | None:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    gate = CachedGate(check, ttl_s=3600)
    refusal = await gate()
    assert refusal is not None and "503" in refusal  # fail closed
    refusal = await gate()  # asked again, not the cached refusal
    assert refusal is not None and "KeyError" in refusal  # a bug in the check fails closed too
    assert await gate() is None
    assert answers == []
