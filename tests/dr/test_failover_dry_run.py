"""``ray-syncer failover --dry-run``: the plan, printed, and not one write on either cluster.

Every object the failover could touch in the test's namespace (the KRMSyncers and
their fencing annotations, the kubeconfig Secrets, the synced ConfigMaps and
Secrets, Events, Leases) is snapshotted by resourceVersion on both clusters
before the dry run; afterwards each is unchanged and none was created or
deleted. The plan must name the syncers, sides, epoch and the readiness gaps
arranged here, and refuse what the real failover refuses, with the same code.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from ray_syncer.cli import main
from ray_syncer.fencing import ANN_EPOCH
from ray_syncer.kube.client import ResourceInfo
from ray_syncer.operator.reconciler import KRMSYNCER_RES
from tests.e2e.harness import CM, Clusters, krmsyncer, put_secret, put_syncer, unique

from .test_diff_cli import _drift, _synced_setup

SECRET = ResourceInfo("", "v1", "Secret", "secrets", True)
EVENT = ResourceInfo("", "v1", "Event", "events", True)
LEASE = ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", True)
WATCHED = (KRMSYNCER_RES, CM, SECRET, EVENT, LEASE)
STANDBY_EPOCH = 9_000_000_000_000  # far above "now" in ms: the plan must write exactly +1


async def snapshot(clusters: Clusters, ns: str) -> dict[tuple[str, str, str], str]:
    """(cluster, kind, name) -> resourceVersion of every object a failover could touch."""
    out: dict[tuple[str, str, str], str] = {}
    for cluster in (clusters.source, clusters.dest):
        async with cluster.client() as c:
            for res in WATCHED:
                items, _ = await c.list_all(res, namespace=ns)
                for o in items:
                    out[(cluster.name, res.kind, o["metadata"]["name"])] = o["metadata"]["resourceVersion"]
    return out


async def _standby(clusters: Clusters, ns: str) -> None:
    """The suspended standby KRMSyncer on beta, with an epoch from an earlier failover."""
    async with clusters.dest.client() as cb:
        await put_secret(cb, ns, "to-alpha", clusters.source.kubeconfig)
        body = krmsyncer(ns, "app", rules=[{"group": "", "version": "v1", "kind": "ConfigMap",
                                            "namespaces": [ns]}], secret="to-alpha", suspend=True)
        body["metadata"]["annotations"] = {ANN_EPOCH: str(STANDBY_EPOCH)}
        await put_syncer(cb, body)


def kubeconfigs(clusters: Clusters, tmp_path: Path) -> tuple[str, str]:
    a, b = tmp_path / "alpha.yaml", tmp_path / "beta.yaml"
    a.write_text(clusters.source.kubeconfig)
    b.write_text(clusters.dest.kubeconfig)
    return str(a), str(b)


def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["failover", *argv, "--dry-run"])
    return code, capsys.readouterr().out


@pytest.fixture
def drifted(dr_clusters: Clusters, tmp_path: Path) -> tuple[str, str, str]:
    """alpha's syncer mirrored objects into beta, then alpha changed while its operator was down:
    new (missing on beta), change and the Secret creds (stale), remove (extra), taken (unowned)."""
    home = unique("dry")
    asyncio.run(_synced_setup(dr_clusters, home))
    asyncio.run(_drift(dr_clusters, home))
    asyncio.run(_standby(dr_clusters, home))
    return (home, *kubeconfigs(dr_clusters, tmp_path))


def test_dry_run_prints_the_plan_and_writes_nothing(
    dr_clusters: Clusters, drifted: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    home, a, b = drifted
    alpha, beta = dr_clusters.source.config.name, dr_clusters.dest.config.name  # context names
    before = asyncio.run(snapshot(dr_clusters, home))
    assert {(c.name, "KRMSyncer", "app") for c in (dr_clusters.source, dr_clusters.dest)} <= set(before)

    code, out = dry_run(capsys, "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b, "-o", "json")
    plan = json.loads(out)["plan"]
    assert code == 1 and plan["exitCode"] == 1  # the standby has not caught up: it would wait
    assert (plan["active"], plan["standby"]) == (alpha, beta)
    assert plan["failoverEpoch"] == STANDBY_EPOCH + 1
    acts = [(s["cluster"], s["action"], s["target"]) for s in plan["steps"]]
    assert (alpha, "suspend", f"KRMSyncer {home}/app") in acts
    assert (beta, "resume", f"KRMSyncer {home}/app") in acts
    assert acts.index((alpha, "suspend", f"KRMSyncer {home}/app")) < acts.index(
        (beta, "resume", f"KRMSyncer {home}/app"))
    cm = next(s for s in plan["readiness"]["shards"] if s["kind"] == "ConfigMap")
    assert cm["missing"] == [f"{home}/new"] and cm["extra"] == [f"{home}/remove"]
    assert [d["key"] for d in cm["differs"]] == [f"{home}/change"]
    assert cm["conflicts"] == [f"{home}/taken"]
    assert plan["refusals"] == []

    code, out = dry_run(capsys, "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b, "-o", "wide")
    assert code == 1
    for text in (f"{home}/app on {alpha}: active", f"{home}/app on {beta}: suspended, epoch {STANDBY_EPOCH}",
                 f"failover epoch to write: {STANDBY_EPOCH + 1}", "suspend", "resume",
                 f"missing: {home}/new", f"differs: {home}/change", f"extra: {home}/remove",
                 "dry run: nothing was written", "would wait"):
        assert text in out, (text, out)

    # --force: it would go on now (and says what is lost); yaml is the same plan as json.
    code, out = dry_run(capsys, "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b,
                        "--force", "-o", "yaml")
    forced = yaml.safe_load(out)["plan"]
    assert code == 0 and forced["exitCode"] == 0 and "--force" in forced["verdict"]
    assert forced["failoverEpoch"] == STANDBY_EPOCH + 1

    # A suspended standby promises nothing: diff over its namespace lists it as skipped.
    capsys.readouterr()
    assert main(["diff", "-n", home, "--kubeconfig", b]) == 0
    assert f"KRMSyncer {home}/app: skipped (suspended" in capsys.readouterr().out

    assert asyncio.run(snapshot(dr_clusters, home)) == before


def test_dry_run_refuses_what_the_failover_refuses_and_writes_nothing(
    dr_clusters: Clusters, drifted: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    home, a, b = drifted
    before = asyncio.run(snapshot(dr_clusters, home))
    args = ("-n", home, "--kubeconfig", a, "--peer-kubeconfig", b)
    # No standby KRMSyncer of that name and no Secret to create one with.
    code, out = dry_run(capsys, "app", *args, "--peer-name", "absent")
    assert code == 3
    assert "refuses: the standby has no reverse KRMSyncer: give --peer-secret or --peer-secret-from-file" in out
    # A Secret that is not there.
    code, out = dry_run(capsys, "app", *args, "--peer-name", "absent", "--peer-secret", "nope", "-o", "json")
    assert code == 3
    assert json.loads(out)["plan"]["refusals"] == [
        f"--peer-secret: Secret {home}/nope does not exist on {dr_clusters.dest.config.name}"]
    # An emergency while the active cluster answers.
    code, out = dry_run(capsys, "app", *args, "--emergency")
    assert code == 3 and "answers: use a planned failover" in out
    # The real command refuses the same way, with the same code.
    capsys.readouterr()
    assert main(["failover", "app", *args, "--emergency"]) == 3
    assert asyncio.run(snapshot(dr_clusters, home)) == before


def test_dry_run_of_a_failover_already_done_says_so(
    dr_clusters: Clusters, drifted: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    home, a, b = drifted

    async def swap() -> None:
        async with dr_clusters.source.client() as ca, dr_clusters.dest.client() as cb:
            for c, suspend in ((ca, True), (cb, False)):
                await c.patch(KRMSYNCER_RES, namespace=home, name="app",
                              body={"spec": {"suspend": suspend}},
                              content_type="application/merge-patch+json")

    asyncio.run(swap())
    before = asyncio.run(snapshot(dr_clusters, home))
    code, out = dry_run(capsys, "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b)
    assert code == 0 and "already failed over: nothing to do" in out
    assert asyncio.run(snapshot(dr_clusters, home)) == before


def test_dry_run_of_a_caught_up_standby_would_proceed(
    dr_clusters: Clusters, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = unique("dry-ok")
    asyncio.run(_synced_setup(dr_clusters, home))
    asyncio.run(_standby(dr_clusters, home))
    a, b = kubeconfigs(dr_clusters, tmp_path)
    before = asyncio.run(snapshot(dr_clusters, home))
    code, out = dry_run(capsys, "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b, "-o", "json")
    plan = json.loads(out)["plan"]
    assert code == 0 and plan["verdict"] == "would proceed" and plan["readiness"]["inSync"] is True
    assert asyncio.run(snapshot(dr_clusters, home)) == before
