"""The shard contract: what one shard syncs, and how it reports its health.

A shard is (KRMSyncer, resolved group/version/kind, source namespace or all).
The operator's planner turns validated ``KRMSyncer`` models into ``ShardSpec``
values; the engine's ``Shard`` consumes one and reports ``ShardHealth``. Both
are plain, picklable data so they cross the Ray boundary unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

ConflictPolicy = Literal["Skip", "Adopt"]
DeletionPolicy = Literal["Delete", "Orphan"]
ImmutablePolicy = Literal["Recreate", "Report"]


@dataclass(frozen=True)
class ShardSpec:
    """Everything one shard needs to know, resolved from a KRMSyncer rule."""

    syncer_namespace: str
    syncer_name: str
    group: str  # "" is the core group
    version: str
    kind: str
    # Source namespace; None means all namespaces (or the kind is cluster-scoped).
    source_namespace: str | None = None
    # Namespace mapping (spec.destination.namespace); None keeps the source namespace.
    dest_namespace: str | None = None
    # Rule label selector rendered in the API's string form ("a=b,c in (d)").
    label_selector: str | None = None
    # None copies every field (minus server-managed ones); a tuple is the Go syncFields list.
    sync_fields: tuple[str, ...] | None = None
    sync_status: bool = False
    include_owned: bool = False
    immutable_policy: ImmutablePolicy = "Recreate"
    conflict_policy: ConflictPolicy = "Skip"
    deletion_policy: DeletionPolicy = "Delete"
    resync_period_s: float = 600.0
    # Names the source cluster in the ownership annotations of written objects.
    source_cluster: str = "source"

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def shard_id(self) -> str:
        """Readable, unique and deterministic: ``<ns>/<syncer>/<group>/<kind>/<namespace>``."""
        group = self.group or "core"
        ns = self.source_namespace or "_all"
        return f"{self.syncer_namespace}/{self.syncer_name}/{group}/{self.kind}/{ns}"

    @property
    def syncer_key(self) -> str:
        return f"{self.syncer_namespace}/{self.syncer_name}"


class ShardState(str, Enum):
    PENDING = "Pending"  # created, not started
    RESOLVING = "Resolving"  # discovery in progress
    KIND_MISSING = "KindMissing"  # the destination (or source) lacks the kind; retrying
    LISTING = "Listing"  # initial list / relist in progress
    SYNCING = "Syncing"  # watching and applying
    DEGRADED = "Degraded"  # running, with errors (destination unreachable, 403, guard tripped)
    STOPPED = "Stopped"


@dataclass
class ShardHealth:
    """A snapshot of one shard, aggregated by the supervisor into KRMSyncer status."""

    shard_id: str
    state: ShardState = ShardState.PENDING
    message: str = ""
    objects: int = 0  # source objects tracked
    pending: int = 0  # keys waiting in the queue
    in_flight: int = 0
    conflicts: int = 0
    conflict_names: list[str] = field(default_factory=list)  # bounded sample
    errors: int = 0  # objects currently in error
    last_error: str = ""
    lag_seconds: float = 0.0  # age of the oldest pending change
    last_sync_time: float | None = None  # unix time of the last acknowledged write or no-op check
    watch_state: str = "idle"
    delete_guard_tripped: bool = False
    # True when the initial list is done, nothing is pending or failing.
    synced: bool = False
    writes: int = 0  # destination writes made since start (applies + deletes)
    # The destination's adaptive write budget as this shard sees it (engine.ratelimit).
    write_budget_per_s: float = 0.0
    write_budget_decreases: int = 0
    # Copies made by KRMSyncers that no longer exist, taken over since start: owner -> count.
    took_over: dict[str, int] = field(default_factory=dict)
    # Unix time the shard last knew it was current (engine.recovery); None: not yet once.
    recovery_point: float | None = None
