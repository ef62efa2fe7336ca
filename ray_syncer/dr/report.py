"""Rendering for the DR commands: rich tables for people, JSON for automation.

Why it exists: ``status``, ``diff`` and ``failover`` print the same kinds of
facts; keeping the formatting here keeps the command modules about behaviour.
YAML and JSON go through ``clikit.output``.
Output goes to a ``rich.console.Console`` the caller passes in (tests pass one
writing to a string buffer).
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ray_syncer.dr.compare import DiffReport
from ray_syncer.dr.plan import Plan, state


def console(file: Any = None) -> Console:
    return Console(file=file or sys.stdout, width=160, highlight=False, soft_wrap=True)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def names(items: list[str], limit: int | None = 3) -> str:
    """A few names and how many more; all of them with ``limit=None`` (``-o wide``)."""
    if limit is None or len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" (+{len(items) - limit})"


def render_diff(report: DiffReport, con: Console, *, fields: bool = False, wide: bool = False) -> None:
    t = report.totals()
    verdict = "[green]IN SYNC[/green]" if report.in_sync else "[red]NOT IN SYNC[/red]"
    con.print(
        f"KRMSyncer {report.syncer}: {report.source} -> {report.destination}: {verdict}  "
        f"({t['sourceObjects']} source object(s), {t['missing']} missing, {t['differs']} differ, "
        f"{t['extra']} extra, {t['conflicts']} conflict(s); oldest unsynced change "
        f"{age(report.oldest_unsynced_seconds)})"
    )
    for e in report.errors:
        con.print(f"[red]error:[/red] {e}")
    limit = None if wide else 3
    table = Table(show_lines=False)
    for col in ("SHARD", "SOURCE", "DEST", "MISSING", "DIFFERS", "EXTRA", "CONFLICTS", "DETAIL"):
        table.add_column(col, overflow="fold")
    for s in report.shards:
        detail = []
        if s.error:
            detail.append(f"error: {s.error}")
        if s.missing:
            detail.append(f"missing: {names(s.missing, limit)}")
        if s.differs:
            detail.append(f"differs: {names([d.key for d in s.differs], limit)}")
        if s.extra:
            detail.append(f"extra: {names(s.extra, limit)}")
        if s.conflicts:
            detail.append(f"unowned: {names(s.conflicts, limit)}")
        table.add_row(
            s.shard, str(s.source_objects), str(s.dest_objects), str(len(s.missing)),
            str(len(s.differs)), str(len(s.extra)), str(len(s.conflicts)),
            "; ".join(detail) or "ok",
        )
    con.print(table)
    if s_orphans := [s for s in report.shards if s.orphaned]:
        con.print(f"kept on purpose (deletionPolicy Orphan): "
                  f"{names([k for s in s_orphans for k in s.orphaned], limit)}")
    if fields:
        for s in report.shards:
            for d in s.differs:
                con.print(f"[bold]{s.kind} {d.key}[/bold]")
                for line in d.fields or ["(no field-level difference: only the content hash differs)"]:
                    con.print(f"    {line}")


def recovery_point(report: DiffReport, status: dict[str, Any]) -> dict[str, Any]:
    """The standby's recovery point, two ways: measured by this comparison (what the clusters
    hold now), and as the operator last reported it (its status)."""
    rpo = status.get("recoveryPointSeconds")
    target = status.get("rpoTargetSeconds")
    cond = next((c for c in status.get("conditions") or []
                 if c.get("type") == "RecoveryPointObjective"), None)
    return {
        "checkedAt": report.checked_at,
        "inSync": report.in_sync,
        "oldestUnsyncedSeconds": report.oldest_unsynced_seconds,
        "reportedSeconds": rpo,
        "targetSeconds": target,
        "condition": {k: cond.get(k) for k in ("status", "reason", "message")} if cond else None,
    }


def recovery_point_lines(rp: dict[str, Any]) -> list[str]:
    """Two lines a person reads before promoting the standby: measured, and reported."""
    if rp["inSync"]:
        measured = "the standby holds every source change as of this check"
    elif rp["oldestUnsyncedSeconds"] is not None:
        measured = (f"the standby misses source changes; the oldest is "
                    f"{age(rp['oldestUnsyncedSeconds'])} old")
    else:
        measured = "the standby differs (see above); the age of its oldest gap is unknown"
    target = f", target {age(rp['targetSeconds'])}" if rp["targetSeconds"] is not None else ""
    cond = rp["condition"] or {}
    verdict = f" ({cond.get('status')} {cond.get('reason')})" if cond else ""
    return [f"recovery point, measured now: {measured}",
            f"recovery point, reported by the operator: {age(rp['reportedSeconds'])}"
            f"{target}{verdict}"]


def render_recovery_point(rp: dict[str, Any], con: Console) -> None:
    for line in recovery_point_lines(rp):
        con.print(line)


def render_plan(plan: Plan, con: Console, *, wide: bool = False) -> None:
    """``failover --dry-run``: the writes in order, the epoch, readiness, refusals, the verdict."""
    req, f = plan.request, plan.facts
    ns = req.namespace
    con.print(f"{plan.kind} failover of KRMSyncer {ns}/{req.name}: {f.active} -> {f.standby} "
              "(dry run: nothing was written)", markup=False)
    con.print(f"  {ns}/{req.name} on {f.active}: {state(f.x) if f.x else 'not read'}", markup=False)
    con.print(f"  {ns}/{req.reverse_name} on {f.standby}: {state(f.y)}", markup=False)
    if plan.epoch is not None:
        con.print(f"  failover epoch to write: {plan.epoch} (on {ns}/{req.reverse_name}, "
                  f"{f.standby}; the real run takes the time it runs, if later)", markup=False)
    if plan.steps:
        table = Table(show_lines=False)
        for col in ("STEP", "CLUSTER", "ACTION", "TARGET", "DETAIL"):
            table.add_column(col, overflow="fold")
        for i, s in enumerate(plan.steps, start=1):
            table.add_row(str(i), s.cluster, s.action, s.target, s.detail)
        con.print(table)
    if f.readiness is not None:
        t = f.readiness.totals()
        con.print(f"readiness of {f.standby}: {t['missing']} missing, {t['differs']} stale, "
                  f"{t['extra']} extra, {t['conflicts']} unowned", markup=False)
        render_diff(f.readiness, con, wide=wide)
    for reason in plan.refusals:
        con.print(f"refuses: {reason}", markup=False)
    con.print(f"verdict: {plan.verdict()[1]}", markup=False)
