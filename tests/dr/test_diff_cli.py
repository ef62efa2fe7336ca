"""``ray-syncer diff`` and ``ray-syncer status`` through the real CLI router, exit codes included."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ray_syncer.cli import main
from ray_syncer.kube.client import ResourceInfo
from tests.e2e.harness import (
    CM,
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    put_cm,
    put_secret,
    put_syncer,
    unique,
    wait_condition,
    wait_for,
)

from .conftest import local_operator

SECRET = ResourceInfo("", "v1", "Secret", "secrets", True)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


async def _synced_setup(clusters: Clusters, home: str) -> None:
    """A syncer on alpha that mirrored a few objects into beta; then the operator is gone."""
    alpha, beta = clusters.source, clusters.dest
    async with alpha.client() as ca, beta.client() as cb:
        for c in (ca, cb):
            await ensure_namespace(c, home)
        await put_secret(ca, home, "to-beta", beta.kubeconfig)
        rules: list[dict[str, Any]] = [
            {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [home]},
            {"group": "", "version": "v1", "kind": "Secret", "namespaces": [home],
             "labelSelector": {"matchLabels": {"app": "shop"}}},
        ]
        async with local_operator(alpha, namespace=home):
            await put_syncer(ca, krmsyncer(home, "app", rules=rules, secret="to-beta",
                                           rpoTarget="10m"))
            for name in ("keep", "change", "remove"):
                await put_cm(ca, home, name, {"v": "1"})
            await ca.apply(SECRET, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                    "metadata": {"name": "creds", "namespace": home, "labels": {"app": "shop"}},
                                    "stringData": {"password": "hunter2"}}, field_manager="t")
            await wait_for(lambda: _has(cb, home, "remove"), what="synced")
            await wait_for(lambda: _has_secret(cb, home), what="secret synced")
            await wait_condition(ca, home, "app", "Synced", "True", reason="Synced")
            await wait_condition(ca, home, "app", "RecoveryPointObjective", "True",
                                 reason="WithinTarget")


async def _has(c: Any, ns: str, name: str) -> bool:
    return await cm_data(c, ns, name) is not None


async def _has_secret(c: Any, ns: str) -> bool:
    items, _ = await c.list_all(SECRET, namespace=ns)
    return any(i["metadata"]["name"] == "creds" for i in items)


async def _drift(clusters: Clusters, home: str) -> None:
    """Changes made while the operator is down: each is one category of the report."""
    async with clusters.source.client() as ca, clusters.dest.client() as cb:
        await put_cm(ca, home, "change", {"v": "2"})
        await ca.delete(CM, namespace=home, name="remove")
        await put_cm(ca, home, "new", {"v": "1"})
        await put_cm(ca, home, "taken", {"v": "1"})
        await put_cm(cb, home, "taken", {"v": "someone else's"})
        await ca.apply(SECRET, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                "metadata": {"name": "creds", "namespace": home, "labels": {"app": "shop"}},
                                "stringData": {"password": "hunter3"}}, field_manager="t")


def test_diff_reports_each_category_and_exit_codes(
    dr_clusters: Clusters, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = unique("diff")
    asyncio.run(_synced_setup(dr_clusters, home))
    kc = str(dr_clusters.source.server.write_kubeconfig(tmp_path / "alpha")) if dr_clusters.in_memory \
        else str(_write(tmp_path / "alpha", dr_clusters.source.kubeconfig))

    code, out = run_cli(capsys, "diff", "app", "-n", home, "--kubeconfig", kc)
    assert code == 0, out
    assert "IN SYNC" in out and "NOT IN SYNC" not in out

    asyncio.run(_drift(dr_clusters, home))
    code, out = run_cli(capsys, "diff", "app", "-n", home, "--kubeconfig", kc, "-o", "json")
    assert code == 1
    report = json.loads(out)
    assert report["inSync"] is False
    cm = next(s for s in report["shards"] if s["kind"] == "ConfigMap")
    assert cm["missing"] == [f"{home}/new"]
    assert cm["extra"] == [f"{home}/remove"]
    assert [d["key"] for d in cm["differs"]] == [f"{home}/change"]
    assert cm["conflicts"] == [f"{home}/taken"]
    assert report["summary"]["oldestUnsyncedSeconds"] is not None
    assert report["summary"]["oldestUnsyncedSeconds"] < 300

    # --rpo: the recovery point measured by this check (the oldest missed change) and the
    # last one the operator reported (it is gone: the standby falls behind unseen).
    code, out = run_cli(capsys, "diff", "app", "-n", home, "--kubeconfig", kc, "--rpo")
    assert code == 1
    assert "recovery point, measured now: the standby misses source changes; the oldest is" in out
    assert "recovery point, reported by the operator: " in out and "target 10m00s (True WithinTarget)" in out
    code, out = run_cli(capsys, "diff", "app", "-n", home, "--kubeconfig", kc, "--rpo", "-o", "json")
    rp = json.loads(out)["recoveryPoint"]
    assert rp["inSync"] is False and rp["targetSeconds"] == 600
    assert 0 <= rp["oldestUnsyncedSeconds"] < 300 and rp["reportedSeconds"] < 600

    code, out = run_cli(capsys, "diff", "app", "-n", home, "--kubeconfig", kc, "--fields")
    assert code == 1
    assert '~ data.v: "2" -> "1"' in out
    assert "(hidden)" in out and "hunter" not in out and "aHVudGVy" not in out

    code, out = run_cli(capsys, "diff", "nope", "-n", home, "--kubeconfig", kc)
    assert code == 2 and "not found" in out


def test_status_shows_conditions_shards_and_json(
    dr_clusters: Clusters, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = unique("stat")
    asyncio.run(_synced_setup(dr_clusters, home))
    kc = str(_write(tmp_path / "alpha", dr_clusters.source.kubeconfig))
    code, out = run_cli(capsys, "status", "app", "-n", home, "--kubeconfig", kc)
    assert code == 0
    assert f"KRMSyncer {home}/app" in out and "Synced" in out
    assert f"{home}/app/core/ConfigMap/{home}" in out
    assert "rpo=" in out and "(target 10m00s)" in out and "RPO" in out
    assert "RecoveryPointObjective" in out and "WithinTarget" in out
    code, out = run_cli(capsys, "status", "-A", "--kubeconfig", kc, "-o", "json")
    assert code == 0
    mine = [s for s in json.loads(out) if s["namespace"] == home]
    assert len(mine) == 1 and mine[0]["active"] is True
    assert mine[0]["status"]["objects"] == 4  # three ConfigMaps and one Secret

    # Without -n, the kubeconfig context's namespace, as kubectl does; -o yaml and -o wide.
    in_home = str(_write(tmp_path / "alpha-in-home", _with_namespace(dr_clusters.source.kubeconfig, home)))
    code, out = run_cli(capsys, "status", "--kubeconfig", in_home, "-o", "yaml")
    assert code == 0 and [(s["namespace"], s["name"]) for s in yaml.safe_load(out)] == [(home, "app")]
    code, out = run_cli(capsys, "status", "app", "--kubeconfig", in_home, "-o", "wide")
    assert code == 0 and f"KRMSyncer {home}/app" in out and "SINCE" in out
    code, out = run_cli(capsys, "diff", "app", "--kubeconfig", in_home, "-o", "yaml")
    assert code == 0 and yaml.safe_load(out)["syncer"] == f"{home}/app"
    # Without a name: every active KRMSyncer of the namespace.
    code, out = run_cli(capsys, "diff", "--kubeconfig", in_home, "-o", "json")
    listed = json.loads(out)
    assert code == 0 and [i["syncer"] for i in listed["items"]] == [f"{home}/app"]
    assert listed["skipped"] == []
    code, out = run_cli(capsys, "status", "app", "--kubeconfig", kc)  # the context has no namespace
    assert code == 2 and "not found" in out


def _with_namespace(kubeconfig: str, namespace: str) -> str:
    doc = yaml.safe_load(kubeconfig)
    for ctx in doc["contexts"]:
        if ctx["name"] == doc["current-context"]:
            ctx["context"]["namespace"] = namespace
    return yaml.safe_dump(doc)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
