"""A quick engine measurement between two in-memory API servers (not a test; the real
benchmarks live in benchmarks/). Run: ``python -m tests.engine.quickbench [N]``.

Reports: initial sync rate (create path: ownership GET + apply), sustained update
rate (a burst of N source updates released at once), and propagation latency
(source write acknowledged -> destination watch sees the copy) at a steady rate.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from ray_syncer_testkit import ApiServer

from ray_syncer.engine.options import EngineOptions
from ray_syncer.engine.shard import Shard
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.metrics import ShardMetrics

from .conftest import CM, Env, spec_for


async def _bulk(env: Env, n: int, value: str, *, concurrency: int = 64) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await env.cm("bench", f"c{i:05d}", {"v": value})

    await asyncio.gather(*(one(i) for i in range(n)))


async def main(n: int) -> dict[str, Any]:
    src = await ApiServer.start(name="source")
    dst = await ApiServer.start(name="destination")
    sc = KubeClient(load_kubeconfig_text(src.kubeconfig()))
    dc = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
    env = Env(src=src, dst=dst, sc=sc, dc=dc)
    out: dict[str, Any] = {"objects": n}
    try:
        await env.ns("bench")
        await _bulk(env, n, "0")
        opts = EngineOptions(dest_qps=1e9, dest_burst=10**9, max_in_flight=64, batch_size=200)
        shard = Shard(spec_for(), source=sc, dest=dc, options=opts,
                      metrics=ShardMetrics("bench", "quick"))
        task = asyncio.ensure_future(shard.run())
        t0 = time.perf_counter()
        while not shard.health().synced:
            await asyncio.sleep(0.01)
        out["initial_sync_per_s"] = round(n / (time.perf_counter() - t0))

        # Sustained updates: N source changes held back, then released at once.
        src.faults.stall_watches(True)
        await _bulk(env, n, "1")
        writes0 = shard.health().writes
        t0 = time.perf_counter()
        src.faults.stall_watches(False)
        await asyncio.sleep(0.05)
        while not shard.health().synced or shard.health().writes - writes0 < n:
            await asyncio.sleep(0.01)
        out["update_applies_per_s"] = round(n / (time.perf_counter() - t0))

        # Propagation latency at a steady 100 writes/s.
        seen: dict[str, float] = {}

        async def dest_watch() -> None:
            _, rv = await dc.list_all(CM, namespace="bench")
            async for ev in dc.watch(CM, namespace="bench", resource_version=rv):
                obj = ev.get("object") or {}
                v = (obj.get("data") or {}).get("v", "")
                if v.startswith("L") and v not in seen:
                    seen[v] = time.perf_counter()

        watcher = asyncio.ensure_future(dest_watch())
        await asyncio.sleep(0.2)
        sent: dict[str, float] = {}
        for i in range(300):
            v = f"L{i}"
            await env.cm("bench", f"c{i % n:05d}", {"v": v})
            sent[v] = time.perf_counter()
            await asyncio.sleep(0.01)
        deadline = time.perf_counter() + 10
        while len(seen) < len(sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        watcher.cancel()
        lat = sorted((seen[v] - sent[v]) * 1000 for v in sent if v in seen)
        out["latency_ms_p50"] = round(statistics.median(lat), 1)
        out["latency_ms_p99"] = round(lat[int(len(lat) * 0.99) - 1], 1)
        out["latency_samples"] = len(lat)
        await shard.stop()
        await task
    finally:
        await sc.close()
        await dc.close()
        await src.stop()
        await dst.stop()
    return out


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)))
