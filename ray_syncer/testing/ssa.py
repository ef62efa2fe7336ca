"""Server-side apply and ``metadata.managedFields`` bookkeeping.

Ownership is tracked per field-manager entry (manager, operation, subresource)
as a set of leaf paths. Maps are owned key by key; lists of custom resources
follow their schema (``x-kubernetes-list-type: map`` entries by key, ``set``
values one by one), built-in kinds merge a few common lists by key
(:data:`BUILTIN_MAP_LISTS`); every other list is ``atomic``, a leaf (a
simplification documented in docs/test-server.md). The rules implemented are
the documented ones:

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

from collections.abc import Callable
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


# Path elements naming a list entry rather than a map key start with NUL, so no map key can
# be mistaken for one: "\x00k:{json keys}" (x-kubernetes-list-type: map) and "\x00v:json" (set).
ENTRY = "\x00"
ListTypes = Callable[[Path], "tuple[str, tuple[str, ...]] | None"]


def entry_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return ENTRY + "k:" + orjson.dumps({k: item[k] for k in keys}, option=orjson.OPT_SORT_KEYS).decode()


def _list_spec(lt: ListTypes | None, spath: Path, value: list[Any]) -> tuple[str, tuple[str, ...]] | None:
    """How this list is owned: ("map", keys), ("set", ()) or None (atomic)."""
    spec = lt(spath) if lt is not None and value else None
    if spec is None:
        return None
    kind, keys = spec
    if kind == "map" and keys and all(isinstance(i, dict) and all(k in i for k in keys) for i in value):
        return spec
    if kind == "set" and all(not isinstance(i, (dict, list)) for i in value):
        return spec
    return None


def _walk(value: Any, prefix: Path, spath: Path, out: dict[Path, Any], lt: ListTypes | None) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _walk(v, (*prefix, k), (*spath, k), out, lt)
        return
    if isinstance(value, list):
        spec = _list_spec(lt, spath, value)
        if spec is not None:
            if spec[0] == "map":
                for item in value:
                    _walk(item, (*prefix, entry_key(item, spec[1])), (*spath, "[]"), out, lt)
            else:
                for item in value:
                    path = (*prefix, ENTRY + "v:" + orjson.dumps(item).decode())
                    out[path] = item
            return
    out[prefix] = value


def flatten(obj: Obj | None, *, subresource: str | None, has_status: bool,
            list_types: ListTypes | None = None) -> dict[Path, Any]:
    """Leaf path -> value for the part of ``obj`` this (sub)resource write may own."""
    out: dict[Path, Any] = {}
    if not obj:
        return out
    lt = list_types
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if subresource == "status":
            if k == "status":
                _walk(v, (k,), (k,), out, lt)
            continue
        if k == "status" and has_status:
            continue
        if k == "metadata" and isinstance(v, dict):
            for mk, mv in v.items():
                if mk not in IGNORED_META:
                    _walk(mv, ("metadata", mk), ("metadata", mk), out, None)
            continue
        _walk(v, (k,), (k,), out, lt)
    return out


# Built-in lists that kube-apiserver's SSA merges by key (their Go types say listType=map),
# by field name. Lists with defaulted key fields (ports: containerPort+protocol) stay atomic.
BUILTIN_MAP_LISTS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "conditions": ("type",),
}


def builtin_list_types(spath: Path) -> tuple[str, tuple[str, ...]] | None:
    keys = BUILTIN_MAP_LISTS.get(spath[-1]) if spath else None
    return ("map", keys) if keys else None


def schema_list_types(schema: Obj | None) -> ListTypes | None:
    """The list ownership a structural schema declares (x-kubernetes-list-type / -list-map-keys)."""
    if not schema:
        return None

    def lookup(spath: Path) -> tuple[str, tuple[str, ...]] | None:
        node: Any = schema
        for part in spath:
            if not isinstance(node, dict):
                return None
            if part == "[]":
                node = node.get("items")
            else:
                props = node.get("properties") or {}
                extra = node.get("additionalProperties")
                node = props.get(part) if part in props else (extra if isinstance(extra, dict) else None)
        if not isinstance(node, dict):
            return None
        kind = node.get("x-kubernetes-list-type")
        if kind == "map":
            return ("map", tuple(node.get("x-kubernetes-list-map-keys") or ()))
        if kind == "set":
            return ("set", ())
        return None

    return lookup


def to_fields(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part[1:] if part.startswith(ENTRY) else f"f:{part}", {})
    return tree


def from_fields(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for k, v in tree.items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        part = k[2:] if k.startswith("f:") else (ENTRY + k if k[:2] in ("k:", "v:", "i:") else k)
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
    return "".join(f"[{p[3:]}]" if p.startswith(ENTRY + "k:") else
                   (f"[={p[3:]}]" if p.startswith(ENTRY) else f".{p}") for p in path)


def _clone(v: Any) -> Any:
    return orjson.loads(orjson.dumps(v)) if isinstance(v, (dict, list)) else v


def _deep_merge(target: Obj, patch: Obj, spath: Path = (), lt: ListTypes | None = None) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _deep_merge(target[k], v, (*spath, k), lt)
        elif isinstance(v, list) and isinstance(target.get(k), list):
            spec = _list_spec(lt, (*spath, k), v)
            current = target[k]
            if spec is not None and _list_spec(lt, (*spath, k), current) == spec:
                target[k] = _merge_list(current, v, spec, (*spath, k, "[]"), lt)
            else:
                target[k] = _clone(v)
        else:
            target[k] = _clone(v)


def _merge_list(current: list[Any], applied: list[Any], spec: tuple[str, tuple[str, ...]],
                spath: Path, lt: ListTypes | None) -> list[Any]:
    out = list(current)
    if spec[0] == "set":
        return out + [_clone(i) for i in applied if i not in out]
    keys = spec[1]
    index = {entry_key(item, keys): i for i, item in enumerate(out)}
    for item in applied:
        at = index.get(entry_key(item, keys))
        if at is None:
            out.append(_clone(item))
        else:
            merged = _clone(out[at])
            _deep_merge(merged, item, spath, lt)
            out[at] = merged
    return out


def _key_fields(element: str) -> set[str]:
    """The key field names of a map-list entry element ("\\x00k:{...}"), else empty."""
    return set(orjson.loads(element[3:])) if element.startswith(ENTRY + "k:") else set()


def is_key_leaf(path: Path) -> bool:
    return len(path) > 1 and path[-1] in _key_fields(path[-2])


def remove_path(obj: Obj, path: Path) -> None:
    """Remove a leaf, then the maps and list entries it leaves empty (never a top-level field).

    A key field of a map-list entry stays while the entry has other fields; callers remove
    key-field leaves after the others (see :func:`is_key_leaf`).
    """
    chain: list[tuple[Any, Any]] = []  # (container, key or index) down to the leaf's parent
    node: Any = obj
    for part in path[:-1]:
        if part.startswith(ENTRY):
            if not isinstance(node, list):
                return
            keys = tuple(sorted(_key_fields(part)))
            at = next((i for i, item in enumerate(node)
                       if isinstance(item, dict) and all(k in item for k in keys)
                       and entry_key(item, keys) == part), None)
            if at is None:
                return
            chain.append((node, at))
            node = node[at]
        else:
            if not isinstance(node, dict) or not isinstance(node.get(part), (dict, list)):
                return
            chain.append((node, part))
            node = node[part]
    last = path[-1]
    if last.startswith(ENTRY):
        if isinstance(node, list):
            if last.startswith(ENTRY + "v:"):
                value = orjson.loads(last[3:])
                if value in node:
                    node.remove(value)
            else:
                entry_keys = tuple(sorted(_key_fields(last)))
                node[:] = [i for i in node if not (isinstance(i, dict) and all(k in i for k in entry_keys)
                                                   and entry_key(i, entry_keys) == last)]
    elif isinstance(node, dict):
        key_names = _key_fields(path[-2]) if len(path) > 1 else set()
        if last in key_names and set(node) - key_names:
            return
        node.pop(last, None)
    while len(chain) > 1:
        parent, key = chain.pop()
        if parent[key] != {}:
            break
        parent.pop(key) if isinstance(parent, list) else parent.__delitem__(key)


def _print_manager(e: Entry) -> str:
    """A managedFields entry as kube-apiserver names it in conflicts (printManager)."""
    text = f'"{e.manager}"'
    if e.subresource:
        text += f' with subresource "{e.subresource}"'
    if e.operation == "Update":
        text += f" using {e.api_version}"
    return text


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
    list_types: ListTypes | None = None,
) -> Obj:
    """The object after ``manager`` applies ``applied`` over ``live`` (a new dict)."""
    lt = list_types
    applied_flat = flatten(applied, subresource=subresource, has_status=has_status, list_types=lt)
    nulls = {p for p, v in applied_flat.items() if v is None}
    owned = set(applied_flat) - nulls
    live_flat = flatten(live, subresource=subresource, has_status=has_status, list_types=lt)
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
        raise apply_conflict([(_print_manager(e), dotted(p))
                              for e, p in sorted(conflicts, key=lambda c: (c[0].manager, c[1]))])
    for e, p in conflicts:
        e.paths.discard(p)

    merged: Obj = orjson.loads(orjson.dumps(live)) if live else {}
    _deep_merge(merged, _scoped(applied, subresource=subresource, has_status=has_status), (), lt)
    others: set[Path] = set()
    for e in entries:
        if e is not mine:
            others |= e.paths
    previous = mine.paths if mine else set()
    # Deepest first, and key fields of list entries after the entries' other fields.
    for p in sorted((previous - owned - others) | nulls, key=lambda p: (is_key_leaf(p), -len(p))):
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
    list_types: ListTypes | None = None,
) -> None:
    """Give ``manager`` (operation Update) the fields this write changed; sets new's managedFields."""
    old_flat = flatten(old, subresource=subresource, has_status=has_status, list_types=list_types)
    new_flat = flatten(new, subresource=subresource, has_status=has_status, list_types=list_types)
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
