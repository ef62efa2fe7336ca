"""The per-object decisions of a shard, in one place: the shard and ``ray-syncer diff`` both ask here.

Why it exists: ``diff`` tells a person whether the standby holds what the active
holds. If it decided differently from the shard (where a source object lands,
which object wins a destination name, what its copy looks like, whether a copy
whose source is gone goes too) it would say "in sync" about a standby that is
not. So both make these decisions through this module:

* :func:`dest_key`: the destination key of a source object (namespace mapping
  applied);
* :class:`Claims`: with namespace mapping of all source namespaces into one,
  several source objects may claim one destination name; the smallest source
  namespace wins, always, whatever order the objects are seen in;
* :func:`writes_status` and :func:`desired_copy`: the desired copy (the
  engine's pure ``transform``), status included when the destination kind has
  a status subresource and the rule syncs status;
* :func:`removes_copies`: whether a copy whose source is gone is deleted
  (``deletionPolicy: Orphan`` keeps it).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from ray_syncer.engine.spec import ShardSpec
from ray_syncer.engine.transform import (
    Desired,
    dest_namespace_for,
    exclusion_reason,
    object_key,
    syncs_status,
    transform,
)
from ray_syncer.kube.resources import ResourceInfo


def dest_key(spec: ShardSpec, obj: dict[str, Any], *, namespaced: bool) -> tuple[str | None, str, str]:
    """(source namespace, name, destination key) of a source object."""
    meta = obj.get("metadata") or {}
    src_ns = meta.get("namespace") if namespaced else None
    name = meta.get("name", "")
    return src_ns, name, object_key(dest_namespace_for(spec, src_ns), name)


def writes_status(spec: ShardSpec, dest_res: ResourceInfo | None) -> bool:
    """Whether copies get ``.status``, through the destination's status subresource."""
    return bool(dest_res is not None and dest_res.has_status and syncs_status(spec))


def desired_copy(
    spec: ShardSpec, obj: dict[str, Any], *, managed_by: str, namespaced: bool,
    status_subresource: bool,
) -> Desired:
    """The destination copy of ``obj`` (deterministic: same source, same bytes, same hash)."""
    return transform(obj, spec=spec, managed_by=managed_by, namespaced=namespaced,
                     status_subresource=status_subresource)


def removes_copies(spec: ShardSpec) -> bool:
    """Whether a copy whose source object is gone is deleted (not under ``Orphan``)."""
    return spec.deletion_policy != "Orphan"


def maps_namespaces_together(spec: ShardSpec, *, namespaced: bool) -> bool:
    """All source namespaces into one destination namespace: names can collide."""
    return namespaced and bool(spec.dest_namespace) and spec.source_namespace is None


class Claims:
    """Which source namespaces claim each destination name, and which one wins.

    Fed incrementally by the shard (objects seen, objects gone, relists) or all
    at once by ``diff`` (:meth:`winners`). During a relist the claims are rebuilt
    from the list; a smaller namespace that held a name before the list may still
    come later in it (lists need not be ordered), so a bigger namespace's win is
    deferred to the end of the list instead of flipping the copy twice. A list
    that fails half-way leaves the claims as they were.
    """

    def __init__(self) -> None:
        self._claims: dict[str, list[str]] = {}
        self.collisions: dict[str, list[str]] = {}  # dest key -> claiming namespaces, sorted
        self._before: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
        self._deferred: dict[str, str] = {}  # dest key -> namespace whose win waits for list end

    def message(self, sample: int) -> str:
        """The collisions, for a person: each name, who claims it and who wins."""
        items = sorted(self.collisions.items())[:sample]
        parts = [f"{k} <- {', '.join(v)} (winner {v[0]})" for k, v in items]
        return f"namespace mapping collisions: {'; '.join(parts)}"

    def winner(self, key: str) -> str | None:
        claim = self._claims.get(key)
        return claim[0] if claim else None

    def claim(self, key: str, namespace: str) -> bool:
        """``namespace`` has an object at ``key``; True when it is the one to sync now."""
        claim = self._claims.setdefault(key, [])
        if namespace not in claim:
            bisect.insort(claim, namespace)
        if len(claim) > 1:
            self.collisions[key] = list(claim)
        if claim[0] != namespace:
            return False  # a collision loser: the smallest source namespace wins, always
        if self._before is not None:
            before = self._before[0].get(key)
            if before and before[0] < namespace:
                self._deferred[key] = namespace
                return False
        return True

    def release(self, key: str, namespace: str) -> tuple[bool, str | None]:
        """``namespace``'s object at ``key`` is gone. Returns (the name is still claimed, the
        namespace that takes the name over when the winner left, else None)."""
        claim = self._claims.get(key)
        if not claim or namespace not in claim:
            return False, None
        was_winner = claim[0] == namespace
        claim.remove(namespace)
        if len(claim) < 2:
            self.collisions.pop(key, None)
        if not claim:
            del self._claims[key]
            return False, None
        return True, claim[0] if was_winner else None

    def list_begin(self) -> None:
        # Rebuilt from the list; the old claims come back if the list fails half-way.
        self._before = (self._claims, dict(self.collisions))
        self._claims = {}
        self.collisions = {}

    def list_end(self) -> dict[str, str]:
        """Deferred wins that stand at the end of the list: dest key -> winning namespace."""
        self._before = None
        deferred, self._deferred = self._deferred, {}
        return {k: ns for k, ns in deferred.items() if self.winner(k) == ns}

    def list_abort(self) -> None:
        self._deferred = {}
        if self._before is not None:
            self._claims, self.collisions = self._before
            self._before = None

    @classmethod
    def winners(
        cls, spec: ShardSpec, objects: Iterable[dict[str, Any]], *, namespaced: bool,
    ) -> dict[str, dict[str, Any]]:
        """Destination key -> the source object synced there, from a whole list (``diff``).

        Excluded objects (``transform.exclusion_reason``) count as absent, as in the shard.
        """
        kept = [o for o in objects if exclusion_reason(o, spec=spec) is None]
        if not maps_namespaces_together(spec, namespaced=namespaced):
            return {dest_key(spec, o, namespaced=namespaced)[2]: o for o in kept}
        claims = cls()
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for obj in kept:
            src_ns, _name, key = dest_key(spec, obj, namespaced=namespaced)
            claims.claim(key, src_ns or "")
            seen[(key, src_ns or "")] = obj
        return {key: seen[(key, ns)] for key, ns in seen if claims.winner(key) == ns}
