"""Metrics: shard helpers record the right series, remove() cleans up, snapshots merge."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ray_syncer import metrics
from ray_syncer.metrics import (
    REGISTRY,
    MergedCollector,
    ShardMetrics,
    set_shards_by_state,
    snapshot,
)


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_shard_metrics_record_each_series() -> None:
    m = ShardMetrics("ns/s1", "ns/s1/core/ConfigMap/a")
    lbl = {"syncer": "ns/s1", "shard": "ns/s1/core/ConfigMap/a"}
    try:
        m.event("ADDED")
        m.event("ADDED")
        m.applied("created")
        m.deleted("deleted")
        m.coalesced()
        m.watch_restart("expired")
        m.relisted()
        m.set_queue_depth(7)
        m.set_in_flight(3)
        m.set_objects(100)
        m.set_lag(1.5)
        m.set_conflicts(2)
        m.set_errors(1)
        m.set_guard(True)
        m.observe_latency(0.02)
        assert value("krmsyncer_events_total", **lbl, type="ADDED") == 2
        assert value("krmsyncer_applies_total", **lbl, result="created") == 1
        assert value("krmsyncer_applies_total", **lbl, result="noop") == 0  # pre-created
        assert value("krmsyncer_deletes_total", **lbl, result="deleted") == 1
        assert value("krmsyncer_coalesced_total", **lbl) == 1
        assert value("krmsyncer_watch_restarts_total", **lbl, reason="expired") == 1
        assert value("krmsyncer_relists_total", **lbl) == 1
        assert value("krmsyncer_queue_depth", **lbl) == 7
        assert value("krmsyncer_inflight_writes", **lbl) == 3
        assert value("krmsyncer_objects", **lbl) == 100
        assert value("krmsyncer_lag_seconds", **lbl) == 1.5
        assert value("krmsyncer_conflicts", **lbl) == 2
        assert value("krmsyncer_errors", **lbl) == 1
        assert value("krmsyncer_delete_guard_tripped", **lbl) == 1
        assert value("krmsyncer_sync_latency_seconds_count", **lbl) == 1
        assert value("krmsyncer_sync_latency_seconds_bucket", **lbl, le="0.025") == 1
    finally:
        m.remove()


def test_remove_drops_only_that_shards_series() -> None:
    a, b = ShardMetrics("ns/s", "shard-a"), ShardMetrics("ns/s", "shard-b")
    for m in (a, b):
        m.event("MODIFIED")
        m.watch_restart("dropped")
        m.set_objects(5)
        m.observe_latency(0.1)
    a.remove()
    text = generate_latest(REGISTRY).decode()
    assert 'shard="shard-a"' not in text
    assert 'shard="shard-b"' in text
    assert value("krmsyncer_objects", syncer="ns/s", shard="shard-b") == 5
    b.remove()
    assert 'shard="shard-b"' not in generate_latest(REGISTRY).decode()


def test_shards_by_state_zeroes_states_that_disappear() -> None:
    set_shards_by_state({"Syncing": 3, "KindMissing": 1})
    assert value("krmsyncer_shards", state="Syncing") == 3
    set_shards_by_state({"Syncing": 4})
    assert value("krmsyncer_shards", state="KindMissing") == 0
    assert value("krmsyncer_shards", state="Syncing") == 4


def test_all_metric_names_are_krmsyncer_prefixed() -> None:
    names = {fam.name for fam in REGISTRY.collect()}
    assert names and all(n.startswith("krmsyncer_") for n in names)


def _snapshot_in_child(shard: str) -> bytes:
    # Runs in a separate process: its own REGISTRY, like a Ray actor.
    m = metrics.ShardMetrics("ns/s", shard)
    m.applied("updated")
    m.set_objects(10)
    m.observe_latency(0.2)
    return pickle.dumps(metrics.snapshot())


def parse(registry: CollectorRegistry) -> tuple[str, dict[str, list]]:
    text = generate_latest(registry).decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    return text, families


def test_merged_collector_merges_snapshots_from_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        snap_a = pickle.loads(pool.submit(_snapshot_in_child, "shard-a").result(timeout=60))
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        snap_b = pickle.loads(pool.submit(_snapshot_in_child, "shard-b").result(timeout=60))

    merged = MergedCollector()
    merged.update("actor-a", snap_a)
    merged.update("actor-b", snap_b)
    registry = CollectorRegistry()
    registry.register(merged)
    text, families = parse(registry)

    # One HELP/TYPE per family, even though both processes reported every family.
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    assert len(helps) == len(set(helps))
    assert text.count("# TYPE krmsyncer_applies_total counter") == 1
    applies = [s for s in families["krmsyncer_applies"] if s.labels.get("result") == "updated"]
    assert sorted((s.labels["shard"], s.value) for s in applies) == [
        ("shard-a", 1.0),
        ("shard-b", 1.0),
    ]
    counts = [s for s in families["krmsyncer_sync_latency_seconds"] if s.name.endswith("_count")]
    assert sorted(s.labels["shard"] for s in counts) == ["shard-a", "shard-b"]

    merged.drop("actor-a")
    _, families = parse(registry)
    assert {s.labels["shard"] for s in families["krmsyncer_objects"]} == {"shard-b"}


def test_same_series_from_two_sources_appears_once_newest_wins() -> None:
    m = ShardMetrics("ns/s", "moving-shard")
    try:
        m.set_objects(1)
        old = snapshot()
        m.set_objects(2)
        new = snapshot()
    finally:
        m.remove()
    merged = MergedCollector()
    merged.update("old-actor", old)
    merged.update("new-actor", new)
    registry = CollectorRegistry()
    registry.register(merged)
    _, families = parse(registry)
    objs = [s for s in families["krmsyncer_objects"] if s.labels["shard"] == "moving-shard"]
    assert [s.value for s in objs] == [2.0]


def test_include_local_adds_this_process() -> None:
    m = ShardMetrics("ns/local", "local-shard")
    try:
        m.set_queue_depth(4)
        registry = CollectorRegistry()
        registry.register(MergedCollector(include_local=True))
        _, families = parse(registry)
        depth = [s for s in families["krmsyncer_queue_depth"] if s.labels["shard"] == "local-shard"]
        assert [s.value for s in depth] == [4.0]
    finally:
        m.remove()


def test_remove_from_a_fresh_instance_drops_everything_the_shard_recorded() -> None:
    old = ShardMetrics("ns/s", "restarted")
    old.event("ADDED")
    old.deleted("deleted")
    old.watch_restart("error")
    old.applied("custom-result")
    ShardMetrics("ns/s", "restarted").remove()
    assert 'shard="restarted"' not in generate_latest(REGISTRY).decode()
