"""What a person sees of the shard hosts in Ray's own tools: the dashboard and Ray's metrics.

* The dashboard's HTTP API (what its Actors tab shows) lists every shard host ALIVE, and its
  repr names the syncer, the shards and how it started; the supervisor has one too.
* Per-shard gauges reach Ray's metrics export on the node where each host runs
  (``ray_krmsyncer_*``), the endpoint the dashboard's Metrics view and KubeRay's Prometheus
  setup read, beside the operator's own /metrics.
* Debian's chromium renders the Actors page and shows them; a screenshot is saved
  (``KRMSYNCER_DASHBOARD_SCREENSHOT=path`` keeps it there; the README's comes from this test).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import aiohttp
import pytest

from ray_syncer.fleet.host import HostLabel, describe_host
from ray_syncer.kube.client import KubeClient
from tests.e2e.harness import Clusters, krmsyncer, operator, put_syncer, wait_condition, wait_for

from .browser import Browser, chromium
from .conftest import WORKERS, Nodes
from .world import Fleet, fleet, placement

SCREENSHOT_ENV = "KRMSYNCER_DASHBOARD_SCREENSHOT"


async def _alive_actors(url: str) -> dict[str, dict[str, str]]:
    """Name -> the dashboard's record of the live actor of that name (dead ones are kept too)."""
    async with aiohttp.ClientSession() as s, s.get(f"{url}/logical/actors") as r:
        assert r.status == 200
        body = await r.json()
    return {
        a["name"]: a for a in body["data"]["actors"].values() if a["state"] == "ALIVE" and a["name"]
    }


def _expected_reprs(hosts: dict[str, list[str]]) -> dict[str, str]:
    return {h: describe_host(HostLabel(h, tuple(sorted(ids)))) for h, ids in hosts.items()}


async def _ray_gauges(urls: list[str]) -> dict[str, tuple[str, float]]:
    """shard -> (host, value) of ``ray_krmsyncer_objects`` over every node's metrics export."""
    found: dict[str, tuple[str, float]] = {}
    async with aiohttp.ClientSession() as s:
        for url in urls:
            async with s.get(url) as r:
                text = await r.text()
            for line in text.splitlines():
                if line.startswith("ray_krmsyncer_objects{"):
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                    found[labels["shard"]] = (labels["host"], float(line.rsplit(" ", 1)[1]))
    return found


async def _packed_fleet(clusters: Clusters, src: KubeClient, dst: KubeClient, prefix: str) -> Fleet:
    return await fleet(clusters, src, dst, prefix, 5, objects=3)


async def test_dashboard_api_and_ray_metrics_show_every_shard_host(
    ray_nodes: Nodes, clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    await ray_nodes.ensure_workers(WORKERS)
    f = await _packed_fleet(clusters, src, dst, "dash")
    async with operator(clusters, namespace=f.home, shards_per_host=2) as op:
        await put_syncer(src, krmsyncer(f.home, "s", rules=[f.rule()]))
        await wait_condition(src, f.home, "s", "Synced", "True", timeout=60)
        report = op.reconciler.last_report
        assert report is not None
        hosts = dict(report.hosts)
        assert sorted(hosts) == ["host/0", "host/1", "host/2"]

        expected = _expected_reprs(hosts)
        url = ray_nodes.cluster.dashboard_url
        assert url is not None
        listed = await _alive_actors(url)
        for host, text in expected.items():
            assert listed[host]["state"] == "ALIVE"
            assert listed[host]["reprName"] == text
            assert f.home + "/s" in text and "started" in text
        # Created by this operator (an earlier test's operator removed its own on exit).
        assert listed["supervisor"]["reprName"] == (
            "ray-syncer supervisor · up to 2 shards per host · pass every 0.5s"
        )

        where = await placement()
        urls = ray_nodes.cluster.metrics_urls()

        async def gauges() -> bool:
            seen = await _ray_gauges(list(urls.values()))
            return all(seen.get(s) == (h, 3.0) for h, ids in hosts.items() for s in ids)

        await wait_for(gauges, timeout=30, interval=0.5, what="per-shard gauges in Ray's metrics")
        # Each node exports the gauges of the hosts it runs.
        for host, node in where.items():
            local = await _ray_gauges([urls[node]])
            assert {s for s, (h, _) in local.items() if h == host} == set(hosts[host])


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed "
                    "(apt-get install chromium; .ci/run installs it)")  # fmt: skip
async def test_chromium_shows_the_actors_page_with_every_host_alive(
    ray_nodes: Nodes, clusters: Clusters, src: KubeClient, dst: KubeClient, tmp_path: Path
) -> None:
    await ray_nodes.ensure_workers(WORKERS)
    # Readable names (the README shows this page); the in-memory clusters are this run's own.
    f = await fleet(clusters, src, dst, "", 0, objects=3,
                    names=("apps", ["frontend", "backend", "payments", "search"]))  # fmt: skip
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "ray-dashboard-actors.png")
    async with operator(clusters, namespace=f.home) as op:  # default flags
        await put_syncer(src, krmsyncer(f.home, "sync", rules=[f.rule()]))
        await wait_condition(src, f.home, "sync", "Synced", "True", timeout=60)
        report = op.reconciler.last_report
        assert report is not None
        expected = _expected_reprs(dict(report.hosts))
        assert len(expected) == 4  # one host per shard: automatic packing below 50 shards
        browser = await Browser.start(tmp_path / "chromium", width=1920, height=1000)
        try:
            await browser.open(f"{ray_nodes.cluster.dashboard_url}/#/actors")

            async def shown() -> bool:
                text = await browser.text()
                return all(r in text for r in expected.values()) and "ALIVE" in text

            await wait_for(shown, timeout=60, interval=0.5, what="the Actors page with every host")
            page = await browser.text()
            assert page.count("ALIVE") >= len(expected) + 1  # the hosts and the supervisor
            await browser.screenshot(shot)
        finally:
            await browser.close()
    assert shot.stat().st_size > 20_000
    print(f"\ndashboard screenshot: {shot}")
