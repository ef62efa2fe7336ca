"""Emergency failover across a partition: the old active kept running and must not write after it heals.

The old active's operator (alpha) runs through the whole scenario with
production-like timings (reconcile tick 2 s, destination probe and fencing
re-check every 10 s), so its reconciler learns of the promotion only seconds
after the partition heals. Its shards must still make zero writes into the
promoted standby: the write gate re-checks fencing before the first write
after the destination failed (ray_syncer.engine.gate).
"""

from __future__ import annotations

import asyncio

from ray_syncer.dr.failover import Request, Transcript, run_failover
from ray_syncer.kube.client import KubeClient
from ray_syncer.operator.status import condition
from tests.e2e.harness import (
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
from .partition import linked

WRITES = {"PATCH", "PUT", "POST", "DELETE"}


def rule(ns: str) -> dict[str, object]:
    return {"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": [ns]}


async def test_old_active_writes_nothing_after_a_partition_in_which_the_standby_was_promoted(
    dr_clusters: Clusters, ca: KubeClient, cb: KubeClient
) -> None:
    alpha, beta = dr_clusters.source, dr_clusters.dest
    home = unique("partition")
    for c in (ca, cb):
        await ensure_namespace(c, home)
    # alpha's operator reaches beta through a cuttable link, as its own user (for the log).
    alpha_operator = await beta.add_user(f"alpha-operator-{home}")
    link, to_beta = await linked(alpha_operator.kubeconfig, beta.config.server)
    await put_secret(ca, home, "to-beta", to_beta)
    await put_secret(cb, home, "to-alpha", alpha.kubeconfig)
    await put_syncer(cb, krmsyncer(home, "app", rules=[rule(home)], secret="to-alpha", suspend=True))
    try:
        async with local_operator(alpha, namespace=home, tick_s=2.0, probe_ttl_s=10.0):
            await put_syncer(ca, krmsyncer(home, "app", rules=[rule(home)], secret="to-beta"))
            await put_cm(ca, home, "orders", {"v": "1"})

            async def synced() -> bool:
                return await cm_data(cb, home, "orders") == {"v": "1"}
            await wait_for(synced, what="orders synced to beta")
            await wait_condition(ca, home, "app", "Ready", "True", reason="Running")

            # Partition: alpha's operator keeps running and its application keeps writing.
            await link.cut()
            await put_cm(ca, home, "orders", {"v": "stale-alpha"})
            await put_cm(ca, home, "during-partition", {"v": "alpha"})
            await asyncio.sleep(0.5)  # its shards try, and fail, to write beta

            # Meanwhile the person on call promotes beta (emergency: only beta is touched).
            log = Transcript()
            plan = Request(namespace=home, name="app", reverse_name="app")
            assert await run_failover(active=None, standby=beta.config, request=plan,
                                      emergency_mode=True, log=log) == 0
            await put_cm(cb, home, "orders", {"v": "2-written-on-beta"})

            # The partition heals; alpha's application writes again at once.
            mark = beta.log_mark()
            await link.heal()
            for i in range(5):
                await put_cm(ca, home, f"after-heal-{i}", {"v": "alpha"})
                await asyncio.sleep(0.1)

            st = await wait_condition(ca, home, "app", "Ready", "False", reason="SplitBrain",
                                      timeout=40)
            assert "ray-syncer failover" in condition(st, "Ready")["message"]  # type: ignore[index]
            await asyncio.sleep(1.0)

            after = [r for r in await beta.requests(mark) if r.user == alpha_operator.user]
            assert after, "alpha's operator never reached beta after the partition healed"
            writes = [f"{r.method} {r.path}" for r in after if r.method in WRITES]
            assert writes == [], f"the old active wrote into the promoted standby: {writes}"
            # It did ask beta before it would have written (the fencing list).
            assert any(r.method == "GET" and r.path.endswith("/krmsyncers") for r in after)
            assert await cm_data(cb, home, "orders") == {"v": "2-written-on-beta"}
            assert await cm_data(cb, home, "during-partition") is None
            for i in range(5):
                assert await cm_data(cb, home, f"after-heal-{i}") is None
    finally:
        await link.close()
