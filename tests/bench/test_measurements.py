"""The benchmark's own measuring code: latency matching, percentiles, the correctness check.

These run without servers; they pin the parts of the harness whose mistakes
would silently produce wrong figures.
"""

from __future__ import annotations

import random
from typing import Any

from benchmarks import report
from benchmarks.scenarios import Bench, Params
from benchmarks.workload import Observer, configmap, object_keys


def _observer() -> Observer:
    return Observer(client=None)  # type: ignore[arg-type]  # matching logic only


def test_latency_is_measured_from_ack_to_first_visible_seq_or_later() -> None:
    obs = _observer()
    k = ("ns", "a")
    obs.expect(k, 1, acked_at=10.0)
    obs.expect(k, 2, acked_at=10.5)
    assert obs.behind == {k}
    # The destination skips seq 1 (coalesced) and shows seq 2: both count as delivered.
    obs._saw(k, 2, 11.0)
    assert sorted(obs.latencies) == [0.5, 1.0]
    assert obs.behind == set()


def test_an_older_seq_in_the_destination_does_not_deliver_a_newer_write() -> None:
    obs = _observer()
    k = ("ns", "a")
    obs.expect(k, 5, acked_at=1.0)
    obs._saw(k, 4, 2.0)
    assert obs.latencies == []
    assert obs.behind == {k}


def test_visible_before_the_ack_arrives_counts_as_zero() -> None:
    obs = _observer()
    k = ("ns", "a")
    obs._saw(k, 3, 5.0)
    obs.expect(k, 3, acked_at=5.1)
    assert obs.latencies == [0.0]
    assert k not in obs.behind


def test_percentiles_nearest_rank() -> None:
    xs = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    random.Random(1).shuffle(xs)
    p = report.percentiles(xs)
    assert p is not None
    assert p["p50"] == 50.0 and p["p90"] == 90.0 and p["p99"] == 99.0 and p["max"] == 100.0
    assert report.percentiles([]) is None


def test_object_keys_spread_over_namespaces_and_bodies_carry_seq() -> None:
    keys = object_keys(objects=10, namespaces=3)
    assert len(set(keys)) == 10
    assert {ns for ns, _ in keys} == {"bench-000", "bench-001", "bench-002"}
    body = configmap(keys[0], seq=42, payload_size=1024)
    assert body["data"]["seq"] == "42"
    assert len(body["data"]["payload"]) == 1024


class _FakeLister:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    async def list_all(self, res: Any, **kw: Any) -> tuple[list[dict[str, Any]], str]:
        return self.items, "1"


def _cm(ns: str, name: str, seq: int) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "data": {"seq": str(seq)}}


async def test_verify_counts_missing_and_stale_objects_as_lost() -> None:
    src = _FakeLister([_cm("a", "x", 1), _cm("a", "y", 2), _cm("a", "z", 3)])
    dst = _FakeLister([_cm("a", "x", 1), _cm("a", "y", 1), _cm("a", "extra", 9)])
    bench = Bench(
        params=None,  # type: ignore[arg-type]
        clusters=None,  # type: ignore[arg-type]
        src=src,  # type: ignore[arg-type]
        dst=dst,  # type: ignore[arg-type]
        observer=_observer(),
        load=None,  # type: ignore[arg-type]
        rng=random.Random(0),
    )
    out = await bench.verify("sel")
    assert out["missing"] == 1 and out["differ"] == 1 and out["extra"] == 1
    assert out["lost_updates"] == 2


def test_result_schema_has_the_required_keys() -> None:
    r = report.new_result("x")
    for key in (
        "scenario",
        "throughput_per_s",
        "ceiling_per_s",
        "ratio_to_ceiling",
        "naive_per_s",
        "ratio_to_naive",
        "latency_ms",
        "lost_updates",
        "dest_writes",
        "peak_rss_mb",
    ):
        assert key in r
    assert Params.__dataclass_fields__.keys() >= {"quick", "objects", "rates", "duration"}
