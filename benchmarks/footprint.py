"""What one syncer's whole Ray costs: PSS and CPU per Ray process, idle and under load.

Why this exists: on a small node, Ray's own processes (GCS, raylet, the
dashboard and its module processes, the dashboard and runtime-env agents, the
log monitor, idle workers) compete for the same cores as the control planes
and the shards (issue 21). This measures them, per process and in total, for
one syncer with 1 and with 100 shards, with several Ray settings in the same
run, so a change in ``ray_syncer.fleet.local`` or in deploy/ray-cluster.yaml
shows as before/after numbers from one machine at one time.

Variants (each in its own process, started fresh, one after the other):

* ``local``: ``ray-syncer run``'s local Ray as ``fleet.local.connect`` starts it
  now; ``local-ray-defaults``: the same with none of ray-syncer's Ray settings
  (``ray.init`` defaults: what ``ray-syncer run`` did before issue 21);
* ``kuberay`` / ``kuberay-ray-defaults``: deploy/ray-cluster.yaml's shape: a
  head with ``num-cpus 0``, a 200 MB object store, the dashboard and metrics
  export, plus one worker node with ``num-cpus 1``, each its own raylet and
  agents; with ``fleet.local.LEAN_RAY_ENV`` in the environment (what the
  RayCluster's containers would set) or without it.

Measured, after every shard is synced: PSS (``/proc/<pid>/smaps_rollup``, the
same figure as psutil's ``memory_full_info().pss``) per process and summed over
Ray's process tree (the driver, i.e. the operator, is reported apart); CPU
cores per process over an idle window (default 30 s); and with ``--load-rate``,
CPU per process while one shard's namespace takes that many source updates
per second. The API servers are in-memory ones in their own processes.

``python -m benchmarks.footprint [--shards 1,100] [--variants ...] [--out DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.clusters import children_of, proc_cpu_seconds, proc_memory

VARIANTS = ("local-ray-defaults", "local", "kuberay-ray-defaults", "kuberay")
RESULTS = Path(__file__).resolve().parent / "results" / "latest" / "footprint"


def process_name(cmdline: str) -> str:
    """A readable name for one Ray process, from its command line (proctitle)."""
    argv = cmdline.split()
    first = argv[0] if argv else ""
    rules = (
        ("ray_syncer.fleet.start_guard", "-"), ("multiprocessing.resource_tracker", "-"),
        ("multiprocessing.forkserver import main; main(", "dashboard module forkserver"),
        ("ray::DashboardAgent", "dashboard agent"), ("ray::RuntimeEnvAgent", "runtime env agent"),
        ("gcs_server", "gcs_server"), ("/raylet", "raylet"),
        ("dashboard/agent.py", "dashboard agent"), ("runtime_env/agent/main.py",
                                                     "runtime env agent"),
        ("dashboard/dashboard.py", "dashboard"), ("log_monitor.py", "log_monitor"),
        ("autoscaler/_private/monitor.py", "monitor"), ("ray::ShardHostActor", "shard host"),
        ("ray::SupervisorActor", "supervisor"), ("ray::IDLE", "idle worker"),
        ("default_worker.py", "idle worker"), ("ray::", "worker"),
    )
    if first.startswith("ray-dashboard-"):
        return "dashboard module " + first.removeprefix("ray-dashboard-").split("-")[0]
    for needle, name in rules:
        if needle in cmdline[:400]:
            return name
    if first.startswith("ray-dashboard-"):
        return "dashboard module " + first.removeprefix("ray-dashboard-").split("-")[0]
    return Path(first).name or "?"


def ray_tree(root: int, *, skip: set[int]) -> dict[int, str]:
    """pid -> name for every process below ``root`` (Ray's tree), without ``skip``."""
    kids = children_of()
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c in out or c in skip:
                continue
            try:
                raw = Path(f"/proc/{c}/cmdline").read_bytes()
            except OSError:
                continue
            todo.append(c)
            name = process_name(raw.replace(b"\0", b" ").decode(errors="replace"))
            if name != "-":  # ours (the start guard) or Python's own helper
                out[c] = name
    return out


def _cpu(pids: dict[int, str]) -> dict[int, float]:
    return {p: proc_cpu_seconds(p) for p in pids}


def cpu_window(pids: dict[int, str], seconds: float) -> dict[str, Any]:
    before, t0 = _cpu(pids), time.monotonic()
    time.sleep(seconds)
    return _cpu_since(pids, before, t0)


def _cpu_since(pids: dict[int, str], before: dict[int, float], t0: float) -> dict[str, Any]:
    wall = time.monotonic() - t0
    per: dict[str, float] = {}
    for p, name in pids.items():
        per[name] = per.get(name, 0.0) + (proc_cpu_seconds(p) - before.get(p, 0.0)) / wall
    return {"cores": round(sum(per.values()), 4), "window_s": round(wall, 1),
            "per_process": {k: round(v, 4) for k, v in sorted(per.items(), key=lambda kv: -kv[1])}}


def memory(pids: dict[int, str]) -> dict[str, Any]:
    per: dict[str, float] = {}
    count: dict[str, int] = {}
    for p, name in pids.items():
        per[name] = per.get(name, 0.0) + proc_memory(p)["pss_mb"]
        count[name] = count.get(name, 0) + 1
    return {"pss_mb": round(sum(per.values()), 1), "processes": len(pids),
            "per_process_pss_mb": {(f"{k} x{count[k]}" if count[k] > 1 else k): round(v, 1)
                                   for k, v in sorted(per.items(), key=lambda kv: -kv[1])}}


# --------------------------------------------------------------------------- one variant


def _env_for(variant: str) -> dict[str, str]:
    from ray_syncer.fleet import local

    env = dict(os.environ)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # as the deployment sets it
    if variant == "kuberay":
        env.update(local.LEAN_RAY_ENV)
    return env


def _kuberay_like(temp: str) -> Any:
    """deploy/ray-cluster.yaml's Ray on this machine: its head's and a worker's start params.

    The head as KubeRay starts it with in-tree autoscaling: ``--no-monitor`` (the autoscaler
    runs in a container of its own beside it, ``autoscalerOptions``: not counted here),
    ``num-cpus 0``, a 200 MB object store, the dashboard and the metrics export; one worker
    node with ``num-cpus 1`` and a 200 MB object store (each node its own raylet and agents).
    """
    import ray._private.utils as ray_utils
    from ray.cluster_utils import Cluster

    from ray_syncer.fleet.testing import _free_port

    def ports() -> dict[str, Any]:
        return {"object_store_memory": 200_000_000, "dashboard_agent_listen_port": _free_port(),
                "metrics_export_port": _free_port()}

    # Cluster records its address in Ray's default temp dir, where any other ray.init() on
    # this machine would find it and join: record it in ours (as fleet.testing.LocalCluster).
    real = ray_utils.write_ray_address
    ray_utils.write_ray_address = lambda address, temp_dir=None: real(address, temp)
    try:
        cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args=dict(
            num_cpus=0, temp_dir=temp, include_dashboard=True, dashboard_host="127.0.0.1",
            dashboard_port=_free_port(), no_monitor=True, **ports()))
    finally:
        ray_utils.write_ray_address = real
    cluster.add_node(num_cpus=1, **ports())
    return cluster


async def _one(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.shards import all_synced, desired_shards
    from benchmarks.workload import CONFIGMAPS, LoadGenerator, ensure_namespaces, object_keys
    from ray_syncer.fleet import actors, local
    from ray_syncer.fleet import testing as fleet_testing
    from ray_syncer.kube.client import KubeClient
    from ray_syncer.kube.config import load_default

    variant, n = args.variant, args.count
    src_cfg = load_default(kubeconfig=args.source_kubeconfig)
    dst_cfg = load_default(kubeconfig=args.dest_kubeconfig)
    temp = tempfile.mkdtemp(prefix="rsf-", dir="/tmp")
    cluster = None
    t0 = time.monotonic()
    if variant.startswith("kuberay"):
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        cluster = _kuberay_like(temp)
        local.connect(cluster.address)
    elif variant == "local-ray-defaults":
        local.connect(adopt_orphans=True, lean=False)
    else:
        local.connect(adopt_orphans=True)  # exactly what `ray-syncer run` does
    started_s = time.monotonic() - t0
    driver = os.getpid()
    out: dict[str, Any] = {"variant": variant, "shards": n, "ray_start_s": round(started_s, 1)}
    src = KubeClient(src_cfg, max_connections=32)
    try:
        backend = actors.RayBackend(actors.ActorSettings(shards_per_host=0))
        desired = desired_shards(n, argparse.Namespace(selector="ray-syncer-bench=1"),
                                 src_cfg, dst_cfg)
        deadline = time.monotonic() + args.timeout
        synced = False
        while time.monotonic() < deadline:
            report = await backend.apply(desired)
            if all_synced(report, n):
                synced = True
                break
            await asyncio.sleep(0.5)
        out["synced_s"] = round(time.monotonic() - t0, 1) if synced else None
        await asyncio.sleep(args.settle)
        pids = ray_tree(driver, skip=set())
        out["memory"] = memory(pids)
        out["driver_pss_mb"] = round(proc_memory(driver)["pss_mb"], 1)
        out["idle_cpu"] = await asyncio.to_thread(cpu_window, pids, args.idle)
        if args.load_rate > 0:
            load = LoadGenerator(client=src, observer=None, payload_size=512)
            keys = object_keys(objects=200, namespaces=1)
            keys = [("shard-0000", name) for _, name in keys]
            await load.create(keys, concurrency=16)
            await asyncio.sleep(2.0)
            pids = ray_tree(driver, skip=set())
            before, t1 = _cpu(pids), time.monotonic()
            gen = await load.churn(rate=args.load_rate, duration=args.load_s,
                                   rng=__import__("random").Random(1))
            out["load_cpu"] = _cpu_since(pids, before, t1)
            out["load_cpu"]["achieved_rate_per_s"] = round(gen["achieved_rate_per_s"], 1)
            for ns, name in keys:
                await src.delete(CONFIGMAPS, namespace=ns, name=name)
        await ensure_namespaces(src, [])
        await backend.shutdown()
    finally:
        await src.close()
        fleet_testing.kill_all()
        local.disconnect(timeout=20)
        if cluster is not None:
            cluster.shutdown()
        local.kill_local_ray(grace=5)
        shutil.rmtree(temp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- the run


def run_variant(variant: str, count: int, args: argparse.Namespace, kc: tuple[Path, Path],
                ) -> dict[str, Any]:  # fmt: skip
    out_file = Path(tempfile.mkstemp(prefix="rsf-", suffix=".json")[1])
    cmd = [sys.executable, "-m", "benchmarks.footprint", "--one", "--variant", variant,
           "--count", str(count), "--source-kubeconfig", str(kc[0]),
           "--dest-kubeconfig", str(kc[1]), "--idle", str(args.idle),
           "--load-rate", str(args.load_rate), "--load-s", str(args.load_s),
           "--result", str(out_file)]
    proc = subprocess.run(cmd, env=_env_for(variant), capture_output=True, text=True,
                          timeout=args.timeout + args.idle + args.load_s + 240)
    try:
        if proc.returncode != 0:
            return {"variant": variant, "shards": count, "error": proc.stderr[-2000:]}
        return dict(json.loads(out_file.read_text()))
    finally:
        out_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.footprint")
    p.add_argument("--shards", default="1,100")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--idle", type=float, default=30.0, help="idle CPU window, seconds")
    p.add_argument("--settle", type=float, default=10.0)
    p.add_argument("--load-rate", type=float, default=200.0)
    p.add_argument("--load-s", type=float, default=15.0)
    p.add_argument("--timeout", type=float, default=240.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    # One variant in this process (the run starts one such process per variant and count).
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    p.add_argument("--source-kubeconfig", help=argparse.SUPPRESS)
    p.add_argument("--dest-kubeconfig", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        result = asyncio.run(_one(args))
        Path(args.result).write_text(json.dumps(result))
        return 0
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from benchmarks.clusters import Clusters
    from benchmarks.report import machine, timestamp
    from benchmarks.shards import main as _unused  # noqa: F401  (importable: fail early)

    counts = [int(x) for x in args.shards.split(",") if x.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    clusters = Clusters.start()
    results: list[dict[str, Any]] = []
    try:
        asyncio.run(_namespaces(clusters, max(counts)))
        for count in counts:
            for variant in variants:
                r = run_variant(variant, count, args, (clusters.source_kubeconfig,
                                                       clusters.dest_kubeconfig))
                print(json.dumps(_brief(r)), flush=True)
                results.append(r)
    finally:
        clusters.stop()
    doc = {"timestamp": timestamp(), "machine": machine(), "idle_window_s": args.idle,
           "load_rate_per_s": args.load_rate, "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "footprint.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(results))
    return 0 if not any("error" in r for r in results) else 1


async def _namespaces(clusters: Any, n: int) -> None:
    from benchmarks.workload import LoadGenerator, ensure_namespaces
    from ray_syncer.kube.client import KubeClient
    from ray_syncer.kube.config import load_default

    names = [f"shard-{i:04d}" for i in range(n)]
    async with KubeClient(load_default(kubeconfig=str(clusters.source_kubeconfig))) as src, \
            KubeClient(load_default(kubeconfig=str(clusters.dest_kubeconfig))) as dst:
        await ensure_namespaces(src, names)
        await ensure_namespaces(dst, names)
        await LoadGenerator(client=src, observer=None, payload_size=512).create(
            [(ns, "seed") for ns in names], concurrency=16)


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    if "error" in r:
        return {"variant": r["variant"], "shards": r["shards"], "error": r["error"][-300:]}
    return {"variant": r["variant"], "shards": r["shards"], "pss_mb": r["memory"]["pss_mb"],
            "processes": r["memory"]["processes"], "idle_cores": r["idle_cpu"]["cores"],
            "load_cores": (r.get("load_cpu") or {}).get("cores")}


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| Ray settings | shards | processes | PSS MB (whole Ray) | idle CPU cores | "
             "CPU cores under load | top idle CPU | top PSS |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['shards']} | failed | | | | | |")
            continue
        idle = r["idle_cpu"]["per_process"]
        mem = r["memory"]["per_process_pss_mb"]
        top_cpu = ", ".join(f"{k} {v:.3f}" for k, v in list(idle.items())[:4])
        top_mem = ", ".join(f"{k} {v:.0f}" for k, v in list(mem.items())[:4])
        load = (r.get("load_cpu") or {}).get("cores")
        lines.append(f"| {r['variant']} | {r['shards']} | {r['memory']['processes']} | "
                     f"{r['memory']['pss_mb']:.0f} | {r['idle_cpu']['cores']:.3f} | "
                     f"{'-' if load is None else f'{load:.3f}'} | {top_cpu} | {top_mem} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
