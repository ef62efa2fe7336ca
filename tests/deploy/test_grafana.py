"""deploy/grafana/krmsyncer.json queries only metrics, labels and states that exist.

Metric names, their types and label names come from ray_syncer/metrics.py itself (the one place
metrics are defined); shard states from ShardState. A renamed metric or label breaks this test
instead of silently emptying a panel.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from ray_syncer import metrics
from ray_syncer.engine.spec import ShardState
from tests.deploy.manifests import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "krmsyncer.json"


def _defined() -> dict[str, tuple[str, set[str]]]:
    """Series name -> (metric type, label names), for every series metrics.py can emit."""
    out: dict[str, tuple[str, set[str]]] = {}
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        name, kind, labels = obj._name, obj._type, set(obj._labelnames)
        if kind == "counter":
            out[f"{name}_total"] = (kind, labels)
        elif kind == "histogram":
            out[f"{name}_bucket"] = (kind, labels | {"le"})
            out[f"{name}_sum"] = out[f"{name}_count"] = (kind, labels)
        else:
            out[name] = (kind, labels)
    return out


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _exprs(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["definition"])
    return exprs


def problems(dash: dict[str, Any], defined: dict[str, tuple[str, set[str]]]) -> list[str]:
    """Everything in the dashboard's queries that metrics.py does not define."""
    found: list[str] = []
    states = {s.value for s in ShardState}
    for expr in _exprs(dash):
        names = re.findall(r"\b(krmsyncer_[a-z_]+)", expr)
        if not names:
            found.append(f"no krmsyncer metric in {expr!r}")
        for name in names:
            if name not in defined:
                found.append(f"unknown metric {name}")
                continue
            kind, labels = defined[name]
            if kind == "counter" and not re.search(rf"(rate|increase)\(\s*{name}", expr):
                found.append(f"counter {name} used without rate(): {expr!r}")
            for sel in re.findall(rf"{name}\{{([^}}]*)\}}", expr):
                for label, value in re.findall(r'(\w+)\s*[=!~]+\s*"([^"]*)"', sel):
                    if label not in labels:
                        found.append(f"{name} has no label {label}")
                    if label == "state":
                        unknown = set(value.split("|")) - states
                        if unknown:
                            found.append(f"no shard state {sorted(unknown)}")
        used = set(names)
        allowed = set().union(*(defined[n][1] for n in used if n in defined)) if used else set()
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                if label and label not in allowed:
                    found.append(f"grouping by {label}, which {sorted(used)} lack")
        for m in re.findall(r"label_values\(\s*\w+\s*,\s*(\w+)\s*\)", expr):
            if m not in allowed:
                found.append(f"label_values over missing label {m}")
    return found


def test_every_query_uses_defined_metrics_and_labels() -> None:
    assert problems(_dashboard(), _defined()) == []


def test_the_check_catches_a_renamed_metric_or_label() -> None:
    dash = _dashboard()
    dash["panels"].append({"targets": [{"expr": "sum(krmsyncer_queue_length)"}]})
    dash["panels"].append({"targets": [{"expr": "sum by (cluster) (krmsyncer_objects)"}]})
    dash["panels"].append({"targets": [{"expr": 'sum(krmsyncer_shards{state="Running"})'}]})
    dash["panels"].append({"targets": [{"expr": "sum(krmsyncer_relists_total)"}]})
    found = problems(dash, _defined())
    assert "unknown metric krmsyncer_queue_length" in found
    assert any("grouping by cluster" in f for f in found)
    assert any("no shard state ['Running']" in f for f in found)
    assert any("without rate()" in f for f in found)


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        (
            "latency percentiles",
            r"histogram_quantile\(0\.99, sum by \(le\) \(rate\(krmsyncer_sync_latency_seconds_bucket",
        ),
        ("throughput by result", r"sum by \(result\) \(rate\(krmsyncer_applies_total"),
        ("queue depth", r"krmsyncer_queue_depth"),
        ("errors", r"krmsyncer_errors"),
        ("lag per shard", r"by \(syncer, shard\) \(krmsyncer_lag_seconds"),
        ("recovery point per syncer", r"max by \(syncer\) \(krmsyncer_rpo_seconds"),
        ("its target", r"max by \(syncer\) \(krmsyncer_rpo_target_seconds"),
        ("recovery point per shard", r"by \(syncer, shard\) \(krmsyncer_rpo_seconds"),
        ("shards by state", r"sum by \(state\) \(krmsyncer_shards\)"),
    ],
)
def test_dashboard_shows_what_operators_need(what: str, pattern: str) -> None:
    assert any(re.search(pattern, e) for e in _exprs(_dashboard())), what


def test_dashboard_is_importable() -> None:
    dash = _dashboard()
    assert dash["uid"] == "krmsyncer" and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert {"x", "y", "w", "h"} <= p["gridPos"].keys()
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "syncer"}
