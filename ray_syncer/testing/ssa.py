"""Server-side apply and ``metadata.managedFields`` bookkeeping.

Ownership is tracked per field-manager entry (manager, operation, subresource)
as a set of leaf paths. Maps are owned key by key; lists and scalars are
leaves (every list is treated as ``atomic``: a simplification documented in
docs/test-server.md). The rules implemented are the documented ones:

* an apply takes ownership of every field in its configuration;
* a field another manager owns with a *different* value is a conflict
  (409 with ``details.causes``) unless ``force=true``, which moves ownership;
  the same value is shared ownership, not a conflict;
* a field the manager applied before but no longer does is removed from the
  object when no other manager owns it;
* an update (PUT/POST/PATCH) takes ownership of the fields it changed and
  removes them from every other manager, without conflicts.

handlers.py calls :func:`apply` and :func:`record_update`; entries are
rendered in the FieldsV1 format (``{"f:spec": {"f:replicas": {}}}``).
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import apply_conflict

Path = tuple[str, ...]
Obj = dict[str, Any]
_MISSING = object()
IGNORED_META = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
})


def _walk(value: Any, prefix: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _walk(v, (*prefix, k), out)
    else:
        out[prefix] = value


def flatten(obj: Obj | None, *, subresource: str | None, has_status: bool) -> dict[Path, Any]:
    """Leaf path -> value for the part of ``obj`` this (sub)resource write may own."""
    out: dict[Path, Any] = {}
    if not obj:
        return out
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if subresource == "status":
            if k == "status":
                _walk(v, (k,), out)
            continue
        if k == "status" and has_status:
            continue
        if k == "metadata" and isinstance(v, dict):
            for mk, mv in v.items():
                if mk not in IGNORED_META:
                    _walk(mv, ("metadata", mk), out)
            continue
        _walk(v, (k,), out)
    return out


def to_fields(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def from_fields(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for k, v in tree.items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        part = k[2:] if k.startswith("f:") else k
        if isinstance(v, dict) and v:
            out |= from_fields(v, (*prefix, part))
        else:
            out.add((*prefix, part))
    return out


class Entry:
    __slots__ = ("api_version", "manager", "operation", "paths", "subresource", "time")

    def __init__(self, manager: str, operation: str, subresource: str | None, api_version: str,
                 time: str, paths: set[Path]) -> None:
        self.manager = manager
        self.operation = operation
        self.subresource = subresource
        self.api_version = api_version
        self.time = time
        self.paths = paths

    @property
    def ident(self) -> tuple[str, str, str | None]:
        return (self.manager, self.operation, self.subresource)

    def render(self) -> Obj:
        out: Obj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields(self.paths),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def parse(obj: Obj | None) -> list[Entry]:
    raw = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    out = []
    for e in raw:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        out.append(Entry(e["manager"], e.get("operation", "Update"), e.get("subresource") or None,
                         e.get("apiVersion", ""), e.get("time", ""), from_fields(e.get("fieldsV1") or {})))
    return out


def render(entries: list[Entry]) -> list[Obj]:
    return [e.render() for e in entries if e.paths]


def dotted(path: Path) -> str:
    return "." + ".".join(path)


def _deep_merge(target: Obj, patch: Obj) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _deep_merge(target[k], v)
        else:
            target[k] = orjson.loads(orjson.dumps(v)) if isinstance(v, (dict, list)) else v


def remove_path(obj: Obj, path: Path) -> None:
    """Remove a leaf and the maps it leaves empty (never a top-level field itself)."""
    chain: list[tuple[Obj, str]] = []
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return
        chain.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    while len(chain) > 1:
        parent, key = chain.pop()
        if parent[key] == {}:
            del parent[key]
        else:
            break


def _scoped(applied: Obj, *, subresource: str | None, has_status: bool) -> Obj:
    if subresource == "status":
        return {"status": applied.get("status")} if "status" in applied else {}
    out = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}
    if has_status:
        out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in IGNORED_META}
    return out


def apply(
    live: Obj | None,
    applied: Obj,
    *,
    manager: str,
    force: bool,
    subresource: str | None,
    has_status: bool,
    api_version: str,
    now: str,
    resource: str,
    group: str,
    name: str,
) -> Obj:
    """The object after ``manager`` applies ``applied`` over ``live`` (a new dict)."""
    applied_flat = flatten(applied, subresource=subresource, has_status=has_status)
    nulls = {p for p, v in applied_flat.items() if v is None}
    owned = set(applied_flat) - nulls
    live_flat = flatten(live, subresource=subresource, has_status=has_status)
    entries = parse(live)
    ident = (manager, "Apply", subresource)
    mine = next((e for e in entries if e.ident == ident), None)

    conflicts: list[tuple[Entry, Path]] = []
    for e in entries:
        if e is mine:
            continue
        for p in e.paths & owned:
            if live_flat.get(p, _MISSING) != applied_flat[p]:
                conflicts.append((e, p))
    if conflicts and not force:
        causes = []
        for e, p in sorted(conflicts, key=lambda c: (c[0].manager, c[1])):
            using = f" using {e.api_version}" if e.operation == "Update" else ""
            causes.append({
                "type": "FieldManagerConflict",
                "message": f'conflict with "{e.manager}"{using}: {dotted(p)}',
                "field": dotted(p),
            })
        raise apply_conflict(resource, name, group, causes)
    for e, p in conflicts:
        e.paths.discard(p)

    merged: Obj = orjson.loads(orjson.dumps(live)) if live else {}
    _deep_merge(merged, _scoped(applied, subresource=subresource, has_status=has_status))
    others: set[Path] = set()
    for e in entries:
        if e is not mine:
            others |= e.paths
    previous = mine.paths if mine else set()
    for p in sorted((previous - owned - others) | nulls, key=len, reverse=True):
        remove_path(merged, p)

    if mine is None:
        mine = Entry(manager, "Apply", subresource, api_version, now, owned)
        entries.append(mine)
    else:
        mine.paths = owned
        mine.api_version = api_version
    merged.setdefault("metadata", {})
    merged["metadata"].pop("managedFields", None)
    live_body = dict(live or {})
    if live is not None:
        live_meta = dict(live.get("metadata") or {})
        live_meta.pop("managedFields", None)
        live_body["metadata"] = live_meta
    if merged != live_body or owned != previous or not (mine.time):
        mine.time = now
    merged["metadata"]["managedFields"] = render(entries)
    return merged


def record_update(
    old: Obj | None,
    new: Obj,
    *,
    manager: str,
    subresource: str | None,
    has_status: bool,
    api_version: str,
    now: str,
) -> None:
    """Give ``manager`` (operation Update) the fields this write changed; sets new's managedFields."""
    old_flat = flatten(old, subresource=subresource, has_status=has_status)
    new_flat = flatten(new, subresource=subresource, has_status=has_status)
    changed = {p for p, v in new_flat.items() if old_flat.get(p, _MISSING) != v}
    removed = set(old_flat) - set(new_flat)
    entries = parse(old)
    meta = new.setdefault("metadata", {})
    if not changed and not removed:
        if old is not None and "managedFields" in (old.get("metadata") or {}):
            meta["managedFields"] = old["metadata"]["managedFields"]
        else:
            meta.pop("managedFields", None)
        return
    ident = (manager, "Update", subresource)
    mine = next((e for e in entries if e.ident == ident), None)
    for e in entries:
        if e is not mine:
            e.paths -= changed | removed
    if mine is None:
        mine = Entry(manager, "Update", subresource, api_version, now, set())
        entries.append(mine)
    mine.paths = (mine.paths | changed) - removed
    mine.time = now
    mine.api_version = api_version
    meta["managedFields"] = render(entries)
