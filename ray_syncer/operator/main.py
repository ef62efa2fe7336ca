"""``ray-syncer run``: the operator process.

Why it exists: it wires the pieces together and owns the process lifecycle.
It loads the operator's own cluster config (in-cluster, ``KUBECONFIG`` or
``--kubeconfig``/``--context``), connects to Ray (``--ray-address``,
``RAY_ADDRESS``, or an embedded local Ray), gets-or-creates the supervisor
actor (``ray_syncer.actors.RayBackend``), runs the ``Reconciler`` and the
``/metrics`` ``/healthz`` ``/readyz`` server, and on SIGTERM/SIGINT stops all
shards (destination data stays) before exiting.

``serve()`` is the same code path without Ray setup or signals, used by the
demo and the end-to-end tests to run the operator in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.engine.options import EngineOptions
from ray_syncer.operator.executor import SupervisorReport
from ray_syncer.operator.planner import Tenancy
from ray_syncer.operator.reconciler import Backend, Reconciler, Settings

log = logging.getLogger("ray_syncer.operator")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster address (else RAY_ADDRESS, else start a local Ray)",
    )
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig of the operator's own cluster (else in-cluster or KUBECONFIG)",
    )
    parser.add_argument("--context", default=None, help="context in --kubeconfig")
    parser.add_argument(
        "--namespace", default=None, help="watch KRMSyncers only in this namespace (default: all)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="port of /metrics /healthz /readyz (default 9090)",
    )
    parser.add_argument(
        "--allow-kubeconfig-exec",
        action="store_true",
        help="let kubeconfigs from Secrets run exec/auth-provider plugins and read local files",
    )
    parser.add_argument(
        "--restrict-to-own-namespace",
        action="store_true",
        help="a KRMSyncer may only sync its own namespace (unless in --tenant-namespaces)",
    )
    parser.add_argument(
        "--tenant-namespaces",
        default="",
        help="comma-separated namespaces whose KRMSyncers may sync anywhere when restricted",
    )
    parser.add_argument(
        "--max-shards-per-actor",
        type=int,
        default=1,
        help="shards per Ray actor process: 1 = one actor per shard (default), 0 = automatic packing past 50 shards",
    )
    parser.add_argument(
        "--cluster-name", default=None, help="this cluster's identity in ownership annotations"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    # Engine tuning: how hard shards may write. Defaults suit a production API server.
    engine = EngineOptions()
    tuning = parser.add_argument_group("engine tuning (per destination, per shard process)")
    tuning.add_argument(
        "--dest-qps",
        type=float,
        default=engine.dest_qps,
        help=f"token-bucket write rate per destination (default {engine.dest_qps:g}/s)",
    )
    tuning.add_argument(
        "--dest-burst",
        type=int,
        default=engine.dest_burst,
        help=f"token-bucket burst per destination (default {engine.dest_burst})",
    )
    tuning.add_argument(
        "--max-in-flight",
        type=int,
        default=engine.max_in_flight,
        help=f"concurrent writes per shard (default {engine.max_in_flight})",
    )
    tuning.add_argument(
        "--batch-size",
        type=int,
        default=engine.batch_size,
        help=f"ready keys drained per batch (default {engine.batch_size})",
    )
    tuning.add_argument(
        "--delete-guard-fraction",
        type=float,
        default=engine.delete_guard_fraction,
        help="delete-storm guard: pause deletes when a relist would remove more than this "
        f"fraction (default {engine.delete_guard_fraction:g}) ...",
    )
    tuning.add_argument(
        "--delete-guard-min",
        type=int,
        default=engine.delete_guard_min,
        help=f"... and more than this many owned objects (default {engine.delete_guard_min})",
    )


@dataclass
class OperatorOptions:
    namespace: str | None = None
    metrics_port: int = 9090
    metrics_host: str = "0.0.0.0"
    allow_kubeconfig_exec: bool = False
    restrict_to_own_namespace: bool = False
    tenant_namespaces: frozenset[str] = frozenset()
    max_shards_per_actor: int = 1
    cluster_name: str | None = None
    tick_s: float = 5.0
    discovery_ttl_s: float = 30.0
    probe_ttl_s: float = 15.0
    status_min_interval_s: float = 2.0
    engine_options: Any = None
    # Stop all shards when the operator exits (SIGTERM). False leaves them to a successor.
    stop_shards_on_exit: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, own_cluster_name: str) -> Settings:
        return Settings(
            namespace=self.namespace,
            allow_kubeconfig_exec=self.allow_kubeconfig_exec,
            tenancy=Tenancy(
                restrict_to_own_namespace=self.restrict_to_own_namespace,
                tenant_namespaces=self.tenant_namespaces,
            ),
            cluster_name=self.cluster_name or own_cluster_name or "in-cluster",
            tick_s=self.tick_s,
            discovery_ttl_s=self.discovery_ttl_s,
            probe_ttl_s=self.probe_ttl_s,
            status_min_interval_s=self.status_min_interval_s,
            engine_options=self.engine_options,
        )


def options_from_args(args: argparse.Namespace) -> OperatorOptions:
    tenants = frozenset(t.strip() for t in (args.tenant_namespaces or "").split(",") if t.strip())
    if args.max_shards_per_actor < 0:
        raise SystemExit("--max-shards-per-actor must be >= 0")
    try:
        engine = EngineOptions(
            dest_qps=args.dest_qps,
            dest_burst=args.dest_burst,
            max_in_flight=args.max_in_flight,
            batch_size=args.batch_size,
            delete_guard_fraction=args.delete_guard_fraction,
            delete_guard_min=args.delete_guard_min,
        )
    except ValueError as exc:
        raise SystemExit(f"ray-syncer run: {exc}") from None
    return OperatorOptions(
        namespace=args.namespace,
        metrics_port=args.metrics_port,
        allow_kubeconfig_exec=args.allow_kubeconfig_exec,
        restrict_to_own_namespace=args.restrict_to_own_namespace,
        tenant_namespaces=tenants,
        max_shards_per_actor=args.max_shards_per_actor,
        cluster_name=args.cluster_name,
        engine_options=engine,
    )


class MetricsFeed:
    """Feeds host snapshots into the merged collector and sets ``krmsyncer_shards{state}``."""

    def __init__(self) -> None:
        from ray_syncer.metrics import MergedCollector

        self.collector = MergedCollector(include_local=True)

    def __call__(self, report: SupervisorReport) -> None:
        from ray_syncer.metrics import set_shards_by_state

        for host, snap in report.metrics.items():
            self.collector.update(host, snap)
        for gone in set(self.collector.sources()) - set(report.metrics) - set(report.unreachable):
            self.collector.drop(gone)
        counts: dict[str, int] = {}
        for h in report.health.values():
            state = h.state.value if hasattr(h.state, "value") else str(h.state)
            counts[state] = counts.get(state, 0) + 1
        set_shards_by_state(counts)


async def serve(
    options: OperatorOptions,
    *,
    backend: Backend,
    own_config: Any,
    stop: asyncio.Event,
    on_started: Callable[[Reconciler, Any], None] | None = None,
) -> Reconciler:
    """Run the operator until ``stop`` is set; then stop shards (if configured) and return."""
    from ray_syncer.crd_order import CrdOrderingBackend
    from ray_syncer.kube.client import KubeClient
    from ray_syncer.operator.httpserver import HttpServer

    # CRDs before their objects: custom-resource shards wait for their CRD to be Established.
    backend = CrdOrderingBackend(backend)
    feed = MetricsFeed()
    client = KubeClient(own_config)
    reconciler = Reconciler(
        client, own_config, backend, options.settings(own_config.name), on_report=feed
    )
    started = time.monotonic()

    def healthy() -> bool:
        # Alive if a pass completed recently, or we are still starting up.
        recent = reconciler.last_pass or started
        return time.monotonic() - recent < max(60.0, 6 * options.tick_s)

    http = HttpServer(
        port=options.metrics_port,
        host=options.metrics_host,
        collector=feed.collector,
        healthy=healthy,
        ready=lambda: reconciler.ready,
    )
    await http.start()
    log.info("serving /metrics /healthz /readyz on port %d", http.port)
    if on_started is not None:
        on_started(reconciler, http)
    try:
        await reconciler.run(stop)
    finally:
        if options.stop_shards_on_exit:
            try:
                n = await asyncio.wait_for(backend.shutdown(), timeout=60)
                log.info("stopped %d shard host(s); destination data is kept", n)
            except Exception as exc:
                log.warning("shard shutdown incomplete: %s", type(exc).__name__)
        await http.stop()
        await client.close()
    return reconciler


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from ray_syncer import actors
    from ray_syncer.kube.config import KubeconfigError, load_default

    options = options_from_args(args)
    try:
        own_config = load_default(kubeconfig=args.kubeconfig, context=args.context)
    except KubeconfigError as exc:
        log.error("cannot load the operator's own cluster config: %s", exc.message)
        return 2
    actors.connect(args.ray_address)
    backend = actors.RayBackend(actors.ActorSettings(shards_per_host=options.max_shards_per_actor))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(options, backend=backend, own_config=own_config, stop=stop)

    try:
        asyncio.run(main())
    finally:
        actors.disconnect()
    return 0
