"""Every Prometheus metric of ray-syncer, defined once (docs/design.md §6).

Why this exists: the engine records, the operator serves, and both must agree on
names, labels and types. All metrics live on the module-level ``REGISTRY`` (not
prometheus-client's global default), so tests and Ray actor processes are
isolated from each other and from libraries that register their own metrics.

How it meets its neighbours:

* The engine gets a ``ShardMetrics`` bound to (syncer, shard) and calls its
  small methods (``applied("created")``, ``set_queue_depth(n)``...). ``remove()``
  drops that shard's series when the shard stops, so a stopped shard does not
  linger in the exposition.
* Shards run in Ray actor processes, each with its own ``REGISTRY``. An actor
  returns ``snapshot()`` (picklable metric families) to the supervisor/operator,
  which feeds them to a ``MergedCollector`` registered on the registry that its
  ``/metrics`` endpoint serves. Families are merged by name (one HELP/TYPE each),
  shard series keep their distinct labels.
* The supervisor calls ``set_shards_by_state`` with its counts.

No label ever carries secret material: labels are syncer keys, shard ids,
result words and states.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "APPLY_RESULTS",
    "REGISTRY",
    "MergedCollector",
    "ShardMetrics",
    "set_shards_by_state",
    "snapshot",
]

# `*_created` samples double the series count per shard and no dashboard reads them.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

APPLY_RESULTS = ("created", "updated", "noop", "conflict", "error", "skipped")
WATCH_RESTART_REASONS = ("expired", "dropped", "error")
_SHARD = ("syncer", "shard")

EVENTS = Counter(
    "krmsyncer_events_total",
    "Source watch events seen, by event type.",
    [*_SHARD, "type"],
    registry=REGISTRY,
)
APPLIES = Counter(
    "krmsyncer_applies_total",
    "Destination apply outcomes (created|updated|noop|conflict|error|skipped).",
    [*_SHARD, "result"],
    registry=REGISTRY,
)
DELETES = Counter(
    "krmsyncer_deletes_total",
    "Destination delete outcomes.",
    [*_SHARD, "result"],
    registry=REGISTRY,
)
COALESCED = Counter(
    "krmsyncer_coalesced_total",
    "Source events folded into an already pending key.",
    list(_SHARD),
    registry=REGISTRY,
)
WATCH_RESTARTS = Counter(
    "krmsyncer_watch_restarts_total",
    "Source watch restarts, by reason (expired|dropped|error).",
    [*_SHARD, "reason"],
    registry=REGISTRY,
)
RELISTS = Counter(
    "krmsyncer_relists_total",
    "Full source relists (initial, after 410, periodic resync).",
    list(_SHARD),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "krmsyncer_queue_depth", "Keys waiting in the shard's queue.", list(_SHARD), registry=REGISTRY
)
IN_FLIGHT = Gauge(
    "krmsyncer_inflight_writes",
    "Destination writes in flight.",
    list(_SHARD),
    registry=REGISTRY,
)
OBJECTS = Gauge(
    "krmsyncer_objects", "Source objects tracked by the shard.", list(_SHARD), registry=REGISTRY
)
LAG = Gauge(
    "krmsyncer_lag_seconds",
    "Age of the oldest pending change.",
    list(_SHARD),
    registry=REGISTRY,
)
CONFLICTS = Gauge(
    "krmsyncer_conflicts",
    "Destination objects the shard may not write (not owned, or collisions).",
    list(_SHARD),
    registry=REGISTRY,
)
ERRORS = Gauge(
    "krmsyncer_errors", "Objects currently failing to sync.", list(_SHARD), registry=REGISTRY
)
GUARD = Gauge(
    "krmsyncer_delete_guard_tripped",
    "1 while the delete-storm guard holds deletes back.",
    list(_SHARD),
    registry=REGISTRY,
)
SHARDS = Gauge("krmsyncer_shards", "Shards by state.", ["state"], registry=REGISTRY)
RPO = Gauge(
    "krmsyncer_rpo_seconds",
    "The recovery point: now minus the last time the shard knew the standby was current "
    "(set by the operator, for every shard a KRMSyncer should run, running or not).",
    list(_SHARD),
    registry=REGISTRY,
)
RPO_TARGET = Gauge(
    "krmsyncer_rpo_target_seconds",
    "spec.rpoTarget of a KRMSyncer, in seconds (absent when unset).",
    ["syncer"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "krmsyncer_sync_latency_seconds",
    "From source event seen to destination write acknowledged.",
    list(_SHARD),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)

_SHARD_GAUGES = (QUEUE_DEPTH, IN_FLIGHT, OBJECTS, LAG, CONFLICTS, ERRORS, GUARD)
_SHARD_PLAIN = (*_SHARD_GAUGES, COALESCED, RELISTS, LATENCY)
_SHARD_EXTRA = (EVENTS, APPLIES, DELETES, WATCH_RESTARTS)


class ShardMetrics:
    """The metrics of one shard, bound to its (syncer, shard) labels.

    Children are bound once and cached, so the hot path is a dict lookup and
    an increment.
    """

    def __init__(self, syncer: str, shard: str) -> None:
        self.syncer = syncer
        self.shard = shard
        self._labels = (syncer, shard)
        self._extra: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()
        self._coalesced = COALESCED.labels(*self._labels)
        self._relists = RELISTS.labels(*self._labels)
        self._queue = QUEUE_DEPTH.labels(*self._labels)
        self._in_flight = IN_FLIGHT.labels(*self._labels)
        self._objects = OBJECTS.labels(*self._labels)
        self._lag = LAG.labels(*self._labels)
        self._conflicts = CONFLICTS.labels(*self._labels)
        self._errors = ERRORS.labels(*self._labels)
        self._guard = GUARD.labels(*self._labels)
        self._latency = LATENCY.labels(*self._labels)
        # Pre-create the usual outcomes so rates start at 0 instead of being absent.
        for result in APPLY_RESULTS:
            self._child(APPLIES, result)

    def __repr__(self) -> str:
        return f"ShardMetrics(syncer={self.syncer!r}, shard={self.shard!r})"

    def _child(self, metric: Counter, value: str) -> Any:
        key = (id(metric), value)
        child = self._extra.get(key)
        if child is None:
            with self._lock:
                child = metric.labels(*self._labels, value)
                self._extra[key] = child
        return child

    # counters
    def event(self, type: str) -> None:
        self._child(EVENTS, type).inc()

    def applied(self, result: str) -> None:
        self._child(APPLIES, result).inc()

    def deleted(self, result: str) -> None:
        self._child(DELETES, result).inc()

    def coalesced(self, n: int = 1) -> None:
        self._coalesced.inc(n)

    def watch_restart(self, reason: str) -> None:
        self._child(WATCH_RESTARTS, reason).inc()

    def relisted(self) -> None:
        self._relists.inc()

    # gauges
    def set_queue_depth(self, n: int) -> None:
        self._queue.set(n)

    def set_in_flight(self, n: int) -> None:
        self._in_flight.set(n)

    def set_objects(self, n: int) -> None:
        self._objects.set(n)

    def set_lag(self, seconds: float) -> None:
        self._lag.set(seconds)

    def set_conflicts(self, n: int) -> None:
        self._conflicts.set(n)

    def set_errors(self, n: int) -> None:
        self._errors.set(n)

    def set_guard(self, tripped: bool) -> None:
        self._guard.set(1 if tripped else 0)

    # histogram
    def observe_latency(self, seconds: float) -> None:
        self._latency.observe(max(0.0, seconds))

    def remove(self) -> None:
        """Drop every series of this shard (call when the shard stops).

        Works from any instance bound to the same labels (the operator may build
        a fresh one just to clean up), because it scans each metric's children
        rather than trusting what this instance happened to record.
        """
        for metric in _SHARD_PLAIN:
            with contextlib.suppress(KeyError):
                metric.remove(*self._labels)
        for metric in _SHARD_EXTRA:
            for labelvalues in _children(metric):
                if labelvalues[:2] == self._labels:
                    with contextlib.suppress(KeyError):
                        metric.remove(*labelvalues)
        with self._lock:
            self._extra.clear()


def _children(metric: Counter) -> list[tuple[str, ...]]:
    # prometheus-client keeps a metric's children in ``_metrics`` (label tuple ->
    # child); there is no public way to enumerate label values.
    with metric._lock:
        return [tuple(k) for k in metric._metrics]


_rpo_lock = threading.Lock()
_rpo_seen: set[tuple[str, str]] = set()
_rpo_targets_seen: set[str] = set()


def set_recovery_points(
    points: Mapping[tuple[str, str], float], targets: Mapping[str, float]
) -> None:
    """Operator side: ``(syncer, shard) -> seconds`` and ``syncer -> target seconds``; the
    series of shards and syncers no longer present are dropped."""
    with _rpo_lock:
        for labels in _rpo_seen - set(points):
            with contextlib.suppress(KeyError):
                RPO.remove(*labels)
        for syncer in _rpo_targets_seen - set(targets):
            with contextlib.suppress(KeyError):
                RPO_TARGET.remove(syncer)
        for labels, seconds in points.items():
            RPO.labels(*labels).set(seconds)
        for syncer, seconds in targets.items():
            RPO_TARGET.labels(syncer).set(seconds)
        _rpo_seen.clear()
        _rpo_seen.update(points)
        _rpo_targets_seen.clear()
        _rpo_targets_seen.update(targets)


_states_lock = threading.Lock()
_states_seen: set[str] = set()


def set_shards_by_state(counts: Mapping[str, int]) -> None:
    """Supervisor side: shard counts by state; states no longer present go to 0."""
    with _states_lock:
        for state in _states_seen - set(counts):
            SHARDS.labels(state).set(0)
        for state, n in counts.items():
            SHARDS.labels(state).set(n)
            _states_seen.add(state)


def snapshot(registry: CollectorRegistry | None = None) -> list[Metric]:
    """This process's metric families, as picklable data for another process to merge."""
    return list((registry or REGISTRY).collect())


class MergedCollector(Collector):
    """Merges metric snapshots from many processes into one exposition.

    ``update(source, families)`` replaces what ``source`` (e.g. an actor name)
    reported last; ``drop(source)`` forgets it. ``collect()`` yields one family per
    name (a single HELP/TYPE) holding every source's samples. If two sources
    report the same series (same sample name and labels: e.g. a shard that just
    moved between actors), the most recently updated source wins, so the
    exposition never holds duplicate series. With ``include_local`` the
    collecting process's own ``REGISTRY`` takes part as the freshest source.
    """

    def __init__(self, *, include_local: bool = False, registry: CollectorRegistry | None = None):
        self._sources: dict[str, tuple[float, list[Metric]]] = {}
        self._lock = threading.Lock()
        self._include_local = include_local
        self._local = registry or REGISTRY

    def update(self, source: str, families: Iterable[Metric]) -> None:
        with self._lock:
            self._sources[source] = (time.monotonic(), list(families))

    def drop(self, source: str) -> None:
        with self._lock:
            self._sources.pop(source, None)

    def sources(self) -> list[str]:
        with self._lock:
            return sorted(self._sources)

    def describe(self) -> list[Metric]:
        # Keep registration cheap and free of name clashes: families vary at runtime.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            ordered = sorted(self._sources.values(), key=lambda s: s[0], reverse=True)
            inputs = [families for _, families in ordered]
        if self._include_local:
            inputs.insert(0, snapshot(self._local))
        merged: dict[str, Metric] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for families in inputs:
            for fam in families:
                out = merged.get(fam.name)
                if out is None:
                    out = Metric(fam.name, fam.documentation, fam.type, fam.unit)
                    merged[fam.name] = out
                elif out.type != fam.type:
                    continue  # a conflicting definition cannot be merged; keep the first
                for sample in fam.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    if key in seen:
                        continue
                    seen.add(key)
                    out.samples.append(sample)
        for name in sorted(merged):
            yield merged[name]
