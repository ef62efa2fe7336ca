"""Rule expansion: from a KRMSyncer rule's (group, version, kind) to concrete kinds.

Why this exists: rules may be globs (``group: "*.cnrm.cloud.google.com"``,
``version: "*"``, ``kind: "*"``), and DESIGN.md §3 says what a glob never
expands to. The operator's planner calls ``expand_rule`` for each rule (and again
when CRDs come and go, after ``KubeClient.invalidate_discovery()``); the engine
calls ``resolve_exact`` to find one kind on each cluster.

Rules, in one place:

* ``*``, ``?`` and ``[...]`` are fnmatch-style and case-sensitive. Group ``*``
  matches the core group ``""`` too.
* Version globs pick ONE version per (group, kind), so a kind is never synced
  twice under two versions: the first version, in the server's preference order
  (preferred version first), that matches the pattern and serves the kind.
* A glob never expands to: kinds that lack ``list`` or ``watch``; subresources;
  Event (core and events.k8s.io), Lease, Endpoints, EndpointSlice, Pod,
  ReplicaSet, ControllerRevision, Job, and KRMSyncer itself. Those are matched by
  group *and* kind, so a CRD that happens to be called ``Job`` in another group
  is still picked up.
* An explicit (non-glob) rule resolves exactly, whatever the kind.
"""

from __future__ import annotations

import asyncio
from fnmatch import fnmatchcase
from typing import Protocol

from ray_syncer import API_GROUP, KIND
from ray_syncer.kube.client import ResourceInfo

__all__ = [
    "GLOB_EXCLUDED",
    "DiscoveryClient",
    "expand_rule",
    "glob_excluded",
    "is_glob",
    "resolve_exact",
]

# (group, kind) pairs a glob never expands to (DESIGN.md §3).
GLOB_EXCLUDED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("coordination.k8s.io", "Lease"),
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("", "Pod"),
        ("apps", "ReplicaSet"),
        ("extensions", "ReplicaSet"),
        ("apps", "ControllerRevision"),
        ("batch", "Job"),
        (API_GROUP, KIND),
    }
)

_GLOB_CHARS = frozenset("*?[")


class DiscoveryClient(Protocol):
    """The part of ``KubeClient`` discovery needs (tests inject a fake)."""

    async def server_groups(self) -> dict[str, list[str]]: ...

    async def resources(self, group: str, version: str) -> list[ResourceInfo]: ...

    async def resolve(self, group: str, version: str, kind: str) -> ResourceInfo | None: ...


def is_glob(s: str) -> bool:
    """True when ``s`` holds an fnmatch wildcard (``*``, ``?`` or ``[``)."""
    return any(c in _GLOB_CHARS for c in s)


def glob_excluded(info: ResourceInfo) -> str | None:
    """Why a glob may not expand to ``info``, or None when it may."""
    if (info.group, info.kind) in GLOB_EXCLUDED:
        return "excluded kind"
    if not {"list", "watch"} <= info.verbs:
        return "lacks list/watch"
    return None


async def resolve_exact(
    client: DiscoveryClient, *, group: str, version: str, kind: str
) -> ResourceInfo | None:
    """The one kind an explicit rule names, or None when the cluster does not serve it."""
    return await client.resolve(group, version, kind)


async def expand_rule(
    client: DiscoveryClient, *, group: str, version: str, kind: str
) -> list[ResourceInfo]:
    """The kinds a rule stands for on ``client``'s cluster, sorted by (group, kind).

    Non-glob rules resolve exactly (``[]`` when not served). Raises the client's
    ``ApiError``/``TransportError`` when discovery itself fails, so a caller
    never mistakes "could not ask" for "nothing matches".
    """
    if not (is_glob(group) or is_glob(version) or is_glob(kind)):
        info = await resolve_exact(client, group=group, version=version, kind=kind)
        return [info] if info is not None else []

    groups = await client.server_groups()
    wanted: list[tuple[str, list[str]]] = []
    for g, versions in groups.items():
        if not fnmatchcase(g, group):
            continue
        matching = [v for v in versions if fnmatchcase(v, version)]
        if matching:
            wanted.append((g, matching))

    pairs = [(g, v) for g, versions in wanted for v in versions]
    listings = await asyncio.gather(*(client.resources(g, v) for g, v in pairs))
    by_gv = dict(zip(pairs, listings, strict=True))

    chosen: dict[tuple[str, str], ResourceInfo] = {}
    for g, versions in wanted:
        for v in versions:  # preference order: the first version serving a kind wins
            for info in by_gv[(g, v)]:
                key = (g, info.kind)
                if key in chosen or not fnmatchcase(info.kind, kind):
                    continue
                if glob_excluded(info) is None:
                    chosen[key] = info
    return [chosen[k] for k in sorted(chosen)]
