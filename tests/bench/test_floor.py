"""The floor (benchmarks/floor.py) copies correctly, and the report compares against it.

The raw copier is the yardstick of every churn row (issue 21): if it lost or
misplaced writes, every ratio would flatter the product. It runs here against
two in-memory API servers (real HTTP, the official client's kubeconfig loader).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes.client
import pytest
from kubernetes import config
from ray_syncer_testkit.threaded import ThreadedApiServer

from benchmarks import report
from benchmarks.floor import FloorCopier

SELECTOR = "ray-syncer-bench=1"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[ThreadedApiServer, ThreadedApiServer, Path, Path]]:
    with ThreadedApiServer(name="source") as src, ThreadedApiServer(name="dest") as dst:
        yield (src, dst, src.write_kubeconfig(tmp_path / "src"),
               dst.write_kubeconfig(tmp_path / "dst"))


def _api(path: Path) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(config.new_client_from_config(config_file=str(path)))


def _cm(name: str, seq: int, *, label: str = "1") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"ray-syncer-bench": label}},
            "data": {"seq": str(seq)}}


def _until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _dest(api: kubernetes.client.CoreV1Api) -> dict[str, str]:
    items = api.list_namespaced_config_map("ns", label_selector=SELECTOR).items
    return {i.metadata.name: (i.data or {}).get("seq") for i in items}


@pytest.mark.timeout(60)
def test_floor_copies_creates_updates_and_deletes(servers: tuple) -> None:  # type: ignore[type-arg]
    _src, _dst, src_kc, dst_kc = servers
    src, dst = _api(src_kc), _api(dst_kc)
    for api in (src, dst):
        api.create_namespace({"metadata": {"name": "ns"}})
    src.create_namespaced_config_map("ns", _cm("listed", 1))
    src.create_namespaced_config_map("ns", _cm("ignored", 1, label="other"))
    floor = FloorCopier(source_kubeconfig=str(src_kc), dest_kubeconfig=str(dst_kc),
                        selector=SELECTOR, trace=True)
    floor.start()
    try:
        _until(lambda: _dest(dst) == {"listed": "1"})
        src.create_namespaced_config_map("ns", _cm("created", 2))
        for seq in range(3, 30):  # a burst of updates to one object: the last one wins
            src.patch_namespaced_config_map("listed", "ns", {"data": {"seq": str(seq)}})
        _until(lambda: _dest(dst) == {"listed": "29", "created": "2"})
        src.delete_namespaced_config_map("created", "ns")
        _until(lambda: _dest(dst) == {"listed": "29"})
        _until(lambda: floor.health()["synced"])
        assert floor.errors == 0
        assert "ignored" not in {i.metadata.name for i in dst.list_namespaced_config_map("ns").items}
        traces = floor.take_traces()
        assert traces and all(e <= s <= d for _, e, s, d in traces)
        assert max(q for q, *_ in traces) == 29
    finally:
        floor.stop()


def test_report_compares_every_churn_row_with_the_floor() -> None:
    results = [
        report.new_result("initial_sync", throughput_per_s=500.0),
        report.new_result("churn@200", latency_ms={"p50": 60.0, "p99": 400.0}),
        report.new_result("churn@800", latency_ms={"p50": 900.0, "p99": 3000.0}),
        report.new_result("floor_initial_sync", throughput_per_s=520.0),
        report.new_result("floor_churn@200", latency_ms={"p50": 40.0, "p99": 300.0}),
        report.new_result("floor_churn@800", latency_ms={"p50": 700.0, "p99": 1300.0}),
    ]
    report.fill_floor_ratios(results)
    by = {r["scenario"]: r for r in results}
    v = by["churn@200"]["vs_floor"]
    assert v["p50"]["ratio"] == 1.5 and v["p50"]["limit_ms"] == 65.0  # floor + 25 ms is more
    assert v["p50"]["within"] is True
    assert v["p99"]["ratio"] == pytest.approx(1.33) and v["p99"]["limit_ms"] == 375.0
    assert v["p99"]["within"] is False and v["within_target"] is False
    # Beyond the rate where the floor's p99 passes 1 s the target does not apply.
    assert by["churn@800"]["vs_floor"]["within_target"] is None
    assert by["initial_sync"]["ratio_to_floor"] == pytest.approx(500 / 520)
    assert "floor_latency_ms" not in by["floor_churn@200"]
    row = report.table_rows([by["churn@200"]])[0]
    assert "40/300" in row and "1.50/1.33 MISSED" in row


def test_breakdown_splits_each_write_into_its_steps() -> None:
    rows = [(7, 1.010, 1.030, 1.031, 1.050)]
    out = report.breakdown(rows, acked={7: 1.000}, visible={7: 1.060})
    assert out is not None
    assert out["arrival"]["p50"] == pytest.approx(10.0)
    assert out["queue"]["p50"] == pytest.approx(20.0)
    assert out["budget"]["p50"] == pytest.approx(1.0)
    assert out["write"]["p50"] == pytest.approx(19.0)
    assert out["visible"]["p50"] == pytest.approx(10.0)
    assert out["total"]["p50"] == pytest.approx(60.0)
    assert report.breakdown([(8, 1.0, 1.0, 1.0, 1.0)], acked={}, visible={}) is None


def test_footprint_names_every_ray_process() -> None:
    from benchmarks.footprint import process_name

    assert process_name("/usr/bin/gcs_server --log_dir=/tmp/x") == "gcs_server"
    assert process_name("/x/ray/core/src/ray/raylet/raylet --raylet_socket_name=/s") == "raylet"
    assert process_name("ray::DashboardAgent") == "dashboard agent"
    assert process_name("ray::RuntimeEnvAgent") == "runtime env agent"
    assert process_name("/x/python /x/ray/dashboard/dashboard.py --host=0") == "dashboard"
    assert process_name("ray-dashboard-NodeHead-0 (/x/python -B -c \"from multiprocessing."
                        "forkserver import main; main(25, 27") == "dashboard module NodeHead"
    assert process_name("/x/python -B -c from multiprocessing.forkserver import main; main(2"
                        ) == "dashboard module forkserver"
    assert process_name("/x/python -u /x/ray/_private/log_monitor.py --x") == "log_monitor"
    assert process_name("/x/python /x/ray/autoscaler/_private/monitor.py") == "monitor"
    assert process_name("ray::ShardHostActor.run") == "shard host"
    assert process_name("ray::SupervisorActor") == "supervisor"
    assert process_name("ray::IDLE") == "idle worker"
    assert process_name("/x/python -S -m ray_syncer.fleet.start_guard 12 1.0") == "-"
