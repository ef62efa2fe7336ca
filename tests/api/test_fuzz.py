"""Any JSON value as a spec (or object) gives a model or a SpecError, never another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ray_syncer.api.parse import SpecError, is_suspended_effectively, parse_krmsyncer, parse_spec
from tests.api.cases import BASE

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "rules",
                    "group",
                    "version",
                    "kind",
                    "suspend",
                    "suspended",
                    "destination",
                    "remote",
                    "clusterConfig",
                    "kubeConfigSecretRef",
                    "name",
                    "key",
                    "labelSelector",
                    "matchLabels",
                    "matchExpressions",
                    "operator",
                    "values",
                    "mode",
                    "resyncPeriod",
                    "namespaces",
                    "x",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


def _outcome(spec: Any) -> bool:
    try:
        parse_spec(spec)
        return True
    except SpecError as exc:
        assert exc.errors and all(isinstance(e, str) and ": " in e for e in exc.errors)
        return False


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_any_json_spec_is_a_model_or_a_spec_error(spec: Any) -> None:
    valid = _outcome(spec)
    suspended = is_suspended_effectively({"apiVersion": BASE["apiVersion"], "spec": spec})
    if not valid:
        assert suspended is True  # the safe side


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["apiVersion", "kind", "metadata", "spec", "status"]), JSON))
def test_any_json_object_is_a_model_or_a_spec_error(obj: dict[str, Any]) -> None:
    try:
        syncer = parse_krmsyncer(obj)
    except SpecError as exc:
        assert exc.errors
        return
    assert syncer.spec.rules  # only a complete, valid object gets here


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "group",
                "version",
                "kind",
                "namespaces",
                "labelSelector",
                "syncFields",
                "includeOwned",
                "syncStatus",
                "immutablePolicy",
            ]
        ),
        JSON,
    )
)
def test_any_rule_is_a_model_or_a_spec_error(rule: dict[str, Any]) -> None:
    _outcome({**BASE["spec"], "rules": [rule]})
