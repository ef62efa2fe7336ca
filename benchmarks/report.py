"""Results: the JSON schema, the machine and versions, the summary table and the plots.

Why this exists: every scenario produces one result dict with the same keys
(``RESULT_KEYS``), so runs can be compared across machines and commits. This
module adds the context a number needs to mean something (machine, versions,
parameters), writes ``<out>/<scenario>-<timestamp>.json``, prints the rich
table and draws the PNGs. ``benchmarks.churn`` calls it at the end of a run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULT_KEYS = (
    "scenario",
    "status",  # ok | failed | unavailable
    "note",
    "throughput_per_s",
    "ceiling_per_s",
    "ratio_to_ceiling",
    "naive_per_s",
    "ratio_to_naive",
    "latency_ms",
    "lost_updates",
    "dest_writes",
    "peak_rss_mb",
)


def new_result(scenario: str, **values: Any) -> dict[str, Any]:
    r: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    r.update(scenario=scenario, status="ok", note="", latency_ms=None)
    r.update(values)
    return r


def percentiles(samples_s: Sequence[float]) -> dict[str, float] | None:
    """p50/p90/p99/max in milliseconds (nearest-rank), None without samples."""
    if not samples_s:
        return None
    xs = sorted(samples_s)
    n = len(xs)

    def rank(p: float) -> float:
        # Nearest rank: the smallest sample with at least p of the samples at or below it.
        return xs[min(n - 1, max(0, math.ceil(p * n) - 1))] * 1000.0

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": xs[-1] * 1000.0,
        "count": n,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": model,
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "load_avg_at_start": os.getloadavg(),
    }


def versions() -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("ray", "ray-syncer", "kubernetes", "aiohttp", "orjson"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        import subprocess

        out["git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
            ).stdout.strip()
            or None
        )
    except OSError:
        out["git_commit"] = None
    return out


def write_results(
    results: list[dict[str, Any]],
    *,
    out: Path,
    stamp: str,
    context: dict[str, Any],
    latest: Path | None,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        doc = {**r, **context}
        safe = "".join(c if c.isalnum() or c in "@._-" else "_" for c in r["scenario"])
        p = out / f"{safe}-{stamp}.json"
        p.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
        written.append(p)
    summary = out / f"summary-{stamp}.json"
    summary.write_text(json.dumps({"results": results, **context}, indent=2, default=str) + "\n")
    written.append(summary)
    if latest is not None:
        latest.mkdir(parents=True, exist_ok=True)
        # A run of some scenarios replaces those scenarios' files only; the summary keeps the
        # other scenarios' rows from earlier runs (each row says which run it came from).
        merged = _merged_summary(latest / "summary.json", results, context)
        for p in written[:-1]:
            shutil.copyfile(p, latest / p.name.replace(f"-{stamp}", ""))
        (latest / "summary.json").write_text(json.dumps(merged, indent=2, default=str) + "\n")
    return written


def _merged_summary(
    path: Path, results: list[dict[str, Any]], context: dict[str, Any]
) -> dict[str, Any]:
    stamp = context.get("timestamp")
    rows = [{**r, "run": stamp} for r in results]
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    new = {r["scenario"] for r in results}
    kept = [{**r, "run": r.get("run") or old.get("timestamp")}
            for r in old.get("results") or [] if r.get("scenario") not in new]
    return {"results": kept + rows, **context}


# --------------------------------------------------------------------------- the floor

# Issue 21: the product's p50 and p99 within 1.25x the floor's, or the floor's + 25 ms if more,
# at every rate where the floor's own p99 stays within 1 s.
FLOOR_FACTOR = 1.25
FLOOR_SLACK_MS = 25.0
FLOOR_P99_LIMIT_MS = 1000.0


def vs_floor(product: dict[str, Any] | None, floor: dict[str, Any] | None) -> dict[str, Any] | None:
    """p50 and p99 of the product and of the floor (ms), their ratios, and the target."""
    if not product or not floor:
        return None
    out: dict[str, Any] = {"target_applies": floor["p99"] <= FLOOR_P99_LIMIT_MS}
    ok = True
    for q in ("p50", "p99"):
        mine, base = product[q], floor[q]
        limit = max(FLOOR_FACTOR * base, base + FLOOR_SLACK_MS)
        out[q] = {"product_ms": round(mine, 1), "floor_ms": round(base, 1),
                  "ratio": round(mine / base, 2) if base > 0 else None,
                  "limit_ms": round(limit, 1), "within": mine <= limit}
        ok = ok and mine <= limit
    out["within_target"] = ok if out["target_applies"] else None
    return out


def fill_floor_ratios(results: list[dict[str, Any]]) -> None:
    """Put the floor's figures and the ratios into each product churn row (same run)."""
    floors = {r["scenario"].removeprefix("floor_"): r for r in results
              if r["scenario"].startswith("floor_")}
    for r in results:
        s = r["scenario"]
        if s.startswith("floor_"):
            continue
        f = floors.get(s)
        if f is None:
            continue
        if s.startswith("churn@"):
            r["floor_latency_ms"] = f.get("latency_ms")
            r["vs_floor"] = vs_floor(r.get("latency_ms"), f.get("latency_ms"))
        elif s == "initial_sync":
            r["floor_per_s"] = f.get("throughput_per_s")
            r["ratio_to_floor"] = ratio(r.get("throughput_per_s"), f.get("throughput_per_s"))


def breakdown(
    rows: Sequence[Sequence[float]], *, acked: dict[int, float], visible: dict[int, float]
) -> dict[str, Any] | None:
    """Where a change's time went, per write: percentiles (ms) of each step.

    ``rows`` are the syncer's (seq, event arrived, dispatched, sent, answered); ``acked`` and
    ``visible`` the harness's times for each seq (all ``time.monotonic``, system-wide).
    arrival: source ack -> watch event in the syncer; queue: event -> handed to the writer;
    budget: waiting for the write budget and the gate; write: request round trip;
    visible: answer -> change seen in the harness's destination watch.
    """
    steps: dict[str, list[float]] = {k: [] for k in
                                     ("arrival", "queue", "budget", "write", "visible", "total")}
    for seq, ev, disp, sent, done in rows:
        ack, vis = acked.get(int(seq)), visible.get(int(seq))
        if ack is None:
            continue  # not a churn write of this window (initial list, an older version)
        steps["arrival"].append(ev - ack)
        steps["queue"].append(disp - ev)
        steps["budget"].append(sent - disp)
        steps["write"].append(done - sent)
        if vis is not None:
            steps["visible"].append(vis - done)
            steps["total"].append(vis - ack)
    if not steps["write"]:
        return None
    out: dict[str, Any] = {}
    for k, xs in steps.items():
        p = percentiles([max(0.0, x) for x in xs])
        if p is not None:
            out[k] = {q: round(v, 1) for q, v in p.items() if q != "count"} | {"count": p["count"]}
            out[k]["mean"] = round(sum(xs) / len(xs) * 1000, 1)
    return out


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _rpo(rpo: dict[str, Any] | None) -> str:
    """The recovery point the syncer reported, and the staleness the benchmark observed."""
    if not rpo or not rpo.get("reported_s"):
        return "-"
    rep, obs = rpo["reported_s"], rpo.get("observed_s") or {}
    bad = f" {rpo['bound_violations']} below" if rpo.get("bound_violations") else ""
    return f"{rep['p50']:.2f}/{rep['p99']:.2f} ({_fmt(obs.get('p99'), 2)}){bad}"


def _floor_cell(lat: dict[str, Any] | None) -> str:
    return "/".join(_fmt(lat.get(k)) for k in ("p50", "p99")) if lat else "-"


def _vs_floor_cell(v: dict[str, Any] | None) -> str:
    if not v:
        return "-"
    cell = "/".join(_fmt(v[q]["ratio"], 2) for q in ("p50", "p99"))
    if v["within_target"] is None:
        return cell + " (floor p99 > 1 s)"
    return cell + (" ok" if v["within_target"] else " MISSED")


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        lat = r.get("latency_ms") or {}
        rows.append(
            [
                r["scenario"],
                r["status"],
                _fmt(r.get("throughput_per_s")),
                _fmt(r.get("ceiling_per_s")),
                _fmt(r.get("ratio_to_ceiling"), 2),
                _fmt(r.get("naive_per_s")),
                _fmt(r.get("ratio_to_naive"), 1),
                "/".join(_fmt(lat.get(k)) for k in ("p50", "p99", "max")) if lat else "-",
                _rpo(r.get("rpo")),
                _floor_cell(r.get("floor_latency_ms")),
                _vs_floor_cell(r.get("vs_floor")),
                _fmt(r.get("lost_updates")),
                _fmt(r.get("dest_writes")),
                _fmt(r.get("syncer_cpu_ms_per_update") or r.get("client_cpu_ms_per_write"), 2),
                _fmt(r.get("peak_rss_mb")),
            ]
        )
    return rows


HEADERS = [
    "scenario",
    "status",
    "throughput/s",
    "ceiling/s",
    "x ceiling",
    "naive/s",
    "x naive",
    "latency ms p50/p99/max",
    "RPO s p50/p99 (observed p99)",
    "floor ms p50/p99",
    "x floor p50/p99",
    "lost",
    "dest writes",
    "CPU ms/write",
    "peak RSS MB",
]


def print_table(results: list[dict[str, Any]], *, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for h in HEADERS:
        t.add_column(h, justify="left" if h in ("scenario", "status") else "right")
    for row in table_rows(results):
        t.add_row(*row)
    console = Console(width=200)
    console.print(t)
    for r in results:
        if r.get("note"):
            console.print(f"[bold]{r['scenario']}[/bold]: {r['note']}")


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in table_rows(results):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def plot_all(series: dict[str, Any], *, out: Path, stamp: str, latest: Path | None) -> list[Path]:
    """Draw the PNGs from the time series the scenarios collected."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        p = out / f"{name}-{stamp}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
        if latest is not None:
            latest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, latest / f"{name}.png")

    cdfs: dict[str, list[float]] = series.get("latency", {})
    if cdfs:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, xs in cdfs.items():
            if not xs:
                continue
            ys = sorted(x * 1000 for x in xs)
            n = len(ys)
            ax.plot(ys, [(i + 1) / n for i in range(n)], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("propagation latency (ms, source ack -> visible in destination watch)")
        ax.set_ylabel("fraction of updates")
        ax.set_title("Latency CDF per churn rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "latency_cdf")

    tps: dict[str, list[float]] = series.get("throughput", {})
    if tps:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, times in tps.items():
            if not times:
                continue
            t0 = times[0]
            buckets: dict[int, int] = {}
            for t in times:
                b = int((t - t0) / 0.5)
                buckets[b] = buckets.get(b, 0) + 1
            idx = list(range(max(buckets) + 1))
            ax.plot([i * 0.5 for i in idx], [buckets.get(i, 0) * 2 for i in idx], label=label)
        ceiling = series.get("ceiling_per_s")
        if ceiling:
            ax.axhline(ceiling, color="k", ls="--", lw=1, label=f"ceiling {ceiling:,.0f}/s")
        ax.set_xlabel("seconds since first destination change")
        ax.set_ylabel("destination changes per second")
        ax.set_title("Throughput over time (destination watch)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "throughput")

    mem: list[tuple[int, float]] = series.get("memory", [])
    if mem:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        xs = [m[0] for m in mem]
        ys = [m[1] for m in mem]
        ax.plot(xs, ys, "o-", label="syncer process RSS growth")
        for x, y in mem:
            if x:
                ax.annotate(f"{y * 1024 * 1024 / x:,.0f} B/obj", (x, y), fontsize=8)
        traced: list[tuple[int, float]] = series.get("memory_traced", [])
        if traced:
            ax.plot(
                [t[0] for t in traced],
                [t[1] for t in traced],
                "s--",
                label="live heap (tracemalloc)",
            )
            for x, y in traced:
                if x:
                    ax.annotate(f"{y * 1024 * 1024 / x:,.0f} B/obj", (x, y), fontsize=8)
        ax.set_xlabel("tracked objects")
        ax.set_ylabel("MiB above the idle process")
        ax.set_title("Memory vs objects")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "memory")

    over: list[tuple[float, float]] = series.get("overload_rss", [])
    if over:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot([o[0] for o in over], [o[1] for o in over])
        ax.set_xlabel("seconds into overload")
        ax.set_ylabel("syncer RSS (MiB)")
        ax.set_title("Memory under overload (2x ceiling)")
        ax.grid(True, alpha=0.3)
        save(fig, "overload_memory")
    return paths


def timestamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime())


if __name__ == "__main__":  # python -m benchmarks.report <summary.json>: the markdown table
    import sys

    doc = json.loads(Path(sys.argv[1]).read_text())
    print(markdown_table(doc["results"]))
