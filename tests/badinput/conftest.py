"""The shared world of the bad-input suite (see world.py): one operator for every case."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ray_syncer.kube.client import KubeClient

from .world import World, start_world, stop_world


@pytest.fixture(scope="package")
def world() -> Iterator[World]:
    w = start_world()
    yield w
    stop_world(w)


@pytest.fixture
async def src(world: World) -> AsyncIterator[KubeClient]:
    async with world.src_client() as c:
        yield c


@pytest.fixture
async def dst(world: World) -> AsyncIterator[KubeClient]:
    async with world.dst_client() as c:
        yield c
