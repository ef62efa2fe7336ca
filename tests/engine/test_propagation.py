"""Create/update/delete propagation (ConfigMap, Secret, a custom resource with status)."""

from __future__ import annotations

import base64

from ray_syncer.engine.transform import ANN_CONTENT_HASH, MANAGED_BY_LABEL

from .conftest import CM, SECRET, WIDGET, Env, eventually, running, spec_for, synced


async def test_configmap_create_update_delete(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "pre", {"a": "1"})
    async with running(env, spec_for("ConfigMap")) as shard:
        await synced(shard)
        dst = await env.items(env.dc, CM, "prod")
        assert dst["prod/pre"]["data"] == {"a": "1"}
        assert dst["prod/pre"]["metadata"]["labels"][MANAGED_BY_LABEL] == "ops.dr"
        assert ANN_CONTENT_HASH in dst["prod/pre"]["metadata"]["annotations"]

        await env.cm("prod", "new", {"x": "1"})
        await eventually(lambda: _data(env, "prod/new", {"x": "1"}))
        await env.cm("prod", "new", {"x": "2"})
        await eventually(lambda: _data(env, "prod/new", {"x": "2"}))
        await env.delete(env.sc, CM, "prod", "new")
        await eventually(lambda: _absent(env, "prod/new"))
        assert "prod/pre" in await env.items(env.dc, CM, "prod")


async def test_removing_a_key_in_the_source_removes_it_in_the_destination(env: Env) -> None:
    await env.ns("prod")
    await env.cm("prod", "c", {"keep": "1", "drop": "2"})
    async with running(env, spec_for("ConfigMap")) as shard:
        await synced(shard)
        assert (await env.items(env.dc, CM, "prod"))["prod/c"]["data"] == {"keep": "1", "drop": "2"}
        await env.cm("prod", "c", {"keep": "1"})
        await eventually(lambda: _data(env, "prod/c", {"keep": "1"}))


async def test_secret_propagates(env: Env) -> None:
    await env.ns("prod")
    payload = base64.b64encode(b"hunter2").decode()
    await env.put(env.sc, SECRET, {"metadata": {"name": "s", "namespace": "prod"},
                                    "type": "Opaque", "data": {"password": payload}})
    async with running(env, spec_for("Secret")) as shard:
        await synced(shard)
        got = (await env.items(env.dc, SECRET, "prod"))["prod/s"]
        assert got["data"] == {"password": payload}
        assert "hunter2" not in repr(shard.health()) and payload not in repr(shard.health())


async def test_custom_resource_with_status_is_synced_through_status_subresource(env: Env) -> None:
    await env.crd()
    await env.ns("prod")
    await env.put(env.sc, WIDGET, {"metadata": {"name": "w", "namespace": "prod"},
                                   "spec": {"size": 3}})
    await env.sc.apply(WIDGET, {"apiVersion": "example.com/v1", "kind": "Widget",
                                "metadata": {"name": "w", "namespace": "prod"},
                                "status": {"phase": "Ready"}},
                       field_manager="ctl", subresource="status")
    async with running(env, spec_for("Widget", sync_status=True)) as shard:
        await synced(shard)
        got = (await env.items(env.dc, WIDGET, "prod"))["prod/w"]
        assert got["spec"] == {"size": 3}
        assert got["status"] == {"phase": "Ready"}
        status_writes = [r for r in env.dst.request_log
                         if r.method == "PATCH" and r.path.endswith("/widgets/w/status")]
        assert status_writes and status_writes[0].query.get("fieldManager") == "krm-syncer"
        # A status-only change on the source reaches the destination.
        await env.sc.apply(WIDGET, {"apiVersion": "example.com/v1", "kind": "Widget",
                                    "metadata": {"name": "w", "namespace": "prod"},
                                    "status": {"phase": "Degraded"}},
                           field_manager="ctl", subresource="status")
        await eventually(lambda: _field(env, WIDGET, "prod/w", "status", {"phase": "Degraded"}))


async def test_failed_status_write_is_retried_even_across_a_restart(env: Env) -> None:
    await env.crd()
    await env.ns("prod")
    await env.put(env.sc, WIDGET, {"metadata": {"name": "w", "namespace": "prod"},
                                   "spec": {"size": 3}})
    await env.sc.apply(WIDGET, {"apiVersion": "example.com/v1", "kind": "Widget",
                                "metadata": {"name": "w", "namespace": "prod"},
                                "status": {"phase": "Ready"}},
                       field_manager="ctl", subresource="status")
    env.dst.faults.error_rate, env.dst.faults.error_codes = 1.0, [500]
    env.dst.faults.match = lambda method, path: path.endswith("/status")
    async with running(env, spec_for("Widget", sync_status=True)) as shard:
        await eventually(lambda: shard.health().errors == 1)
        got = (await env.items(env.dc, WIDGET, "prod"))["prod/w"]
        assert got["spec"] == {"size": 3} and "status" not in got
    env.dst.faults.reset()
    async with running(env, spec_for("Widget", sync_status=True)) as shard:
        await synced(shard)
        got = (await env.items(env.dc, WIDGET, "prod"))["prod/w"]
        assert got["status"] == {"phase": "Ready"}


async def test_status_is_not_synced_without_sync_status(env: Env) -> None:
    await env.crd()
    await env.ns("prod")
    await env.put(env.sc, WIDGET, {"metadata": {"name": "w", "namespace": "prod"},
                                   "spec": {"size": 3}})
    await env.sc.apply(WIDGET, {"apiVersion": "example.com/v1", "kind": "Widget",
                                "metadata": {"name": "w", "namespace": "prod"},
                                "status": {"phase": "Ready"}},
                       field_manager="ctl", subresource="status")
    async with running(env, spec_for("Widget")) as shard:
        await synced(shard)
        got = (await env.items(env.dc, WIDGET, "prod"))["prod/w"]
        assert got["spec"] == {"size": 3} and "status" not in got
        assert not [r for r in env.dst.request_log if r.path.endswith("/status")]


async def _data(env: Env, key: str, data: dict[str, str]) -> bool:
    return await _field(env, CM, key, "data", data)


async def _field(env: Env, res, key: str, field: str, value) -> bool:  # type: ignore[no-untyped-def]
    got = (await env.items(env.dc, res)).get(key)
    return got is not None and got.get(field) == value


async def _absent(env: Env, key: str) -> bool:
    return key not in await env.items(env.dc, CM)
