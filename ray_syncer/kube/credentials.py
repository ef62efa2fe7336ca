"""The bearer token of one cluster's requests, kept fresh.

Why it exists: a token is not a constant. Exec credential plugins hand out
tokens that expire (EKS: 15 minutes), and the kubelet rotates a projected
service-account token file. :class:`BearerToken` re-runs the plugin ahead of
expiry (once for all concurrent requests, off the event loop), re-reads a token
file every minute, and renews either after a 401. The token lives here and in
one request header; it never appears in a message, repr or log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from kubernetes.config.config_exception import ConfigException
from kubernetes.config.dateutil import parse_rfc3339
from kubernetes.config.exec_provider import ExecProvider
from kubernetes.config.kube_config import ConfigNode

from ray_syncer.kube.config import ClusterConfig, KubeconfigError
from ray_syncer.kube.errors import TransportError

# Re-run an exec credential plugin this long before its token expires.
_EXEC_REFRESH_MARGIN_S = 60.0
# Re-read a rotating service-account token file this often.
_TOKEN_FILE_REFRESH_S = 60.0


class BearerToken:
    def __init__(self, config: ClusterConfig, *, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._token = config.token
        self._token_read_at = clock()
        self._token_expires_at = config.token_expires_at
        self._exec_stale = False
        self._exec_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"BearerToken(cluster={self.config.name!r})"

    async def current(self) -> str | None:
        """The token to send now (None: no bearer token for this cluster)."""
        if self.config.exec_config:
            await self._refresh_exec_if_due()
        return self._current_token()

    def unauthorized(self) -> None:
        """The server answered 401: a rotated file or an expired plugin token; renew it."""
        self._token_read_at = float("-inf")
        self._exec_stale = bool(self.config.exec_config)

    def _exec_due(self) -> bool:
        if self._token is None or self._exec_stale:
            return True
        expires = self._token_expires_at
        return expires is not None and time.time() > expires - _EXEC_REFRESH_MARGIN_S

    async def _refresh_exec_if_due(self) -> None:
        # Exec plugin tokens expire (EKS: 15 min): re-run the plugin ahead of expiry,
        # once for all concurrent requests, off the event loop.
        if not self._exec_due():
            return
        async with self._exec_lock:
            if not self._exec_due():
                return
            try:
                token, expires = await asyncio.to_thread(refresh_exec_token, self.config)
            except KubeconfigError as exc:
                raise TransportError(exc.message) from None
            self._token, self._token_expires_at, self._exec_stale = token, expires, False

    def _current_token(self) -> str | None:
        path = self.config.token_file
        if path and (
            self._token is None or self._clock() - self._token_read_at > _TOKEN_FILE_REFRESH_S
        ):
            # Service-account tokens are rotated by the kubelet: re-read the file.
            with contextlib.suppress(OSError):
                value = Path(path).read_text().strip()
                if value:
                    self._token = value
            self._token_read_at = self._clock()
        return self._token


def refresh_exec_token(config: ClusterConfig) -> tuple[str, float | None]:
    """Run ``config``'s exec credential plugin again: (token, expiry unix time or None).

    Blocking (a subprocess): call it in a thread. Uses the official ExecProvider.
    Raises ``KubeconfigError(ExecPluginFailed)`` with a message free of plugin output.
    """
    if not config.exec_config:
        raise KubeconfigError("ExecPluginFailed", f"{config.name}: no exec plugin configured")
    spec = json.loads(config.exec_config)
    try:
        status = ExecProvider(ConfigNode("exec", spec["exec"]), spec.get("cwd"), None).run()
    except (ConfigException, OSError, KeyError, TypeError, ValueError) as exc:
        raise KubeconfigError(
            "ExecPluginFailed", f"{config.name}: exec plugin failed ({type(exc).__name__})"
        ) from None
    token = status.get("token") if isinstance(status, Mapping) else None
    if not token:
        raise KubeconfigError("ExecPluginFailed", f"{config.name}: exec plugin returned no token")
    expires_at = None
    if status.get("expirationTimestamp"):
        expires_at = parse_rfc3339(status["expirationTimestamp"]).timestamp()
    return str(token), expires_at
