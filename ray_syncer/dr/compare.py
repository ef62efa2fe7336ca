"""The DR-readiness comparison behind ``ray-syncer diff`` (and ``failover``'s catch-up wait).

Why it exists: before a failover a person needs one answer — "does the
standby hold what the active holds?" — computed from the clusters themselves,
not from the operator's opinion (it works while the operator is down). For
every shard a KRMSyncer stands for (rules expanded through the source's
discovery with the operator's own planner) it lists the source and the
destination and classifies each object:

* **missing**: the source has it (and it is not excluded), the destination not;
* **differs**: the destination copy is ours but its content-hash annotation is
  not the hash the engine's pure ``transform`` gives for the current source
  object (the engine's own no-op test), *and* the content really differs
  (ownership annotations and destination-only non-data fields such as server
  defaults ignored) — a stale hash alone happens after a failback, when the
  other direction wrote the copy last; ``fields=True`` adds a field-level diff
  (Secret values are never shown);
* **conflict**: the destination holds an object at that name the syncer does
  not own and ``conflictPolicy`` is Skip (under Adopt it will be taken over, so
  it is judged by content like an owned copy);
* **extra**: an owned copy whose source object is gone (a pending delete);
  under ``deletionPolicy: Orphan`` the shard keeps such copies on purpose, so
  they are **orphaned**: counted, not out of sync.

The hash covers the ``source-cluster`` ownership annotation, which the
operator fills from its ``--cluster-name``; we take that value from each
destination copy, so the comparison needs no knowledge of operator flags.

Age of the oldest unsynced change: for missing and differing objects, the
newest ``managedFields[].time`` of the source object (the time of its last
write), falling back to ``creationTimestamp``. Extra objects have no source
left to date, so they are counted but do not set the age.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ray_syncer.api.parse import SpecError, parse_krmsyncer
from ray_syncer.api.status import parse_rfc3339
from ray_syncer.engine.claims import Claims, desired_copy, removes_copies, writes_status
from ray_syncer.engine.spec import ShardSpec
from ray_syncer.engine.transform import (
    ANN_SOURCE_CLUSTER,
    MANAGED_BY_LABEL,
    OWNERSHIP_ANNOTATIONS,
    dest_namespace_for,
    held_hash,
    managed_by_value,
    object_key,
    owned_by,
)
from ray_syncer.kube.client import ApiError, ResourceInfo, TransportError
from ray_syncer.kube.errors import describe_error
from ray_syncer.operator.planner import expand_rules, plan_syncer

SAMPLE = 50  # names kept per list and shard in the report
FIELD_LINES = 20


@dataclass
class Differ:
    key: str
    fields: list[str] = field(default_factory=list)


@dataclass
class ShardDiff:
    shard: str
    kind: str
    source_objects: int = 0
    dest_objects: int = 0  # owned copies
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)  # kept on purpose (deletionPolicy Orphan)
    differs: list[Differ] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    oldest_change: float | None = None  # unix time of the oldest unsynced source change
    error: str | None = None

    @property
    def in_sync(self) -> bool:
        return not (self.missing or self.extra or self.differs or self.conflicts or self.error)


@dataclass
class DiffReport:
    syncer: str
    source: str
    destination: str
    checked_at: float
    shards: list[ShardDiff] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.errors and all(s.in_sync for s in self.shards)

    def totals(self) -> dict[str, int]:
        return {
            "sourceObjects": sum(s.source_objects for s in self.shards),
            "missing": sum(len(s.missing) for s in self.shards),
            "extra": sum(len(s.extra) for s in self.shards),
            "orphaned": sum(len(s.orphaned) for s in self.shards),
            "differs": sum(len(s.differs) for s in self.shards),
            "conflicts": sum(len(s.conflicts) for s in self.shards),
            "shardErrors": sum(1 for s in self.shards if s.error),
        }

    @property
    def oldest_unsynced_seconds(self) -> float | None:
        times = [s.oldest_change for s in self.shards if s.oldest_change is not None]
        return round(max(0.0, self.checked_at - min(times)), 1) if times else None

    def to_json(self) -> dict[str, Any]:
        return {
            "syncer": self.syncer,
            "source": self.source,
            "destination": self.destination,
            "inSync": self.in_sync,
            "summary": {**self.totals(), "oldestUnsyncedSeconds": self.oldest_unsynced_seconds},
            "errors": list(self.errors),
            "shards": [
                {
                    "shard": s.shard,
                    "kind": s.kind,
                    "inSync": s.in_sync,
                    "sourceObjects": s.source_objects,
                    "destinationObjects": s.dest_objects,
                    "missing": s.missing[:SAMPLE],
                    "extra": s.extra[:SAMPLE],
                    "orphaned": s.orphaned[:SAMPLE],
                    "differs": [
                        {"key": d.key, **({"fields": d.fields} if d.fields else {})}
                        for d in s.differs[:SAMPLE]
                    ],
                    "conflicts": s.conflicts[:SAMPLE],
                    **({"error": s.error} if s.error else {}),
                }
                for s in self.shards
            ],
        }


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def change_time(obj: Mapping[str, Any]) -> float | None:
    """When the object last changed: the newest managedFields time, else its creation."""
    meta = obj.get("metadata") or {}
    times = [parse_time(m.get("time")) for m in meta.get("managedFields") or () if isinstance(m, Mapping)]
    found = [t for t in times if t is not None]
    return max(found) if found else parse_time(meta.get("creationTimestamp"))


# --------------------------------------------------------------------------- field diff

_SERVER_META = ("labels", "annotations", "name", "namespace")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k in sorted(value):
            _flatten(value[k], f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def _comparable(obj: Mapping[str, Any], keep_status: bool) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = {k: meta[k] for k in _SERVER_META if k in meta}
    if keep_status and "status" in obj:
        out["status"] = obj["status"]
    return out


def _show(value: Any, secret: bool) -> str:
    if secret:
        return "(hidden)"
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


_DATA_FIELDS = ("data", "stringData", "binaryData")
_OWNERSHIP_PATHS = frozenset(
    [f"metadata.annotations.{a}" for a in OWNERSHIP_ANNOTATIONS] + [f"metadata.labels.{MANAGED_BY_LABEL}"]
)


def field_changes(
    desired: Mapping[str, Any], dest_obj: Mapping[str, Any], *, secret: bool = False
) -> list[tuple[str, str, bool]]:
    """(path, human line, decisive) for every difference, ownership annotations ignored.

    ``decisive`` is False for paths only the destination has outside data fields:
    those are usually server defaults or other writers' metadata, which the
    syncer's server-side apply leaves alone anyway.
    """
    keep_status = "status" in desired
    want: dict[str, Any] = {}
    have: dict[str, Any] = {}
    _flatten(_comparable(desired, keep_status), "", want)
    _flatten(_comparable(dest_obj, keep_status), "", have)
    out: list[tuple[str, str, bool]] = []
    for path in sorted(set(want) | set(have)):
        if path in _OWNERSHIP_PATHS:
            continue
        top = path.split(".")[0].split("[")[0]
        hidden = secret and top in _DATA_FIELDS
        if path not in have:
            out.append((path, f"+ {path}: {_show(want[path], hidden)} (only in source)", True))
        elif path not in want:
            out.append(
                (path, f"- {path}: {_show(have[path], hidden)} (only in destination)",
                 top in _DATA_FIELDS)
            )
        elif want[path] != have[path]:
            out.append(
                (path, f"~ {path}: {_show(want[path], hidden)} -> {_show(have[path], hidden)}", True)
            )
    return out


def field_diff(
    desired: Mapping[str, Any], dest_obj: Mapping[str, Any], *, secret: bool = False
) -> list[str]:
    """Human lines: ``~ path: source -> destination``, ``+ path`` (only in source), ``- path``."""
    lines = [
        line for path, line, _ in field_changes(desired, dest_obj, secret=secret)
        if not path.startswith("metadata.")
        or not line.startswith("-")  # labels/annotations others added on the destination
    ]
    if len(lines) > FIELD_LINES:
        lines = [*lines[:FIELD_LINES], f"... and {len(lines) - FIELD_LINES} more"]
    return lines


# --------------------------------------------------------------------------- comparison


async def diff_shard(
    spec: ShardSpec, *, source: Any, dest: Any, fields: bool
) -> ShardDiff:
    out = ShardDiff(shard=spec.shard_id, kind=f"{spec.kind}.{spec.group}" if spec.group else spec.kind)
    try:
        src_res: ResourceInfo | None = await source.resolve(spec.group, spec.version, spec.kind)
        dst_res: ResourceInfo | None = await dest.resolve(spec.group, spec.version, spec.kind)
        if src_res is None:
            out.error = f"the source does not serve {spec.group_version}/{spec.kind}"
            return out
        namespaced = src_res.namespaced
        src_items, _ = await source.list_all(
            src_res,
            namespace=spec.source_namespace if namespaced else None,
            label_selector=spec.label_selector,
        )
        dst_items: list[dict[str, Any]] = []
        if dst_res is None:
            out.error = (
                f"the destination does not serve {spec.group_version}/{spec.kind} "
                "(is its CRD installed there?)"
            )
        else:
            dst_ns = None
            if namespaced and (spec.source_namespace or spec.dest_namespace):
                dst_ns = dest_namespace_for(spec, spec.source_namespace) or spec.dest_namespace
            dst_items, _ = await dest.list_all(dst_res, namespace=dst_ns)
    except (ApiError, TransportError) as exc:
        out.error = describe_error(exc)
        return out

    managed = managed_by_value(spec.syncer_namespace, spec.syncer_name)
    # What the shard syncs where, decided as the shard decides it (engine.claims).
    sources = Claims.winners(spec, src_items, namespaced=namespaced)
    dests: dict[str, dict[str, Any]] = {}
    for obj in dst_items:
        meta = obj["metadata"]
        dests[object_key(meta.get("namespace") if namespaced else None, meta["name"])] = obj
    out.source_objects = len(sources)
    status_sub = writes_status(spec, dst_res)
    oldest: list[float] = []
    for key in sorted(sources):
        obj = sources[key]
        held = dests.get(key)
        if dst_res is None or held is None:
            out.missing.append(key)
        elif not owned_by(held, spec=spec, managed_by=managed) and spec.conflict_policy != "Adopt":
            out.conflicts.append(key)
            continue
        else:
            # Owned, or unowned under conflictPolicy Adopt (it will be taken over; equal
            # content is in sync, as after a failback where the app created it on this side).
            ann = (held.get("metadata") or {}).get("annotations") or {}
            as_written = dataclasses.replace(
                spec, source_cluster=ann.get(ANN_SOURCE_CLUSTER, spec.source_cluster)
            )
            desired = desired_copy(as_written, obj, managed_by=managed, namespaced=namespaced,
                                   status_subresource=status_sub)
            if held_hash(held) == desired.hash:
                continue
            # The hash is stale when the other direction (or a person) wrote the copy last:
            # compare the content itself before calling it different.
            body = dict(desired.body)
            if desired.status is not None:
                body["status"] = desired.status
            secret = spec.group == "" and spec.kind == "Secret"
            if not any(d for _, _, d in field_changes(body, held, secret=secret)):
                continue
            out.differs.append(Differ(key, field_diff(body, held, secret=secret) if fields else []))
        when = change_time(obj)
        if when is not None:
            oldest.append(when)
    for key in sorted(dests):
        held = dests[key]
        if owned_by(held, spec=spec, managed_by=managed):
            out.dest_objects += 1
            if key not in sources:
                (out.extra if removes_copies(spec) else out.orphaned).append(key)
    out.oldest_change = min(oldest) if oldest else None
    return out


async def compute_diff(
    syncer_raw: Mapping[str, Any],
    *,
    source: Any,
    dest: Any,
    source_name: str,
    dest_name: str,
    fields: bool = False,
    now: float | None = None,
) -> DiffReport:
    """Compare every shard of a KRMSyncer; never raises on cluster errors (they are reported)."""
    meta = syncer_raw.get("metadata") or {}
    report = DiffReport(
        syncer=f"{meta.get('namespace') or 'default'}/{meta.get('name')}",
        source=source_name,
        destination=dest_name,
        checked_at=time.time() if now is None else now,
    )
    try:
        syncer = parse_krmsyncer(syncer_raw)
    except SpecError as exc:
        report.errors.append(f"invalid KRMSyncer: {exc}")
        return report
    try:
        expansions = await expand_rules(source, syncer)
    except (ApiError, TransportError) as exc:
        report.errors.append(f"cannot read the source's API discovery: {describe_error(exc)}")
        return report
    plan = plan_syncer(syncer, expansions, source_cluster=source_name)
    if plan.refused is not None:
        report.errors.append(f"{plan.refused.reason}: {plan.refused.message}")
    results = await asyncio.gather(
        *(diff_shard(s, source=source, dest=dest, fields=fields) for s in plan.shards)
    )
    report.shards = sorted(results, key=lambda s: (s.in_sync, s.shard))
    return report
