"""One operator, two in-memory clusters, many hostile KRMSyncers: the bad-input suite's world.

Why it exists: docs/design.md §4 must hold whatever users write. Each case in this
package creates one broken KRMSyncer (or a broken Secret, destination, object
...) in its own namespace and asserts what a person on call would see: a
precise condition reason and message in ``status``, a Warning Event, the
operator still alive, and the *canary* KRMSyncer (a valid one, created first)
still syncing. One operator serves every case, as one operator serves many
syncers in production.

The operator is the real ``serve()`` path of ``ray-syncer run`` with shard
hosts in-process (``LocalDriver`` runs the same ``HostCore`` the Ray actors
wrap), on its own event loop in a thread, so each test keeps its own loop.

The source cluster has a *permissive* KRMSyncer CRD (no schema, like the Go
KRMSyncer's older CRDs or objects stored before a CRD upgrade): the API server
lets broken specs through, so the operator's own validation is what is tested.
The destination has the real, strict CRD; spec cases also check that it
refuses the same object (dry run), so both layers agree.

Every token and kubeconfig made here is recorded in ``World.secrets``; the
security suite scans logs, Events, status and metrics for them at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ray_syncer_testkit import start_in_thread

from ray_syncer.api.crd import load_crd
from ray_syncer.engine.options import EngineOptions
from ray_syncer.fleet.supervisor import LocalDriver, SupervisorCore
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import ClusterConfig, load_kubeconfig_text
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.reconciler import CRD_RES, KRMSYNCER_RES, SECRET_RES, Reconciler
from ray_syncer.operator.serve import serve
from ray_syncer.operator.status import condition

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, has_status=False)
NS = ResourceInfo("", "v1", "Namespace", "namespaces", False, has_status=True)
EVENTS = ResourceInfo("", "v1", "Event", "events", True, has_status=False)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def permissive_crd() -> dict[str, Any]:
    """The KRMSyncer CRD with no spec schema: any spec is stored as written."""
    crd = load_crd()
    for v in crd["spec"]["versions"]:
        v["schema"] = {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        }
    return crd


def widget_crd(plural: str, kind: str, group: str = "example.com") -> dict[str, Any]:
    """A small namespaced CRD with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


class CaptureHandler(logging.Handler):
    """Keeps every formatted record (any level, any thread) for the secret scan."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.previous_level = logging.WARNING
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a broken record must not break the run
            text = str(record.msg)
        with self._lock2:
            self.lines.append(text)


@dataclass
class OperatorThread:
    """``serve()`` on its own loop in a daemon thread."""

    own: ClusterConfig
    options: OperatorOptions
    driver: LocalDriver = field(default_factory=LocalDriver)
    reconciler: Reconciler | None = None
    http: Any = None
    error: BaseException | None = None

    def start(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"operator did not start: {self.error!r}")

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()

            def started(r: Reconciler, http: Any) -> None:
                self.reconciler, self.http = r, http
                self._ready.set()

            await serve(
                self.options,
                backend=SupervisorCore(self.driver),
                own_config=self.own,
                stop=self.stop_event,
                on_started=started,
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by alive()
            self.error = exc
            self._ready.set()

    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def close(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self._thread.join(60)

    def running_shards(self) -> list[str]:
        return sorted(sid for h in list(self.driver.hosts.values()) for sid in h.shard_ids())


@dataclass
class World:
    src: Any  # ThreadedApiServer
    dst: Any
    dest_token: str
    op: OperatorThread
    capture: CaptureHandler
    secrets: list[str] = field(default_factory=list)  # strings that must never leak

    # -- clients and object helpers ------------------------------------------------
    def src_client(self) -> KubeClient:
        return KubeClient(load_kubeconfig_text(self.src.kubeconfig()))

    def dst_client(self) -> KubeClient:
        return KubeClient(load_kubeconfig_text(self.dst.kubeconfig()))

    def dest_kubeconfig(self, *, token: str | None = None) -> str:
        return str(self.dst.kubeconfig(token=token or self.dest_token))

    def new_token(self, prefix: str) -> str:
        token = f"{prefix}-{uuid.uuid4().hex}"
        self.secrets.append(token)
        return token


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


async def ensure_ns(client: KubeClient, name: str) -> None:
    with contextlib.suppress(ApiError):
        await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def put_secret(client: KubeClient, ns: str, name: str, data: dict[str, str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    await client.apply(SECRET_RES, body, field_manager="badinput")


async def put_cm(client: KubeClient, ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }
    return await client.apply(CM, body, field_manager="badinput")


async def get_or_none(
    client: KubeClient, res: ResourceInfo, ns: str | None, name: str
) -> dict[str, Any] | None:
    try:
        return await client.get(res, namespace=ns, name=name)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise


def syncer_obj(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "syncer.gkelabs.io/v1alpha1",
        "kind": "KRMSyncer",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def dest_ref(secret: str = "dest", key: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret}
    if key is not None:
        ref["key"] = key
    return {"clusterConfig": {"kubeConfigSecretRef": ref}}


def cm_rule(*namespaces: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"group": "", "version": "v1", "kind": "ConfigMap"}
    if namespaces:
        rule["namespaces"] = list(namespaces)
    return rule


async def put_syncer(client: KubeClient, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    path = KRMSYNCER_RES.path(namespace=meta["namespace"])
    await client.request("POST", path, body=obj)


async def status_of(client: KubeClient, ns: str, name: str) -> dict[str, Any]:
    obj = await client.get(KRMSYNCER_RES, namespace=ns, name=name)
    return dict(obj.get("status") or {})


async def wait_condition(
    client: KubeClient,
    ns: str,
    name: str,
    ctype: str,
    status: str,
    reason: str,
    *,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Wait until condition ``ctype`` has ``status`` and ``reason``; returns that condition."""

    seen: list[str] = []

    async def check() -> Any:
        st = await status_of(client, ns, name)
        c = condition(st, ctype)
        if c and c.get("status") == status and c.get("reason") == reason:
            return c
        seen[:] = [f"{c.get('status')} {c.get('reason')}: {c.get('message')}" if c else "absent"]
        return None

    try:
        result: dict[str, Any] = await wait_for(
            check, timeout=timeout, what=f"{ns}/{name} {ctype}={status} {reason}"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {ctype} was {seen}") from None
    return result


async def warning_events(client: KubeClient, ns: str, name: str) -> list[dict[str, Any]]:
    items, _ = await client.list_all(EVENTS, namespace=ns)
    return [
        e
        for e in items
        if e.get("type") == "Warning" and (e.get("involvedObject") or {}).get("name") == name
    ]


async def wait_warning(
    client: KubeClient, ns: str, name: str, reason: str, *, timeout: float = 10.0
) -> dict[str, Any]:
    async def check() -> Any:
        return next((e for e in await warning_events(client, ns, name) if e["reason"] == reason), None)

    found: dict[str, Any] = await wait_for(check, timeout=timeout, what=f"Warning {reason} on {name}")
    return found


def dest_writes(server: Any, ns: str) -> list[str]:
    """Writes the destination server logged in namespace ``ns``."""
    return [
        f"{r.method} {r.path} -> {r.status}"
        for r in list(server.request_log)
        if r.method in WRITES and f"/namespaces/{ns}/" in r.path + "/"
    ]


def fast_engine() -> EngineOptions:
    return EngineOptions(
        backoff_base_s=0.05, backoff_max_s=1.0, retry_base_s=0.1, retry_max_s=1.0
    )


async def install_crd(client: KubeClient, crd: dict[str, Any]) -> None:
    try:
        await client.create(CRD_RES, crd)
    except ApiError as exc:
        if not exc.conflict:
            raise
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]

    async def served() -> Any:
        client.invalidate_discovery()
        return await client.resolve(group, "v1" if group != "syncer.gkelabs.io" else "v1alpha1", kind)

    await wait_for(served, timeout=10, what=f"{kind} served")


def start_world() -> World:
    """Servers, CRDs, the canary syncer and the operator."""
    src = start_in_thread(name="source")
    dst = start_in_thread(name="destination")
    dest_token = f"bi-dest-token-{uuid.uuid4().hex}"
    dst.add_user(dest_token, user="syncer")
    capture = CaptureHandler()
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    capture.previous_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    options = OperatorOptions(
        namespace=None,
        metrics_port=0,
        metrics_host="127.0.0.1",
        cluster_name="source",
        tick_s=0.3,
        discovery_ttl_s=1.0,
        probe_ttl_s=1.0,
        engine_options=fast_engine(),
    )
    op = OperatorThread(own=load_kubeconfig_text(src.kubeconfig()), options=options)
    world = World(src=src, dst=dst, dest_token=dest_token, op=op, capture=capture)
    world.secrets += [dest_token, src.admin_token, dst.admin_token]

    async def prepare() -> None:
        async with world.src_client() as s, world.dst_client() as d:
            await install_crd(s, permissive_crd())
            await install_crd(d, load_crd())
            for c in (s, d):
                await ensure_ns(c, "canary")
            await put_secret(s, "canary", "dest", {"kubeconfig": world.dest_kubeconfig()})
            await put_syncer(
                s, syncer_obj("canary", "canary", {"rules": [cm_rule("canary")], "destination": dest_ref()})
            )

    asyncio.run(prepare())
    op.start()
    return world


def stop_world(world: World) -> None:
    world.op.close()
    root = logging.getLogger()
    root.removeHandler(world.capture)
    root.setLevel(world.capture.previous_level)
    world.src.stop()
    world.dst.stop()


async def canary_alive(world: World) -> None:
    """The valid KRMSyncer beside the broken one still syncs a fresh change, and the operator lives."""
    assert world.op.alive(), f"operator died: {world.op.error!r}"
    value = uuid.uuid4().hex[:8]
    async with world.src_client() as s, world.dst_client() as d:
        await put_cm(s, "canary", "beat", {"v": value})

        async def arrived() -> bool:
            got = await get_or_none(d, CM, "canary", "beat")
            return bool(got and got.get("data") == {"v": value})

        await wait_for(arrived, timeout=10, what="the canary's change in the destination")
