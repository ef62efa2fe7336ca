"""Who owns a destination object: field ownership after a create, and copies of deleted syncers.

Two questions the reconciler asks about a destination object, kept here so the
rules read in one place:

**Did our apply remove what it should?** A new copy is created with one POST
(atomic "create if absent": an existing object of someone else's answers 409
and is never touched). kube-apiserver records a POST's fields under the
manager's *Update* operation, not *Apply*, and server-side apply only removes a
field that no other entry still owns: a field the source drops later would stay
in the copy, owned by our own create. Most updates remove nothing, so instead
of paying a request to move that ownership after every create, the apply's
answer is checked (``leftovers``): only when the Update entry still holds a
field the desired object no longer has is ownership handed to the apply
manager (``claim_patch``: a JSON patch that changes only
``metadata.managedFields``, the way kubectl upgrades client-side-applied
objects, guarded by a ``test`` of the resourceVersion) and the apply repeated.

**May a syncer take over a copy another syncer made?** Users replace and
rename KRMSyncers; the old one's copies stay (by design) and would otherwise be
"another syncer's" forever. A copy is taken over only when all of this holds:

* it is labelled managed-by another syncer and names it (``syncer`` annotation);
* it was made from *this very source object*: its ``source-uid`` annotation is
  the uid of the object we are syncing (uids are unique across clusters, so a
  copy from another source cluster never qualifies, whatever the clusters are
  called);
* that syncer no longer exists where it could run: not on the source cluster
  (where a push-mode owner lives), and not as a pull-mode syncer on the
  destination. ``OwnerProbe`` asks both; a read that fails means "alive".

A live owner stays a conflict, and the conflict message names it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ray_syncer import API_GROUP, API_VERSION
from ray_syncer.engine.transform import ANN_SOURCE_UID, ANN_SYNCER, MANAGED_BY_LABEL
from ray_syncer.kube.client import ApiError, KubeClient, TransportError

JSON_PATCH = "application/json-patch+json"


# -- field ownership after a create -------------------------------------------------------


def _entries(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _main(entry: Mapping[str, Any], manager: str, operation: str) -> bool:
    return (entry.get("manager") == manager and entry.get("operation") == operation
            and not entry.get("subresource"))


def _update_entry(obj: Mapping[str, Any], manager: str) -> dict[str, Any] | None:
    return next((e for e in _entries(obj) if _main(e, manager, "Update")), None)


def leftovers(obj: Mapping[str, Any], desired: Mapping[str, Any], *, manager: str) -> bool:
    """Whether ``manager``'s Update entry (its create) still holds a field ``desired`` lacks.

    ``obj`` is the object as our apply left it. Lists are compared whole: a list that
    differs from the desired one in a part our create owns counts (the safe answer).
    """
    update = _update_entry(obj, manager)
    return update is not None and _extra(update.get("fieldsV1") or {}, obj, desired)


def _extra(fields: Mapping[str, Any], actual: Any, wanted: Any) -> bool:
    for key, sub in fields.items():
        if key == ".":
            continue
        if not key.startswith("f:"):  # k:/v:/i: list items: compare the lists
            if actual != wanted:
                return True
            continue
        name = key[2:]
        if not isinstance(actual, dict) or name not in actual:
            continue  # already gone
        if not isinstance(wanted, dict) or name not in wanted:
            return True  # still there, and no longer wanted
        if sub and _extra(sub, actual[name], wanted[name]):
            return True
    return False


def _union(a: Any, b: Any) -> Any:
    # fieldsV1 is a trie of dicts: the union of two sets is a deep merge.
    if not isinstance(a, dict) or not isinstance(b, dict):
        return a if a else b
    out = dict(a)
    for k, v in b.items():
        out[k] = _union(out[k], v) if k in out else v
    return out


def claim_patch(obj: Mapping[str, Any], *, manager: str) -> list[dict[str, Any]] | None:
    """The claim for ``obj`` as it is now, or None when there is nothing to hand over.

    ``manager``'s Update entry becomes its Apply entry (merged into it if there is one);
    every other entry is kept as it is.
    """
    entries = _entries(obj)
    update = _update_entry(obj, manager)
    if update is None:
        return None
    applied = next((e for e in entries if _main(e, manager, "Apply")), None)
    out: list[dict[str, Any]] = []
    for e in entries:
        if e is update:
            if applied is None:
                out.append({**e, "operation": "Apply"})
        elif e is applied:
            out.append({**e, "fieldsV1": _union(e.get("fieldsV1") or {}, update.get("fieldsV1") or {})})
        else:
            out.append(e)
    rv = (obj.get("metadata") or {}).get("resourceVersion", "")
    return [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/metadata/managedFields", "value": out},
    ]


# -- copies of syncers that are gone -------------------------------------------------------


def foreign_owner(existing: Mapping[str, Any], desired: Mapping[str, Any], *,
                  managed_by: str) -> str | None:
    """``<ns>/<name>`` of the other syncer that made ``existing`` from the same source object.

    None when ``existing`` is not such a copy: unlabelled, ours, unnamed, or made from a
    different source object (another cluster, or an object since recreated).
    """
    meta = existing.get("metadata") or {}
    label = (meta.get("labels") or {}).get(MANAGED_BY_LABEL)
    if not label or label == managed_by:
        return None
    annotations = meta.get("annotations") or {}
    owner = annotations.get(ANN_SYNCER)
    source_uid = annotations.get(ANN_SOURCE_UID)
    wanted_uid = ((desired.get("metadata") or {}).get("annotations") or {}).get(ANN_SOURCE_UID)
    if not owner or not source_uid or source_uid != wanted_uid:
        return None
    return str(owner)


def _syncer_path(owner: str) -> str | None:
    ns, sep, name = owner.partition("/")
    if not sep or not ns or not name or "/" in name:
        return None
    return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{ns}/krmsyncers/{name}"


class OwnerProbe:
    """Whether a KRMSyncer still exists where it could own our copies; answers cached briefly.

    ``alive(owner)`` is True when it exists on the source, or as a pull-mode syncer on the
    destination; False only when both reads succeed and say it is not there; None when a
    read failed (callers treat None as alive: never take over from doubt).
    """

    def __init__(self, *, source: KubeClient, dest: KubeClient, ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._dest = dest
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, bool | None]] = {}

    async def alive(self, owner: str) -> bool | None:
        now = self._clock()
        hit = self._cache.get(owner)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        answer = await self._ask(owner)
        self._cache[owner] = (now, answer)
        return answer

    async def _ask(self, owner: str) -> bool | None:
        path = _syncer_path(owner)
        if path is None:
            return None
        try:
            on_source = await self._get(self._source, path)
            if on_source is not None:
                return True
            on_dest = await self._get(self._dest, path)
        except (ApiError, TransportError):
            return None
        return on_dest is not None and (on_dest.get("spec") or {}).get("mode") == "pull"

    @staticmethod
    async def _get(client: KubeClient, path: str) -> dict[str, Any] | None:
        try:
            return await client.request("GET", path)
        except ApiError as exc:
            # 404 is "no such syncer" (or no KRMSyncer API there at all): not there.
            if exc.not_found:
                return None
            raise
