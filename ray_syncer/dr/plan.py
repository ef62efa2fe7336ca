"""What a failover will do, decided without touching anything: the pure step of ``failover``.

Why it exists: ``ray-syncer failover --dry-run`` must show exactly what the real
command would do and refuse, so both take their decision from here.
``dr.survey`` reads the clusters into ``Facts`` (reads only); ``decide`` turns
them into a ``Plan``: the writes in order (which KRMSyncer is suspended, resumed
or created on which cluster, which Secret is stored), the fencing epoch, the
readiness diff (``dr.compare``) and the refusals with their reasons. The dry
run prints it; the real run (``dr.failover``) stops on a refusal and otherwise
carries the plan out. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer.clikit.exits import Exit
from ray_syncer.dr.clusters import mode_of
from ray_syncer.dr.compare import DiffReport
from ray_syncer.fencing import epoch_of, is_active

PEER_SECRET_FLAGS = "--peer-secret or --peer-secret-from-file"


@dataclass
class Request:
    """What the person asked for (the flags), independent of what the clusters hold."""

    namespace: str
    name: str
    reverse_name: str
    reverse_secret: str | None = None
    reverse_kubeconfig: str | None = None  # text; becomes a Secret on the standby
    timeout_s: float = 300.0
    poll_s: float = 1.0
    confirm_timeout_s: float = 60.0
    force: bool = False
    allow_exec: bool = False
    now: Callable[[], float] = field(default=time.time)

    @property
    def secret_name(self) -> str:
        """The Secret ``--peer-secret-from-file`` is stored in on the standby."""
        return f"{self.reverse_name}-reverse-kubeconfig"


@dataclass
class Facts:
    """What the clusters hold, as read by ``dr.survey`` (one consistent look, no writes)."""

    active: str  # the cluster's name (kubeconfig context) for people
    standby: str
    x: dict[str, Any] | None  # the active KRMSyncer (None: unreadable, emergency)
    y: dict[str, Any] | None  # the standby's KRMSyncer (None: absent)
    now: float
    secret_problem: str | None = None  # why the reverse Secret cannot be used, if it cannot
    readiness: DiffReport | None = None  # planned: the standby against the active
    active_answers: bool | None = None  # emergency: did the active cluster answer?


@dataclass(frozen=True)
class Step:
    """One write the failover makes, on one cluster."""

    cluster: str
    action: str  # store-secret | wait | suspend | resume | create | record | fence (not a write)
    target: str  # "KRMSyncer shop/app", "Secret shop/app-reverse-kubeconfig"
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"cluster": self.cluster, "action": self.action, "target": self.target,
                "detail": self.detail}


@dataclass
class Plan:
    kind: str  # planned | emergency
    request: Request
    facts: Facts
    epoch: int | None = None
    steps: list[Step] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    nothing_to_do: str | None = None

    @property
    def ready(self) -> bool:
        """Planned: the standby holds what the active holds now (the real run waits until it does)."""
        r = self.facts.readiness
        return r is None or r.in_sync

    def verdict(self) -> tuple[Exit, str]:
        """What the real run would do now, as an exit code and a sentence."""
        if self.refusals:
            return Exit.REFUSED, "would refuse: " + "; ".join(self.refusals)
        if self.nothing_to_do:
            return Exit.OK, self.nothing_to_do
        if not self.ready and not self.request.force:
            return Exit.NOT_READY, (
                f"would wait up to {self.request.timeout_s:g}s for the standby to catch up, then "
                "abort and change nothing unless it has (stop application writes first; --force "
                "goes on and loses the differences)")
        if not self.ready:
            return Exit.OK, "would proceed because of --force: the differences are lost on the standby"
        return Exit.OK, "would proceed"

    def to_json(self) -> dict[str, Any]:
        code, text = self.verdict()
        r = self.facts.readiness
        return {
            "kind": self.kind,
            "syncer": f"{self.request.namespace}/{self.request.name}",
            "reverseSyncer": f"{self.request.namespace}/{self.request.reverse_name}",
            "active": self.facts.active,
            "standby": self.facts.standby,
            "failoverEpoch": self.epoch,
            "steps": [s.to_json() for s in self.steps],
            "refusals": list(self.refusals),
            "readiness": r.to_json() if r is not None else None,
            "verdict": text,
            "exitCode": int(code),
        }


def new_epoch(now: float, *objs: dict[str, Any] | None) -> int:
    """Milliseconds now, or above every epoch already written: the promoted side is newest."""
    known = [epoch_of(o) for o in objs if o]
    return max([int(now * 1000), *(k + 1 for k in known)])


def state(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return "absent"
    return f"{'active' if is_active(obj) else 'suspended'}, epoch {epoch_of(obj)}"


def _planned_refusals(f: Facts, req: Request) -> list[str]:
    x = f.x or {}
    spec = x.get("spec") or {}
    out = []
    if mode_of(x) != "push":
        out.append("only push-mode syncers can be failed over by this command (see the runbook for pull mode)")
    if (spec.get("destination") or spec.get("remote") or {}).get("namespace"):
        out.append("the syncer maps namespaces (destination.namespace); the reverse mapping is ambiguous")
    if f.y is None and f.secret_problem:
        out.append(f.secret_problem)
    return out


def decide_planned(f: Facts, req: Request) -> Plan:
    """Suspend X on the active cluster, then resume (or create) Y on the standby, newer epoch."""
    plan = Plan("planned", req, f, refusals=_planned_refusals(f, req))
    if f.y is not None and is_active(f.y) and not is_active(f.x or {}):
        plan.nothing_to_do = "already failed over: nothing to do"
        return plan
    plan.epoch = new_epoch(f.now, f.x, f.y)
    ns, a, b = req.namespace, f.active, f.standby
    x_ref, y_ref = f"KRMSyncer {ns}/{req.name}", f"KRMSyncer {ns}/{req.reverse_name}"
    if f.y is None and req.reverse_secret is None:
        plan.steps.append(Step(b, "store-secret", f"Secret {ns}/{req.secret_name}",
                               f"the kubeconfig {b} uses to reach {a}"))
    plan.steps += [
        Step(b, "wait", f"objects of {x_ref}", f"until {b} holds what {a} holds (up to {req.timeout_s:g}s)"),
        Step(a, "suspend", x_ref, f"annotate last-failover; wait for its operator's Suspended=True "
                                  f"(up to {req.confirm_timeout_s:g}s), then diff again"),
    ]
    how = (f"from {x_ref}, direction swapped, Secret "
           f"{req.reverse_secret or req.secret_name}") if f.y is None else "suspend: false"
    plan.steps += [
        Step(b, "create" if f.y is None else "resume", y_ref,
             f"{how}; conflictPolicy Adopt; reverse-of {ns}/{req.name}, failover-epoch {plan.epoch}"),
        Step(a, "record", x_ref, "Event FailoverDemoted"),
        Step(b, "record", y_ref, "Event FailoverPromoted"),
    ]
    return plan


def decide_emergency(f: Facts, req: Request) -> Plan:
    """Resume Y on the standby with a newer epoch; the unreachable X is fenced by that epoch."""
    plan = Plan("emergency", req, f)
    ns, a, b = req.namespace, f.active, f.standby
    if f.active_answers and not req.force:
        plan.refusals.append(f"{a} answers: use a planned failover (or --force to promote anyway)")
    if f.y is None:
        plan.refusals.append(
            f"{ns}/{req.reverse_name} does not exist on {b}; an emergency failover needs a "
            "(suspended) standby KRMSyncer there (the active one cannot be read)")
        return plan
    plan.epoch = new_epoch(f.now, f.y)
    plan.steps += [
        Step(b, "resume", f"KRMSyncer {ns}/{req.reverse_name}",
             f"suspend: false; conflictPolicy Adopt; reverse-of {ns}/{req.name}, "
             f"failover-epoch {plan.epoch}"),
        Step(b, "record", f"KRMSyncer {ns}/{req.reverse_name}", "Warning Event FailoverPromoted"),
        Step(a, "fence", f"KRMSyncer {ns}/{req.name}",
             "not written (unreachable): when it returns its operator finds the newer epoch "
             "and refuses to write (Ready=False SplitBrain); then suspend it"),
    ]
    return plan
