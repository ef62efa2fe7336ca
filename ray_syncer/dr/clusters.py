"""The two sides of a KRMSyncer, as seen from a person's kubeconfig.

Why it exists: ``status``, ``diff`` and ``failover`` all start the same way:
load the user's kubeconfig (``--kubeconfig``/``--context``), read a KRMSyncer
from the cluster it lives in (its *home*), then find the other cluster (its
*peer*) through the kubeconfig Secret the syncer references (read from the home
cluster), or take it from ``--peer-kubeconfig``/``--peer-context``
(``clikit.flags`` declares them). Push mode syncs home -> remote, pull mode
remote -> home. Secret contents stay in memory as a ``ClusterConfig``; nothing
here prints them.
"""

from __future__ import annotations

import argparse
import base64
import binascii
from dataclasses import dataclass
from typing import Any

from ray_syncer.clikit.flags import add_kubeconfig_flags, add_namespace_flags
from ray_syncer.fencing import KRMSYNCER_RES
from ray_syncer.kube.client import ApiError, KubeClient, ResourceInfo
from ray_syncer.kube.config import (
    ClusterConfig,
    KubeconfigError,
    load_default,
    load_kubeconfig_file,
    load_kubeconfig_text,
)

SECRET_RES = ResourceInfo("", "v1", "Secret", "secrets", True, verbs=frozenset({"get"}))
EVENT_PATH = "/api/v1/namespaces/{ns}/events"


class DrError(Exception):
    """A problem the user must fix (exit code 2); the message never holds secrets."""


def add_cluster_args(
    parser: argparse.ArgumentParser, *, what: str = "the cluster the KRMSyncer lives in",
    all_namespaces: bool = False,
) -> None:
    add_kubeconfig_flags(parser, what=what)
    add_namespace_flags(parser, all_namespaces=all_namespaces)


def load_peer(args: argparse.Namespace) -> ClusterConfig | None:
    """``--peer-kubeconfig`` (with ``--peer-context``), or None: the KRMSyncer's Secret decides."""
    if not args.peer_kubeconfig:
        if args.peer_context:
            raise DrError("--peer-context needs --peer-kubeconfig")
        return None
    return load_file(args.peer_kubeconfig, args.peer_context)


def load_user(kubeconfig: str | None, context: str | None) -> ClusterConfig:
    try:
        return load_default(kubeconfig=kubeconfig, context=context)
    except KubeconfigError as exc:
        raise DrError(f"cannot load kubeconfig: {exc.message}") from None


def load_file(path: str, context: str | None = None) -> ClusterConfig:
    """A kubeconfig file given explicitly by the user (trusted: it is theirs)."""
    try:
        return load_kubeconfig_file(path, context=context)
    except KubeconfigError as exc:
        raise DrError(f"cannot load kubeconfig {path}: {exc.message}") from None


def label(config: ClusterConfig) -> str:
    return config.name or config.server


async def read_syncer(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    try:
        return await client.get(KRMSYNCER_RES, namespace=namespace, name=name)
    except ApiError as exc:
        if exc.not_found:
            raise DrError(f"KRMSyncer {namespace}/{name} not found on {label_of(client)}") from None
        raise DrError(f"cannot read KRMSyncer {namespace}/{name}: {exc.status} {exc.reason}") from None


def label_of(client: Any) -> str:
    cfg = getattr(client, "config", None) or getattr(client, "_config", None)
    return label(cfg) if isinstance(cfg, ClusterConfig) else "the cluster"


def secret_ref(syncer: dict[str, Any]) -> tuple[str, str]:
    spec = syncer.get("spec") or {}
    target = spec.get("destination") or spec.get("remote") or {}
    ref = (target.get("clusterConfig") or {}).get("kubeConfigSecretRef") or {}
    return str(ref.get("name") or ""), str(ref.get("key") or "kubeconfig")


async def remote_config(
    home: KubeClient, syncer: dict[str, Any], *, allow_exec: bool = False
) -> ClusterConfig:
    """The other cluster, from the Secret the KRMSyncer references (read from its home)."""
    ns = (syncer.get("metadata") or {}).get("namespace") or "default"
    name, key = secret_ref(syncer)
    where = f"Secret {ns}/{name}"
    if not name:
        raise DrError("the KRMSyncer names no kubeconfig Secret")
    try:
        secret = await home.get(SECRET_RES, namespace=ns, name=name)
    except ApiError as exc:
        raise DrError(f"cannot read {where}: {exc.status} {exc.reason}") from None
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        raise DrError(f"{where} has no key {key!r}")
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise DrError(f"{where} key {key!r} is not base64 UTF-8 text") from None
    try:
        return load_kubeconfig_text(text, allow_exec=allow_exec, allow_files=allow_exec)
    except KubeconfigError as exc:
        raise DrError(f"{where} key {key!r}: {exc.message}") from None


def mode_of(syncer: dict[str, Any]) -> str:
    return str((syncer.get("spec") or {}).get("mode") or "push")


@dataclass
class Sides:
    """Source and destination of one KRMSyncer (configs; clients are opened by the caller)."""

    source: ClusterConfig
    dest: ClusterConfig

    @property
    def source_name(self) -> str:
        return label(self.source)

    @property
    def dest_name(self) -> str:
        return label(self.dest)


async def resolve_sides(
    home_config: ClusterConfig,
    home: KubeClient,
    syncer: dict[str, Any],
    *,
    peer: ClusterConfig | None = None,
    source_override: ClusterConfig | None = None,
    dest_override: ClusterConfig | None = None,
    allow_exec: bool = False,
) -> Sides:
    """``peer`` replaces the Secret's cluster; the overrides (the deprecated ``diff
    --source-*``/``--dest-*``) replace one role whichever cluster holds it."""
    push = mode_of(syncer) == "push"
    remote: ClusterConfig | None = peer
    if remote is None and ((push and dest_override is None) or (not push and source_override is None)):
        remote = await remote_config(home, syncer, allow_exec=allow_exec)
    src: ClusterConfig | None = home_config if push else remote
    dst: ClusterConfig | None = remote if push else home_config
    src = source_override or src
    dst = dest_override or dst
    assert src is not None and dst is not None
    return Sides(source=src, dest=dst)
