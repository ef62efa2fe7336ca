"""Shared pieces of the DR tests: a churning application and diff shortcuts."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from ray_syncer.dr.compare import DiffReport, compute_diff
from ray_syncer.kube.client import ApiError, KubeClient
from ray_syncer.operator.reconciler import KRMSYNCER_RES
from tests.e2e.harness import CM, put_cm


class Churn:
    """An application writing ConfigMaps on one cluster; ``expected`` is what must survive."""

    def __init__(self, client: KubeClient, namespace: str, expected: dict[str, dict[str, str] | None],
                 *, tag: str, names: int = 8, seed: int = 1) -> None:
        self.client = client
        self.namespace = namespace
        self.expected = expected
        self.tag = tag
        self.names = names
        self.rng = random.Random(seed)
        self.writes = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            name = f"c{self.rng.randrange(self.names)}"
            if self.rng.random() < 0.2 and self.expected.get(name) is not None:
                try:
                    await self.client.delete(CM, namespace=self.namespace, name=name)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
                self.expected[name] = None
            else:
                data = {"v": str(i), "by": self.tag}
                await put_cm(self.client, self.namespace, name, data)
                self.expected[name] = data
            self.writes += 1
            await asyncio.sleep(0.02)


async def cms(client: KubeClient, namespace: str) -> dict[str, dict[str, str]]:
    items, _ = await client.list_all(CM, namespace=namespace)
    return {
        o["metadata"]["name"]: dict(o.get("data") or {})
        for o in items
        if o["metadata"]["name"] != "kube-root-ca.crt"
    }


def live(expected: dict[str, dict[str, str] | None]) -> dict[str, dict[str, str]]:
    return {k: v for k, v in expected.items() if v is not None}


async def diff_of(home: KubeClient, namespace: str, name: str, *, source: KubeClient,
                  dest: KubeClient, fields: bool = False) -> DiffReport:
    syncer: dict[str, Any] = await home.get(KRMSYNCER_RES, namespace=namespace, name=name)
    return await compute_diff(syncer, source=source, dest=dest, source_name="src",
                              dest_name="dst", fields=fields)
