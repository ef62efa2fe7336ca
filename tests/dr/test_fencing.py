"""The split-brain decision (pure), its cache, and the reads behind it (fake client)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from typing import Any

import yaml

from ray_syncer.fencing import (
    ANN_EPOCH,
    ANN_REVERSE_OF,
    FenceCache,
    FenceDecision,
    Peer,
    check_fencing,
    decide,
    server_key,
)
from ray_syncer.kube.client import ApiError


def peer(key: str = "ns/back", *, active: bool = True, mode: str = "push", epoch: int = 0,
         reverse_of: str | None = None, target: str | None = None) -> Peer:
    return Peer(key=key, active=active, mode=mode, epoch=epoch, reverse_of=reverse_of,
                target_server=target)


def test_marked_reverse_with_newer_or_equal_epoch_fences() -> None:
    for theirs in (5, 9):
        d = decide(me="ns/app", my_epoch=5, source_server=None, peers=[peer(reverse_of="ns/app", epoch=theirs)])
        assert d.fenced and d.reason == "SplitBrain" and d.peer == "ns/back"
        assert "suspend" in d.message and "ray-syncer failover" in d.message


def test_newer_promotion_is_not_fenced_by_an_older_reverse() -> None:
    d = decide(me="ns/app", my_epoch=10, source_server=None, peers=[peer(reverse_of="ns/app", epoch=9)])
    assert not d.fenced and d.reason == "Clear"


def test_suspended_pull_and_unrelated_peers_do_not_fence() -> None:
    peers = [
        peer(reverse_of="ns/app", active=False),
        peer("ns/p", reverse_of="ns/app", mode="pull"),
        peer("ns/other", reverse_of="ns/someone-else", target="https://elsewhere:6443"),
    ]
    assert not decide(me="ns/app", my_epoch=0, source_server="https://a:6443", peers=peers).fenced


def test_unmarked_reverse_found_by_server_url() -> None:
    d = decide(me="ns/app", my_epoch=0, source_server="https://LOCALHOST:6443/",
               peers=[peer(target="https://127.0.0.1:6443")])
    assert d.fenced and "targets our source" in d.message
    assert server_key("https://h") == "https://h:443"


def test_pull_mode_skips_itself_on_its_own_cluster() -> None:
    me = peer("ns/app", target="https://a:6443")
    assert not decide(me="ns/app", my_epoch=0, source_server="https://a:6443", peers=[me],
                      exclude_self=True).fenced
    assert decide(me="ns/app", my_epoch=0, source_server="https://a:6443", peers=[me]).fenced


def test_cache_ttl_and_invalidate_keep_the_last_answer() -> None:
    now = [100.0]
    cache = FenceCache(ttl_s=10, clock=lambda: now[0])
    fenced = FenceDecision(True, "SplitBrain", "x")
    cache.put("k", fenced)
    now[0] = 109.0
    assert cache.get("k") is fenced
    now[0] = 110.0
    assert cache.get("k") is None and cache.last("k") is fenced
    cache.put("k", fenced)
    cache.invalidate("k")
    assert cache.get("k") is None and cache.last("k") is fenced


class FakeDest:
    """KRMSyncers and Secrets on a destination, with an optional error for the list."""

    def __init__(self, items: list[dict[str, Any]], secrets: dict[str, dict[str, Any]] | None = None,
                 list_error: ApiError | None = None) -> None:
        self.items = items
        self.secrets = secrets or {}
        self.list_error = list_error
        self.secret_reads = 0

    async def list_all(self, res: Any, *, namespace: str | None = None) -> tuple[list[dict[str, Any]], str]:
        if self.list_error is not None:
            raise self.list_error
        return [i for i in self.items if i["metadata"]["namespace"] == namespace], "1"

    async def get(self, res: Any, *, namespace: str | None, name: str) -> dict[str, Any]:
        self.secret_reads += 1
        if name not in self.secrets:
            raise ApiError(403, "Forbidden")
        return self.secrets[name]


def syncer(name: str, *, secret: str = "k", suspend: bool = False, ann: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "annotations": ann or {}},
        "spec": {"suspend": suspend, "destination": {"clusterConfig": {"kubeConfigSecretRef": {"name": secret}}}},
    }


def kubeconfig_secret(server: str) -> dict[str, Any]:
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "never-shown"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    })
    return {"data": {"kubeconfig": base64.b64encode(text.encode()).decode()}}


async def test_check_reads_markers_and_secret_urls() -> None:
    dest = FakeDest([syncer("back", ann={ANN_REVERSE_OF: "ns/app", ANN_EPOCH: "7"})])
    d = await check_fencing(dest, namespace="ns", me="ns/app", my_epoch=3, source_server=None)
    assert d.fenced and "epoch 7 >= ours 3" in d.message
    assert dest.secret_reads == 0  # the marker is enough

    dest = FakeDest([syncer("back", secret="to-a")], {"to-a": kubeconfig_secret("https://a.example:6443")})
    d = await check_fencing(dest, namespace="ns", me="ns/app", my_epoch=0, source_server="https://a.example:6443")
    assert d.fenced and "never-shown" not in d.message
    d = await check_fencing(dest, namespace="ns", me="ns/app", my_epoch=0, source_server="https://b.example:6443")
    assert not d.fenced


async def test_check_without_crd_is_clear_and_forbidden_is_unchecked() -> None:
    d = await check_fencing(FakeDest([], list_error=ApiError(404, "NotFound")), namespace="ns",
                            me="ns/app", my_epoch=0, source_server=None)
    assert d.reason == "Clear"
    d = await check_fencing(FakeDest([], list_error=ApiError(403, "Forbidden")), namespace="ns",
                            me="ns/app", my_epoch=0, source_server=None)
    assert not d.fenced and d.reason == "Unchecked" and "krmsyncers" in d.message


def test_url_match_needs_overlapping_rules() -> None:
    from ray_syncer.fencing import rule_keys

    mine = rule_keys({"rules": [{"group": "", "kind": "ConfigMap", "namespaces": ["shop"]}]})
    same_ns = rule_keys({"rules": [{"group": "", "kind": "ConfigMap", "namespaces": ["shop", "x"]}]}, as_writer=True)
    other_ns = rule_keys({"rules": [{"group": "", "kind": "ConfigMap", "namespaces": ["billing"]}]}, as_writer=True)
    mapped_in = rule_keys({"destination": {"namespace": "shop"},
                           "rules": [{"group": "", "kind": "ConfigMap", "namespaces": ["b"]}]}, as_writer=True)
    glob = rule_keys({"rules": [{"group": "*", "kind": "*", "version": "*"}]}, as_writer=True)
    other_kind = rule_keys({"rules": [{"group": "", "kind": "Secret"}]}, as_writer=True)
    url = "https://a:6443"

    def fenced(writes: tuple[tuple[str, str, frozenset[str] | None], ...]) -> bool:
        p = Peer(key="ns/back", active=True, mode="push", epoch=0, reverse_of=None,
                 target_server=url, writes=writes)
        return decide(me="ns/app", my_epoch=0, source_server=url, peers=[p], my_rules=mine).fenced

    assert fenced(same_ns) and fenced(mapped_in) and fenced(glob)
    assert not fenced(other_ns) and not fenced(other_kind)
    # A failover marker is explicit: it fences whatever the rules say.
    p = Peer(key="ns/back", active=True, mode="push", epoch=0, reverse_of="ns/app", writes=other_ns)
    assert decide(me="ns/app", my_epoch=0, source_server=None, peers=[p], my_rules=mine).fenced


def test_identity_token_is_deterministic_and_an_epoch_change_restarts_shards() -> None:
    from ray_syncer.engine.spec import ShardSpec
    from ray_syncer.fencing import FenceIdentity
    from ray_syncer.operator.planner import revision

    def ident(namespaces: list[str], epoch: int = 0) -> FenceIdentity:
        return FenceIdentity(syncer="ns/app", epoch=epoch, push=True, source_server="https://a",
                             dest_name="b", rules=(("", "ConfigMap", frozenset(namespaces)),))

    names = [f"n{i}" for i in range(20)]
    # frozenset iteration order depends on the process's hash seed; the token must not
    # (an operator restart would otherwise restart every shard).
    code = ("from ray_syncer.fencing import FenceIdentity as F; print(F('ns/app', 0, True, "
            "'https://a', 'b', (('', 'ConfigMap', frozenset(f'n{i}' for i in range(20))),)).token())")
    tokens = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert tokens == {ident(names).token()}
    spec = ShardSpec("ns", "app", "", "v1", "ConfigMap")
    r = revision(spec, credentials="k", fence=ident(names).token())
    assert r == revision(spec, credentials="k", fence=ident(names).token())
    assert r != revision(spec, credentials="k", fence=ident(names, epoch=5).token())
