"""The seed's "Verify the Results", with real Ray actors; metrics from actors; no token in logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import pytest

from ray_syncer.kube.client import KubeClient

from .harness import (
    CM,
    Clusters,
    cm_data,
    ensure_namespace,
    krmsyncer,
    operator,
    put_cm,
    put_secret,
    put_syncer,
    shard_actors,
    unique,
    wait_condition,
    wait_for,
)


async def test_seed_walkthrough_create_update_delete_within_seconds(
    clusters: Clusters, src: KubeClient, dst: KubeClient
) -> None:
    ns = unique("walk")
    for c in (src, dst):
        await ensure_namespace(c, ns)
    await put_secret(src, ns, "dest-kubeconfig", clusters.dest.kubeconfig)
    syncer = krmsyncer(
        ns,
        "configmap-sync",
        rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}],
        suspend=False,
    )
    async with operator(clusters, namespace=ns) as op:
        await put_syncer(src, syncer)
        status = await wait_condition(src, ns, "configmap-sync", "Ready", "True", reason="Running")
        assert [s["name"] for s in status["shards"]] == [f"{ns}/configmap-sync/core/ConfigMap/{ns}"]
        assert shard_actors(ns) == [f"{ns}/configmap-sync/core/ConfigMap/{ns}"]

        t0 = time.monotonic()
        await put_cm(src, ns, "test-sync-data", {"key": "value1"})
        await wait_for(lambda: _equals(dst, ns, {"key": "value1"}), timeout=10, what="create")
        created = time.monotonic() - t0
        await put_cm(src, ns, "test-sync-data", {"key": "value2"})
        await wait_for(lambda: _equals(dst, ns, {"key": "value2"}), timeout=10, what="update")
        await src.delete(CM, namespace=ns, name="test-sync-data")
        await wait_for(lambda: _gone(dst, ns), timeout=10, what="delete")
        assert created < 5.0

        st = await wait_condition(src, ns, "configmap-sync", "Synced", "True")
        assert st["observedGeneration"] >= 1

        # One endpoint on the operator exposes what the shard actor recorded, labelled per shard.
        shard = f"{ns}/configmap-sync/core/ConfigMap/{ns}"

        async def scraped() -> str | None:
            _, text = await http_get(f"http://127.0.0.1:{op.http.port}/metrics")
            return (
                text if f'shard="{shard}"' in text and "krmsyncer_applies_total" in text else None
            )

        text = await wait_for(scraped, timeout=15, what="metrics from the shard actor")
        assert 'krmsyncer_shards{state="Syncing"}' in text
        status_code, _ = await http_get(f"http://127.0.0.1:{op.http.port}/readyz")
        assert status_code == 200
    # Clean shutdown: shards stopped, destination data kept.
    assert shard_actors(ns) == []


async def http_get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def _equals(dst: KubeClient, ns: str, want: dict[str, str]) -> bool:
    return await cm_data(dst, ns, "test-sync-data") == want


async def _gone(dst: KubeClient, ns: str) -> bool:
    return await cm_data(dst, ns, "test-sync-data") is None


async def test_kubeconfig_token_never_reaches_logs(
    clusters: Clusters, src: KubeClient, dst: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    identity = await clusters.dest.add_user(unique("syncer-e2e"))
    token = identity.token
    mark = clusters.dest.log_mark()
    ns = unique("tok")
    for c in (src, dst):
        await ensure_namespace(c, ns)
    await put_secret(src, ns, "dest-kubeconfig", identity.kubeconfig)
    caplog.set_level(logging.DEBUG)
    started = time.time()
    async with operator(clusters, namespace=ns):
        await put_syncer(
            src,
            krmsyncer(
                ns,
                "s",
                rules=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}],
            ),
        )
        await wait_condition(src, ns, "s", "Ready", "True", reason="Running")
        await put_cm(src, ns, "x", {"a": "b"})
        await wait_for(lambda: _has(dst, ns), timeout=10, what="sync with the secret token")
    assert any(r.user == identity.user for r in await clusters.dest.requests(mark)), (
        "the Secret's token was not used"
    )
    assert token not in caplog.text
    # The actors' logs (Ray worker files) must not hold it either.
    from ray_syncer.fleet import testing as fleet_testing

    logs = Path(fleet_testing.session_log_dir())
    scanned = 0
    for path in logs.glob("*"):
        if path.is_file() and path.stat().st_mtime >= started - 5:
            scanned += 1
            assert token.encode() not in path.read_bytes(), f"token found in {path.name}"
    assert scanned > 0


async def _has(dst: KubeClient, ns: str) -> bool:
    return await cm_data(dst, ns, "x") == {"a": "b"}
