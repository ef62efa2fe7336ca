"""The KRMSyncer models: aliases, defaults, precise errors, server objects, selectors, durations."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest

from ray_syncer.api.formats import format_duration, parse_duration
from ray_syncer.api.models import LabelSelector
from ray_syncer.api.parse import (
    SpecError,
    is_suspended_effectively,
    parse_krmsyncer,
    parse_spec,
    parse_status,
)
from ray_syncer.api.status import Condition, KRMSyncerStatus, ShardStatus, rfc3339
from tests.api.cases import BASE, INVALID, make, matches, spec, to_remote


def _errors(obj: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_krmsyncer(obj)
    return info.value.errors


# --- aliases ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "effective"),
    [
        ({}, False),
        ({"suspend": True}, True),
        ({"suspended": True}, True),
        ({"suspend": False}, False),
        ({"suspended": False}, False),
        ({"suspend": True, "suspended": True}, True),
        ({"suspend": False, "suspended": False}, False),
    ],
)
def test_suspend_and_its_alias(fields: dict[str, Any], effective: bool) -> None:
    syncer = parse_krmsyncer(make(spec(**fields)))
    assert syncer.spec.suspended_effective is effective
    assert is_suspended_effectively(make(spec(**fields))) is effective


@pytest.mark.parametrize(("a", "b"), [(True, False), (False, True)])
def test_disagreeing_aliases_are_invalid_and_stay_suspended(a: bool, b: bool) -> None:
    obj = make(spec(suspend=a, suspended=b))
    errors = _errors(obj)
    assert errors == [
        f"spec.suspended: disagrees with spec.suspend (suspend: {str(a).lower()}, suspended: "
        f"{str(b).lower()}); set only one of them. Until fixed, the syncer stays suspended"
    ]
    assert is_suspended_effectively(obj) is True


def test_invalid_spec_is_effectively_suspended_even_with_suspend_false() -> None:
    obj = make(spec(suspend=False, rules=[]))
    assert is_suspended_effectively(obj) is True
    assert is_suspended_effectively({"spec": "garbage"}) is True
    assert is_suspended_effectively(None) is True
    assert is_suspended_effectively(make(spec(suspend=False))) is False


def test_is_suspended_effectively_accepts_a_bare_spec() -> None:
    assert is_suspended_effectively(copy.deepcopy(BASE["spec"])) is False
    assert is_suspended_effectively({**BASE["spec"], "suspended": True}) is True


def test_destination_and_remote_are_one_field() -> None:
    d = parse_krmsyncer(make(lambda o: None)).spec
    r = parse_krmsyncer(make(to_remote)).spec
    assert d.destination is not None and d.remote is None
    assert r.remote is not None and r.destination is None
    assert d.target == r.target
    assert r.secret_ref.name == "remote-kubeconfig"


def test_both_and_neither_target_are_rejected() -> None:
    both = make(lambda o: o["spec"].update(remote=copy.deepcopy(o["spec"]["destination"])))
    assert _errors(both) == [
        "spec.remote: must not be set together with spec.destination (remote is an alias of "
        "destination); set only one"
    ]
    neither = make(lambda o: o["spec"].pop("destination"))
    assert _errors(neither) == ["spec.destination: is required (or its alias spec.remote)"]


# --- defaults --------------------------------------------------------------


def test_defaults() -> None:
    s = parse_krmsyncer(make(lambda o: None)).spec
    assert (s.mode, s.conflict_policy, s.deletion_policy) == ("push", "Skip", "Delete")
    assert s.resync_period == "10m" and s.resync_period_seconds == 600.0
    assert s.suspend is None and s.suspended is None and s.suspended_effective is False
    assert s.secret_ref.key == "kubeconfig"
    assert s.target.namespace is None
    r = s.rules[0]
    assert (r.include_owned, r.sync_status, r.immutable_policy) == (False, False, "Recreate")
    assert r.label_selector is None and r.selector_string is None
    assert r.sync_fields is None and r.effective_sync_fields is None


def test_sync_fields_semantics() -> None:
    def rule(**f: Any) -> Any:
        return parse_krmsyncer(make(lambda o: o["spec"]["rules"][0].update(f))).spec.rules[0]

    assert rule(syncFields=[]).effective_sync_fields is None  # Go's omitempty: [] == absent
    assert rule(syncFields=["spec"]).effective_sync_fields == ("spec",)
    assert rule(syncFields=["spec"]).effective_sync_status is False
    assert rule(syncFields=["spec", "status"]).effective_sync_status is True
    assert rule(syncStatus=True).effective_sync_status is True


def test_globs() -> None:
    def rule(**f: Any) -> Any:
        return parse_krmsyncer(make(lambda o: o["spec"]["rules"][0].update(f))).spec.rules[0]

    assert rule().is_glob is False
    g = rule(group="*.cnrm.cloud.google.com", version="*", kind="*")
    assert g.is_glob is True
    assert g.gvk == "*.cnrm.cloud.google.com/*/*"
    assert rule().gvk == "v1/ConfigMap"


# --- precise errors --------------------------------------------------------


@pytest.mark.parametrize(("name", "edit", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_error_message_is_precise(name: str, edit: Any, message: str) -> None:
    errors = _errors(make(edit))
    assert any(matches(e, message) for e in errors), errors


def test_all_problems_are_reported_at_once_and_str_joins_them() -> None:
    obj = make(
        lambda o: o["spec"].update(
            suspend=True,
            suspended=False,
            mode="sideways",
            rules=[
                {"group": "", "version": "v1", "kind": "ConfigMap"},
                {"group": "", "version": "v1", "kind": ""},
            ],
        )
    )
    with pytest.raises(SpecError) as info:
        parse_krmsyncer(obj)
    assert info.value.errors == [
        "spec.suspended: disagrees with spec.suspend (suspend: true, suspended: false); set only "
        "one of them. Until fixed, the syncer stays suspended",
        "spec.mode: must be one of push or pull, got 'sideways'",
        "spec.rules[1].kind: must not be empty",
    ]
    assert str(info.value) == "; ".join(info.value.errors)


def test_unknown_field_lists_the_allowed_ones_when_nothing_is_close() -> None:
    errors = _errors(make(lambda o: o["spec"]["rules"][0].update(zzz=1)))
    assert errors[0].startswith("spec.rules[0].zzz: unknown field (allowed: group, version, kind,")


def test_wrong_object_kind_and_version() -> None:
    errors = _errors({**make(lambda o: None), "apiVersion": "etl.gkelabs.io/v1alpha1"})
    assert errors == [
        "apiVersion: must be syncer.gkelabs.io/v1alpha1, got 'etl.gkelabs.io/v1alpha1'"
    ]
    assert _errors({**make(lambda o: None), "kind": "Syncer"}) == [
        "kind: must be KRMSyncer, got 'Syncer'"
    ]
    assert _errors(make(lambda o: o["metadata"].pop("name"))) == ["metadata.name: is required"]
    assert _errors("text") == ["object: must be a mapping, got 'text'"]


def test_long_values_are_truncated_in_messages() -> None:
    errors = _errors(make(spec(mode="x" * 500)))
    assert len(errors[0]) < 120 and errors[0].endswith("...")


# --- objects read from a cluster --------------------------------------------

SERVER_OBJECT: dict[str, Any] = {
    "apiVersion": "syncer.gkelabs.io/v1alpha1",
    "kind": "KRMSyncer",
    "metadata": {
        "name": "configmap-sync",
        "namespace": "default",
        "uid": "0b7f2a3c-1111-2222-3333-444455556666",
        "resourceVersion": "123456",
        "generation": 3,
        "creationTimestamp": "2026-11-26T10:00:00Z",
        "labels": {"team": "dr"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
        "managedFields": [
            {"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {}}
        ],
        "finalizers": ["example.com/x"],
        "selfLink": "/apis/syncer.gkelabs.io/v1alpha1/namespaces/default/krmsyncers/configmap-sync",
    },
    "spec": {
        "suspend": False,
        "mode": "push",
        "conflictPolicy": "Skip",
        "deletionPolicy": "Delete",
        "resyncPeriod": "10m",
        "rules": [
            {
                "group": "",
                "version": "v1",
                "kind": "ConfigMap",
                "namespaces": ["default"],
                "includeOwned": False,
                "syncStatus": False,
                "immutablePolicy": "Recreate",
            }
        ],
        "destination": {
            "clusterConfig": {
                "kubeConfigSecretRef": {"name": "remote-kubeconfig", "key": "kubeconfig"}
            }
        },
    },
    "status": {
        "observedGeneration": 2,
        "objects": 7,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Running",
                "message": "1 shard running",
                "lastTransitionTime": "2026-11-26T10:00:05Z",
                "observedGeneration": 2,
            }
        ],
        "shards": [
            {
                "name": "default/configmap-sync/core/ConfigMap/default",
                "state": "Syncing",
                "objects": 7,
                "lagSeconds": 0.2,
                "lastSyncTime": "2026-11-26T10:00:06Z",
            }
        ],
        "someFieldFromANewerOperator": {"x": 1},
    },
}


def test_server_object_parses_and_server_metadata_is_ignored() -> None:
    syncer = parse_krmsyncer(SERVER_OBJECT)
    assert syncer.key == "default/configmap-sync"
    assert syncer.metadata.generation == 3
    assert syncer.metadata.uid == "0b7f2a3c-1111-2222-3333-444455556666"
    assert not hasattr(syncer.metadata, "managed_fields")
    assert syncer.status is not None
    assert syncer.status.objects == 7
    ready = syncer.status.condition("Ready")
    assert ready is not None and ready.status == "True"
    assert syncer.status.shards[0].lag_seconds == 0.2


def test_broken_status_never_invalidates_the_spec() -> None:
    obj = copy.deepcopy(SERVER_OBJECT)
    obj["status"] = {"conditions": [{"type": 5}], "objects": "many"}
    syncer = parse_krmsyncer(obj)
    assert syncer.status is None
    assert parse_status("nonsense") is None


def test_namespace_defaults_for_files_without_one() -> None:
    syncer = parse_krmsyncer(make(lambda o: o["metadata"].pop("namespace")))
    assert syncer.metadata.namespace is None
    assert syncer.namespace == "default"


# --- immutability ------------------------------------------------------------


def test_models_are_frozen() -> None:
    syncer = parse_krmsyncer(make(lambda o: None))
    with pytest.raises(pydantic.ValidationError):
        syncer.spec.mode = "pull"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        syncer.spec.rules[0].kind = "Secret"  # type: ignore[misc]
    assert isinstance(syncer.spec.rules, tuple)


def test_spec_models_take_wire_names_only() -> None:
    """A snake_case key would be pruned by the API server; the models refuse it too."""
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE["spec"], "conflict_policy": "Adopt"})
    assert info.value.errors == [
        "spec.conflict_policy: unknown field (did you mean 'conflictPolicy'?)"
    ]


# --- label selectors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "rendered"),
    [
        ({}, ""),
        ({"matchLabels": {"a": "b"}}, "a=b"),
        ({"matchLabels": {"z": "1", "a": ""}}, "a=,z=1"),
        (
            {
                "matchLabels": {"a": "b"},
                "matchExpressions": [
                    {"key": "c", "operator": "In", "values": ["e", "d"]},
                    {"key": "f", "operator": "DoesNotExist"},
                ],
            },
            "a=b,c in (d,e),!f",
        ),
        (
            {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["b", "a", "b"]}]},
            "x notin (a,b)",
        ),
        ({"matchExpressions": [{"key": "example.com/x", "operator": "Exists"}]}, "example.com/x"),
    ],
)
def test_label_selector_renders_in_the_api_string_form(
    selector: dict[str, Any], rendered: str
) -> None:
    assert LabelSelector.model_validate(selector).render() == rendered


def test_empty_selector_means_no_filter_on_the_rule() -> None:
    syncer = parse_krmsyncer(make(lambda o: o["spec"]["rules"][0].update(labelSelector={})))
    assert syncer.spec.rules[0].selector_string is None


# --- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", 600),
        ("1h30m", 5400),
        ("90s", 90),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("1m0.5s", 60.5),
        ("2h", 7200),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "-1s", "+1s", "1d", "1 m", "m", "1.s", "10M", "1h 30m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for seconds in (1, 59, 60, 90, 600, 3600, 5400, 86400):
        assert parse_duration(format_duration(seconds)) == seconds


# --- status models -------------------------------------------------------------


def test_status_models_build_by_name_and_serialise_to_the_wire_form() -> None:
    cond = Condition(
        type="Ready",
        status="False",
        reason="InvalidSpec",
        message="spec.rules: ...",
        last_transition_time=rfc3339(0),
        observed_generation=4,
    )
    status = KRMSyncerStatus(
        observed_generation=4,
        conditions=(cond,),
        objects=2,
        shards=(
            ShardStatus(
                name="ns/s/core/ConfigMap/_all", state="Syncing", objects=2, lag_seconds=1.5
            ),
        ),
    )
    wire = status.to_api()
    assert wire["conditions"][0] == {
        "type": "Ready",
        "status": "False",
        "reason": "InvalidSpec",
        "message": "spec.rules: ...",
        "lastTransitionTime": "1970-01-01T00:00:00Z",
        "observedGeneration": 4,
    }
    assert wire["shards"][0]["lagSeconds"] == 1.5
    assert KRMSyncerStatus.model_validate(wire) == status


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "Maybe"},
        {"reason": "has spaces"},
        {"reason": ""},
        {"last_transition_time": "yesterday"},
        {"type": "Bad Type"},
        {"observed_generation": -1},
    ],
)
def test_condition_rejects_what_the_api_server_would(bad: dict[str, Any]) -> None:
    base = {"type": "Ready", "status": "True", "reason": "Ok", "last_transition_time": rfc3339(0)}
    with pytest.raises(pydantic.ValidationError):
        Condition(**{**base, **bad})
