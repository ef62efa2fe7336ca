"""Broken Secrets and kubeconfigs, and destinations that refuse us: precise reasons, no writes.

Each case names the Secret and key in its message, never its content (the
security suite checks that separately), and the shards stay stopped: a
destination we cannot trust or reach gets no writes.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from ray_syncer_testkit import start_in_thread

from ray_syncer.kube.client import KubeClient

from .world import (
    CM,
    World,
    canary_alive,
    cm_rule,
    dest_ref,
    dest_writes,
    ensure_ns,
    get_or_none,
    put_cm,
    put_secret,
    put_syncer,
    syncer_obj,
    unique,
    wait_condition,
    wait_for,
    wait_warning,
)


def _kubeconfig(world: World, edit: Callable[[dict[str, Any]], None]) -> str:
    base = copy.deepcopy(world.dst.kubeconfig_dict(token=world.dest_token))
    edit(base)
    return str(yaml.safe_dump(base))


def _no_context(d: dict[str, Any]) -> None:
    d.pop("current-context")


def _exec(d: dict[str, Any]) -> None:
    d["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "cat",
            "args": ["/etc/passwd"],
        }
    }


def _auth_provider(d: dict[str, Any]) -> None:
    d["users"][0]["user"] = {"auth-provider": {"name": "gcp"}}


def _file_ca(d: dict[str, Any]) -> None:
    d["clusters"][0]["cluster"]["certificate-authority"] = "/etc/ssl/certs/ca.pem"


def _no_server(d: dict[str, Any]) -> None:
    d["clusters"][0]["cluster"].pop("server")


WHERE = "Secret {ns}/dest key 'kubeconfig': "
KUBECONFIG_CASES: list[tuple[str, Callable[[dict[str, Any]], None] | str, str, str]] = [
    (
        "non-yaml",
        "this: is: not: [yaml",
        "KubeconfigInvalid",
        WHERE + "kubeconfig is not valid YAML at line 1, column 9",
    ),
    ("yaml-list", "- a\n- b\n", "KubeconfigInvalid", WHERE + "kubeconfig is not a YAML mapping"),
    (
        "no-current-context",
        _no_context,
        "KubeconfigNoContext",
        WHERE + "kubeconfig has no current-context and no context was given",
    ),
    (
        "exec-plugin",
        _exec,
        "ExecPluginRefused",
        WHERE + "context 'destination' uses an exec credential plugin; the operator refuses "
        "plugins from Secret kubeconfigs unless started with --allow-kubeconfig-exec",
    ),
    (
        "auth-provider",
        _auth_provider,
        "AuthProviderRefused",
        WHERE + "context 'destination' uses an auth-provider plugin; use a token or client "
        "certificate, or start the operator with --allow-kubeconfig-exec",
    ),
    (
        "file-certificate",
        _file_ca,
        "FileReferenceRefused",
        WHERE + "context 'destination' references local files (cluster.certificate-authority); a "
        "kubeconfig in a Secret must embed its data (certificate-authority-data, "
        "client-certificate-data, client-key-data, token)",
    ),
    ("no-server", _no_server, "KubeconfigNoServer", WHERE + "cluster 'destination' has no server"),
    (
        "port-out-of-range",
        lambda d: d["clusters"][0]["cluster"].__setitem__("server", "http://127.0.0.1:99999"),
        "KubeconfigInvalid",
        WHERE + "cluster 'destination' server 'http://127.0.0.1:99999' is not a valid URL "
        "(Port out of range 0-65535)",
    ),
    (
        "broken-ipv6-server",
        lambda d: d["clusters"][0]["cluster"].__setitem__("server", "https://[::1:6443"),
        "KubeconfigInvalid",
        WHERE + "cluster 'destination' server 'https://[::1:6443' is not a valid URL (Invalid IPv6 URL)",
    ),
    (
        "credentials-in-server-url",
        lambda d: d["clusters"][0]["cluster"].__setitem__(
            "server", "http://admin:hunter2@127.0.0.1:6443"
        ),
        "KubeconfigInvalid",
        WHERE + "cluster 'destination' server URL embeds credentials (user:password@host); put "
        "them in the user entry (token or client certificate)",
    ),
]


async def _expect_refused(
    world: World,
    src: KubeClient,
    ns: str,
    reason: str,
    message: str,
    *,
    exact: bool = True,
    stopped: bool = True,
) -> None:
    ready = await wait_condition(src, ns, "bad", "Ready", "False", reason)
    if exact:
        assert ready["message"] == message
    else:
        assert ready["message"].startswith(message), ready["message"]
    event = await wait_warning(src, ns, "bad", reason)
    assert event["message"] == ready["message"]
    assert [w for w in dest_writes(world.dst, ns) if not w.endswith(("401", "403"))] == []
    if stopped:
        # A definite refusal stops the shards; an unreachable destination keeps them retrying.
        assert not [s for s in world.op.running_shards() if s.startswith(f"{ns}/")]
    await canary_alive(world)


async def _syncer(src: KubeClient, dst: KubeClient, ns: str, **spec: Any) -> None:
    for c in (src, dst):
        await ensure_ns(c, ns)
    await put_syncer(
        src, syncer_obj(ns, "bad", {"rules": [cm_rule(ns)], "destination": dest_ref(), **spec})
    )


@pytest.mark.parametrize(("content", "reason", "message"), [c[1:] for c in KUBECONFIG_CASES],
                         ids=[c[0] for c in KUBECONFIG_CASES])
async def test_bad_kubeconfig(
    world: World,
    src: KubeClient,
    dst: KubeClient,
    content: Callable[[dict[str, Any]], None] | str,
    reason: str,
    message: str,
) -> None:
    ns = unique("kc")
    text = content if isinstance(content, str) else _kubeconfig(world, content)
    await ensure_ns(src, ns)
    await put_secret(src, ns, "dest", {"kubeconfig": text})
    await _syncer(src, dst, ns)
    await _expect_refused(world, src, ns, reason, message.replace("{ns}", ns))


async def test_secret_missing_then_created_recovers(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    ns = unique("nosecret")
    await _syncer(src, dst, ns)
    await _expect_refused(world, src, ns, "SecretNotFound", f"Secret {ns}/dest not found")
    reach = await wait_condition(src, ns, "bad", "DestinationReachable", "False", "SecretNotFound")
    assert reach["message"] == f"Secret {ns}/dest not found"
    # The fix arrives: the syncer starts without being touched.
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig()})
    await wait_condition(src, ns, "bad", "Ready", "True", "Running")


async def test_secret_without_the_key(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = unique("nokey")
    await ensure_ns(src, ns)
    await put_secret(src, ns, "dest", {"config": world.dest_kubeconfig(), "other": "x"})
    await _syncer(src, dst, ns)
    await _expect_refused(
        world, src, ns, "SecretKeyMissing", f"Secret {ns}/dest has no key 'kubeconfig' (keys: config, other)"
    )


async def test_closed_port(world: World, src: KubeClient, dst: KubeClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ns = unique("closed")
    text = _kubeconfig(
        world, lambda d: d["clusters"][0]["cluster"].__setitem__("server", f"http://127.0.0.1:{port}")
    )
    await ensure_ns(src, ns)
    await put_secret(src, ns, "dest", {"kubeconfig": text})
    await _syncer(src, dst, ns)
    await _expect_refused(
        world, src, ns, "Unreachable", f"cannot reach http://127.0.0.1:{port}: ", exact=False,
        stopped=False,
    )


async def test_wrong_ca(world: World, src: KubeClient, dst: KubeClient) -> None:
    tls_a = start_in_thread(name="tls-a", tls=True)
    tls_b = start_in_thread(name="tls-b", tls=True)
    try:
        token = world.new_token("tls-token")
        tls_a.add_user(token, user="syncer")
        bad = tls_a.kubeconfig_dict(token=token)
        # B's CA cannot vouch for A's certificate.
        bad["clusters"][0]["cluster"]["certificate-authority-data"] = tls_b.kubeconfig_dict()[
            "clusters"
        ][0]["cluster"]["certificate-authority-data"]
        ns = unique("ca")
        await ensure_ns(src, ns)
        await put_secret(src, ns, "dest", {"kubeconfig": yaml.safe_dump(bad)})
        await _syncer(src, dst, ns)
        await _expect_refused(
            world, src, ns, "Unreachable", f"cannot reach {tls_a.url}: ", exact=False, stopped=False
        )
        st = await wait_condition(src, ns, "bad", "DestinationReachable", "False", "Unreachable")
        assert "certificate" in st["message"].lower(), st["message"]
        # Nothing was ever accepted by A: the TLS handshake failed before any request.
        assert [r for r in tls_a.request_log if r.user == "syncer"] == []
    finally:
        tls_a.stop()
        tls_b.stop()


async def test_invalid_token_401(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = unique("unauth")
    await ensure_ns(src, ns)
    expired = world.new_token("expired-token")  # never registered: the server answers 401
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig(token=expired)})
    await _syncer(src, dst, ns)
    await _expect_refused(
        world, src, ns, "Unauthorized", f"{world.dst.url} rejected the kubeconfig's credentials (401)",
        stopped=False,
    )


async def test_destination_is_the_source_cluster(world: World, src: KubeClient, dst: KubeClient) -> None:
    ns = unique("loop")
    await ensure_ns(src, ns)
    # Same server, another spelling ("localhost"): still the same cluster.
    text = world.src.kubeconfig().replace("127.0.0.1", "localhost")
    await put_secret(src, ns, "dest", {"kubeconfig": text})
    await _syncer(src, dst, ns)
    url = world.src.url.replace("127.0.0.1", "localhost")
    await _expect_refused(
        world,
        src,
        ns,
        "DestinationIsSource",
        f"the kubeconfig in Secret {ns}/dest points at this operator's own cluster ({url}); "
        "syncing a cluster into itself would loop",
    )
    # And it wrote nothing into its own cluster either.
    own = [
        r
        for r in world.src.request_log
        if r.method in ("POST", "PATCH", "PUT", "DELETE")
        and f"/namespaces/{ns}/configmaps" in r.path
    ]
    assert own == []


async def test_secret_broken_while_running_stops_without_deletes_then_resumes(
    world: World, src: KubeClient, dst: KubeClient
) -> None:
    ns = unique("rot")
    await ensure_ns(src, ns)
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig()})
    await _syncer(src, dst, ns)
    await put_cm(src, ns, "c1", {"v": "1"})
    await wait_for(lambda: get_or_none(dst, CM, ns, "c1"), what="c1 synced")
    # A bad rotation: the key now holds garbage. Definite answer: shards stop, data stays.
    await put_secret(src, ns, "dest", {"kubeconfig": "not: [a kubeconfig"})
    await wait_condition(src, ns, "bad", "Ready", "False", "KubeconfigInvalid")
    await wait_warning(src, ns, "bad", "KubeconfigInvalid")

    async def stopped() -> bool:
        return not [s for s in world.op.running_shards() if s.startswith(f"{ns}/")]

    await wait_for(stopped, what="shards stopped")
    await put_cm(src, ns, "c1", {"v": "2"})
    assert (await get_or_none(dst, CM, ns, "c1") or {}).get("data") == {"v": "1"}
    # Fixed: it resumes and catches up; nothing was ever deleted.
    await put_secret(src, ns, "dest", {"kubeconfig": world.dest_kubeconfig()})

    async def caught_up() -> bool:
        got = await get_or_none(dst, CM, ns, "c1")
        return bool(got and got.get("data") == {"v": "2"})

    await wait_for(caught_up, what="caught up after the fix")
    assert [w for w in dest_writes(world.dst, ns) if w.startswith("DELETE")] == []
    await canary_alive(world)
