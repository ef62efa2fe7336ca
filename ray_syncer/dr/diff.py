"""``ray-syncer diff``: the DR-readiness report for one KRMSyncer.

Compares source and destination for every rule (``dr.compare``) using the
KRMSyncer's own kubeconfig Secret (read from the cluster the syncer lives in),
or ``--peer-kubeconfig`` for the other cluster (the deprecated
``--source-kubeconfig`` / ``--dest-kubeconfig`` still replace one role). Pure
API reads: it works while the operator is down. Without a name it checks every
active KRMSyncer in the namespace (``-A``: all namespaces; suspended ones are
listed as skipped). Exit code 0 only when in sync, 1 when not, 2 on error
(cannot read a cluster, invalid KRMSyncer).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.clikit.flags import add_peer_flags, alias, resolve_namespace
from ray_syncer.clikit.output import STRUCTURED, add_output_flag, emit
from ray_syncer.dr.clusters import (
    DrError,
    add_cluster_args,
    load_file,
    load_peer,
    load_user,
    read_syncer,
    resolve_sides,
)
from ray_syncer.dr.compare import DiffReport, compute_diff
from ray_syncer.dr.report import console, recovery_point, render_diff, render_recovery_point
from ray_syncer.dr.status import fetch
from ray_syncer.fencing import is_active
from ray_syncer.kube.client import KubeClient

EXAMPLES = (
    "ray-syncer diff app -n shop --context alpha          # the Secret says where the peer is",
    "ray-syncer diff app -n shop --kubeconfig alpha.yaml --peer-kubeconfig beta.yaml",
    "ray-syncer diff app --fields -o wide                 # every name, field-level changes",
    "ray-syncer diff app --rpo -o json",
    "ray-syncer diff -A                                   # every active KRMSyncer, all namespaces",
    "ray-syncer diff app -n shop || page-someone          # a DR drill",
)
# The old role-named spellings replace the source or the destination whichever cluster holds
# it; --peer-* replaces the other cluster. Kept hidden for one release.
OLD_ROLE_FLAGS = (
    ("--source-kubeconfig", "source_kubeconfig", "--peer-kubeconfig (pull mode) or --kubeconfig (push mode)"),
    ("--source-context", "source_context", "--peer-context (pull mode) or --context (push mode)"),
    ("--dest-kubeconfig", "dest_kubeconfig", "--peer-kubeconfig"),
    ("--dest-context", "dest_context", "--peer-context"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None,
                        help="KRMSyncer name (default: every active KRMSyncer in the namespace; "
                        "with -A in all namespaces)")
    add_cluster_args(parser, all_namespaces=True)
    add_peer_flags(parser, what="the other cluster (the destination in push mode, the source in pull mode)")
    for old, dest, use in OLD_ROLE_FLAGS:
        alias(parser, old, dest=dest, use=use)
    parser.set_defaults(**{dest: None for _, dest, _ in OLD_ROLE_FLAGS})
    parser.add_argument("--fields", action="store_true", help="show a field-level diff of differing objects")
    parser.add_argument("--rpo", action="store_true",
                        help="also report the standby's recovery point: measured by this check, "
                        "and as the operator reports it (before promoting the standby)")
    add_output_flag(parser)
    parser.add_argument("--allow-kubeconfig-exec", action="store_true",
                        help="let the kubeconfig in the syncer's Secret run exec plugins / read files")
    describe(parser, examples=EXAMPLES, exit_codes=codes(
        Exit.OK, Exit.NOT_READY, Exit.USAGE, OK="in sync: the standby holds what the source holds",
        NOT_READY="not in sync (missing, differing, extra or unowned objects; any syncer listed)",
        USAGE="usage error, or a cluster cannot be read / the KRMSyncer is invalid or absent"))


async def diff_syncer(
    *,
    home_config: Any,
    namespace: str,
    name: str,
    peer: Any = None,
    source_override: Any = None,
    dest_override: Any = None,
    fields: bool = False,
    allow_exec: bool = False,
) -> tuple[DiffReport, dict[str, Any]]:
    """The comparison, and the KRMSyncer's status as the operator last wrote it."""
    async with KubeClient(home_config) as home:
        syncer = await read_syncer(home, namespace, name)
        sides = await resolve_sides(
            home_config, home, syncer, peer=peer, source_override=source_override,
            dest_override=dest_override, allow_exec=allow_exec,
        )
    async with KubeClient(sides.source) as src, KubeClient(sides.dest) as dst:
        report = await compute_diff(
            syncer, source=src, dest=dst, source_name=sides.source_name,
            dest_name=sides.dest_name, fields=fields,
        )
    return report, dict(syncer.get("status") or {})


Result = tuple[DiffReport, dict[str, Any]]


async def _collect(args: argparse.Namespace, home: Any, namespace: str | None) -> tuple[list[Result], list[str]]:
    """One named KRMSyncer, or every active one in the namespace (all with -A); a suspended
    syncer syncs nothing, so it promises no readiness: listed as skipped."""
    if args.name:
        targets, skipped = [(namespace or "default", args.name)], []
    else:
        found = await fetch(home, namespace=namespace, name=None)
        targets = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in found if is_active(o)]
        skipped = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in found if not is_active(o)]
    src = load_file(args.source_kubeconfig, args.source_context) if args.source_kubeconfig else None
    dst = load_file(args.dest_kubeconfig, args.dest_context) if args.dest_kubeconfig else None
    results = [await diff_syncer(home_config=home, namespace=ns, name=name, peer=load_peer(args),
                                 source_override=src, dest_override=dst, fields=args.fields,
                                 allow_exec=args.allow_kubeconfig_exec) for ns, name in targets]
    return results, skipped


def _show(args: argparse.Namespace, results: list[Result], skipped: list[str], con: Any) -> None:
    def entry(report: DiffReport, status: dict[str, Any]) -> dict[str, Any]:
        rp = recovery_point(report, status) if args.rpo else None
        return {**report.to_json(), **({"recoveryPoint": rp} if rp else {})}

    if args.output in STRUCTURED:
        items = [entry(r, st) for r, st in results]
        emit(items[0] if args.name else {"items": items, "skipped": skipped}, args.output)
        return
    for report, status in results:
        render_diff(report, con, fields=args.fields, wide=args.output == "wide")
        if args.rpo:
            render_recovery_point(recovery_point(report, status), con)
    if not args.name and not results:
        con.print("no active KRMSyncers found")
    for name in skipped:
        con.print(f"KRMSyncer {name}: skipped (suspended: it syncs nothing)")


def run(args: argparse.Namespace) -> int:
    con = console()
    try:
        home = load_user(args.kubeconfig, args.context)
        namespace = resolve_namespace(args, home)
        if args.name and namespace is None:
            raise DrError("a KRMSyncer name needs one namespace: drop -A or the name")
        results, skipped = asyncio.run(_collect(args, home, namespace))
    except DrError as exc:
        con.print(f"[red]error:[/red] {exc}")
        return Exit.USAGE
    _show(args, results, skipped, con)
    reports = [r for r, _ in results]
    if any(r.errors or any(s.error for s in r.shards) for r in reports):
        return Exit.USAGE
    return Exit.OK if all(r.in_sync for r in reports) else Exit.NOT_READY
