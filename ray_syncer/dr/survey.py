"""The reads a failover decides on: both KRMSyncers, the reverse Secret, readiness, reachability.

Why it exists: ``failover`` and ``failover --dry-run`` must look at the same
things the same way, and looking must never write. This module only reads
(GET and LIST through ``KubeClient``; the readiness diff is ``dr.compare``) and
hands ``dr.plan`` its ``Facts``; ``plan_failover`` returns the pure decision.
"""

from __future__ import annotations

from typing import Any

from ray_syncer.dr.clusters import SECRET_RES, DrError, label, mode_of, remote_config
from ray_syncer.dr.compare import compute_diff
from ray_syncer.dr.plan import (
    PEER_SECRET_FLAGS,
    Facts,
    Plan,
    Request,
    decide_emergency,
    decide_planned,
)
from ray_syncer.fencing import KRMSYNCER_RES
from ray_syncer.kube.client import ApiError, KubeClient, TransportError
from ray_syncer.kube.config import ClusterConfig, KubeconfigError, load_kubeconfig_text

PROBE_TIMEOUT_S = 5.0  # an emergency is declared on a cluster that does not answer this fast


async def get_syncer(client: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(KRMSYNCER_RES, namespace=ns, name=name)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise DrError(f"cannot read KRMSyncer {ns}/{name}: {exc.status} {exc.reason}") from None


async def secret_problem(standby: KubeClient, req: Request, b: str) -> str | None:
    """Why a reverse KRMSyncer could not be created on the standby (None: it could)."""
    if req.reverse_secret:
        try:
            await standby.get(SECRET_RES, namespace=req.namespace, name=req.reverse_secret)
        except ApiError as exc:
            if not exc.not_found:
                raise DrError(f"cannot read Secret {req.namespace}/{req.reverse_secret} on {b}: "
                              f"{exc.status} {exc.reason}") from None
            return f"--peer-secret: Secret {req.namespace}/{req.reverse_secret} does not exist on {b}"
        return None
    if req.reverse_kubeconfig is not None:
        try:
            load_kubeconfig_text(req.reverse_kubeconfig, allow_exec=req.allow_exec,
                                 allow_files=req.allow_exec)
        except KubeconfigError as exc:
            return f"--peer-secret-from-file: {exc.message}"
        return None
    return f"the standby has no reverse KRMSyncer: give {PEER_SECRET_FLAGS}"


async def survey_planned(active: ClusterConfig, standby: ClusterConfig, req: Request) -> Facts:
    a, b = label(active), label(standby)
    async with KubeClient(active) as act, KubeClient(standby) as sby:
        x = await get_syncer(act, req.namespace, req.name)
        if x is None:
            raise DrError(f"KRMSyncer {req.namespace}/{req.name} not found on {a}")
        y = await get_syncer(sby, req.namespace, req.reverse_name)
        facts = Facts(active=a, standby=b, x=x, y=y, now=req.now())
        if y is None:
            facts.secret_problem = await secret_problem(sby, req, b)
        if mode_of(x) == "push":  # a pull-mode syncer is refused; its diff would run backwards
            facts.readiness = await compute_diff(x, source=act, dest=sby, source_name=a, dest_name=b)
    return facts


async def answers(config: ClusterConfig) -> bool:
    try:
        async with KubeClient(config, request_timeout=PROBE_TIMEOUT_S) as client:
            await client.request("GET", "/api")
    except TransportError:
        return False
    return True


async def survey_emergency(active: ClusterConfig | None, standby: ClusterConfig, req: Request) -> Facts:
    a = label(active) if active is not None else "the old active cluster"
    up = await answers(active) if active is not None else False
    async with KubeClient(standby) as sby:
        y = await get_syncer(sby, req.namespace, req.reverse_name)
    return Facts(active=a, standby=label(standby), x=None, y=y, now=req.now(), active_answers=up)


async def find_standby(active: ClusterConfig, req: Request) -> ClusterConfig:
    """The standby named by the active KRMSyncer's kubeconfig Secret (no --peer-kubeconfig)."""
    async with KubeClient(active) as act:
        x = await get_syncer(act, req.namespace, req.name)
        if x is None:
            raise DrError(f"KRMSyncer {req.namespace}/{req.name} not found on {label(active)}")
        return await remote_config(act, x, allow_exec=req.allow_exec)


async def plan_failover(
    *, active: ClusterConfig | None, standby: ClusterConfig | None, req: Request, emergency: bool
) -> tuple[Plan, ClusterConfig]:
    """Read, then decide. Returns the plan and the standby it was made for."""
    if standby is None:
        if active is None or emergency:
            raise DrError("--peer-kubeconfig (the standby) is required with --emergency")
        standby = await find_standby(active, req)
    if emergency:
        return decide_emergency(await survey_emergency(active, standby, req), req), standby
    assert active is not None
    return decide_planned(await survey_planned(active, standby, req), req), standby
