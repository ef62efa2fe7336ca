"""Server-side-apply throughput: our aiohttp KubeClient vs the official sync client.

Why this exists: issue 4 asks us to measure whether the official synchronous
``kubernetes`` client limits the engine's hot path before choosing a thin async
HTTP layer. This script applies ConfigMaps (a mix of creates and updates, each a
real change) at 1, 8, 32 and 64 concurrent requests with:

* ``aiohttp``  - ``ray_syncer.kube.client.KubeClient.apply`` (one event loop);
* ``official`` - ``CoreV1Api.patch_namespaced_config_map`` with
  ``application/apply-patch+yaml`` on a thread pool (typed models, as most
  Python operators use it);
* ``official-raw`` - the official ``ApiClient.param_serialize`` + ``call_api``
  without model deserialisation (``json.loads`` of the body), the cheapest way
  to use the official client.

It reports applies/s and the *client process* CPU time per apply (the server
runs in another process, so this isolates the client's cost; on a shared
2-core machine CPU/apply is the steadier number).

Usage:
    python benchmarks/client_throughput.py                 # in-memory server in a child process
    python benchmarks/client_throughput.py --server echo   # bare echo server: each client's ceiling
    python benchmarks/client_throughput.py --kubeconfig K  # any cluster (uses namespace --namespace)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAMES = 500  # distinct objects; applies cycle over them with changing data


def _serve(kubeconfig_path: str, ready: Any, stop: Any) -> None:
    """Child process: run the in-memory API server until told to stop."""
    from ray_syncer_testkit import start_in_thread

    server = start_in_thread()
    Path(kubeconfig_path).write_text(server.kubeconfig())
    ready.set()
    stop.wait()
    server.stop()


def _serve_echo(kubeconfig_path: str, ready: Any, stop: Any) -> None:
    """Child process: a minimal HTTP server that answers every request with its body.

    It does almost no work per request, so the clients' own costs dominate: this
    shows each client's ceiling rather than the API server's.
    """
    import threading

    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=body or b"{}", content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        Path(kubeconfig_path).write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: echo\n"
            f"clusters: [{{name: echo, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "contexts: [{name: echo, context: {cluster: echo, user: echo}}]\n"
            "users: [{name: echo, user: {token: echo-token}}]\n"
        )
        ready.set()
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        await done.wait()
        await runner.cleanup()

    asyncio.run(main())


def _obj(ns: str, i: int, run: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"bench-{i % NAMES}", "namespace": ns, "labels": {"bench": "client"}},
        "data": {"run": run, "i": str(i), "payload": "x" * 256},
    }


@dataclass
class Result:
    client: str
    concurrency: int
    applies: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.applies / self.seconds

    @property
    def cpu_us_per_apply(self) -> float:
        return 1e6 * self.cpu_seconds / self.applies


async def _ensure_namespace(kubeconfig: str, ns: str) -> None:
    from ray_syncer.kube.client import ApiError, KubeClient
    from ray_syncer.kube.config import load_kubeconfig_text

    async with KubeClient(load_kubeconfig_text(kubeconfig)) as client:
        try:
            await client.request(
                "POST",
                "/api/v1/namespaces",
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            )
        except ApiError as exc:
            if not exc.conflict:
                raise


async def _run_aiohttp(kubeconfig: str, ns: str, concurrency: int, total: int, run: str) -> Result:
    from ray_syncer.kube.client import KubeClient, ResourceInfo
    from ray_syncer.kube.config import load_kubeconfig_text

    res = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    async with KubeClient(load_kubeconfig_text(kubeconfig), max_connections=concurrency) as client:
        await client.apply(res, _obj(ns, 0, "warmup"), field_manager="bench")
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                await client.apply(res, _obj(ns, i, run), field_manager="bench")

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Result(
            "aiohttp", concurrency, total, time.perf_counter() - t0, time.process_time() - cpu0
        )


def _run_official(
    kubeconfig: str, ns: str, concurrency: int, total: int, run: str, *, raw: bool
) -> Result:
    import kubernetes.client as k8s
    import yaml
    from kubernetes.config import load_kube_config_from_dict

    cfg = k8s.Configuration()
    load_kube_config_from_dict(yaml.safe_load(kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = concurrency
    api_client = k8s.ApiClient(cfg)
    core = k8s.CoreV1Api(api_client)

    def apply(i: int) -> None:
        obj = _obj(ns, i, run)
        name = obj["metadata"]["name"]
        if raw:
            params = api_client.param_serialize(
                method="PATCH",
                resource_path=f"/api/v1/namespaces/{ns}/configmaps/{name}",
                query_params=[("fieldManager", "bench"), ("force", "true")],
                header_params={
                    "Content-Type": "application/apply-patch+yaml",
                    "Accept": "application/json",
                },
                body=obj,
                auth_settings=["BearerToken"],
            )
            resp = api_client.call_api(*params)
            data = resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"apply failed: HTTP {resp.status}")
            json.loads(data)
        else:
            core.patch_namespaced_config_map(
                name,
                ns,
                obj,
                field_manager="bench",
                force=True,
                _content_type="application/apply-patch+yaml",
            )

    apply(0)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        cpu0, t0 = time.process_time(), time.perf_counter()
        list(pool.map(apply, range(total)))
        result = Result(
            "official-raw" if raw else "official",
            concurrency,
            total,
            time.perf_counter() - t0,
            time.process_time() - cpu0,
        )
    api_client.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kubeconfig", help="target this cluster instead of starting an in-memory server"
    )
    parser.add_argument(
        "--server",
        choices=("apiserver", "echo"),
        default="apiserver",
        help="child-process server: the in-memory API server, or a bare echo server (client ceiling)",
    )
    parser.add_argument("--namespace", default="bench-client")
    parser.add_argument(
        "--applies", type=int, default=1500, help="applies per client per concurrency level"
    )
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--clients", default="aiohttp,official,official-raw")
    parser.add_argument("--json", help="also write results here")
    args = parser.parse_args(argv)

    stop = ready = proc = None
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig).read_text()
    else:
        ctx = multiprocessing.get_context("spawn")
        ready, stop = ctx.Event(), ctx.Event()
        path = os.path.join(tempfile.mkdtemp(prefix="bench-client-"), "kubeconfig")
        target = _serve_echo if args.server == "echo" else _serve
        proc = ctx.Process(target=target, args=(path, ready, stop), daemon=True)
        proc.start()
        if not ready.wait(60):
            print("the in-memory API server did not start", file=sys.stderr)
            return 1
        kubeconfig = Path(path).read_text()

    results: list[Result] = []
    try:
        asyncio.run(_ensure_namespace(kubeconfig, args.namespace))
        # Create every object first so all measured passes are updates (same server work).
        asyncio.run(_run_aiohttp(kubeconfig, args.namespace, 8, NAMES, "populate"))
        levels = [int(c) for c in args.concurrency.split(",")]
        clients = args.clients.split(",")
        for level, c in enumerate(levels):
            # Rotate the order so no client always runs first (or last) on a busy machine.
            shift = level % len(clients)
            for name in clients[shift:] + clients[:shift]:
                run = f"{name}-{c}-{time.time_ns()}"
                if name == "aiohttp":
                    r = asyncio.run(_run_aiohttp(kubeconfig, args.namespace, c, args.applies, run))
                else:
                    r = _run_official(
                        kubeconfig, args.namespace, c, args.applies, run, raw=name == "official-raw"
                    )
                results.append(r)
                print(
                    f"{r.client:>13}  c={r.concurrency:<3} {r.rate:8.0f} applies/s  "
                    f"client CPU {r.cpu_us_per_apply:7.0f} us/apply",
                    flush=True,
                )
    finally:
        if stop is not None and proc is not None:
            stop.set()
            proc.join(10)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {**r.__dict__, "rate": r.rate, "cpu_us_per_apply": r.cpu_us_per_apply}
                    for r in results
                ],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
