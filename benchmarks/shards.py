"""The shards scenario: the operator's Ray layer running 1, 10, 100, 1,000 shards.

Why this exists: the fleet-level questions (how long until every shard syncs,
what the whole thing costs in memory, how much CPU an idle fleet burns) can
only be answered with real Ray actors. This module runs in its own process
(``python -m benchmarks.shards``, started by ``benchmarks.scenarios.shards``)
because it starts a local Ray; the harness process stays Ray-free.

How it meets its neighbours: it drives ``ray_syncer.actors.RayBackend`` (the
operator's handle on the supervisor actor) with ``DesiredShard`` values built
here, exactly what the operator's reconciler would hand it, one shard per
namespace ``shard-NNNN`` syncing ConfigMaps. The API servers are the harness's
(kubeconfig paths on the command line). Memory is the sum of the RSS and USS
of every Ray process (``/proc``: workers named ``ray::...`` plus raylet, GCS,
dashboard), and idle CPU is measured over a quiet window after all synced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.clusters import proc_cpu_seconds, proc_memory


def _descendants(root: int) -> set[int]:
    """Every process below ``root`` (the local Ray we started: GCS, raylet, workers)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def ray_processes() -> dict[int, str]:
    """pid -> role for the Ray processes this run started (other Ray sessions are ignored)."""
    out: dict[int, str] = {}
    for pid in _descendants(os.getpid()):
        try:
            cmd = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        out[pid] = "worker" if cmd.startswith("ray::") or "default_worker.py" in cmd else "system"
    return out


def fleet_memory() -> dict[str, float]:
    totals = {"workers_rss_mb": 0.0, "workers_uss_mb": 0.0, "system_rss_mb": 0.0, "workers": 0}
    for pid, role in ray_processes().items():
        m = proc_memory(pid)
        if role == "worker":
            totals["workers_rss_mb"] += m["rss_mb"]
            totals["workers_uss_mb"] += m["uss_mb"]
            totals["workers"] += 1
        else:
            totals["system_rss_mb"] += m["rss_mb"]
    totals["total_rss_mb"] = totals["workers_rss_mb"] + totals["system_rss_mb"]
    return {k: round(v, 1) for k, v in totals.items()}


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ray_syncer import actors
    from ray_syncer.engine.options import EngineOptions
    from ray_syncer.engine.spec import ShardSpec, ShardState
    from ray_syncer.kube.config import load_default
    from ray_syncer.operator.supervisor import DesiredShard, effective_pack_size

    src = load_default(kubeconfig=args.source_kubeconfig)
    dst = load_default(kubeconfig=args.dest_kubeconfig)
    actors.connect(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    out: list[dict[str, Any]] = []
    try:
        for n in args.counts:
            desired = {}
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
                desired[spec.shard_id] = DesiredShard(
                    spec=spec, revision="1", source=src, dest=dst, options=EngineOptions()
                )
            pack = effective_pack_size(args.shards_per_host, n)
            backend = actors.RayBackend(actors.ActorSettings(shards_per_host=args.shards_per_host))
            t0 = time.monotonic()
            syncing = 0
            states: dict[str, int] = {}
            took = None
            while time.monotonic() - t0 < args.timeout:
                report = await backend.apply(desired)
                states = {}
                for h in report.health.values():
                    st = getattr(h.state, "value", str(h.state))
                    states[st] = states.get(st, 0) + 1
                syncing = sum(
                    1 for h in report.health.values() if h.state == ShardState.SYNCING and h.synced
                )
                if syncing >= n:
                    took = time.monotonic() - t0
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)
            mem = fleet_memory()
            pids = list(ray_processes())
            cpu0 = {p: proc_cpu_seconds(p) for p in pids}
            await asyncio.sleep(args.idle_window)
            idle = sum(proc_cpu_seconds(p) - c for p, c in cpu0.items()) / args.idle_window
            out.append(
                {
                    "shards": n,
                    "shards_per_host": pack,
                    "startup_to_all_syncing_s": round(took, 2) if took is not None else None,
                    "syncing": syncing,
                    "states": states,
                    "memory": mem,
                    "idle_cpu_cores": round(idle, 3),
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
            await backend.shutdown()
            await asyncio.sleep(2.0)
    finally:
        actors.kill_all()
        actors.disconnect()
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
    p.add_argument("--ray-cpus", type=int, default=8)
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--idle-window", type=float, default=5.0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    results = asyncio.run(measure(args))
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
