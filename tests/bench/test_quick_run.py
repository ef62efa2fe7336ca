"""Smoke test: ``python -m benchmarks.churn --quick`` runs end to end and loses nothing.

Correctness only, no timing asserts: the servers, the syncer and the harness
run as separate processes on a small data set, and every scenario that ran must
leave the destination equal to the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.runner import engine_available

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_quick_benchmark_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.churn", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(next(tmp_path.glob("summary-*.json")).read_text())
    results = {r["scenario"]: r for r in summary["results"]}
    assert summary["machine"]["cpu_count"] >= 1
    assert results["ceiling"]["status"] == "ok" and results["ceiling"]["ceiling_per_s"] > 0
    for name in ("naive_initial_sync", "naive_churn"):
        assert results[name]["status"] == "ok", results[name]
        assert results[name]["lost_updates"] == 0
        assert results[name]["verify"]["source_objects"] == results[name]["verify"]["dest_objects"]
    engine = [
        r for n, r in results.items() if n.startswith(("initial", "churn@", "overload", "restart"))
    ]
    assert engine
    if engine_available() is None:
        for r in engine:
            assert r["status"] == "ok", r
            assert r["lost_updates"] == 0, r
        assert results["restart"]["dest_writes"] == 0
        churn = next(r for n, r in results.items() if n.startswith("churn@"))
        assert churn["latency_ms"]["count"] > 0
    else:
        assert all(r["status"] == "unavailable" for r in engine)
    assert list(tmp_path.glob("*.png")), "plots were not written"
