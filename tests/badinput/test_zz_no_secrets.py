"""Last in the package: after every hostile case, no test secret is in logs, Events, status or
metrics of the shared operator (tokens, kubeconfig credentials; docs/design.md §4.6)."""

from __future__ import annotations

import aiohttp
import yaml

from ray_syncer.kube.client import KubeClient
from ray_syncer.operator.reconciler import KRMSYNCER_RES

from .world import EVENTS, World


async def test_no_secret_reached_logs_events_status_or_metrics(world: World, src: KubeClient) -> None:
    events, _ = await src.list_all(EVENTS)
    syncers, _ = await src.list_all(KRMSYNCER_RES)
    url = f"http://127.0.0.1:{world.op.http.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        metrics = await resp.text()
    places = {
        "logs": "\n".join(world.capture.lines),
        "events": yaml.safe_dump(events),
        "status": yaml.safe_dump([s.get("status") for s in syncers]),
        "metrics": metrics,
    }
    assert len(events) > 30 and len(syncers) > 30 and "krmsyncer_" in metrics
    secrets = [*world.secrets, "hunter2"]
    assert [f"{s[:12]}... in {p}" for p, text in places.items() for s in secrets if s in text] == []
