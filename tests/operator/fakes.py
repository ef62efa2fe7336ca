"""Fakes injected into the operator's host and supervisor core (no Ray, no clusters)."""

from __future__ import annotations

import asyncio
from typing import Any

from ray_syncer.engine.spec import ShardHealth, ShardState
from ray_syncer.fleet.plan import DesiredShard


class FakeClient:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeShard:
    """Runs until stopped; can be made to crash; records what it was built with."""

    def __init__(self, desired: DesiredShard, source: Any, dest: Any, log: list[str]) -> None:
        self.desired, self.source, self.dest, self.log = desired, source, dest, log
        self._stop = asyncio.Event()
        self._crash: BaseException | None = None
        self._wake = asyncio.Event()
        self.running = False
        self.current_at: float | None = None  # what it reports as its recovery point

    async def run(self) -> None:
        self.log.append(f"run {self.desired.shard_id} {self.desired.revision}")
        self.running = True
        try:
            while not self._stop.is_set():
                await self._wake.wait()
                self._wake.clear()
                if self._crash is not None:
                    raise self._crash
        finally:
            self.running = False

    async def stop(self) -> None:
        self.log.append(f"stop {self.desired.shard_id}")
        self._stop.set()
        self._wake.set()

    def crash(self, exc: BaseException) -> None:
        self._crash = exc
        self._wake.set()

    def health(self) -> ShardHealth:
        return ShardHealth(
            shard_id=self.desired.shard_id,
            state=ShardState.SYNCING if self.running else ShardState.PENDING,
            synced=self.running,
            objects=1,
            recovery_point=self.current_at,
        )


class ShardFactory:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.shards: dict[str, FakeShard] = {}
        self.clients: list[FakeClient] = []

    def __call__(self, desired: DesiredShard, source: Any, dest: Any) -> FakeShard:
        shard = FakeShard(desired, source, dest, self.log)
        self.shards[desired.shard_id] = shard
        return shard

    def client(self, config: Any) -> FakeClient:
        c = FakeClient(config)
        self.clients.append(c)
        return c
