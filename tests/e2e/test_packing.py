"""Packed shards: several shards per host actor, each still visible by name in status and metrics."""

from __future__ import annotations

import aiohttp

from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.kube.client import KubeClient

from .harness import (
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    unique,
    wait_condition,
    wait_for,
)


async def test_packed_hosts_keep_per_shard_names_in_status_and_metrics(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    home = unique("pack")
    spaces = [unique(f"p{i}") for i in range(5)]
    for c in (src, dst):
        for ns in (home, *spaces):
            await ensure_namespace(c, ns)
    await put_secret(src, home, "dest-kubeconfig", clusters.dest.kubeconfig)
    for ns in spaces:
        await put_cm(src, ns, "payload", {"ns": ns})
    rule = {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": spaces}
    async with operator(clusters, namespace=home, shards_per_host=3) as op:
        await put_syncer(src, krmsyncer(home, "s", rules=[rule]))
        for ns in spaces:
            await wait_for(lambda ns=ns: _eq(dst, ns), what=f"{ns} synced")
        hosts = [n for n in fleet_testing.named_actors() if n.startswith("host/")]
        assert sorted(hosts) == ["host/0", "host/1"]
        st = await wait_condition(src, home, "s", "Synced", "True")
        shard_ids = sorted(f"{home}/s/core/ConfigMap/{ns}" for ns in spaces)
        assert sorted(s["name"] for s in st["shards"]) == shard_ids
        assert st["objects"] == 5

        async def every_shard_in_metrics() -> bool:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"http://127.0.0.1:{op.http.port}/metrics") as r,
            ):
                text = await r.text()
            return all(f'shard="{sid}"' in text for sid in shard_ids)

        await wait_for(
            every_shard_in_metrics, timeout=15, what="per-shard metrics from packed hosts"
        )


async def _eq(dst: KubeClient, ns: str) -> bool:
    return await cm_data(dst, ns, "payload") == {"ns": ns}
