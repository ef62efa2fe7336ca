"""The other cluster of each KRMSyncer: its kubeconfig, read from a Secret, and its reachability.

Why it exists: the Secret is the one place user credentials enter the operator,
so reading it safely is a concern of its own. :class:`Remotes` reads the
referenced Secret (cached until the Secret watch reports a change, or a minute),
loads the kubeconfig without exec plugins or file reads unless allowed
(``kube.config``), keeps one client per loaded kubeconfig (replaced when the
content changes) and probes the cluster every ``probe_ttl_s``. Each problem is a
``Problem`` a person can act on; ``transient`` ones (the Secret could not be
read right now) keep the syncer's shards running. Secret contents never leave
this module except as a ``ClusterConfig``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ray_syncer.api.models import KRMSyncer
from ray_syncer.kube.client import ApiError, ResourceInfo, TransportError
from ray_syncer.kube.config import ClusterConfig, KubeconfigError, load_kubeconfig_text
from ray_syncer.operator.status import Problem

log = logging.getLogger("ray_syncer.operator.reconciler")

SECRET_RES = ResourceInfo(
    "", "v1", "Secret", "secrets", True, verbs=frozenset({"get", "list", "watch"})
)
SECRET_CACHE_TTL_S = 60.0


@dataclass
class Remote:
    """A loaded kubeconfig from a Secret and what we learned about its cluster."""

    digest: str
    config: ClusterConfig
    client: Any
    probed_at: float = 0.0
    problem: Problem | None = None


def server_key(url: str) -> str:
    """A URL normalised enough to tell two spellings of one API server apart from two servers."""
    parts = urlsplit(url.strip().lower())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


def config_digest(text: str, context: str | None = None) -> str:
    return hashlib.sha256(f"{context or ''}\0{text}".encode()).hexdigest()[:16]


class Remotes:
    """Loaded remotes per syncer key, and the Secrets they came from (see the module docstring)."""

    def __init__(
        self, client: Any, *, client_factory: Callable[[ClusterConfig], Any], allow_exec: bool,
        probe_ttl_s: float,
    ) -> None:
        self.client = client
        self.client_factory = client_factory
        self.allow_exec = allow_exec
        self.probe_ttl_s = probe_ttl_s
        self.remotes: dict[str, Remote] = {}  # syncer key -> loaded remote
        # "ns/name" -> (fetched at, Secret); dropped on any watch event for that Secret.
        self._secrets: dict[str, tuple[float, dict[str, Any]]] = {}
        # Watch events seen so far: a read that a change overtook is used once, not cached.
        self._changes = 0

    def secret_changed(self, key: str | None = None) -> None:
        """Forget a cached Secret (``None``: all of them)."""
        self._changes += 1
        if key is None:
            self._secrets.clear()
        else:
            self._secrets.pop(key, None)

    async def drop(self, key: str) -> None:
        remote = self.remotes.pop(key, None)
        if remote is not None:
            with contextlib.suppress(Exception):
                await remote.client.close()

    async def close(self) -> None:
        for key in list(self.remotes):
            await self.drop(key)

    async def load(
        self, key: str, syncer: KRMSyncer, now: float
    ) -> tuple[Remote | None, Problem | None, bool]:
        """(remote, problem, transient). A transient problem keeps running shards."""
        ref = syncer.spec.secret_ref
        where = f"Secret {syncer.namespace}/{ref.name}"
        try:
            secret = await self._secret(syncer.namespace, ref.name, now)
        except ApiError as exc:
            if exc.not_found:
                return None, Problem("SecretNotFound", f"{where} not found"), False
            if exc.forbidden:
                return None, Problem("SecretForbidden", f"the operator may not read {where}"), False
            return (
                None,
                Problem("SecretUnavailable", f"cannot read {where}: {exc.status} {exc.reason}"),
                True,
            )
        except TransportError:
            return (
                None,
                Problem("SecretUnavailable", f"cannot read {where}: the API server did not answer"),
                True,
            )
        data = secret.get("data") or {}
        if ref.key not in data:
            keys = ", ".join(sorted(data)) or "none"
            return (
                None,
                Problem("SecretKeyMissing", f"{where} has no key {ref.key!r} (keys: {keys})"),
                False,
            )
        try:
            text = base64.b64decode(data[ref.key], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return (
                None,
                Problem("KubeconfigInvalid", f"{where} key {ref.key!r} is not base64 UTF-8 text"),
                False,
            )
        digest = config_digest(text)
        remote = self.remotes.get(key)
        if remote is None or remote.digest != digest:
            if remote is not None:
                with contextlib.suppress(Exception):
                    await remote.client.close()
                self.remotes.pop(key, None)
            allow = self.allow_exec
            try:
                config = load_kubeconfig_text(text, allow_exec=allow, allow_files=allow)
            except KubeconfigError as exc:
                return None, Problem(exc.reason, f"{where} key {ref.key!r}: {exc.message}"), False
            remote = Remote(digest=digest, config=config, client=self.client_factory(config))
            self.remotes[key] = remote
            if syncer.spec.mode == "push":
                log.info(
                    "%s: loaded destination kubeconfig %s (server %s)",
                    key,
                    digest[:8],
                    config.server,
                )
        if now - remote.probed_at >= self.probe_ttl_s or remote.problem is not None:
            remote.problem = await probe(remote)
            remote.probed_at = now
        return remote, None, False

    async def _secret(self, namespace: str, name: str, now: float) -> dict[str, Any]:
        """A referenced Secret, cached until the Secret watch reports a change (or a minute)."""
        key = f"{namespace}/{name}"
        cached = self._secrets.get(key)
        if cached is not None and now - cached[0] < SECRET_CACHE_TTL_S:
            return cached[1]
        changes = self._changes
        secret = await self.client.get(SECRET_RES, namespace=namespace, name=name)
        # A watch event while the read was in flight may be a rotation the answer predates:
        # cached, it would hide the new kubeconfig until the cache expires.
        if self._changes == changes:
            self._secrets[key] = (now, secret)
        return secret


async def probe(remote: Remote) -> Problem | None:
    server = remote.config.server
    try:
        await remote.client.request("GET", "/api")
    except ApiError as exc:
        if exc.unauthorized:
            return Problem(
                "Unauthorized", f"{server} rejected the kubeconfig's credentials (401)"
            )
        if exc.forbidden:
            return None  # authenticated; RBAC per kind shows in shard health
        return Problem("Unreachable", f"{server} answered {exc.status} {exc.reason}")
    except TransportError as exc:
        return Problem("Unreachable", f"cannot reach {server}: {exc}"[:300])
    return None

