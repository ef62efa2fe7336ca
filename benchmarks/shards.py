"""The shards scenario: the operator's Ray layer running 1, 10, 100, 1,000 shards over Ray nodes.

Why this exists: the fleet-level questions (how long until every shard syncs,
what the whole thing costs in memory, how much CPU an idle fleet burns, how
long shards are down when a Ray node dies) can only be answered with real Ray
actors on a real multi-node Ray. This module runs in its own process
(``python -m benchmarks.shards``, started by ``benchmarks.scenarios.shards``)
because it starts Ray; the harness process stays Ray-free.

How it meets its neighbours: it starts ``ray_syncer.fleet_testing.LocalCluster`` (a
head with no CPUs and the dashboard, like deploy/ray-cluster.yaml's, plus
``--ray-nodes`` workers, each its own raylet; ``--ray-nodes 0``: one local
Ray) and drives ``ray_syncer.fleet.actors.RayBackend`` (the operator's handle on the
supervisor actor) with default settings and ``DesiredShard`` values built
here, exactly what the operator's reconciler would hand it: one shard per
namespace ``shard-NNNN`` syncing ConfigMaps. The API servers are the harness's
(kubeconfig paths on the command line).

Memory is PSS (``/proc/<pid>/smaps_rollup``), summed over every process of the
Ray instance: shard hosts, the supervisor, idle workers, and the system
processes (GCS, raylets, dashboard, agents). With ``--node-loss``, after the
largest count is measured, the worker node running the most hosts is killed
(SIGKILL, no notice), every namespace's object is updated while Ray recovers,
and the time until every shard is running again on the other nodes is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.clusters import descendants, proc_cpu_seconds, proc_memory

# The bound the README states for a lost node (tests/distributed/test_nodes.py holds it too).
FAILOVER_BOUND_S = 30.0


def role(cmdline: str) -> str:
    """host | supervisor | worker (an idle Ray worker) | system (GCS, raylets, dashboard, agents).

    Ray names its worker processes by what runs in them (``ray::ShardHostActor``,
    ``ray::IDLE``); its agents are ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent``.
    """
    argv = cmdline.split()
    if cmdline.startswith("ray::ShardHostActor"):
        return "host"
    if cmdline.startswith("ray::SupervisorActor"):
        return "supervisor"
    if cmdline.startswith("ray::IDLE") or (len(argv) > 1 and argv[1].endswith("default_worker.py")):
        return "worker"
    return "system"


def ray_processes() -> dict[int, str]:
    """pid -> role for the Ray processes this run started (other Ray instances are ignored)."""
    out: dict[int, str] = {}
    for pid in descendants(os.getpid()):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        out[pid] = role(raw.replace(b"\0", b" ").decode(errors="replace"))
    return out


def fleet_memory(shards: int) -> dict[str, float]:
    """PSS by role (MiB), per host process and per shard; RSS total for comparison."""
    pss: dict[str, float] = {"host": 0.0, "supervisor": 0.0, "worker": 0.0, "system": 0.0}
    count: dict[str, int] = {k: 0 for k in pss}
    rss = 0.0
    for pid, kind in ray_processes().items():
        m = proc_memory(pid)
        pss[kind] += m["pss_mb"]
        count[kind] += 1
        rss += m["rss_mb"]
    total = sum(pss.values())
    hosts = count["host"]
    out = {
        "total_pss_mb": total,
        "hosts_pss_mb": pss["host"],
        "system_pss_mb": pss["system"],
        "other_workers_pss_mb": pss["worker"] + pss["supervisor"],
        "per_host_pss_mb": pss["host"] / hosts if hosts else 0.0,
        "per_shard_pss_mb": total / shards if shards else 0.0,
        "host_processes": hosts,
        "processes": sum(count.values()),
        "total_rss_mb": rss,
    }
    return {k: round(v, 1) for k, v in out.items()}


def desired_shards(n: int, args: argparse.Namespace, src: Any, dst: Any) -> dict[str, Any]:
    from ray_syncer.engine.options import EngineOptions
    from ray_syncer.engine.spec import ShardSpec
    from ray_syncer.fleet.plan import DesiredShard

    out = {}
    for i in range(n):
        spec = ShardSpec(
            syncer_namespace="bench",
            syncer_name="fleet",
            group="",
            version="v1",
            kind="ConfigMap",
            source_namespace=f"shard-{i:04d}",
            label_selector=args.selector,
            source_cluster="bench-source",
        )
        out[spec.shard_id] = DesiredShard(
            spec=spec, revision="1", source=src, dest=dst, options=EngineOptions()
        )
    return out


def all_synced(report: Any, n: int) -> bool:
    """Every shard listed, watching, and every change written."""
    from ray_syncer.engine.spec import ShardState

    done = sum(1 for h in report.health.values() if h.state == ShardState.SYNCING and h.synced)
    return done >= n and not report.lost


def all_running(report: Any, n: int) -> bool:
    """Every shard listed and watching in a live host (changes may still be being written)."""
    from ray_syncer.engine.spec import ShardState

    done = sum(1 for h in report.health.values() if h.state == ShardState.SYNCING)
    return done >= n and not report.lost


async def placement(hosts: list[str], timeout: float = 60.0) -> dict[str, str]:
    from ray_syncer.fleet import testing as fleet_testing

    nodes = await asyncio.gather(
        *(asyncio.to_thread(fleet_testing.actor_node, h, timeout) for h in hosts)
    )
    return dict(zip(hosts, nodes, strict=True))


async def touch_every_namespace(src_config: Any, n: int, rate: float) -> int:
    """A write per namespace, ``rate`` per second, while a node is down: each must arrive."""
    from ray_syncer.kube.client import KubeClient, ResourceInfo

    cm = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, has_status=False)
    async with KubeClient(src_config) as client:
        writes = []
        for i in range(n):
            writes.append(asyncio.create_task(client.request(
                "PATCH",
                cm.path(namespace=f"shard-{i:04d}", name="seed"),
                body={"data": {"during-node-loss": "1"}},
                content_type="application/merge-patch+json",
            )))  # fmt: skip
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*writes)
    return n


async def off_node(report: Any, victim: str) -> bool:
    """Every host answers, from a node other than ``victim``."""
    try:
        return victim not in (await placement(sorted(report.hosts), timeout=5.0)).values()
    except Exception:  # a host still restarting
        return False


async def lose_a_node(backend: Any, desired: dict[str, Any], cluster: Any, src: Any,
                      args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """Kill the worker node with the most hosts; time until every shard runs again elsewhere."""
    report = await backend.apply(desired)
    where = await placement(sorted(report.hosts))
    per_node: dict[str, list[str]] = {}
    for host, node in where.items():
        per_node.setdefault(node, []).append(host)
    victim = max(per_node, key=lambda n: len(per_node[n]))
    lost_shards = sum(len(report.hosts[h]) for h in per_node[victim])
    t0 = time.monotonic()
    await asyncio.to_thread(cluster.remove_worker, victim)  # SIGKILL: a node that just dies
    writes = asyncio.create_task(
        touch_every_namespace(src, len(desired), args.failover_writes)
        if args.failover_writes > 0 else asyncio.sleep(0, result=0)
    )
    running = synced = None
    seen_lost = 0
    timeline: list[tuple[float, int, int]] = []  # (s since the kill, shards synced, shards lost)
    while time.monotonic() - t0 < args.timeout and synced is None:
        report = await backend.apply(desired)
        seen_lost = max(seen_lost, len(report.lost))
        done = sum(1 for h in report.health.values() if h.synced)
        timeline.append((round(time.monotonic() - t0, 1), done, len(report.lost)))
        if all_running(report, len(desired)) and await off_node(report, victim):
            now = round(time.monotonic() - t0, 2)
            running = running or now
            if all_synced(report, len(desired)):
                synced = now
        await asyncio.sleep(0.5)
    written = await writes
    return {
        "hosts_on_lost_node": len(per_node[victim]),
        "shards_on_lost_node": lost_shards,
        "hosts": len(where),
        "nodes_before": len(per_node),
        "writes_during_failover": written,
        "shards_reported_lost": seen_lost,
        "all_running_after_s": running,
        "all_synced_after_s": synced,
        "bound_s": FAILOVER_BOUND_S,
        "timeline": timeline,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from ray_syncer.fleet import actors, local
    from ray_syncer.fleet import testing as fleet_testing
    from ray_syncer.fleet.plan import effective_pack_size
    from ray_syncer.kube.config import load_default

    src = load_default(kubeconfig=args.source_kubeconfig)
    dst = load_default(kubeconfig=args.dest_kubeconfig)
    temp = tempfile.mkdtemp(prefix="rsb-", dir="/tmp")  # short: Ray's socket paths
    cluster = None
    if args.ray_nodes:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        cluster = fleet_testing.LocalCluster(temp, dashboard=True)
        for _ in range(args.ray_nodes):
            cluster.add_worker(num_cpus=1)  # like the deployment's workers (num-cpus "1")
        local.connect(cluster.address, log_to_driver=False)
    else:
        local.connect(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    out: dict[str, Any] = {"ray_nodes": args.ray_nodes, "points": [], "node_loss": None}
    try:
        for n in args.counts:
            desired = desired_shards(n, args, src, dst)
            backend = actors.RayBackend(actors.ActorSettings(shards_per_host=args.shards_per_host))
            t0 = time.monotonic()
            report = None
            took = None
            while time.monotonic() - t0 < args.timeout:
                report = await backend.apply(desired)
                if all_synced(report, n):
                    took = time.monotonic() - t0
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)
            mem = fleet_memory(n)
            hosts = sorted(report.hosts) if report is not None else []
            nodes = sorted((await placement(hosts)).values()) if cluster is not None else []
            pids = list(ray_processes())
            cpu0 = {p: proc_cpu_seconds(p) for p in pids}
            await asyncio.sleep(args.idle_window)
            idle = sum(proc_cpu_seconds(p) - c for p, c in cpu0.items()) / args.idle_window
            states: dict[str, int] = {}
            for h in (report.health.values() if report is not None else []):
                st = getattr(h.state, "value", str(h.state))
                states[st] = states.get(st, 0) + 1
            point = {
                "shards": n,
                "shards_per_host": effective_pack_size(args.shards_per_host, n),
                "hosts": len(hosts),
                "hosts_per_node": sorted((nodes.count(x) for x in set(nodes)), reverse=True),
                "startup_to_all_syncing_s": round(took, 2) if took is not None else None,
                "states": states,
                "memory": mem,
                "idle_cpu_cores": round(idle, 3),
            }
            out["points"].append(point)
            print(json.dumps(point), file=sys.stderr, flush=True)
            if n == max(args.counts) and args.node_loss and cluster is not None:
                out["node_loss"] = await lose_a_node(backend, desired, cluster, src, args)
                print(json.dumps(out["node_loss"]), file=sys.stderr, flush=True)
            await backend.shutdown()
            await asyncio.sleep(2.0)
    finally:
        fleet_testing.kill_all()
        local.disconnect()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--source-kubeconfig", required=True)
    p.add_argument("--dest-kubeconfig", required=True)
    p.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10])
    p.add_argument("--selector", default="ray-syncer-bench=1")
    p.add_argument(
        "--shards-per-host", type=int, default=0, help="0 = the operator's automatic packing"
    )
    p.add_argument(
        "--ray-nodes", type=int, default=3,
        help="worker nodes beside a head with no CPUs (0: one local Ray node)",
    )  # fmt: skip
    p.add_argument("--node-loss", action=argparse.BooleanOptionalAction, default=True,
                   help="after the largest count, kill a worker node and time the recovery")  # fmt: skip
    p.add_argument("--failover-writes", type=float, default=100.0,
                   help="source writes per second during the node loss (one per namespace)")  # fmt: skip
    p.add_argument("--ray-cpus", type=int, default=8, help="logical CPUs of a one-node Ray")
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--idle-window", type=float, default=5.0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    results = asyncio.run(measure(args))
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
