"""The HTTP face of the test server: one aiohttp low-level handler.

Per request: refuse it during an outage, authenticate the bearer token
(auth.py), maybe inject a fault (faults.py), parse the URL into discovery or a
:class:`~.handlers.Target`, authorize the verb, call handlers.py (or watch.py
for ``watch=true``) and answer JSON (orjson). Every request is appended to
the request log with its method, path, query, content type, status and user.
server.py owns the listening sockets; this module only handles requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from . import tables, watch
from .auth import PUBLIC_PATHS, Authenticator
from .discovery import Discovery
from .errors import StatusError, bad_request, for_code, method_not_allowed, unauthorized
from .faults import Faults
from .handlers import ObjectApi, Target
from .kinds import Registry
from .store import Store

log = logging.getLogger(__name__)
JSON = "application/json"
_NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource")


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    status: int = 0
    user: str | None = None
    time: float = field(default_factory=time.time)
    watch: bool = False


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=data, status=status, content_type=JSON, headers=headers)


def error_response(err: StatusError) -> web.Response:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(err.retry_after)))
    return _json(err.code, err.status(), headers)


class HttpFront:
    def __init__(
        self,
        *,
        api: ObjectApi,
        store: Store,
        registry: Registry,
        auth: Authenticator,
        faults: Faults,
        server_address: str,
        request_log: list[RequestRecord],
        log_limit: int,
    ) -> None:
        self.api = api
        self.store = store
        self.registry = registry
        self.auth = auth
        self.faults = faults
        self.discovery = Discovery(registry)
        self.server_address = server_address
        self.request_log = request_log
        self.log_limit = log_limit
        self.bookmark_interval = 5.0
        self.down = False

    def _log(self, record: RequestRecord) -> None:
        log = self.request_log
        if len(log) >= self.log_limit:
            del log[: self.log_limit // 2]
        log.append(record)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.down:
            # Outage: cut the connection without an answer, as a dead server would.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        path = request.path
        query = dict(request.query)
        record = RequestRecord(request.method, path, query, request.headers.get("Content-Type"))
        self._log(record)
        try:
            user = None if path in PUBLIC_PATHS else self.auth.authenticate(request.headers.get("Authorization"))
            if user is None and path not in PUBLIC_PATHS:
                raise unauthorized()
            record.user = user.name if user else None
            code = self.faults.pick_error(request.method, path)
            delay = self.faults.delay(request.method, path)
            if delay:
                await asyncio.sleep(delay)
            if code is not None:
                raise for_code(code, retry_after=self.faults.retry_after)
            resp = await self._route(request, path, query, user, record)
        except StatusError as err:
            resp = error_response(err)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # A bug in the test server: answer like kube-apiserver's panic handler, keep serving.
            log.exception("test server failed on %s %s", request.method, path)
            resp = error_response(StatusError(500, "InternalError", f"test server error: {type(exc).__name__}"))
        record.status = resp.status
        return resp

    async def _route(self, request: web.BaseRequest, path: str, query: dict[str, str], user: Any,
                     record: RequestRecord) -> web.StreamResponse:
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        stripped = path.rstrip("/") or "/"
        parts = [p for p in stripped.split("/") if p]
        if not parts or parts[0] not in ("api", "apis") or len(parts) < 2:
            doc = self.discovery.document(stripped, server_address=self.server_address)
            if doc is None or request.method != "GET":
                raise _NOT_FOUND
            return _json(200, doc)
        group_parts = 2 if parts[0] == "api" else 3
        if len(parts) <= group_parts:
            doc = self.discovery.document(stripped, server_address=self.server_address)
            if doc is None or request.method != "GET":
                raise _NOT_FOUND
            return _json(200, doc)
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        rest = parts[group_parts:]
        is_watch = query.get("watch") in ("true", "1")
        if rest[0] == "watch":
            is_watch, rest = True, rest[1:]
        namespace: str | None = None
        if rest and rest[0] == "namespaces" and len(rest) >= 3 and not (
            group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _NOT_FOUND
        rt = self.registry.get(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            raise _NOT_FOUND
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (sub == "status" and rt.has_status):
            raise _NOT_FOUND
        t = Target(rt, namespace, name, sub)
        method = request.method
        verb = {
            "GET": "watch" if is_watch else ("get" if name else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method)
        if verb is None or (name is None and verb in ("update", "patch")) or (name and verb == "create"):
            raise method_not_allowed()
        if user is not None:
            self.auth.authorize(user, verb=verb, group=group, resource=rt.plural + (f"/{sub}" if sub else ""),
                                namespace=namespace, name=name)
        if verb == "watch":
            record.watch = True
            record.status = 200
            if "watch" not in rt.verbs:
                raise method_not_allowed()
            return await watch.serve(request, t=t, query=query, store=self.store, faults=self.faults,
                                     bookmark_interval=self.bookmark_interval)
        api = self.api
        if verb in ("get", "list"):
            status, body = api.get(t) if verb == "get" else api.list(t, query)
            if tables.wants_table(request.headers.get("Accept", "")):
                objects = [body] if verb == "get" else body["items"]
                meta = {"resourceVersion": body["metadata"].get("resourceVersion", "")} if verb == "get" \
                    else body["metadata"]
                body = tables.to_table(rt, objects, list_meta=meta, printer_columns=(
                    list(rt.printer_columns) if rt.printer_columns else None))
            return _json(status, body)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise StatusError(413, "RequestEntityTooLarge",
                              f"Request entity too large: limit is {request.client_max_size}") from None
        ua = request.headers.get("User-Agent", "")
        if verb == "patch":
            status, body = api.patch(t, raw, request.headers.get("Content-Type", ""), query, user_agent=ua)
            return _json(status, body)
        payload: Any = None
        if raw:
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise bad_request(f"the body of the request was not valid JSON: {exc}") from None
        if verb == "create":
            return _json(*api.create(t, payload, query, user_agent=ua))
        if verb == "update":
            return _json(*api.replace(t, payload, query, user_agent=ua))
        if verb == "delete":
            return _json(*api.delete(t, payload, query))
        return _json(*api.delete_collection(t, payload, query))
