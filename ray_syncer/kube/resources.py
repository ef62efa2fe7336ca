"""What a cluster serves: ``ResourceInfo`` for one kind, and a cache of discovery.

Why it exists: every shard resolves its kind on both clusters, and globs expand
through discovery; asking the API server each time would cost two round trips
per shard and per glob refresh. :class:`DiscoveryCache` shares one request in
flight, keeps answers for ``discovery_ttl`` seconds (a "not served" answer only
``negative_ttl`` seconds, so a CRD that appears is noticed) and never caches a
failure. ``KubeClient`` holds one, over its own ``request``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ray_syncer.kube.errors import ApiError

__all__ = ["DiscoveryCache", "ResourceInfo"]

Request = Callable[[str, str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ResourceInfo:
    """One resource kind as served by discovery, and how to build its URLs."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    has_status: bool = False
    verbs: frozenset[str] = frozenset()
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field of objects of this kind (same as ``group_version``)."""
        return self.group_version

    def path(
        self,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """``/api/v1/...`` (core) or ``/apis/<group>/<version>/...``.

        ``namespace`` is ignored for cluster-scoped kinds, and ``None`` for a
        namespaced kind means "all namespaces" (list/watch only).
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError("empty object name")
            base += f"/{quote(name, safe='')}"
        if subresource:
            if name is None:
                raise ValueError("a subresource needs an object name")
            base += f"/{subresource}"
        return base


class DiscoveryCache:
    """Cached discovery of one cluster (see the module docstring)."""

    def __init__(
        self, request: Request, *, clock: Callable[[], float], discovery_ttl: float,
        negative_ttl: float,
    ) -> None:
        self.request = request
        self._clock = clock
        self._discovery_ttl = discovery_ttl
        self._negative_ttl = negative_ttl
        self._groups: tuple[float, asyncio.Task[dict[str, list[str]]]] | None = None
        self._resources: dict[tuple[str, str], tuple[float, asyncio.Task[list[ResourceInfo]]]] = {}

    async def server_groups(self) -> dict[str, list[str]]:
        """Group -> served versions, preferred first; ``""`` is the core group. Cached."""
        entry = self._groups
        if entry is None or self._stale(entry, negative=False):
            entry = (self._clock(), asyncio.ensure_future(self._fetch_groups()))
            self._groups = entry
        return await asyncio.shield(entry[1])

    def _stale(self, entry: tuple[float, asyncio.Task[Any]], *, negative: bool) -> bool:
        at, task = entry
        if not task.done():
            return False  # share the request in flight
        if task.cancelled() or task.exception() is not None:
            return True  # never cache failures
        age = self._clock() - at
        return age > (self._negative_ttl if negative else self._discovery_ttl)

    async def _fetch_groups(self) -> dict[str, list[str]]:
        core, apis = await asyncio.gather(self.request("GET", "/api"), self.request("GET", "/apis"))
        out: dict[str, list[str]] = {"": [str(v) for v in core.get("versions") or []]}
        for g in apis.get("groups") or []:
            versions = [v["version"] for v in g.get("versions") or [] if "version" in v]
            preferred = (g.get("preferredVersion") or {}).get("version")
            if preferred in versions:
                versions.remove(preferred)
                versions.insert(0, preferred)
            out[g["name"]] = versions
        return out

    async def resources(self, group: str, version: str) -> list[ResourceInfo]:
        """The kinds served under group/version (``[]`` when it is not served). Cached."""
        key = (group, version)
        entry = self._resources.get(key)
        if entry is None or self._stale(entry, negative=_is_empty(entry[1])):
            entry = (self._clock(), asyncio.ensure_future(self._fetch_resources(group, version)))
            self._resources[key] = entry
        return await asyncio.shield(entry[1])

    async def _fetch_resources(self, group: str, version: str) -> list[ResourceInfo]:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = await self.request("GET", path)
        except ApiError as exc:
            if exc.not_found or exc.status == 503:
                # 503: an aggregated API that is down is "not served" for now.
                return []
            raise
        entries = doc.get("resources") or []
        subresources = {e["name"] for e in entries if "/" in e.get("name", "")}
        out: list[ResourceInfo] = []
        for e in entries:
            name = e.get("name", "")
            if not name or "/" in name:
                continue
            out.append(
                ResourceInfo(
                    group=group,
                    version=version,
                    kind=e.get("kind", ""),
                    plural=name,
                    namespaced=bool(e.get("namespaced")),
                    has_status=f"{name}/status" in subresources,
                    verbs=frozenset(e.get("verbs") or ()),
                    singular=e.get("singularName") or "",
                    short_names=tuple(e.get("shortNames") or ()),
                )
            )
        return out

    async def resolve(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        for info in await self.resources(group, version):
            if info.kind == kind:
                return info
        return None

    def invalidate(self) -> None:
        """Forget cached discovery (call when a kind goes missing or a CRD appears)."""
        self._groups = None
        self._resources.clear()

    def close(self) -> None:
        for entry in [self._groups, *self._resources.values()]:
            if entry is not None and not entry[1].done():
                entry[1].cancel()
        self.invalidate()


def _is_empty(task: asyncio.Task[list[ResourceInfo]]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None and not task.result()
