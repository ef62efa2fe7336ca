"""``ray-syncer run``'s flags and the operator's options.

Why it exists: the flags are the operator's user interface, and their parsing
and checks are one concern apart from the process that runs them
(``ray_syncer.run``) and the controller they configure (``operator.serve``):
:func:`configure` declares them, :func:`options_from_args` turns them into an
:class:`OperatorOptions` (or a clear exit for a bad value), and
:meth:`OperatorOptions.settings` gives the reconciler its part.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.clikit.flags import at_least, log_level, port, seconds_at_least
from ray_syncer.engine.options import EngineOptions
from ray_syncer.operator.planner import Tenancy
from ray_syncer.operator.reconciler import Settings
from ray_syncer.operator.stopper import RAY_STOP_RESERVE_S, STOP_TIMEOUT_S


def configure(parser: argparse.ArgumentParser) -> None:
    _connection_flags(parser)
    _operator_flags(parser)
    _tuning_flags(parser)


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    """Where Ray and the operator's own cluster are, and where it serves."""
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
    # Unlike a client command, -n does not default to the context's namespace: an operator
    # serves every namespace (as kube controllers do) unless told to watch one.
    parser.add_argument(
        "-n", "--namespace", default=None,
        help="watch KRMSyncers only in this namespace (default: all namespaces, not the "
        "context's: the operator serves the whole cluster)",
    )
    parser.add_argument(
        "--metrics-port",
        type=port,
        default=9090,
        help="port of /metrics /healthz /readyz (default 9090)",
    )


def _operator_flags(parser: argparse.ArgumentParser) -> None:
    """What the operator may do, how it packs shards, names itself, logs and stops."""
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
        type=at_least(0),
        default=0,
        help="shards per Ray actor process: 0 = automatic (default: one actor per shard up to "
        "50 shards, then 50 per actor), 1 = always one actor per shard, N = up to N per actor",
    )
    parser.add_argument(
        "--supervisor-resource",
        default=None,
        metavar="NAME",
        help="run the supervisor actor on a Ray node with this custom resource (default: the "
        "head node, beside the operator)",
    )
    parser.add_argument(
        "--cluster-name", default=None, help="this cluster's identity in ownership annotations"
    )
    parser.add_argument("--log-level", type=log_level, default="INFO",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL, any case (default INFO)")
    parser.add_argument(
        "--stop-timeout",
        type=seconds_at_least(4),
        default=STOP_TIMEOUT_S,
        help="seconds from SIGTERM/SIGINT to exit, whatever is stuck; shards get what Ray's "
        f"shutdown does not need (default {STOP_TIMEOUT_S:g}, at least 4)",
    )


def _tuning_flags(parser: argparse.ArgumentParser) -> None:
    """Engine tuning: how hard shards may write. Defaults suit a production API server."""
    engine = EngineOptions()
    tuning = parser.add_argument_group("engine tuning (per destination, per shard process)")
    tuning.add_argument(
        "--dest-qps",
        type=float,
        default=engine.dest_qps,
        help="hard cap on writes/s per destination (default: none; the write budget adapts "
        "to the destination's 429s, errors and latency)",
    )
    tuning.add_argument(
        "--dest-burst",
        type=int,
        default=engine.dest_burst,
        help="burst allowed at the --dest-qps cap (default: one second's worth)",
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
    max_shards_per_actor: int = 0  # automatic packing
    supervisor_resource: str | None = None  # None: the head node
    cluster_name: str | None = None
    tick_s: float = 5.0
    discovery_ttl_s: float = 30.0
    probe_ttl_s: float = 15.0
    status_min_interval_s: float = 2.0
    engine_options: Any = None
    # Stop all shards when the operator exits (SIGTERM). False leaves them to a successor.
    stop_shards_on_exit: bool = True
    # Bound on the whole stop in serve(): reconciler, metrics server, shards, client.
    stop_timeout_s: float = 60.0
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
    """The options; ``ValueError`` (a usage error, exit 2) for values only valid together."""
    tenants = frozenset(t.strip() for t in (args.tenant_namespaces or "").split(",") if t.strip())
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
        raise ValueError(f"ray-syncer run: {exc}") from None
    return OperatorOptions(
        namespace=args.namespace,
        metrics_port=args.metrics_port,
        allow_kubeconfig_exec=args.allow_kubeconfig_exec,
        restrict_to_own_namespace=args.restrict_to_own_namespace,
        tenant_namespaces=tenants,
        max_shards_per_actor=args.max_shards_per_actor,
        supervisor_resource=args.supervisor_resource or None,
        cluster_name=args.cluster_name,
        engine_options=engine,
        stop_timeout_s=args.stop_timeout - RAY_STOP_RESERVE_S,
    )
