"""Structural schemas of custom resources: pruning, defaulting, validation.

What kube-apiserver does to a custom resource body before storing it, in the
same order: unknown fields are pruned (``properties`` /
``additionalProperties`` / ``x-kubernetes-preserve-unknown-fields`` /
``x-kubernetes-embedded-resource``), ``default`` values are filled in, and
the result is validated (type, nullable, required, enum, min/max,
length, pattern, item counts). handlers.py runs this for every write of a
custom resource; crds.py hands each version's ``openAPIV3Schema`` over.
Unsupported keywords (CEL ``x-kubernetes-validations``, ``oneOf`` and friends,
``format``) are ignored.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import field_invalid, field_required

Obj = dict[str, Any]
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})


def _prune_meta(meta: Any, path: str, pruned: list[str]) -> Any:
    if not isinstance(meta, dict):
        return meta
    out = {}
    for k, v in meta.items():
        if k in OBJECT_META_FIELDS:
            out[k] = v
        else:
            pruned.append(f"{path}.{k}")
    return out


def prune(value: Any, schema: Obj | None, *, path: str = "", root: bool = False,
          pruned: list[str] | None = None) -> Any:
    """A copy of ``value`` without the fields ``schema`` does not know; pruned paths appended."""
    pruned = pruned if pruned is not None else []
    if schema is None:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
        out: Obj = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if embedded and k in ("apiVersion", "kind"):
                out[k] = v
            elif embedded and k == "metadata":
                out[k] = _prune_meta(v, sub, pruned)
            elif props is not None and k in props:
                out[k] = prune(v, props[k], path=sub, pruned=pruned)
            elif isinstance(additional, dict):
                out[k] = prune(v, additional, path=sub, pruned=pruned)
            elif additional is True or preserve:
                out[k] = copy.deepcopy(v)
            else:
                pruned.append(sub)
        return out
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [prune(v, items, path=f"{path}[{i}]", pruned=pruned) for i, v in enumerate(value)]
        return copy.deepcopy(value)
    return value


def apply_defaults(value: Any, schema: Obj | None) -> Any:
    """Fill in ``default`` for absent properties of objects that are present (in place)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            if k not in value and "default" in sub:
                value[k] = copy.deepcopy(sub["default"])
            if k in value:
                apply_defaults(value[k], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for k, v in value.items():
                if k not in (schema.get("properties") or {}):
                    apply_defaults(v, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value:
            apply_defaults(v, schema["items"])
    return value


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _type_ok(value: Any, type_: str) -> bool:
    if type_ in ("integer", "number") and isinstance(value, bool):
        return False
    if type_ == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(type_, (object,)))


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else ("null" if value is None else str(value))


def validate(value: Any, schema: Obj | None, *, path: str = "", root: bool = False) -> list[dict[str, str]]:
    """Causes (``details.causes`` entries) for everything wrong with ``value``."""
    if schema is None:
        return []
    errs: list[dict[str, str]] = []
    name = path or "<root>"
    if value is None:
        if not schema.get("nullable") and path:
            errs.append(field_invalid(name, value, f"{name} in body must be of type {schema.get('type', 'object')}: \"null\""))
        return errs
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errs.append(field_invalid(name, value, f"{name} in body must be of type integer-or-string"))
        return errs
    type_ = schema.get("type")
    if type_ and not _type_ok(value, type_):
        shown = type(value).__name__.replace("str", "string").replace("dict", "object").replace("list", "array")
        errs.append(field_invalid(name, value, f'{name} in body must be of type {type_}: "{shown}"'))
        return errs
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_show(v) for v in schema["enum"])
        errs.append({"reason": "FieldValueNotSupported", "field": name,
                     "message": f"Unsupported value: {_show(value)}: supported values: {supported}"})
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(field_invalid(name, value, f"{name} in body should be greater than or equal to {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(field_invalid(name, value, f"{name} in body should be less than or equal to {schema['maximum']}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append(field_invalid(name, value, f"{name} in body should be at least {schema['minLength']} chars long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append({"reason": "FieldValueTooLong", "field": name,
                         "message": f"Too long: may not be more than {schema['maxLength']} bytes"})
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(field_invalid(name, value, f"{name} in body should match '{schema['pattern']}'"))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append(field_invalid(name, value, f"{name} in body should have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append({"reason": "FieldValueTooMany", "field": name,
                         "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items"})
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                errs += validate(v, items, path=f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for req in schema.get("required") or ():
            if req not in value:
                errs.append(field_required(f"{path}.{req}" if path else req, ""))
        additional = schema.get("additionalProperties")
        for k, v in value.items():
            if root and k in ("apiVersion", "kind", "metadata"):
                continue
            sub = f"{path}.{k}" if path else k
            if k in props:
                errs += validate(v, props[k], path=sub)
            elif isinstance(additional, dict):
                errs += validate(v, additional, path=sub)
    return errs
