"""KRMSyncer status: shard health and syncer facts -> conditions, summary, write policy.

Why it exists: status is what a person on call reads. The reconciler gathers
the facts it knows about a syncer (spec validity, suspension, the Secret and
destination, refusals) and the supervisor supplies every shard's
``ShardHealth``; this module turns them into the ``status`` object (pure, no
I/O) and decides when a write is worth making, so the reconciler writes the
``/status`` subresource only on a meaningful change and never hot-loops.

Conditions (metav1.Condition shape): Ready, Suspended, DestinationReachable,
Synced, Degraded. ``lastTransitionTime`` is kept from the previous status while
a condition's status does not change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.api.formats import format_duration
from ray_syncer.api.status import rfc3339
from ray_syncer.engine.spec import ShardHealth, ShardSpec, ShardState


def _bound(seconds: float) -> float:
    """An upper bound shown to a tenth of a second, rounded up so it never reads as within a
    target it missed."""
    return math.ceil(seconds * 10 - 1e-9) / 10


CONDITION_TYPES = (
    "Ready", "Suspended", "DestinationReachable", "Synced", "Degraded", "RecoveryPointObjective",
)
# Per-shard entries kept in status; beyond this the list is cut (worst shards first) and counted.
MAX_SHARDS_IN_STATUS = 1000
# A status that differs only in volatile numbers (lag, last sync time) is written at most this often.
VOLATILE_WRITE_INTERVAL_S = 30.0
# Any status write is at least this far apart (per syncer).
MIN_WRITE_INTERVAL_S = 2.0
CONFLICT_SAMPLE = 20


@dataclass(frozen=True)
class Problem:
    """A reason (CamelCase) and a message a person can act on."""

    reason: str
    message: str


@dataclass
class SyncerFacts:
    """What the reconciler knows about one KRMSyncer, besides its shards."""

    generation: int
    invalid: Problem | None = None  # spec failed validation
    suspended: bool = False
    refused: Problem | None = None  # tenancy, or destination is the source cluster
    destination: Problem | None = None  # None = reachable; else why not
    expected_shards: Sequence[str] = ()  # shard ids the syncer should run
    failed_shards: Sequence[str] = ()  # shard ids whose run task ended and await restart
    expansions: Sequence[str] = field(default_factory=list)  # "rule -> kinds" lines for globs
    mode: str = "push"
    shard_specs: Mapping[str, ShardSpec] = field(default_factory=dict)  # shard id -> spec
    not_served: Sequence[str] = ()  # explicit rules the source cluster does not serve
    # The recovery point of every expected shard, in seconds (engine.recovery; the operator
    # ages the last known point of a shard that does not report), and spec.rpoTarget.
    recovery: Mapping[str, float] = field(default_factory=dict)
    rpo_target_s: float | None = None


def _cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def _shard_problem(h: ShardHealth) -> tuple[int, str] | None:
    """Rank of a shard's worst problem (lower is worse) and its reason, or None."""
    if h.delete_guard_tripped:
        return 0, "DeleteGuardTripped"
    if h.state == ShardState.KIND_MISSING:
        return 1, "KindMissing"
    if h.state == ShardState.DEGRADED:
        return 2, "ShardDegraded"
    if h.conflicts:
        return 3, "Conflicts"
    if h.errors:
        return 4, "ObjectErrors"
    return None


def _shard_entry(
    h: ShardHealth, spec: ShardSpec | None, recovery: float | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": h.shard_id,
        "state": h.state.value if isinstance(h.state, ShardState) else str(h.state),
        "objects": h.objects,
        "pending": h.pending,
        "errors": h.errors,
        "conflicts": h.conflicts,
        "lagSeconds": round(h.lag_seconds, 1),
    }
    if spec is not None:
        entry["group"] = spec.group
        entry["version"] = spec.version
        entry["kind"] = spec.kind
        if spec.source_namespace:
            entry["namespace"] = spec.source_namespace
    if h.last_sync_time is not None:
        entry["lastSyncTime"] = rfc3339(h.last_sync_time)
    if recovery is not None:
        entry["recoveryPointSeconds"] = _bound(recovery)
    message = h.last_error or h.message
    if message:
        entry["message"] = message[:300]
    return entry


def _summarise(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return shown + more


def conditions_for(facts: SyncerFacts, shards: Sequence[ShardHealth]) -> list[dict[str, Any]]:
    """The six conditions, without timestamps."""
    return [*_five(facts, shards), _recovery_point(facts)]


def _recovery_point(facts: SyncerFacts) -> dict[str, Any]:
    """RecoveryPointObjective. The value itself is in status (it changes every pass); the
    message names the target and the worst shard, so a person can act on it."""
    ctype, target = "RecoveryPointObjective", facts.rpo_target_s
    if facts.invalid is not None or facts.suspended:
        why = "InvalidSpec" if facts.invalid is not None else "Suspended"
        return _cond(ctype, "Unknown", why, "not judged: nothing is synced")
    if not facts.expected_shards:
        return _cond(ctype, "True", "NoShards", "no resources matched the rules")
    if not facts.recovery:
        return _cond(ctype, "Unknown", "NotMeasured", "no shard has reported being current yet")
    worst_id, worst = max(facts.recovery.items(), key=lambda kv: kv[1])
    if target is None:
        return _cond(ctype, "True", "NoTarget", "the recovery point is reported in "
                     "status.recoveryPointSeconds; set spec.rpoTarget to judge it")
    shown = format_duration(target)
    if worst <= target:
        return _cond(ctype, "True", "WithinTarget", f"every shard within the target {shown}")
    return _cond(ctype, "False", "TargetMissed",
                 f"the recovery point is past the target {shown}: shard {worst_id} "
                 "(see its entry in status.shards)")


def _five(facts: SyncerFacts, shards: Sequence[ShardHealth]) -> list[dict[str, Any]]:
    """Ready, Suspended, DestinationReachable, Synced, Degraded."""
    blocked = _blocked(facts)
    if blocked is not None:
        return blocked
    not_suspended = _cond("Suspended", "False", "Active", f"syncing in {facts.mode} mode")
    reachable = _cond("DestinationReachable", "True", "Reachable", "the remote cluster answers")
    # An explicit rule naming a kind the source lacks syncs nothing: say so, never "Healthy".
    not_served = _not_served(facts)
    if not facts.expected_shards:
        note = "no resources matched the rules"
        return [
            _cond("Ready", "True", "NoShards", note),
            not_suspended,
            reachable,
            _cond("Synced", "True", "NoShards", note),
            not_served or _cond("Degraded", "False", "NoShards", note),
        ]
    by_id = {h.shard_id: h for h in shards}
    reported = [by_id[s] for s in facts.expected_shards if s in by_id]
    return [
        _ready(facts, reported),
        not_suspended,
        reachable,
        _synced(facts, reported),
        _degraded(reported) or not_served
        or _cond("Degraded", "False", "Healthy", "no shard reports a problem"),
    ]


def _blocked(facts: SyncerFacts) -> list[dict[str, Any]] | None:
    """The conditions of a syncer that syncs nothing (invalid, suspended, refused, no
    destination), or None when its shards run."""
    if facts.invalid is not None:
        p = facts.invalid
        return [
            _cond("Ready", "False", "InvalidSpec", p.message),
            _cond("Suspended", "True", "InvalidSpec", "nothing is synced until the spec is fixed"),
            _cond(
                "DestinationReachable", "Unknown", "InvalidSpec", "not checked: the spec is invalid"
            ),
            _cond("Synced", "Unknown", "InvalidSpec", "not syncing: the spec is invalid"),
            _cond("Degraded", "True", "InvalidSpec", p.message),
        ]
    if facts.suspended:
        return [
            _cond("Ready", "True", "Suspended", "suspended: no watches and no writes"),
            _cond("Suspended", "True", "Suspended", "spec.suspend is true"),
            _cond("DestinationReachable", "Unknown", "Suspended", "not checked while suspended"),
            _cond("Synced", "Unknown", "Suspended", "not syncing while suspended"),
            _cond("Degraded", "False", "Suspended", "suspended"),
        ]
    not_suspended = _cond("Suspended", "False", "Active", f"syncing in {facts.mode} mode")
    if facts.refused is not None:
        p = facts.refused
        return [
            _cond("Ready", "False", p.reason, p.message),
            not_suspended,
            _cond(
                "DestinationReachable", "Unknown", p.reason, "not checked: the syncer is refused"
            ),
            _cond("Synced", "False", p.reason, p.message),
            _cond("Degraded", "True", p.reason, p.message),
        ]
    if facts.destination is not None:
        p = facts.destination
        return [
            _cond("Ready", "False", p.reason, p.message),
            not_suspended,
            _cond("DestinationReachable", "False", p.reason, p.message),
            _cond("Synced", "False", "DestinationUnreachable", p.message),
            _cond("Degraded", "True", p.reason, p.message),
        ]
    return None


def _not_served(facts: SyncerFacts) -> dict[str, Any] | None:
    if not facts.not_served:
        return None
    return _cond("Degraded", "True", "KindNotServed", "; ".join(
        f"{r} is not served by the source cluster (is its CRD installed?)"
        for r in facts.not_served
    ))


def _ready(facts: SyncerFacts, reported: Sequence[ShardHealth]) -> dict[str, Any]:
    failed = set(facts.failed_shards)
    n = len(facts.expected_shards)
    running = {
        h.shard_id for h in reported
        if h.shard_id not in failed and h.state not in (ShardState.PENDING, ShardState.STOPPED)
    }
    if len(running) == n:
        return _cond("Ready", "True", "Running", f"{n} shard(s) running")
    waiting = [s for s in facts.expected_shards if s not in running]
    reason = "ShardsRestarting" if failed else "ShardsStarting"
    return _cond("Ready", "False", reason,
                 f"{len(running)} of {n} shard(s) running; waiting: {_summarise(waiting)}")


def _synced(facts: SyncerFacts, reported: Sequence[ShardHealth]) -> dict[str, Any]:
    failed = set(facts.failed_shards)
    n = len(facts.expected_shards)
    synced = [h for h in reported if h.synced and h.shard_id not in failed]
    if len(synced) == n:
        objects = sum(h.objects for h in reported)
        return _cond("Synced", "True", "Synced", f"{n} shard(s) in sync, {objects} object(s)")
    pending = sum(h.pending for h in reported)
    errors = sum(h.errors for h in reported)
    return _cond(
        "Synced", "False", "Syncing",
        f"{len(synced)} of {n} shard(s) in sync; {pending} change(s) pending, {errors} error(s)",
    )


def _degraded(reported: Sequence[ShardHealth]) -> dict[str, Any] | None:
    """Degraded=True naming the worst problem of any shard, or None when none has one."""
    problems: list[tuple[int, str, ShardHealth]] = []
    for h in reported:
        found = _shard_problem(h)
        if found is not None:
            problems.append((found[0], found[1], h))
    if not problems:
        return None
    problems.sort(key=lambda t: (t[0], t[2].shard_id))
    rank, reason, _ = problems[0]
    worst = [h for r, _, h in problems if r == rank]
    detail = worst[0].last_error or worst[0].message
    message = (f"{len(problems)} shard(s) with problems; {reason}: "
               f"{_summarise([h.shard_id for h in worst])}")
    if detail:
        message += f" ({detail[:200]})"
    return _cond("Degraded", "True", reason, message)


def compute_status(
    facts: SyncerFacts,
    shards: Sequence[ShardHealth],
    *,
    previous: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The full ``status`` object for a KRMSyncer."""
    now = time.time() if now is None else now
    stamp = rfc3339(now)
    old_conds = {c.get("type"): c for c in (previous or {}).get("conditions", []) or []}
    conditions = []
    for cond in conditions_for(facts, shards):
        old = old_conds.get(cond["type"])
        same = old is not None and old.get("status") == cond["status"]
        cond["lastTransitionTime"] = old.get("lastTransitionTime", stamp) if same and old else stamp
        cond["observedGeneration"] = facts.generation
        conditions.append(cond)

    expected = set(facts.expected_shards)
    mine = [h for h in shards if h.shard_id in expected]
    ordered = sorted(mine, key=lambda h: ((_shard_problem(h) or (9, ""))[0], h.shard_id))
    entries = [
        _shard_entry(h, facts.shard_specs.get(h.shard_id), facts.recovery.get(h.shard_id))
        for h in ordered[:MAX_SHARDS_IN_STATUS]
    ]
    status: dict[str, Any] = {
        "observedGeneration": facts.generation,
        "conditions": conditions,
        "objects": sum(h.objects for h in mine),
        "shardCount": len(expected),
        "shards": entries,
    }
    if len(ordered) > MAX_SHARDS_IN_STATUS:
        status["shardsOmitted"] = len(ordered) - MAX_SHARDS_IN_STATUS
    if facts.expansions:
        status["expandedRules"] = list(facts.expansions)
    if facts.recovery and not (facts.invalid or facts.suspended):
        worst = max(facts.recovery.values())
        status["recoveryPointSeconds"] = _bound(worst)
        status["recoveryPointTime"] = rfc3339(now - worst)  # rounded down: never too recent
    if facts.rpo_target_s is not None:
        status["rpoTargetSeconds"] = facts.rpo_target_s
    sample = [name for h in ordered for name in h.conflict_names][:CONFLICT_SAMPLE]
    if sample:
        status["conflictsSample"] = sample
    return status


def _stable_view(status: Mapping[str, Any] | None) -> Any:
    """The status without volatile numbers: a change here is worth an immediate write."""
    if not status:
        return None
    conds = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions", []) or []
    ]
    volatile = ("lagSeconds", "lastSyncTime", "pending", "recoveryPointSeconds",
                "recoveryPointTime")
    shards = [
        {k: v for k, v in s.items() if k not in volatile}
        for s in status.get("shards", []) or []
    ]
    rest = {k: v for k, v in status.items()
            if k not in ("conditions", "shards", *volatile)}
    return conds, shards, rest


def should_write(
    current: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    last_write: float | None,
    now: float,
    min_interval_s: float = MIN_WRITE_INTERVAL_S,
    volatile_interval_s: float = VOLATILE_WRITE_INTERVAL_S,
) -> bool:
    """Write on a meaningful change (rate-limited), or refresh volatile numbers now and then."""
    if last_write is not None and now - last_write < min_interval_s:
        return False
    if _stable_view(current) != _stable_view(new):
        return True
    if current == new:
        return False
    return last_write is None or now - last_write >= volatile_interval_s


def condition(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    for c in (status or {}).get("conditions", []) or []:
        if c.get("type") == type_:
            return dict(c)
    return None
