"""Tuning knobs of one shard's engine (interface 6 of the team brief).

``ShardSpec`` says *what* to sync (from the KRMSyncer); ``EngineOptions`` says
*how hard*: batch sizes, bounds, rates, backoff and safety thresholds. The
defaults suit a production cluster; tests shrink the timings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_syncer.engine.ratelimit import BudgetOptions


@dataclass(frozen=True)
class EngineOptions:
    # Applier: how many ready keys one drain takes, and how many writes may be in flight.
    batch_size: int = 100
    max_in_flight: int = 32
    # Pending distinct keys before the watch reader waits (coalescing keeps it per object).
    queue_bound: int = 10_000
    # Write budget per destination client (shared by the shards that share the client):
    # adaptive (engine.ratelimit.WriteBudget); dest_qps is an optional hard cap on it,
    # dest_burst the burst allowed at that cap (default: one second's worth).
    dest_qps: float | None = None
    dest_burst: int | None = None
    # A conflict with a copy another (live) KRMSyncer made is looked at again this often:
    # once that syncer is deleted, the copy is taken over (engine.ownership).
    conflict_recheck_s: float = 30.0
    # Per-key exponential backoff for retryable failures (429, 5xx, transport).
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    # Backoff of whole-shard retries: discovery (KindMissing), list/watch errors.
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    # Overrides spec.resync_period_s when set; the period gets +-jitter_fraction jitter.
    resync_period_s: float | None = None
    resync_jitter_fraction: float = 0.1
    # Delete-storm guard: after a relist, refuse to delete when more than this fraction
    # AND more than this count of the owned objects would go at once.
    delete_guard_fraction: float = 0.5
    delete_guard_min: int = 10
    # On 410 Gone, relist and diff (the only safe choice; False resumes from "now" and is for tests).
    relist_on_410: bool = True
    list_page_size: int = 500
    # Server-side watch timeout; the watch resumes from its last resourceVersion after it.
    watch_timeout_s: int = 300
    # stop(): how long to let in-flight writes finish before cancelling them.
    stop_timeout_s: float = 10.0
    # How many conflicting / failing object names health() reports.
    report_sample: int = 20
    field_manager: str = "krm-syncer"
    # While the write gate (split-brain fencing) refuses, held keys come back after this long.
    gate_retry_s: float = 1.0
    # How often the recovery point asks the source for its current resourceVersion (one
    # limit=1 list per source client and kind, shared by that kind's shards in a process). The
    # reported point saw-tooths by this much: 0.5 s keeps p99 under 2 s at 200 changes/s.
    rpo_probe_s: float = 0.5

    @property
    def budget(self) -> BudgetOptions:
        return BudgetOptions(cap=self.dest_qps, cap_burst=self.dest_burst)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_in_flight < 1 or self.queue_bound < 1:
            raise ValueError("batch_size, max_in_flight and queue_bound must be >= 1")
        if (self.dest_qps is not None and self.dest_qps <= 0) or (
            self.dest_burst is not None and self.dest_burst < 1
        ):
            raise ValueError("dest_qps must be > 0 and dest_burst >= 1")
        if not 0.0 <= self.delete_guard_fraction <= 1.0:
            raise ValueError("delete_guard_fraction must be within [0, 1]")
