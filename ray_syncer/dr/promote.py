"""Carrying out a failover ``Plan``: the only module of ``failover`` that writes.

Why it exists: ``dr.plan`` decides (and refuses) from what ``dr.survey`` read;
this module performs the decided writes in a safe order, logging each step to
a ``Transcript``. It re-checks nothing the plan decided, except what can only
be known while switching: whether the standby has caught up (it waits), and
whether the source changed while the active syncer was being suspended.

Planned: store the reverse Secret if one is to be made; wait for catch-up;
suspend X (and wait for its operator to confirm); diff again (resume X and
retry if the source changed meanwhile); resume or create Y with
``conflictPolicy: Adopt`` and the fencing markers; record Events on both.
Emergency: resume Y with a newer epoch; X, unreachable, is fenced by it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from collections.abc import Callable
from typing import Any

from ray_syncer import API_GROUP, API_VERSION, KIND
from ray_syncer.dr.clusters import SECRET_RES, DrError
from ray_syncer.dr.compare import DiffReport, compute_diff
from ray_syncer.dr.plan import Plan, Request, state
from ray_syncer.dr.report import age, recovery_point, recovery_point_lines
from ray_syncer.dr.survey import get_syncer
from ray_syncer.fencing import ANN_EPOCH, ANN_LAST_FAILOVER, ANN_REVERSE_OF, KRMSYNCER_RES
from ray_syncer.kube.client import KubeClient
from ray_syncer.kube.config import ClusterConfig
from ray_syncer.kube.events import post_event

COMPONENT = "ray-syncer-failover"


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


class FailoverAborted(Exception):
    """Stopped before the switch (or rolled back); exit code 1."""


class FailoverRefused(DrError):
    """A safety check of the plan said no; nothing was written (exit code 3)."""


def summary(r: DiffReport) -> str:
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


async def wait_in_sync(
    x: dict[str, Any], src: KubeClient, dst: KubeClient, a: str, b: str, *,
    timeout_s: float, poll_s: float, log: Transcript, first: DiffReport | None = None,
) -> DiffReport:
    """Diff until in sync or the deadline; ``first`` is a report just made (the plan's)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        report = first or await compute_diff(x, source=src, dest=dst, source_name=a, dest_name=b)
        first = None
        text = summary(report)
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
        obj = await get_syncer(client, ns, name)
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


async def _store_secret(standby: KubeClient, req: Request, log: Transcript, a: str) -> str:
    """Store ``--peer-secret-from-file`` on the standby (the plan checked it parses)."""
    assert req.reverse_kubeconfig is not None
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": req.secret_name, "namespace": req.namespace},
        "data": {"kubeconfig": base64.b64encode(req.reverse_kubeconfig.encode()).decode()},
    }
    await standby.apply(SECRET_RES, body, field_manager=COMPONENT)
    log.info(f"stored the kubeconfig for {a} in Secret {req.namespace}/{req.secret_name} on the standby")
    return req.secret_name


def _activation_patch(y: dict[str, Any], *, epoch: int, peer: str, record: str) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {ANN_REVERSE_OF: peer, ANN_EPOCH: str(epoch), ANN_LAST_FAILOVER: record}},
        "spec": {**_suspend_patch(y.get("spec") or {}, False), "conflictPolicy": "Adopt"},
    }


def log_survey(plan: Plan, log: Transcript) -> None:
    """Step 1 of the transcript: what was read, and a refusal if the plan refuses."""
    req, f = plan.request, plan.facts
    ns = req.namespace
    if plan.kind == "planned":
        log.step(f"read KRMSyncer {ns}/{req.name} on {f.active} and its reverse {ns}/{req.reverse_name} on {f.standby}")
        log.info(f"{ns}/{req.name} on {f.active}: {state(f.x)}")
    else:
        log.step(f"check that {f.active} is unreachable, and read {ns}/{req.reverse_name} on {f.standby}")
        log.info(f"{f.active} answers" if f.active_answers else f"{f.active} does not answer")
    if f.y is not None:
        log.info(f"{ns}/{req.reverse_name} on {f.standby}: {state(f.y)}")
    elif plan.kind == "planned":
        log.info(f"{ns}/{req.reverse_name} does not exist on {f.standby}: it will be created from {ns}/{req.name}")
    if plan.refusals:
        raise FailoverRefused("; ".join(plan.refusals))


async def planned(active_cfg: ClusterConfig, standby_cfg: ClusterConfig, plan: Plan, log: Transcript) -> int:
    req, f = plan.request, plan.facts
    a, b, ns = f.active, f.standby, req.namespace
    log_survey(plan, log)
    if plan.nothing_to_do:
        log.info(plan.nothing_to_do)
        return 0
    assert f.x is not None and plan.epoch is not None
    epoch = plan.epoch
    async with KubeClient(active_cfg) as act, KubeClient(standby_cfg) as sby:
        secret = req.reverse_secret
        if f.y is None and secret is None:
            secret = await _store_secret(sby, req, log, a)
        x = await _switch(act, sby, f.x, plan, log)
        peer_y = f"{ns}/{req.reverse_name}"
        log.step(f"activate {peer_y} on {b} ({b} -> {a}, conflictPolicy Adopt, failover epoch {epoch})")
        promoted = _record("promoted", "planned", f"{ns}/{req.name}", epoch, req.now())
        if f.y is None:
            assert secret is not None
            y = await sby.create(KRMSYNCER_RES, reverse_from(
                x, name=req.reverse_name, secret=secret, epoch=epoch, peer=f"{ns}/{req.name}",
                record=promoted), namespace=ns)
            log.info(f"created {peer_y} on {b}")
        else:
            y = await _patch(sby, ns, req.reverse_name,
                             _activation_patch(f.y, epoch=epoch, peer=f"{ns}/{req.name}", record=promoted))
            log.info(f"resumed {peer_y} on {b}")
        log.step("record the failover on both KRMSyncers")
        await record_event(act, x, reason="FailoverDemoted",
                           message=f"planned failover: suspended; {b} is now active ({peer_y}, epoch {epoch})")
        await record_event(sby, y, reason="FailoverPromoted",
                           message=f"planned failover: active, syncing {b} -> {a} (epoch {epoch})")
        log.info(f"done: {b} is active. Check with: ray-syncer diff {req.reverse_name} -n {ns} (against {b})")
    return 0


async def _switch(act: KubeClient, sby: KubeClient, x: dict[str, Any], plan: Plan, log: Transcript) -> dict[str, Any]:
    """Wait for the standby to catch up, then suspend the active syncer; again if the source
    changed meanwhile. Returns the suspended KRMSyncer; raises ``FailoverAborted``."""
    req, a, b = plan.request, plan.facts.active, plan.facts.standby
    ns, name = req.namespace, req.name
    deadline = time.monotonic() + req.timeout_s
    first = plan.facts.readiness
    attempt = 0
    while True:
        attempt += 1
        left = max(0.0, deadline - time.monotonic())
        log.step(f"wait for {b} to catch up with {a} (attempt {attempt}, {left:.0f}s left; "
                 f"stop application writes on {a} now)")
        report = await wait_in_sync(x, act, sby, a, b, timeout_s=left, poll_s=req.poll_s, log=log,
                                    first=first)
        first = None
        if not report.in_sync:
            if not req.force:
                log.warn("the standby did not catch up; nothing was changed (use --force to fail over anyway)")
                raise FailoverAborted(summary(report))
            log.warn("not in sync; continuing because of --force: the differences above are lost on the standby")

        log.step(f"suspend {ns}/{name} on {a}")
        demoted = _record("demoted", "planned", f"{ns}/{req.reverse_name}", plan.epoch or 0, req.now())
        x = await _patch(act, ns, name, {
            "metadata": {"annotations": {ANN_LAST_FAILOVER: demoted}},
            "spec": _suspend_patch(x.get("spec") or {}, True),
        })
        await _confirm_suspended(act, ns, name, int(x["metadata"].get("generation") or 0),
                                 timeout_s=req.confirm_timeout_s, log=log)

        log.step("verify nothing changed in between")
        final = await compute_diff(x, source=act, dest=sby, source_name=a, dest_name=b)
        log.info(("in sync: " if final.in_sync else "NOT in sync: ") + summary(final))
        for line in recovery_point_lines(recovery_point(final, x.get("status") or {})):
            log.info(line)
        if final.in_sync or req.force:
            return x
        # The source changed while we suspended: resume, let it drain, try again.
        log.warn(f"{a} changed during the switch: resuming {ns}/{name} on {a}")
        x = await _patch(act, ns, name, {"spec": _suspend_patch(x.get("spec") or {}, False)})
        if time.monotonic() >= deadline:
            raise FailoverAborted(summary(final))


async def emergency(standby_cfg: ClusterConfig, plan: Plan, log: Transcript) -> int:
    req, f = plan.request, plan.facts
    a, b, ns = f.active, f.standby, req.namespace
    log_survey(plan, log)
    assert f.y is not None and plan.epoch is not None
    if f.active_answers:
        log.warn(f"{a} answers, promoting anyway because of --force")
    epoch, peer_y = plan.epoch, f"{ns}/{req.reverse_name}"
    async with KubeClient(standby_cfg) as sby:
        log.step(f"activate {peer_y} on {b} ({b} -> {a}, conflictPolicy Adopt) with failover epoch {epoch}")
        record = _record("promoted", "emergency", f"{ns}/{req.name}", epoch, req.now())
        y = await _patch(sby, ns, req.reverse_name,
                         _activation_patch(f.y, epoch=epoch, peer=f"{ns}/{req.name}", record=record))
        log.info(f"fencing marker written: {ANN_REVERSE_OF}={ns}/{req.name}, {ANN_EPOCH}={epoch}")
        await record_event(sby, y, reason="FailoverPromoted", etype="Warning",
                           message=f"emergency failover: active, syncing {b} -> {a} (epoch {epoch}); "
                                   f"{ns}/{req.name} on {a} could not be suspended")
        log.step("fencing")
        log.info(f"{ns}/{req.name} on {a} is still active there. When {a} returns, its operator finds "
                 f"{peer_y} active with a newer epoch and refuses to write (Ready=False SplitBrain).")
        log.info(f"then suspend it: kubectl --context <{a}> -n {ns} patch krmsyncer {req.name} "
                 "--type merge -p '{\"spec\":{\"suspend\":true}}'")
    return 0


async def execute(plan: Plan, *, active: ClusterConfig | None, standby: ClusterConfig, log: Transcript) -> int:
    if plan.kind == "emergency":
        return await emergency(standby, plan, log)
    assert active is not None
    return await planned(active, standby, plan, log)
