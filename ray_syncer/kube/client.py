"""The one module that speaks HTTP to Kubernetes clusters.

Why this exists: the engine's hot path is many small server-side-apply PATCHes
and long watch streams. The official ``kubernetes`` client is synchronous
(urllib3 + a thread per in-flight call) and deserialises into models; measured in
``benchmarks/client_throughput.py``, a thin asyncio layer over ``aiohttp`` with
pooled keep-alive connections and ``orjson`` does the same applies several times
faster per core. So the official package is used for what it is good at
(kubeconfig parsing and auth, see ``config.py``), and this module does the wire.

How it meets its neighbours: ``KubeClient(ClusterConfig)`` is created by the
operator/actors, shared by all shards of one syncer in one process for a given
cluster, and used by the engine (list/watch/apply/delete) and by
``discovery.py`` (``server_groups``/``resources``). It never retries on its own:
it raises ``ApiError`` (the server's Status, with ``retry_after``) or
``TransportError`` (the network) and the engine decides what to do.

Secrets: the bearer token lives in one header and never appears in an exception
message, repr or log line produced here.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from ray_syncer.kube.config import ClusterConfig
from ray_syncer.kube.credentials import BearerToken
from ray_syncer.kube.errors import HTTP_REASONS, ApiError, TransportError, error_from_response
from ray_syncer.kube.resources import DiscoveryCache, ResourceInfo
from ray_syncer.kube.tls import TlsMaterialError, ssl_context

# ApiError, TransportError and ResourceInfo are part of the client's interface.
__all__ = ["ApiError", "KubeClient", "ResourceInfo", "TransportError", "build_ssl_context"]

# How long a watch may run past its own timeoutSeconds before we give up on it.
_WATCH_MARGIN_S = 30.0


def build_ssl_context(config: ClusterConfig) -> ssl.SSLContext | None:
    """An in-memory TLS context for ``config`` (None for plain http); TransportError if unusable."""
    try:
        return ssl_context(config)
    except TlsMaterialError as exc:
        raise TransportError(f"{config.name}: {exc}") from None


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ssl.SSLError, OSError)


class KubeClient:
    """An async client for one cluster: pooled keep-alive connections, JSON via orjson.

    Create it anywhere; the HTTP sessions are opened lazily on the running loop,
    and must be closed (``await close()`` or ``async with``) on that loop.

    Requests share one pool of at most ``max_connections`` keep-alive
    connections. Watches use a second, unbounded pool: over HTTP/1.1 each open
    watch holds a connection for its lifetime, and many shards' watches must
    never starve (or deadlock) the writes.

    Discovery is cached per client: until ``invalidate_discovery()``, or for
    ``discovery_ttl`` seconds; a "not served" answer only for ``negative_ttl``
    seconds, so a CRD that appears is noticed even if nobody invalidates.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        max_connections: int = 64,
        request_timeout: float = 30.0,
        idle_timeout: float | None = 300.0,
        user_agent: str = "ray-syncer",
        discovery_ttl: float = 300.0,
        negative_ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._server = config.server.rstrip("/")
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._idle_timeout = idle_timeout
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = build_ssl_context(config)
        self._token = BearerToken(config, clock=clock)
        self._discovery = DiscoveryCache(
            self.request, clock=clock, discovery_ttl=discovery_ttl, negative_ttl=negative_ttl
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"KubeClient(name={self.config.name!r}, server={self._server!r})"

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        self._discovery.close()
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()
        self._session = self._watch_session = None

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limit,
            limit_per_host=limit,
            ssl=self._ssl if self._ssl is not None else False,
            keepalive_timeout=60.0,
            enable_cleanup_closed=True,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"Accept": "application/json", "User-Agent": self._user_agent},
            # aiohttp asks for gzip by default; the API server compresses only
            # large responses (big lists), which is what a WAN link between DR
            # sites wants.
            auto_decompress=True,
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError(f"{self.config.name}: client is closed")
        if self._session is None or self._session.closed:
            self._session = self._new_session(self._max_connections)
        return self._session

    def _get_watch_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError(f"{self.config.name}: client is closed")
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)  # 0: no limit, one connection per watch
        return self._watch_session

    def _request_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.config.tls_server_name:
            kw["server_hostname"] = self.config.tls_server_name
        return kw

    # ----------------------------------------------------------------- raw requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """One request; a JSON body is encoded with orjson unless it is already bytes.

        Returns the decoded JSON object (``{}`` for an empty body). Raises
        ``ApiError`` for non-2xx answers and ``TransportError`` for the rest.
        """
        data: bytes | bytearray | None = None
        if body is not None:
            data = body if isinstance(body, bytes | bytearray) else orjson.dumps(body)
            content_type = content_type or "application/json"
        session = self._get_session()
        try:
            async with session.request(
                method,
                self._server + path,
                params=_params(params),
                data=data,
                headers=await self._headers(content_type),
                **self._request_kwargs(),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    self._note_failure(resp.status)
                    raise error_from_response(resp.status, raw, resp.headers)
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error(method, path, exc) from None
        if not raw:
            return {}
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(resp.status, "InvalidResponse", "response body is not JSON") from None
        return doc if isinstance(doc, dict) else {"items": doc}

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        token = await self._token.current()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _note_failure(self, status: int) -> None:
        if status == 401:
            self._token.unauthorized()

    def _transport_error(self, method: str, path: str, exc: BaseException) -> TransportError:
        if isinstance(exc, asyncio.TimeoutError):
            what = "timed out"
        else:
            what = f"{type(exc).__name__}: {exc}"
        return TransportError(f"{method} {self.config.name or self._server}{path}: {what}")

    # ----------------------------------------------------------------- discovery

    # ----------------------------------------------------------------- discovery

    async def server_groups(self) -> dict[str, list[str]]:
        """Group -> served versions, preferred first; ``""`` is the core group. Cached."""
        return await self._discovery.server_groups()

    async def resources(self, group: str, version: str) -> list[ResourceInfo]:
        """The kinds served under group/version (``[]`` when it is not served). Cached."""
        return await self._discovery.resources(group, version)

    async def resolve(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return await self._discovery.resolve(group, version, kind)

    def invalidate_discovery(self) -> None:
        """Forget cached discovery (call when a kind goes missing or a CRD appears)."""
        self._discovery.invalidate()

    # ----------------------------------------------------------------- reads

    async def get(self, res: ResourceInfo, *, namespace: str | None, name: str) -> dict[str, Any]:
        return await self.request("GET", res.path(namespace=namespace, name=name))

    async def list_page(
        self,
        res: ResourceInfo,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One page of a list. Items get ``apiVersion``/``kind`` filled in (the API omits them)."""
        doc = await self.request(
            "GET",
            res.path(namespace=namespace),
            params={
                "labelSelector": label_selector or None,
                "fieldSelector": field_selector or None,
                "limit": limit or None,
                "continue": continue_token or None,
                "resourceVersion": resource_version,
            },
        )
        for item in doc.get("items") or []:
            item.setdefault("apiVersion", res.group_version)
            item.setdefault("kind", res.kind)
        return doc

    async def list_all(
        self,
        res: ResourceInfo,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item, following continue tokens; returns (items, list resourceVersion).

        All pages belong to one consistent snapshot; if the continue token expires
        mid-way the server's 410 is raised and the caller lists again.
        """
        items: list[dict[str, Any]] = []
        token: str | None = None
        rv = ""
        while True:
            page = await self.list_page(
                res,
                namespace=namespace,
                label_selector=label_selector,
                limit=page_size,
                continue_token=token,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            rv = meta.get("resourceVersion") or rv
            token = meta.get("continue") or None
            if not token:
                return items, rv

    def watch(
        self,
        res: ResourceInfo,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
        idle_timeout: float | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Yield raw watch events ``{"type", "object"}`` until the server closes the stream.

        BOOKMARK events are passed through. An ERROR event raises ``ApiError`` with
        its Status (410 -> ``gone``). No data for ``idle_timeout`` seconds (default:
        the client's) raises ``TransportError`` so a stalled stream is noticed.
        Lines of any size are handled (objects can approach 1.5 MiB). Close it
        with ``contextlib.aclosing`` (or exhaust it) to free the connection promptly.
        """
        params: dict[str, Any] = {
            "watch": True,
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "resourceVersion": resource_version or None,
            "allowWatchBookmarks": allow_bookmarks or None,
            "timeoutSeconds": timeout_seconds,
        }
        idle = self._idle_timeout if idle_timeout is None else idle_timeout
        timeout = aiohttp.ClientTimeout(
            total=timeout_seconds + _WATCH_MARGIN_S if timeout_seconds else None,
            sock_connect=self._timeout.total,
            sock_read=idle,
        )
        path = res.path(namespace=namespace)
        return self._watch_stream(path, params, timeout)

    async def _watch_stream(
        self, path: str, params: Mapping[str, Any], timeout: aiohttp.ClientTimeout
    ) -> AsyncGenerator[dict[str, Any], None]:
        session = self._get_watch_session()
        try:
            resp = await session.get(
                self._server + path,
                params=_params(params),
                headers=await self._headers(None),
                timeout=timeout,
                **self._request_kwargs(),
            )
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error("WATCH", path, exc) from None
        try:
            if resp.status >= 400:
                try:
                    raw = await resp.read()
                except _TRANSPORT_ERRORS as exc:
                    raise self._transport_error("WATCH", path, exc) from None
                self._note_failure(resp.status)
                raise error_from_response(resp.status, raw, resp.headers)
            buf = bytearray()
            scan = 0
            try:
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    start = 0
                    while True:
                        nl = buf.find(b"\n", scan)
                        if nl < 0:
                            break
                        event = _decode_event(bytes(buf[start:nl]))
                        start = scan = nl + 1
                        if event is not None:
                            yield event
                    if start:
                        del buf[:start]
                    scan = len(buf)
            except _TRANSPORT_ERRORS as exc:
                if isinstance(exc, aiohttp.ServerTimeoutError):
                    raise TransportError(
                        f"WATCH {self.config.name}{path}: stream stalled"
                    ) from None
                if isinstance(exc, asyncio.TimeoutError):
                    return  # the whole-stream deadline: the watch simply ended
                if isinstance(
                    exc,
                    aiohttp.ClientPayloadError
                    | aiohttp.ServerDisconnectedError
                    | ConnectionResetError,
                ):
                    return  # the server closed the stream: a normal end of a watch
                raise self._transport_error("WATCH", path, exc) from None
            tail = _decode_event(bytes(buf))
            if tail is not None:
                yield tail
        finally:
            # Closing (not releasing) drops a half-read stream's connection.
            resp.close()

    # ----------------------------------------------------------------- writes

    async def apply(
        self,
        res: ResourceInfo,
        obj: dict[str, Any],
        *,
        field_manager: str = "krm-syncer",
        force: bool = True,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply ``obj`` (sent as JSON, which is YAML)."""
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise ValueError("apply needs metadata.name")
        return await self.request(
            "PATCH",
            res.path(
                namespace=meta.get("namespace"), name=meta.get("name"), subresource=subresource
            ),
            params={"fieldManager": field_manager, "force": force},
            body=orjson.dumps(obj),
            content_type="application/apply-patch+yaml",
        )

    async def create(
        self,
        res: ResourceInfo,
        obj: dict[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        params = {"fieldManager": field_manager} if field_manager else None
        return await self.request("POST", res.path(namespace=ns), params=params, body=obj)

    async def replace(
        self,
        res: ResourceInfo,
        obj: dict[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise ValueError("replace needs metadata.name")
        ns = namespace or meta.get("namespace")
        return await self.request(
            "PUT", res.path(namespace=ns, name=meta.get("name"), subresource=subresource), body=obj
        )

    async def patch(
        self,
        res: ResourceInfo,
        *,
        namespace: str | None,
        name: str,
        body: Any,
        content_type: str = "application/merge-patch+json",
        subresource: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            res.path(namespace=namespace, name=name, subresource=subresource),
            params=params,
            body=body,
            content_type=content_type,
        )

    async def delete(
        self,
        res: ResourceInfo,
        *,
        namespace: str | None,
        name: str,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete with optional preconditions (a mismatch is a 409 Conflict; absent is 404).

        Returns the object as the server answered it (it may still exist with a
        deletionTimestamp while finalizers run), or None when the server answered
        with a bare success Status.
        """
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        pre: dict[str, str] = {}
        if uid:
            pre["uid"] = uid
        if resource_version:
            pre["resourceVersion"] = resource_version
        if pre:
            options["preconditions"] = pre
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        doc = await self.request("DELETE", res.path(namespace=namespace, name=name), body=options)
        if not doc or doc.get("kind") == "Status":
            return None
        return doc


def _decode_event(line: bytes) -> dict[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise TransportError("watch stream sent a line that is not JSON") from None
    if not isinstance(event, dict):
        raise TransportError("watch stream sent a non-object event")
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        code = int(status.get("code") or 500)
        reason = status.get("reason") or (
            "Expired" if code == 410 else HTTP_REASONS.get(code, "InternalError")
        )
        raise ApiError(
            code,
            reason,
            str(status.get("message") or ""),
            causes=list((status.get("details") or {}).get("causes") or []),
        )
    return event
