"""deploy/'s RBAC against a real operator run: the in-memory API servers enforce it.

The operator (the same `serve()` path as `ray-syncer run`, with shards hosted in-process instead
of in Ray actors) runs against two in-memory API servers. Its ServiceAccount in the source and
the writer identity in the destination are users whose every request is authorized by the RBAC
model in rbac.py over deploy/'s manifests (plus the ConfigMap examples). A ConfigMap is created,
updated and deleted; it must arrive, change and vanish in the destination with no request
denied, and every request in both servers' logs must be one the rules allow and one the call
table in test_rbac.py lists. Without the source example role the same run is denied: the
enforcement is real.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ray_syncer_testkit import ApiServer

from ray_syncer.api.crd import load_crd
from ray_syncer.engine.options import EngineOptions
from ray_syncer.fleet.host import HostCore
from ray_syncer.fleet.plan import DesiredShard
from ray_syncer.fleet.supervisor import SupervisorCore
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, SECRET_RES
from ray_syncer.operator.serve import serve
from tests.deploy.rbac import Authorizer, Request, request_attributes
from tests.deploy.test_rbac import CALLS, EXAMPLES, operator_identity, writer_identity

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, has_status=False)
NS = ResourceInfo("", "v1", "Namespace", "namespaces", False, has_status=True)
OP_TOKEN, WRITER_TOKEN = "operator-sa-token", "writer-sa-token"


class InProcessHosts:
    """HostDriver without Ray: the same HostCore the Ray actors wrap, in this process."""

    def __init__(self) -> None:
        self.hosts: dict[str, HostCore] = {}

    async def list_hosts(self) -> list[str]:
        return sorted(self.hosts)

    async def report(self, name: str) -> Any:
        return self.hosts[name].report()

    async def start(self, name: str, desired: DesiredShard, planned: tuple[str, ...] = ()) -> None:
        host = self.hosts.setdefault(name, HostCore(name, desired.spec.syncer_key))
        await host.start_shard(desired)

    async def stop(self, name: str, shard_id: str) -> None:
        if name in self.hosts:
            await self.hosts[name].stop_shard(shard_id)

    async def remove(self, name: str) -> None:
        host = self.hosts.pop(name, None)
        if host is not None:
            await host.stop_all()


def _allow(auth: Authorizer) -> Callable[[str, str, str, str | None], bool]:
    def allow(verb: str, group: str, resource: str, namespace: str | None) -> bool:
        res, _, sub = resource.partition("/")
        req = Request(verb, group=group, resource=res, subresource=sub, namespace=namespace or "")
        return auth.allows(req)

    return allow


async def _wait(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _cm(client: KubeClient, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(CM, namespace="app", name=name)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise


@contextlib.asynccontextmanager
async def _world(
    source_extra: list[Path],
) -> AsyncIterator[tuple[ApiServer, ApiServer, KubeClient, KubeClient]]:
    src = await ApiServer.start(name="source")
    dst = await ApiServer.start(name="destination")
    src.add_user(OP_TOKEN, user="krmsyncer", allow=_allow(operator_identity(*source_extra)))
    dst.add_user(
        WRITER_TOKEN,
        user="krmsyncer-writer",
        allow=_allow(writer_identity(EXAMPLES / "destination-configmaps-secrets.yaml")),
    )
    admin_src = KubeClient(load_kubeconfig_text(src.kubeconfig()))
    admin_dst = KubeClient(load_kubeconfig_text(dst.kubeconfig()))
    try:
        for c in (admin_src, admin_dst):
            await c.create(CRD_RES, load_crd())
        for ns in ("team-a", "app"):
            await admin_src.create(
                NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        kubeconfig = dst.kubeconfig(token=WRITER_TOKEN)
        await admin_src.create(
            SECRET_RES,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "dest-kubeconfig", "namespace": "team-a"},
                "data": {"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
            },
        )
        await _wait(
            lambda: admin_src.resolve("syncer.gkelabs.io", "v1alpha1", "KRMSyncer"), "the CRD"
        )
        yield src, dst, admin_src, admin_dst
    finally:
        await admin_src.close()
        await admin_dst.close()
        await src.stop()
        await dst.stop()


@contextlib.asynccontextmanager
async def _operator(src: ApiServer) -> AsyncIterator[None]:
    options = OperatorOptions(
        namespace="team-a",
        metrics_port=0,
        metrics_host="127.0.0.1",
        cluster_name="source",
        tick_s=0.3,
        discovery_ttl_s=1.0,
        probe_ttl_s=1.0,
        engine_options=EngineOptions(
            backoff_base_s=0.05, backoff_max_s=0.5, retry_base_s=0.05, retry_max_s=0.5
        ),
    )
    own = load_kubeconfig_text(src.kubeconfig(token=OP_TOKEN))
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(options, backend=SupervisorCore(InProcessHosts()), own_config=own, stop=stop)
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _start_syncer(admin_src: KubeClient) -> None:
    syncer = {
        "apiVersion": "syncer.gkelabs.io/v1alpha1",
        "kind": "KRMSyncer",
        "metadata": {"name": "s1", "namespace": "team-a"},
        "spec": {
            "rules": [{"group": "", "version": "v1", "kind": "ConfigMap", "namespaces": ["app"]}],
            "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": "dest-kubeconfig"}}},
        },
    }
    await admin_src.apply(KRMSYNCER_RES, syncer, field_manager="test")


def _logged(server: ApiServer, user: str) -> list[Any]:
    return [r for r in server.request_log if r.user == user]


@pytest.mark.timeout(120)
async def test_operator_run_needs_nothing_beyond_deploy_rbac() -> None:
    async with _world([EXAMPLES / "source-configmaps-secrets.yaml"]) as (
        src,
        dst,
        admin_src,
        admin_dst,
    ):
        async with _operator(src):
            await _start_syncer(admin_src)
            cm = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c1", "namespace": "app"},
            }
            await admin_src.apply(CM, {**cm, "data": {"k": "v1"}}, field_manager="test")
            await _wait(lambda: _cm(admin_dst, "c1"), "c1 in the destination")
            await admin_src.apply(CM, {**cm, "data": {"k": "v2"}}, field_manager="test")

            async def updated() -> bool:
                got = await _cm(admin_dst, "c1")
                return bool(got and got.get("data") == {"k": "v2"})

            await _wait(updated, "the update in the destination")
            await admin_src.delete(CM, namespace="app", name="c1")

            async def gone() -> bool:
                return await _cm(admin_dst, "c1") is None

            await _wait(gone, "the delete in the destination")

            async def status_written() -> bool:
                obj = await admin_src.get(KRMSYNCER_RES, namespace="team-a", name="s1")
                return bool((obj.get("status") or {}).get("conditions"))

            await _wait(status_written, "KRMSyncer status")

        op_log, writer_log = _logged(src, "krmsyncer"), _logged(dst, "krmsyncer-writer")
        assert op_log and writer_log
        denied = [
            f"{r.method} {r.path} -> {r.status}"
            for r in op_log + writer_log
            if r.status in (401, 403)
        ]
        assert denied == []
        # Each logged call is allowed by the rules and listed in the table of test_rbac.py.
        table = {(c.who, _key(c.request)) for c in CALLS}
        for who, records, ident in (
            ("operator", op_log, operator_identity(EXAMPLES / "source-configmaps-secrets.yaml")),
            (
                "writer",
                writer_log,
                writer_identity(EXAMPLES / "destination-configmaps-secrets.yaml"),
            ),
        ):
            for r in records:
                req = request_attributes(r.method, r.path, r.query)
                assert ident.allows(req), f"{who}: {req}"
                assert (who, _key(req)) in table, (
                    f"{who}: {req} is missing from CALLS in test_rbac.py"
                )
        seen = {_key(request_attributes(r.method, r.path, r.query)) for r in op_log}
        assert ("patch", "syncer.gkelabs.io", "krmsyncers/status") in seen
        assert ("get", "", "secrets") in seen


def _key(req: Request) -> tuple[str, str, str]:
    if not req.resource_request:
        # Discovery documents (/api, /api/v1, /apis/<group>/<version>, ...) are one kind of call.
        return (req.verb, "nonresource", "discovery" if req.path.startswith("/api") else req.path)
    res = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    return (req.verb, req.group, res)


@pytest.mark.timeout(120)
async def test_without_the_source_role_the_operator_is_denied() -> None:
    # Same run, but the user never added a source ClusterRole for ConfigMaps.
    async with _world([]) as (src, _dst, admin_src, admin_dst), _operator(src):
        await _start_syncer(admin_src)

        async def denied() -> bool:
            return any(
                r.status == 403 and "configmaps" in r.path for r in _logged(src, "krmsyncer")
            )

        await _wait(denied, "a 403 on configmaps")
        assert await _cm(admin_dst, "c1") is None
