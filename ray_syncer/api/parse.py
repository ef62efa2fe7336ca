"""Reading a KRMSyncer: from an object of a cluster (or a file) to models, or precise errors.

Why it exists: an invalid KRMSyncer must be told to its owner in words they can
act on (``spec.rules[1].kind: must not be empty``, ``did you mean
"namespaces"?``), one message per problem, in the status condition; pydantic's
own errors are not that. ``parse_krmsyncer`` gives a ``KRMSyncer`` or raises
``SpecError`` with such messages; ``is_suspended_effectively`` answers "must this
syncer stay silent?" even when the spec does not parse, on the safe side.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from ray_syncer import KIND
from ray_syncer.api.formats import _show
from ray_syncer.api.models import (
    API_VERSION_FULL,
    KRMSyncer,
    KRMSyncerSpec,
    ObjectMeta,
    spec_cross_field_errors,
)
from ray_syncer.api.status import KRMSyncerStatus


class SpecError(ValueError):
    """An invalid KRMSyncer. ``.errors``: one message per problem, each naming its field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: list[str] = list(errors) or ["invalid KRMSyncer"]
        super().__init__("; ".join(self.errors))

    def __str__(self) -> str:
        return "; ".join(self.errors)


# Fields of the Go KRMSyncer we deliberately do not implement: say so instead of "unknown".
_UNSUPPORTED_FIELDS = {
    "transforms": "not supported by ray-syncer (the Go KRMSyncer's field transforms); remove it",
    "gcsBucketConfig": "not supported by ray-syncer (only cluster destinations are); remove it",
}


def prune_nulls(value: Any) -> Any:
    """Drop ``null`` map values, recursively, as the API server does for a structural schema."""
    if isinstance(value, Mapping):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def format_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{part!r}]"
    return out


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X | None`` / ``tuple[X, ...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple, list):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def _model_at(root: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part),
            None,
        )
        if field is None:
            return None
        model = _unwrap_model(field.annotation)
    return model


def _wire_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _human(err: Mapping[str, Any], root: type[BaseModel]) -> tuple[tuple[Any, ...], str]:
    """(location, message) for one pydantic error dict."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]")))
    typ = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if typ == "krm_field":
        return (*loc, ctx["field"]), err["msg"]
    if typ == "krm":
        # Item validators report "[3]: problem": fold the index into the path.
        m = re.fullmatch(r"(?:([A-Za-z]+))?\[(\d+)\]: (.*)", err["msg"], flags=re.S)
        if m:
            field = (m.group(1),) if m.group(1) else ()
            return (*loc, *field, int(m.group(2))), m.group(3)
        return loc, err["msg"]
    if typ == "missing":
        hint = ' (use "" for the core group)' if loc and loc[-1] == "group" else ""
        return loc, f"is required{hint}"
    if typ == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        if name in _UNSUPPORTED_FIELDS:
            return loc, _UNSUPPORTED_FIELDS[name]
        parent = _model_at(root, loc[:-1])
        msg = "unknown field"
        if parent is not None:
            close = difflib.get_close_matches(name, _wire_names(parent), n=1, cutoff=0.6)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
            else:
                msg += f" (allowed: {', '.join(_wire_names(parent))})"
        return loc, msg
    if typ == "bool_type":
        return loc, f"must be true or false, got {_show(value)}"
    if typ == "string_type":
        return loc, f"must be a string, got {_show(value)}"
    if typ in ("int_type", "int_from_float", "float_type"):
        return loc, f"must be a number, got {_show(value)}"
    if typ in ("list_type", "tuple_type"):
        return loc, f"must be a list, got {_show(value)}"
    if typ in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"must be an object, got {_show(value)}"
    if typ == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return loc, f"must be one of {expected}, got {_show(value)}"
    if typ in ("too_short", "string_too_short"):
        return loc, "must not be empty"
    return loc, str(err.get("msg", "is invalid"))


def _spec_errors(exc: ValidationError, root: type[BaseModel], prefix: tuple[Any, ...]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc, msg = _human(err, root)
        out.append(f"{format_path(prefix + loc)}: {msg}")
    return out


def _dedupe(messages: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for m in messages:
        if m not in seen:
            seen.add(m)
            out.append(m)
    return out


def parse_spec(spec: Any) -> KRMSyncerSpec:
    """Validate a bare ``spec`` mapping; ``SpecError`` with ``spec.``-prefixed messages."""
    if not isinstance(spec, Mapping):
        raise SpecError([f"spec: must be an object, got {_show(spec)}"])
    spec = prune_nulls(spec)
    errors = [f"spec.{field}: {msg}" for field, msg in spec_cross_field_errors(spec)]
    try:
        model = KRMSyncerSpec.model_validate(spec)
    except ValidationError as exc:
        errors += _spec_errors(exc, KRMSyncerSpec, ("spec",))
        raise SpecError(_dedupe(errors)) from None
    if errors:  # unreachable in practice: the model validator runs the same checks
        raise SpecError(_dedupe(errors))
    return model


def parse_status(raw: Any) -> KRMSyncerStatus | None:
    """The status as last written, or None if absent or unreadable (never raises)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        return KRMSyncerStatus.model_validate(prune_nulls(raw))
    except ValidationError:
        return None


_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")


def parse_krmsyncer(obj: Any) -> KRMSyncer:
    """Parse a whole KRMSyncer object (from a cluster or a manifest file).

    Server metadata (uid, resourceVersion, managedFields ...) and ``status`` never
    cause an error. Raises ``SpecError`` listing every problem found.
    """
    if not isinstance(obj, Mapping):
        raise SpecError([f"object: must be a mapping, got {_show(obj)}"])
    errors: list[str] = []
    for key in obj:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(str(key), _TOP_LEVEL, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(f"{format_path([key])}: unknown field{hint}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version != API_VERSION_FULL:
        errors.append(f"apiVersion: must be {API_VERSION_FULL}, got {_show(api_version)}")
    if kind != KIND:
        errors.append(f"kind: must be {KIND}, got {_show(kind)}")
    meta_raw = obj.get("metadata")
    meta: ObjectMeta | None = None
    if (
        not isinstance(meta_raw, Mapping)
        or not isinstance(meta_raw.get("name"), str)
        or not meta_raw["name"]
    ):
        errors.append("metadata.name: is required")
    else:
        try:
            meta = ObjectMeta.model_validate(meta_raw)
        except ValidationError as exc:
            errors += [f"metadata.{m}" for m in _spec_errors(exc, ObjectMeta, ())]
    spec: KRMSyncerSpec | None = None
    if "spec" not in obj or obj.get("spec") is None:
        errors.append("spec: is required")
    else:
        try:
            spec = parse_spec(obj["spec"])
        except SpecError as exc:
            errors += exc.errors
    if spec is not None and meta is not None:
        ref_ns = spec.secret_ref.namespace
        if ref_ns is not None and meta.namespace is not None and ref_ns != meta.namespace:
            which = "destination" if spec.destination is not None else "remote"
            errors.append(
                f"spec.{which}.clusterConfig.kubeConfigSecretRef.namespace: must be empty or the "
                f"KRMSyncer's own namespace {meta.namespace!r}, got {ref_ns!r} (cross-namespace "
                "Secret references are not allowed)"
            )
    if errors or spec is None or meta is None:
        raise SpecError(errors)
    return KRMSyncer.model_validate(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": meta,
            "spec": spec,
            "status": parse_status(obj.get("status")),
        }
    )


def is_suspended_effectively(raw: Any) -> bool:
    """True when the operator must do nothing for this KRMSyncer (docs/design.md §2, §4.5).

    That is: ``suspend`` or ``suspended`` is true, or they disagree, or the spec
    does not parse at all. Accepts either a whole object or a bare spec mapping.
    """
    if not isinstance(raw, Mapping):
        return True
    spec_raw = (
        raw.get("spec") if ("spec" in raw or "apiVersion" in raw or "metadata" in raw) else raw
    )
    if not isinstance(spec_raw, Mapping):
        return True
    s1, s2 = spec_raw.get("suspend"), spec_raw.get("suspended")
    if s1 is True or s2 is True:
        return True
    try:
        spec = parse_spec(spec_raw)
    except SpecError:
        return True
    return spec.suspended_effective
