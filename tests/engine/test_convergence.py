"""Property: random interleavings of source writes, deletes, watch drops, 410s, destination
errors and restarts always converge to destination == source (owned objects) once faults stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ray_syncer_testkit import ApiServer

from ray_syncer.kube.client import ApiError, KubeClient
from ray_syncer.kube.config import load_kubeconfig_text

from .conftest import CM, Env, eventually, running, spec_for, synced

NAMES = ["a", "b", "c", "d"]

SOURCES = ["p", "q"]  # with namespace mapping both collide into "dr"

ops = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(NAMES), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("write_q"), st.sampled_from(NAMES), st.integers(0, 3)),
    st.tuples(st.just("delete_q"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("drop"), st.just(""), st.just(0)),
    st.tuples(st.just("expire"), st.just(""), st.just(0)),
    st.tuples(st.just("dest_errors"), st.just(""), st.just(0)),
    st.tuples(st.just("restart"), st.just(""), st.just(0)),
    st.tuples(st.just("pause"), st.just(""), st.integers(1, 3)),
)


async def _scenario(steps: list[tuple[str, str, int]], *, mapping: bool = False) -> None:
    src = await ApiServer.start(name="source")
    dst = await ApiServer.start(name="destination")
    sc = KubeClient(load_kubeconfig_text(src.kubeconfig()))
    dc = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
    env = Env(src=src, dst=dst, sc=sc, dc=dc)
    try:
        await env.ns(*SOURCES)
        for name in NAMES[:2]:
            await env.cm("p", name, {"v": "init"})
        await env.cm("q", NAMES[1], {"v": "init-q"})
        spec = spec_for(dest_namespace="dr") if mapping else spec_for(source_namespace="p")
        restarts = sum(1 for op, _, _ in steps if op == "restart")
        for segment in range(restarts + 1):
            async with running(env, spec) as shard:
                if segment == 0:
                    await synced(shard)
                for op, name, n in _segment(steps, segment):
                    await _do(env, op, name, n)
                if segment == restarts:
                    src.faults.reset()
                    dst.faults.reset()
                    await eventually(lambda: _converged(env, mapping=mapping), timeout=15,
                                     message=f"no convergence after {steps}")
                    await synced(shard)
    finally:
        await sc.close()
        await dc.close()
        await src.stop()
        await dst.stop()


def _segment(steps: list[tuple[str, str, int]], index: int) -> list[tuple[str, str, int]]:
    out: list[list[tuple[str, str, int]]] = [[]]
    for step in steps:
        if step[0] == "restart":
            out.append([])
        else:
            out[-1].append(step)
    return out[index]


async def _do(env: Env, op: str, name: str, n: int) -> None:
    ns = "q" if op.endswith("_q") else "p"
    op = op.removesuffix("_q")
    if op == "write":
        await env.cm(ns, name, {"v": f"{ns}{n}"})
    elif op == "delete":
        with contextlib.suppress(ApiError):  # already absent
            await env.delete(env.sc, CM, ns, name)
    elif op == "drop":
        env.src.faults.drop_watches()
    elif op == "expire":
        env.src.faults.compact()
        env.src.faults.drop_watches()
    elif op == "dest_errors":
        env.dst.faults.error_rate, env.dst.faults.error_codes = 0.4, [500, 503, 429]
        env.dst.faults.retry_after = 0.05
    elif op == "pause":
        await asyncio.sleep(0.01 * n)


async def _converged(env: Env, *, mapping: bool) -> bool:
    if not mapping:
        src: dict[str, Any] = await env.items(env.sc, CM, "p")
        dst: dict[str, Any] = await env.items(env.dc, CM, "p")
        return set(src) == set(dst) and all(src[k]["data"] == dst[k]["data"] for k in src)
    # Mapping: every name lands in "dr"; the smallest source namespace holding it wins.
    want: dict[str, Any] = {}
    for ns in reversed(SOURCES):
        for key, obj in (await env.items(env.sc, CM, ns)).items():
            want[f"dr/{key.split('/', 1)[1]}"] = obj["data"]
    got = {k: o["data"] for k, o in (await env.items(env.dc, CM, "dr")).items()}
    return got == want


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(ops, min_size=1, max_size=12))
def test_random_interleavings_converge(steps: list[tuple[str, str, int]]) -> None:
    asyncio.run(_scenario(steps))


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(ops, min_size=1, max_size=12))
def test_random_interleavings_with_namespace_collisions_converge(
    steps: list[tuple[str, str, int]],
) -> None:
    asyncio.run(_scenario(steps, mapping=True))
