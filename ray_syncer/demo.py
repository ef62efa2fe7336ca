"""``ray-syncer demo`` (``make demo``): the seed's walkthrough, live, on one machine.

Why it exists: it is the first thing a new user runs. It starts two in-memory
Kubernetes API servers (source and destination, ``ray_syncer_testkit``), a
local Ray, and the operator in-process through the same ``operator.serve.serve``
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

from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.clikit.flags import port, seconds

T = TypeVar("T")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CM_NAME = "test-sync-data"


class DemoFailed(Exception):
    pass


USAGE = (
    "ray-syncer demo                       # the walkthrough, then exit",
    "ray-syncer demo --keep-running        # then keep both clusters up for kubectl",
)
EXIT_CODES = {
    **codes(Exit.OK, Exit.NOT_READY, Exit.USAGE, OK="every step of the walkthrough was verified",
            NOT_READY="a step failed (the message says which)",
            USAGE="usage error, or the test kit is not installed"),
    "130": "interrupted (Ctrl-C)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    describe(parser, examples=USAGE, exit_codes=EXIT_CODES)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the walkthrough, keep both clusters and the operator running until Ctrl-C",
    )
    parser.add_argument(
        "--timeout", type=seconds, default=30.0, help="seconds allowed per step (default 30)"
    )
    parser.add_argument(
        "--metrics-port",
        type=port,
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


class Demo:
    """The walkthrough's clusters, Ray and operator, and its steps; :meth:`close` ends them all."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        from ray_syncer.kube.client import ResourceInfo

        self.args = args
        self.console = console
        self.examples = Path(args.examples)
        self.secret_doc = _example(self.examples, "kubeconfig-secret.yaml")
        self.syncer_doc = _example(self.examples, "krmsyncer-usage.yaml")
        self.namespace = self.syncer_doc["metadata"].get("namespace", "default")
        self.cm_res = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
        self.w = Walkthrough(console, timeout=args.timeout)
        self.servers: list[Any] = []
        self.clients: list[Any] = []
        self.stop = asyncio.Event()
        self.operator_task: asyncio.Task[Any] | None = None
        self.holder: dict[str, Any] = {}

    async def run(self) -> int:
        self.console.rule(
            "[bold]ray-syncer demo[/bold]: KRMSyncer on Ray, the seed's walkthrough, live"
        )
        await self.start_clusters()
        await self.w.step("Start a local Ray", self.start_ray)
        await self.w.step(
            "Start the operator (supervisor actor in Ray namespace krmsyncer)", self.start_operator
        )
        await self.install()
        await self.configmap_roundtrip()
        return await self.finish()

    async def start_clusters(self) -> None:
        from ray_syncer_testkit import start_in_thread

        from ray_syncer.kube.client import KubeClient
        from ray_syncer.kube.config import load_kubeconfig_text

        async def start_servers() -> tuple[Any, Any]:
            for name in ("source", "destination"):
                self.servers.append(await asyncio.to_thread(start_in_thread, name=name, tls=True))
            return self.servers[0], self.servers[1]

        self.src, self.dst = await self.w.step(
            "Start two in-memory Kubernetes API servers (source, destination)", start_servers
        )
        self.console.print(f"    source      {self.src.url}\n    destination {self.dst.url}")
        self.src_cfg = load_kubeconfig_text(self.src.kubeconfig(context="source"))
        dst_cfg = load_kubeconfig_text(self.dst.kubeconfig(context="destination"))
        self.source, self.dest = KubeClient(self.src_cfg), KubeClient(dst_cfg)
        self.clients += [self.source, self.dest]

    async def start_ray(self) -> bool:
        from ray_syncer.fleet import local

        return await asyncio.to_thread(
            local.connect,
            None,
            num_cpus=max(2, os.cpu_count() or 2),
            include_dashboard=self.args.keep_running,
            log_to_driver=self.args.verbose,
            object_store_memory=100 * 1024 * 1024,
        )

    async def start_operator(self) -> None:
        from ray_syncer.fleet import actors
        from ray_syncer.operator.options import OperatorOptions
        from ray_syncer.operator.serve import serve

        backend = actors.RayBackend(actors.ActorSettings(reconcile_interval_s=2.0))
        options = OperatorOptions(
            metrics_port=self.args.metrics_port,
            metrics_host="127.0.0.1",
            cluster_name="source",
            tick_s=0.5,
            status_min_interval_s=0.5,
        )

        def started(reconciler: Any, http: Any) -> None:
            self.holder["reconciler"], self.holder["http"] = reconciler, http

        self.operator_task = asyncio.create_task(
            serve(options, backend=backend, own_config=self.src_cfg, stop=self.stop,
                  on_started=started)
        )
        await _poll(lambda: _true_when("http" in self.holder))

    async def install(self) -> None:
        """The CRD, the Secret with the destination's kubeconfig and the KRMSyncer; until Ready."""
        from ray_syncer.api.crd import load_crd
        from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, SECRET_RES

        source, ns = self.source, self.namespace

        async def install_crd() -> None:
            await source.create(CRD_RES, load_crd())

            async def served() -> bool:
                source.invalidate_discovery()
                res = KRMSYNCER_RES
                return await source.resolve(res.group, res.version, "KRMSyncer") is not None

            await _poll(served, 0.1)

        async def apply_secret() -> None:
            doc = dict(self.secret_doc)
            doc.pop("stringData", None)
            kubeconfig = self.dst.kubeconfig(context="destination").encode()
            doc["data"] = {"kubeconfig": base64.b64encode(kubeconfig).decode()}
            await source.create(SECRET_RES, doc, namespace=doc["metadata"].get("namespace", ns))

        await self.w.step("Install the KRMSyncer CRD on the source (crds/krmsyncer.yaml)",
                          install_crd)
        await self.w.step("Apply examples/kubeconfig-secret.yaml (the destination's kubeconfig)",
                          apply_secret)
        await self.w.step("Apply examples/krmsyncer-usage.yaml",
                          lambda: source.create(KRMSYNCER_RES, self.syncer_doc, namespace=ns))
        status = await self.w.step(
            "Wait for KRMSyncer Ready (shard actor started, initial sync)", self.ready
        )
        for shard in status.get("shards", []):
            self.console.print(f"    shard actor [cyan]{shard['name']}[/cyan]: {shard['state']}")

    async def ready(self) -> dict[str, Any]:
        from ray_syncer.operator.reconciler import KRMSYNCER_RES
        from ray_syncer.operator.status import condition

        name = self.syncer_doc["metadata"]["name"]
        while True:
            obj = await self.source.get(KRMSYNCER_RES, namespace=self.namespace, name=name)
            status: dict[str, Any] = obj.get("status") or {}
            cond = condition(status, "Ready")
            if cond is not None and cond.get("status") == "True":
                return status
            await asyncio.sleep(0.1)

    async def dest_value(self) -> str | None:
        from ray_syncer.kube.errors import ApiError

        try:
            obj = await self.dest.get(self.cm_res, namespace=self.namespace, name=CM_NAME)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return str((obj.get("data") or {}).get("key"))

    async def show_dest(self) -> None:
        value = await self.dest_value()
        shown = f"data: key={value}" if value is not None else "NotFound"
        self.console.print(f"    [dim]destination: configmap/{CM_NAME} -> {shown}[/dim]")

    async def mirrored(self, title: str, value: str | None) -> None:
        async def equals() -> bool:
            return await self.dest_value() == value

        await self.w.step(title, lambda: _poll(equals))
        await self.show_dest()

    async def configmap_roundtrip(self) -> None:
        """The seed's "Verify the Results": create, update, delete, each seen in the destination."""
        source, ns, res = self.source, self.namespace, self.cm_res
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": CM_NAME, "namespace": ns}, "data": {"key": "value1"}}
        await self.w.step(
            f"kubectl create configmap {CM_NAME} --from-literal=key=value1   (source)",
            lambda: source.create(res, cm, namespace=ns),
        )
        await self.mirrored(f"   ...{CM_NAME} appears in the destination with key=value1",
                            "value1")
        await self.w.step(
            f"Update {CM_NAME}: key=value2   (source)",
            lambda: source.patch(res, namespace=ns, name=CM_NAME,
                                 body={"data": {"key": "value2"}}),
        )
        await self.mirrored("   ...the change shows in the destination", "value2")
        await self.w.step(f"kubectl delete configmap {CM_NAME}   (source)",
                          lambda: source.delete(res, namespace=ns, name=CM_NAME))
        await self.mirrored("   ...it is gone from the destination", None)

    async def finish(self) -> int:
        reconciler, http = self.holder["reconciler"], self.holder["http"]
        self.console.print(self.w.summary())
        report = reconciler.last_report
        if report is not None:
            self.console.print(
                f"Shard actors: {', '.join(sorted(report.hosts))}  (Ray namespace "
                f"[cyan]krmsyncer[/cyan]); metrics: http://127.0.0.1:{http.port}/metrics"
            )
        if self.args.keep_running:
            await _keep_running(self.console, self.src, self.dst, http.port)
        else:
            self.console.print(
                "[bold green]Demo passed[/bold green]: create, update and delete all mirrored."
            )
        return 0

    async def close(self) -> None:
        from ray_syncer.fleet import local

        self.stop.set()
        if self.operator_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.operator_task, timeout=30)
        for c in self.clients:
            await c.close()
        with contextlib.suppress(Exception):
            local.disconnect()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()


async def _walk(args: argparse.Namespace, console: Console) -> int:
    demo = Demo(args, console)
    try:
        return await demo.run()
    finally:
        await demo.close()


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
