"""Server-side printing: ``meta.k8s.io/v1`` Table responses for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``;
kube-apiserver answers with column definitions and one row per object. For
custom resources the columns are Name plus the version's
``additionalPrinterColumns`` (JSONPath, including ``[?(@.type=="Ready")]``
filters); for built-in kinds Name, a few kind-specific columns and Age.
http.py calls :func:`wants_table` and :func:`to_table`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .kinds import ResourceType

Obj = dict[str, Any]
_STEP = re.compile(r'\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*["\']([^"\']*)["\']\)\]|\[\*\]')


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The values ``path`` selects (the subset of JSONPath printer columns use)."""
    current = [obj]
    pos = 0
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            return []
        pos = m.end()
        field, index, fkey, fval = m.groups()
        nxt: list[Any] = []
        for cur in current:
            if field is not None and isinstance(cur, dict) and field in cur:
                nxt.append(cur[field])
            elif index is not None and isinstance(cur, list) and int(index) < len(cur):
                nxt.append(cur[int(index)])
            elif fkey is not None and isinstance(cur, list):
                for item in cur:
                    got = jsonpath(item, "." + fkey)
                    if got and str(got[0]) == fval:
                        nxt.append(item)
            elif m.group(0) == "[*]" and isinstance(cur, list):
                nxt.extend(cur)
        current = nxt
    return current


def age(timestamp: str | None, now: datetime | None = None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<invalid>"
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _builtin_columns(rt: ResourceType) -> list[tuple[Obj, Any]]:
    """(column definition, cell function) for kind-specific columns of built-ins."""
    def col(name: str, type_: str, fn: Any, description: str = "") -> tuple[Obj, Any]:
        return ({"name": name, "type": type_, "format": "", "description": description, "priority": 0}, fn)

    if rt.key == ("", "configmaps"):
        return [col("Data", "string", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))]
    if rt.key == ("", "secrets"):
        return [col("Type", "string", lambda o: o.get("type", "")),
                col("Data", "string", lambda o: len(o.get("data") or {}))]
    if rt.key == ("", "namespaces"):
        return [col("Status", "string", lambda o: (o.get("status") or {}).get("phase", ""))]
    if rt.key == ("", "services"):
        return [col("Type", "string", lambda o: (o.get("spec") or {}).get("type", "")),
                col("Cluster-IP", "string", lambda o: (o.get("spec") or {}).get("clusterIP", "<none>"))]
    if rt.key == ("apps", "deployments"):
        def ready(o: Obj) -> str:
            return f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}"
        return [col("Ready", "string", ready)]
    return []


def to_table(rt: ResourceType, objects: list[Obj], *, list_meta: Obj, printer_columns: list[Obj] | None) -> Obj:
    name_col = {"name": "Name", "type": "string", "format": "name",
                "description": "Name must be unique within a namespace.", "priority": 0}
    defs: list[Obj] = [name_col]
    cells: list[Any] = []
    if printer_columns:
        for pc in printer_columns:
            defs.append({"name": pc["name"], "type": pc.get("type", "string"), "format": pc.get("format", ""),
                         "description": pc.get("description", ""), "priority": pc.get("priority", 0)})
            cells.append(pc)
    else:
        for definition, fn in _builtin_columns(rt):
            defs.append(definition)
            cells.append(fn)
        defs.append({"name": "Age", "type": "string", "format": "", "priority": 0,
                     "description": "CreationTimestamp is a timestamp representing the server time when this "
                                    "object was created."})
        cells.append(lambda o: age((o.get("metadata") or {}).get("creationTimestamp")))
    rows = []
    for obj in objects:
        row: list[Any] = [obj["metadata"]["name"]]
        for c in cells:
            if callable(c):
                row.append(c(obj))
                continue
            values = jsonpath(obj, c.get("jsonPath", ""))
            if not values:
                row.append(None)
            elif c.get("type") == "date":
                row.append(age(str(values[0])))
            elif len(values) == 1:
                row.append(values[0])
            else:
                row.append(",".join(str(v) for v in values))
        rows.append({"cells": row, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                              "metadata": obj["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": defs, "rows": rows}
