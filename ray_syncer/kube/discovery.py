"""Rule expansion: from a KRMSyncer rule's (group, version, kind) to concrete kinds.

Why this exists: rules may be globs (``group: "*.cnrm.cloud.google.com"``,
``version: "*"``, ``kind: "*"``), and docs/design.md §3 says what a glob never
expands to. The operator's planner calls ``expand_rule`` for each rule (and again
when CRDs come and go, after ``KubeClient.invalidate_discovery()``); the engine
calls ``resolve_exact`` to find one kind on each cluster.

Rules, in one place:

* ``*``, ``?`` and ``[...]`` are fnmatch-style and case-sensitive. Group ``*``
  matches the core group ``""`` too.
* Version globs pick ONE version per (group, kind), so a kind is never synced
  twice under two versions: the first version, in the server's preference order
  (preferred version first), that matches the pattern and serves the kind.
* A glob never expands to what ``GLOB_EXCLUDED`` lists (each with the reason
  shown in ``status.expandedRules``): per-cluster runtime state (Event in both
  groups, Lease, Endpoints, EndpointSlice), what the destination's controllers
  make (Pod, ReplicaSet, ControllerRevision, Job), node and cluster
  infrastructure (Node, Namespace, ComponentStatus, CertificateSigningRequest,
  APIService, CSINode, VolumeAttachment, ResourceSlice in any version, every
  ``flowcontrol.apiserver.k8s.io`` kind) and KRMSyncer itself. Those are matched
  by group *and* kind, so a CRD that happens to be called ``Job`` in another
  group is still picked up. Nor to kinds that lack ``list`` or ``watch``, nor,
  when the rule names ``namespaces``, to cluster-scoped kinds.
* ``match_rule`` returns every kind a rule's pattern matches, the excluded ones
  included, so the planner can say why it skips them; ``expand_rule`` returns
  only the kinds a rule syncs. Both decide through ``glob_excluded``.
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
    "match_rule",
    "resolve_exact",
]

_RUNTIME = "per-cluster runtime state"
_CONTROLLED = "made by the destination's own controllers"
_INFRA = "node or cluster infrastructure"

# What a glob never expands to (docs/design.md §3): (group, kind or "*" for every kind of the
# group, reason). Matched in any version. The reason is shown in status.expandedRules.
GLOB_EXCLUDED: tuple[tuple[str, str, str], ...] = (
    ("", "Event", _RUNTIME),
    ("events.k8s.io", "Event", _RUNTIME),
    ("coordination.k8s.io", "Lease", _RUNTIME),
    ("", "Endpoints", _RUNTIME),
    ("discovery.k8s.io", "EndpointSlice", _RUNTIME),
    ("", "Pod", _CONTROLLED),
    ("apps", "ReplicaSet", _CONTROLLED),
    ("extensions", "ReplicaSet", _CONTROLLED),
    ("apps", "ControllerRevision", _CONTROLLED),
    ("batch", "Job", _CONTROLLED),
    ("", "Node", _INFRA),
    ("", "Namespace", "the syncer creates destination namespaces as it needs them"),
    ("", "ComponentStatus", _INFRA),
    ("certificates.k8s.io", "CertificateSigningRequest", _INFRA),
    ("apiregistration.k8s.io", "APIService", _INFRA),
    ("storage.k8s.io", "CSINode", _INFRA),
    ("storage.k8s.io", "VolumeAttachment", _INFRA),
    ("resource.k8s.io", "ResourceSlice", _INFRA),
    ("flowcontrol.apiserver.k8s.io", "*", _INFRA),
    (API_GROUP, KIND, "the syncer's own configuration"),
)
_EXCLUDED_KINDS = {(g, k): why for g, k, why in GLOB_EXCLUDED if k != "*"}
_EXCLUDED_GROUPS = {g: why for g, k, why in GLOB_EXCLUDED if k == "*"}

_GLOB_CHARS = frozenset("*?[")


class DiscoveryClient(Protocol):
    """The part of ``KubeClient`` discovery needs (tests inject a fake)."""

    async def server_groups(self) -> dict[str, list[str]]: ...

    async def resources(self, group: str, version: str) -> list[ResourceInfo]: ...

    async def resolve(self, group: str, version: str, kind: str) -> ResourceInfo | None: ...


def is_glob(s: str) -> bool:
    """True when ``s`` holds an fnmatch wildcard (``*``, ``?`` or ``[``)."""
    return any(c in _GLOB_CHARS for c in s)


def glob_excluded(info: ResourceInfo, *, namespaced_only: bool = False) -> str | None:
    """Why a glob may not expand to ``info``, or None when it may.

    ``namespaced_only``: the rule names ``namespaces``, so a cluster-scoped kind (which
    would ignore them and sync every object of the cluster) is not for it either.
    """
    why = _EXCLUDED_KINDS.get((info.group, info.kind)) or _EXCLUDED_GROUPS.get(info.group)
    if why is not None:
        return why
    if not {"list", "watch"} <= info.verbs:
        return "lacks list/watch"
    if namespaced_only and not info.namespaced:
        return "cluster-scoped, and the rule names namespaces"
    return None


async def resolve_exact(
    client: DiscoveryClient, *, group: str, version: str, kind: str
) -> ResourceInfo | None:
    """The one kind an explicit rule names, or None when the cluster does not serve it."""
    return await client.resolve(group, version, kind)


async def match_rule(
    client: DiscoveryClient, *, group: str, version: str, kind: str
) -> list[ResourceInfo]:
    """Every kind a rule's pattern matches on ``client``'s cluster, sorted by (group, kind).

    A non-glob rule resolves exactly (``[]`` when not served). For a glob, one version per
    kind: the first, in preference order, that ``glob_excluded`` allows, else the first
    that matches (so the caller can report why the kind is skipped). The excluded kinds
    are *included*: filter with ``glob_excluded`` (``expand_rule`` does). Raises the
    client's ``ApiError``/``TransportError`` when discovery itself fails, so a caller
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
                if not fnmatchcase(info.kind, kind):
                    continue
                held = chosen.get(key)
                if held is None or (glob_excluded(held) is not None and glob_excluded(info) is None):
                    chosen[key] = info
    return [chosen[k] for k in sorted(chosen)]


async def expand_rule(
    client: DiscoveryClient,
    *,
    group: str,
    version: str,
    kind: str,
    namespaced_only: bool = False,
) -> list[ResourceInfo]:
    """The kinds a rule syncs on ``client``'s cluster, sorted by (group, kind).

    ``match_rule`` without what a glob may not expand to; ``namespaced_only`` when the
    rule names ``namespaces``. Raises like ``match_rule``.
    """
    infos = await match_rule(client, group=group, version=version, kind=kind)
    if not (is_glob(group) or is_glob(version) or is_glob(kind)):
        return infos
    return [i for i in infos if glob_excluded(i, namespaced_only=namespaced_only) is None]
