"""What a shard host tells the Ray dashboard (its repr) and Ray's metrics (its gauges), without Ray."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ray_syncer.engine.spec import ShardHealth, ShardSpec
from ray_syncer.fleet.host import HostCore, HostLabel, describe_host
from ray_syncer.fleet.plan import DesiredShard

from .fakes import ShardFactory


def test_a_dedicated_host_names_its_syncer_and_shard() -> None:
    shard = "default/configmap-sync/core/ConfigMap/default"
    assert describe_host(HostLabel(shard, (shard,))) == (
        "default/configmap-sync · 1 shard: core/ConfigMap/default · started"
    )


def test_a_packed_host_names_its_range_and_a_restart() -> None:
    shards = tuple(f"bench/fleet/core/ConfigMap/shard-{i:04d}" for i in range(150, 200))
    text = describe_host(HostLabel("host/3", shards), restarted=True)
    assert text == (
        "host/3 · bench/fleet · 50 shards: core/ConfigMap/shard-0150 … "
        "core/ConfigMap/shard-0199 · restarted by Ray"
    )


def test_a_host_of_several_syncers_names_them() -> None:
    shards = ("a/s/core/ConfigMap/x", "b/t/core/Secret/y")
    assert describe_host(HostLabel("host/0", shards)) == (
        "host/0 · 2 syncers: a/s, b/t · 2 shards: a/s/core/ConfigMap/x, b/t/core/Secret/y · started"
    )


class Gauges:
    def __init__(self) -> None:
        self.values: dict[str, tuple[str, int, int]] = {}

    def record(self, health: Sequence[ShardHealth], syncers: dict[str, str]) -> None:
        for h in health:
            self.values[h.shard_id] = (syncers[h.shard_id], h.objects, h.pending)

    def clear(self, shard_id: str, syncer_key: str) -> None:
        self.values[shard_id] = (syncer_key, 0, 0)


async def test_reports_record_gauges_and_a_stopped_shard_is_zeroed() -> None:
    factory, gauges = ShardFactory(), Gauges()
    spec = ShardSpec("team", "s", "", "v1", "ConfigMap", source_namespace="a")
    host = HostCore(
        "h", "team/s", shard_factory=factory, client_factory=factory.client,
        label=HostLabel("h", (spec.shard_id,)), gauges=gauges,
    )  # fmt: skip
    await host.start_shard(DesiredShard(spec, "r1"))
    await asyncio.sleep(0)
    report = host.report()
    assert report.planned == (spec.shard_id,)
    assert gauges.values == {spec.shard_id: ("team/s", 1, 0)}
    await host.stop_shard(spec.shard_id)
    assert gauges.values == {spec.shard_id: ("team/s", 0, 0)}
