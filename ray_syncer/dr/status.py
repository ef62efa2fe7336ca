"""``ray-syncer status``: KRMSyncer shards, lag, recovery point, conflicts and conditions.

Reads KRMSyncer objects (one by name, all in ``-n``, or all namespaces with
``-A``) with the user's kubeconfig and prints what the operator last wrote to
their ``status``: the five conditions and the per-shard summary (objects,
pending, lag, recovery point, conflicts, errors). Works from a laptop; ``-o json`` prints the
raw status for automation. Also shows the failover markers
(``ray_syncer.fencing``) so a person sees which side is promoted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ray_syncer.dr.clusters import DrError, add_cluster_args, load_user, read_syncer
from ray_syncer.dr.report import age, console, print_json
from ray_syncer.fencing import ANN_LAST_FAILOVER, KRMSYNCER_RES, epoch_of, is_active
from ray_syncer.kube.client import ApiError, KubeClient, TransportError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None, help="KRMSyncer name (default: all)")
    add_cluster_args(parser)
    parser.add_argument("-A", "--all-namespaces", action="store_true")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


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


def render(objs: list[dict[str, Any]], con: Console) -> None:
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
        conds = Table(title=None, show_header=True)
        for col in ("CONDITION", "STATUS", "REASON", "MESSAGE"):
            conds.add_column(col, overflow="fold")
        for c in st.get("conditions") or []:
            conds.add_row(c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""))
        con.print(conds)
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


def run(args: argparse.Namespace) -> int:
    con = console()
    try:
        config = load_user(args.kubeconfig, args.context)
        ns = None if args.all_namespaces else (args.namespace or "default")
        objs = asyncio.run(fetch(config, namespace=ns, name=args.name))
    except DrError as exc:
        con.print(f"[red]error:[/red] {exc}")
        return 2
    except (ApiError, TransportError) as exc:
        con.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        return 2
    if args.output == "json":
        print_json([summary(o) for o in objs])
    else:
        render(objs, con)
    return 0
