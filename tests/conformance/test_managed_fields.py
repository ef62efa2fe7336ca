"""``metadata.managedFields`` set explicitly by a non-apply write (POST, PUT, patches).

kube-apiserver's FieldManager.Update takes the managedFields a write carries as the base of
field tracking when they decode (else the stored ones), then gives the fields the write
changed to the writing manager; ``[{}]`` clears them ("Clearing managedFields" in the
Server-Side Apply documentation). This is how an Update entry is turned into an Apply entry
(kubectl's csaupgrade does it), which ray-syncer relies on after creating an object with
POST: later applies by the same manager then own those fields, and a field dropped from the
applied configuration is removed from the object.
"""

from __future__ import annotations

from typing import Any

from .conftest import Cluster, Response

APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"
MANAGER = "krm-syncer"


def _path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


def _create(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"l": "1"}},
            "data": {"a": "1", "b": "2"}}
    r = cluster.raw("POST", _path(namespace) + f"?fieldManager={MANAGER}", body=body)
    assert r.status == 201, r.body
    obj: dict[str, Any] = r.json()
    return obj


def _apply(cluster: Cluster, namespace: str, name: str, data: dict[str, str], *, manager: str = MANAGER,
           force: bool = True) -> Response:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    q = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return cluster.raw("PATCH", _path(namespace, name) + q, body=body, content_type=APPLY)


def _claim(cluster: Cluster, namespace: str, name: str, resource_version: str) -> Response:
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
           {"op": "test", "path": "/metadata/managedFields/0/manager", "value": MANAGER},
           {"op": "test", "path": "/metadata/managedFields/0/operation", "value": "Update"},
           {"op": "replace", "path": "/metadata/managedFields/0/operation", "value": "Apply"}]
    return cluster.raw("PATCH", _path(namespace, name) + f"?fieldManager={MANAGER}", body=ops,
                       content_type=JSON_PATCH)


def _get(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    r = cluster.raw("GET", _path(namespace, name))
    assert r.status == 200, r.body
    obj: dict[str, Any] = r.json()
    return obj


def _owners(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e.get("manager", ""), e["operation"]) for e in obj["metadata"].get("managedFields") or []]


def _leaves(fields: dict[str, Any], prefix: str = "") -> set[str]:
    """The leaf paths of a fieldsV1 set ("." members of inner nodes left out: the in-memory
    server does not keep them, see docs/test-server.md)."""
    out: set[str] = set()
    for k, v in fields.items():
        if k == ".":
            continue
        children = {kk: vv for kk, vv in v.items() if kk != "."}
        out |= _leaves(children, f"{prefix}/{k}") if children else {f"{prefix}/{k}"}
    return out


def _entry(manager: str, operation: str, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": fields, **extra}


def _put_managed_fields(cluster: Cluster, namespace: str, obj: dict[str, Any], managed: Any,
                        *, data: dict[str, str] | None = None) -> Response:
    body = {**obj, "metadata": {**obj["metadata"], "managedFields": managed}}
    if data is not None:
        body["data"] = data
    return cluster.raw("PUT", _path(namespace, obj["metadata"]["name"]) + f"?fieldManager={MANAGER}", body=body)


def test_post_records_an_update_entry_for_the_field_manager(cluster: Cluster, namespace: str) -> None:
    obj = _create(cluster, namespace, "post")
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        MANAGER, "Update", "v1", "FieldsV1")
    assert entry["time"]
    assert _leaves(entry["fieldsV1"]) == {"/f:data/f:a", "/f:data/f:b", "/f:metadata/f:labels/f:l"}


def test_claiming_the_update_entry_as_apply_lets_a_later_apply_remove_dropped_fields(
        cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "claimed")
    rv = created["metadata"]["resourceVersion"]

    r = _claim(cluster, namespace, "claimed", rv)
    assert r.status == 200, r.body
    claimed = r.json()
    # Only managedFields changed, and that is a real write: a new resourceVersion.
    assert claimed["metadata"]["resourceVersion"] != rv
    assert _owners(claimed) == [(MANAGER, "Apply")]
    assert _leaves(claimed["metadata"]["managedFields"][0]["fieldsV1"]) == _leaves(
        created["metadata"]["managedFields"][0]["fieldsV1"])
    assert claimed["data"] == {"a": "1", "b": "2"} and claimed["metadata"]["labels"] == {"l": "1"}
    assert _owners(_get(cluster, namespace, "claimed")) == [(MANAGER, "Apply")]

    # The manager now owns data.b and the label through its Apply entry: applying a
    # configuration without them removes them.
    r = _apply(cluster, namespace, "claimed", {"a": "1"})
    assert r.status == 200, r.body
    obj = r.json()
    assert obj["data"] == {"a": "1"}
    assert "labels" not in obj["metadata"]
    assert _owners(obj) == [(MANAGER, "Apply")]
    assert _leaves(obj["metadata"]["managedFields"][0]["fieldsV1"]) == {"/f:data/f:a"}


def test_without_the_claim_a_field_dropped_from_the_apply_stays(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, "unclaimed")
    r = _apply(cluster, namespace, "unclaimed", {"a": "1"})
    assert r.status == 200, r.body
    obj = r.json()
    # data.b and the label still belong to the Update entry of the same manager.
    assert obj["data"] == {"a": "1", "b": "2"}
    assert obj["metadata"]["labels"] == {"l": "1"}
    assert _owners(obj) == [(MANAGER, "Apply"), (MANAGER, "Update")]
    update = obj["metadata"]["managedFields"][1]
    assert {"/f:data/f:b", "/f:metadata/f:labels/f:l"} <= _leaves(update["fieldsV1"])


def test_a_stale_claim_is_422_and_changes_nothing(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "stale")
    rv = created["metadata"]["resourceVersion"]
    cluster.raw("PATCH", _path(namespace, "stale") + "?fieldManager=editor", body={"data": {"c": "3"}},
                content_type=MERGE)
    before = _get(cluster, namespace, "stale")

    r = _claim(cluster, namespace, "stale", rv)
    assert r.status == 422, r.body
    status = r.json()
    # kube-apiserver does not say which operation of a JSON patch failed.
    assert status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"] == {}
    after = _get(cluster, namespace, "stale")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["managedFields"] == before["metadata"]["managedFields"]
    assert sorted(_owners(after)) == [("editor", "Update"), (MANAGER, "Update")]


def test_a_single_empty_entry_clears_managed_fields(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "cleared")
    rv = created["metadata"]["resourceVersion"]
    r = cluster.raw("PATCH", _path(namespace, "cleared") + f"?fieldManager={MANAGER}",
                    body={"metadata": {"managedFields": [{}]}}, content_type=MERGE)
    assert r.status == 200, r.body
    cleared = r.json()
    assert "managedFields" not in cleared["metadata"]
    assert cleared["metadata"]["resourceVersion"] != rv
    assert "managedFields" not in _get(cluster, namespace, "cleared")["metadata"]

    # Nothing left to clear: the same patch again is a no-op.
    r = cluster.raw("PATCH", _path(namespace, "cleared") + f"?fieldManager={MANAGER}",
                    body={"metadata": {"managedFields": [{}]}}, content_type=MERGE)
    assert r.status == 200, r.body
    assert r.json()["metadata"]["resourceVersion"] == cleared["metadata"]["resourceVersion"]

    # An object nobody manages stays so through updates (kube-apiserver skips tracking them)...
    r = cluster.raw("PATCH", _path(namespace, "cleared") + "?fieldManager=editor", body={"data": {"c": "3"}},
                    content_type=MERGE)
    assert r.status == 200, r.body
    assert "managedFields" not in r.json()["metadata"]

    # ...until the next apply, which first gives every existing field to "before-first-apply".
    r = _apply(cluster, namespace, "cleared", {"a": "1"}, manager="applier", force=False)
    assert r.status == 200, r.body
    obj = r.json()
    assert _owners(obj) == [("applier", "Apply"), ("before-first-apply", "Update")]
    before_first = obj["metadata"]["managedFields"][1]
    assert _leaves(before_first["fieldsV1"]) == {
        "/f:data/f:a", "/f:data/f:b", "/f:data/f:c", "/f:metadata/f:labels/f:l"}
    # The apply changed nothing in the object, so its entry has no time (kube-apiserver
    # stamps an entry only when the apply changes the object).
    assert "time" not in obj["metadata"]["managedFields"][0]


def test_an_empty_list_also_clears_them_on_a_built_in_kind(cluster: Cluster, namespace: str) -> None:
    # The documentation says only [{}] clears; on built-in kinds (typed decoding keeps the
    # empty list) kube-apiserver clears on [] as well.
    created = _create(cluster, namespace, "emptylist")
    r = _put_managed_fields(cluster, namespace, created, [])
    assert r.status == 200, r.body
    assert "managedFields" not in r.json()["metadata"]
    assert r.json()["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]


def test_absent_or_null_managed_fields_keep_the_stored_ones(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "kept")
    rv = created["metadata"]["resourceVersion"]
    body = {**created, "metadata": {k: v for k, v in created["metadata"].items() if k != "managedFields"}}
    r = cluster.raw("PUT", _path(namespace, "kept") + f"?fieldManager={MANAGER}", body=body)
    assert r.status == 200, r.body
    assert r.json()["metadata"]["resourceVersion"] == rv
    assert r.json()["metadata"]["managedFields"] == created["metadata"]["managedFields"]
    r = cluster.raw("PATCH", _path(namespace, "kept") + f"?fieldManager={MANAGER}",
                    body={"metadata": {"managedFields": None}}, content_type=MERGE)
    assert r.status == 200, r.body
    assert r.json()["metadata"]["resourceVersion"] == rv
    assert r.json()["metadata"]["managedFields"] == created["metadata"]["managedFields"]


def test_explicit_managed_fields_are_stored_as_given_and_sorted(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "given")
    given = [
        _entry("zeta", "Update", {"f:data": {"f:b": {}}}, time="2020-01-01T00:00:00Z"),
        _entry("late", "Apply", {"f:data": {"f:a": {}}}, time="2022-01-01T00:00:00Z"),
        _entry("b-early", "Apply", {"f:metadata": {"f:labels": {"f:l": {}}}},
               time="2021-01-01T00:00:00+02:00"),
        _entry("a-early", "Apply", {"f:data": {"f:a": {}}}, time="2021-01-01T00:00:00.5Z"),
        _entry("no-time", "Apply", {"f:data": {"f:zz": {}}}),  # a field the object does not have
    ]
    r = _put_managed_fields(cluster, namespace, created, given)
    assert r.status == 200, r.body
    obj = r.json()
    assert obj["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    # Sorted as kube-apiserver encodes them: operation, then time (none first), then manager;
    # times normalized to UTC seconds.
    assert [(e["manager"], e.get("time")) for e in obj["metadata"]["managedFields"]] == [
        ("no-time", None), ("b-early", "2020-12-31T22:00:00Z"), ("a-early", "2021-01-01T00:00:00Z"),
        ("late", "2022-01-01T00:00:00Z"), ("zeta", "2020-01-01T00:00:00Z")]
    assert {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]} == {
        e["manager"]: e["fieldsV1"] for e in given}
    assert _get(cluster, namespace, "given")["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_a_write_with_explicit_managed_fields_takes_the_fields_it_changes(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "taken")
    given = [_entry("other", "Apply", {"f:data": {"f:a": {}, "f:b": {}}}, time="2020-01-01T00:00:00Z"),
             _entry("gone", "Update", {"f:data": {"f:b": {}}}, time="2020-01-01T00:00:00Z")]
    r = _put_managed_fields(cluster, namespace, created, given, data={"a": "1", "b": "changed", "c": "3"})
    assert r.status == 200, r.body
    entries = {e["manager"]: e for e in r.json()["metadata"]["managedFields"]}
    # The entries given replace the stored ones (the POST's own entry is gone); the writer
    # gets what it changed, which the others lose; an entry left with nothing disappears.
    assert set(entries) == {"other", MANAGER}
    assert entries["other"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert entries["other"]["time"] == "2020-01-01T00:00:00Z"
    assert entries[MANAGER]["operation"] == "Update"
    assert _leaves(entries[MANAGER]["fieldsV1"]) == {"/f:data/f:b", "/f:data/f:c"}


def test_managed_fields_that_do_not_decode_fall_back_to_the_stored_ones(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "fallback")
    rv = created["metadata"]["resourceVersion"]
    for managed in ([_entry("x", "Bogus", {"f:data": {"f:a": {}}})],
                    [{"manager": "x", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {}}],
                    [_entry("x", "Apply", {"f:data": {"f:a": {}}}, fieldsType="FieldsV2")],
                    [_entry("x", "Apply", {"f:data": {"f:a": 1}})],
                    [_entry("x", "Apply", {"f:data": {"k:[1]": {}}})],
                    [{}, {}]):
        r = _put_managed_fields(cluster, namespace, created, managed)
        assert r.status == 200, (managed, r.body)
        assert r.json()["metadata"]["resourceVersion"] == rv, managed
        assert r.json()["metadata"]["managedFields"] == created["metadata"]["managedFields"], managed


def test_managed_fields_with_wrong_types_or_a_bad_time_are_refused(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "types")
    cannot = 'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
    for managed, why in [
        ("x", "json: cannot unmarshal string into Go struct field ObjectMeta.metadata.managedFields "
              "of type []v1.ManagedFieldsEntry"),
        ([5], "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.managedFields "
              "of type v1.ManagedFieldsEntry"),
        ([_entry("x", 5, {})], "json: cannot unmarshal number into Go struct field "
                               "ManagedFieldsEntry.metadata.managedFields.operation of type "
                               "v1.ManagedFieldsOperationType"),
        ([_entry("x", "Apply", {}, time="bogus")],
         'parsing time "bogus" as "2006-01-02T15:04:05Z07:00": cannot parse "bogus" as "2006"'),
    ]:
        r = _put_managed_fields(cluster, namespace, created, managed)
        assert r.status == 400, (managed, r.body)
        assert r.json()["reason"] == "BadRequest"
        assert r.json()["message"] == cannot + why
    r = cluster.raw("PATCH", _path(namespace, "types"), body={"metadata": {"managedFields": "x"}},
                    content_type=MERGE)
    assert r.status == 422, r.body
    assert r.json()["details"]["causes"][0]["field"] == "patch"
    assert _get(cluster, namespace, "types")["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_a_manager_name_longer_than_128_bytes_is_invalid(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "long")
    r = _put_managed_fields(cluster, namespace, created, [_entry("m" * 129, "Apply", {"f:data": {"f:a": {}}})])
    assert r.status == 422, r.body
    status = r.json()
    assert status["message"] == ('ConfigMap "long" is invalid: metadata.managedFields[0].manager: '
                                 "Too long: may not be more than 128 bytes")
    # kube-apiserver repeats the cause once per validator that runs it; the in-memory server lists it once.
    assert {(c["reason"], c["field"], c["message"]) for c in status["details"]["causes"]} == {
        ("FieldValueTooLong", "metadata.managedFields[0].manager", "Too long: may not be more than 128 bytes")}
    # The fieldManager option is held to the same rule.
    r = cluster.raw("POST", _path(namespace) + "?fieldManager=" + "q" * 129, body={"metadata": {"name": "q"}})
    assert r.status == 422, r.body
    assert r.json()["message"] == ('CreateOptions.meta.k8s.io "" is invalid: fieldManager: '
                                   "Too long: may not be more than 128 bytes")


def test_apply_refuses_a_body_with_managed_fields(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, "applymf")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applymf", "managedFields": [{}]},
            "data": {"a": "1"}}
    r = cluster.raw("PATCH", _path(namespace, "applymf") + "?fieldManager=a", body=body, content_type=APPLY)
    assert r.status == 400, r.body
    assert r.json()["message"] == "metadata.managedFields must be nil"


def test_a_status_write_ignores_the_managed_fields_it_carries(cluster: Cluster, namespace: str) -> None:
    r = cluster.raw("GET", f"/api/v1/namespaces/{namespace}")
    ns = r.json()
    body = {**ns, "metadata": {**ns["metadata"], "managedFields": [{}]}}
    r = cluster.raw("PUT", f"/api/v1/namespaces/{namespace}/status?fieldManager=st", body=body)
    assert r.status == 200, r.body
    assert r.json()["metadata"]["resourceVersion"] == ns["metadata"]["resourceVersion"]
    assert r.json()["metadata"]["managedFields"] == ns["metadata"]["managedFields"]
