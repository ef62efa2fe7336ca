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
  removes them from every other manager, without conflicts; if it sets
  ``metadata.managedFields`` itself (and they decode), those are the entries it
  starts from, ``[{}]`` clearing them (:func:`record_update`).

handlers.py calls :func:`apply` and :func:`record_update`; entries are
rendered in the FieldsV1 format (``{"f:spec": {"f:replicas": {}}}``), sorted as
kube-apiserver sorts them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from typing import Any

import orjson

from .errors import apply_conflict, field_too_long
from .gotime import GoTimeError, parse_time

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


class FieldsError(ValueError):
    """A FieldsV1 set kube-apiserver cannot decode (the entries then fall back to the live ones)."""


def _path_element(key: str) -> str | None:
    """A FieldsV1 key as structured-merge-diff re-serializes it; None for a type it drops unread."""
    raw = key.encode()
    if len(raw) < 2:
        raise FieldsError("key must be 2 characters long")
    if raw[1:2] != b":":
        return None
    kind, rest = key[0], key[2:]
    try:
        if kind == "f":
            return key
        if kind == "v":
            return "v:" + orjson.dumps(orjson.loads(rest), option=orjson.OPT_SORT_KEYS).decode()
        if kind == "k":
            value = orjson.loads(rest)
            if not isinstance(value, dict):
                raise FieldsError("a k: element must be a JSON object")
            return "k:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError as exc:
        raise FieldsError(str(exc)) from None
    if kind == "i":
        digits = rest[1:] if rest[:1] in ("+", "-") else rest
        if not digits or not (digits.isascii() and digits.isdigit()):
            raise FieldsError(f"invalid index {rest!r}")
        return f"i:{int(rest)}"
    return None


def read_fields(tree: Any) -> dict[str, Any]:
    """A ``fieldsV1`` value decoded as kube-apiserver decodes it, then re-encoded (normalized).

    structured-merge-diff's reader: every value is an object (``null`` counts as ``{}``);
    ``"."`` marks the node itself as a member; keys are ``f:``, ``v:``, ``k:`` or ``i:``
    elements, others (``x:...``) are dropped; a node without children is a member, so
    ``{".": {}}`` alone becomes ``{}``. Raises :class:`FieldsError` on anything else.
    """
    children, _member = _read_node(tree)
    return children or {}


def _read_node(tree: Any) -> tuple[dict[str, Any] | None, bool]:
    if tree is None:
        return None, True
    if not isinstance(tree, dict):
        raise FieldsError("a FieldsV1 node must be a JSON object")
    children: dict[str, Any] | None = None
    member = False
    for key, value in tree.items():
        if key == ".":
            member = True
            continue
        element = _path_element(key)
        if element is None:
            continue
        grand, child_member = _read_node(value)
        node: dict[str, Any] = {}
        if grand:
            if child_member:
                node["."] = {}
            node.update(grand)
        children = {} if children is None else children
        children[element] = node
    if not children:
        return None, True
    return children, member


def from_fields(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The leaf paths of a normalized FieldsV1 tree (``"."`` members of inner nodes are not tracked)."""
    out: set[Path] = set()
    for k, v in tree.items():
        if k == ".":
            continue
        part = k[2:] if k.startswith("f:") else ENTRY + k
        if isinstance(v, dict) and set(v) - {"."}:
            out |= from_fields(v, (*prefix, part))
        else:
            out.add((*prefix, part))
    return out


class Entry:
    __slots__ = ("api_version", "fields", "manager", "operation", "original", "paths", "subresource", "time")

    def __init__(self, manager: str, operation: str, subresource: str | None, api_version: str,
                 time: str | None, paths: set[Path], fields: dict[str, Any] | None = None) -> None:
        self.manager = manager
        self.operation = operation
        self.subresource = subresource
        self.api_version = api_version
        self.time = time
        self.paths = paths
        # The FieldsV1 as decoded: rendered as it was (with its "." members) while paths are unchanged.
        self.fields = fields
        self.original = frozenset(paths)

    @property
    def ident(self) -> tuple[str, str, str | None, str]:
        # kube-apiserver's BuildManagerIdentifier: an Update entry is per apiVersion, an Apply entry not.
        return (self.manager, self.operation, self.subresource,
                self.api_version if self.operation == "Update" else "")

    def render(self) -> Obj:
        out: Obj = {}
        if self.manager:
            out["manager"] = self.manager
        out["operation"] = self.operation
        if self.api_version:
            out["apiVersion"] = self.api_version
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = (self.fields if self.fields is not None and self.paths == self.original
                           else to_fields(self.paths))
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def sort_key(self) -> tuple[str, int, str, str, str]:
        # kube-apiserver's sortEncodedManagedFields: operation, time (seconds; none is 0), manager, ...
        return (self.operation, _epoch(self.time), self.manager, self.api_version, self.subresource or "")


@functools.lru_cache(maxsize=4096)
def _epoch(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.strptime(time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
    except ValueError:
        return 0


_ENTRY_KEYS = ("manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource")


def decode(raw: Any) -> list[Entry] | None:
    """``managedFields`` as kube-apiserver's DecodeManagedFields reads them; None if they do not decode.

    Every entry needs operation ``Apply`` or ``Update``, an apiVersion, fieldsType ``FieldsV1``
    and a fieldsV1 set that decodes (:func:`read_fields`); the manager may be empty. Entries
    with the same identity (manager, operation, subresource, and apiVersion for Update) collapse
    into the last one. An empty or absent list decodes to no entries.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        return None
    entries: dict[tuple[str, str, str | None, str], Entry] = {}
    for item in raw:
        e = item if isinstance(item, dict) else ({} if item is None else None)
        if e is None:
            return None
        op, api_version, fields_type = e.get("operation") or "", e.get("apiVersion") or "", e.get("fieldsType") or ""
        manager, subresource, time = e.get("manager") or "", e.get("subresource") or None, e.get("time") or None
        if op not in ("Apply", "Update") or not api_version or fields_type != "FieldsV1":
            return None
        if not all(isinstance(v, str) for v in (op, api_version, manager, subresource or "", time or "")):
            return None
        try:
            fields = read_fields(e.get("fieldsV1"))
        except FieldsError:
            return None
        entry = Entry(manager, op, subresource, api_version, time, from_fields(fields), fields)
        entries.pop(entry.ident, None)
        entries[entry.ident] = entry
    return list(entries.values())


def live_entries(obj: Obj | None) -> list[Entry]:
    """The stored object's entries (ones that do not decode count as none, as in kube-apiserver)."""
    return decode(((obj or {}).get("metadata") or {}).get("managedFields")) or []


def is_reset(raw: Any, *, builtin: bool) -> bool:
    """Does a write's ``managedFields`` ask to clear them?

    ``[{}]`` (one entry with every field unset: kube-apiserver compares it to the zero
    ManagedFieldsEntry, so ``[null]`` and ``[{"manager": ""}]`` count too) clears them, as the
    Server-Side Apply documentation says; so does ``[]`` on built-in kinds, whose typed
    decoding keeps an empty list (custom resources drop it, so there ``[]`` means "not set").
    """
    if not isinstance(raw, list):
        return False
    if not raw:
        return builtin
    if len(raw) != 1:
        return False
    e = raw[0]
    if e is None:
        return True
    if not isinstance(e, dict):
        return False
    return all(e.get(k) is None if k in ("time", "fieldsV1") else not e.get(k) for k in _ENTRY_KEYS)


def render(entries: list[Entry]) -> list[Obj]:
    return [e.render() for e in sorted((e for e in entries if e.paths), key=Entry.sort_key)]


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


BEFORE_FIRST_APPLY = "before-first-apply"


def _known(entries: list[Entry], versions: Collection[str] | None) -> list[Entry]:
    # kube-apiserver compares the object in each entry's apiVersion; an entry whose version the
    # resource does not serve (any more) cannot be converted to and is dropped.
    return entries if versions is None else [e for e in entries if e.api_version in versions]


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
    versions: Collection[str] | None = None,
) -> Obj:
    """The object after ``manager`` applies ``applied`` over ``live`` (a new dict)."""
    lt = list_types
    applied_flat = flatten(applied, subresource=subresource, has_status=has_status, list_types=lt)
    nulls = {p for p, v in applied_flat.items() if v is None}
    owned = set(applied_flat) - nulls
    live_flat = flatten(live, subresource=subresource, has_status=has_status, list_types=lt)
    entries = live_entries(live)
    if not entries and live_flat:
        # An object nobody manages (its managedFields were cleared): kube-apiserver first gives
        # all its fields to an Update entry "before-first-apply", then applies.
        entries = [Entry(BEFORE_FIRST_APPLY, "Update", subresource, api_version, now, set(live_flat))]
    entries = _known(entries, versions)
    ident = (manager, "Apply", subresource, "")
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
        mine = Entry(manager, "Apply", subresource, api_version, None, owned)
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
    if merged != live_body:
        mine.time = now  # as kube-apiserver: only an apply that changes the object stamps its entry
    rendered = render(entries)
    if rendered:
        merged["metadata"]["managedFields"] = rendered
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
    builtin: bool = True,
    versions: Collection[str] | None = None,
) -> None:
    """Sets new's managedFields after a non-apply write (kube-apiserver's FieldManager.Update).

    The base is the ``managedFields`` the write itself carries, if it sets some that decode
    (:func:`decode`; not on a subresource), else the stored object's; ``[{}]`` clears them
    (:func:`is_reset`). Then ``manager`` (operation Update) gets the fields this write changed,
    and they are taken from every other entry; entries left with no fields disappear. An
    update of an object that has no entries at all records none (kube-apiserver only starts
    tracking such an object again at its next apply, see :func:`apply`); a create always does.
    """
    meta = new.setdefault("metadata", {})
    given = meta.pop("managedFields", None)
    base: list[Entry] | None = None
    if subresource is None and given is not None:
        base = [] if is_reset(given, builtin=builtin) else (decode(given) or None)
    if base is None:
        base = live_entries(old)
    if not base and old is not None:
        return
    entries = _known(base, versions)
    old_flat = flatten(old, subresource=subresource, has_status=has_status, list_types=list_types)
    new_flat = flatten(new, subresource=subresource, has_status=has_status, list_types=list_types)
    changed = {p for p, v in new_flat.items() if old_flat.get(p, _MISSING) != v}
    removed = set(old_flat) - set(new_flat)
    if changed or removed:
        ident = (manager, "Update", subresource, api_version)
        mine = next((e for e in entries if e.ident == ident), None)
        for e in entries:
            if e is not mine:
                e.paths -= changed | removed
        if mine is None:
            mine = Entry(manager, "Update", subresource, api_version, now, set())
            entries.append(mine)
        mine.paths = (mine.paths | changed) - removed
        mine.time = now
    rendered = render(entries)
    if rendered:
        meta["managedFields"] = rendered


_ENTRY_TYPES = {"manager": "string", "operation": "v1.ManagedFieldsOperationType", "apiVersion": "string",
                "time": "string", "fieldsType": "string", "subresource": "string"}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def decode_error(obj: Obj, *, builtin: bool) -> str | None:
    """Why kube-apiserver's decoder refuses this object's ``metadata.managedFields`` (else None).

    A wrong JSON type anywhere in the list, or a ``time`` that is not RFC 3339, fails the
    request (400, or 422 for a patch); ``fieldsV1`` takes any JSON here (a bad one only makes
    the entries fall back to the stored ones). Valid times are normalized in place (UTC, to
    the second), as metav1.Time round-trips them. Custom resources name the field without
    the ``metadata.`` prefix, as their decoder does.
    """
    meta = obj.get("metadata")
    raw = meta.get("managedFields") if isinstance(meta, dict) else None
    if raw is None:
        return None
    where = "metadata.managedFields" if builtin else "managedFields"
    if not isinstance(raw, list):
        return (f"json: cannot unmarshal {_json_kind(raw)} into Go struct field ObjectMeta.{where} "
                "of type []v1.ManagedFieldsEntry")
    first: str | None = None
    for item in raw:
        if item is None:
            continue
        if not isinstance(item, dict):
            first = first or (f"json: cannot unmarshal {_json_kind(item)} into Go struct field ObjectMeta.{where} "
                              "of type v1.ManagedFieldsEntry")
            continue
        for key, value in item.items():
            if key not in _ENTRY_TYPES or value is None:
                continue
            if not isinstance(value, str):
                first = first or (f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                                  f"ManagedFieldsEntry.{where}.{key} of type {_ENTRY_TYPES[key]}")
            elif key == "time":
                try:
                    item[key] = parse_time(value)
                except GoTimeError as exc:
                    return str(exc)  # metav1.Time's own decoder: stops the decoding at once
    return first


def _go_quote(s: str) -> str:
    """Go's strconv.Quote (how %q prints a field value in a validation error)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def manager_causes(manager: str, field: str) -> list[dict[str, str]]:
    """kube-apiserver's ValidateFieldManager: at most 128 bytes, printable characters only."""
    causes: list[dict[str, str]] = []
    if len(manager.encode()) > 128:
        causes.append(field_too_long(field, 128))
    position = 0
    for ch in manager:
        if not ch.isprintable():
            causes.append({"reason": "FieldValueInvalid",
                           "message": f"Invalid value: {_go_quote(manager)}: invalid character "
                                      f"U+{ord(ch):04X} (at position {position})",
                           "field": field})
        position += len(ch.encode())
    return causes


def invalid_entries(entries: Any) -> list[dict[str, str]]:
    """kube-apiserver's ValidateManagedFields on the entries a write ends up with.

    Only what can survive decoding is checked: the manager (:func:`manager_causes`) and a
    subresource longer than 256 bytes. kube-apiserver repeats these causes once per validator
    that runs them (3 or 4 times on an update, depending on the kind); here each is listed once.
    """
    causes: list[dict[str, str]] = []
    for i, e in enumerate(entries if isinstance(entries, list) else []):
        path = f"metadata.managedFields[{i}]"
        causes += manager_causes(e.get("manager") or "", f"{path}.manager")
        if len((e.get("subresource") or "").encode()) > 256:
            causes.append(field_too_long(f"{path}.subresource", 256))
    return causes
