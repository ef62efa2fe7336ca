"""Entry point: ``python -m benchmarks.churn`` (``make bench``) runs every scenario in one run.

Why this exists: ratios (to the ceiling, to the naive baseline) only mean
something when all figures come from the same run on the same machine, so one
command runs them all in order: ceiling, initial sync, churn at several rates,
overload at 2x the ceiling, restart over unchanged objects, memory per object,
the naive baseline, and the shards scenario. It prints a table, writes one JSON
per scenario plus a summary, and draws the plots.

Exit status: 0 when every scenario that ran kept the destination equal to the
source; 1 when any lost data or failed. A scenario whose code under test has not
landed yet says "unavailable" instead of inventing numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import report, scenarios
from benchmarks.clusters import Clusters
from benchmarks.workload import LoadGenerator, Observer

ALL = ("ceiling", "initial", "churn", "overload", "restart", "memory", "naive", "shards")
# --quick is the `make test` smoke run: no Ray (the e2e suite covers it), so it stays short.
QUICK = tuple(s for s in ALL if s != "shards")
# On real control planes: memory per object is the in-memory run's (10^5 objects in etcd would
# only measure etcd); shards run once, for one syncer's whole Ray instance.
REAL_SCENARIOS = tuple(s for s in ALL if s != "memory")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _opts(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        k, _, v = item.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = {"true": True, "false": False}.get(v.lower(), v)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.churn",
        description="ray-syncer benchmarks: ceiling, initial sync, churn, overload, restart, "
        "memory, naive baseline, shards.",
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (< 1 min), no targets")
    p.add_argument(
        "--scenarios", help=f"comma list of {','.join(ALL)} (default all; --quick: all but shards)"
    )
    p.add_argument("--objects", type=int, help="objects in the source (default 10000; quick 300)")
    p.add_argument("--namespaces", type=int, help="namespaces they spread over (default 10)")
    p.add_argument(
        "--rates",
        type=_floats,
        help="absolute churn rates per second (default: 0.25,0.5,1.0,1.5 x the measured ceiling)",
    )
    p.add_argument("--duration", type=float, help="seconds per churn/overload run (default 15)")
    p.add_argument("--payload-size", type=int, help="bytes of data per ConfigMap (default 1024)")
    p.add_argument("--ceiling-concurrency", type=_ints, help="sweep (default 1,8,32,64)")
    p.add_argument(
        "--naive-objects", type=int, help="objects for the naive baseline (default 2000)"
    )
    p.add_argument("--memory-objects", type=_ints, help="object counts (default 10000,100000)")
    p.add_argument("--shards", type=_ints, help="shard counts (default 1,10,100,1000; quick 2)")
    p.add_argument(
        "--ray-nodes", type=int, default=3,
        help="Ray worker nodes for the shards scenario, beside a head with no CPUs (default 3; "
        "0: one local Ray node)",
    )  # fmt: skip
    p.add_argument(
        "--engine-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="EngineOptions override (repeatable); default: the production defaults",
    )
    p.add_argument(
        "--substrate",
        choices=("memory", "envtest"),
        default="memory",
        help="memory: two in-memory API servers (default); envtest: two real control planes "
        "from KUBEBUILDER_ASSETS (etcd + kube-apiserver), with their own defaults (2,000 "
        "objects of 512 B, 20 s per rate, absolute rates)",
    )
    p.add_argument("--source-kubeconfig", help="run against a real source cluster")
    p.add_argument("--dest-kubeconfig", help="run against a real destination cluster")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for JSON and PNGs")
    p.add_argument(
        "--latest",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also copy results to <out>/latest (default: on for full runs, off for --quick)",
    )
    p.add_argument(
        "--floor", action=argparse.BooleanOptionalAction, default=True,
        help="after the product's churn, run the raw copier (benchmarks/floor.py) on a fresh "
        "destination at the same rates and report every churn row as a ratio to it (default on)",
    )
    p.add_argument(
        "--breakdown", action="store_true",
        help="trace every write of the churn rows (product and floor): event arrival, queue "
        "wait, write budget, request round trip, destination visibility",
    )
    p.add_argument(
        "--product", choices=("process", "ray"), default=None,
        help="process: the engine's Shard alone in a process (no Ray); ray: as `ray-syncer run` "
        "runs it, a local Ray with the supervisor and a shard host actor, whose every process "
        "counts as the syncer's CPU and memory (default: ray on envtest full runs, else process)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the syncer process with py-spy (if installed) during initial sync and overload",
    )
    return p


# A real apiserver on 2 shared cores takes a few hundred writes/s: fewer, smaller objects,
# longer runs, and fixed rates around and past what one syncer should carry.
REAL_DEFAULTS: dict[str, Any] = {
    "objects": 2000, "payload_size": 512, "duration": 20.0,
    "rates": [100.0, 200.0, 300.0, 400.0, 600.0], "ceiling_concurrency": [8, 16, 32],
}


def params_from(args: argparse.Namespace) -> scenarios.Params:
    q = args.quick
    real = args.substrate == "envtest" and not q
    # The engine runs with the production defaults (the adaptive write budget included);
    # --engine-opt overrides them for experiments.
    engine_options: dict[str, Any] = _opts(args.engine_opt)
    return scenarios.Params(
        quick=q,
        objects=args.objects or (300 if q else REAL_DEFAULTS["objects"] if real else 10_000),
        namespaces=args.namespaces or (3 if q else 10),
        rates=args.rates or (REAL_DEFAULTS["rates"] if real else None),
        rate_fractions=[0.5] if q else [0.25, 0.5, 1.0, 1.5],
        duration=args.duration or (2.0 if q else REAL_DEFAULTS["duration"] if real else 15.0),
        payload_size=args.payload_size or (REAL_DEFAULTS["payload_size"] if real else 1024),
        ceiling_concurrency=args.ceiling_concurrency or (
            [8, 32] if q else REAL_DEFAULTS["ceiling_concurrency"] if real else [1, 8, 32, 64]),
        ceiling_duration=1.0 if q else 4.0,
        naive_objects=args.naive_objects or (100 if q else 2000),
        naive_duration=2.0 if q else 8.0,
        memory_objects=args.memory_objects or ([] if q else [10_000, 100_000]),
        converge_timeout=30.0 if q else 120.0,
        engine_options=engine_options,
        seed=args.seed,
        profile_dir=args.out / "profiles" if args.profile else None,
        breakdown=args.breakdown,
        ray=(args.product or ("ray" if real else "process")) == "ray",
    )


async def run(args: argparse.Namespace) -> int:
    from ray_syncer.kube.client import KubeClient
    from ray_syncer.kube.config import load_default

    envtest = args.substrate == "envtest"
    default = QUICK if args.quick else REAL_SCENARIOS if envtest else ALL
    chosen = args.scenarios or ",".join(default)
    wanted = [s.strip() for s in chosen.split(",") if s.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        print(f"unknown scenarios: {sorted(unknown)}; choose from {ALL}", file=sys.stderr)
        return 2
    params = params_from(args)
    latest = args.latest if args.latest is not None else not args.quick
    substrate = "kubeconfig" if args.source_kubeconfig else args.substrate
    stamp = f"{substrate}-{report.timestamp()}"
    context: dict[str, Any] = {
        "timestamp": stamp,
        "machine": report.machine(),
        "versions": report.versions(),
        "parameters": {**vars(params), "scenarios": wanted},
        "substrate": substrate,
        "clusters": {
            "kubeconfig": "real (kubeconfigs)",
            "envtest": "real control planes (envtest: etcd + kube-apiserver, no controller-manager)",
            "memory": "in-memory (2 processes)",
        }[substrate],
    }
    started = time.monotonic()
    clusters = await asyncio.get_running_loop().run_in_executor(
        None,
        lambda: Clusters.start_envtest() if envtest and not args.source_kubeconfig else
        Clusters.start(
            source_kubeconfig=args.source_kubeconfig, dest_kubeconfig=args.dest_kubeconfig
        ),
    )
    results: list[dict[str, Any]] = []
    src = KubeClient(load_default(kubeconfig=str(clusters.source_kubeconfig)), max_connections=128)
    dst = KubeClient(load_default(kubeconfig=str(clusters.dest_kubeconfig)), max_connections=32)
    observer = Observer(client=dst, trace=args.breakdown)
    bench = scenarios.Bench(
        params=params,
        clusters=clusters,
        src=src,
        dst=dst,
        observer=observer,
        load=LoadGenerator(client=src, observer=observer, payload_size=params.payload_size),
        rng=random.Random(params.seed),
    )
    try:
        setup = await scenarios.prepare(bench)
        context["setup"] = setup
        if "ceiling" in wanted or any(s in wanted for s in ("churn", "overload")):
            results.append(await scenarios.ceiling(bench))
        if "initial" in wanted or any(s in wanted for s in ("churn", "overload")):
            results.append(await scenarios.initial_sync(bench))
        ceiling = bench.ceiling_per_s or 0.0
        rates = params.rates or [round(f * ceiling) for f in params.rate_fractions if ceiling]
        labels = (
            [f"{r:g}" for r in rates]
            if params.rates
            else [f"{f:g}x" for f in params.rate_fractions]
        )
        if "churn" in wanted:
            for rate, label in zip(rates, labels, strict=False):
                results.append(await scenarios.churn(bench, rate, label))
        if "overload" in wanted:
            results.append(await scenarios.overload(bench))
        if "churn" in wanted and args.floor:
            # The raw copier on a fresh destination, at the same rates, right after the product.
            results.extend(await scenarios.floor(bench, rates, labels))
            report.fill_floor_ratios(results)
        if "restart" in wanted:
            results.append(await scenarios.restart(bench))
        if "memory" in wanted:
            results.append(await scenarios.memory(bench))
        if "naive" in wanted:
            naive_rate = max(rates) if rates else 200.0
            results.extend(await scenarios.naive(bench, naive_rate))
            scenarios.fill_naive_ratios(results, bench)
        if bench.ceiling_per_s and len(wanted) > 1:
            results.append(await scenarios.ceiling(bench, recheck=True))
        if "shards" in wanted:
            results.append(
                await scenarios.shards(
                    bench, args.shards or ([2] if params.quick else [1] if envtest else
                                           [1, 10, 100, 1000]),
                    ray_nodes=args.ray_nodes,
                )
            )
    finally:
        await bench.stop_runner()
        await observer.stop()
        await src.close()
        await dst.close()
        await asyncio.get_running_loop().run_in_executor(None, clusters.stop)
    context["wall_s"] = round(time.monotonic() - started, 1)
    # Other work on the machine skews every figure; the load before and after says how much.
    context["machine"]["load_avg_at_end"] = os.getloadavg()
    out: Path = args.out
    latest_dir = out / "latest" / substrate if latest else None
    report.write_results(results, out=out, stamp=stamp, context=context, latest=latest_dir)
    report.plot_all(bench.series, out=out, stamp=stamp, latest=latest_dir)
    m = context["machine"]
    report.print_table(
        results,
        title=f"ray-syncer benchmarks ({'quick' if params.quick else 'full'}; {m['cpu_count']} CPU "
        f"{m['cpu_model']}, {m['memory_gb']} GB; {context['clusters']}; {context['wall_s']} s)",
    )
    print(f"results: {out}/*-{stamp}.json" + (f" and {latest_dir}/" if latest_dir else ""))
    bad = [
        r["scenario"]
        for r in results
        if r["status"] == "failed" or (r.get("lost_updates") or 0) > 0
    ]
    bad = [s for s in bad if not s.startswith("naive")] + [
        r["scenario"]
        for r in results
        if r["scenario"].startswith("naive")
        and (r.get("lost_updates") or 0) > 0
        and r.get("converge_s") is not None
    ]
    if bad:
        print(f"FAILED (data lost or scenario failed): {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
