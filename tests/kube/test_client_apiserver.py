"""KubeClient and discovery against the in-memory API server (real HTTP, real semantics)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from ray_syncer_testkit import ApiServer

from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo, TransportError
from ray_syncer.kube.config import load_kubeconfig_text
from ray_syncer.kube.discovery import expand_rule

CM = ResourceInfo("", "v1", "ConfigMap", "configmaps", True, verbs=frozenset({"list", "watch"}))
NS = ResourceInfo("", "v1", "Namespace", "namespaces", False)


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    async with await ApiServer.start(name="kube-tests") as srv:
        yield srv


@pytest.fixture
async def client(server: ApiServer) -> AsyncIterator[KubeClient]:
    async with KubeClient(load_kubeconfig_text(server.kubeconfig()), idle_timeout=5) as c:
        await c.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
        yield c


def cm(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "a"},
        "data": dict(data),
    }


async def test_crud_round_trip(client: KubeClient) -> None:
    created = await client.create(CM, cm("x", k="1"))
    assert created["metadata"]["uid"] and created["data"] == {"k": "1"}
    got = await client.get(CM, namespace="a", name="x")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    got["data"] = {"k": "2"}
    replaced = await client.replace(CM, got)
    assert replaced["data"] == {"k": "2"}
    patched = await client.patch(CM, namespace="a", name="x", body={"data": {"j": "3"}})
    assert patched["data"] == {"k": "2", "j": "3"}
    with pytest.raises(ApiError) as info:
        await client.create(CM, cm("x"))
    assert info.value.conflict and info.value.reason == "AlreadyExists"
    await client.delete(CM, namespace="a", name="x")
    with pytest.raises(ApiError) as info:
        await client.get(CM, namespace="a", name="x")
    assert info.value.not_found and info.value.reason == "NotFound"
    with pytest.raises(ApiError) as info:
        await client.delete(CM, namespace="a", name="x")
    assert info.value.not_found


async def test_list_all_paginates(client: KubeClient, server: ApiServer) -> None:
    for i in range(7):
        obj = cm(f"p{i}", i=str(i))
        obj["metadata"]["labels"] = {"set": "p"}
        await client.create(CM, obj)
    server.clear_log()
    items, rv = await client.list_all(CM, namespace="a", label_selector="set=p", page_size=3)
    assert sorted(i["metadata"]["name"] for i in items) == [f"p{i}" for i in range(7)]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)
    assert rv
    lists = [r for r in server.request_log if r.method == "GET" and r.path.endswith("/configmaps")]
    assert len(lists) == 3
    assert all(r.query.get("limit") == "3" for r in lists)


async def test_label_selector_filters_lists(client: KubeClient) -> None:
    a, b = cm("la"), cm("lb")
    a["metadata"]["labels"] = {"team": "x"}
    await client.create(CM, a)
    await client.create(CM, b)
    items, _ = await client.list_all(CM, namespace="a", label_selector="team=x")
    assert [i["metadata"]["name"] for i in items] == ["la"]


async def test_watch_sees_changes_from_the_list_version(client: KubeClient) -> None:
    _, rv = await client.list_all(CM, namespace="a")

    async def writer() -> None:
        await client.create(CM, cm("w", k="1"))
        await client.patch(CM, namespace="a", name="w", body={"data": {"k": "2"}})
        await client.delete(CM, namespace="a", name="w")

    seen: list[tuple[str, str]] = []
    task = asyncio.create_task(writer())
    async with contextlib.aclosing(
        client.watch(CM, namespace="a", resource_version=rv, timeout_seconds=10)
    ) as events:
        async for ev in events:
            if ev["type"] == "BOOKMARK":
                continue
            seen.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                break
    await task
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_watch_from_a_compacted_version_is_gone(
    client: KubeClient, server: ApiServer
) -> None:
    _, rv = await client.list_all(CM, namespace="a")
    for i in range(3):
        await client.create(CM, cm(f"c{i}"))
    server.faults.compact()
    with pytest.raises(ApiError) as info:
        async with contextlib.aclosing(
            client.watch(CM, namespace="a", resource_version=rv, timeout_seconds=10)
        ) as events:
            async for _ in events:
                pass
    assert info.value.gone and info.value.status == 410


async def test_dropped_watch_ends_the_iterator(client: KubeClient, server: ApiServer) -> None:
    _, rv = await client.list_all(CM, namespace="a")

    async def drop_soon() -> None:
        await asyncio.sleep(0.2)
        server.faults.drop_watches()

    task = asyncio.create_task(drop_soon())

    async def consume() -> list[dict[str, Any]]:
        return [
            e
            async for e in client.watch(CM, namespace="a", resource_version=rv, timeout_seconds=30)
        ]

    events = await asyncio.wait_for(consume(), timeout=5)  # ends at the drop, not at 30 s
    await task
    assert all(e["type"] == "BOOKMARK" for e in events)


async def test_apply_creates_updates_and_removes_fields(client: KubeClient) -> None:
    first = await client.apply(CM, cm("s", a="1", b="2"))
    assert first["data"] == {"a": "1", "b": "2"}
    again = await client.apply(CM, cm("s", a="1", b="2"))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # no-op
    removed = await client.apply(CM, cm("s", a="1"))
    assert removed["data"] == {"a": "1"}
    managers = {m["manager"] for m in removed["metadata"].get("managedFields", [])}
    assert "krm-syncer" in managers


async def test_delete_with_wrong_uid_is_a_conflict(client: KubeClient) -> None:
    created = await client.create(CM, cm("d"))
    with pytest.raises(ApiError) as info:
        await client.delete(CM, namespace="a", name="d", uid="not-the-uid")
    assert info.value.conflict and info.value.status == 409
    await client.get(CM, namespace="a", name="d")  # still there
    await client.delete(CM, namespace="a", name="d", uid=created["metadata"]["uid"])
    with pytest.raises(ApiError):
        await client.get(CM, namespace="a", name="d")


async def test_invalid_object_carries_causes(client: KubeClient) -> None:
    bad = cm("Not_A_Valid_Name")
    with pytest.raises(ApiError) as info:
        await client.create(CM, bad)
    assert info.value.invalid and info.value.status == 422
    assert info.value.causes


async def test_throttling_carries_retry_after(client: KubeClient, server: ApiServer) -> None:
    server.faults.error_codes = [429]
    server.faults.retry_after = 3
    server.faults.error_rate = 1.0
    try:
        with pytest.raises(ApiError) as info:
            await client.get(CM, namespace="a", name="nope")
    finally:
        server.faults.error_rate = 0.0
    err = info.value
    assert (err.status, err.reason, err.retry_after, err.retryable) == (
        429,
        "TooManyRequests",
        3.0,
        True,
    )


async def test_forbidden_and_unauthorized(server: ApiServer) -> None:
    server.add_user(
        "reader-token-123", user="reader", allow=lambda verb, *_: verb in ("get", "list")
    )
    async with KubeClient(load_kubeconfig_text(server.kubeconfig(token="reader-token-123"))) as c:
        await c.list_page(CM, namespace="default")
        with pytest.raises(ApiError) as info:
            await c.create(CM, cm("f"))
        assert info.value.forbidden
    async with KubeClient(load_kubeconfig_text(server.kubeconfig(token="wrong-token"))) as c:
        with pytest.raises(ApiError) as info:
            await c.list_page(CM)
        assert info.value.unauthorized
        assert "wrong-token" not in str(info.value)


async def test_outage_is_a_transport_error(client: KubeClient, server: ApiServer) -> None:
    server.faults.outage(True)
    try:
        with pytest.raises(TransportError):
            await client.get(CM, namespace="a", name="x")
    finally:
        server.faults.outage(False)
    await client.list_page(CM, namespace="a")  # recovers without a new client


async def test_tls_with_the_servers_generated_ca() -> None:
    async with await ApiServer.start(name="tls", tls=True) as srv:
        cfg = load_kubeconfig_text(srv.kubeconfig())
        assert cfg.server.startswith("https://") and cfg.ca_data
        async with KubeClient(cfg) as c:
            assert "" in await c.server_groups()
        doc = yaml.safe_load(srv.kubeconfig())
        for cluster in doc["clusters"]:
            cluster["cluster"].pop("certificate-authority-data", None)
        async with KubeClient(load_kubeconfig_text(yaml.safe_dump(doc))) as c:
            with pytest.raises(TransportError):
                await c.server_groups()


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.shop.example.com"},
    "spec": {
        "group": "shop.example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
        },
        "versions": [
            {
                "name": version,
                "served": True,
                "storage": version == "v1",
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
                "subresources": {"status": {}},
            }
            for version in ("v1", "v1beta1")
        ],
    },
}


async def test_glob_expansion_sees_an_installed_crd(client: KubeClient) -> None:
    assert await expand_rule(client, group="*.example.com", version="*", kind="*") == []
    crd = ResourceInfo(
        "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False
    )
    await client.create(crd, WIDGET_CRD)
    infos: list[ResourceInfo] = []
    for _ in range(50):  # CRDs become served shortly after creation, as on a real cluster
        client.invalidate_discovery()
        infos = await expand_rule(client, group="*.example.com", version="*", kind="*")
        if infos:
            break
        await asyncio.sleep(0.1)
    assert [(i.group, i.version, i.kind, i.plural, i.namespaced, i.has_status) for i in infos] == [
        ("shop.example.com", "v1", "Widget", "widgets", True, True)
    ]
    widget = {
        "apiVersion": "shop.example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "a"},
        "spec": {"size": 3},
    }
    applied = await client.apply(infos[0], widget)
    assert applied["spec"] == {"size": 3}
    everything = await expand_rule(client, group="*", version="*", kind="*")
    kinds = {(i.group, i.kind) for i in everything}
    assert ("", "ConfigMap") in kinds and ("shop.example.com", "Widget") in kinds
    assert ("", "Event") not in kinds and ("events.k8s.io", "Event") not in kinds


async def test_open_watches_do_not_starve_requests(server: ApiServer) -> None:
    # One pooled connection for requests; watches must not take it.
    async with KubeClient(load_kubeconfig_text(server.kubeconfig()), max_connections=1) as c:
        _, rv = await c.list_all(CM)
        streams = [c.watch(CM, resource_version=rv, timeout_seconds=30) for _ in range(3)]
        readers = [asyncio.create_task(anext(s, None)) for s in streams]
        await asyncio.sleep(0.2)  # the watches are open and waiting
        await asyncio.wait_for(
            c.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "z"}}), 5
        )
        await asyncio.wait_for(c.list_page(CM), 5)
        for r in readers:
            r.cancel()
        for s in streams:
            with contextlib.suppress(BaseException):
                await s.aclose()
