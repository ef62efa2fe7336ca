"""Applier: every write the engine makes to the destination, and how errors read.

It owns the mechanics of one write, nothing about policy: creating a new copy
with one POST (atomic: an existing object answers 409 and is left alone),
handing a created copy's fields over to the apply manager (``claim``,
``engine.ownership``), server-side apply (field manager ``krm-syncer``, force)
of the main object and, when status sync goes through the subresource, of
``/status``; deletes with a uid precondition; creating a missing destination
namespace. Every write first waits for the destination's shared
``WriteBudget`` (``engine.ratelimit``: adaptive, fed by every answer measured
here) and then passes the shard's ``WriteGate`` (split-brain fencing,
``engine.gate``): while the gate is closed nothing is written and
``WriteRefused`` is raised instead. A destination request failing with a
transport error or a 5xx invalidates the gate's cached answer, so the first
write after an outage re-checks. ``classify`` turns an exception into what the
reconciler should do with the key (retry with backoff, give up on this
version, recreate for an immutable field, ...).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from enum import Enum
from typing import Any, TypeVar

from ray_syncer.engine.gate import WriteGate, WriteRefused, is_outage
from ray_syncer.engine.ownership import JSON_PATCH, claim_patch
from ray_syncer.engine.ratelimit import WriteBudget
from ray_syncer.engine.transform import (
    ANN_CONTENT_HASH,
    MANAGED_BY_LABEL,
    Desired,
    status_body,
)
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError

T = TypeVar("T")


def provisional(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a content hash that matches nothing (0): "not fully written yet"."""
    meta = dict(body["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), ANN_CONTENT_HASH: "0" * 16}
    return {**body, "metadata": meta}


class Failure(Enum):
    RETRY = "retry"  # 429, 5xx, transport, 409, 404 namespace race: back off and retry
    INVALID = "invalid"  # 400/422: terminal for this object version, reported
    IMMUTABLE = "immutable"  # 422 naming an immutable field: policy decides
    DENIED = "denied"  # 401/403: reported, retried slowly (RBAC may be fixed)
    NOT_FOUND = "not_found"  # 404 on a write: namespace or kind vanished


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, TransportError):
        return Failure.RETRY
    if isinstance(exc, ApiError):
        # 413: too large for this destination; like 400/422, terminal for this version.
        if exc.invalid or exc.status == 413:
            text = (exc.message + " " + " ".join(str(c.get("message", "")) for c in exc.causes))
            return Failure.IMMUTABLE if "immutable" in text.lower() else Failure.INVALID
        if exc.forbidden or exc.unauthorized:
            # A namespace being terminated answers 403 too; it is retried all the same.
            return Failure.DENIED
        if exc.not_found:
            return Failure.NOT_FOUND
    return Failure.RETRY


class Applier:
    def __init__(
        self,
        *,
        dest: KubeClient,
        res: ResourceInfo,
        budget: WriteBudget,
        field_manager: str,
        managed_by: str,
        gate: WriteGate | None = None,
    ) -> None:
        self._dest = dest
        self._gate = gate
        self._res = res
        self.budget = budget
        self.field_manager = field_manager
        self._managed_by = managed_by
        self._namespaces_ok: set[str] = set()
        self.writes = 0
        # A kind that discovery says cannot be POSTed is created by apply (after a look first).
        self.can_create = not res.verbs or "create" in res.verbs

    async def _take(self) -> None:
        await self.budget.acquire()
        # Checked after the (possibly long) rate-limit wait, right before the request.
        if self._gate is not None:
            refusal = await self._gate()
            if refusal is not None:
                raise WriteRefused(refusal)

    async def _call(self, request: Awaitable[T], *, write: bool = False) -> T:
        """A destination request; its answer feeds the write budget and, on an outage, the gate."""
        started = time.monotonic()
        try:
            out = await request
        except ApiError as exc:
            if exc.status == 429 or (exc.status == 503 and exc.retry_after):
                self.budget.throttled(exc.retry_after)
            elif exc.status >= 500:
                self.budget.failed()
            if self._gate is not None and is_outage(exc):
                self._gate.invalidate()
            raise
        except TransportError:
            self.budget.failed()
            if self._gate is not None:
                self._gate.invalidate()
            raise
        if write:
            self.budget.succeeded(time.monotonic() - started)
            self.writes += 1  # made: a create answered 409 wrote nothing
        return out

    async def get(self, *, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(self._dest.get(self._res, namespace=namespace, name=name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def create(self, desired: Desired) -> dict[str, Any] | None:
        """A new copy in one POST; None (nothing written) when the name is already taken.

        With a status to write through ``/status``, the copy is created with a provisional
        hash, then given its status and its real hash (see ``apply``).
        """
        body = desired.body if desired.status is None else provisional(desired.body)
        await self._take()
        try:
            out = await self._call(
                self._dest.create(self._res, body, field_manager=self.field_manager), write=True
            )
        except ApiError as exc:
            if exc.status == 409:  # AlreadyExists: someone's object, ours or not; look first
                return None
            raise
        if desired.status is None:
            return out
        return await self.apply(desired, exists=True)

    async def claim(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Hand the fields our create owns over to our apply manager (engine.ownership).

        ``obj`` is the object as last seen; if it changed since (the patch's ``test``
        fails: 422), it is read again and the claim built anew, once.
        """
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace"), meta["name"]
        for attempt in range(2):
            patch = claim_patch(obj, manager=self.field_manager)
            if patch is None:
                return obj  # nothing of ours left under Update
            await self._take()
            try:
                return await self._call(self._dest.patch(
                    self._res, namespace=ns, name=name, body=patch, content_type=JSON_PATCH,
                    params={"fieldManager": self.field_manager},
                ), write=True)
            except ApiError as exc:
                if exc.status != 422 or attempt == 1:
                    raise
            live = await self.get(namespace=ns, name=name)
            if live is None:
                raise ApiError(404, "NotFound", f"{name} vanished while claiming its fields")
            obj = live
        raise AssertionError("unreachable")

    async def apply(self, desired: Desired, *, exists: bool = True) -> dict[str, Any]:
        """Apply the object (and its status through /status); returns the final object.

        The content-hash annotation is what a restart trusts, so it is written last:
        with a status to write, an existing object gets its status first and then the
        main body; a new one is created with a provisional hash, then gets its status,
        then the real hash. A failure anywhere leaves a hash that does not match, so
        the write is retried rather than skipped as a no-op.
        """
        if desired.status is None:
            return await self._main(desired.body)
        if not exists:
            await self._main(provisional(desired.body))
        await self._take()
        await self._call(self._dest.apply(
            self._res,
            status_body(desired),
            field_manager=self.field_manager,
            force=True,
            subresource="status",
        ), write=True)
        return await self._main(desired.body)

    async def _main(self, body: dict[str, Any]) -> dict[str, Any]:
        await self._take()
        return await self._call(
            self._dest.apply(self._res, body, field_manager=self.field_manager, force=True),
            write=True,
        )

    async def delete(self, *, namespace: str | None, name: str, uid: str) -> str:
        """Delete with a uid precondition: ``deleted``, ``absent``, or ``replaced`` (uid differs)."""
        await self._take()
        try:
            await self._call(self._dest.delete(self._res, namespace=namespace, name=name, uid=uid),
                             write=True)
        except ApiError as exc:
            if exc.not_found:
                return "absent"
            if exc.conflict:
                return "replaced"
            raise
        return "deleted"

    async def ensure_namespace(self, namespace: str) -> None:
        """Create the destination namespace if it is missing (cached once seen)."""
        if namespace in self._namespaces_ok:
            return
        try:
            await self._call(self._dest.request("GET", f"/api/v1/namespaces/{namespace}"))
        except ApiError as exc:
            if not exc.not_found:
                raise
            await self._take()
            body = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {MANAGED_BY_LABEL: self._managed_by}},
            }
            try:
                await self._call(self._dest.request("POST", "/api/v1/namespaces", body=body),
                                 write=True)
            except ApiError as exc2:
                if not exc2.conflict:
                    raise
        self._namespaces_ok.add(namespace)

    def forget_namespace(self, namespace: str | None) -> None:
        if namespace:
            self._namespaces_ok.discard(namespace)
