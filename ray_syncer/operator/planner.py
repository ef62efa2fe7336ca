"""From a validated KRMSyncer to the shards it stands for (rules x kinds x namespaces).

Why it exists: the reconciler needs one deterministic answer to "which shards
should run for this syncer?". The answer depends on the rules, on what the
source cluster serves (glob expansion through discovery) and on the tenancy
flag (docs/design.md §4.7). :func:`plan_syncer` is pure: it takes the kinds each rule
matches, already fetched (``expand_rules`` does the I/O through
``kube.discovery.match_rule``), drops what a glob never expands to
(``kube.discovery.glob_excluded``: the excluded kinds, and cluster-scoped kinds
when the glob names ``namespaces``), and returns ``ShardSpec`` values, human
lines describing glob expansions for status (what was skipped, and why), or a
refusal with a reason.

Push mode: the source is the operator's own cluster; pull mode: the source is
the cluster in the Secret. Either way discovery runs against the source.
Suspended syncers have no shards (the reconciler never calls this for them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.api.models import KRMSyncer, Rule
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.kube.client import ResourceInfo
from ray_syncer.kube.discovery import glob_excluded, match_rule
from ray_syncer.operator.status import Problem

# Shards one KRMSyncer may ask for (each is a Ray actor unless packed); status lists as many.
MAX_SHARDS_PER_SYNCER = 1000


@dataclass(frozen=True)
class Tenancy:
    """``--restrict-to-own-namespace`` and ``--tenant-namespaces``."""

    restrict_to_own_namespace: bool = False
    tenant_namespaces: frozenset[str] = frozenset()

    def restricted(self, namespace: str) -> bool:
        return self.restrict_to_own_namespace and namespace not in self.tenant_namespaces


@dataclass
class SyncerPlan:
    shards: list[ShardSpec] = field(default_factory=list)
    expansions: list[str] = field(default_factory=list)
    refused: Problem | None = None
    # Explicit (non-glob) rules the source does not serve: "rules[0] example.com/v1/Gizmo".
    not_served: list[str] = field(default_factory=list)


def rule_label(index: int, rule: Rule) -> str:
    return f"rules[{index}] {rule.gvk}"


def _kind_name(info: ResourceInfo) -> str:
    return f"{info.kind}.{info.group}" if info.group else info.kind


def _describe_kinds(infos: Sequence[ResourceInfo], limit: int = 12) -> str:
    names = [_kind_name(i) for i in infos]
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(names)} kind(s): {shown}{more}" if names else "no kinds"


def _describe_skipped(skipped: Sequence[tuple[ResourceInfo, str]], limit: int = 12) -> str:
    """``"; skipped: Namespace (why); Node, ComponentStatus (why)"``, at most ``limit`` names."""
    if not skipped:
        return ""
    by_reason: dict[str, list[str]] = {}
    for info, why in skipped[:limit]:
        by_reason.setdefault(why, []).append(_kind_name(info))
    parts = [f"{', '.join(names)} ({why})" for why, names in by_reason.items()]
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"; skipped: {'; '.join(parts)}{more}"


def plan_syncer(
    syncer: KRMSyncer,
    expansions: Mapping[int, Sequence[ResourceInfo]],
    *,
    tenancy: Tenancy = Tenancy(),
    source_cluster: str = "source",
) -> SyncerPlan:
    """Shards for one (not suspended) syncer; ``expansions[i]`` is what rule ``i`` matches.

    For a glob rule that may include kinds a glob never expands to: they are skipped here,
    and the status line says why. A rule the tenancy forbids refuses the whole syncer.
    """
    restricted = tenancy.restricted(syncer.namespace)
    out = SyncerPlan()
    seen: dict[str, int] = {}
    try:
        for index, rule in enumerate(syncer.spec.rules):
            label = rule_label(index, rule)
            infos = _rule_kinds(rule, label, list(expansions.get(index, ())), out)
            for shard in _rule_shards(syncer, rule, label, infos, restricted=restricted,
                                      source_cluster=source_cluster):
                first = seen.get(shard.shard_id)
                if first is not None:
                    out.expansions.append(
                        f"{label}: {shard.shard_id} is already covered by rules[{first}]; "
                        f"rules[{first}] wins"
                    )
                    continue
                seen[shard.shard_id] = index
                out.shards.append(shard)
    except _Refused as refused:
        out.refused, out.shards = refused.problem, []
        return out
    if len(out.shards) > MAX_SHARDS_PER_SYNCER:
        # 100 rules x 256 namespaces would be 25,600 shards (Ray actors by default): refuse.
        out.refused = Problem(
            "TooManyShards",
            f"the rules expand to {len(out.shards)} shards (one per kind and listed namespace); "
            f"a KRMSyncer may have at most {MAX_SHARDS_PER_SYNCER}: list fewer namespaces, omit "
            "namespaces to sync all of them with one shard per kind, or split the KRMSyncer",
        )
        out.shards = []
    return out


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _rule_kinds(
    rule: Any, label: str, infos: list[ResourceInfo], out: SyncerPlan
) -> list[ResourceInfo]:
    """The kinds a rule syncs (a glob's exclusions skipped), said in ``out.expansions``."""
    if rule.is_glob:
        kept: list[ResourceInfo] = []
        skipped: list[tuple[ResourceInfo, str]] = []
        for info in infos:
            # A glob naming namespaces stays in them: no cluster-scoped kinds.
            why = glob_excluded(info, namespaced_only=bool(rule.namespaces))
            if why is None:
                kept.append(info)
            else:
                skipped.append((info, why))
        out.expansions.append(f"{label} -> {_describe_kinds(kept)}{_describe_skipped(skipped)}")
        return kept
    if not infos:
        out.expansions.append(f"{label} -> not served by the source cluster")
        out.not_served.append(label)
    return infos


def _rule_shards(
    syncer: KRMSyncer, rule: Any, label: str, infos: Sequence[ResourceInfo], *,
    restricted: bool, source_cluster: str,
) -> Iterator[ShardSpec]:
    """One shard per kind and namespace of a rule; raises ``_Refused`` where tenancy forbids."""
    spec, own_ns = syncer.spec, syncer.namespace
    if restricted:
        others = [ns for ns in rule.namespaces or () if ns != own_ns]
        if others:
            raise _Refused(Problem(
                "NamespaceNotAllowed",
                f"{label}: this operator only lets KRMSyncers in namespace {own_ns!r} sync "
                f"their own namespace; it names {', '.join(sorted(others))}",
            ))
    for info in infos:
        namespaces: Sequence[str | None]
        if not info.namespaced:
            if restricted:
                if rule.is_glob:
                    continue  # a glob simply skips what the tenant may not read
                raise _Refused(Problem(
                    "ClusterScopedNotAllowed",
                    f"{label}: {info.kind} is cluster-scoped; this operator only lets "
                    f"KRMSyncers in namespace {own_ns!r} sync their own namespace",
                ))
            namespaces = [None]
        elif rule.namespaces:
            namespaces = list(rule.namespaces)
        else:
            namespaces = [own_ns] if restricted else [None]
        for ns in namespaces:
            yield ShardSpec(
                syncer_namespace=own_ns,
                syncer_name=syncer.name,
                group=info.group,
                version=info.version,
                kind=info.kind,
                source_namespace=ns,
                dest_namespace=spec.target.namespace if info.namespaced else None,
                label_selector=rule.selector_string,
                sync_fields=rule.effective_sync_fields,
                sync_status=rule.effective_sync_status,
                include_owned=rule.include_owned,
                immutable_policy=rule.immutable_policy,
                conflict_policy=spec.conflict_policy,
                deletion_policy=spec.deletion_policy,
                resync_period_s=spec.resync_period_seconds,
                source_cluster=source_cluster,
            )


async def expand_rules(client: Any, syncer: KRMSyncer) -> dict[int, list[ResourceInfo]]:
    """Discovery on the source cluster: the kinds every rule matches (for a glob, the
    excluded ones too: ``plan_syncer`` skips them and says why). Raises when discovery fails.
    """
    out: dict[int, list[ResourceInfo]] = {}
    for index, rule in enumerate(syncer.spec.rules):
        out[index] = await match_rule(
            client, group=rule.group, version=rule.version, kind=rule.kind
        )
    return out


def revision(spec: ShardSpec, *, credentials: str, options: Any = None, fence: str = "") -> str:
    """Digest of everything whose change must restart the shard.

    ``fence`` is the syncer's ``FenceIdentity.token()``: a shard's write gate checks
    with the identity it was started with, so a new epoch or rule set restarts it.
    """
    h = hashlib.sha256()
    h.update(repr(spec).encode())
    h.update(credentials.encode())
    h.update(repr(options).encode())
    if fence:
        h.update(fence.encode())
    return h.hexdigest()[:16]
