"""``ray-syncer diff``: the DR-readiness report for one KRMSyncer.

Compares source and destination for every rule (``dr.compare``) using the
KRMSyncer's own kubeconfig Secret (read from the cluster the syncer lives in),
or explicit ``--source-kubeconfig`` / ``--dest-kubeconfig``. Pure API reads:
it works while the operator is down. Exit code 0 only when in sync, 1 when
not, 2 on error (cannot read a cluster, invalid KRMSyncer).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ray_syncer.dr.clusters import (
    DrError,
    add_cluster_args,
    load_file,
    load_user,
    read_syncer,
    resolve_sides,
)
from ray_syncer.dr.compare import DiffReport, compute_diff
from ray_syncer.dr.report import (
    console,
    print_json,
    recovery_point,
    render_diff,
    render_recovery_point,
)
from ray_syncer.kube.client import KubeClient


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="KRMSyncer name")
    add_cluster_args(parser)
    parser.add_argument("--source-kubeconfig", default=None, help="compare against this source instead of the syncer's")
    parser.add_argument("--source-context", default=None)
    parser.add_argument("--dest-kubeconfig", default=None, help="compare against this destination instead of the Secret's")
    parser.add_argument("--dest-context", default=None)
    parser.add_argument("--fields", action="store_true", help="show a field-level diff of differing objects")
    parser.add_argument("--rpo", action="store_true",
                        help="also report the standby's recovery point: measured by this check, "
                        "and as the operator reports it (before promoting the standby)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--allow-kubeconfig-exec", action="store_true",
                        help="let the kubeconfig in the syncer's Secret run exec plugins / read files")


async def diff_syncer(
    *,
    home_config: Any,
    namespace: str,
    name: str,
    source_override: Any = None,
    dest_override: Any = None,
    fields: bool = False,
    allow_exec: bool = False,
) -> tuple[DiffReport, dict[str, Any]]:
    """The comparison, and the KRMSyncer's status as the operator last wrote it."""
    async with KubeClient(home_config) as home:
        syncer = await read_syncer(home, namespace, name)
        sides = await resolve_sides(
            home_config, home, syncer, source_override=source_override,
            dest_override=dest_override, allow_exec=allow_exec,
        )
    async with KubeClient(sides.source) as src, KubeClient(sides.dest) as dst:
        report = await compute_diff(
            syncer, source=src, dest=dst, source_name=sides.source_name,
            dest_name=sides.dest_name, fields=fields,
        )
    return report, dict(syncer.get("status") or {})


def run(args: argparse.Namespace) -> int:
    con = console()
    try:
        home = load_user(args.kubeconfig, args.context)
        src = load_file(args.source_kubeconfig, args.source_context) if args.source_kubeconfig else None
        dst = load_file(args.dest_kubeconfig, args.dest_context) if args.dest_kubeconfig else None
        report, status = asyncio.run(
            diff_syncer(
                home_config=home, namespace=args.namespace or "default", name=args.name,
                source_override=src, dest_override=dst, fields=args.fields,
                allow_exec=args.allow_kubeconfig_exec,
            )
        )
    except DrError as exc:
        con.print(f"[red]error:[/red] {exc}")
        return 2
    rp = recovery_point(report, status) if args.rpo else None
    if args.output == "json":
        print_json({**report.to_json(), **({"recoveryPoint": rp} if rp else {})})
    else:
        render_diff(report, con, fields=args.fields)
        if rp is not None:
            render_recovery_point(rp, con)
    if report.errors or any(s.error for s in report.shards):
        return 2
    return 0 if report.in_sync else 1
