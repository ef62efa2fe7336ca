"""``ray-syncer failover``: promote the standby, planned or emergency, and fence the old active.

Why it exists: flipping ``suspend`` by hand on two clusters is the most
dangerous moment of DR. This command does it in a safe order and prints a
transcript of every step.

Planned (both clusters reachable), for a push-mode KRMSyncer X living in the
active cluster A and writing into the standby B:

1. read X on A, and the reverse syncer Y on B (``--reverse-name``, default X's
   name), or check we can create it (``--reverse-secret`` / ``--reverse-kubeconfig``);
2. wait until B has caught up (``dr.compare`` clean) or ``--timeout`` (then
   report and stop, changing nothing, unless ``--force``). We wait *before*
   suspending: a suspended syncer drains nothing, so suspending first would
   freeze the gap instead of closing it. Stop application writes on A first;
3. suspend X and wait for its operator to confirm (``Suspended=True``);
4. check again: still in sync (else un-suspend X and stop, unless ``--force``);
5. activate Y (un-suspend it, or create it from X with source and destination
   swapped), with ``conflictPolicy: Adopt`` so the objects that originated on A
   are taken over, and the fencing markers (``reverse-of``, a new
   ``failover-epoch``) that ``ray_syncer.fencing`` reads;
6. record the event on both KRMSyncers (annotation ``last-failover`` + Events).

Emergency (``--emergency``, A unreachable): only step 5 on B, for an existing Y
(X's spec cannot be read). The new epoch is what fences X: when A comes back,
its operator finds Y active, marked reverse-of X with a newer epoch, and X
reports ``Ready=False SplitBrain`` instead of writing A's stale data into B.
Failback is the same command run the other way round.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer import API_GROUP, API_VERSION, KIND
from ray_syncer.dr.clusters import (
    SECRET_RES,
    DrError,
    label,
    load_file,
    load_user,
    mode_of,
    remote_config,
)
from ray_syncer.dr.compare import DiffReport, compute_diff
from ray_syncer.dr.report import age, console, recovery_point, recovery_point_lines
from ray_syncer.fencing import (
    ANN_EPOCH,
    ANN_LAST_FAILOVER,
    ANN_REVERSE_OF,
    KRMSYNCER_RES,
    epoch_of,
    is_active,
)
from ray_syncer.kube.client import ApiError, KubeClient, TransportError
from ray_syncer.kube.config import ClusterConfig, KubeconfigError, load_kubeconfig_text
from ray_syncer.kube.events import post_event

COMPONENT = "ray-syncer-failover"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the active KRMSyncer (push mode, in the active cluster)")
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig of the active cluster (where the KRMSyncer lives)")
    parser.add_argument("--context", default=None)
    parser.add_argument("--standby-kubeconfig", default=None,
                        help="kubeconfig of the standby (default: the KRMSyncer's Secret; required with --emergency)")
    parser.add_argument("--standby-context", default=None)
    parser.add_argument("--reverse-name", default=None, help="the standby's KRMSyncer (default: same name)")
    parser.add_argument("--reverse-secret", default=None,
                        help="existing Secret on the standby with a kubeconfig for the active cluster")
    parser.add_argument("--reverse-kubeconfig", default=None,
                        help="kubeconfig file for reaching the active cluster from the standby; stored in a Secret there")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for catch-up (default 300)")
    parser.add_argument("--confirm-timeout", type=float, default=60.0,
                        help="seconds to wait for the operator to confirm the suspension (default 60)")
    parser.add_argument("--emergency", action="store_true", help="the active cluster is unreachable: promote the standby only")
    parser.add_argument("--force", action="store_true", help="proceed even when the standby has not caught up")
    parser.add_argument("--allow-kubeconfig-exec", action="store_true")


class Transcript:
    """Numbered steps with timestamps, printed as they happen and kept for tests/docs."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self._emit = emit
        self._step = 0

    def _add(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        self.lines.append(line)
        if self._emit is not None:
            self._emit(line)

    def step(self, text: str) -> None:
        self._step += 1
        self._add(f"[{self._step}] {text}")

    def info(self, text: str) -> None:
        self._add(f"    {text}")

    def warn(self, text: str) -> None:
        self._add(f"    WARNING: {text}")


@dataclass
class Plan:
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


class FailoverAborted(Exception):
    """Stopped before the switch (or rolled back); exit code 1."""


def _summary(r: DiffReport) -> str:
    t = r.totals()
    if r.errors:
        return "error: " + "; ".join(r.errors)
    errs = [s.error for s in r.shards if s.error]
    return (
        f"{t['sourceObjects']} object(s): {t['missing']} missing, {t['differs']} differ, "
        f"{t['extra']} extra, {t['conflicts']} unowned; oldest unsynced change "
        f"{age(r.oldest_unsynced_seconds)}" + (f"; errors: {'; '.join(errs)}" if errs else "")
    )


def _suspend_patch(spec: dict[str, Any], value: bool) -> dict[str, Any]:
    """Set whichever spelling(s) the syncer uses, so suspend/suspended never disagree."""
    patch: dict[str, Any] = {}
    if "suspended" in spec:
        patch["suspended"] = value
    if "suspend" in spec or "suspended" not in spec:
        patch["suspend"] = value
    return patch


def new_epoch(now: float, *objs: dict[str, Any] | None) -> int:
    known = [epoch_of(o) for o in objs if o]
    return max([int(now * 1000), *(k + 1 for k in known)])


async def _get_or_none(client: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(KRMSYNCER_RES, namespace=ns, name=name)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise DrError(f"cannot read KRMSyncer {ns}/{name}: {exc.status} {exc.reason}") from None


async def _patch(client: KubeClient, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return await client.patch(
        KRMSYNCER_RES, namespace=ns, name=name, body=body,
        content_type="application/merge-patch+json",
    )


async def record_event(
    client: KubeClient, obj: dict[str, Any], *, reason: str, message: str, etype: str = "Normal"
) -> None:
    # The annotation is the durable record; an Event is a courtesy.
    involved = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, **obj}
    await post_event(client, involved, reason=reason, message=message, etype=etype,
                     component=COMPONENT)


def _record(role: str, kind: str, peer: str, epoch: int, now: float) -> str:
    return json.dumps(
        {"role": role, "kind": kind, "peer": peer, "epoch": epoch,
         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))},
        sort_keys=True,
    )


async def _diff(x: dict[str, Any], src: KubeClient, dst: KubeClient, a: str, b: str) -> DiffReport:
    return await compute_diff(x, source=src, dest=dst, source_name=a, dest_name=b)


async def wait_in_sync(
    x: dict[str, Any], src: KubeClient, dst: KubeClient, a: str, b: str, *,
    timeout_s: float, poll_s: float, log: Transcript,
) -> DiffReport:
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        report = await _diff(x, src, dst, a, b)
        text = _summary(report)
        if text != last:
            log.info(("in sync: " if report.in_sync else "not yet: ") + text)
            last = text
        if report.in_sync or time.monotonic() >= deadline:
            return report
        await asyncio.sleep(poll_s)


async def _confirm_suspended(client: KubeClient, ns: str, name: str, generation: int, *,
                             timeout_s: float, log: Transcript) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        obj = await _get_or_none(client, ns, name)
        st = (obj or {}).get("status") or {}
        for c in st.get("conditions") or []:
            if (c.get("type") == "Suspended" and c.get("status") == "True"
                    and int(st.get("observedGeneration") or 0) >= generation):
                log.info("the operator confirmed: Suspended=True (its shards are stopped)")
                return
        await asyncio.sleep(0.5)
    log.warn(
        f"no operator confirmed the suspension within {timeout_s:.0f}s (is it down?); "
        "continuing: fencing keeps a still-running shard from writing once the reverse is active"
    )


def reverse_from(
    x: dict[str, Any], *, name: str, secret: str, epoch: int, peer: str, record: str
) -> dict[str, Any]:
    """The standby's KRMSyncer built from the active one, direction swapped (push mode)."""
    spec = copy.deepcopy(x.get("spec") or {})
    spec.pop("suspended", None)
    spec.pop("remote", None)
    spec["suspend"] = False
    spec["mode"] = "push"
    spec["conflictPolicy"] = "Adopt"
    spec["destination"] = {"clusterConfig": {"kubeConfigSecretRef": {"name": secret, "key": "kubeconfig"}}}
    meta = x.get("metadata") or {}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace") or "default",
            "labels": dict(meta.get("labels") or {}),
            "annotations": {ANN_REVERSE_OF: peer, ANN_EPOCH: str(epoch), ANN_LAST_FAILOVER: record},
        },
        "spec": spec,
    }


async def _ensure_reverse_secret(standby: KubeClient, plan: Plan, log: Transcript) -> str | None:
    """The Secret name a newly created reverse syncer will use (None if we cannot make one)."""
    if plan.reverse_secret:
        try:
            await standby.get(SECRET_RES, namespace=plan.namespace, name=plan.reverse_secret)
        except ApiError as exc:
            raise DrError(f"Secret {plan.namespace}/{plan.reverse_secret} on the standby: {exc.status} {exc.reason}") from None
        return plan.reverse_secret
    if plan.reverse_kubeconfig is not None:
        try:
            cfg = load_kubeconfig_text(plan.reverse_kubeconfig, allow_exec=plan.allow_exec, allow_files=plan.allow_exec)
        except KubeconfigError as exc:
            raise DrError(f"--reverse-kubeconfig: {exc.message}") from None
        name = f"{plan.reverse_name}-reverse-kubeconfig"
        body = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": plan.namespace},
            "data": {"kubeconfig": base64.b64encode(plan.reverse_kubeconfig.encode()).decode()},
        }
        await standby.apply(SECRET_RES, body, field_manager=COMPONENT)
        log.info(f"stored the kubeconfig for {label(cfg)} in Secret {plan.namespace}/{name} on the standby")
        return name
    return None


def _activation_patch(y: dict[str, Any], *, epoch: int, peer: str, record: str) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {ANN_REVERSE_OF: peer, ANN_EPOCH: str(epoch), ANN_LAST_FAILOVER: record}},
        "spec": {**_suspend_patch(y.get("spec") or {}, False), "conflictPolicy": "Adopt"},
    }


async def planned(
    active_cfg: ClusterConfig, standby_cfg: ClusterConfig, plan: Plan, log: Transcript
) -> int:
    a, b = label(active_cfg), label(standby_cfg)
    ns, name = plan.namespace, plan.name
    async with KubeClient(active_cfg) as act, KubeClient(standby_cfg) as sby:
        x, y, secret = await _read_pair(act, sby, plan, log, a, b)
        if y is not None and is_active(y) and not is_active(x):
            log.info("already failed over: nothing to do")
            return 0
        epoch = new_epoch(plan.now(), x, y)
        x = await _switch(act, sby, x, plan, log, a, b, epoch)
        peer_y = f"{ns}/{plan.reverse_name}"
        log.step(f"activate {peer_y} on {b} ({b} -> {a}, conflictPolicy Adopt, failover epoch {epoch})")
        promoted = _record("promoted", "planned", f"{ns}/{name}", epoch, plan.now())
        if y is None:
            assert secret is not None
            y = await sby.create(
                KRMSYNCER_RES,
                reverse_from(x, name=plan.reverse_name, secret=secret, epoch=epoch,
                             peer=f"{ns}/{name}", record=promoted),
                namespace=ns,
            )
            log.info(f"created {peer_y} on {b}")
        else:
            y = await _patch(sby, ns, plan.reverse_name,
                             _activation_patch(y, epoch=epoch, peer=f"{ns}/{name}", record=promoted))
            log.info(f"resumed {peer_y} on {b}")

        log.step("record the failover on both KRMSyncers")
        await record_event(act, x, reason="FailoverDemoted",
                           message=f"planned failover: suspended; {b} is now active ({peer_y}, epoch {epoch})")
        await record_event(sby, y, reason="FailoverPromoted",
                           message=f"planned failover: active, syncing {b} -> {a} (epoch {epoch})")
        log.info(f"done: {b} is active. Check with: ray-syncer diff {plan.reverse_name} -n {ns} (against {b})")
    return 0


async def _read_pair(
    act: KubeClient, sby: KubeClient, plan: Plan, log: Transcript, a: str, b: str
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """The active KRMSyncer, its reverse on the standby (None: to be created) and the Secret
    the created one will use; refuses what a planned failover cannot do."""
    ns, name = plan.namespace, plan.name
    log.step(f"read KRMSyncer {ns}/{name} on {a} and its reverse {ns}/{plan.reverse_name} on {b}")
    x = await _get_or_none(act, ns, name)
    if x is None:
        raise DrError(f"KRMSyncer {ns}/{name} not found on {a}")
    if mode_of(x) != "push":
        raise DrError("only push-mode syncers can be failed over by this command (see the runbook for pull mode)")
    if ((x.get("spec") or {}).get("destination") or (x.get("spec") or {}).get("remote") or {}).get("namespace"):
        raise DrError("the syncer maps namespaces (destination.namespace); the reverse mapping is ambiguous")
    y = await _get_or_none(sby, ns, plan.reverse_name)
    log.info(f"{ns}/{name} on {a}: {'active' if is_active(x) else 'suspended'}, epoch {epoch_of(x)}")
    if y is not None:
        log.info(f"{ns}/{plan.reverse_name} on {b}: {'active' if is_active(y) else 'suspended'}, epoch {epoch_of(y)}")
        return x, y, None
    log.info(f"{ns}/{plan.reverse_name} does not exist on {b}: it will be created from {ns}/{name}")
    secret = await _ensure_reverse_secret(sby, plan, log)
    if secret is None:
        raise DrError("the standby has no reverse KRMSyncer: give --reverse-secret or --reverse-kubeconfig")
    return x, None, secret


async def _switch(
    act: KubeClient, sby: KubeClient, x: dict[str, Any], plan: Plan, log: Transcript, a: str,
    b: str, epoch: int,
) -> dict[str, Any]:
    """Wait for the standby to catch up, then suspend the active syncer; again if the source
    changed meanwhile. Returns the suspended KRMSyncer; raises ``FailoverAborted``."""
    ns, name = plan.namespace, plan.name
    deadline = time.monotonic() + plan.timeout_s
    peer_y = f"{ns}/{plan.reverse_name}"
    attempt = 0
    while True:
        attempt += 1
        left = max(0.0, deadline - time.monotonic())
        log.step(f"wait for {b} to catch up with {a} (attempt {attempt}, {left:.0f}s left; "
                 f"stop application writes on {a} now)")
        report = await wait_in_sync(x, act, sby, a, b, timeout_s=left, poll_s=plan.poll_s, log=log)
        if not report.in_sync:
            if not plan.force:
                log.warn("the standby did not catch up; nothing was changed (use --force to fail over anyway)")
                raise FailoverAborted(_summary(report))
            log.warn("not in sync; continuing because of --force: the differences above are lost on the standby")

        log.step(f"suspend {ns}/{name} on {a}")
        demoted = _record("demoted", "planned", peer_y, epoch, plan.now())
        x = await _patch(act, ns, name, {
            "metadata": {"annotations": {ANN_LAST_FAILOVER: demoted}},
            "spec": _suspend_patch(x.get("spec") or {}, True),
        })
        await _confirm_suspended(act, ns, name, int(x["metadata"].get("generation") or 0),
                                 timeout_s=plan.confirm_timeout_s, log=log)

        log.step("verify nothing changed in between")
        final = await _diff(x, act, sby, a, b)
        log.info(("in sync: " if final.in_sync else "NOT in sync: ") + _summary(final))
        for line in recovery_point_lines(recovery_point(final, x.get("status") or {})):
            log.info(line)
        if final.in_sync or plan.force:
            return x
        # The source changed while we suspended: resume, let it drain, try again.
        log.warn(f"{a} changed during the switch: resuming {ns}/{name} on {a}")
        x = await _patch(act, ns, name, {"spec": _suspend_patch(x.get("spec") or {}, False)})
        if time.monotonic() >= deadline:
            raise FailoverAborted(_summary(final))


async def emergency(
    active_cfg: ClusterConfig | None, standby_cfg: ClusterConfig, plan: Plan, log: Transcript
) -> int:
    b = label(standby_cfg)
    ns = plan.namespace
    a = label(active_cfg) if active_cfg is not None else "the old active cluster"
    log.step(f"check that {a} is unreachable")
    if active_cfg is not None:
        try:
            async with KubeClient(active_cfg, request_timeout=5.0) as act:
                await act.request("GET", "/api")
            if not plan.force:
                raise DrError(f"{a} answers: use a planned failover (or --force to promote anyway)")
            log.warn(f"{a} answers, promoting anyway because of --force")
        except TransportError:
            log.info(f"{a} does not answer")
    async with KubeClient(standby_cfg) as sby:
        peer_y = f"{ns}/{plan.reverse_name}"
        log.step(f"read {peer_y} on {b}")
        y = await _get_or_none(sby, ns, plan.reverse_name)
        if y is None:
            raise DrError(
                f"{peer_y} does not exist on {b}; an emergency failover needs a (suspended) standby "
                "KRMSyncer there (the active one cannot be read)"
            )
        epoch = new_epoch(plan.now(), y)
        log.step(f"activate {peer_y} on {b} ({b} -> {a}, conflictPolicy Adopt) with failover epoch {epoch}")
        record = _record("promoted", "emergency", f"{ns}/{plan.name}", epoch, plan.now())
        y = await _patch(sby, ns, plan.reverse_name,
                         _activation_patch(y, epoch=epoch, peer=f"{ns}/{plan.name}", record=record))
        log.info(f"fencing marker written: {ANN_REVERSE_OF}={ns}/{plan.name}, {ANN_EPOCH}={epoch}")
        await record_event(sby, y, reason="FailoverPromoted", etype="Warning",
                           message=f"emergency failover: active, syncing {b} -> {a} (epoch {epoch}); "
                                   f"{ns}/{plan.name} on {a} could not be suspended")
        log.step("fencing")
        log.info(f"{ns}/{plan.name} on {a} is still active there. When {a} returns, its operator finds "
                 f"{peer_y} active with a newer epoch and refuses to write (Ready=False SplitBrain).")
        log.info(f"then suspend it: kubectl --context <{a}> -n {ns} patch krmsyncer {plan.name} "
                 "--type merge -p '{\"spec\":{\"suspend\":true}}'")
    return 0


async def run_failover(
    *, active: ClusterConfig | None, standby: ClusterConfig | None, plan: Plan,
    emergency_mode: bool, log: Transcript,
) -> int:
    if standby is None:
        if active is None or emergency_mode:
            raise DrError("--standby-kubeconfig is required with --emergency")
        async with KubeClient(active) as act:
            x = await _get_or_none(act, plan.namespace, plan.name)
            if x is None:
                raise DrError(f"KRMSyncer {plan.namespace}/{plan.name} not found")
            standby = await remote_config(act, x, allow_exec=plan.allow_exec)
    if emergency_mode:
        return await emergency(active, standby, plan, log)
    assert active is not None
    return await planned(active, standby, plan, log)


def run(args: argparse.Namespace) -> int:
    con = console()
    log = Transcript(lambda line: con.print(line, markup=False))
    try:
        active: ClusterConfig | None
        try:
            active = load_user(args.kubeconfig, args.context)
        except DrError:
            if not args.emergency:
                raise
            active = None
        standby = load_file(args.standby_kubeconfig, args.standby_context) if args.standby_kubeconfig else None
        reverse_text = None
        if args.reverse_kubeconfig:
            with open(args.reverse_kubeconfig, encoding="utf-8") as fh:
                reverse_text = fh.read()
        plan = Plan(
            namespace=args.namespace, name=args.name, reverse_name=args.reverse_name or args.name,
            reverse_secret=args.reverse_secret, reverse_kubeconfig=reverse_text,
            timeout_s=args.timeout, confirm_timeout_s=args.confirm_timeout, force=args.force,
            allow_exec=args.allow_kubeconfig_exec,
        )
        return asyncio.run(run_failover(active=active, standby=standby, plan=plan,
                                        emergency_mode=args.emergency, log=log))
    except FailoverAborted as exc:
        con.print(f"failover aborted: {exc}", markup=False)
        return 1
    except (DrError, OSError) as exc:
        con.print(f"error: {exc}", markup=False)
        return 2
    except (ApiError, TransportError) as exc:
        con.print(f"error: {type(exc).__name__}: {exc}", markup=False)
        return 2
