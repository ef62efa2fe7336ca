"""Split-brain fencing: refuse to write when the destination already syncs back into our source.

Why it exists: active-passive DR has one dangerous state — both directions
active at once (the old active came back after an emergency failover, or a
person un-suspended the standby by hand). Each side would then overwrite the
other with its own, older, copy. Before a syncer writes, the operator asks the
destination cluster whether it holds such a *reverse* syncer; if so the syncer
writes nothing and reports ``Ready=False`` reason ``SplitBrain``.

How a reverse syncer is recognised (documented in the README's disaster recovery runbook):

* **failover markers** (authoritative): ``ray-syncer failover`` annotates the
  KRMSyncer it activates with ``syncer.gkelabs.io/reverse-of: <ns>/<name>``
  (the syncer it replaces, in the other cluster) and a
  ``syncer.gkelabs.io/failover-epoch`` (milliseconds since the epoch at
  promotion). Only KRMSyncer read access on the destination is needed.
* **server URL** (fallback for hand-made setups): an active push-mode KRMSyncer
  on the destination whose kubeconfig Secret names our source's API server
  URL and whose rules may write what ours read (same group/kind, overlapping
  namespaces; globs count as overlapping). Needs Secret read access on the
  destination; skipped when forbidden.

Decision: syncer A is fenced by an active reverse syncer B unless A's epoch is
newer than B's. After an emergency failover the promoted side carries the
newest epoch, so the returning old active is fenced and the new active keeps
working. Two hand-activated syncers (no epochs) fence each other: both stop,
and a person decides.

``decide`` is pure; ``check_fencing`` does the reads (through ``KubeClient``,
never logging Secret contents).

Where it is checked (two places, one decision):

* the operator's reconciler, before it plans shards and then every probe
  interval (``FenceCache``, 15 s) and right after the destination was
  unreachable. A fenced syncer gets no shards and ``Ready=False SplitBrain``;
* the engine, before every destination write: the reconciler hands each shard
  a ``FenceIdentity`` (the same arguments it checks with), and the shard's host
  turns it into a write gate (``write_gate``: ``engine.gate.CachedGate`` over
  ``check_identity``, one per syncer per process, answer cached 2 s,
  invalidated by any destination transport error or 5xx). So a shard that kept
  running through a partition re-checks before its first write after the
  partition heals, and writes nothing into a destination promoted meanwhile;
  in steady state a write relies on an answer at most 2 s old.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ray_syncer import API_GROUP, API_VERSION, KIND, PLURAL
from ray_syncer.kube.client import ApiError, ResourceInfo

ANN_REVERSE_OF = f"{API_GROUP}/reverse-of"
ANN_EPOCH = f"{API_GROUP}/failover-epoch"
ANN_LAST_FAILOVER = f"{API_GROUP}/last-failover"

FENCE_TTL_S = 10.0
# How long a shard's write gate trusts a "not fenced" answer (engine.gate.CachedGate).
GATE_TTL_S = 2.0

KRMSYNCER_RES = ResourceInfo(
    API_GROUP, API_VERSION, KIND, PLURAL, namespaced=True, has_status=True,
    verbs=frozenset({"get", "list", "watch", "patch", "update"}),
)
_SECRET = ResourceInfo("", "v1", "Secret", "secrets", True, verbs=frozenset({"get"}))


def server_key(url: str | None) -> str:
    """A normalised API server URL, so that equal servers compare equal."""
    if not url:
        return ""
    parts = urlsplit(url.strip().lower())
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return url.strip().lower()
    host = parts.hostname or ""
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


def epoch_of(obj: Mapping[str, Any]) -> int:
    """The failover epoch recorded on a KRMSyncer (0 when never promoted by failover)."""
    ann = ((obj.get("metadata") or {}).get("annotations")) or {}
    try:
        return max(0, int(ann.get(ANN_EPOCH, "0")))
    except (TypeError, ValueError):
        return 0


def is_active(obj: Mapping[str, Any]) -> bool:
    """Not suspended (either spelling) and not being deleted."""
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    return not (spec.get("suspend") is True or spec.get("suspended") is True) and not meta.get(
        "deletionTimestamp"
    )


# (group, kind, namespaces or None for all) of one rule; "*" globs are kept as written.
RuleKey = tuple[str, str, frozenset[str] | None]


def rule_keys(spec: Mapping[str, Any] | None, *, as_writer: bool = False) -> tuple[RuleKey, ...]:
    """The (group, kind, namespaces) a syncer reads, or with ``as_writer`` the namespaces it writes."""
    spec = spec or {}
    target = spec.get("destination") or spec.get("remote") or {}
    mapped = target.get("namespace") if as_writer else None
    out: list[RuleKey] = []
    for r in spec.get("rules") or []:
        if not isinstance(r, Mapping):
            continue
        namespaces = r.get("namespaces") or None
        ns: frozenset[str] | None = frozenset([mapped]) if mapped else (
            frozenset(namespaces) if namespaces else None
        )
        out.append((str(r.get("group", "")), str(r.get("kind", "")), ns))
    return tuple(out)


def _glob_overlap(a: str, b: str) -> bool:
    return a == b or "*" in a or "*" in b  # conservative: any glob may overlap


def rules_overlap(mine: Iterable[RuleKey], theirs: Iterable[RuleKey]) -> bool:
    """Could the peer write anything this syncer reads?"""
    theirs = list(theirs)
    for g1, k1, n1 in mine:
        for g2, k2, n2 in theirs:
            if _glob_overlap(g1, g2) and _glob_overlap(k1, k2) and (
                n1 is None or n2 is None or n1 & n2
            ):
                return True
    return False


@dataclass(frozen=True)
class Peer:
    """A KRMSyncer found on the destination cluster, as far as fencing cares."""

    key: str  # namespace/name
    active: bool
    mode: str
    epoch: int
    reverse_of: str | None
    target_server: str | None = None  # its kubeconfig's server, when we could read it
    writes: tuple[RuleKey, ...] | None = None  # what it writes (None: unknown, assume overlap)


@dataclass(frozen=True)
class FenceDecision:
    fenced: bool
    reason: str  # Clear | SplitBrain | Unchecked
    message: str
    peer: str | None = None


CLEAR = FenceDecision(False, "Clear", "no active reverse syncer on the destination")


def peer_from(obj: Mapping[str, Any], *, target_server: str | None = None) -> Peer:
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations") or {}
    return Peer(
        key=f"{meta.get('namespace') or 'default'}/{meta.get('name')}",
        active=is_active(obj),
        mode=str((obj.get("spec") or {}).get("mode") or "push"),
        epoch=epoch_of(obj),
        reverse_of=ann.get(ANN_REVERSE_OF),
        target_server=target_server,
        writes=rule_keys(obj.get("spec"), as_writer=True) if obj.get("spec") else None,
    )


def decide(
    *,
    me: str,
    my_epoch: int,
    source_server: str | None,
    peers: Iterable[Peer],
    dest_name: str = "the destination",
    exclude_self: bool = False,
    my_rules: Iterable[RuleKey] | None = None,
) -> FenceDecision:
    """Pure: is the syncer ``me`` (ns/name) fenced by one of the destination's syncers?

    ``exclude_self`` is set when the destination is the syncer's own cluster (pull
    mode), where ``me`` itself is among the peers. ``my_rules``: without a failover
    marker, a peer found by server URL only fences when it may write what we read
    (two syncers mirroring disjoint namespaces in opposite directions are legitimate).
    """
    mine = list(my_rules) if my_rules is not None else None
    src = server_key(source_server)
    for p in sorted(peers, key=lambda p: p.key):
        if exclude_self and p.key == me:
            continue
        if not p.active or p.mode != "push":
            continue  # a pull-mode syncer on the destination writes into the destination
        by_marker = p.reverse_of == me
        by_url = bool(src and p.target_server and server_key(p.target_server) == src) and (
            mine is None or p.writes is None or rules_overlap(mine, p.writes)
        )
        if not (by_marker or by_url):
            continue
        if my_epoch > p.epoch:
            continue  # we are the newer promotion: the peer is the one fenced
        how = "marked reverse-of this syncer" if by_marker else "its kubeconfig targets our source"
        message = (
            f"split brain: KRMSyncer {p.key} on {dest_name} is active and syncs back into this "
            f"syncer's source ({how}; failover epoch {p.epoch} >= ours {my_epoch}). Both "
            "directions active would overwrite each other, so this syncer writes nothing. "
            f"Resolve: suspend the side that must be passive (kubectl patch krmsyncer <name> "
            "--type merge -p '{\"spec\":{\"suspend\":true}}'), or run `ray-syncer failover` "
            "to switch direction cleanly"
        )
        return FenceDecision(True, "SplitBrain", message, p.key)
    return CLEAR


def _secret_server(secret: Mapping[str, Any], key: str) -> str | None:
    """The server URL of the kubeconfig in a Secret (no credentials are kept or logged)."""
    from ray_syncer.kube.config import KubeconfigError, load_kubeconfig_text

    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return None
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
        return load_kubeconfig_text(text).server
    except (binascii.Error, UnicodeDecodeError, ValueError, KubeconfigError):
        return None


@dataclass(frozen=True)
class FenceIdentity:
    """What the split-brain check of one syncer needs, as plain picklable data.

    Built by the reconciler (which checks with it) and carried to the shard hosts
    in ``DesiredShard.fence`` (their write gates check with it): both ask the
    same question. It holds no credentials; its change restarts the shards
    (it is part of their revision), so a gate never checks with a stale epoch.
    """

    syncer: str  # namespace/name of the KRMSyncer
    epoch: int  # its failover epoch
    push: bool  # pull mode: the destination is our own cluster, where we are a peer too
    source_server: str | None  # the source cluster's API server URL
    dest_name: str  # how messages name the destination
    rules: tuple[RuleKey, ...]  # what the syncer reads (URL-matched peers must overlap it)

    @property
    def namespace(self) -> str:
        return self.syncer.split("/", 1)[0]

    def token(self) -> str:
        """A deterministic text form (frozenset order varies by process) for shard revisions."""
        rules = [[g, k, sorted(n) if n is not None else None] for g, k, n in self.rules]
        return json.dumps(
            [self.syncer, self.epoch, self.push, self.source_server, self.dest_name, rules],
            separators=(",", ":"),
        )


def fence_identity(
    *, syncer: str, raw: Mapping[str, Any], push: bool, source_server: str | None, dest_name: str
) -> FenceIdentity:
    """The identity of the KRMSyncer object ``raw`` (its epoch annotation and rules)."""
    return FenceIdentity(
        syncer=syncer,
        epoch=epoch_of(raw),
        push=push,
        source_server=source_server,
        dest_name=dest_name,
        rules=rule_keys(raw.get("spec")),
    )


async def check_identity(dest: Any, ident: FenceIdentity) -> FenceDecision:
    """``check_fencing`` for a ``FenceIdentity`` (``dest``: a client of the syncer's destination)."""
    return await check_fencing(
        dest,
        namespace=ident.namespace,
        me=ident.syncer,
        my_epoch=ident.epoch,
        source_server=ident.source_server,
        dest_name=ident.dest_name,
        exclude_self=not ident.push,
        my_rules=ident.rules,
    )


def write_gate_check(dest: Any, ident: FenceIdentity) -> Callable[[], Awaitable[str | None]]:
    """The check behind a shard's write gate: None when clear, else the SplitBrain message.

    ``Unchecked`` (no RBAC to list KRMSyncers on the destination) does not block,
    as in the reconciler; transport errors and 5xx propagate, and the gate fails
    closed on them.
    """

    async def check() -> str | None:
        decision = await check_identity(dest, ident)
        return f"{decision.reason}: {decision.message}" if decision.fenced else None

    return check


async def check_fencing(
    dest: Any,
    *,
    namespace: str,
    me: str,
    my_epoch: int,
    source_server: str | None,
    dest_name: str = "the destination",
    exclude_self: bool = False,
    read_secrets: bool = True,
    my_spec: Mapping[str, Any] | None = None,
    my_rules: Iterable[RuleKey] | None = None,
) -> FenceDecision:
    """Read the destination's KRMSyncers in ``namespace`` and decide.

    A 404 (the KRMSyncer CRD is not installed there) means no reverse syncer can
    exist. A 403 means we cannot tell: ``Unchecked``, not fenced (documented).
    Transport errors propagate: the caller keeps its previous decision.
    """
    try:
        items, _ = await dest.list_all(KRMSYNCER_RES, namespace=namespace)
    except ApiError as exc:
        if exc.not_found:
            return CLEAR
        if exc.forbidden or exc.unauthorized:
            return FenceDecision(
                False,
                "Unchecked",
                f"cannot list KRMSyncers on {dest_name} ({exc.status}); split-brain fencing "
                "relies on failover markers there, grant get/list on krmsyncers",
            )
        raise
    peers: list[Peer] = []
    for obj in items:
        target: str | None = None
        p = peer_from(obj)
        candidate = p.active and p.mode == "push" and p.reverse_of != me
        if read_secrets and candidate and source_server and not (exclude_self and p.key == me):
            target = await _peer_target(dest, obj)
        peers.append(peer_from(obj, target_server=target))
    return decide(
        me=me,
        my_epoch=my_epoch,
        source_server=source_server,
        peers=peers,
        dest_name=dest_name,
        exclude_self=exclude_self,
        my_rules=my_rules if my_rules is not None else (
            rule_keys(my_spec) if my_spec is not None else None
        ),
    )


async def _peer_target(dest: Any, obj: Mapping[str, Any]) -> str | None:
    spec = obj.get("spec") or {}
    target = spec.get("destination") or spec.get("remote") or {}
    ref = (target.get("clusterConfig") or {}).get("kubeConfigSecretRef") or {}
    name = ref.get("name")
    if not name:
        return None
    ns = (obj.get("metadata") or {}).get("namespace")
    try:
        secret = await dest.get(_SECRET, namespace=ns, name=name)
    except ApiError:
        return None  # forbidden or gone: the marker check still applies
    return _secret_server(secret, ref.get("key") or "kubeconfig")


class FenceCache:
    """Per-syncer decisions with a TTL; ``invalidate`` forces a fresh check next time."""

    def __init__(self, *, ttl_s: float = FENCE_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, FenceDecision]] = {}

    def get(self, key: str) -> FenceDecision | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self.ttl_s:
            return None
        return entry[1]

    def last(self, key: str) -> FenceDecision | None:
        """The last decision, however old (used when a fresh check cannot be made)."""
        entry = self._entries.get(key)
        return entry[1] if entry else None

    def put(self, key: str, decision: FenceDecision) -> None:
        self._entries[key] = (self._clock(), decision)

    def invalidate(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (float("-inf"), entry[1])

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
