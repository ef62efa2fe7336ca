"""Rendering for the DR commands: rich tables for people, JSON for automation.

Why it exists: ``status``, ``diff`` and ``failover`` print the same kinds of
facts; keeping the formatting here keeps the command modules about behaviour.
Output goes to a ``rich.console.Console`` the caller passes in (tests pass one
writing to a string buffer).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from ray_syncer.dr.compare import DiffReport


def console(file: Any = None) -> Console:
    return Console(file=file or sys.stdout, width=160, highlight=False, soft_wrap=True)


def print_json(data: Any, file: Any = None) -> None:
    out = file or sys.stdout
    out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit})" if len(items) > limit else "")


def render_diff(report: DiffReport, con: Console, *, fields: bool = False) -> None:
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
    table = Table(show_lines=False)
    for col in ("SHARD", "SOURCE", "DEST", "MISSING", "DIFFERS", "EXTRA", "CONFLICTS", "DETAIL"):
        table.add_column(col, overflow="fold")
    for s in report.shards:
        detail = []
        if s.error:
            detail.append(f"error: {s.error}")
        if s.missing:
            detail.append(f"missing: {_names(s.missing)}")
        if s.differs:
            detail.append(f"differs: {_names([d.key for d in s.differs])}")
        if s.extra:
            detail.append(f"extra: {_names(s.extra)}")
        if s.conflicts:
            detail.append(f"unowned: {_names(s.conflicts)}")
        table.add_row(
            s.shard, str(s.source_objects), str(s.dest_objects), str(len(s.missing)),
            str(len(s.differs)), str(len(s.extra)), str(len(s.conflicts)),
            "; ".join(detail) or "ok",
        )
    con.print(table)
    if fields:
        for s in report.shards:
            for d in s.differs:
                con.print(f"[bold]{s.kind} {d.key}[/bold]")
                for line in d.fields or ["(no field-level difference: only the content hash differs)"]:
                    con.print(f"    {line}")
