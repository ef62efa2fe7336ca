"""``ray-syncer failover`` through the CLI router: argument handling, refusals, emergency promotion."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ray_syncer.cli import main
from ray_syncer.fencing import ANN_EPOCH, ANN_LAST_FAILOVER, ANN_REVERSE_OF
from ray_syncer.operator.reconciler import KRMSYNCER_RES
from tests.e2e.harness import Clusters, ensure_namespace, krmsyncer, put_secret, put_syncer, unique

from .partition import linked


def rule(ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}


def files(clusters: Clusters, tmp_path: Path) -> tuple[str, str]:
    a, b = tmp_path / "alpha.yaml", tmp_path / "beta.yaml"
    a.write_text(clusters.source.kubeconfig)
    b.write_text(clusters.dest.kubeconfig)
    return str(a), str(b)


async def _setup(clusters: Clusters, home: str, *, standby: bool) -> None:
    async with clusters.source.client() as ca, clusters.dest.client() as cb:
        for c in (ca, cb):
            await ensure_namespace(c, home)
        await put_secret(ca, home, "to-beta", clusters.dest.kubeconfig)
        await put_syncer(ca, krmsyncer(home, "app", rules=[rule(home)], secret="to-beta"))
        if standby:
            await put_secret(cb, home, "to-alpha", clusters.source.kubeconfig)
            await put_syncer(cb, krmsyncer(home, "app", rules=[rule(home)], secret="to-alpha", suspend=True))


async def _get(clusters: Clusters, home: str, which: str) -> dict[str, Any]:
    cluster = clusters.source if which == "alpha" else clusters.dest
    async with cluster.client() as c:
        return await c.get(KRMSYNCER_RES, namespace=home, name="app")


def test_refusals_change_nothing(dr_clusters: Clusters, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    home = unique("fcli")
    asyncio.run(_setup(dr_clusters, home, standby=False))
    a, b = files(dr_clusters, tmp_path)
    # No reverse syncer on beta and no way to create one.
    assert main(["failover", "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b]) == 3
    assert "--peer-secret or --peer-secret-from-file" in capsys.readouterr().out
    # The old spelling of the standby's kubeconfig still works for one release, with a warning.
    assert main(["failover", "app", "-n", home, "--kubeconfig", a, "--standby-kubeconfig", b]) == 3
    out, err = capsys.readouterr()
    assert "--peer-secret or --peer-secret-from-file" in out
    assert "warning: --standby-kubeconfig is deprecated" in err and "use --peer-kubeconfig" in err
    # -o json: only the result on stdout (the steps go to stderr), refusals named.
    assert main(["failover", "app", "-n", home, "--kubeconfig", a, "--peer-kubeconfig", b, "-o", "json"]) == 3
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["exitCode"] == 3 and result["dryRun"] is False
    assert result["error"].startswith("failover refused: the standby has no reverse KRMSyncer")
    assert result["plan"]["refusals"] and "[1] read KRMSyncer" in err
    # Emergency while alpha answers.
    asyncio.run(_setup(dr_clusters, home, standby=True))
    assert main(["failover", "app", "-n", home, "--emergency", "--kubeconfig", a,
                 "--peer-kubeconfig", b]) == 3
    assert "use a planned failover" in capsys.readouterr().out
    # Nothing was touched: alpha still active, beta still suspended, no markers.
    x, y = asyncio.run(_get(dr_clusters, home, "alpha")), asyncio.run(_get(dr_clusters, home, "beta"))
    assert x["spec"].get("suspend") in (None, False)
    assert y["spec"]["suspend"] is True
    assert ANN_EPOCH not in (y["metadata"].get("annotations") or {})


def test_emergency_promotes_the_standby_with_fencing_markers(
    dr_clusters: Clusters, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = unique("fcli-e")
    asyncio.run(_setup(dr_clusters, home, standby=True))
    a, b = files(dr_clusters, tmp_path)

    async def failover_while_alpha_is_down() -> int:
        # The person on call reaches alpha through a link, and the link is down.
        alpha = dr_clusters.source
        link, via_link = await linked(alpha.kubeconfig, alpha.config.server)
        Path(a).write_text(via_link)
        await link.cut()
        try:
            return await asyncio.to_thread(main, ["failover", "app", "-n", home, "--emergency",
                                                  "--kubeconfig", a, "--peer-kubeconfig", b])
        finally:
            await link.close()

    code = asyncio.run(failover_while_alpha_is_down())
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{dr_clusters.source.config.name} does not answer" in out and "SplitBrain" in out
    y = asyncio.run(_get(dr_clusters, home, "beta"))
    ann = y["metadata"]["annotations"]
    assert y["spec"]["suspend"] is False and y["spec"]["conflictPolicy"] == "Adopt"
    assert ann[ANN_REVERSE_OF] == f"{home}/app" and int(ann[ANN_EPOCH]) > 0
    assert json.loads(ann[ANN_LAST_FAILOVER])["kind"] == "emergency"
