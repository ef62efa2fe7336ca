"""The host builds each real shard's write gate from the syncer's fencing identity, shared per syncer."""

from __future__ import annotations

import asyncio
from typing import Any

from ray_syncer.engine.gate import CachedGate
from ray_syncer.engine.shard import Shard
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.fencing import ANN_EPOCH, ANN_REVERSE_OF, fence_identity
from ray_syncer.fleet.host import HostCore
from ray_syncer.fleet.plan import DesiredShard


class DestWithReverse:
    """A destination client: its discovery never answers (the shard waits), it lists KRMSyncers."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.lists = 0
        self.closed = False

    async def resolve(self, group: str, version: str, kind: str) -> None:
        await asyncio.Event().wait()

    async def list_all(self, res: Any, *, namespace: str | None = None) -> tuple[list[Any], str]:
        self.lists += 1
        return [{
            "metadata": {"name": "app", "namespace": "team",
                         "annotations": {ANN_REVERSE_OF: "team/app", ANN_EPOCH: "9"}},
            "spec": {"suspend": False},
        }], "1"

    async def close(self) -> None:
        self.closed = True


def desired(syncer: str, ns: str, *, epoch: int = 0) -> DesiredShard:
    spec = ShardSpec("team", syncer, "", "v1", "ConfigMap", source_namespace=ns)
    raw = {"metadata": {"annotations": {ANN_EPOCH: str(epoch)}},
           "spec": {"rules": [{"group": "", "kind": "ConfigMap"}]}}
    ident = fence_identity(syncer=f"team/{syncer}", raw=raw, push=True,
                           source_server="https://a:6443", dest_name="beta")
    return DesiredShard(spec, "r1", source="src", dest="dst", fence=ident)


def gate_of(host: HostCore, shard_id: str) -> CachedGate:
    shard = host._shards[shard_id].shard
    assert isinstance(shard, Shard)
    gate = shard._gate
    assert isinstance(gate, CachedGate)
    return gate


async def test_one_gate_per_syncer_checks_fencing_and_goes_with_the_last_shard() -> None:
    clients: list[DestWithReverse] = []

    def client(config: Any) -> DestWithReverse:
        clients.append(DestWithReverse(config))
        return clients[-1]

    host = HostCore("h", "team/app", client_factory=client)
    a, b, other = desired("app", "a"), desired("app", "b"), desired("other", "a")
    for d in (a, b, other):
        assert await host.start_shard(d)
    gate = gate_of(host, a.shard_id)
    assert gate is gate_of(host, b.shard_id)
    assert gate is not gate_of(host, other.shard_id)

    # The same question the reconciler asks: beta holds team/app's reverse with a newer epoch.
    refusal = await gate()
    assert refusal is not None and refusal.startswith("SplitBrain:") and "team/app" in refusal
    assert await gate_of(host, other.shard_id)() is None  # nobody is the reverse of team/other
    dest = next(c for c in clients if c.config == "dst")
    lists = dest.lists
    await gate()  # cached (2 s)
    assert dest.lists == lists

    await host.stop_shard(a.shard_id)
    assert gate is gate_of(host, b.shard_id)
    assert len(host._gates) == 2
    await host.stop_all()
    assert host._gates == {}


async def test_a_new_epoch_gets_a_new_gate() -> None:
    host = HostCore("h", "team/app", client_factory=DestWithReverse)
    await host.start_shard(desired("app", "a", epoch=1))
    old = gate_of(host, desired("app", "a").shard_id)
    await host.stop_all()
    await host.start_shard(desired("app", "a", epoch=10))
    new = gate_of(host, desired("app", "a").shard_id)
    assert new is not old
    assert await new() is None  # epoch 10 is newer than the reverse's 9: not fenced
    await host.stop_all()
