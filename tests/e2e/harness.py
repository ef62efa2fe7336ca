"""End-to-end harness: two clusters (in-memory or real, see tests/substrate.py), the operator in-process.

Tests talk to clusters through ``KubeClient`` only. What a test needs beyond
the API has one interface on both substrates: ``Cluster.requests()`` is the
request log (the in-memory server's own, or an envtest apiserver's audit log)
and ``Cluster.add_user()`` makes a new identity (a token of the in-memory
server's, or a ServiceAccount with a TokenRequest token). ``Cluster.server`` is
the in-memory server, None on real clusters; tests that need its own controls
call ``Cluster.require_server()``, which skips with a reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from ray_syncer_testkit.envtest import ControlPlane
from ray_syncer_testkit.http import RequestRecord

from ray_syncer.engine.options import EngineOptions
from ray_syncer.fleet import actors
from ray_syncer.fleet import testing as fleet_testing
from ray_syncer.fleet.plan import AUTOMATIC
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import ClusterConfig, load_kubeconfig_text
from ray_syncer.operator.options import OperatorOptions
from ray_syncer.operator.reconciler import KRMSYNCER_RES, SECRET_RES, Reconciler
from ray_syncer.operator.serve import serve
from ray_syncer.operator.status import condition
from tests import cleanup
from tests.substrate import RealCluster

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, has_status=False)
NS = ResourceInfo("", "v1", "Namespace", "namespaces", False, has_status=True)
DEPLOY = ResourceInfo("apps", "v1", "Deployment", "deployments", True, has_status=True)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
USERS_NS = cleanup.USERS_NS  # where a real cluster's test identities (ServiceAccounts) live


@dataclass(frozen=True)
class Identity:
    token: str
    kubeconfig: str
    user: str  # as the request log names it


@dataclass
class Cluster:
    name: str
    kubeconfig: str
    config: ClusterConfig
    server: Any = None  # ThreadedApiServer when in-memory
    plane: ControlPlane | None = None  # the envtest control plane when real and local

    def require_server(self) -> Any:
        """The in-memory server itself, for its own controls (faults); skips on a real cluster."""
        if self.server is None:
            pytest.skip("needs the in-memory API server's own controls (faults)")
        return self.server

    def client(self) -> KubeClient:
        return KubeClient(self.config)

    # -- the request log: the in-memory server's own, or a real apiserver's audit log ------------

    def require_log(self) -> None:
        if self.server is None and (self.plane is None or not self.plane.options.audit):
            pytest.skip("needs a request log: the in-memory server's, or an envtest apiserver's "
                        "audit log (a cluster from a kubeconfig has neither)")

    def log_mark(self) -> int:
        """A point in the request log; :meth:`requests` returns what came after it."""
        self.require_log()
        if self.server is not None:
            return len(self.server.request_log)
        assert self.plane is not None
        return self.plane.audit_offset()

    async def requests(self, since: int = 0) -> list[RequestRecord]:
        """Every request the cluster answered after ``since`` (method, path, status, user)."""
        self.require_log()
        if self.server is not None:
            return list(self.server.request_log[since:])
        assert self.plane is not None
        # The apiserver logs a request just after answering it: let the last ones land.
        await asyncio.sleep(0.5)
        return [_audit_record(e) for e in self.plane.audit_events(since)]

    # -- identities ----------------------------------------------------------------------------

    async def add_user(self, name: str, *, read_only: bool = False) -> Identity:
        """A new identity with full rights (or read-only ones): its token, kubeconfig and name
        in the request log.

        In memory, a bearer token of the server's; on a real cluster a ServiceAccount bound to
        cluster-admin (or the built-in ``view``), with a token from the TokenRequest API, as a
        person would do it. Both carry the run's label (tests/cleanup.py), and go after the test.
        """
        cleanup.note(name)
        if self.server is not None:
            token = f"tok-{name}-{uuid.uuid4().hex}"
            reads = ("get", "list", "watch")
            allow = (lambda verb, *_: verb in reads) if read_only else None
            self.server.add_user(token, user=name, allow=allow)
            return Identity(token, self.server.kubeconfig(token=token), name)
        async with self.client() as c:
            await ensure_namespace(c, USERS_NS)
            sa = {"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": cleanup.labelled({"name": name, "namespace": USERS_NS})}
            with contextlib.suppress(ApiError):
                await c.request("POST", f"/api/v1/namespaces/{USERS_NS}/serviceaccounts", body=sa)
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": cleanup.labelled({"name": f"e2e-{name}"}),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "view" if read_only else "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": USERS_NS}],
            }
            with contextlib.suppress(ApiError):
                await c.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                                body=binding)
            issued = await c.request(
                "POST", f"/api/v1/namespaces/{USERS_NS}/serviceaccounts/{name}/token",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"expirationSeconds": 3600}},
            )
        token = str(issued["status"]["token"])
        doc = yaml.safe_load(self.kubeconfig)
        for entry in doc["users"]:
            entry["user"] = {"token": token}
        return Identity(token, yaml.safe_dump(doc, sort_keys=False),
                        f"system:serviceaccount:{USERS_NS}:{name}")


_VERB_METHOD = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE",
                "deletecollection": "DELETE"}


def _audit_record(event: dict[str, Any]) -> RequestRecord:
    path, _, query = str(event.get("requestURI", "")).partition("?")
    verb = str(event.get("verb", ""))
    return RequestRecord(
        method=_VERB_METHOD.get(verb, "GET"),
        path=path,
        query=dict(urllib.parse.parse_qsl(query)),
        content_type=None,
        status=int((event.get("responseStatus") or {}).get("code") or 0),
        user=(event.get("user") or {}).get("username"),
        watch=verb == "watch",
    )


@dataclass
class Clusters:
    source: Cluster
    dest: Cluster

    @property
    def in_memory(self) -> bool:
        return self.source.server is not None


def fast_engine() -> EngineOptions:
    return EngineOptions(backoff_base_s=0.1, backoff_max_s=2.0, retry_base_s=0.2, retry_max_s=2.0)


def unique(prefix: str) -> str:
    """A fresh name, noted for the test's cleanup on real clusters (tests/cleanup.py)."""
    return cleanup.note(f"{prefix}-{uuid.uuid4().hex[:6]}")


async def wait_for(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "",
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last={last!r}")


async def get_or_none(
    client: KubeClient, res: ResourceInfo, *, namespace: str | None, name: str
) -> dict[str, Any] | None:
    try:
        return await client.get(res, namespace=namespace, name=name)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise


async def ensure_namespace(client: KubeClient, name: str) -> None:
    """The namespace, made with the run's label if missing; deleted after the test on real
    clusters, on both sides (tests/cleanup.py)."""
    cleanup.note(name)
    with contextlib.suppress(ApiError):
        await client.create(
            NS, {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": cleanup.labelled({"name": name})}
        )


async def put_cm(
    client: KubeClient, namespace: str, name: str, data: dict[str, str], **meta: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "data": data,
    }
    return await client.apply(CM, body, field_manager="e2e-test")


async def cm_data(client: KubeClient, namespace: str, name: str) -> dict[str, str] | None:
    obj = await get_or_none(client, CM, namespace=namespace, name=name)
    return None if obj is None else dict(obj.get("data") or {})


async def put_secret(
    client: KubeClient, namespace: str, name: str, kubeconfig: str, *, key: str = "kubeconfig"
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(kubeconfig.encode()).decode()},
    }
    await client.apply(SECRET_RES, body, field_manager="e2e-test")


def krmsyncer(
    namespace: str,
    name: str,
    *,
    rules: list[dict[str, Any]],
    secret: str = "dest-kubeconfig",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rules": rules,
        "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": secret}}},
    }
    body.update(spec)
    return {
        "apiVersion": "syncer.gkelabs.io/v1alpha1",
        "kind": "KRMSyncer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


async def put_syncer(client: KubeClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Apply a KRMSyncer, with the run's label (the cleanup deletes it before its namespace)."""
    body = {**obj, "metadata": cleanup.labelled(obj["metadata"])}
    return await client.apply(KRMSYNCER_RES, body, field_manager="e2e-test")


async def syncer_status(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    obj = await client.get(KRMSYNCER_RES, namespace=namespace, name=name)
    return dict(obj.get("status") or {})


async def wait_condition(
    client: KubeClient,
    namespace: str,
    name: str,
    ctype: str,
    status: str,
    *,
    reason: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        st = await syncer_status(client, namespace, name)
        c = condition(st, ctype)
        if c and c.get("status") == status and (reason is None or c.get("reason") == reason):
            return st
        return None

    result: dict[str, Any] = await wait_for(
        check, timeout=timeout, what=f"{name} {ctype}={status} {reason or ''}"
    )
    return result


def shard_actors(prefix: str) -> list[str]:
    return [
        n for n in fleet_testing.named_actors() if n.startswith(prefix) or n.startswith(f"host/{prefix}")
    ]


@dataclass
class Operator:
    reconciler: Reconciler
    http: Any
    task: asyncio.Task[Reconciler]
    stop: asyncio.Event
    options: OperatorOptions = field(repr=False)


@contextlib.asynccontextmanager
async def operator(
    clusters: Clusters,
    *,
    namespace: str,
    own: str = "source",
    shards_per_host: int = AUTOMATIC,
    stop_shards_on_exit: bool = True,
    supervisor_resource: str = actors.HEAD_RESOURCE,
    backend: Any = None,
    **overrides: Any,
) -> AsyncIterator[Operator]:
    """The operator in-process (same path as ``ray-syncer run``), watching one namespace.

    Packing and the supervisor's place are the product's defaults unless given. ``backend``:
    another fleet than the Ray one (an in-process ``SupervisorCore``, for injected faults).
    """
    own_cluster = clusters.source if own == "source" else clusters.dest
    options = OperatorOptions(
        namespace=namespace,
        metrics_port=0,
        metrics_host="127.0.0.1",
        cluster_name=own_cluster.name,
        tick_s=0.5,
        discovery_ttl_s=2.0,
        probe_ttl_s=2.0,
        engine_options=fast_engine(),
        stop_shards_on_exit=stop_shards_on_exit,
    )
    for k, v in overrides.items():
        setattr(options, k, v)
    backend = backend or actors.RayBackend(
        actors.ActorSettings(
            shards_per_host=shards_per_host,
            supervisor_resource=supervisor_resource,
            reconcile_interval_s=0.5,
            call_timeout_s=10.0,
        )
    )
    stop = asyncio.Event()
    holder: dict[str, Any] = {}

    def started(reconciler: Reconciler, http: Any) -> None:
        holder["r"], holder["http"] = reconciler, http

    task = asyncio.create_task(
        serve(
            options, backend=backend, own_config=own_cluster.config, stop=stop, on_started=started
        )
    )
    await wait_for(lambda: _ready(holder, task), timeout=30, what="operator start")
    op = Operator(holder["r"], holder["http"], task, stop, options)
    try:
        yield op
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


async def _ready(holder: dict[str, Any], task: asyncio.Task[Any]) -> bool:
    if task.done():
        task.result()  # raise the operator's error
    return "r" in holder


@contextlib.contextmanager
def substrate_clusters(
    substrate: str, request: pytest.FixtureRequest, names: tuple[str, str]
) -> Iterator[Clusters]:
    """The two clusters of a substrate (tests/substrate.py), named ``names`` (source, destination).

    ``memory``: two in-memory servers, stopped after. ``real``: the session's real pair, shared
    with the other suites (tests keep to namespaces of their own).
    """
    if substrate == "real":
        pair = request.getfixturevalue("real_pair")
        yield Clusters(_real(names[0], pair.source), _real(names[1], pair.dest))
        return
    from ray_syncer_testkit import start_in_thread

    servers = [start_in_thread(name=n) for n in names]
    try:
        yield Clusters(
            *(Cluster(n, s.kubeconfig(), load_kubeconfig_text(s.kubeconfig()), s)
              for n, s in zip(names, servers, strict=True))
        )
    finally:
        for s in servers:
            s.stop()


def _real(name: str, real: RealCluster) -> Cluster:
    # A user's kubeconfig may name files or exec plugins; the tests trust it as kubectl would.
    config = load_kubeconfig_text(real.kubeconfig, allow_files=True, allow_exec=True)
    return Cluster(name, real.kubeconfig, config, plane=real.plane)
