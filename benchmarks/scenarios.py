"""The scenarios: ceiling, initial sync, churn, overload, restart, memory, naive, shards.

Why this exists: each function here is one scenario of issue 7 and returns one
result dict (``benchmarks.report.new_result``). They share a ``Bench`` context
that holds the clusters, the harness's clients, the destination observer and
the load generators, so the scenarios can run back to back over the same data
in one run (ratios are only meaningful within one run).

How it meets its neighbours: the syncer under test lives in a
``benchmarks.runner.Runner`` process; the servers in ``benchmarks.clusters``
processes; writes and observation in ``benchmarks.workload``. Correctness is
checked at the end of every scenario by ``verify`` (destination == source).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.clusters import (
    Clusters,
    descendants,
    proc_cpu_seconds,
    proc_memory,
    tree_pss_mb,
)
from benchmarks.profiling import Profile
from benchmarks.report import new_result, percentiles, ratio
from benchmarks.rpo import RpoSampler
from benchmarks.runner import Runner, engine_available
from benchmarks.workload import (
    CONFIGMAPS,
    LABEL_KEY,
    Key,
    LoadGenerator,
    Observer,
    ensure_namespaces,
    namespace_names,
    object_keys,
)
from ray_syncer.kube.client import KubeClient

ENGINE_SELECTOR = f"{LABEL_KEY}=1"
NAIVE_SELECTOR = f"{LABEL_KEY}=naive"


@dataclass
class Params:
    quick: bool
    objects: int
    namespaces: int
    rates: list[float] | None  # absolute rates; None = fractions of the ceiling
    rate_fractions: list[float]
    duration: float
    payload_size: int
    ceiling_concurrency: list[int]
    ceiling_duration: float
    naive_objects: int
    naive_duration: float
    memory_objects: list[int]
    converge_timeout: float
    engine_options: dict[str, Any]
    seed: int
    profile_dir: Path | None = None  # --profile: py-spy the syncer process during scenarios
    breakdown: bool = False  # --breakdown: where each change's time goes (traced syncer)
    ray: bool = False  # --product ray: the shard in a shard host actor on a local Ray


@dataclass
class Bench:
    params: Params
    clusters: Clusters
    src: KubeClient
    dst: KubeClient
    observer: Observer
    load: LoadGenerator
    rng: random.Random
    ceiling_per_s: float | None = None
    server_create_per_s: float | None = None
    runner: Runner | None = None
    series: dict[str, Any] = field(default_factory=lambda: {"latency": {}, "throughput": {}})
    naive: dict[str, float] = field(default_factory=dict)
    engine_initial_per_s: float | None = None
    engine_churn: dict[str, float] = field(default_factory=dict)

    # ---------------------------------------------------------------- helpers

    def profiler(self, name: str) -> Profile | None:
        if self.params.profile_dir is None or self.runner is None:
            return None
        safe = "".join(c if c.isalnum() else "_" for c in name)
        return Profile(pid=self.runner.pid, out=self.params.profile_dir / f"profile-{safe}.txt")

    def engine_cmd(self, **extra: Any) -> dict[str, Any]:
        return {
            "source_kubeconfig": str(self.clusters.source_kubeconfig),
            "dest_kubeconfig": str(self.clusters.dest_kubeconfig),
            "selector": ENGINE_SELECTOR,
            "options": self.params.engine_options,
            "trace": self.params.breakdown,
            "ray": self.params.ray,
            **extra,
        }

    def cpu(self) -> dict[str, float]:
        pids = {"harness": os.getpid()}
        if self.runner is not None:
            pids["syncer"] = self.runner.pid
        pids.update(self.clusters.server_pids())
        out = {k: proc_cpu_seconds(p) for k, p in pids.items()}
        if self.runner is not None and self.params.ray:
            # The syncer is its whole Ray: GCS, raylet, dashboard, agents, workers, the host.
            ray_pids = descendants(self.runner.pid)
            out["ray"] = sum(proc_cpu_seconds(p) for p in ray_pids)
        return out

    @staticmethod
    def cpu_delta(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, Any]:
        """CPU seconds per process over a window, and as a share of one core."""
        out: dict[str, Any] = {}
        for k, v in after.items():
            used = v - before.get(k, 0.0)
            out[k] = {"cpu_s": round(used, 2), "cores": round(used / wall, 2) if wall > 0 else None}
        return out

    async def dest_writes(self, health: dict[str, Any] | None = None) -> int | None:
        if self.clusters.counts_writes:
            return await asyncio.get_running_loop().run_in_executor(
                None, self.clusters.dest_write_count
            )
        return None if health is None else health.get("writes")

    async def dest_requests(self) -> dict[str, Any] | None:
        return await asyncio.get_running_loop().run_in_executor(None, self.clusters.dest_requests)

    async def clear_logs(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.clusters.clear_logs)

    async def start_runner(self) -> Runner:
        loop = asyncio.get_running_loop()
        runner = await loop.run_in_executor(None, Runner)
        await runner.acall("warm")
        self.runner = runner
        return runner

    async def stop_runner(self) -> dict[str, Any]:
        runner, self.runner = self.runner, None
        if runner is None:
            return {}
        health: dict[str, Any] = {}
        try:
            health = await runner.acall("stop", timeout=120)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, runner.close)
        return health

    async def verify(self, selector: str, *, ns_prefix: str = "") -> dict[str, Any]:
        """Destination == source for every object the selector picks (data compared)."""
        src_items, _ = await self.src.list_all(CONFIGMAPS, label_selector=selector, page_size=2000)
        dst_items, _ = await self.dst.list_all(CONFIGMAPS, label_selector=selector, page_size=2000)

        def index(items: list[dict[str, Any]]) -> dict[Key, Any]:
            return {
                (i["metadata"]["namespace"], i["metadata"]["name"]): (i.get("data") or {})
                for i in items
                if i["metadata"]["namespace"].startswith(ns_prefix)
            }

        s, d = index(src_items), index(dst_items)
        missing = sum(1 for k in s if k not in d)
        differ = sum(1 for k, v in s.items() if k in d and d[k] != v)
        extra = sum(1 for k in d if k not in s)
        return {
            "source_objects": len(s),
            "dest_objects": len(d),
            "missing": missing,
            "differ": differ,
            "extra": extra,
            "lost_updates": missing + differ,
        }

    async def wait_synced(
        self, runner: Runner, timeout: float
    ) -> tuple[float | None, dict[str, Any]]:
        start = time.monotonic()
        health: dict[str, Any] = {}
        while time.monotonic() - start < timeout:
            health = await runner.acall("health")
            if health.get("synced"):
                return time.monotonic() - start, health
            await asyncio.sleep(0.1)
        return None, health


def _cpu_ms_per(cpu: dict[str, Any], writes: int | None) -> float | None:
    """The syncer's CPU milliseconds per destination write it made (a synced update)."""
    used = (cpu.get("syncer") or {}).get("cpu_s")
    if used is None or not writes:
        return None
    used += (cpu.get("ray") or {}).get("cpu_s") or 0.0  # --product ray: its whole Ray
    return round(used * 1000 / writes, 3)


def _fail(result: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    result["status"] = "failed"
    result["note"] = (result.get("note") or "") + f" error: {type(exc).__name__}: {exc}"
    return result


# --------------------------------------------------------------------------- setup


async def prepare(bench: Bench) -> dict[str, Any]:
    """Namespaces in both clusters, the observer, and N objects in the source."""
    p = bench.params
    names = namespace_names(p.namespaces)
    naive_ns = [f"naive-{i:03d}" for i in range(min(p.namespaces, 10))]
    await ensure_namespaces(bench.src, [*names, *naive_ns])
    await ensure_namespaces(bench.dst, [*names, *naive_ns, "bench-ceiling"])
    await bench.observer.start()
    keys = object_keys(objects=p.objects, namespaces=p.namespaces)
    secs = await bench.load.create(keys, concurrency=32)
    bench.server_create_per_s = len(keys) / secs
    return {"source_objects": len(keys), "source_create_s": round(secs, 2)}


# --------------------------------------------------------------------------- ceiling


async def ceiling(bench: Bench, *, recheck: bool = False) -> dict[str, Any]:
    """Best SSA write rate at the destination; ``recheck`` re-measures it at the end of the run."""
    p = bench.params
    r = new_result("ceiling_recheck" if recheck else "ceiling")
    runner = await bench.start_runner()
    sweep: dict[str, float] = {}
    cpu: dict[str, Any] = {}
    try:
        objects = 200 if p.quick else 1000
        # Create the target objects first (untimed), so the timed writes are all real updates.
        await runner.acall(
            "ceiling",
            dest_kubeconfig=str(bench.clusters.dest_kubeconfig),
            namespace="bench-ceiling",
            objects=objects,
            payload_size=p.payload_size,
            concurrency=32,
            duration=1.0 if p.quick else 3.0,
            seq_start=0,
        )
        for c in p.ceiling_concurrency:
            before = bench.cpu()
            t0 = time.monotonic()
            out = await runner.acall(
                "ceiling",
                dest_kubeconfig=str(bench.clusters.dest_kubeconfig),
                namespace="bench-ceiling",
                objects=objects,
                payload_size=p.payload_size,
                concurrency=c,
                duration=p.ceiling_duration,
                seq_start=(c + 1) * 10_000_000,
            )
            sweep[str(c)] = round(out["rate_per_s"], 1)
            cpu[str(c)] = bench.cpu_delta(before, bench.cpu(), time.monotonic() - t0)
            # What the HTTP client alone costs per write: the floor under the syncer's CPU.
            cpu[str(c)]["client_cpu_ms_per_write"] = _cpu_ms_per(cpu[str(c)], out["writes"])
            if out["errors"]:
                r["note"] += f"c={c}: {out['errors']} errors; "
    except Exception as exc:
        await bench.stop_runner()
        return _fail(r, exc)
    await bench.stop_runner()
    bench.observer.reset_measurements()
    best_c, best = max(sweep.items(), key=lambda kv: kv[1])
    if recheck:
        first = bench.ceiling_per_s or 0.0
        drift = ratio(best, first)
        r.update(
            throughput_per_s=best,
            ceiling_per_s=first,
            ratio_to_ceiling=drift,
            lost_updates=0,
            sweep_per_s=sweep,
            cpu=cpu,
            note="the ceiling measured again at the end of the run"
            + (
                "; it moved by more than 20%: the machine's load changed during the run"
                if drift is not None and abs(drift - 1) > 0.2
                else ""
            ),
        )
        return r
    bench.ceiling_per_s = best
    bench.series["ceiling_per_s"] = best
    r.update(
        throughput_per_s=best,
        ceiling_per_s=best,
        ratio_to_ceiling=1.0,
        lost_updates=0,
        sweep_per_s=sweep,
        best_concurrency=int(best_c),
        cpu=cpu,
        client_cpu_ms_per_write=cpu[best_c]["client_cpu_ms_per_write"],
        source_create_per_s=round(bench.server_create_per_s or 0, 1),
    )
    r["note"] += (
        f"precomputed SSA updates straight at the destination; best concurrency {best_c}; "
        f"the harness created source objects at {bench.server_create_per_s or 0:,.0f}/s"
    )
    return r


# --------------------------------------------------------------------------- engine scenarios


async def initial_sync(bench: Bench) -> dict[str, Any]:
    p = bench.params
    r = new_result("initial_sync", ceiling_per_s=bench.ceiling_per_s)
    why = engine_available()
    if why:
        r.update(status="unavailable", note=why)
        return r
    await bench.clear_logs()
    bench.observer.reset_measurements()
    runner = await bench.start_runner()
    base = proc_memory(runner.pid)
    before = bench.cpu()
    t0 = time.monotonic()
    prof = bench.profiler("initial_sync")
    try:
        await runner.acall("engine", **bench.engine_cmd())
        took = await bench.observer.wait_converged(p.converge_timeout)
        wall = time.monotonic() - t0
        if prof is not None:
            r["profile"] = prof.stop()
        _synced_after, health = await bench.wait_synced(runner, 30)
    except Exception as exc:
        await bench.stop_runner()
        return _fail(r, exc)
    cpu = bench.cpu_delta(before, bench.cpu(), wall)
    mem = proc_memory(runner.pid)
    bench.series["throughput"]["initial sync (engine)"] = list(bench.observer.event_times)
    check = await bench.verify(ENGINE_SELECTOR)
    throughput = p.objects / took if took else None
    bench.engine_initial_per_s = throughput
    r.update(
        throughput_per_s=throughput,
        ratio_to_ceiling=ratio(throughput, bench.ceiling_per_s),
        lost_updates=check["lost_updates"],
        dest_writes=await bench.dest_writes(health),
        dest_requests=await bench.dest_requests(),
        peak_rss_mb=round(mem["hwm_mb"], 1),
        objects=p.objects,
        seconds=round(took, 2) if took else None,
        converged=took is not None,
        verify=check,
        cpu=cpu,
        syncer_cpu_ms_per_update=_cpu_ms_per(cpu, p.objects),
        rss_growth_mb=round(mem["rss_mb"] - base["rss_mb"], 1),
        health=health,
        product="ray" if p.ray else "process",
        syncer_pss_mb=round(tree_pss_mb(runner.pid), 1),
    )
    if took is None:
        r["status"] = "failed"
        r["note"] = f"destination did not converge within {p.converge_timeout}s"
    return r  # the runner stays up: churn and overload run on the synced engine


async def churn(bench: Bench, rate: float, label: str) -> dict[str, Any]:
    p = bench.params
    r = new_result(f"churn@{label}", ceiling_per_s=bench.ceiling_per_s, rate_per_s=rate)
    why = engine_available()
    if why or bench.runner is None:
        r.update(status="unavailable", note=why or "no engine running (initial sync failed)")
        return r
    await bench.clear_logs()
    bench.observer.reset_measurements()
    if p.breakdown:
        await bench.runner.acall("traces")  # drop what came before this window
    before = bench.cpu()
    t0 = time.monotonic()
    prof = bench.profiler(f"churn@{label}")
    sampler = RpoSampler(bench.runner, bench.observer)
    sampler.start()
    try:
        gen = await bench.load.churn(rate=rate, duration=p.duration, rng=bench.rng)
        if prof is not None:
            r["profile"] = prof.stop()
        r["rpo"] = await sampler.stop()  # under load only, not while it drains afterwards
        took = await bench.observer.wait_converged(p.converge_timeout)
        health = await bench.runner.acall("health")
    except Exception as exc:
        await sampler.stop()
        return _fail(r, exc)
    throughput = await _churn_outcome(bench, r, who="engine", label=label, rate=rate, gen=gen,
                                      took=took, health=health, t0=t0, before=before)
    bench.engine_churn[label] = throughput or 0.0
    r.update(
        ratio_to_ceiling=ratio(throughput, bench.ceiling_per_s),
        coalescing_ratio=ratio(gen["source_updates"], r["dest_writes"]),
        product="ray" if p.ray else "process",
        syncer_pss_mb=round(tree_pss_mb(bench.runner.pid), 1),
    )
    return r


async def _churn_outcome(
    bench: Bench, r: dict[str, Any], *, who: str, label: str, rate: float, gen: dict[str, Any],
    took: float | None, health: dict[str, Any], t0: float, before: Any,
) -> float | None:
    """What a churn row reports, the product's and the floor's alike: latency, writes, CPU,
    memory and verification into ``r``; returns the throughput (None: did not converge)."""
    p = bench.params
    cpu = bench.cpu_delta(before, bench.cpu(), time.monotonic() - t0)
    lat = list(bench.observer.latencies)
    bench.series["latency"][f"{who} {label} ({gen['achieved_rate_per_s']:,.0f}/s)"] = lat
    if p.breakdown:
        await _breakdown(bench, r)
    check = await bench.verify(ENGINE_SELECTOR)
    writes = await bench.dest_writes(health)
    total = gen["elapsed_s"] + (took or 0.0)
    throughput = gen["source_updates"] / total if took is not None and total > 0 else None
    r.update(
        throughput_per_s=throughput,
        latency_ms=percentiles(lat),
        lost_updates=check["lost_updates"],
        dest_writes=writes,
        dest_requests=await bench.dest_requests(),
        peak_rss_mb=round(proc_memory(bench.runner.pid)["hwm_mb"], 1),
        load=gen,
        converge_s=round(took, 3) if took is not None else None,
        verify=check,
        cpu=cpu,
        syncer_cpu_ms_per_update=_cpu_ms_per(cpu, writes),
        health=health,
    )
    if took is None:
        r["status"] = "failed"
        r["note"] = f"destination did not converge within {p.converge_timeout}s after churn"
    if gen["achieved_rate_per_s"] < 0.9 * rate:
        r["note"] += (
            f" the load generator reached only {gen['achieved_rate_per_s']:,.0f}/s of "
            f"{rate:,.0f}/s offered (source server / harness CPU bound)"
        )
    return throughput


async def _breakdown(bench: Bench, r: dict[str, Any]) -> None:
    if bench.runner is None:
        return
    rows = await bench.runner.acall("traces")
    r["breakdown_ms"] = report.breakdown(
        rows, acked=bench.observer.acked, visible=bench.observer.visible)


# --------------------------------------------------------------------------- the floor


async def _wipe_destination(bench: Bench) -> None:
    """Delete every synced ConfigMap from the destination: the next syncer starts fresh."""
    for ns in namespace_names(bench.params.namespaces):
        await bench.dst.request(
            "DELETE", f"/api/v1/namespaces/{ns}/configmaps",
            params={"labelSelector": ENGINE_SELECTOR},
        )
    for _ in range(600):
        left, _ = await bench.dst.list_all(CONFIGMAPS, label_selector=ENGINE_SELECTOR)
        if not left:
            break
        await asyncio.sleep(0.1)
    bench.observer.forget(bench.load.keys, time.monotonic())


async def floor(bench: Bench, rates: list[float], labels: list[str]) -> list[dict[str, Any]]:
    """The raw copier (``benchmarks.floor``) on a fresh destination: initial sync, then churn
    at the same rates as the product, on the same control planes, in the same run."""
    p = bench.params
    out: list[dict[str, Any]] = []
    init = new_result("floor_initial_sync", ceiling_per_s=bench.ceiling_per_s)
    await bench.stop_runner()
    try:
        await _wipe_destination(bench)
        await bench.clear_logs()
        bench.observer.reset_measurements()
        runner = await bench.start_runner()
        before = bench.cpu()
        t0 = time.monotonic()
        cmd = bench.engine_cmd()
        for k in ("options", "trace", "ray"):
            cmd.pop(k)
        await runner.acall("floor", **cmd, trace=p.breakdown)
        took = await bench.observer.wait_converged(p.converge_timeout)
        wall = time.monotonic() - t0
        check = await bench.verify(ENGINE_SELECTOR)
        tput = p.objects / took if took else None
        init.update(
            throughput_per_s=tput,
            ratio_to_ceiling=ratio(tput, bench.ceiling_per_s),
            lost_updates=check["lost_updates"],
            dest_writes=await bench.dest_writes(),
            dest_requests=await bench.dest_requests(),
            peak_rss_mb=round(proc_memory(runner.pid)["hwm_mb"], 1),
            objects=p.objects,
            seconds=round(took, 2) if took else None,
            verify=check,
            cpu=bench.cpu_delta(before, bench.cpu(), wall),
            note="the raw copier: list + watch + 16 threads of server-side apply, coalescing "
            "per object, no limiter, no destination watch, no Ray (benchmarks/floor.py)",
        )
        if took is None:
            init["status"] = "failed"
    except Exception as exc:
        await bench.stop_runner()
        return [_fail(init, exc)]
    out.append(init)
    for rate, label in zip(rates, labels, strict=False):
        out.append(await _floor_churn(bench, rate, label))
        if p.breakdown:
            # What a syncer's destination watch costs the destination: the same churn once
            # more with one more watch on the copies (as the product's own).
            out.append(await _floor_churn(bench, rate, label, dest_watch=True))
    await bench.stop_runner()
    return out


async def _watch_forever(client: KubeClient) -> None:
    _, rv = await client.list_all(CONFIGMAPS, label_selector=ENGINE_SELECTOR)
    while True:
        async for ev in client.watch(CONFIGMAPS, label_selector=ENGINE_SELECTOR,
                                     resource_version=rv, timeout_seconds=300):
            rv = (ev.get("object") or {}).get("metadata", {}).get("resourceVersion") or rv


async def _floor_churn(
    bench: Bench, rate: float, label: str, *, dest_watch: bool = False
) -> dict[str, Any]:
    p = bench.params
    name = f"floor_churn@{label}" + ("+destwatch" if dest_watch else "")
    r = new_result(name, ceiling_per_s=bench.ceiling_per_s, rate_per_s=rate)
    assert bench.runner is not None
    await bench.clear_logs()
    bench.observer.reset_measurements()
    if p.breakdown:
        await bench.runner.acall("traces")
    watcher = asyncio.create_task(_watch_forever(bench.dst)) if dest_watch else None
    before = bench.cpu()
    t0 = time.monotonic()
    try:
        gen = await bench.load.churn(rate=rate, duration=p.duration, rng=bench.rng)
        took = await bench.observer.wait_converged(p.converge_timeout)
        health = await bench.runner.acall("health")
    except Exception as exc:
        return _fail(r, exc)
    finally:
        if watcher is not None:
            watcher.cancel()
    await _churn_outcome(bench, r, who="floor", label=label, rate=rate, gen=gen, took=took,
                         health=health, t0=t0, before=before)
    return r


async def overload(bench: Bench) -> dict[str, Any]:
    p = bench.params
    rate = 2 * (bench.ceiling_per_s or 0)
    r = new_result("overload@2x", ceiling_per_s=bench.ceiling_per_s)
    why = engine_available()
    if why or bench.runner is None or rate <= 0:
        r.update(status="unavailable", note=why or "no engine running or no ceiling")
        return r
    runner = bench.runner
    await bench.clear_logs()
    bench.observer.reset_measurements()
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()

    async def sample() -> None:
        while True:
            samples.append((time.monotonic() - t0, proc_memory(runner.pid)["rss_mb"]))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    before = bench.cpu()
    prof = bench.profiler("overload")
    try:
        gen = await bench.load.churn(rate=rate, duration=p.duration, concurrency=128, rng=bench.rng)
        churn_end = time.monotonic()
        if prof is not None:
            r["profile"] = prof.stop()
        cpu = bench.cpu_delta(before, bench.cpu(), churn_end - t0)
        writes_during = await bench.dest_writes()
        took = await bench.observer.wait_converged(p.converge_timeout)
        health = await runner.acall("health")
    except Exception as exc:
        sampler.cancel()
        return _fail(r, exc)
    sampler.cancel()
    writes = await bench.dest_writes(health)
    changes_during = sum(1 for t in bench.observer.event_times if t <= churn_end)
    window = churn_end - t0
    write_rate = (writes_during / window) if writes_during is not None else changes_during / window
    bench.series["throughput"]["overload 2x (engine)"] = list(bench.observer.event_times)
    bench.series["overload_rss"] = samples
    check = await bench.verify(ENGINE_SELECTOR)
    rss = [s[1] for s in samples]
    third = max(1, len(rss) // 3)
    r.update(
        throughput_per_s=write_rate,
        ratio_to_ceiling=ratio(write_rate, bench.ceiling_per_s),
        latency_ms=percentiles(bench.observer.latencies),
        lost_updates=check["lost_updates"],
        dest_writes=writes,
        dest_requests=await bench.dest_requests(),
        peak_rss_mb=round(max(rss), 1) if rss else None,
        load=gen,
        converge_s=round(took, 3) if took is not None else None,
        coalescing_ratio=ratio(gen["source_updates"], writes),
        rss_first_third_mb=round(sum(rss[:third]) / third, 1) if rss else None,
        rss_last_third_mb=round(sum(rss[-third:]) / third, 1) if rss else None,
        verify=check,
        cpu=cpu,
        syncer_cpu_ms_per_update=_cpu_ms_per(cpu, writes_during),
        note="throughput = destination write rate during the overload window",
    )
    if took is None:
        r["status"] = "failed"
        r["note"] += f"; did not converge within {p.converge_timeout}s"
    return r


async def restart(bench: Bench) -> dict[str, Any]:
    """A new syncer process over unchanged objects: zero writes, and how long to steady state."""
    p = bench.params
    r = new_result("restart", ceiling_per_s=bench.ceiling_per_s)
    why = engine_available()
    if why:
        r.update(status="unavailable", note=why)
        return r
    if bench.runner is None:
        # Nothing synced the destination in this run yet: sync it first (not measured).
        first = await initial_sync(bench)
        if first["status"] != "ok":
            r.update(status="failed", note=f"the preparatory sync failed: {first['note']}")
            return r
    await bench.stop_runner()
    await bench.clear_logs()
    runner = await bench.start_runner()
    base = proc_memory(runner.pid)
    try:
        t0 = time.monotonic()
        await runner.acall("engine", **bench.engine_cmd())
        took, health = await bench.wait_synced(runner, p.converge_timeout)
        await asyncio.sleep(1.0 if p.quick else 3.0)  # late writes would show up here
        await runner.acall("gc")
        mem = proc_memory(runner.pid)
        health = await runner.acall("health")
    except Exception as exc:
        await bench.stop_runner()
        return _fail(r, exc)
    check = await bench.verify(ENGINE_SELECTOR)
    writes = await bench.dest_writes(health)
    growth = mem["rss_mb"] - base["rss_mb"]
    bench.series.setdefault("memory", [(0, 0.0)]).append((p.objects, growth))
    r.update(
        throughput_per_s=(p.objects / took) if took else None,
        lost_updates=check["lost_updates"],
        dest_writes=writes,
        dest_requests=await bench.dest_requests(),
        peak_rss_mb=round(mem["hwm_mb"], 1),
        steady_state_s=round(took, 3) if took is not None else None,
        objects=p.objects,
        rss_growth_mb=round(growth, 1),
        bytes_per_object=round(growth * 1024 * 1024 / p.objects) if p.objects else None,
        verify=check,
        health=health,
        wall_s=round(time.monotonic() - t0, 2),
        note="throughput = objects re-checked per second until synced",
    )
    if writes:
        r["status"] = "failed"
        r["note"] += (
            f"; {writes} destination writes on a restart over unchanged objects (must be 0)"
        )
    if took is None:
        r["status"] = "failed"
        r["note"] += "; never reported synced"
    return r  # runner stays up for the memory scenario


async def _traced_point(bench: Bench, n: int) -> dict[str, Any] | None:
    """A second fresh syncer over the same n objects with tracemalloc on: its live heap growth."""
    await bench.stop_runner()
    runner = await bench.start_runner()
    try:
        await runner.acall("engine", **bench.engine_cmd(trace_memory=True))
        synced, _ = await bench.wait_synced(runner, max(120.0, n / 50))
        if synced is None:
            return None
        return dict(await runner.acall("traced"))
    finally:
        await bench.stop_runner()


async def memory(bench: Bench) -> dict[str, Any]:
    """RSS growth of a fresh syncer process per tracked object, at several object counts."""
    p = bench.params
    r = new_result("memory_per_object", ceiling_per_s=bench.ceiling_per_s)
    why = engine_available()
    if why:
        r.update(status="unavailable", note=why)
        return r
    points: dict[str, Any] = {}
    for prev in bench.series.get("memory", [])[1:]:
        points[str(prev[0])] = {"rss_growth_mb": round(prev[1], 1), "source": "restart scenario"}
    lost = 0
    for n in sorted(set(p.memory_objects)):
        if str(n) in points:
            # RSS from the restart scenario; add the live-heap figure from a traced run.
            traced = await _traced_point(bench, n) if n <= 20_000 else None
            if traced:
                points[str(n)]["traced_bytes_per_object"] = round(traced["current"] / n)
                points[str(n)]["traced_top"] = traced["top"]
                bench.series.setdefault("memory_traced", [(0, 0.0)]).append(
                    (n, traced["current"] / 2**20)
                )
            continue
        await bench.stop_runner()
        have = len(bench.load.keys)
        if n > have:
            extra = object_keys(objects=n - have, namespaces=p.namespaces, start=have)
            await bench.load.create(extra, concurrency=32)
        await bench.clear_logs()
        runner = await bench.start_runner()
        base = proc_memory(runner.pid)
        try:
            await runner.acall("engine", **bench.engine_cmd())
            took = await bench.observer.wait_converged(max(p.converge_timeout, n / 100))
            synced, _ = await bench.wait_synced(runner, 120)
            await runner.acall("gc")
            mem = proc_memory(runner.pid)
        except Exception as exc:
            await bench.stop_runner()
            return _fail(r, exc)
        check = await bench.verify(ENGINE_SELECTOR)
        lost += check["lost_updates"]
        growth = mem["rss_mb"] - base["rss_mb"]
        bench.series.setdefault("memory", [(0, 0.0)]).append((n, growth))
        traced = await _traced_point(bench, n) if n <= 20_000 else None
        if traced:
            bench.series.setdefault("memory_traced", [(0, 0.0)]).append(
                (n, traced["current"] / 2**20)
            )
        points[str(n)] = {
            "traced_bytes_per_object": round(traced["current"] / n) if traced else None,
            "traced_top": traced["top"] if traced else None,
            "rss_growth_mb": round(growth, 1),
            "uss_growth_mb": round(mem["uss_mb"] - base["uss_mb"], 1),
            "peak_rss_mb": round(mem["hwm_mb"], 1),
            "sync_s": round(took, 2) if took else None,
            "converged": took is not None and synced is not None,
        }
    await bench.stop_runner()
    per_obj = {k: round(v["rss_growth_mb"] * 1024 * 1024 / int(k)) for k, v in points.items()}
    counts = sorted(int(k) for k in points)
    marginal = None
    if len(counts) >= 2:
        lo, hi = counts[0], counts[-1]
        d_mb = points[str(hi)]["rss_growth_mb"] - points[str(lo)]["rss_growth_mb"]
        marginal = round(d_mb * 1024 * 1024 / (hi - lo))
    r.update(
        points=points,
        bytes_per_object=per_obj,
        marginal_bytes_per_object=marginal,
        lost_updates=lost,
        peak_rss_mb=max((v.get("peak_rss_mb") or 0) for v in points.values()) or None,
        traced_bytes_per_object={k: v.get("traced_bytes_per_object") for k, v in points.items()},
        note="RSS growth of the syncer process (shard only; servers elsewhere) after sync + gc; "
        "traced = live Python heap allocated by the shard (tracemalloc, separate run)",
    )
    return r


# --------------------------------------------------------------------------- naive baseline


async def naive(bench: Bench, churn_rate: float) -> list[dict[str, Any]]:
    """The afternoon syncer over its own objects: initial sync, then churn at ``churn_rate``."""
    p = bench.params
    init = new_result("naive_initial_sync", ceiling_per_s=bench.ceiling_per_s)
    ch = new_result("naive_churn", ceiling_per_s=bench.ceiling_per_s)
    ns = [f"naive-{i:03d}" for i in range(min(p.namespaces, 10))]
    keys = [(ns[i % len(ns)], f"nv-{i:06d}") for i in range(p.naive_objects)]
    # The naive objects carry their own label value, so the engine never sees them.
    load = LoadGenerator(
        client=bench.src,
        observer=bench.observer,
        payload_size=p.payload_size,
        seq=10**9,
        label_value="naive",
    )
    await bench.stop_runner()
    await load.create(keys, concurrency=32)
    await bench.clear_logs()
    bench.observer.reset_measurements()
    runner = await bench.start_runner()
    cmd = bench.engine_cmd()
    cmd.pop("options")
    cmd.pop("trace")
    cmd.pop("ray")
    cmd["selector"] = NAIVE_SELECTOR
    try:
        t0 = time.monotonic()
        await runner.acall("naive", **cmd)
        took = await bench.observer.wait_converged(max(p.converge_timeout, p.naive_objects / 20))
        bench.series["throughput"]["initial sync (naive)"] = list(bench.observer.event_times)
        writes = await bench.dest_writes()
        check = await bench.verify(NAIVE_SELECTOR)
        tput = p.naive_objects / took if took else None
        bench.naive["initial"] = tput or 0.0
        init.update(
            throughput_per_s=tput,
            ratio_to_ceiling=ratio(tput, bench.ceiling_per_s),
            naive_per_s=tput,
            lost_updates=check["lost_updates"],
            dest_writes=writes,
            dest_requests=await bench.dest_requests(),
            peak_rss_mb=round(proc_memory(runner.pid)["hwm_mb"], 1),
            objects=p.naive_objects,
            seconds=round(took, 2) if took else None,
            verify=check,
            wall_s=round(time.monotonic() - t0, 2),
        )
        # Churn
        await bench.clear_logs()
        bench.observer.reset_measurements()
        load.keys = keys
        gen = await load.churn(rate=churn_rate, duration=p.naive_duration, rng=bench.rng)
        took = await bench.observer.wait_converged(max(p.converge_timeout, 180.0))
        lat = list(bench.observer.latencies)
        bench.series["latency"][f"naive {gen['achieved_rate_per_s']:,.0f}/s"] = lat
        writes = await bench.dest_writes()
        check = await bench.verify(NAIVE_SELECTOR)
        total = gen["elapsed_s"] + (took or 0.0)
        tput = gen["source_updates"] / total if took is not None else None
        bench.naive["churn"] = tput or 0.0
        ch.update(
            throughput_per_s=tput,
            ratio_to_ceiling=ratio(tput, bench.ceiling_per_s),
            naive_per_s=tput,
            latency_ms=percentiles(lat),
            lost_updates=check["lost_updates"],
            dest_writes=writes,
            dest_requests=await bench.dest_requests(),
            peak_rss_mb=round(proc_memory(runner.pid)["hwm_mb"], 1),
            load=gen,
            converge_s=round(took, 2) if took is not None else None,
            verify=check,
            note="throughput = source updates / (churn time + time to converge)",
        )
        if took is None:
            ch["note"] += "; the naive syncer did not converge within the time limit"
    except Exception as exc:
        await bench.stop_runner()
        return [_fail(init, exc), ch]
    await bench.stop_runner()
    return [init, ch]


def fill_naive_ratios(results: list[dict[str, Any]], bench: Bench) -> None:
    """Put naive figures and ratios into the engine rows (same run)."""
    ni, nc = bench.naive.get("initial"), bench.naive.get("churn")
    for r in results:
        s = r["scenario"]
        if s == "initial_sync":
            r["naive_per_s"] = ni
            r["ratio_to_naive"] = ratio(r.get("throughput_per_s"), ni)
        elif s.startswith(("churn@", "overload")):
            r["naive_per_s"] = nc
            r["ratio_to_naive"] = ratio(r.get("throughput_per_s"), nc)


# --------------------------------------------------------------------------- shards


async def shards(bench: Bench, counts: list[int], ray_nodes: int = 3) -> dict[str, Any]:
    """1/10/100/1,000 shards through the operator's Ray layer over ``ray_nodes`` Ray worker nodes
    (``benchmarks.shards``), then a node lost at the largest count."""
    import json
    import sys
    import tempfile

    r = new_result("shards")
    why = engine_available()
    import importlib.util

    # Only look for the modules: importing Ray here would weigh on the harness process.
    missing = [
        m
        for m in ("ray_syncer.fleet.actors", "ray_syncer.fleet.supervisor")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        why = why or f"the Ray operator is not available ({', '.join(missing)} missing)"
    if why:
        r.update(status="unavailable", note=f"{why}; no shard figures measured for {counts}")
        return r
    await bench.stop_runner()
    top = max(counts)
    names = [f"shard-{i:04d}" for i in range(top)]
    await ensure_namespaces(bench.src, names)
    await ensure_namespaces(bench.dst, names)
    load = LoadGenerator(client=bench.src, observer=None, payload_size=bench.params.payload_size)
    await load.create([(ns, "seed") for ns in names], concurrency=32)
    out = Path(tempfile.mkdtemp(prefix="rsbench-shards-")) / "shards.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.shards",
        "--source-kubeconfig",
        str(bench.clusters.source_kubeconfig),
        "--dest-kubeconfig",
        str(bench.clusters.dest_kubeconfig),
        "--counts",
        ",".join(str(c) for c in counts),
        "--selector",
        ENGINE_SELECTOR,
        "--ray-nodes",
        str(ray_nodes),
        "--out",
        str(out),
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=240 * (len(counts) + 1))
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        r.update(status="failed", note="the shards run timed out")
        return r
    if proc.returncode != 0 or not out.exists():
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        r.update(status="failed", note=f"benchmarks.shards exited {proc.returncode}: {tail}")
        return r
    found = json.loads(out.read_text())
    points, node_loss = found["points"], found["node_loss"]
    check = await bench.verify(ENGINE_SELECTOR, ns_prefix="shard-")
    r.update(
        points=points,
        node_loss=node_loss,
        ray_nodes=found["ray_nodes"],
        lost_updates=check["lost_updates"],
        peak_rss_mb=None,
        total_pss_mb=points[-1]["memory"]["total_pss_mb"],
        throughput_per_s=None,
        verify=check,
        note=f"Ray: a head (no CPUs, dashboard) + {found['ray_nodes']} worker nodes, default "
        "flags; memory = PSS summed over every process of that Ray (hosts, supervisor, idle "
        "workers, GCS, raylets, dashboard, agents); startup = apply -> every shard Syncing and "
        "synced; node loss = a worker node killed (SIGKILL) -> every shard running (listed, "
        "watching) on the other nodes, then every change written, with a write to every "
        "namespace meanwhile (checked by lost_updates)",
    )
    if any(p["startup_to_all_syncing_s"] is None for p in points):
        r["status"] = "failed"
        r["note"] += "; not every shard reached Syncing in time"
    if node_loss is not None and node_loss["all_synced_after_s"] is None:
        r["status"] = "failed"
        r["note"] += "; not every shard came back after the node loss"
    return r
