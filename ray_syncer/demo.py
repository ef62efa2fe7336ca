"""``ray-syncer demo`` (``make demo``): the seed's walkthrough, live, on one machine.

Why it exists: it is the first thing a new user runs. It starts two in-memory
Kubernetes API servers (source and destination, ``ray_syncer_testkit``), a
local Ray, and the operator in-process through the same ``operator.main.serve``
code path as ``ray-syncer run``. It installs the KRMSyncer CRD, applies
``examples/kubeconfig-secret.yaml`` (with the destination's real kubeconfig
substituted in) and ``examples/krmsyncer-usage.yaml``, then walks the seed's
"Verify the Results": create ``test-sync-data`` in the source, see it appear
in the destination, update it, see the change, delete it, see it gone — each
step timed. It exits 0 after verifying, non-zero with a clear message on
failure, or with ``--keep-running`` prints how to point kubectl at both
clusters and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

T = TypeVar("T")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CM_NAME = "test-sync-data"


class DemoFailed(Exception):
    pass


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the walkthrough, keep both clusters and the operator running until Ctrl-C",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds allowed per step (default 30)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="operator /metrics port (default: any free port)",
    )
    parser.add_argument(
        "--examples", default=str(EXAMPLES), help="directory holding the example manifests"
    )
    parser.add_argument("--verbose", action="store_true", help="show operator logs")


def _example(examples: Path, name: str) -> dict[str, Any]:
    path = examples / name
    if not path.exists():
        raise DemoFailed(f"{path} is missing (run the demo from a checkout of the repository)")
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


class Walkthrough:
    def __init__(self, console: Console, *, timeout: float) -> None:
        self.console = console
        self.timeout = timeout
        self.timings: list[tuple[str, float]] = []
        self.started = time.monotonic()

    async def step(self, title: str, action: Callable[[], Awaitable[T]]) -> T:
        t0 = time.monotonic()
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as progress:
            progress.add_task(title, total=None)
            try:
                result = await asyncio.wait_for(action(), timeout=self.timeout)
            except asyncio.TimeoutError:
                raise DemoFailed(f"{title}: not done within {self.timeout:.0f}s") from None
        took = time.monotonic() - t0
        self.timings.append((title, took))
        self.console.print(f"[green]✓[/green] {title} [dim]({took:.2f}s)[/dim]")
        return result

    def summary(self) -> Table:
        table = Table(title="ray-syncer demo: timings", show_lines=False)
        table.add_column("step")
        table.add_column("seconds", justify="right")
        for title, took in self.timings:
            table.add_row(title, f"{took:.2f}")
        table.add_row("[bold]total[/bold]", f"[bold]{time.monotonic() - self.started:.2f}[/bold]")
        return table


async def _poll(check: Callable[[], Awaitable[bool]], interval: float = 0.05) -> None:
    while not await check():
        await asyncio.sleep(interval)


async def _walk(args: argparse.Namespace, console: Console) -> int:
    from ray_syncer_testkit import start_in_thread

    from ray_syncer.api.crd import load_crd
    from ray_syncer.fleet import actors, local
    from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
    from ray_syncer.kube.config import load_kubeconfig_text
    from ray_syncer.operator.options import OperatorOptions
    from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, SECRET_RES, Reconciler
    from ray_syncer.operator.serve import serve
    from ray_syncer.operator.status import condition

    examples = Path(args.examples)
    secret_doc = _example(examples, "kubeconfig-secret.yaml")
    syncer_doc = _example(examples, "krmsyncer-usage.yaml")
    namespace = syncer_doc["metadata"].get("namespace", "default")
    cm_res = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    w = Walkthrough(console, timeout=args.timeout)
    console.rule("[bold]ray-syncer demo[/bold]: KRMSyncer on Ray, the seed's walkthrough, live")

    servers: list[Any] = []
    clients: list[KubeClient] = []
    stop = asyncio.Event()
    operator_task: asyncio.Task[Reconciler] | None = None
    holder: dict[str, Any] = {}
    try:

        async def start_servers() -> tuple[Any, Any]:
            src = await asyncio.to_thread(start_in_thread, name="source", tls=True)
            servers.append(src)
            dst = await asyncio.to_thread(start_in_thread, name="destination", tls=True)
            servers.append(dst)
            return src, dst

        src, dst = await w.step(
            "Start two in-memory Kubernetes API servers (source, destination)", start_servers
        )
        console.print(f"    source      {src.url}\n    destination {dst.url}")
        src_cfg = load_kubeconfig_text(src.kubeconfig(context="source"))
        dst_cfg = load_kubeconfig_text(dst.kubeconfig(context="destination"))
        source, dest = KubeClient(src_cfg), KubeClient(dst_cfg)
        clients += [source, dest]

        async def start_ray() -> bool:
            return await asyncio.to_thread(
                local.connect,
                None,
                num_cpus=max(2, os.cpu_count() or 2),
                include_dashboard=args.keep_running,
                log_to_driver=args.verbose,
                object_store_memory=100 * 1024 * 1024,
            )

        await w.step("Start a local Ray", start_ray)

        async def start_operator() -> None:
            backend = actors.RayBackend(
                actors.ActorSettings(reconcile_interval_s=2.0)
            )
            options = OperatorOptions(
                metrics_port=args.metrics_port,
                metrics_host="127.0.0.1",
                cluster_name="source",
                tick_s=0.5,
                status_min_interval_s=0.5,
            )

            def started(reconciler: Reconciler, http: Any) -> None:
                holder["reconciler"], holder["http"] = reconciler, http

            nonlocal operator_task
            operator_task = asyncio.create_task(
                serve(options, backend=backend, own_config=src_cfg, stop=stop, on_started=started)
            )
            await _poll(lambda: _true_when("http" in holder))

        await w.step(
            "Start the operator (supervisor actor in Ray namespace krmsyncer)", start_operator
        )

        async def install_crd() -> None:
            await source.create(CRD_RES, load_crd())

            async def served() -> bool:
                source.invalidate_discovery()
                return (
                    await source.resolve(KRMSYNCER_RES.group, KRMSYNCER_RES.version, "KRMSyncer")
                    is not None
                )

            await _poll(served, 0.1)

        await w.step("Install the KRMSyncer CRD on the source (crds/krmsyncer.yaml)", install_crd)

        async def apply_secret() -> None:
            doc = dict(secret_doc)
            doc.pop("stringData", None)
            doc["data"] = {
                "kubeconfig": base64.b64encode(
                    dst.kubeconfig(context="destination").encode()
                ).decode()
            }
            await source.create(
                SECRET_RES, doc, namespace=doc["metadata"].get("namespace", namespace)
            )

        await w.step(
            "Apply examples/kubeconfig-secret.yaml (the destination's kubeconfig)", apply_secret
        )
        await w.step(
            "Apply examples/krmsyncer-usage.yaml",
            lambda: source.create(KRMSYNCER_RES, syncer_doc, namespace=namespace),
        )

        name = syncer_doc["metadata"]["name"]

        async def ready() -> dict[str, Any]:
            while True:
                obj = await source.get(KRMSYNCER_RES, namespace=namespace, name=name)
                status = obj.get("status") or {}
                cond = condition(status, "Ready")
                if cond is not None and cond.get("status") == "True":
                    return status
                await asyncio.sleep(0.1)

        status = await w.step("Wait for KRMSyncer Ready (shard actor started, initial sync)", ready)
        for shard in status.get("shards", []):
            console.print(f"    shard actor [cyan]{shard['name']}[/cyan]: {shard['state']}")

        async def dest_value() -> str | None:
            try:
                obj = await dest.get(cm_res, namespace=namespace, name=CM_NAME)
            except ApiError as exc:
                if exc.not_found:
                    return None
                raise
            return str((obj.get("data") or {}).get("key"))

        async def show_dest() -> None:
            value = await dest_value()
            shown = f"data: key={value}" if value is not None else "NotFound"
            console.print(f"    [dim]destination: configmap/{CM_NAME} -> {shown}[/dim]")

        async def equals(value: str | None) -> bool:
            return await dest_value() == value

        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CM_NAME, "namespace": namespace},
            "data": {"key": "value1"},
        }
        await w.step(
            f"kubectl create configmap {CM_NAME} --from-literal=key=value1   (source)",
            lambda: source.create(cm_res, cm, namespace=namespace),
        )
        await w.step(
            f"   ...{CM_NAME} appears in the destination with key=value1",
            lambda: _poll(lambda: equals("value1")),
        )
        await show_dest()

        async def update() -> None:
            await source.patch(
                cm_res, namespace=namespace, name=CM_NAME, body={"data": {"key": "value2"}}
            )

        await w.step(f"Update {CM_NAME}: key=value2   (source)", update)
        await w.step(
            "   ...the change shows in the destination", lambda: _poll(lambda: equals("value2"))
        )
        await show_dest()
        await w.step(
            f"kubectl delete configmap {CM_NAME}   (source)",
            lambda: source.delete(cm_res, namespace=namespace, name=CM_NAME),
        )
        await w.step("   ...it is gone from the destination", lambda: _poll(lambda: equals(None)))
        await show_dest()

        reconciler: Reconciler = holder["reconciler"]
        http = holder["http"]
        console.print(w.summary())
        report = reconciler.last_report
        if report is not None:
            console.print(
                f"Shard actors: {', '.join(sorted(report.hosts))}  "
                f"(Ray namespace [cyan]krmsyncer[/cyan]); metrics: http://127.0.0.1:{http.port}/metrics"
            )
        if args.keep_running:
            await _keep_running(console, src, dst, http.port)
        else:
            console.print(
                "[bold green]Demo passed[/bold green]: create, update and delete all mirrored."
            )
        return 0
    finally:
        stop.set()
        if operator_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(operator_task, timeout=30)
        for c in clients:
            await c.close()
        with contextlib.suppress(Exception):
            local.disconnect()
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()


async def _true_when(value: bool) -> bool:
    return value


async def _keep_running(console: Console, src: Any, dst: Any, metrics_port: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ray-syncer-demo-"))
    src_path = src.write_kubeconfig(folder / "source.kubeconfig", context="source")
    dst_path = dst.write_kubeconfig(folder / "destination.kubeconfig", context="destination")
    os.chmod(src_path, 0o600)
    os.chmod(dst_path, 0o600)
    console.print(
        "\n[bold]Still running.[/bold] Point kubectl at the two clusters:\n"
        f"  export KUBECONFIG={src_path}:{dst_path}\n"
        "  kubectl --context source create configmap hello --from-literal=a=b\n"
        "  kubectl --context destination get configmaps\n"
        "  kubectl --context source get krmsyncers -A\n"
        f"Metrics: http://127.0.0.1:{metrics_port}/metrics   Ray dashboard: http://127.0.0.1:8265\n"
        "Press Ctrl-C to stop (destination data is kept until the servers exit).",
        soft_wrap=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("ray", "ray_syncer", "aiohttp"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    console = Console()
    try:
        return asyncio.run(_walk(args, console))
    except DemoFailed as exc:
        console.print(f"[bold red]Demo failed:[/bold red] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        console.print(f"[bold red]Demo failed:[/bold red] {type(exc).__name__}: {exc}")
        return 1
