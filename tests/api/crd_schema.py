"""The CRD's schema as a validator, the way a real API server applies it.

Why it exists: the agreement tests need a second, independent judge of a
KRMSyncer besides the pydantic models. The API server does four things to a
custom resource: prune ``null`` values of non-nullable fields, apply
``default``s, validate the OpenAPI v3 schema, and evaluate the CEL
``x-kubernetes-validations``. This module does the same with the ``jsonschema``
library plus a tiny CEL evaluator that knows exactly the rules our CRD uses,
keyed by rule text, and fails loudly on any rule it does not know (so a new CEL
rule cannot slip in untested).

One deliberate difference: unknown fields are rejected (``additionalProperties:
false``), which is what ``kubectl apply --validate=strict`` does; a server
without strict field validation would prune them instead. The models reject
them too, with a "did you mean" hint.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import jsonschema

from ray_syncer.api.crd import openapi_schema

# ---------------------------------------------------------------------------
# CEL: each rule text our CRD contains -> a Python predicate over ``self``.
# Written independently of ray_syncer.api.models on purpose.
# ---------------------------------------------------------------------------

_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def cel_duration(text: str) -> float:
    """CEL ``duration()``: Go ``time.ParseDuration`` (sign allowed); ValueError if invalid."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    while s:
        m = _GO_DURATION.match(s)
        if not m:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNIT_S[m.group(3)]
        s = s[m.end() :]
    return sign * total


CEL_RULES: dict[str, Callable[[Any], bool]] = {
    "!has(self.suspend) || !has(self.suspended) || self.suspend == self.suspended": (
        lambda s: "suspend" not in s or "suspended" not in s or s["suspend"] == s["suspended"]
    ),
    "!(has(self.destination) && has(self.remote))": (
        lambda s: not ("destination" in s and "remote" in s)
    ),
    "has(self.destination) || has(self.remote)": (lambda s: "destination" in s or "remote" in s),
    (
        "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
        " : (!has(self.values) || size(self.values) == 0)"
    ): (
        lambda s: (
            ("values" in s and len(s["values"]) > 0)
            if s["operator"] in ("In", "NotIn")
            else ("values" not in s or len(s["values"]) == 0)
        )
    ),
    "self.matches('^([^/]{1,253}/)?[^/]+$')": (
        lambda s: re.search(r"^([^/]{1,253}/)?[^/]+$", s) is not None
    ),
    "duration(self) >= duration('1s')": (lambda s: cel_duration(s) >= cel_duration("1s")),
}


def evaluator_for(rule: str) -> Callable[[Any], bool]:
    try:
        return CEL_RULES[rule]
    except KeyError:
        raise AssertionError(
            f"CEL rule without an evaluator in tests/api/crd_schema.py: {rule!r}. "
            "Add one (and invalid cases to the agreement table) before shipping the rule."
        ) from None


def cel_rules(schema: dict[str, Any]) -> list[str]:
    """Every CEL rule text in a schema, recursively."""
    out = [v["rule"] for v in schema.get("x-kubernetes-validations", [])]
    for sub in _children(schema):
        out += cel_rules(sub)
    return out


def _children(schema: dict[str, Any]) -> list[dict[str, Any]]:
    subs = list(schema.get("properties", {}).values())
    if isinstance(schema.get("items"), dict):
        subs.append(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        subs.append(schema["additionalProperties"])
    return subs


# ---------------------------------------------------------------------------
# OpenAPI v3 (structural, Kubernetes flavour) -> JSON Schema.
# ---------------------------------------------------------------------------

_DROP = {"description", "default", "format", "nullable", "example", "externalDocs"}


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False  # strict field validation
    return out


def prune_nulls(value: Any, schema: dict[str, Any]) -> Any:
    """Drop null values of non-nullable fields before defaulting (API server order)."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for k, v in value.items():
            sub = props.get(k) or (extra if isinstance(extra, dict) else {})
            if v is None and not sub.get("nullable"):
                continue
            out[k] = prune_nulls(v, sub)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_nulls(v, schema["items"]) for v in value]
    return value


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Structural defaulting: fill absent properties that have a ``default``."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for name, sub in schema.get("properties", {}).items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = apply_defaults(out[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k in out:
                if k not in schema.get("properties", {}):
                    out[k] = apply_defaults(out[k], extra)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    t = schema.get("type")
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    return True


def _run_cel(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    if not _type_ok(value, schema):
        return  # the schema error is reported; CEL does not run on a mistyped value
    for v in schema.get("x-kubernetes-validations", []):
        check = evaluator_for(v["rule"])
        try:
            ok = bool(check(value))
        except (KeyError, TypeError, ValueError, AttributeError):
            ok = False  # a CEL runtime error rejects the object too
        if not ok:
            errors.append(f"{path}: {v['message']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, sub_value in value.items():
            sub = props.get(k) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                _run_cel(sub_value, sub, f"{path}.{k}", errors)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _run_cel(item, schema["items"], f"{path}[{i}]", errors)


class CrdValidator:
    """Admission of a KRMSyncer object through the CRD schema: prune, default, validate."""

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        self.schema = schema if schema is not None else openapi_schema()
        self._validator = jsonschema.Draft202012Validator(to_json_schema(self.schema))
        for rule in cel_rules(self.schema):
            evaluator_for(rule)  # fail at construction for an unknown rule

    def admit(self, obj: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
        """(the stored object, []) when accepted; (None, errors) when rejected."""
        value = apply_defaults(prune_nulls(obj, self.schema), self.schema)
        errors = [
            f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in self._validator.iter_errors(value)
        ]
        _run_cel(value, self.schema, "<root>", errors)
        return (None, errors) if errors else (value, [])
