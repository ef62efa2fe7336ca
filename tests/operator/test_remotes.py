"""The Secret cache of ``operator.remotes``: a rotation is never hidden behind a stale read."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from ray_syncer.operator.remotes import Remotes


class SlowSecrets:
    """A client whose Secret reads answer with the Secret as it was when the read began."""

    def __init__(self) -> None:
        self.value = "one"
        self.gets = 0
        self.release = asyncio.Event()

    async def get(self, res: Any, *, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        seen = self.value
        await self.release.wait()
        return {"data": {"kubeconfig": base64.b64encode(seen.encode()).decode()}}


async def test_a_change_during_a_read_is_not_hidden_by_caching_that_read() -> None:
    client = SlowSecrets()
    remotes = Remotes(client, client_factory=lambda c: None, allow_exec=False, probe_ttl_s=1.0)
    reading = asyncio.create_task(remotes._secret("team", "dest", 0.0))
    await asyncio.sleep(0)  # the read is in flight
    client.value = "two"  # the Secret is rotated; its watch event comes before the answer
    remotes.secret_changed("team/dest")
    client.release.set()
    assert base64.b64decode((await reading)["data"]["kubeconfig"]) == b"one"
    # The next pass must read the rotated Secret, not the answer that predates the event.
    again = await remotes._secret("team", "dest", 1.0)
    assert base64.b64decode(again["data"]["kubeconfig"]) == b"two"
    assert client.gets == 2
    # Without a change in between, a read is cached.
    await remotes._secret("team", "dest", 2.0)
    assert client.gets == 2
