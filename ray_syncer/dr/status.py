"""``ray-syncer status``: KRMSyncer shards, lag, recovery point, conflicts and conditions.

Reads KRMSyncer objects (one by name, all in ``-n``, or all namespaces with
``-A``) with the user's kubeconfig and prints what the operator last wrote to
their ``status``: the five conditions and the per-shard summary (objects,
pending, lag, recovery point, conflicts, errors). Works from a laptop; ``-o
wide`` adds when each condition last changed, ``-o yaml|json`` print the raw
status for automation. Also shows the failover markers
(``ray_syncer.fencing``) so a person sees which side is promoted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ray_syncer.clikit.exits import Exit, codes, describe
from ray_syncer.clikit.flags import resolve_namespace
from ray_syncer.clikit.output import STRUCTURED, add_output_flag, emit
from ray_syncer.dr.clusters import DrError, add_cluster_args, load_user, read_syncer
from ray_syncer.dr.report import age, console
from ray_syncer.fencing import ANN_LAST_FAILOVER, KRMSYNCER_RES, epoch_of, is_active
from ray_syncer.kube.client import ApiError, KubeClient, TransportError

EXAMPLES = (
    "ray-syncer status                         # every KRMSyncer in the context's namespace",
    "ray-syncer status app -n shop --context alpha",
    "ray-syncer status -A -o wide",
    "ray-syncer status -A -o json | jq '.[] | select(.active)'",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None, help="KRMSyncer name (default: all)")
    add_cluster_args(parser, all_namespaces=True)
    add_output_flag(parser)
    describe(parser, examples=EXAMPLES, exit_codes=codes(Exit.OK, Exit.USAGE,
                                                         OK="the status was read and shown"))


async def fetch(config: Any, *, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    async with KubeClient(config) as client:
        if name:
            return [await read_syncer(client, namespace or "default", name)]
        items, _ = await client.list_all(KRMSYNCER_RES, namespace=namespace)
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def summary(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations") or {}
    last = ann.get(ANN_LAST_FAILOVER)
    try:
        failover = json.loads(last) if last else None
    except ValueError:
        failover = None
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "mode": (obj.get("spec") or {}).get("mode") or "push",
        "active": is_active(obj),
        "failoverEpoch": epoch_of(obj),
        "lastFailover": failover,
        "status": obj.get("status") or {},
    }


def render(objs: list[dict[str, Any]], con: Console, *, wide: bool = False) -> None:
    if not objs:
        con.print("no KRMSyncers found")
        return
    for obj in objs:
        s = summary(obj)
        st = s["status"]
        head = (
            f"[bold]KRMSyncer {s['namespace']}/{s['name']}[/bold]  mode={s['mode']}  "
            f"{'active' if s['active'] else 'suspended'}  objects={st.get('objects', 0)}  "
            f"shards={st.get('shardCount', 0)}  observedGeneration={st.get('observedGeneration', '-')}"
        )
        if "recoveryPointSeconds" in st or "rpoTargetSeconds" in st:
            head += f"  rpo={age(st.get('recoveryPointSeconds'))}"
            if "rpoTargetSeconds" in st:
                head += f" (target {age(st['rpoTargetSeconds'])})"
        if s["failoverEpoch"]:
            head += f"  failover-epoch={s['failoverEpoch']}"
        con.print(head)
        if s["lastFailover"]:
            lf = s["lastFailover"]
            con.print(f"  last failover: {lf.get('role')} ({lf.get('kind')}) at {lf.get('at')}, peer {lf.get('peer')}")
        con.print(_conditions(st, wide=wide))
        shards = st.get("shards") or []
        if shards:
            t = Table(show_header=True)
            for col in ("SHARD", "STATE", "OBJECTS", "PENDING", "LAG", "RPO", "CONFLICTS", "ERRORS",
                        "LAST SYNC", "MESSAGE"):
                t.add_column(col, overflow="fold")
            for sh in shards:
                t.add_row(
                    sh.get("name", ""), sh.get("state", ""), str(sh.get("objects", 0)),
                    str(sh.get("pending", 0)), age(sh.get("lagSeconds")),
                    age(sh.get("recoveryPointSeconds")), str(sh.get("conflicts", 0)),
                    str(sh.get("errors", 0)), sh.get("lastSyncTime", "-"), sh.get("message", ""),
                )
            con.print(t)
        if st.get("shardsOmitted"):
            con.print(f"  ({st['shardsOmitted']} more shard(s) not listed in status)")
        for line in st.get("expandedRules") or []:
            con.print(f"  {line}")
        if st.get("conflictsSample"):
            con.print(f"  unowned objects in the destination: {', '.join(st['conflictsSample'])}")
        con.print("")


def _conditions(st: dict[str, Any], *, wide: bool) -> Table:
    cols = ("CONDITION", "STATUS", "REASON", "MESSAGE") + (("SINCE",) if wide else ())
    conds = Table(title=None, show_header=True)
    for col in cols:
        conds.add_column(col, overflow="fold")
    for c in st.get("conditions") or []:
        row = [c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")]
        conds.add_row(*row, *([c.get("lastTransitionTime", "-")] if wide else []))
    return conds


def run(args: argparse.Namespace) -> int:
    con = console()
    try:
        config = load_user(args.kubeconfig, args.context)
        ns = resolve_namespace(args, config)
        if ns is None and args.name:
            raise DrError("a KRMSyncer name needs one namespace: drop -A or the name")
        objs = asyncio.run(fetch(config, namespace=ns, name=args.name))
    except DrError as exc:
        con.print(f"[red]error:[/red] {exc}")
        return Exit.USAGE
    except (ApiError, TransportError) as exc:
        con.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        return Exit.USAGE
    if args.output in STRUCTURED:
        emit([summary(o) for o in objs], args.output)
    else:
        render(objs, con, wide=args.output == "wide")
    return Exit.OK
