"""ApiServer: one in-memory Kubernetes API server on a real socket.

Wires the pieces together: a :class:`~.store.Store` and a
:class:`~.kinds.Registry` (the cluster state), :class:`~.handlers.ObjectApi`
(the verbs), :class:`~.http.HttpFront` (requests), an
:class:`~.auth.Authenticator`, :class:`~.faults.Faults`, and optional TLS
(tls.py). It owns the listening socket so an outage can close it and a
recovery can reopen it on the same port. Clients get a kubeconfig
(:meth:`ApiServer.kubeconfig`) or a ready ``kubernetes.client.Configuration``.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import ssl
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from .auth import Allow, Authenticator
from .faults import Faults
from .handlers import NS_KEY, ObjectApi, utc_now
from .http import HttpFront, RequestRecord
from .kinds import Registry
from .store import Store

if TYPE_CHECKING:
    import kubernetes.client

MAX_BODY = 1024 * 1024


class ApiServer:
    """An in-memory kube-apiserver. Create with ``await ApiServer.start(...)``."""

    def __init__(
        self,
        *,
        name: str = "cluster",
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        event_window: int = 20_000,
        bookmark_interval: float = 5.0,
        namespace_controller: bool = True,
        request_log_limit: int = 100_000,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.tls = tls
        self.host = host
        self.port = port
        self.store = Store(window=event_window)
        self.registry = Registry()
        self.namespace_controller = namespace_controller
        self.api = ObjectApi(self.store, self.registry, clock=utc_now, bootstrap_namespace=self._bootstrap_namespace)
        self.auth = Authenticator()
        self.request_log: list[RequestRecord] = []
        self._request_log_limit = request_log_limit
        self._seed = seed
        self._bookmark_interval = bookmark_interval
        self._dir = Path(tempfile.mkdtemp(prefix=f"ray-syncer-{name}-"))
        self._ssl: ssl.SSLContext | None = None
        self._ca_pem: bytes | None = None
        self._ca_path: Path | None = None
        self._listener: asyncio.base_events.Server | None = None
        self._reopening: socket.socket | None = None  # bound and listening, not yet served
        self._outages = 0
        self._web: web.Server | None = None
        self._front: HttpFront | None = None
        self._faults: Faults | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -----------------------------------------------------------
    @classmethod
    async def start(
        cls,
        *,
        name: str = "cluster",
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> ApiServer:
        server = cls(name=name, tls=tls, host=host, port=port, **options)
        await server._start()
        return server

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.tls:
            from .tls import CertificateAuthority

            ca = CertificateAuthority(self._dir / "pki", hosts=[self.host])
            self._ssl = ca.server_context()
            self._ca_pem = ca.ca_pem
            self._ca_path = ca.ca_path
        self._faults = Faults(loop=self._loop, drop=self._drop_watches, compact=self._compact,
                              set_outage=self._set_outage, seed=self._seed)
        sock = self._bind()
        self.port = sock.getsockname()[1]
        self._front = HttpFront(api=self.api, store=self.store, registry=self.registry, auth=self.auth,
                                faults=self._faults, server_address=f"{self.host}:{self.port}",
                                request_log=self.request_log, log_limit=self._request_log_limit)
        self._front.bookmark_interval = self._bookmark_interval
        loop = self._loop

        def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
            # Bodies over 1 MiB get 413 (see docs/test-server.md: kube-apiserver allows 3 MiB, but
            # refuses ConfigMaps/Secrets over 1 MiB with 422; tests rely on the refusal).
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=MAX_BODY)

        self._web = web.Server(self._front.handle, request_factory=make_request, access_log=None)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._create_namespace(ns)
        self._listener = await self._loop.create_server(self._web, sock=sock, ssl=self._ssl, backlog=1024)

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.store.close_watchers(abort=True)
        if self._web is not None:
            # Idle keep-alive connections would hold shutdown for its whole timeout.
            for conn in list(self._web.connections):
                conn.close()
            await asyncio.sleep(0)
            await self._web.shutdown(timeout=0.5)
            self._web = None
        shutil.rmtree(self._dir, ignore_errors=True)

    async def __aenter__(self) -> ApiServer:
        if self._loop is None:
            await self._start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- fault actions (called on the loop by faults.py) -----------------------
    def _drop_watches(self, abrupt: bool) -> int:
        return self.store.close_watchers(abort=abrupt)

    def _compact(self) -> None:
        self.store.compact()
        self.api.compacted_at = self.store.revision + 1

    def _set_outage(self, down: bool) -> Coroutine[Any, Any, None] | None:
        """Close (or reopen) the listening socket; reopening returns the coroutine that does it."""
        assert self._front is not None and self._web is not None and self._loop is not None
        self._front.down = down
        self._outages += 1  # a reopening still on its way belongs to an older state
        if down:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self._reopening is not None:
                self._reopening.close()  # its serve() sees the newer generation and stops
                self._reopening = None
            self.store.close_watchers(abort=True)
            for conn in list(self._web.connections):
                if conn.transport is not None:
                    conn.transport.abort()
            return None
        if self._listener is not None or self._reopening is not None:
            return None
        web_server, generation = self._web, self._outages
        # Listen now: a client connecting before the loop runs serve() waits in the backlog
        # instead of being refused (outage(False) called on the server's own loop).
        sock = self._reopening = self._bind()

        async def serve() -> None:
            assert self._loop is not None
            if generation != self._outages or self._listener is not None:
                sock.close()
                if self._reopening is sock:
                    self._reopening = None
                return
            self._reopening = None
            listener = await self._loop.create_server(web_server, sock=sock, ssl=self._ssl,
                                                      backlog=1024)
            if generation != self._outages or self._listener is not None:
                listener.close()  # a newer outage began meanwhile
                return
            self._listener = listener

        return serve()

    # -- namespace controller ----------------------------------------------------
    def _create_namespace(self, name: str) -> None:
        if self.store.get(NS_KEY, "", name) is None:
            from .handlers import Target

            rt = self.registry.get("", "v1", "namespaces")
            assert rt is not None
            self.api.create(Target(rt, None), {"metadata": {"name": name}}, {}, user_agent="kube-apiserver/v1.31")

    def _bootstrap_namespace(self, namespace: str) -> None:
        """What kube-controller-manager adds to every new namespace."""
        if not self.namespace_controller:
            return
        from .handlers import Target

        cm = self.registry.get("", "v1", "configmaps")
        sa = self.registry.get("", "v1", "serviceaccounts")
        assert cm is not None and sa is not None
        ca = (self._ca_pem or b"").decode() or "-----BEGIN CERTIFICATE-----\n(no TLS)\n-----END CERTIFICATE-----\n"
        self.api.create(Target(cm, namespace), {"metadata": {"name": "kube-root-ca.crt",
                        "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to "
                                        "verify the kube-apiserver when using internal endpoints such as the "
                                        "internal service IP or kubernetes.default.svc. No other usage is "
                                        "guaranteed across distributions of Kubernetes clusters."}},
                        "data": {"ca.crt": ca}}, {}, user_agent="kube-controller-manager/v1.31")
        self.api.create(Target(sa, namespace), {"metadata": {"name": "default"}}, {},
                        user_agent="kube-controller-manager/v1.31")

    # -- client access -------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def admin_token(self) -> str:
        return self.auth.admin_token

    @property
    def faults(self) -> Faults:
        assert self._faults is not None, "server not started"
        return self._faults

    @property
    def bookmark_interval(self) -> float:
        return self._front.bookmark_interval if self._front else self._bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self._bookmark_interval = seconds
        if self._front is not None:
            self._front.bookmark_interval = seconds

    def add_user(self, token: str, *, user: str, allow: Allow | None = None) -> None:
        self.auth.add_user(token, user=user, allow=allow)

    def clear_log(self) -> None:
        self.request_log.clear()

    @property
    def ca_pem(self) -> bytes | None:
        return self._ca_pem

    def kubeconfig_dict(self, *, token: str | None = None, context: str | None = None) -> dict[str, Any]:
        cluster: dict[str, Any] = {"server": self.url}
        if self._ca_pem is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self._ca_pem).decode()
        ctx = context or self.name
        user = f"{self.name}-user" if token else f"{self.name}-admin"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": ctx, "context": {"cluster": self.name, "user": user}}],
            "current-context": ctx,
            "preferences": {},
        }

    def kubeconfig(self, *, token: str | None = None, context: str | None = None) -> str:
        return yaml.safe_dump(self.kubeconfig_dict(token=token, context=context), sort_keys=False)

    def write_kubeconfig(self, path: str | Path, *, token: str | None = None, context: str | None = None) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.kubeconfig(token=token, context=context))
        p.chmod(0o600)
        return p

    def configuration(self, *, token: str | None = None) -> kubernetes.client.Configuration:
        import kubernetes.client

        cfg = kubernetes.client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        if self.tls:
            cfg.ssl_ca_cert = str(self._ca_path)
            cfg.verify_ssl = True
        return cfg

    def __repr__(self) -> str:
        return f"ApiServer(name={self.name!r}, url={self.url!r})"
