"""The CRD and the models are two views of one truth (docs/design.md §2).

Every example manifest and a table of valid and invalid KRMSyncers must be
accepted or rejected the same way by ``parse_krmsyncer`` and by the CRD schema
as an API server applies it (``crd_schema.CrdValidator``: prune nulls, default,
OpenAPI validation, CEL). Accepted objects must also come out the same: the
server-defaulted spec equals the model's serialised spec, so the two sides
agree on every default. The field names, enums, defaults and patterns of the
two are compared structurally.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ray_syncer.api import formats, models
from ray_syncer.api.crd import openapi_schema
from ray_syncer.api.models import KRMSyncer
from ray_syncer.api.parse import SpecError, parse_krmsyncer
from tests.api.cases import EXAMPLES, INVALID, MODEL_ONLY, VALID, make, matches
from tests.api.crd_schema import CrdValidator, cel_rules

CRD = CrdValidator()


def _model_verdict(obj: Any) -> tuple[KRMSyncer | None, list[str]]:
    try:
        return parse_krmsyncer(obj), []
    except SpecError as exc:
        return None, exc.errors


def _assert_same_result(obj: dict[str, Any]) -> None:
    stored, crd_errors = CRD.admit(obj)
    model, model_errors = _model_verdict(obj)
    assert (stored is None) == (model is None), (
        f"CRD {'rejects' if stored is None else 'accepts'} but models "
        f"{'reject' if model is None else 'accept'}:\n CRD: {crd_errors}\n models: {model_errors}"
    )
    if stored is not None and model is not None:
        # Same defaults: what the server stores is what the operator works from.
        assert model.spec.to_api() == stored["spec"]


def _example_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in EXAMPLES:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") == "KRMSyncer":
                out.append((f"{path.name}#{i}", doc))
    return out


EXAMPLE_DOCS = _example_docs()


def test_the_examples_cover_both_seed_forms() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"krmsyncer-usage.yaml", "kubeconfig-secret.yaml"} <= names
    specs = [doc["spec"] for _, doc in EXAMPLE_DOCS]
    assert any("suspended" in s and "destination" in s for s in specs)  # the documented form
    assert any("suspend" in s for s in specs)  # the usage example
    assert any(s.get("mode") == "pull" for s in specs)
    assert any("*" in r["kind"] and "syncFields" in r for s in specs for r in s["rules"])


@pytest.mark.parametrize(("name", "doc"), EXAMPLE_DOCS, ids=[n for n, _ in EXAMPLE_DOCS])
def test_examples_are_accepted_by_both(name: str, doc: dict[str, Any]) -> None:
    stored, errors = CRD.admit(doc)
    assert errors == []
    assert stored is not None
    _assert_same_result(doc)


@pytest.mark.parametrize(("name", "edit"), VALID, ids=[c[0] for c in VALID])
def test_valid_cases_are_accepted_by_both(name: str, edit: Any) -> None:
    obj = make(edit)
    assert CRD.admit(obj)[1] == []
    _assert_same_result(obj)


@pytest.mark.parametrize(("name", "edit", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_cases_are_rejected_by_both(name: str, edit: Any, message: str) -> None:
    obj = make(edit)
    _, crd_errors = CRD.admit(obj)
    model, model_errors = _model_verdict(obj)
    assert crd_errors, "the CRD accepts it"
    assert model is None, "the models accept it"
    assert any(matches(m, message) for m in model_errors), model_errors


@pytest.mark.parametrize(("name", "edit", "message"), MODEL_ONLY, ids=[c[0] for c in MODEL_ONLY])
def test_model_only_rules_are_the_documented_exceptions(name: str, edit: Any, message: str) -> None:
    """If the CRD learns to check one of these, move it to INVALID."""
    obj = make(edit)
    assert CRD.admit(obj)[1] == []
    model, model_errors = _model_verdict(obj)
    assert model is None
    assert any(matches(m, message) for m in model_errors), model_errors


def test_every_cel_rule_is_exercised_by_a_rejected_case() -> None:
    schema = openapi_schema()
    messages: dict[str, str] = {}

    def collect(node: dict[str, Any]) -> None:
        for v in node.get("x-kubernetes-validations", []):
            messages[v["rule"]] = v["message"]
        for sub in [
            *list(node.get("properties", {}).values()),
            node.get("items"),
            node.get("additionalProperties"),
        ]:
            if isinstance(sub, dict):
                collect(sub)

    collect(schema)
    assert set(messages) == set(cel_rules(schema))
    rejected: list[str] = []
    for _, edit, _ in INVALID:
        rejected += CRD.admit(make(edit))[1]
    for rule, message in messages.items():
        assert any(message in e for e in rejected), f"no invalid case trips CEL rule {rule!r}"


# ---------------------------------------------------------------------------
# Structural comparison: names, required fields, enums, defaults.
# ---------------------------------------------------------------------------


def _unwrap(annotation: Any) -> tuple[str, Any]:
    """('model', cls) | ('list', inner) | ('map', inner) | ('literal', values) | ('scalar', t)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
        return "scalar", annotation  # e.g. StrictFloat | StrictInt
    if origin is tuple:
        return "list", get_args(annotation)[0]
    if origin is dict:
        return "map", get_args(annotation)[1]
    if origin is Literal:
        return "literal", get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "scalar", annotation


def _compare(
    model: type[BaseModel], schema: dict[str, Any], path: str, problems: list[str]
) -> None:
    spec_side = issubclass(model, models._SpecModel)
    fields = {(f.alias or n): f for n, f in model.model_fields.items()}
    props = schema.get("properties", {})
    for name in sorted(set(fields) - set(props)):
        problems.append(f"{path}.{name}: in the models, not in the CRD")
    for name in sorted(set(props) - set(fields)):
        problems.append(f"{path}.{name}: in the CRD, not in the models")
    required = set(schema.get("required", []))
    for name, field in fields.items():
        if name not in props:
            continue
        sub = props[name]
        where = f"{path}.{name}"
        if spec_side and field.is_required() != (name in required):
            problems.append(
                f"{where}: required in {'models' if field.is_required() else 'CRD'} only"
            )
        if not spec_side and name in required and not field.is_required() and field.default is None:
            problems.append(f"{where}: required in the CRD, optional without default in the models")
        if "default" in sub and field.default != sub["default"]:
            problems.append(
                f"{where}: default {field.default!r} in models, {sub['default']!r} in CRD"
            )
        if (
            spec_side
            and "default" not in sub
            and field.default not in (None, typing.Any)
            and not field.is_required()
        ):
            problems.append(f"{where}: models default {field.default!r}, the CRD has none")
        kind, inner = _unwrap(field.annotation)
        if kind == "list":
            if sub.get("type") != "array":
                problems.append(f"{where}: a list in the models, {sub.get('type')} in the CRD")
                continue
            sub = sub["items"]
            kind, inner = _unwrap(inner)
        if kind == "map":
            if not isinstance(sub.get("additionalProperties"), dict):
                problems.append(f"{where}: a map in the models, not in the CRD")
            continue
        if kind == "literal" and list(inner) != sub.get("enum"):
            problems.append(f"{where}: enum {list(inner)} in models, {sub.get('enum')} in CRD")
        if kind == "model" and name != "metadata":
            _compare(inner, sub, where, problems)


def test_models_and_crd_have_the_same_fields_enums_and_defaults() -> None:
    problems: list[str] = []
    _compare(KRMSyncer, openapi_schema(), "", problems)
    assert problems == []


def test_structural_comparison_catches_a_missing_field() -> None:
    """The comparison itself can fail: drop ``suspended`` from a copy of the CRD."""
    schema = openapi_schema()
    del schema["properties"]["spec"]["properties"]["suspended"]
    problems: list[str] = []
    _compare(KRMSyncer, schema, "", problems)
    assert problems == [".spec.suspended: in the models, not in the CRD"]
    # ...and the admission side notices too: a documented-form manifest is now rejected.
    mutated = CrdValidator(schema)
    doc = next(d for n, d in EXAMPLE_DOCS if n.startswith("krmsyncer-documented"))
    assert mutated.admit(doc)[1] != []


SPEC = ["properties", "spec", "properties"]
RULE = [*SPEC, "rules", "items", "properties"]
REF = [
    *SPEC,
    "destination",
    "properties",
    "clusterConfig",
    "properties",
    "kubeConfigSecretRef",
    "properties",
]
SEL = [*RULE, "labelSelector", "properties"]
PATTERNS = [
    ([*RULE, "group"], formats.GROUP_GLOB_RE, formats.GROUP_MAX),
    ([*RULE, "version"], formats.VERSION_GLOB_RE, formats.VERSION_MAX),
    ([*RULE, "kind"], formats.KIND_GLOB_RE, formats.KIND_MAX),
    ([*RULE, "namespaces", "items"], formats.DNS_LABEL_RE, formats.DNS_LABEL_MAX),
    ([*RULE, "syncFields", "items"], formats.FIELD_PATH_RE, formats.FIELD_PATH_MAX),
    ([*REF, "name"], formats.DNS_SUBDOMAIN_RE, formats.DNS_SUBDOMAIN_MAX),
    ([*REF, "key"], formats.SECRET_KEY_RE, formats.SECRET_KEY_MAX),
    ([*REF, "namespace"], formats.DNS_LABEL_RE, formats.DNS_LABEL_MAX),
    ([*SPEC, "destination", "properties", "namespace"], formats.DNS_LABEL_RE, formats.DNS_LABEL_MAX),
    ([*SPEC, "remote", "properties", "namespace"], formats.DNS_LABEL_RE, formats.DNS_LABEL_MAX),
    ([*SPEC, "resyncPeriod"], formats.DURATION_RE, formats.DURATION_MAX),
    ([*SEL, "matchLabels", "additionalProperties"], formats.LABEL_VALUE_RE, formats.LABEL_VALUE_MAX),
    (
        [*SEL, "matchExpressions", "items", "properties", "key"],
        formats.LABEL_KEY_RE,
        formats.LABEL_KEY_MAX,
    ),
    (
        [*SEL, "matchExpressions", "items", "properties", "values", "items"],
        formats.LABEL_VALUE_RE,
        formats.LABEL_VALUE_MAX,
    ),
]


@pytest.mark.parametrize(
    ("path", "pattern", "max_len"), PATTERNS, ids=["/".join(p[0][-3:]) for p in PATTERNS]
)
def test_patterns_and_lengths_are_the_models_constants(
    path: list[str], pattern: str, max_len: int
) -> None:
    node = openapi_schema()
    for part in path:
        node = node[part]
    assert node["pattern"] == pattern
    assert node["maxLength"] == max_len


def test_destination_and_remote_have_the_same_schema_but_their_descriptions() -> None:
    props = openapi_schema()["properties"]["spec"]["properties"]
    dest, remote = dict(props["destination"]), dict(props["remote"])
    dest.pop("description")
    remote.pop("description")
    assert dest == remote


# ---------------------------------------------------------------------------
# Randomised agreement: near-valid specs with one or more fields swapped for
# values from pools of good, bad and odd inputs.
# ---------------------------------------------------------------------------

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 700), st.text(max_size=8), st.just([]), st.just({})
)
POOLS: dict[tuple[str, ...], Any] = {
    ("spec", "suspend"): st.one_of(st.booleans(), ODD),
    ("spec", "suspended"): st.one_of(st.booleans(), ODD),
    ("spec", "mode"): st.sampled_from(["push", "pull", "Push", "", "sync"]),
    ("spec", "conflictPolicy"): st.sampled_from(["Skip", "Adopt", "skip"]),
    ("spec", "deletionPolicy"): st.sampled_from(["Delete", "Orphan", "Keep"]),
    ("spec", "resyncPeriod"): st.sampled_from(
        [
            "10m",
            "1s",
            "0.5s",
            "999ms",
            "1h30m",
            "90",
            "1d",
            "-1s",
            "1.5h",
            "0s",
            "1µs",
            "",
            "1.s",
            ".5h",
        ]
    ),
    ("spec", "rules", 0, "group"): st.sampled_from(
        ["", "apps", "*", "*.x.io", "a..b", "-a", "A", "x*", "a b", "?", "[a]", ".*"]
    ),
    ("spec", "rules", 0, "version"): st.sampled_from(
        ["v1", "*", "", "V1", "v1beta1", "v1.0", "v*"]
    ),
    ("spec", "rules", 0, "kind"): st.sampled_from(
        ["ConfigMap", "*", "", "configMap", "9Kind", "Con fig", "Ki*nd", "a.b", "$"]
    ),
    ("spec", "rules", 0, "namespaces"): st.one_of(
        st.lists(st.sampled_from(["default", "a", "A", "", "a-", "x" * 64]), max_size=3), ODD
    ),
    ("spec", "rules", 0, "syncFields"): st.one_of(
        st.lists(st.sampled_from(["spec", "status", "a.b", "a..b", ".a", "a-b_c", ""]), max_size=3),
        ODD,
    ),
    ("spec", "rules", 0, "includeOwned"): st.one_of(st.booleans(), ODD),
    ("spec", "rules", 0, "immutablePolicy"): st.sampled_from(["Recreate", "Report", "recreate"]),
    ("spec", "rules", 0, "labelSelector"): st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "matchLabels": st.dictionaries(
                    st.sampled_from(["app", "example.com/x"]),
                    st.sampled_from(["", "v", "a b", "-x", "x" * 64]),
                    max_size=2,
                ),
                "matchExpressions": st.lists(
                    st.fixed_dictionaries(
                        {
                            "key": st.sampled_from(["app", "a/b", "-bad", "x" * 64]),
                            "operator": st.sampled_from(
                                ["In", "NotIn", "Exists", "DoesNotExist", "Eq"]
                            ),
                        },
                        optional={
                            "values": st.lists(st.sampled_from(["a", "", "b c"]), max_size=2)
                        },
                    ),
                    max_size=2,
                ),
            },
        ),
        ODD,
    ),
    ("spec", "destination", "namespace"): st.sampled_from(["standby", "", "Standby", "a" * 64]),
    ("spec", "destination", "clusterConfig", "kubeConfigSecretRef", "key"): st.sampled_from(
        ["kubeconfig", "", "a/b", "config.yaml", " "]
    ),
    ("spec", "destination", "clusterConfig", "kubeConfigSecretRef", "name"): st.one_of(
        st.sampled_from(["remote", "", "Remote", "a.b", "a_b"]), ODD
    ),
}


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    obj = make(lambda o: None)
    chosen = draw(
        st.lists(st.sampled_from(sorted(POOLS, key=str)), min_size=1, max_size=4, unique=True)
    )
    for path in chosen:
        node = obj
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = draw(POOLS[path])
    if draw(st.booleans()):
        obj["spec"]["remote"] = obj["spec"].pop("destination")
    return obj


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_random_near_valid_specs_get_the_same_verdict(obj: dict[str, Any]) -> None:
    # The pools avoid the MODEL_ONLY rules: matchLabels keys are valid, no ref namespace.
    _assert_same_result(obj)
