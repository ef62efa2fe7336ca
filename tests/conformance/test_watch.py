"""Watch (API concepts: "Efficient detection of changes", watch bookmarks, 410 Gone)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
from kubernetes import watch
from kubernetes.client import ApiException

from .conftest import Cluster


def _collect(cluster: Cluster, namespace: str, *, until: int, timeout: int = 5, **kw: Any) -> list[dict]:
    events = []
    w = watch.Watch()
    for ev in w.stream(cluster.core.list_namespaced_config_map, namespace, timeout_seconds=timeout, **kw):
        events.append(ev)
        if len(events) >= until:
            w.stop()
    return events


def _later(fn: Any, delay: float = 0.2) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()))
    t.start()
    return t


def test_watch_from_zero_starts_with_synthetic_added_events(cluster: Cluster, namespace: str) -> None:
    for n in ("w1", "w2"):
        cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": n, "labels": {"w": "1"}}})
    evs = _collect(cluster, namespace, until=2, resource_version="0", label_selector="w=1")
    assert sorted((e["type"], e["object"].metadata.name) for e in evs) == [("ADDED", "w1"), ("ADDED", "w2")]


def test_watch_without_resource_version_lists_current_state_first(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "now", "labels": {"w": "2"}}})
    evs = _collect(cluster, namespace, until=1, label_selector="w=2")
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [("ADDED", "now")]


def test_watch_from_a_resource_version_replays_later_changes_in_order(cluster: Cluster, namespace: str) -> None:
    lst = cluster.core.list_namespaced_config_map(namespace)
    rv = lst.metadata.resource_version
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "r"}, "data": {"v": "1"}})
    cluster.core.patch_namespaced_config_map("r", namespace, {"data": {"v": "2"}})
    cluster.core.delete_namespaced_config_map("r", namespace)
    # Only "r": a real cluster's controllers add objects to a new namespace on their own (kube-root-ca.crt).
    evs = _collect(cluster, namespace, until=3, resource_version=rv, field_selector="metadata.name=r")
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"].metadata.resource_version) for e in evs]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_deleted_event_carries_the_final_object_with_a_newer_resource_version(cluster: Cluster, namespace: str) -> None:
    made = cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "gone"}, "data": {"x": "y"}})
    _later(lambda: cluster.core.delete_namespaced_config_map("gone", namespace))
    evs = _collect(cluster, namespace, until=1, resource_version=made.metadata.resource_version,
                   field_selector="metadata.name=gone")
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [("DELETED", "gone")]
    obj = evs[0]["object"]
    assert obj.data == {"x": "y"} and obj.metadata.uid == made.metadata.uid
    assert int(obj.metadata.resource_version) > int(made.metadata.resource_version)


def test_live_events_arrive_while_watching(cluster: Cluster, namespace: str) -> None:
    rv = cluster.core.list_namespaced_config_map(namespace).metadata.resource_version
    _later(lambda: cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "live"}}))
    evs = _collect(cluster, namespace, until=1, resource_version=rv, field_selector="metadata.name=live")
    assert [(e["type"], e["object"].metadata.name) for e in evs] == [("ADDED", "live")]


def test_watch_with_label_selector_sees_objects_leave_the_selection_as_deleted(cluster: Cluster, namespace: str) -> None:
    made = cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "sel", "labels": {"in": "yes"}}})
    cluster.core.patch_namespaced_config_map("sel", namespace, {"metadata": {"labels": {"in": "no"}}})
    cluster.core.patch_namespaced_config_map("sel", namespace, {"metadata": {"labels": {"in": "yes"}}})
    evs = _collect(cluster, namespace, until=2, resource_version=made.metadata.resource_version,
                   label_selector="in=yes")
    assert [e["type"] for e in evs] == ["DELETED", "ADDED"]


def _first_line_from_rv_1(cluster: Cluster, namespace: str) -> dict | None:
    resp = cluster.stream(f"/api/v1/namespaces/{namespace}/events?watch=true&resourceVersion=1&timeoutSeconds=1")
    try:
        assert resp.status == 200
        line = resp.readline()
    finally:
        resp.release_conn()
    return orjson.loads(line) if line else None


def _wait_until_rv_1_is_compacted(cluster: Cluster, namespace: str, seconds: float = 45.0) -> None:
    """Until a watch of Events from resourceVersion 1 is expired.

    kube-apiserver compacts etcd on a timer (every 10 s on the test control planes, 5 min by
    default) up to the revision it saw one tick before, so on a fresh cluster resourceVersion 1
    is compacted ~20 s after start. Events, because kube-apiserver keeps no watch cache for them:
    their watches read etcd, where compaction shows. A ConfigMap watch is served from the watch
    cache, which on a quiet cluster still replays from resourceVersion 1 minutes after etcd
    compacted it. The in-memory server's event window starts after resourceVersion 1: it is
    expired from the start.
    """
    deadline = time.monotonic() + seconds
    while True:
        first = _first_line_from_rv_1(cluster, namespace)
        if first is not None and first["type"] == "ERROR":
            return
        assert time.monotonic() < deadline, f"resourceVersion 1 still watchable after {seconds} s: {first}"
        time.sleep(1.0)


def test_watch_from_a_compacted_resource_version_is_expired_410(cluster: Cluster, namespace: str) -> None:
    _wait_until_rv_1_is_compacted(cluster, namespace)
    w = watch.Watch()
    with pytest.raises(ApiException) as exc:
        for _ in w.stream(cluster.core.list_namespaced_event, namespace, resource_version="1", timeout_seconds=5):
            w.stop()
    assert exc.value.status == 410


def test_expired_watch_is_an_error_event_carrying_a_status(cluster: Cluster, namespace: str) -> None:
    _wait_until_rv_1_is_compacted(cluster, namespace)
    resp = cluster.stream(f"/api/v1/namespaces/{namespace}/events?watch=true&resourceVersion=1")
    try:
        assert resp.status == 200
        line = resp.readline()
        ev = orjson.loads(line)
        assert ev["type"] == "ERROR"
        assert ev["object"]["kind"] == "Status" and ev["object"]["status"] == "Failure"
        assert ev["object"]["code"] == 410 and ev["object"]["reason"] in ("Expired", "Gone")
        assert "too old" in ev["object"]["message"]
        assert resp.readline() == b""  # the stream ends after the error
    finally:
        resp.release_conn()


def test_watch_stream_is_newline_delimited_json_events(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "l1"}})
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "l2"}})
    resp = cluster.stream(f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion=0"
                          "&fieldSelector=metadata.name%3Dl1&timeoutSeconds=1")
    try:
        assert resp.headers.get("Content-Type", "").startswith("application/json")
        assert resp.headers.get("Transfer-Encoding", "").lower() == "chunked"
        lines = [ln for ln in resp.read().split(b"\n") if ln]
    finally:
        resp.release_conn()
    events = [orjson.loads(ln) for ln in lines]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "l1")]
    assert events[0]["object"]["kind"] == "ConfigMap" and events[0]["object"]["apiVersion"] == "v1"


def test_timeout_seconds_ends_the_stream(cluster: Cluster, namespace: str) -> None:
    start = time.monotonic()
    evs = _collect(cluster, namespace, until=100, timeout=1, field_selector="metadata.name=quiet",
                   resource_version=cluster.core.list_namespaced_config_map(namespace).metadata.resource_version)
    assert evs == []
    assert time.monotonic() - start < 5


def test_bookmarks_carry_a_resource_version_to_resume_from(cluster: Cluster, namespace: str, fake: Any) -> None:
    # The API promises bookmarks only "at the server's discretion" (about once a minute on
    # kube-apiserver), so this runs on the in-memory server, whose interval is short.
    rv = cluster.core.list_namespaced_config_map(namespace).metadata.resource_version
    resp = cluster.stream(f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={rv}"
                          "&allowWatchBookmarks=true&timeoutSeconds=2")
    try:
        ev = orjson.loads(resp.readline())
    finally:
        resp.release_conn()
    assert ev["type"] == "BOOKMARK"
    assert int(ev["object"]["metadata"]["resourceVersion"]) >= int(rv)
    assert ev["object"]["kind"] == "ConfigMap"


def test_watch_all_namespaces(cluster: Cluster, namespace: str) -> None:
    rv = cluster.core.list_config_map_for_all_namespaces(limit=1).metadata.resource_version
    _later(lambda: cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "everywhere"}}))
    w = watch.Watch()
    got = None
    for ev in w.stream(cluster.core.list_config_map_for_all_namespaces, resource_version=rv, timeout_seconds=5):
        if ev["object"].metadata.name == "everywhere":
            got = ev
            w.stop()
    assert got is not None and got["object"].metadata.namespace == namespace
