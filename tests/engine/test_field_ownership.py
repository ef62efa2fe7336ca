"""engine.ownership's field rules, as pure functions: when a create's ownership must move, and how."""

from __future__ import annotations

from typing import Any

from ray_syncer.engine.ownership import claim_patch, leftovers

M = "krm-syncer"


def _obj(entries: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "resourceVersion": "7", "labels": body.pop("labels", {}),
                         "managedFields": entries}, **body}


def _entry(operation: str, fields: dict[str, Any], manager: str = M, **extra: Any) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": fields, **extra}


CREATED = {"f:data": {".": {}, "f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:l": {}}}}


def test_nothing_left_over_when_the_create_holds_only_what_is_still_wanted() -> None:
    obj = _obj([_entry("Update", CREATED), _entry("Apply", CREATED)], data={"a": "1", "b": "2"},
               labels={"l": "x"})
    assert not leftovers(obj, {"data": {"a": "1", "b": "3"}, "metadata": {"labels": {"l": "y"}}},
                         manager=M)


def test_a_key_or_label_the_create_holds_and_no_longer_wanted_is_left_over() -> None:
    obj = _obj([_entry("Update", CREATED)], data={"a": "1", "b": "2"}, labels={"l": "x"})
    assert leftovers(obj, {"data": {"a": "1"}, "metadata": {"labels": {"l": "x"}}}, manager=M)
    assert leftovers(obj, {"data": {"a": "1", "b": "2"}, "metadata": {"labels": {}}}, manager=M)


def test_only_our_own_create_counts() -> None:
    obj = _obj([_entry("Update", CREATED, manager="kubectl"), _entry("Apply", CREATED)],
               data={"a": "1", "b": "2"})
    assert not leftovers(obj, {"data": {"a": "1"}}, manager=M)
    # Gone already: nothing to do.
    obj = _obj([_entry("Update", CREATED)], data={"a": "1"})
    assert not leftovers(obj, {"data": {"a": "1"}, "metadata": {"labels": {}}}, manager=M)


def test_lists_count_when_they_differ() -> None:
    fields = {"f:spec": {"f:ports": {"k:{\"port\":80}": {".": {}, "f:port": {}}}}}
    obj = _obj([_entry("Update", fields)], spec={"ports": [{"port": 80}, {"port": 81}]})
    assert leftovers(obj, {"spec": {"ports": [{"port": 81}]}}, manager=M)
    assert not leftovers(obj, {"spec": {"ports": [{"port": 80}, {"port": 81}]}}, manager=M)


def test_claim_turns_the_create_into_the_apply_entry() -> None:
    other = _entry("Update", {"f:data": {"f:z": {}}}, manager="kubectl")
    status = _entry("Apply", {"f:status": {}}, subresource="status")
    patch = claim_patch(_obj([_entry("Update", CREATED), other, status]), manager=M)
    assert patch is not None
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    entries = patch[1]["value"]
    assert [(e["manager"], e["operation"], e.get("subresource")) for e in entries] == [
        (M, "Apply", None), ("kubectl", "Update", None), (M, "Apply", "status")]
    assert entries[0]["fieldsV1"] == CREATED


def test_claim_merges_into_an_existing_apply_entry() -> None:
    applied = {"f:data": {"f:c": {}}, "f:metadata": {"f:annotations": {"f:h": {}}}}
    patch = claim_patch(_obj([_entry("Update", CREATED), _entry("Apply", applied)]), manager=M)
    assert patch is not None
    (entry,) = patch[1]["value"]
    assert entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {
        "f:data": {"f:c": {}, ".": {}, "f:a": {}, "f:b": {}},
        "f:metadata": {"f:annotations": {"f:h": {}}, "f:labels": {"f:l": {}}},
    }


def test_no_claim_without_a_create_entry() -> None:
    assert claim_patch(_obj([_entry("Apply", CREATED)]), manager=M) is None


def test_a_kind_that_cannot_be_posted_is_created_by_apply() -> None:
    from ray_syncer.engine.applier import Applier
    from ray_syncer.engine.ratelimit import WriteBudget
    from ray_syncer.kube.client import ResourceInfo

    def applier(verbs: frozenset[str]) -> Applier:
        res = ResourceInfo("x.example.com", "v1", "Thing", "things", True, verbs=verbs)
        return Applier(dest=None, res=res, budget=WriteBudget(), field_manager=M,  # type: ignore[arg-type]
                       managed_by="ops.dr")

    assert applier(frozenset({"get", "list", "watch", "create", "patch"})).can_create
    assert not applier(frozenset({"get", "list", "watch", "patch"})).can_create
    assert applier(frozenset()).can_create  # unknown verbs: try the create, 405 would say
