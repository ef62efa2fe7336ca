"""Cluster connection settings: loading kubeconfigs safely into a ``ClusterConfig``.

Why this exists: the operator talks to two kinds of cluster. Its own cluster is
trusted (in-cluster service account, or the admin's ``~/.kube/config``), while a
``KRMSyncer``'s other cluster comes from a kubeconfig stored in a Secret that a
tenant wrote. docs/design.md §4.6 says such a kubeconfig may not run ``exec`` or
``auth-provider`` plugins nor read local files unless the operator was started
with an explicit flag. ``load_kubeconfig_text`` inspects the selected context
*before* the official ``kubernetes`` kubeconfig loader touches it, and refuses
with a precise ``KubeconfigError.reason``.

How it meets its neighbours: the official ``kubernetes.config`` machinery
(``KubeConfigLoader``, ``KubeConfigMerger``, ``FileOrData``) does the parsing and
the auth resolution (tokens, token files, exec plugins and auth providers for
trusted configs). We then keep the result in memory as a frozen
``ClusterConfig`` (``*_data`` bytes, never temp files), which
``ray_syncer.kube.client.KubeClient`` turns into an in-memory ``ssl.SSLContext``.
A ``ClusterConfig`` is plain, picklable data, so it can cross the Ray boundary.

Secrets: no message or repr produced here contains a token, key, certificate or
password. YAML errors are reported by position only (PyYAML's own messages quote
the offending line), and any text from the kubernetes library is scrubbed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import (
    ENV_KUBECONFIG_PATH_SEPARATOR,
    ConfigNode,
    FileOrData,
    KubeConfigLoader,
    KubeConfigMerger,
)

from ray_syncer.kube.tls import TlsMaterialError, ssl_context

__all__ = [
    "IN_CLUSTER_CA_PATH",
    "IN_CLUSTER_NAMESPACE_PATH",
    "IN_CLUSTER_TOKEN_PATH",
    "ClusterConfig",
    "KubeconfigError",
    "load_default",
    "load_in_cluster",
    "load_kubeconfig_file",
    "load_kubeconfig_text",
]

IN_CLUSTER_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"
IN_CLUSTER_CA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
IN_CLUSTER_NAMESPACE_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

# User/cluster keys that make the loader read a local file.
_USER_FILE_KEYS = ("client-certificate", "client-key", "tokenFile")
_CLUSTER_FILE_KEYS = ("certificate-authority",)


@dataclass(frozen=True)
class ClusterConfig:
    """How to reach and authenticate to one cluster; all material held in memory.

    ``token_file`` is set for in-cluster service accounts (and ``tokenFile`` in a
    trusted kubeconfig): the kubelet rotates that file, so the client re-reads it
    periodically instead of trusting ``token`` forever.

    ``exec_config`` (JSON, never shown) is set when the token came from an exec
    credential plugin (only when exec is allowed); ``token_expires_at`` (unix
    time) is the plugin's expiry. The client re-runs the plugin through
    ``refresh_exec_token`` before the token expires, and after a 401.
    """

    server: str
    token: str | None = field(default=None, repr=False)
    ca_data: bytes | None = field(default=None, repr=False)
    client_cert_data: bytes | None = field(default=None, repr=False)
    client_key_data: bytes | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    name: str = ""
    tls_server_name: str | None = None
    token_file: str | None = None
    exec_config: str | None = field(default=None, repr=False)
    token_expires_at: float | None = None
    # The context's namespace (in a pod: the service account's). Not used to reach the cluster:
    # it is what a kubectl-shaped command takes when -n is not given (``clikit.flags``).
    namespace: str | None = None

    def __repr__(self) -> str:
        # Say which credentials are present, never what they are.
        def has(v: object) -> str:
            return "<set>" if v else "None"

        return (
            f"ClusterConfig(name={self.name!r}, server={self.server!r}, token={has(self.token)}, "
            f"ca_data={has(self.ca_data)}, client_cert_data={has(self.client_cert_data)}, "
            f"client_key_data={has(self.client_key_data)}, "
            f"insecure_skip_tls_verify={self.insecure_skip_tls_verify}, "
            f"tls_server_name={self.tls_server_name!r}, token_file={self.token_file!r}, "
            f"exec_config={has(self.exec_config)}, token_expires_at={self.token_expires_at}, "
            f"namespace={self.namespace!r})"
        )

    __str__ = __repr__


class KubeconfigError(Exception):
    """A kubeconfig that cannot or may not be used.

    ``reason`` is a CamelCase machine word (it becomes a condition reason):
    KubeconfigInvalid, KubeconfigNoContext, KubeconfigNoServer, ExecPluginRefused,
    AuthProviderRefused, FileReferenceRefused, UnsupportedAuth, InClusterUnavailable.
    ``message`` is for people and never contains secret material.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"KubeconfigError(reason={self.reason!r}, message={self.message!r})"


# --------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """Unwrap the kubernetes library's ConfigNode wrappers into plain data."""
    if isinstance(value, ConfigNode):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _named(entries: Any, name: str, what: str) -> dict[str, Any] | None:
    """The ``what`` body (``cluster``/``user``/``context``) of the entry called ``name``."""
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise KubeconfigError("KubeconfigInvalid", f"'{what}s' must be a list")
    found = None
    for entry in entries:
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise KubeconfigError("KubeconfigInvalid", f"every entry of '{what}s' needs a name")
        if entry["name"] == name:
            if found is not None:
                raise KubeconfigError("KubeconfigInvalid", f"{what} {name!r} is defined twice")
            body = entry.get(what)
            if body is not None and not isinstance(body, Mapping):
                raise KubeconfigError("KubeconfigInvalid", f"{what} {name!r} is not a mapping")
            found = dict(body or {})
    return found


def _secret_values(doc: Any) -> list[str]:
    """Every string in a users section: anything there may be a credential."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if len(v) >= 4:
                out.append(v)
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    if isinstance(doc, Mapping):
        walk(doc.get("users"))
        # Cluster CA data is public, but keep the rule simple: scrub *-data fields too.
        for c in doc.get("clusters") or []:
            if isinstance(c, Mapping) and isinstance(c.get("cluster"), Mapping):
                for k, v in c["cluster"].items():
                    if k.endswith("-data") and isinstance(v, str):
                        out.append(v)
    return out


def _scrub(text: str, secrets: list[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        if s and s in text:
            text = text.replace(s, "<redacted>")
    # ConfigNode names embed whole dict reprs; cut long library messages short.
    return text if len(text) <= 300 else text[:300] + "..."


def _truthy(value: Any) -> bool:
    # YAML authors sometimes quote booleans; "false" must not mean True.
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.standard_b64decode(value)
    except (binascii.Error, ValueError, TypeError):
        raise KubeconfigError("KubeconfigInvalid", f"{what} is not valid base64") from None


def _parse_yaml(text: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML quotes the offending line, which may hold a token: report the position only.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise KubeconfigError("KubeconfigInvalid", f"kubeconfig is not valid YAML{where}") from None
    if not isinstance(doc, Mapping):
        raise KubeconfigError("KubeconfigInvalid", "kubeconfig is not a YAML mapping")
    return dict(doc)


def _select(
    doc: Mapping[str, Any], context: str | None
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Resolve (context name, context, cluster, user) with precise errors."""
    clusters = doc.get("clusters")
    if not clusters or not isinstance(clusters, list):
        raise KubeconfigError("KubeconfigInvalid", "kubeconfig defines no clusters")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise KubeconfigError(
            "KubeconfigNoContext", "kubeconfig has no current-context and no context was given"
        )
    if not isinstance(ctx_name, str):
        raise KubeconfigError("KubeconfigInvalid", "current-context must be a string")
    ctx = _named(doc.get("contexts"), ctx_name, "context")
    if ctx is None:
        raise KubeconfigError("KubeconfigNoContext", f"context {ctx_name!r} is not defined")
    cluster_name = ctx.get("cluster")
    if not cluster_name:
        raise KubeconfigError("KubeconfigInvalid", f"context {ctx_name!r} names no cluster")
    cluster = _named(clusters, cluster_name, "cluster")
    if cluster is None:
        raise KubeconfigError(
            "KubeconfigInvalid", f"context {ctx_name!r} names unknown cluster {cluster_name!r}"
        )
    server = cluster.get("server")
    if not server or not isinstance(server, str):
        raise KubeconfigError("KubeconfigNoServer", f"cluster {cluster_name!r} has no server")
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(
            "KubeconfigNoServer", f"cluster {cluster_name!r} server is not an http(s) URL"
        )
    # user:password@ in the URL is a credential in plain sight: it would be shown wherever the
    # server is (logs, status), and aiohttp refuses it beside a bearer token. Never echo it.
    if "@" in server.split("://", 1)[1].split("/", 1)[0]:
        raise KubeconfigError(
            "KubeconfigInvalid",
            f"cluster {cluster_name!r} server URL embeds credentials (user:password@host); "
            "put them in the user entry (token or client certificate)",
        )
    # A query or fragment has no meaning in a server URL and can carry a credential
    # (?token=...); refuse it, again without echoing the URL.
    if "?" in server or "#" in server:
        raise KubeconfigError(
            "KubeconfigInvalid",
            f"cluster {cluster_name!r} server URL has a query or fragment; "
            "a server URL is scheme://host[:port][/path]",
        )
    # A URL that does not parse (port out of range, broken IPv6) must fail here, precisely,
    # not as a ValueError wherever the server is used later.
    try:
        host = urlsplit(server).hostname
        urlsplit(server).port  # noqa: B018  (raises for a port out of range)
    except ValueError as exc:
        raise KubeconfigError(
            "KubeconfigInvalid", f"cluster {cluster_name!r} server {server!r} is not a valid URL ({exc})"
        ) from None
    if not host:
        raise KubeconfigError(
            "KubeconfigNoServer", f"cluster {cluster_name!r} server {server!r} names no host"
        )
    user: dict[str, Any] = {}
    if ctx.get("user"):
        user = _named(doc.get("users"), ctx["user"], "user") or {}
    return ctx_name, ctx, cluster, user


def _check_safety(
    ctx_name: str,
    cluster: Mapping[str, Any],
    user: Mapping[str, Any],
    *,
    allow_exec: bool,
    allow_files: bool,
) -> None:
    if not allow_exec:
        if user.get("exec") is not None:
            raise KubeconfigError(
                "ExecPluginRefused",
                f"context {ctx_name!r} uses an exec credential plugin; the operator refuses "
                "plugins from Secret kubeconfigs unless started with --allow-kubeconfig-exec",
            )
        if user.get("auth-provider") is not None:
            raise KubeconfigError(
                "AuthProviderRefused",
                f"context {ctx_name!r} uses an auth-provider plugin; use a token or client "
                "certificate, or start the operator with --allow-kubeconfig-exec",
            )
    if not allow_files:
        refs = [f"cluster.{k}" for k in _CLUSTER_FILE_KEYS if cluster.get(k)]
        refs += [f"user.{k}" for k in _USER_FILE_KEYS if user.get(k)]
        # "*-data" wins over the file key in the official loader, so a file key
        # shadowed by inline data is never read; only refuse the ones that would be.
        refs = [r for r in refs if not _has_inline_data(cluster, user, r)]
        if refs:
            raise KubeconfigError(
                "FileReferenceRefused",
                f"context {ctx_name!r} references local files ({', '.join(refs)}); a kubeconfig "
                "in a Secret must embed its data (certificate-authority-data, "
                "client-certificate-data, client-key-data, token)",
            )


def _has_inline_data(cluster: Mapping[str, Any], user: Mapping[str, Any], ref: str) -> bool:
    section, key = ref.split(".", 1)
    body = cluster if section == "cluster" else user
    data_key = "token" if key == "tokenFile" else f"{key}-data"
    return bool(body.get(data_key))


def _build(
    config_dict: Any,
    *,
    ctx_name: str,
    cluster: Mapping[str, Any],
    user: Mapping[str, Any],
    secrets: list[str],
    config_base_path: str | None,
    namespace: str | None = None,
) -> ClusterConfig:
    """Run the official loader's auth resolution and read TLS material as bytes.

    We call ``KubeConfigLoader._load_authentication`` (token, tokenFile, exec,
    auth-provider) instead of ``load_and_set``: the latter also materialises
    ``*-data`` fields as temp files on disk, which we do not want for key material.
    These are library internals: tests/kube/test_loader_contract.py pins each one we
    use, and pyproject.toml allows only the ``kubernetes`` releases it passes on.
    TLS data is read through the library's ``FileOrData.as_data`` (inline data,
    or the file's content for trusted configs), never written anywhere.
    """
    loader = _authenticated_loader(config_dict, ctx_name, secrets, config_base_path)
    token = _bearer_token(loader, ctx_name)
    base = config_base_path or ""
    exec_config, expires_at = _exec_details(loader, user, token, ctx_name, base)
    token_file = None
    if not user.get("token") and user.get("tokenFile"):
        token_file = os.path.normpath(os.path.join(base, str(user["tokenFile"])))
    config = ClusterConfig(
        server=str(cluster["server"]).rstrip("/"),
        token=token,
        ca_data=_tls_data(cluster, "certificate-authority", base),
        client_cert_data=_tls_data(user, "client-certificate", base),
        client_key_data=_tls_data(user, "client-key", base),
        insecure_skip_tls_verify=_truthy(cluster.get("insecure-skip-tls-verify", False)),
        name=ctx_name,
        tls_server_name=cluster.get("tls-server-name") or None,
        token_file=token_file,
        exec_config=exec_config,
        token_expires_at=expires_at,
        namespace=namespace,
    )
    _check_tls(config, ctx_name)
    return config


def _authenticated_loader(
    config_dict: Any, ctx_name: str, secrets: list[str], config_base_path: str | None
) -> Any:
    try:
        loader = KubeConfigLoader(
            config_dict=config_dict, active_context=ctx_name, config_base_path=config_base_path
        )
        loader._load_authentication()
    except KubeconfigError:
        raise
    except (ConfigException, OSError, KeyError, TypeError, ValueError) as exc:
        raise KubeconfigError(
            "KubeconfigInvalid", _scrub(f"cannot load credentials: {exc}", secrets)
        ) from None
    return loader


def _bearer_token(loader: Any, ctx_name: str) -> str | None:
    token: str | None = None
    header = getattr(loader, "token", None)
    if isinstance(header, str):
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            raise KubeconfigError(
                "UnsupportedAuth",
                f"context {ctx_name!r} uses basic auth (username/password), which Kubernetes "
                "removed in 1.19; use a token or a client certificate",
            )
        token = value.strip() or None
    if getattr(loader, "cert_file", None):
        # Only an exec plugin returning a client certificate gets here (trusted configs).
        raise KubeconfigError(
            "UnsupportedAuth",
            f"context {ctx_name!r}: exec plugins that return client certificates are not supported",
        )
    return token


def _exec_details(
    loader: Any, user: Mapping[str, Any], token: str | None, ctx_name: str, base: str
) -> tuple[str | None, float | None]:
    """(the exec plugin's config, to run it again later; when its token expires)."""
    uses_exec = user.get("exec") is not None and not (
        user.get("auth-provider") or user.get("token") or user.get("tokenFile")
    )
    if not uses_exec:
        return None, None
    if token is None:
        raise KubeconfigError(
            "ExecPluginFailed",
            f"context {ctx_name!r}: the exec credential plugin returned no token",
        )
    exec_config = json.dumps({"exec": _plain(user["exec"]), "cwd": base or None})
    expiry = getattr(loader, "expiry", None)
    return exec_config, expiry.timestamp() if expiry is not None else None


def _tls_data(body: Mapping[str, Any], key: str, base: str) -> bytes | None:
    try:
        raw = FileOrData(dict(body), key, file_base_path=base).as_data()
    except OSError as exc:
        raise KubeconfigError(
            "KubeconfigInvalid", f"cannot read {key} file: {exc.strerror}"
        ) from None
    return _b64(raw, key) if raw else None


def _check_tls(config: ClusterConfig, ctx_name: str) -> None:
    if bool(config.client_cert_data) != bool(config.client_key_data):
        raise KubeconfigError(
            "KubeconfigInvalid",
            f"context {ctx_name!r} has a client certificate without its key (or the reverse)",
        )
    try:
        # Fail here, with a precise reason, rather than at the first connection.
        ssl_context(config)
    except TlsMaterialError as exc:
        raise KubeconfigError("KubeconfigInvalid", f"context {ctx_name!r}: {exc}") from None


# --------------------------------------------------------------------------- public API


def _ctx_namespace(ctx: Mapping[str, Any]) -> str | None:
    ns = ctx.get("namespace")
    return ns if isinstance(ns, str) and ns else None


def load_kubeconfig_text(
    text: str,
    *,
    context: str | None = None,
    allow_exec: bool = False,
    allow_files: bool = False,
) -> ClusterConfig:
    """Load a kubeconfig read from a Secret (untrusted): refuses plugins and files by default.

    File references are resolved relative to the current directory when
    ``allow_files`` is set (a Secret has no directory of its own).
    """
    if not isinstance(text, str):
        raise KubeconfigError("KubeconfigInvalid", "kubeconfig is not text")
    doc = _parse_yaml(text)
    ctx_name, _ctx, cluster, user = _select(doc, context)
    _check_safety(ctx_name, cluster, user, allow_exec=allow_exec, allow_files=allow_files)
    return _build(
        doc,
        ctx_name=ctx_name,
        cluster=cluster,
        user=user,
        secrets=_secret_values(doc),
        config_base_path="",
        namespace=_ctx_namespace(_ctx),
    )


def load_kubeconfig_file(paths: str, *, context: str | None = None) -> ClusterConfig:
    """Load a trusted kubeconfig from one or more files (``KUBECONFIG`` syntax, ``:``-separated).

    Merged with the official ``KubeConfigMerger`` (first definition of a name wins,
    relative file references resolve against the file that made them).
    """
    existing = [p for p in paths.split(ENV_KUBECONFIG_PATH_SEPARATOR) if p]
    if not any(Path(os.path.expanduser(p)).exists() for p in existing):
        raise KubeconfigError("KubeconfigInvalid", f"no kubeconfig file found at {paths!r}")
    try:
        merger = KubeConfigMerger(paths)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise KubeconfigError("KubeconfigInvalid", f"kubeconfig is not valid YAML{where}") from None
    except (ConfigException, OSError, AttributeError, TypeError, KeyError) as exc:
        # The merger raises for empty files and stumbles over non-mapping documents.
        raise KubeconfigError(
            "KubeconfigInvalid", f"cannot read kubeconfig: {type(exc).__name__}"
        ) from None
    merged = merger.config
    if merged is None:
        raise KubeconfigError("KubeconfigInvalid", "kubeconfig is empty")
    doc = _plain(merged)
    # kubectl: the first file that sets current-context wins (the merger keeps the last).
    for path in merger.paths:
        first = (merger.config_files.get(path) or {}).get("current-context")
        if first:
            doc["current-context"] = first
            break
    ctx_name, _ctx, cluster, user = _select(doc, context)
    # Relative file references resolve against the file that defined the user
    # (the merger records it), as kubectl does.
    base = _defining_dir(merged, user_name=_ctx.get("user"))
    return _build(
        merged,
        ctx_name=ctx_name,
        cluster=cluster,
        user=user,
        secrets=_secret_values(doc),
        config_base_path=base,
        namespace=_ctx_namespace(_ctx),
    )


def _defining_dir(merged: Any, *, user_name: Any) -> str:
    node = merged if isinstance(merged, ConfigNode) else None
    if node is not None:
        for entry in node.value.get("users", []):
            if (
                isinstance(entry, ConfigNode)
                and _plain(entry).get("name") == user_name
                and entry.path
            ):
                return os.path.abspath(os.path.dirname(entry.path))
        if node.path:
            return os.path.abspath(os.path.dirname(node.path))
    return ""


def load_in_cluster(
    *,
    token_path: str = IN_CLUSTER_TOKEN_PATH,
    ca_path: str = IN_CLUSTER_CA_PATH,
    namespace_path: str = IN_CLUSTER_NAMESPACE_PATH,
    environ: Mapping[str, str] | None = None,
) -> ClusterConfig:
    """The pod's service account (paths injectable for tests)."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError("InClusterUnavailable", "KUBERNETES_SERVICE_HOST/PORT are not set")
    try:
        token = Path(token_path).read_text().strip()
        ca = Path(ca_path).read_bytes()
    except OSError as exc:
        raise KubeconfigError(
            "InClusterUnavailable", f"cannot read the service account: {exc.strerror}"
        ) from None
    if not token:
        raise KubeconfigError("InClusterUnavailable", "the service account token file is empty")
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ClusterConfig(
        server=f"https://{hostport}",
        token=token,
        ca_data=ca or None,
        name="in-cluster",
        token_file=token_path,
        namespace=_read_optional(namespace_path),
    )


def _read_optional(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def in_cluster_available(
    *, token_path: str = IN_CLUSTER_TOKEN_PATH, environ: Mapping[str, str] | None = None
) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and Path(token_path).is_file()


def load_default(*, kubeconfig: str | None = None, context: str | None = None) -> ClusterConfig:
    """The operator's own cluster (trusted: exec plugins and files allowed).

    Order: ``kubeconfig`` if given; else the in-cluster service account when
    running in a pod and ``KUBECONFIG`` is unset; else ``KUBECONFIG``; else
    ``~/.kube/config``. An explicit ``KUBECONFIG`` counts as "a kubeconfig given".
    """
    if kubeconfig:
        return load_kubeconfig_file(kubeconfig, context=context)
    env_paths = os.environ.get("KUBECONFIG")
    if not env_paths and in_cluster_available():
        return load_in_cluster()
    return load_kubeconfig_file(env_paths or os.path.expanduser("~/.kube/config"), context=context)
