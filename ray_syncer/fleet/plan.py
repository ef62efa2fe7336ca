"""The supervisor's decisions: desired shards vs running shards -> ordered actions.

Why it exists: the supervisor actor (``fleet.actors``) must stop redundant
shards before starting missing ones, restart failed or changed ones, pack shards
into host actors and never run one shard twice. Those rules are plain Python
here, so they are tested without Ray; the actor only gathers ``HostView``s
from its hosts, calls :func:`plan`, and executes the returned actions in order.

Vocabulary:
* a *host* is one Ray actor (one process). With ``shards_per_host == 1`` every
  shard gets its own host, named exactly like the shard
  (``<ns>/<syncer>/<group>/<kind>/<namespace>``); when packing, hosts are named
  ``host/<n>`` and may hold shards of several syncers (a fleet of one-namespace
  tenants must pack too). A new shard goes first to a host that already runs
  its syncer, so a syncer's destination client (and its rate limit) is shared
  inside one process; shard names stay visible in health, metrics and status.
* a shard's *revision* is a digest of everything whose change requires a
  restart (its spec, the credentials' content hash, engine options).
* a host's *planned* shards are those it was created for (its Ray repr names
  them). When Ray restarts a host elsewhere (its node was lost), it comes back
  empty and gets exactly those shards back first, so the repr stays true and
  the load stays where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.engine.spec import ShardSpec

HOST_PREFIX = "host/"
SUPERVISOR_NAME = "supervisor"
# shards_per_host == 0 means automatic (the default): dedicated hosts up to this many shards,
# then this many per host.
AUTOMATIC = 0
AUTO_PACK_THRESHOLD = 50
AUTO_PACK_SIZE = 50


@dataclass(frozen=True)
class DesiredShard:
    """One shard the reconciler wants running, with what it needs to start."""

    spec: ShardSpec
    revision: str
    # ClusterConfig values for the shard's source and destination; never compared or logged.
    source: Any = field(default=None, compare=False, repr=False)
    dest: Any = field(default=None, compare=False, repr=False)
    options: Any = field(default=None, compare=False, repr=False)
    # The syncer's ray_syncer.fencing.FenceIdentity: the host builds the shard's write gate
    # from it (None: no gate, e.g. fakes in tests).
    fence: Any = field(default=None, compare=False, repr=False)

    @property
    def shard_id(self) -> str:
        return self.spec.shard_id


@dataclass(frozen=True)
class RunningShard:
    """A shard as its host reports it."""

    shard_id: str
    syncer_key: str
    revision: str
    # The shard's run task ended (crashed or stopped by itself): it needs a restart.
    failed: bool = False


@dataclass(frozen=True)
class HostView:
    """One host actor as the supervisor last saw it."""

    name: str
    syncer_key: str
    shards: tuple[RunningShard, ...] = ()
    # False when the host did not answer (restarting): leave it alone, start nothing it holds elsewhere.
    reachable: bool = True
    # The shards it was created for: a restarted (empty) host gets these back first.
    planned: tuple[str, ...] = ()


@dataclass(frozen=True)
class StopShard:
    host: str
    shard_id: str
    reason: str  # Redundant | Duplicate | Changed | Failed


@dataclass(frozen=True)
class StartShard:
    host: str
    shard: DesiredShard
    reason: str  # Missing | Changed | Failed


@dataclass(frozen=True)
class RemoveHost:
    host: str


Action = StopShard | StartShard | RemoveHost


def effective_pack_size(shards_per_host: int, total_desired: int) -> int:
    """``--max-shards-per-actor``: 1 = dedicated, N = pack N, 0 = automatic past a threshold."""
    if shards_per_host > 0:
        return shards_per_host
    return 1 if total_desired <= AUTO_PACK_THRESHOLD else AUTO_PACK_SIZE


def packed_host_name(index: int) -> str:
    return f"{HOST_PREFIX}{index}"


def is_host_name(name: str) -> bool:
    """Names of the actors the supervisor manages (everything in the namespace but itself)."""
    return name != SUPERVISOR_NAME


def plan(
    desired: Mapping[str, DesiredShard] | None,
    hosts: Mapping[str, HostView],
    *,
    shards_per_host: int = 1,
) -> list[Action]:
    """Return the actions that take ``hosts`` to ``desired``: stops, host removals, then starts.

    ``desired`` is None until the reconciler has told the supervisor what it
    wants (e.g. right after the supervisor restarted): nothing is stopped or
    started on a guess.
    """
    if desired is None:
        return []
    pack = effective_pack_size(shards_per_host, len(desired))
    stops: list[StopShard] = []
    starts: list[StartShard] = []
    # host -> number of shards it will hold after the plan; syncer_key per host.
    load: dict[str, int] = {}
    host_syncers: dict[str, set[str]] = {}
    placed: set[str] = set()  # shard ids that are running (kept) or will be started

    for name in sorted(hosts):
        view = hosts[name]
        host_syncers[name] = {s.syncer_key for s in view.shards}
        load[name] = len(view.shards)
        if not view.reachable:
            # Unknown state: its shards count as running so they are not started twice.
            placed.update(s.shard_id for s in view.shards if s.shard_id in desired)
            continue
        for running in sorted(view.shards, key=lambda s: s.shard_id):
            want = desired.get(running.shard_id)
            if want is None:
                stops.append(StopShard(name, running.shard_id, "Redundant"))
                load[name] -= 1
            elif running.shard_id in placed:
                stops.append(StopShard(name, running.shard_id, "Duplicate"))
                load[name] -= 1
            elif running.revision != want.revision or running.failed:
                reason = "Failed" if running.revision == want.revision else "Changed"
                stops.append(StopShard(name, running.shard_id, reason))
                starts.append(StartShard(name, want, reason))
                placed.add(running.shard_id)
            else:
                placed.add(running.shard_id)

    for shard_id in sorted(desired):
        if shard_id in placed:
            continue
        want = desired[shard_id]
        host = _place(want, pack=pack, load=load, host_syncers=host_syncers, hosts=hosts)
        load[host] = load.get(host, 0) + 1
        host_syncers.setdefault(host, set()).add(want.spec.syncer_key)
        starts.append(StartShard(host, want, "Missing"))
        placed.add(shard_id)

    removals = [
        RemoveHost(name)
        for name in sorted(hosts)
        if hosts[name].reachable and load.get(name, 0) == 0
    ]
    return [*stops, *removals, *starts]


def _place(
    want: DesiredShard,
    *,
    pack: int,
    load: Mapping[str, int],
    host_syncers: Mapping[str, set[str]],
    hosts: Mapping[str, HostView],
) -> str:
    shard_id = want.shard_id
    syncer_key = want.spec.syncer_key
    if pack <= 1:
        # Dedicated host named like the shard: readable in the dashboard, unique by construction.
        return shard_id
    candidates = [
        name
        for name in host_syncers
        if name.startswith(HOST_PREFIX)
        and load.get(name, 0) < pack
        and (name not in hosts or hosts[name].reachable)
    ]
    if candidates:
        # The host created for it (back after a restart) first, then the same syncer (shared
        # clients), then the least loaded, then by name.
        def rank(n: str) -> tuple[bool, bool, int, str]:
            planned = hosts[n].planned if n in hosts else ()
            return (shard_id not in planned, syncer_key not in host_syncers[n], load.get(n, 0), n)

        return min(candidates, key=rank)
    used = set(host_syncers) | set(hosts)
    index = 0
    while packed_host_name(index) in used:
        index += 1
    return packed_host_name(index)
