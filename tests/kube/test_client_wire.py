"""KubeClient on the wire, against a tiny scripted HTTP server (exact bytes and chunking).

The in-memory API server covers the API semantics (test_client_apiserver.py);
these tests pin what only a scripted server can: how watch lines split across
chunks, huge lines, stalls, odd error bodies, and what the client sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.config import ClusterConfig
from tests.kube.pki import pki as _pki

TOKEN = "wire-secret-token-0123456789"
CM = ResourceInfo(
    group="",
    version="v1",
    kind="ConfigMap",
    plural="configmaps",
    namespaced=True,
    verbs=frozenset({"list", "watch", "get"}),
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[tuple[KubeClient, list[web.Request]]]:
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = KubeClient(ClusterConfig(server=f"http://127.0.0.1:{port}", token=TOKEN, name="wire"))
    try:
        yield client, seen
    finally:
        await client.close()
        await runner.cleanup()


def event(kind: str, name: str, rv: str) -> dict[str, Any]:
    return {
        "type": kind,
        "object": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "a", "resourceVersion": rv},
        },
    }


async def stream(request: web.Request, chunks: list[bytes]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for c in chunks:
        await resp.write(c)
        await asyncio.sleep(0)
    return resp


async def collect(it: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e async for e in it]


# ---------------------------------------------------------------- watch streams


async def test_watch_reassembles_events_split_at_every_byte() -> None:
    events = [event("ADDED", "a", "1"), event("BOOKMARK", "", "2"), event("MODIFIED", "a", "3")]
    body = b"".join(orjson.dumps(e) + b"\n" for e in events)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, [body[i : i + 1] for i in range(len(body))])

    async with scripted(handler) as (client, seen):
        got = await collect(
            client.watch(CM, namespace="a", resource_version="1", timeout_seconds=5)
        )
    assert got == events  # bookmarks are passed through
    q = seen[0].query
    assert seen[0].path == "/api/v1/namespaces/a/configmaps"
    assert (q["watch"], q["resourceVersion"], q["allowWatchBookmarks"], q["timeoutSeconds"]) == (
        "true",
        "1",
        "true",
        "5",
    )
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_watch_handles_a_line_larger_than_stream_buffers() -> None:
    big = event("ADDED", "big", "9")
    big["object"]["data"] = {"blob": "x" * (3 * 1024 * 1024)}
    body = orjson.dumps(big) + b"\n" + orjson.dumps(event("DELETED", "big", "10"))  # no final \n

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, [body[i : i + 65536] for i in range(0, len(body), 65536)])

    async with scripted(handler) as (client, _):
        got = await collect(client.watch(CM, resource_version="1"))
    assert [e["type"] for e in got] == ["ADDED", "DELETED"]
    assert len(got[0]["object"]["data"]["blob"]) == 3 * 1024 * 1024


@pytest.mark.parametrize(("code", "reason"), [(410, "Expired"), (500, "InternalError")])
async def test_watch_error_event_raises_api_error(code: int, reason: str) -> None:
    status = {
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": "too old resource version: 1 (42)",
    }
    body = (
        orjson.dumps(event("ADDED", "a", "1"))
        + b"\n"
        + orjson.dumps({"type": "ERROR", "object": status})
        + b"\n"
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, [body])

    async with scripted(handler) as (client, _):
        got: list[dict[str, Any]] = []
        with pytest.raises(ApiError) as info:
            async for e in client.watch(CM, resource_version="1"):
                got.append(e)
    assert [e["type"] for e in got] == ["ADDED"]
    assert (info.value.status, info.value.reason) == (code, reason)
    assert info.value.gone == (code == 410)


async def test_watch_error_event_without_reason_defaults_to_expired() -> None:
    body = orjson.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410}}) + b"\n"

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, [body])

    async with scripted(handler) as (client, _):
        with pytest.raises(ApiError) as info:
            await collect(client.watch(CM, resource_version="1"))
    assert (info.value.status, info.value.reason) == (410, "Expired")


async def test_closed_stream_ends_the_iterator() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream(request, [orjson.dumps(event("ADDED", "a", "1")) + b"\n"])

    async with scripted(handler) as (client, _):
        assert len(await collect(client.watch(CM, resource_version="1"))) == 1


async def test_stalled_stream_raises_transport_error() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = await stream(request, [orjson.dumps(event("ADDED", "a", "1")) + b"\n"])
        await release.wait()  # then stall, holding the stream open
        return resp

    async with scripted(handler) as (client, _):
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TransportError, match="stalled"):
            async for e in client.watch(CM, resource_version="1", idle_timeout=0.3):
                got.append(e)
        assert loop.time() - start < 3
        release.set()
    assert len(got) == 1


async def test_watch_http_error_status_raises_api_error() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}, status=403
        )

    async with scripted(handler) as (client, _):
        with pytest.raises(ApiError) as info:
            await collect(client.watch(CM, resource_version=None))
    assert info.value.forbidden


# ---------------------------------------------------------------- errors and requests


async def test_status_body_with_causes_and_retry_after_header() -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 429,
        "reason": "TooManyRequests",
        "message": "slow down",
        "details": {"causes": [{"reason": "Throttled", "message": "x"}], "retryAfterSeconds": 9},
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(status, status=429, headers={"Retry-After": "2"})

    async with scripted(handler) as (client, _):
        with pytest.raises(ApiError) as info:
            await client.get(CM, namespace="a", name="x")
    err = info.value
    assert (err.status, err.reason, err.message) == (429, "TooManyRequests", "slow down")
    assert err.retry_after == 2.0  # the header wins over details.retryAfterSeconds
    assert err.causes == [{"reason": "Throttled", "message": "x"}]
    assert err.retryable and not err.invalid


@pytest.mark.parametrize(
    ("code", "prop"),
    [
        (404, "not_found"),
        (409, "conflict"),
        (410, "gone"),
        (422, "invalid"),
        (400, "invalid"),
        (403, "forbidden"),
        (401, "unauthorized"),
        (503, "retryable"),
    ],
)
async def test_non_status_error_bodies_map_by_http_code(code: int, prop: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text="<html>proxy says no</html>")

    async with scripted(handler) as (client, _):
        with pytest.raises(ApiError) as info:
            await client.request("GET", "/api/v1/namespaces")
    assert info.value.status == code and getattr(info.value, prop)
    assert "proxy says no" in info.value.message


async def test_apply_sends_ssa_patch_with_field_manager_and_force() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "a"},
        "data": {"k": "v"},
    }
    bodies: list[bytes] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        return web.json_response(obj)

    async with scripted(handler) as (client, seen):
        out = await client.apply(CM, obj)
        await client.apply(CM, obj, field_manager="other", force=False, subresource="status")
    assert out == obj
    r = seen[0]
    assert (r.method, r.path, r.content_type) == (
        "PATCH",
        "/api/v1/namespaces/a/configmaps/x",
        "application/apply-patch+yaml",
    )
    assert dict(r.query) == {"fieldManager": "krm-syncer", "force": "true"}
    assert orjson.loads(bodies[0]) == obj
    assert seen[1].path.endswith("/configmaps/x/status")
    assert dict(seen[1].query) == {"fieldManager": "other", "force": "false"}


async def test_delete_sends_preconditions_and_policy() -> None:
    bodies: list[Any] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        bodies.append(orjson.loads(await request.read()))
        return web.json_response({"kind": "Status", "status": "Success"})

    async with scripted(handler) as (client, seen):
        assert (
            await client.delete(
                CM,
                namespace="a",
                name="x",
                uid="u-1",
                resource_version="7",
                propagation_policy="Background",
            )
            is None
        )
    assert seen[0].method == "DELETE"
    assert bodies[0]["preconditions"] == {"uid": "u-1", "resourceVersion": "7"}
    assert bodies[0]["propagationPolicy"] == "Background"


async def test_list_all_follows_continue_and_fills_kind() -> None:
    pages = {
        "": {
            "metadata": {"resourceVersion": "50", "continue": "p2"},
            "items": [{"metadata": {"name": "a"}}],
        },
        "p2": {"metadata": {"resourceVersion": "50"}, "items": [{"metadata": {"name": "b"}}]},
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(pages[request.query.get("continue", "")])

    async with scripted(handler) as (client, seen):
        items, rv = await client.list_all(CM, namespace="a", label_selector="x=y", page_size=1)
    assert rv == "50"
    assert [(i["metadata"]["name"], i["kind"], i["apiVersion"]) for i in items] == [
        ("a", "ConfigMap", "v1"),
        ("b", "ConfigMap", "v1"),
    ]
    assert [dict(r.query) for r in seen] == [
        {"labelSelector": "x=y", "limit": "1"},
        {"labelSelector": "x=y", "limit": "1", "continue": "p2"},
    ]


# ---------------------------------------------------------------- transport


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_a_transport_error_without_token() -> None:
    cfg = ClusterConfig(server=f"http://127.0.0.1:{free_port()}", token=TOKEN, name="gone")
    async with KubeClient(cfg) as client:
        with pytest.raises(TransportError) as info:
            await client.get(CM, namespace="a", name="x")
        with pytest.raises(TransportError):
            await collect(client.watch(CM, resource_version=None))
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert TOKEN not in repr(client)


async def test_request_timeout_is_a_transport_error() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({})

    async with scripted(handler) as (client, _):
        slow = KubeClient(client.config, request_timeout=0.2)
        try:
            with pytest.raises(TransportError, match="timed out"):
                await slow.get(CM, namespace="a", name="x")
        finally:
            release.set()
            await slow.close()


async def test_closed_client_refuses_requests() -> None:
    client = KubeClient(ClusterConfig(server="http://127.0.0.1:1"))
    await client.close()
    with pytest.raises(TransportError):
        await client.request("GET", "/api")


# ---------------------------------------------------------------- discovery caching


async def test_discovery_is_cached_until_invalidated() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/api":
            return web.json_response({"versions": ["v1"]})
        if request.path == "/apis":
            return web.json_response(
                {
                    "groups": [
                        {
                            "name": "apps",
                            "versions": [
                                {"groupVersion": "apps/v1beta2", "version": "v1beta2"},
                                {"groupVersion": "apps/v1", "version": "v1"},
                            ],
                            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
                        }
                    ]
                }
            )
        if request.path == "/apis/apps/v1":
            return web.json_response(
                {
                    "resources": [
                        {
                            "name": "deployments",
                            "kind": "Deployment",
                            "namespaced": True,
                            "singularName": "deployment",
                            "shortNames": ["deploy"],
                            "verbs": ["get", "list", "watch", "patch"],
                        },
                        {
                            "name": "deployments/status",
                            "kind": "Deployment",
                            "namespaced": True,
                            "verbs": ["get", "patch"],
                        },
                        {
                            "name": "deployments/scale",
                            "kind": "Scale",
                            "namespaced": True,
                            "verbs": [],
                        },
                    ]
                }
            )
        return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)

    async with scripted(handler) as (client, seen):
        groups, _ = await asyncio.gather(client.server_groups(), client.server_groups())
        assert groups == {"": ["v1"], "apps": ["v1", "v1beta2"]}  # preferred first
        infos = await client.resources("apps", "v1")
        assert infos == [
            ResourceInfo(
                group="apps",
                version="v1",
                kind="Deployment",
                plural="deployments",
                namespaced=True,
                has_status=True,
                verbs=frozenset({"get", "list", "watch", "patch"}),
                singular="deployment",
                short_names=("deploy",),
            )
        ]
        assert await client.resources("nope.io", "v1") == []
        assert await client.resolve("apps", "v1", "Deployment") == infos[0]
        assert await client.resolve("apps", "v1", "Scale") is None
        n = len(seen)
        await client.server_groups()
        await client.resources("apps", "v1")
        assert len(seen) == n  # served from the cache
        client.invalidate_discovery()
        await client.resources("apps", "v1")
        assert len(seen) == n + 1


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("info", "kw", "path"),
    [
        (CM, {}, "/api/v1/configmaps"),
        (CM, {"namespace": "a"}, "/api/v1/namespaces/a/configmaps"),
        (CM, {"namespace": "a", "name": "x"}, "/api/v1/namespaces/a/configmaps/x"),
        (
            ResourceInfo("apps", "v1", "Deployment", "deployments", True),
            {"namespace": "a", "name": "d", "subresource": "status"},
            "/apis/apps/v1/namespaces/a/deployments/d/status",
        ),
        (
            ResourceInfo("", "v1", "Namespace", "namespaces", False),
            {"namespace": "ignored", "name": "n"},
            "/api/v1/namespaces/n",
        ),
        (
            ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
            {},
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ),
    ],
)
def test_resource_paths(info: ResourceInfo, kw: dict[str, str], path: str) -> None:
    assert info.path(**kw) == path


def test_subresource_needs_a_name() -> None:
    with pytest.raises(ValueError):
        CM.path(namespace="a", subresource="status")


def test_api_error_pickles_with_all_fields() -> None:
    import pickle

    err = ApiError(429, "TooManyRequests", "m", retry_after=1.5, causes=[{"a": "b"}])
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.status, clone.reason, clone.message, clone.retry_after, clone.causes) == (
        429,
        "TooManyRequests",
        "m",
        1.5,
        [{"a": "b"}],
    )


# ---------------------------------------------------------------- TLS from memory


async def test_tls_with_in_memory_ca_and_client_certificate(tmp_path: Any) -> None:
    import ssl

    pki = _pki()
    (tmp_path / "s.pem").write_bytes(pki["server_cert"] + pki["server_key"])
    (tmp_path / "ca.pem").write_bytes(pki["ca"])
    server_ctx = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.pem")
    )
    server_ctx.load_cert_chain(str(tmp_path / "s.pem"))
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the client must present its cert

    peers: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        peers.append(dict(x[0] for x in peer["subject"])["commonName"] if peer else "")
        return web.json_response({"versions": ["v1"]})

    app = web.Application()
    app.router.add_get("/api", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server = f"https://127.0.0.1:{port}"
    try:
        good = ClusterConfig(
            server=server,
            ca_data=pki["ca"],
            client_cert_data=pki["client_cert"],
            client_key_data=pki["client_key"],
        )
        async with KubeClient(good) as client:
            assert await client.request("GET", "/api") == {"versions": ["v1"]}
        assert peers == ["system:admin"]

        # Without the CA the server's certificate is not trusted.
        untrusted = ClusterConfig(
            server=server, client_cert_data=pki["client_cert"], client_key_data=pki["client_key"]
        )
        async with KubeClient(untrusted) as client:
            with pytest.raises(TransportError):
                await client.request("GET", "/api")

        # insecure-skip-tls-verify is honoured (the client cert is still presented).
        insecure = ClusterConfig(
            server=server,
            insecure_skip_tls_verify=True,
            client_cert_data=pki["client_cert"],
            client_key_data=pki["client_key"],
        )
        async with KubeClient(insecure) as client:
            assert await client.request("GET", "/api") == {"versions": ["v1"]}
    finally:
        await runner.cleanup()


def test_bad_client_key_is_a_quiet_transport_error() -> None:
    pki = _pki()
    cfg = ClusterConfig(
        server="https://127.0.0.1:1",
        ca_data=pki["ca"],
        client_cert_data=pki["client_cert"],
        client_key_data=b"not a key " + TOKEN.encode(),
    )
    with pytest.raises(TransportError) as info:
        KubeClient(cfg)
    assert TOKEN not in str(info.value)


async def test_not_served_is_cached_briefly_and_failures_not_at_all() -> None:
    served = {"now": False, "fail": False}

    async def handler(request: web.Request) -> web.StreamResponse:
        if served["fail"]:
            return web.Response(status=500, text="boom")
        if not served["now"]:
            return web.json_response(
                {"kind": "Status", "code": 404, "reason": "NotFound"}, status=404
            )
        return web.json_response(
            {
                "resources": [
                    {
                        "name": "widgets",
                        "kind": "Widget",
                        "namespaced": True,
                        "verbs": ["list", "watch"],
                    }
                ]
            }
        )

    now = [1000.0]
    async with scripted(handler) as (base, _):
        client = KubeClient(base.config, negative_ttl=10, discovery_ttl=300, clock=lambda: now[0])
        try:
            assert await client.resources("x.io", "v1") == []
            served["now"] = True
            now[0] += 5
            assert await client.resources("x.io", "v1") == []  # negative answer still cached
            now[0] += 6
            assert [r.kind for r in await client.resources("x.io", "v1")] == ["Widget"]
            served["fail"] = True
            now[0] += 200
            assert [r.kind for r in await client.resources("x.io", "v1")] == ["Widget"]  # cached
            now[0] += 200
            with pytest.raises(ApiError):
                await client.resources("x.io", "v1")  # expired: refetch fails, raised
            served["fail"] = False
            assert [r.kind for r in await client.resources("x.io", "v1")] == [
                "Widget"
            ]  # not cached
        finally:
            await client.close()


async def test_rotated_token_file_is_reread(tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old-token")

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer expired-token":
            return web.json_response(
                {"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401
            )
        return web.json_response({})

    now = [0.0]
    async with scripted(handler) as (base, seen):
        cfg = ClusterConfig(
            server=base.config.server, token="old-token", token_file=str(token_file)
        )
        async with KubeClient(cfg, clock=lambda: now[0]) as client:
            await client.request("GET", "/api")
            token_file.write_text("new-token\n")
            now[0] += 30
            await client.request("GET", "/api")  # within the refresh period: old token
            now[0] += 31
            await client.request("GET", "/api")  # re-read
            token_file.write_text("expired-token")
            now[0] += 61
            with pytest.raises(ApiError):
                await client.request("GET", "/api")
            token_file.write_text("fresh-token")
            await client.request("GET", "/api")  # a 401 makes the next request re-read at once
    assert [r.headers["Authorization"] for r in seen] == [
        "Bearer old-token",
        "Bearer old-token",
        "Bearer new-token",
        "Bearer expired-token",
        "Bearer fresh-token",
    ]


EXEC_PLUGIN = """
import datetime, json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text() or "0") + 1 if counter.exists() else 1
counter.write_text(str(n))
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
    "status": {"token": f"tok-{n}", "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
}))
"""


async def test_exec_plugin_token_is_renewed_after_401_and_before_expiry(tmp_path: Any) -> None:
    import dataclasses
    import sys
    import time

    import yaml

    from ray_syncer.kube.config import load_kubeconfig_text

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer tok-1":
            return web.json_response(
                {"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401
            )
        return web.json_response({})

    async with scripted(handler) as (base, seen):
        kubeconfig = {
            "clusters": [{"name": "c", "cluster": {"server": base.config.server}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
            "users": [
                {
                    "name": "u",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": sys.executable,
                            "args": ["-c", EXEC_PLUGIN, str(tmp_path / "n")],
                        }
                    },
                }
            ],
        }
        cfg = load_kubeconfig_text(yaml.safe_dump(kubeconfig), allow_exec=True)
        assert cfg.token == "tok-1" and cfg.token_expires_at and cfg.exec_config
        assert "tok-1" not in repr(cfg) and sys.executable not in repr(cfg)
        async with KubeClient(cfg) as client:
            with pytest.raises(ApiError):
                await client.request("GET", "/api")
            await asyncio.gather(*(client.request("GET", "/api") for _ in range(3)))  # one refresh
        soon = dataclasses.replace(cfg, token="tok-9", token_expires_at=time.time() + 10)
        async with KubeClient(soon) as client:
            await client.request("GET", "/api")  # expires within the margin: renewed first
    assert [r.headers["Authorization"] for r in seen] == ["Bearer tok-1"] + ["Bearer tok-2"] * 3 + [
        "Bearer tok-3"
    ]
