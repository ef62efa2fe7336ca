"""Fault injection of the in-memory server (no real-cluster equivalent: skipped there)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import orjson
import pytest
import urllib3

from .conftest import Cluster


def test_injected_429_carries_retry_after(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.faults.error_codes = [429]
    fake.faults.retry_after = 3
    fake.faults.error_rate = 1.0
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert r.status == 429
    assert r.headers["Retry-After"] == "3"
    body = r.json()
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3


def test_injected_500_is_an_internal_error_status(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.faults.error_codes = [500]
    fake.faults.error_rate = 1.0
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert r.status == 500 and r.json()["reason"] == "InternalError"


def test_match_filter_targets_faults(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.faults.error_codes = [503]
    fake.faults.error_rate = 1.0
    fake.faults.match = lambda method, path: method == "POST"
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps").status == 200
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={"metadata": {"name": "m"}})
    assert r.status == 503
    fake.faults.error_rate = 0.0
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/m").status == 404


def test_error_rate_is_a_fraction_of_requests(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.faults.rng.seed(7)
    fake.faults.error_codes = [500]
    fake.faults.error_rate = 0.5
    codes = [cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps").status for _ in range(60)]
    failures = codes.count(500)
    assert 15 < failures < 45 and codes.count(200) == 60 - failures


def test_latency_delays_matching_requests(cluster: Cluster, fake: Any, namespace: str) -> None:
    fake.faults.latency = 0.3
    start = time.monotonic()
    assert cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps").status == 200
    assert time.monotonic() - start >= 0.3


def _open_watch(cluster: Cluster, namespace: str, rv: str = "0") -> Any:
    return cluster.stream(f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={rv}",
                          timeout=10)


def test_drop_watches_ends_open_streams(cluster: Cluster, fake: Any, namespace: str) -> None:
    resp = _open_watch(cluster, namespace)
    time.sleep(0.1)
    start = time.monotonic()
    dropped = fake.faults.drop_watches()
    assert dropped >= 1
    data = resp.read()
    resp.release_conn()
    assert time.monotonic() - start < 3
    assert all(orjson.loads(ln)["type"] == "ADDED" for ln in data.split(b"\n") if ln)


def test_abrupt_drop_resets_the_connection(cluster: Cluster, fake: Any, namespace: str) -> None:
    resp = _open_watch(cluster, namespace)
    time.sleep(0.1)
    fake.faults.drop_watches(abrupt=True)
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        resp.read()
    resp.release_conn()


def test_stalled_watch_delivers_nothing_until_resumed(cluster: Cluster, fake: Any, namespace: str) -> None:
    rv = cluster.core.list_namespaced_config_map(namespace).metadata.resource_version
    resp = _open_watch(cluster, namespace, rv)
    got: list[dict] = []

    def reader() -> None:
        for line in resp.stream(1 << 16):
            got.extend(orjson.loads(ln) for ln in line.split(b"\n") if ln)

    fake.faults.stall_watches(True)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "during-stall"}})
    time.sleep(0.5)
    assert got == []
    fake.faults.stall_watches(False)
    deadline = time.monotonic() + 3
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    fake.faults.drop_watches()
    t.join(timeout=3)
    resp.release_conn()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got if e["type"] != "BOOKMARK"] == [
        ("ADDED", "during-stall")]


def test_compaction_makes_older_resource_versions_expire(cluster: Cluster, fake: Any, namespace: str) -> None:
    rv = cluster.core.list_namespaced_config_map(namespace).metadata.resource_version
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "after"}})
    fake.faults.compact()
    resp = _open_watch(cluster, namespace, rv)
    ev = orjson.loads(resp.readline())
    resp.release_conn()
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
    fresh = cluster.core.list_namespaced_config_map(namespace).metadata.resource_version
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "later"}})
    resp = _open_watch(cluster, namespace, fresh)
    ev = orjson.loads(resp.readline())
    resp.release_conn()
    assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "later")


def test_compaction_expires_list_continue_tokens(cluster: Cluster, fake: Any, namespace: str) -> None:
    for i in range(3):
        cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": f"c{i}"}})
    first = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps?limit=1").json()
    token = first["metadata"]["continue"]
    fake.faults.compact()
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps?limit=1&continue={token}")
    assert r.status == 410 and r.json()["reason"] == "Expired"


def test_outage_refuses_connections_and_recovers_on_the_same_address(cluster: Cluster, fake: Any) -> None:
    host, port = fake.url.split("://")[1].rsplit(":", 1)
    fake.faults.outage(True)
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    with pytest.raises(urllib3.exceptions.HTTPError):
        cluster.raw("GET", "/api/v1/namespaces", timeout=2)
    fake.faults.outage(False)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert cluster.raw("GET", "/api/v1/namespaces").status == 200
            break
        except urllib3.exceptions.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_outage_cuts_open_watches(cluster: Cluster, fake: Any, namespace: str) -> None:
    resp = _open_watch(cluster, namespace)
    time.sleep(0.1)
    fake.faults.outage(True)
    try:
        with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
            resp.read()
    finally:
        resp.release_conn()
        fake.faults.outage(False)


def test_server_forgets_watches_of_clients_that_went_away(cluster: Cluster, fake: Any, namespace: str) -> None:
    resp = _open_watch(cluster, namespace)
    time.sleep(0.1)
    open_watches = fake.call(lambda s: len(s.store.watchers()))
    assert open_watches >= 1
    resp.close()
    deadline = time.monotonic() + 5
    while fake.call(lambda s: len(s.store.watchers())) >= open_watches and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fake.call(lambda s: len(s.store.watchers())) < open_watches


def test_flapping_outages_never_leave_the_server_listening_while_down(fake: Any) -> None:
    host, port = fake.url.split("://")[1].rsplit(":", 1)
    for _ in range(10):
        fake.faults.outage(True)
        fake.faults.outage(False)
        fake.faults.outage(True)
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=1).close()
        fake.faults.outage(False)
        socket.create_connection((host, int(port)), timeout=1).close()
