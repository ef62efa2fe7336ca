"""How much load the in-memory API server (ray_syncer_testkit) takes.

The test server must never be the bottleneck of the syncer benchmarks. This
measures, on this machine:

* server-side apply writes per second from a concurrent aiohttp client
  (``--concurrency`` requests in flight, half creates and half changing
  updates), with the server in a separate process (``ray-syncer dev-cluster``)
  and in a thread of the client's process (what tests do; they share the GIL);
* watch events per second one watch stream delivers: the synthetic ADDED
  events of a watch from resourceVersion 0, the replay of buffered events
  from an old resourceVersion, and live events while writers run.

Run: ``python -m benchmarks.server_capacity [--writes 4000] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import yaml

NS = "default"
APPLY = "application/apply-patch+yaml"


@dataclass
class Target:
    url: str
    token: str


def _cm(name: str, value: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"bench": "capacity"}},
            "data": {"value": value, "payload": "x" * 200},
        }
    )


async def ssa_writes(t: Target, *, writes: int, concurrency: int, prefix: str) -> float:
    """Requests per second for ``writes`` SSA PATCHes (first half create, second half update)."""
    headers = {"Authorization": f"Bearer {t.token}", "Content-Type": APPLY}
    half = max(1, writes // 2)
    jobs = [(f"{prefix}-{i % half}", str(i // half)) for i in range(writes)]
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    name, value = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                url = f"{t.url}/api/v1/namespaces/{NS}/configmaps/{name}?fieldManager=bench&force=true"
                async with session.patch(url, data=_cm(name, value)) as resp:
                    await resp.read()
                    if resp.status not in (200, 201):
                        errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{errors} SSA writes failed")
    return writes / elapsed


async def _count_watch(t: Target, query: str, *, expect: int) -> float:
    """Events per second one watch delivers until ``expect`` events arrived."""
    headers = {"Authorization": f"Bearer {t.token}"}
    seen = 0
    async with aiohttp.ClientSession(headers=headers) as session:
        start = time.perf_counter()
        url = f"{t.url}/api/v1/namespaces/{NS}/configmaps?watch=true&{query}"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=300)) as resp:
            async for line in resp.content:
                if line.strip():
                    ev = orjson.loads(line)
                    if ev["type"] != "BOOKMARK":
                        seen += 1
                        if seen >= expect:
                            break
        elapsed = time.perf_counter() - start
    return seen / elapsed


async def _list_rv(t: Target) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {t.token}"}) as s, \
            s.get(f"{t.url}/api/v1/namespaces/{NS}/configmaps?limit=1") as r:
        return str((await r.json())["metadata"]["resourceVersion"])


async def watch_rates(t: Target, *, events: int, concurrency: int) -> dict[str, float]:
    rv = await _list_rv(t)
    await ssa_writes(t, writes=events, concurrency=concurrency, prefix="watched")
    existing = events // 2 + 1  # the watched-* objects plus kube-root-ca.crt
    initial = await _count_watch(t, "resourceVersion=0", expect=existing)
    replay = await _count_watch(t, f"resourceVersion={rv}", expect=events)
    live_rv = await _list_rv(t)
    watcher = asyncio.create_task(_count_watch(t, f"resourceVersion={live_rv}", expect=events))
    await asyncio.sleep(0.2)
    await ssa_writes(t, writes=events, concurrency=concurrency, prefix="live")
    live = await watcher
    return {"initial ADDED": initial, "replay": replay, "live (bounded by writers)": live}


def _subprocess_server(tmp: Path) -> tuple[subprocess.Popen[bytes], Target]:
    kubeconfig = tmp / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray_syncer",
            "dev-cluster",
            "--name",
            "bench",
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not kubeconfig.exists() or not kubeconfig.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("dev-cluster did not start")
        time.sleep(0.05)
    cfg = yaml.safe_load(kubeconfig.read_text())
    return proc, Target(cfg["clusters"][0]["cluster"]["server"], cfg["users"][0]["user"]["token"])


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    if args.mode in ("subprocess", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            proc, t = _subprocess_server(Path(tmp))
            try:
                results["server in a separate process"] = {
                    "SSA writes/s": await ssa_writes(
                        t, writes=args.writes, concurrency=args.concurrency, prefix="w"
                    ),
                    **{
                        f"watch events/s, {k}": v
                        for k, v in (
                            await watch_rates(
                                t, events=args.watch_events, concurrency=args.concurrency
                            )
                        ).items()
                    },
                }
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    if args.mode in ("thread", "both"):
        from ray_syncer_testkit import start_in_thread

        server = start_in_thread(name="bench", request_log_limit=1000)
        try:
            t = Target(server.url, server.admin_token)
            results["server in a thread of the client process"] = {
                "SSA writes/s": await ssa_writes(
                    t, writes=args.writes, concurrency=args.concurrency, prefix="w"
                ),
                **{
                    f"watch events/s, {k}": v
                    for k, v in (
                        await watch_rates(t, events=args.watch_events, concurrency=args.concurrency)
                    ).items()
                },
            }
        finally:
            server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watch-events", type=int, default=4000)
    parser.add_argument("--mode", choices=("subprocess", "thread", "both"), default="both")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    print(f"machine: {os.cpu_count()} CPUs; {args.writes} writes, {args.concurrency} in flight")
    for where, numbers in results.items():
        print(where)
        for k, v in numbers.items():
            print(f"  {k:45s} {v:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
