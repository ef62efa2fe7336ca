"""Events on a KRMSyncer: one per condition transition worth telling a person, and takeovers.

Why it exists: status says how a syncer is; Events say what happened to it, in
``kubectl describe``. :class:`Notifier` compares the status written before with
the new one and posts an Event for each transition a person should hear of
(not Ready, unreachable, degraded, running again, synced, suspended, resumed),
never the same (reason, message) twice in a row, plus one when copies of a
deleted KRMSyncer were taken over. Posting goes through ``kube.events``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ray_syncer import API_GROUP, API_VERSION, KIND
from ray_syncer.engine.spec import ShardHealth
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.events import post_event
from ray_syncer.operator.status import CONDITION_TYPES, condition

log = logging.getLogger("ray_syncer.operator.reconciler")

COMPONENT = "krm-syncer"


class Notifier:
    def __init__(self, client: KubeClient, *, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock
        self.instance = f"{COMPONENT}-{uuid.uuid4().hex[:6]}"

    async def transitions(
        self,
        raw: dict[str, Any],
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any],
        told: set[tuple[str, str]],
    ) -> None:
        """One Event per condition transition worth telling a person about."""
        out: list[tuple[str, str, str]] = []
        for ctype in CONDITION_TYPES:
            was, now_c = condition(old, ctype), condition(new, ctype)
            if now_c is None:
                continue
            if was is not None and (was.get("status"), was.get("reason")) == (
                now_c["status"],
                now_c["reason"],
            ):
                continue
            reason, message, status = now_c["reason"], now_c["message"], now_c["status"]
            if ctype == "Ready" and status == "False":
                out.append(("Warning", reason, message))
            elif ctype == "Ready" and status == "True" and reason == "Running":
                out.append(("Normal", "ShardsRunning", message))
            elif ctype == "Suspended" and status == "True" and reason == "Suspended":
                out.append(("Normal", "Suspended", "syncing paused: no watches, no writes"))
            elif (
                ctype == "Suspended"
                and status == "False"
                and was is not None
                and was.get("reason") == "Suspended"
            ):
                out.append(("Normal", "Resumed", message))
            elif ctype == "Synced" and status == "True" and reason == "Synced":
                out.append(("Normal", "Synced", message))
            elif ctype == "DestinationReachable" and status == "False":
                out.append(("Warning", reason, message))
            elif ctype == "Degraded" and status == "True":
                # Shard problems (403 per kind, KindMissing, conflicts, object errors, guard).
                out.append(("Warning", reason, message))
            elif ctype == "RecoveryPointObjective" and status == "False":
                out.append(("Warning", "RecoveryPointObjectiveMissed", message))
            elif (ctype == "RecoveryPointObjective" and status == "True" and was is not None
                  and was.get("status") == "False"):
                out.append(("Normal", "RecoveryPointObjectiveMet", message))
        for etype, reason, message in out:
            ident = (reason, message)
            if ident in told:
                continue
            told -= {e for e in told if e[0] == reason}
            told.add(ident)
            await self.emit(raw, etype, reason, message)

    async def takeovers(
        self, raw: dict[str, Any], shards: list[ShardHealth], told: dict[tuple[str, str], int]
    ) -> None:
        """A Normal Event when copies of a deleted KRMSyncer were taken over, saying from whom."""
        for h in shards:
            for owner, count in h.took_over.items():
                before = told.get((h.shard_id, owner), 0)
                if count <= before:
                    continue
                told[(h.shard_id, owner)] = count
                await self.emit(
                    raw, "Normal", "TookOver",
                    f"took over {count - before} {h.shard_id.split('/')[3]} cop"
                    f"{'y' if count - before == 1 else 'ies'} made by KRMSyncer {owner}, which no "
                    "longer exists",
                )

    async def emit(self, raw: Mapping[str, Any], etype: str, reason: str, message: str) -> None:
        involved = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, **raw}
        recorded = await post_event(self.client, involved, reason=reason, message=message,
                                    etype=etype, component=COMPONENT, instance=self.instance,
                                    now=self.clock())
        if not recorded:
            log.warning("event %s not recorded", reason)
