"""Per-kind defaulting and validation: what built-in admission would do.

Only what a syncer can trip over is modelled: object names and label syntax,
ConfigMap/Secret ``data``/``binaryData`` keys, Secret ``type`` defaulting and
immutability, ``immutable: true`` ConfigMaps/Secrets, Service ``clusterIP``
allocation and immutability, Deployment selector immutability, Namespace
``status.phase``, the MicroTime fields of Events (a 400 like the decoder's) and
the namespace of an Event's involved object.
handlers.py calls :func:`default_new`, :func:`validate_object` and
:func:`validate_update`; each failure is a 422 ``Invalid`` Status.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import StatusError, field_forbidden, field_invalid, invalid
from .gotime import GoTimeError, parse_micro_time
from .kinds import ResourceType

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                  "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
                  "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
# Kinds whose names must be DNS labels rather than subdomains.
_LABEL_NAMED = frozenset({("", "namespaces"), ("", "services")})


def _check_name(rt: ResourceType, name: str) -> list[dict[str, str]]:
    if rt.key in _LABEL_NAMED:
        if len(name) > 63:
            return [field_invalid("metadata.name", name, "must be no more than 63 characters")]
        if not _LABEL.match(name):
            return [field_invalid("metadata.name", name, _LABEL_MSG)]
        return []
    if len(name) > 253:
        return [field_invalid("metadata.name", name, "must be no more than 253 characters")]
    if not _SUBDOMAIN.match(name):
        return [field_invalid("metadata.name", name, _SUBDOMAIN_MSG)]
    return []


def _check_key(field: str, key: Any) -> list[dict[str, str]]:
    if not isinstance(key, str):
        return [field_invalid(field, key, "must be a string")]
    prefix, _, name = key.rpartition("/")
    errs = []
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        errs.append(field_invalid(field, key, "prefix part " + _SUBDOMAIN_MSG))
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        errs.append(field_invalid(field, key, "name part must consist of alphanumeric characters, '-', '_' or "
                                  "'.', and must start and end with an alphanumeric character, and be at "
                                  "most 63 characters"))
    return errs


_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
                   "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def _config_key_errors(key: str) -> list[str]:
    """validation.IsConfigMapKey: the keys of ConfigMap/Secret ``data`` and ``binaryData``."""
    errs = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY.match(key):
        errs.append(_CONFIG_KEY_MSG)
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _check_data_keys(rt: ResourceType, obj: Obj) -> list[dict[str, str]]:
    # A Secret's stringData is already folded into data here (default_new/default_update), so a
    # bad stringData key is reported under data[...], as kube-apiserver does.
    errs: list[dict[str, str]] = []
    fields = ("data", "binaryData") if rt.key == ("", "configmaps") else ("data",)
    for field in fields:
        value = obj.get(field)
        if not isinstance(value, dict):
            continue
        for key in sorted(value, key=str):
            path = f"{field}[{key}]"
            errs += [field_invalid(path, key, msg) for msg in _config_key_errors(str(key))]
            binary = obj.get("binaryData")
            if field == "data" and len(fields) > 1 and isinstance(binary, dict) and key in binary:
                errs.append(field_invalid(path, key, "duplicate of key present in binaryData"))
    return errs


def _check_event_namespace(rt: ResourceType, obj: Obj) -> list[dict[str, str]]:
    """legacyValidateEvent: the involved object's namespace agrees with the Event's (both APIs).

    Without an eventTime it must be the Event's namespace (empty only in "default"); with one,
    it may differ but not be empty (except in "default" and "kube-system").
    """
    ref = obj.get("regarding" if rt.group == "events.k8s.io" else "involvedObject")
    ref_ns = (ref.get("namespace") or "") if isinstance(ref, dict) else ""
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    if obj.get("eventTime"):
        bad = not ref_ns and ns not in ("default", "kube-system")
    else:
        bad = ns not in ("", "default") if not ref_ns else ref_ns != ns
    return [field_invalid("involvedObject.namespace", ref_ns, "does not match event.namespace")] if bad else []


def validate_object(rt: ResourceType, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    errs = _check_name(rt, meta.get("name", ""))
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        errs.append(field_invalid("metadata.labels", labels, "must be a map"))
        labels = {}
    for k, v in labels.items():
        errs += _check_key("metadata.labels", k)
        if not isinstance(v, str):
            errs.append(field_invalid("metadata.labels", v, "must be a string"))
        elif len(v) > 63:
            errs.append(field_invalid("metadata.labels", v, "must be no more than 63 characters"))
        elif not _LABEL_VALUE.match(v):
            errs.append(field_invalid("metadata.labels", v, "a valid label must be an empty string or consist "
                                      "of alphanumeric characters, '-', '_' or '.', and must start and end "
                                      "with an alphanumeric character"))
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict):
        for k, v in annotations.items():
            errs += _check_key("metadata.annotations", k)
            if not isinstance(v, str):
                errs.append(field_invalid("metadata.annotations", v, "must be a string"))
        if sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str)) > 256 * 1024:
            errs.append({"reason": "FieldValueTooLong", "field": "metadata.annotations",
                         "message": "Too long: must have at most 262144 bytes"})
    if rt.key in (("", "configmaps"), ("", "secrets")):
        for field in ("data", "binaryData", "stringData"):
            value = obj.get(field)
            if value is not None and not isinstance(value, dict):
                errs.append(field_invalid(field, value, "must be a map"))
        errs += _check_data_keys(rt, obj)
    elif rt.key in _MICRO_TIMES:
        errs += _check_event_namespace(rt, obj)
    if errs:
        # events.k8s.io Events are validated as the internal core Event: named without a group.
        group = "" if rt.key == ("events.k8s.io", "events") else rt.group
        raise invalid(rt.kind, meta.get("name", ""), group, errs)


# metav1.MicroTime fields, per kind: kube-apiserver's decoder parses them with a fixed layout.
_MICRO_TIMES: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("", "events"): (("eventTime",), ("series", "lastObservedTime")),
    ("events.k8s.io", "events"): (("eventTime",), ("series", "lastObservedTime")),
}
_JSON_TYPES = ((bool, "bool"), (int, "number"), (float, "number"), (dict, "object"), (list, "array"))


def decode_micro_times(rt: ResourceType, obj: Obj) -> str | None:
    """Normalizes the kind's MicroTime fields to UTC in place; the decoder's error text if one is bad."""
    for path in _MICRO_TIMES.get(rt.key, ()):
        parent: Any = obj
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or parent.get(path[-1]) is None:
            continue
        value = parent[path[-1]]
        if not isinstance(value, str):
            kind = next(name for t, name in _JSON_TYPES if isinstance(value, t))
            struct = "EventSeries" if len(path) > 1 else rt.kind
            return (f"json: cannot unmarshal {kind} into Go struct field {struct}.{'.'.join(path)} "
                    "of type string")
        try:
            parent[path[-1]] = parse_micro_time(value)
        except GoTimeError as exc:
            return str(exc)
    return None


class ClusterIPs:
    """Hands out Service cluster IPs from 10.96.0.0/16."""

    def __init__(self) -> None:
        self._next = 10

    def allocate(self) -> str:
        self._next += 1
        return f"10.96.{(self._next >> 8) & 255}.{self._next & 255}"


def default_new(rt: ResourceType, obj: Obj, *, ips: ClusterIPs) -> None:
    key = rt.key
    if key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            import base64

            data = dict(obj.get("data") or {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
    elif key == ("", "namespaces"):
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
            ip = ips.allocate()
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
    elif key == ("apps", "deployments"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)


def default_update(rt: ResourceType, old: Obj, new: Obj) -> None:
    """Fields the server keeps on update when the writer leaves them out."""
    if rt.key == ("", "services"):
        spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
        for f in ("clusterIP", "clusterIPs"):
            if f not in spec and f in old_spec:
                spec[f] = old_spec[f]
    elif rt.key == ("", "secrets"):
        new.setdefault("type", old.get("type", "Opaque"))
        string_data = new.pop("stringData", None)
        if isinstance(string_data, dict):
            import base64

            data = dict(new.get("data") or {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            new["data"] = data
    elif rt.key == ("", "namespaces"):
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]


def validate_update(rt: ResourceType, old: Obj, new: Obj) -> None:
    errs: list[dict[str, str]] = []
    key = rt.key
    if key in (("", "configmaps"), ("", "secrets")):
        if old.get("immutable"):
            for field in ("data", "binaryData"):
                if (old.get(field) or {}) != (new.get(field) or {}):
                    errs.append(field_forbidden(field, "field is immutable when `immutable` is set"))
            if not new.get("immutable"):
                errs.append(field_forbidden("immutable", "field is immutable when `immutable` is set"))
        if key == ("", "secrets") and old.get("type") != new.get("type"):
            errs.append(field_invalid("type", new.get("type"), "field is immutable"))
    elif key == ("", "services"):
        before, after = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
        if before and after != before:
            errs.append(field_invalid("spec.clusterIPs[0]", after, "may not change once set"))
    elif key in (("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
                 ("apps", "daemonsets")):
        before, after = (old.get("spec") or {}).get("selector"), (new.get("spec") or {}).get("selector")
        if before != after:
            errs.append(field_invalid("spec.selector", after, "field is immutable"))
    if errs:
        raise invalid(rt.kind, new["metadata"]["name"], rt.group, errs)


def namespace_terminating(rt: ResourceType, name: str, namespace: str) -> StatusError:
    qualified = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return StatusError(
        403,
        "Forbidden",
        f'{qualified} "{name}" is forbidden: unable to create new content in namespace {namespace} '
        "because it is being terminated",
        details={"name": name, "kind": rt.plural,
                 "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                             "field": "metadata.namespace"}]},
    )
