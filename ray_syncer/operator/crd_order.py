"""CRDs before their objects: hold custom-resource shards until their CRD is Established.

Why it exists: a KRMSyncer that syncs CustomResourceDefinitions *and* the
custom resources they define (the usual "mirror my whole app" setup) must not
start the custom-resource shards before the destination serves the kind: they
would only fail and back off blindly. The operator's reconciler asks this
module, on every pass, which of a syncer's planned shards must wait; those are
not started, and their status entry says what they wait for. Once the CRD shard
has applied the CRD and the destination reports ``Established=True``, the next
pass starts them.

Rules:
* only when the same syncer has a CRD shard (``apiextensions.k8s.io``
  ``CustomResourceDefinition``); otherwise the engine's own ``KindMissing``
  wait applies;
* a shard is gated when its kind is defined by a CRD on the *source*
  (``<plural>.<group>``); built-in and aggregated kinds never wait;
* a CRD seen Established once is not asked again (until ``forget``).

Errors reading either cluster keep the shard waiting ("cannot check"), never
start it on a guess.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ray_syncer.engine.spec import ShardHealth, ShardSpec, ShardState
from ray_syncer.kube.client import ApiError, ResourceInfo, TransportError

CRD_GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"
CRD_RES = ResourceInfo(
    CRD_GROUP, "v1", CRD_KIND, "customresourcedefinitions", False, has_status=True,
    verbs=frozenset({"get", "list", "watch"}),
)


def syncs_crds(shards: Sequence[ShardSpec]) -> bool:
    return any(s.group == CRD_GROUP and s.kind == CRD_KIND for s in shards)


def crd_gates(
    shards: Sequence[ShardSpec], infos: Iterable[ResourceInfo], source_crds: set[str]
) -> dict[str, str]:
    """Pure: shard id -> name of the CRD it must wait for."""
    if not syncs_crds(shards):
        return {}
    plural = {(i.group, i.version, i.kind): i.plural for i in infos}
    out: dict[str, str] = {}
    for s in shards:
        if s.group in ("", CRD_GROUP):
            continue
        p = plural.get((s.group, s.version, s.kind))
        if p and f"{p}.{s.group}" in source_crds:
            out[s.shard_id] = f"{p}.{s.group}"
    return out


def established(crd: dict[str, Any]) -> tuple[bool, str]:
    for c in (crd.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Established":
            if c.get("status") == "True":
                return True, ""
            return False, f"Established={c.get('status')} ({c.get('reason') or 'no reason'})"
    return False, "no Established condition yet"


def waiting_health(shard_id: str, crd: str, why: str) -> ShardHealth:
    return ShardHealth(
        shard_id=shard_id,
        state=ShardState.KIND_MISSING,
        message=f"waiting for CRD {crd} to be Established on the destination: {why}",
    )


class CrdGate:
    """Per-syncer memory of source CRDs and destination CRDs already Established."""

    def __init__(self) -> None:
        self.source_crds: set[str] | None = None
        self.ready: set[str] = set()

    def forget(self) -> None:
        self.source_crds = None
        self.ready.clear()

    async def waits(
        self,
        *,
        source: Any,
        dest: Any,
        shards: Sequence[ShardSpec],
        infos: Iterable[ResourceInfo],
        refresh: bool = False,
    ) -> dict[str, ShardHealth]:
        """Shards to hold back now, with the health entry that explains why."""
        if not syncs_crds(shards):
            return {}
        if self.source_crds is None or refresh:
            try:
                items, _ = await source.list_all(CRD_RES)
                self.source_crds = {i["metadata"]["name"] for i in items}
            except (ApiError, TransportError):
                if self.source_crds is None:
                    self.source_crds = set()  # cannot tell yet: the engine's KindMissing wait applies
        gates = crd_gates(shards, infos, self.source_crds)
        out: dict[str, ShardHealth] = {}
        verdicts: dict[str, str | None] = {}
        for sid, crd in sorted(gates.items()):
            if crd in self.ready:
                continue
            if crd not in verdicts:
                verdicts[crd] = await self._check(dest, crd)
            why = verdicts[crd]
            if why is None:
                self.ready.add(crd)
            else:
                out[sid] = waiting_health(sid, crd, why)
        return out

    async def _check(self, dest: Any, name: str) -> str | None:
        try:
            crd = await dest.get(CRD_RES, namespace=None, name=name)
        except ApiError as exc:
            if exc.not_found:
                return "not created there yet (the CRD shard applies it first)"
            return f"cannot check ({exc.status} {exc.reason})"
        except TransportError:
            return "cannot check (the destination does not answer)"
        ok, why = established(crd)
        return None if ok else why


class CrdOrderingBackend:
    """Wraps the operator's backend (supervisor): holds gated shards back, explains them in health.

    The reconciler plans every shard as usual; this wrapper removes the ones
    whose CRD is not Established on the destination before the supervisor sees
    them, and adds a ``KindMissing`` health entry saying what they wait for, so
    the syncer's status shows it. Clients are built from the shards' own
    ``ClusterConfig`` values (one per config, reused across passes).
    """

    def __init__(
        self,
        inner: Any,
        *,
        client_factory: Callable[[Any], Any] | None = None,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._factory = client_factory
        self._clients: dict[Any, Any] = {}
        self._gates: dict[str, CrdGate] = {}
        self._refreshed: dict[str, float] = {}
        self._refresh_s = refresh_s
        self._clock = clock

    def _client(self, config: Any) -> Any:
        client = self._clients.get(config)
        if client is None:
            if self._factory is None:
                from ray_syncer.kube.client import KubeClient

                client = KubeClient(config)
            else:
                client = self._factory(config)
            self._clients[config] = client
        return client

    async def held_back(self, desired: Mapping[str, Any]) -> dict[str, ShardHealth]:
        by_syncer: dict[str, list[Any]] = {}
        for d in desired.values():
            by_syncer.setdefault(d.spec.syncer_key, []).append(d)
        held: dict[str, ShardHealth] = {}
        for key, items in sorted(by_syncer.items()):
            specs = [d.spec for d in items]
            if not syncs_crds(specs) or items[0].source is None or items[0].dest is None:
                self._gates.pop(key, None)
                continue
            source, dest = self._client(items[0].source), self._client(items[0].dest)
            infos: list[ResourceInfo] = []
            for s in specs:
                if s.group in ("", CRD_GROUP):
                    continue
                try:
                    info = await source.resolve(s.group, s.version, s.kind)
                except (ApiError, TransportError):
                    info = None
                if info is not None:
                    infos.append(info)
            gate = self._gates.setdefault(key, CrdGate())
            now = self._clock()
            refresh = now - self._refreshed.get(key, float("-inf")) >= self._refresh_s
            if refresh:
                self._refreshed[key] = now
            held.update(
                await gate.waits(source=source, dest=dest, shards=specs, infos=infos, refresh=refresh)
            )
        return held

    async def apply(self, desired: Mapping[str, Any]) -> Any:
        held = await self.held_back(desired)
        if held:
            # A new source CRD may have appeared: look again soon rather than after refresh_s.
            for sid in held:
                self._refreshed.pop(desired[sid].spec.syncer_key, None)
        report = await self.inner.apply({sid: d for sid, d in desired.items() if sid not in held})
        for sid, health in held.items():
            report.health.setdefault(sid, health)
        return report

    async def shutdown(self) -> int:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()
        n: int = await self.inner.shutdown()
        return n
