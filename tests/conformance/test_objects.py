"""Object lifecycle (API concepts: resourceVersion, uid, generation, create/get/update)."""

from __future__ import annotations

import time

import pytest
from kubernetes.client import ApiException

from .conftest import Cluster, unique


def _cm(name: str, data: dict | None = None, labels: dict | None = None) -> dict:
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def _deployment(name: str, image: str = "nginx:1") -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
    }


def test_create_sets_uid_resource_version_and_creation_timestamp(cluster: Cluster, namespace: str) -> None:
    cm = cluster.core.create_namespaced_config_map(namespace, _cm("a"))
    assert cm.metadata.uid and cm.metadata.resource_version and cm.metadata.creation_timestamp
    assert cm.metadata.namespace == namespace
    got = cluster.core.read_namespaced_config_map("a", namespace)
    assert got.metadata.uid == cm.metadata.uid
    assert got.metadata.resource_version == cm.metadata.resource_version


def test_create_takes_namespace_from_the_url(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=_cm("from-url"))
    assert r.status == 201
    assert r.json()["metadata"]["namespace"] == namespace


def test_create_with_mismatched_body_namespace_is_bad_request(cluster: Cluster, namespace: str) -> None:
    body = _cm("x")
    body["metadata"]["namespace"] = "some-other-namespace"
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body)
    assert r.status == 400
    assert r.json()["kind"] == "Status"


def test_create_twice_is_already_exists_409(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, _cm("dup"))
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=_cm("dup"))
    assert r.status == 409
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists" and body["code"] == 409
    assert body["details"]["name"] == "dup" and body["details"]["kind"] == "configmaps"


def test_create_in_missing_namespace_is_not_found(cluster: Cluster) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{unique('missing')}/configmaps", body=_cm("x"))
    assert r.status == 404
    assert r.json()["reason"] == "NotFound"
    assert r.json()["details"]["kind"] == "namespaces"


def test_generate_name_gets_a_random_suffix(cluster: Cluster, namespace: str) -> None:
    body = {"metadata": {"generateName": "gen-"}, "data": {}}
    a = cluster.core.create_namespaced_config_map(namespace, body)
    b = cluster.core.create_namespaced_config_map(namespace, body)
    assert a.metadata.name.startswith("gen-") and len(a.metadata.name) > len("gen-")
    assert a.metadata.name != b.metadata.name


def test_missing_name_is_invalid_422(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={"metadata": {}, "data": {}})
    assert r.status == 422
    assert r.json()["reason"] == "Invalid"


def test_invalid_name_is_invalid_422_with_causes(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=_cm("Not_Valid"))
    assert r.status == 422
    body = r.json()
    assert body["reason"] == "Invalid"
    assert any(c.get("field") == "metadata.name" for c in body["details"]["causes"])


def test_invalid_label_value_is_rejected(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                    body=_cm("x", labels={"app": "x" * 64}))
    assert r.status == 422


def test_get_missing_object_is_not_found_status(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/nope")
    assert r.status == 404
    body = r.json()
    assert body == {**body, "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                    "code": 404}
    assert body["details"]["name"] == "nope"
    assert "not found" in body["message"]


def test_every_write_gets_a_new_resource_version(cluster: Cluster, namespace: str) -> None:
    a = cluster.core.create_namespaced_config_map(namespace, _cm("rv", {"n": "1"}))
    b = cluster.core.patch_namespaced_config_map("rv", namespace, {"data": {"n": "2"}})
    c = cluster.core.patch_namespaced_config_map("rv", namespace, {"data": {"n": "3"}})
    assert len({a.metadata.resource_version, b.metadata.resource_version, c.metadata.resource_version}) == 3


def test_put_with_stale_resource_version_is_conflict_409(cluster: Cluster, namespace: str) -> None:
    first = cluster.core.create_namespaced_config_map(namespace, _cm("occ"))
    cluster.core.patch_namespaced_config_map("occ", namespace, {"data": {"k": "newer"}})
    stale = first.to_dict()
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "occ", "resourceVersion": stale["metadata"]["resource_version"]},
            "data": {"k": "lost-update"}}
    r = cluster.raw("PUT", f"/api/v1/namespaces/{namespace}/configmaps/occ", body=body)
    assert r.status == 409
    assert r.json()["reason"] == "Conflict"
    assert cluster.core.read_namespaced_config_map("occ", namespace).data == {"k": "newer"}


def test_put_with_current_resource_version_succeeds(cluster: Cluster, namespace: str) -> None:
    cur = cluster.core.create_namespaced_config_map(namespace, _cm("put"))
    cur.data = {"k": "replaced"}
    out = cluster.core.replace_namespaced_config_map("put", namespace, cur)
    assert out.data == {"k": "replaced"}
    assert out.metadata.resource_version != cur.metadata.resource_version


def test_put_of_missing_object_is_not_found(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("PUT", f"/api/v1/namespaces/{namespace}/configmaps/ghost", body=_cm("ghost"))
    assert r.status == 404


def test_put_with_name_different_from_url_is_bad_request(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, _cm("n1"))
    r = cluster.raw("PUT", f"/api/v1/namespaces/{namespace}/configmaps/n1", body=_cm("n2"))
    assert r.status == 400


def test_update_without_changes_keeps_resource_version(cluster: Cluster, namespace: str) -> None:
    cur = cluster.core.create_namespaced_config_map(namespace, _cm("same"))
    out = cluster.core.replace_namespaced_config_map("same", namespace, cur)
    assert out.metadata.resource_version == cur.metadata.resource_version


def test_generation_starts_at_one_and_bumps_on_spec_change_only(cluster: Cluster, namespace: str) -> None:
    name = unique("gen")
    d = cluster.apps.create_namespaced_deployment(namespace, _deployment(name))
    assert d.metadata.generation == 1
    d = cluster.apps.patch_namespaced_deployment(name, namespace, {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1, "a metadata-only change must not bump generation"
    d = cluster.apps.patch_namespaced_deployment(name, namespace, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2


def test_uid_is_immutable_through_update(cluster: Cluster, namespace: str) -> None:
    cur = cluster.core.create_namespaced_config_map(namespace, _cm("uid"))
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "uid", "uid": "00000000-0000-0000-0000-000000000000"}, "data": {}}
    r = cluster.raw("PUT", f"/api/v1/namespaces/{namespace}/configmaps/uid", body=body)
    assert r.status == 409
    assert cluster.core.read_namespaced_config_map("uid", namespace).metadata.uid == cur.metadata.uid


def test_cluster_scoped_objects_have_no_namespace(cluster: Cluster) -> None:
    name = unique("ns")
    ns = cluster.core.create_namespace({"metadata": {"name": name}})
    try:
        assert ns.metadata.namespace is None
        assert ns.status.phase == "Active"
    finally:
        cluster.core.delete_namespace(name)


def _appears(cluster: Cluster, path: str, seconds: float = 10.0) -> int:
    """The GET status of ``path``, polled until 200 or ``seconds`` pass (controllers are asynchronous)."""
    deadline = time.monotonic() + seconds
    while True:
        status = cluster.raw("GET", path).status
        if status == 200 or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_every_namespace_gets_a_default_service_account_and_the_root_ca_configmap(
        cluster: Cluster, namespace: str) -> None:
    # kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers.
    assert _appears(cluster, f"/api/v1/namespaces/{namespace}/serviceaccounts/default") == 200
    assert _appears(cluster, f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt") == 200
    cm = cluster.core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    assert cm.data["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    # Also in the namespaces that exist from the start.
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert _appears(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/default") == 200, ns
        assert _appears(cluster, f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt") == 200, ns


def test_secret_type_defaults_to_opaque_and_is_immutable(cluster: Cluster, namespace: str) -> None:
    s = cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "data": {"a": "YQ=="}})
    assert s.type == "Opaque"
    with pytest.raises(ApiException) as exc:
        cluster.core.patch_namespaced_secret("s", namespace, {"type": "kubernetes.io/tls"})
    assert exc.value.status == 422


def test_immutable_configmap_rejects_data_changes(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_config_map(namespace, {"metadata": {"name": "frozen"}, "data": {"a": "1"},
                                                          "immutable": True})
    with pytest.raises(ApiException) as exc:
        cluster.core.patch_namespaced_config_map("frozen", namespace, {"data": {"a": "2"}})
    assert exc.value.status == 422


def test_service_gets_a_cluster_ip_that_cannot_change(cluster: Cluster, namespace: str) -> None:
    svc = cluster.core.create_namespaced_service(namespace, {
        "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}})
    assert svc.spec.cluster_ip
    with pytest.raises(ApiException) as exc:
        cluster.core.patch_namespaced_service("svc", namespace, {"spec": {"clusterIP": "10.96.250.250",
                                                                          "clusterIPs": ["10.96.250.250"]}})
    assert exc.value.status == 422


def test_core_v1_events_can_be_created(cluster: Cluster, namespace: str) -> None:
    ev = cluster.core.create_namespaced_event(namespace, {
        "metadata": {"generateName": "syncer-"},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace, "apiVersion": "v1"},
        "reason": "Synced", "message": "ok", "type": "Normal",
        "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z", "count": 1,
        "source": {"component": "krm-syncer"},
    })
    listed = cluster.core.list_namespaced_event(namespace, field_selector="reason=Synced")
    assert [e.metadata.name for e in listed.items] == [ev.metadata.name]


def _event(name: str, event_time: str, namespace: str) -> dict:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name},
            "eventTime": event_time, "reportingController": "krm-syncer", "reportingInstance": "x",
            "action": "Sync", "reason": "Synced", "type": "Normal",
            "regarding": {"kind": "ConfigMap", "name": "x", "namespace": namespace}}


_EVENTS = "/apis/events.k8s.io/v1/namespaces/{}/events"
_MICRO = "2006-01-02T15:04:05.000000Z07:00"


def test_events_k8s_io_v1_events_can_be_created(cluster: Cluster, namespace: str) -> None:
    # Raw: the official client turns the dict into a model and re-serializes eventTime with
    # isoformat() ("+00:00", no fraction), which kube-apiserver refuses (see the next test).
    r = cluster.raw("POST", _EVENTS.format(namespace), body=_event("e1", "2024-01-01T00:00:00.000000Z", namespace))
    assert r.status == 201, r.body
    assert r.json()["metadata"]["uid"] and r.json()["eventTime"] == "2024-01-01T00:00:00.000000Z"
    # A MicroTime with an offset is stored in UTC.
    r = cluster.raw("POST", _EVENTS.format(namespace), body=_event("e2", "2024-01-01T02:00:00.500000+02:00", namespace))
    assert r.status == 201, r.body
    got = cluster.raw("GET", _EVENTS.format(namespace) + "/e2").json()
    assert got["eventTime"] == "2024-01-01T00:00:00.500000Z"
    assert cluster.events.read_namespaced_event("e1", namespace).reason == "Synced"


def test_the_involved_object_namespace_must_agree_with_the_event(cluster: Cluster, namespace: str) -> None:
    def core(name: str, involved_ns: str | None, **extra: str) -> int:
        ref = {"kind": "ConfigMap", "name": "x", **({"namespace": involved_ns} if involved_ns is not None else {})}
        body = {"metadata": {"name": name}, "involvedObject": ref, "reason": "R", "message": "m", "type": "Normal",
                **extra}
        r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/events", body=body)
        if r.status == 422:
            assert r.json()["details"]["causes"] == [{
                "reason": "FieldValueInvalid", "field": "involvedObject.namespace",
                "message": f'Invalid value: "{involved_ns or ""}": does not match event.namespace'}]
        return r.status

    new_style = {"eventTime": "2024-01-01T00:00:00.000000Z", "reportingComponent": "x", "reportingInstance": "i",
                 "action": "A"}
    # Without an eventTime the namespaces must be equal; with one, only an empty namespace is refused.
    assert core("same", namespace) == 201
    assert core("other", "other") == 422
    assert core("none", None) == 422
    assert core("other-new", "other", **new_style) == 201
    assert core("none-new", None, **new_style) == 422
    # events.k8s.io/v1 has an eventTime; its "regarding" is checked under the core field name.
    body = _event("unplaced", "2024-01-01T00:00:00.000000Z", namespace)
    del body["regarding"]["namespace"]
    r = cluster.raw("POST", _EVENTS.format(namespace), body=body)
    assert r.status == 422 and r.json()["message"] == (
        'Event "unplaced" is invalid: involvedObject.namespace: Invalid value: "": does not match event.namespace')


@pytest.mark.parametrize("value,why", [
    ("2024-01-01T00:00:00+00:00", ' as "{layout}": cannot parse "+00:00" as ".000000"'),
    ("2024-01-01T00:00:00Z", ' as "{layout}": cannot parse "Z" as ".000000"'),
    ("2024-01-01T00:00:00.123Z", ' as "{layout}": cannot parse ".123Z" as ".000000"'),
    ("2024-01-01T00:00:00.1234567Z", ' as "{layout}": cannot parse "7Z" as "Z07:00"'),
    ("2024-13-01T00:00:00.000000Z", ": month out of range"),
    ("2024-02-30T00:00:00.000000Z", ": day out of range"),
])
def test_event_time_must_be_a_micro_time(cluster: Cluster, namespace: str, value: str, why: str) -> None:
    # MicroTime is parsed with Go's layout 2006-01-02T15:04:05.000000Z07:00: exactly six digits.
    r = cluster.raw("POST", _EVENTS.format(namespace), body=_event("bad", value, namespace))
    assert r.status == 400, r.body
    status = r.json()
    assert status["reason"] == "BadRequest"
    assert status["message"] == (f'Event in version "v1" cannot be handled as a Event: parsing time "{value}"'
                                 + why.format(layout=_MICRO))
    assert cluster.raw("GET", _EVENTS.format(namespace) + "/bad").status == 404


def test_micro_times_of_both_event_apis_are_checked(cluster: Cluster, namespace: str) -> None:
    bad = 'parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"'
    core = {"metadata": {"name": "c1"}, "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
            "reason": "R", "message": "m", "type": "Normal", "reportingComponent": "x", "reportingInstance": "i",
            "action": "A"}
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/events", body={**core, "eventTime": "2024-01-01T00:00:00Z"})
    assert r.status == 400 and r.json()["message"] == f'Event in version "v1" cannot be handled as a Event: {bad}'
    # firstTimestamp is a plain Time (RFC 3339, any fraction); series.lastObservedTime is a MicroTime.
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/events",
                    body={**core, "firstTimestamp": "2024-01-01T00:00:00Z",
                          "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:00Z"}})
    assert r.status == 400 and r.json()["message"].endswith(bad)
    # A patch that makes the object undecodable is a 422 on the field "patch".
    assert cluster.raw("POST", _EVENTS.format(namespace), body=_event("p", "2024-01-01T00:00:00.000000Z", namespace)).status == 201
    r = cluster.raw("PATCH", _EVENTS.format(namespace) + "/p", content_type="application/merge-patch+json",
                    body={"series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:00Z"}})
    assert r.status == 422, r.body
    status = r.json()
    assert status["reason"] == "Invalid" and status["message"].startswith(' "" is invalid: patch: Invalid value: ')
    assert status["message"].endswith(bad)
    assert [(c["reason"], c["field"]) for c in status["details"]["causes"]] == [("FieldValueInvalid", "patch")]
    assert "series" not in cluster.raw("GET", _EVENTS.format(namespace) + "/p").json()


def test_objects_near_the_one_megabyte_limit_are_accepted(cluster: Cluster, namespace: str) -> None:
    # etcd's default request limit is 1.5 MiB; a ConfigMap of ~1 MiB must be stored and read back.
    big = "x" * (1024 * 1024 - 4096)
    cluster.core.create_namespaced_config_map(namespace, _cm("big", {"blob": big}))
    assert cluster.core.read_namespaced_config_map("big", namespace).data["blob"] == big


def test_configmap_over_one_mebibyte_is_invalid(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                    body=_cm("toobig", {"blob": "x" * (1024 * 1024 + 10)}))
    assert r.status in (413, 422)
