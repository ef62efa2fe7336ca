"""CustomResourceDefinitions: from a CRD object to served resource types.

handlers.py calls :func:`validate_crd` before storing a CRD, :func:`with_status`
to set what the apiextensions controllers would (``NamesAccepted`` and
``Established`` conditions, ``acceptedNames``, ``storedVersions``) and
:func:`resource_types` to register every served version in the registry
(kinds.py), which is what discovery (discovery.py) then lists.
"""

from __future__ import annotations

from typing import Any

from .errors import field_invalid, field_required, invalid
from .kinds import ResourceType

Obj = dict[str, Any]
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def validate_crd(crd: Obj) -> None:
    meta = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = meta.get("name", "")
    errs = []
    group, plural = spec.get("group", ""), names.get("plural", "")
    if not group:
        errs.append(field_required("spec.group", ""))
    if not plural:
        errs.append(field_required("spec.names.plural", ""))
    if not names.get("kind"):
        errs.append(field_required("spec.names.kind", ""))
    if group and plural and name != f"{plural}.{group}":
        errs.append(field_invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.append(field_invalid("spec.scope", spec.get("scope"), 'supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(field_required("spec.versions", "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(field_invalid("spec.versions", [v.get("name") for v in versions],
                                  "must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        if not v.get("name"):
            errs.append(field_required(f"spec.versions[{i}].name", ""))
        sch = (v.get("schema") or {}).get("openAPIV3Schema")
        if sch is None:
            errs.append(field_required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    if errs:
        raise invalid("CustomResourceDefinition", name, "apiextensions.k8s.io", errs)


def resource_types(crd: Obj) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        out.append(ResourceType(
            group=spec["group"],
            version=v["name"],
            kind=names["kind"],
            plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope") == "Namespaced",
            has_status="status" in (v.get("subresources") or {}),
            has_generation=True,
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            builtin=False,
            schema=(v.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()) or None,
        ))
    return out


def with_status(crd: Obj, *, now: str) -> Obj:
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    status = dict(crd.get("status") or {})
    stored = list(status.get("storedVersions") or [])
    if storage not in stored:
        stored.append(storage)

    def cond(type_: str, reason: str, message: str) -> Obj:
        return {"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message}

    old = {c.get("type"): c for c in status.get("conditions") or []}
    conditions = []
    for c in (cond("NamesAccepted", "NoConflicts", "no conflicts found"),
              cond("Established", "InitialNamesAccepted", "the initial names have been accepted")):
        prev = old.get(c["type"])
        conditions.append(prev if prev and prev.get("status") == "True" else c)
    status.update({"conditions": conditions, "acceptedNames": names, "storedVersions": stored})
    return {**crd, "status": status}
