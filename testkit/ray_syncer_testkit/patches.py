"""The three PATCH formats other than apply: JSON merge, JSON patch, strategic merge.

Pure functions over plain dicts. handlers.py picks one by Content-Type;
strategic merge is offered only for built-in kinds (custom resources get 415,
as from kube-apiserver).

Strategic merge approximates the Go struct tags with a table keyed by field
name (see STRATEGIC_KEYS): lists named there merge by that key, ``finalizers``
merges as a set, every other list is replaced. The directives ``$patch:
delete|replace|merge``, ``$deleteFromPrimitiveList/<field>`` and
``$setElementOrder/<field>`` (ignored) and ``$retainKeys`` (ignored) are
understood.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import StatusError, bad_request


class PatchError(StatusError):
    """A JSON patch that does not apply (a failed ``test``, a missing path, an unknown op).

    kube-apiserver answers all of them alike, without saying which operation failed: 422
    ``Invalid``, "the server rejected our request due to an error in our request", empty
    details. The reason is kept in :attr:`why` (and the exception's text) for debugging.
    """

    def __init__(self, why: str) -> None:
        super().__init__(422, "Invalid", "the server rejected our request due to an error in our request",
                         details={})
        self.why = why

    def __str__(self) -> str:
        return self.why


# -- RFC 7386 merge patch ---------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# -- RFC 6902 JSON patch -----------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not allow_end):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: Any, parts: list[str], op: str) -> Any:
    cur = doc
    for token in parts[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, allow_end=False)]
        else:
            raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path")
    return cur


def _get(doc: Any, parts: list[str], op: str) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts, op)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing key: {last}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path")


def _add(doc: Any, parts: list[str], value: Any, op: str) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts, op)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path")
    return doc


def _remove(doc: Any, parts: list[str], op: str) -> Any:
    if not parts:
        raise PatchError("jsonpatch remove of the whole document")
    parent = _parent(doc, parts, op)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing key: {last}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path")


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for raw in ops:
        if not isinstance(raw, dict) or "op" not in raw or "path" not in raw:
            raise bad_request(f"invalid json patch operation: {raw!r}")
        op, parts = raw["op"], _pointer(raw["path"])
        if op == "add":
            doc = _add(doc, parts, copy.deepcopy(raw.get("value")), op)
        elif op == "remove":
            _remove(doc, parts, op)
        elif op == "replace":
            if not parts:
                doc = copy.deepcopy(raw.get("value"))
            else:
                # kube-apiserver's json-patch (v4) replaces a missing object key as if it were there
                # (it adds it); a missing parent or list index is still an error.
                parent = _parent(doc, parts, op)
                if isinstance(parent, list):
                    parent[_index(parent, parts[-1], allow_end=False)] = copy.deepcopy(raw.get("value"))
                elif isinstance(parent, dict):
                    parent[parts[-1]] = copy.deepcopy(raw.get("value"))
                else:
                    raise PatchError(f"jsonpatch {op} operation does not apply: doc is missing path")
        elif op in ("move", "copy"):
            src = _pointer(raw.get("from", ""))
            value = _remove(doc, src, op) if op == "move" else copy.deepcopy(_get(doc, src, op))
            doc = _add(doc, parts, value, op)
        elif op == "test":
            if _get(doc, parts, op) != raw.get("value"):
                raise PatchError("testing value failed" if parts else "test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}")
    return doc


# -- strategic merge patch -----------------------------------------------------
STRATEGIC_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
    "secrets": "name",  # ServiceAccount.secrets
}
STRATEGIC_SETS = frozenset({"finalizers"})


def _list_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return STRATEGIC_KEYS.get(field)


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    deletions = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$deleteFromPrimitiveList/")}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list):
            result[k] = _merge_list(k, result.get(k), v)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        else:
            result[k] = v
    for k, values in deletions.items():
        if isinstance(result.get(k), list):
            result[k] = [x for x in result[k] if x not in values]
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    cur = list(current) if isinstance(current, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if field in STRATEGIC_SETS:
        out = list(cur)
        for item in patch:
            if item not in out:
                out.append(item)
        return out
    key = _list_key(field, cur + patch)
    if key is None:
        return copy.deepcopy(patch)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            continue
        idx = next((i for i, c in enumerate(cur) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                cur.pop(idx)
            continue
        if idx is None:
            cur.append(strategic_merge({}, item))
        else:
            cur[idx] = strategic_merge(cur[idx], item)
    return cur
