"""deploy/monitoring/prometheus-rule.yaml: the RPO burn-rate alerts fire when they should.

``promtool`` (Debian's ``prometheus`` package; .ci/run installs it and sets
``KRMSYNCER_REQUIRE_PROMTOOL=1``) lints the rules and runs them over recorded series: a standby
that stalls pages and the page ends after it catches up, a slow leak of misses opens a ticket
and never pages, a 30-second blip or a healthy syncer alerts nobody, and an operator that is
not scraped pages. Without promtool the two promtool tests skip and say so; the metric names
and labels are checked against metrics.py either way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY
from tests.deploy.test_grafana import _defined

RULE = DEPLOY / "monitoring" / "prometheus-rule.yaml"
REQUIRE_ENV = "KRMSYNCER_REQUIRE_PROMTOOL"
SYNCER = "ops/app"
STEP = "30s"  # the scrape and rule-evaluation interval of every scenario


def _rule() -> dict[str, Any]:
    return yaml.safe_load(RULE.read_text())


def _rules() -> list[dict[str, Any]]:
    return [r for g in _rule()["spec"]["groups"] for r in g["rules"]]


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but promtool is not installed")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    """The PrometheusRule's spec as the plain rule file Prometheus (and promtool) reads."""
    path = tmp_path / "krmsyncer-rules.yaml"
    path.write_text(yaml.safe_dump(_rule()["spec"], sort_keys=False))
    return path


def test_the_rules_use_defined_metrics_labels_and_records() -> None:
    defined = _defined()
    recorded: set[str] = set()
    for r in _rules():
        expr = r["expr"]
        for name in re.findall(r"\b(krmsyncer_[a-z_]+)", expr):
            assert name in defined, f"unknown metric {name} in {expr!r}"
            assert "syncer" in defined[name][1]
        for name in re.findall(r"\b(krmsyncer:[a-z0-9_:]+)", expr):
            assert name in recorded, f"{name} is used before it is recorded"
        if "record" in r:
            recorded.add(r["record"])
    assert _rule()["kind"] == "PrometheusRule"
    assert _rule()["metadata"]["namespace"] == "krmsyncer-system"


def test_promtool_finds_the_rules_valid(promtool: str, rule_file: Path) -> None:
    out = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 12 rules found" in out.stdout, out.stdout


# --- scenarios: series over time, and the alerts expected at chosen moments -----------------

def _repeat(pattern: str, times: int) -> str:
    return " ".join([pattern] * times)


def _samples(minutes: float) -> int:
    return int(minutes * 2)  # 30-second steps


def _syncer_series(rpo: str, *, target: float = 30.0, samples: int) -> list[dict[str, str]]:
    return [
        {"series": f'krmsyncer_rpo_seconds{{syncer="{SYNCER}",shard="{SYNCER}/core/ConfigMap/a"}}',
         "values": rpo},
        # A second shard, always current: the worst shard is what counts.
        {"series": f'krmsyncer_rpo_seconds{{syncer="{SYNCER}",shard="{SYNCER}/core/Secret/a"}}',
         "values": f"1x{samples}"},
        {"series": f'krmsyncer_rpo_target_seconds{{syncer="{SYNCER}"}}',
         "values": f"{target:g}x{samples}"},
        {"series": 'up{job="krmsyncer-metrics",endpoint="operator"}', "values": f"1x{samples}"},
    ]


def _alert(name: str, severity: str) -> dict[str, Any]:
    """The firing alert promtool should report, its annotations rendered for ``SYNCER``."""
    rule = next(r for r in _rules()
                if r.get("alert") == name and r["labels"]["severity"] == severity)
    labels = {"severity": severity}
    if "$labels.syncer" in rule["annotations"]["summary"]:
        labels["syncer"] = SYNCER
    else:
        labels["job"] = "krmsyncer-metrics"
    annotations = {k: v.replace("{{ $labels.syncer }}", SYNCER)
                   for k, v in rule["annotations"].items()}
    return {"exp_labels": labels, "exp_annotations": annotations}


def _at(minutes: float, *alerts: dict[str, Any], name: str = "KRMSyncerRPOBudgetBurn",
        ) -> dict[str, Any]:
    return {"eval_time": f"{minutes:g}m", "alertname": name, "exp_alerts": list(alerts)}


PAGE = _alert("KRMSyncerRPOBudgetBurn", "page")
TICKET = _alert("KRMSyncerRPOBudgetBurn", "ticket")

# The standby stalls from 10 m to 30 m (its recovery point grows 30 s per 30 s), then catches
# up. The page is pending from 10 m, fires at 12 m, and holds until its 30-minute short window
# is clean (60 m); the ticket fires at 25 m and holds until its 6-hour short window is clean
# (6 h 30 m): 20 minutes past the target are 46 % of the month's budget.
STALL = {
    "input_series": _syncer_series("2x19 32+30x40 2x840", samples=900),
    "alert_rule_test": [
        _at(11),
        _at(13, PAGE),
        _at(30, PAGE, TICKET),
        _at(65, TICKET),
        _at(6 * 60 + 25, TICKET),
        _at(6 * 60 + 35),
    ],
    "promql_expr_test": [
        {"expr": "krmsyncer:rpo_seconds:max", "eval_time": "20m",
         "exp_samples": [{"labels": f'krmsyncer:rpo_seconds:max{{syncer="{SYNCER}"}}',
                          "value": 632}]},
        {"expr": "krmsyncer:rpo_target_missed", "eval_time": "5m",
         "exp_samples": [{"labels": f'krmsyncer:rpo_target_missed{{syncer="{SYNCER}"}}',
                          "value": 0}]},
    ],
}

# One miss in every 200 steps (0.5 % of the time) for a day: five times the budget's rate,
# a ticket; never enough in an hour or six to page.
LEAK = {
    "input_series": _syncer_series(_repeat("2x198 100", 15), samples=3000),
    "alert_rule_test": [_at(6 * 60, TICKET), _at(12 * 60, TICKET), _at(24 * 60, TICKET)],
}

# A healthy syncer for nine hours, then one 30-second miss: nobody is alerted.
BLIP = {
    "input_series": _syncer_series(f"2x{_samples(9 * 60)} 100 2x60", samples=_samples(9 * 60) + 62),
    "alert_rule_test": [_at(9 * 60 + 1), _at(9 * 60 + 5), _at(9 * 60 + 20)],
}

# The operator's scrape fails from 10 m on: no recovery point is measured, so it pages itself.
DOWN = {
    "input_series": [{"series": 'up{job="krmsyncer-metrics",endpoint="operator"}',
                      "values": "1x19 0x40"}],
    "alert_rule_test": [
        _at(13, name="KRMSyncerOperatorDown"),
        _at(16, _alert("KRMSyncerOperatorDown", "page"), name="KRMSyncerOperatorDown"),
        _at(16, name="KRMSyncerRPOBudgetBurn"),
    ],
}

SCENARIOS = {"stall": STALL, "leak": LEAK, "blip": BLIP, "operator-down": DOWN}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_alerts_fire_on_recorded_series(
    promtool: str, rule_file: Path, tmp_path: Path, scenario: str
) -> None:
    tests = {"rule_files": [rule_file.name], "evaluation_interval": STEP,
             "tests": [{"interval": STEP, **SCENARIOS[scenario]}]}
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False, width=10_000))
    out = subprocess.run([promtool, "test", "rules", path.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_a_wrong_expectation_fails(promtool: str, rule_file: Path, tmp_path: Path) -> None:
    """The harness can fail: the stall scenario expecting no page at 13 m is refused."""
    wrong = {**STALL, "alert_rule_test": [_at(13)]}
    tests = {"rule_files": [rule_file.name], "evaluation_interval": STEP,
             "tests": [{"interval": STEP, **wrong}]}
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False, width=10_000))
    out = subprocess.run([promtool, "test", "rules", path.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "KRMSyncerRPOBudgetBurn" in out.stdout + out.stderr
