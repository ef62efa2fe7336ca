"""One-off scale measurement (not collected by pytest): N shards through the real operator on Ray.

    .venv/bin/python -m tests.e2e.scale --shards 1000 --per-actor 0

Starts two ``ray-syncer dev-cluster`` processes (source, destination), creates
N namespaces with one ConfigMap each, applies one KRMSyncer whose ConfigMap
rules name all N namespaces (the CRD allows 256 namespaces per rule, so the
namespaces are split over ceil(N/250) identical rules), runs the operator
in-process with ``--max-shards-per-actor`` and reports: time until every shard
reports synced and every ConfigMap is in the destination, the number of host
actors, and memory (USS) of the operator + Ray processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ray_syncer.fleet import local
from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.kube.config import load_kubeconfig_text

from .harness import (
    CM,
    Cluster,
    Clusters,
    ensure_namespace,
    krmsyncer,
    operator,
    put_secret,
    put_syncer,
)


def start_cluster(name: str, folder: Path) -> tuple[subprocess.Popen[bytes], Cluster]:
    path = folder / f"{name}.kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray_syncer",
            "dev-cluster",
            "--name",
            name,
            "--kubeconfig-out",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if path.exists() and path.stat().st_size > 0:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    text = path.read_text()
    return proc, Cluster(name, text, load_kubeconfig_text(text))


def _uss_kb(pid: int) -> int:
    """Unique set size: private clean + private dirty pages (Linux smaps_rollup)."""
    total = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def uss_mb(pids: list[int]) -> float:
    return sum(_uss_kb(p) for p in pids) / 1024


def ray_processes() -> list[int]:
    """This process and all its descendants (a local Ray's GCS, raylet and workers)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


async def measure(clusters: Clusters, n: int, per_actor: int, log: list[str]) -> None:
    src, dst = clusters.source.client(), clusters.dest.client()
    home = "scale"
    names = [f"scale-{i:04d}" for i in range(n)]
    t = time.monotonic()
    for c in (src, dst):
        await ensure_namespace(c, home)
        for i in range(0, n, 50):
            await asyncio.gather(*(ensure_namespace(c, ns) for ns in names[i : i + 50]))
    for i in range(0, n, 50):
        await asyncio.gather(
            *(
                src.create(
                    CM,
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "payload", "namespace": ns},
                        "data": {"k": ns},
                    },
                    namespace=ns,
                )
                for ns in names[i : i + 50]
            )
        )
    log.append(
        f"fixture: {n} namespaces x 2 clusters + {n} ConfigMaps in {time.monotonic() - t:.1f}s"
    )
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    rules = [
        {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": names[i : i + 250]}
        for i in range(0, n, 250)
    ]
    baseline = uss_mb(ray_processes())
    async with operator(clusters, namespace=home, shards_per_host=per_actor, tick_s=2.0) as op:
        t0 = time.monotonic()
        await put_syncer(src, krmsyncer(home, "fleet", rules=rules))
        first_all_running = None
        while True:
            await asyncio.sleep(1.0)
            report = op.reconciler.last_report
            health = report.health if report else {}
            running = sum(1 for h in health.values() if h.state.value in ("Syncing", "Listing"))
            synced = sum(1 for h in health.values() if h.synced)
            if first_all_running is None and running >= n:
                first_all_running = time.monotonic() - t0
            if synced >= n:
                break
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"not converged: {synced}/{n} synced")
        all_synced = time.monotonic() - t0
        items, _ = await dst.list_all(CM)
        ours = set(names)  # only this run's namespaces: the destination may hold other copies
        copied = sum(1 for o in items
                     if o["metadata"]["name"] == "payload" and o["metadata"]["namespace"] in ours)
        hosts = len(report.hosts) if report else 0
        await asyncio.sleep(3)
        total = uss_mb(ray_processes())
        workers = [p for p in ray_processes() if any("ShardHostActor" in part for part in _cmd(p))]
        host_uss = uss_mb(workers)
        log.append(
            f"shards={n} per_actor={per_actor} host_actors={hosts} "
            f"all_running={first_all_running or all_synced:.1f}s all_synced={all_synced:.1f}s "
            f"dest_copies={copied}/{n}"
        )
        log.append(
            f"memory USS: operator+Ray total={total:.0f} MB (before the syncer: {baseline:.0f} MB); "
            f"{len(workers)} shard host processes={host_uss:.0f} MB "
            f"({host_uss / max(1, len(workers)):.0f} MB/process, {host_uss / n:.1f} MB/shard)"
        )
    await src.close()
    await dst.close()


def _cmd(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--per-actor", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    folder = Path(tempfile.mkdtemp(prefix="ray-syncer-scale-"))
    sp, source = start_cluster("source", folder)
    dp, dest = start_cluster("destination", folder)
    log: list[str] = []
    try:
        t = time.monotonic()
        local.connect(
            None,
            num_cpus=4,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=100 * 2**20,
        )
        log.append(f"ray.init {time.monotonic() - t:.1f}s")
        asyncio.run(_with_crd(Clusters(source, dest), args.shards, args.per_actor, log))
    finally:
        fleet_testing.kill_all()
        local.disconnect()
        sp.terminate()
        dp.terminate()
    print("\n".join(log))
    return 0


async def _with_crd(clusters: Clusters, n: int, per_actor: int, log: list[str]) -> None:
    from .conftest import _install_crd

    await _install_crd(clusters.source)
    await measure(clusters, n, per_actor, log)


if __name__ == "__main__":
    sys.exit(main())
