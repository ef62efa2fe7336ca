"""The operator's one HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz`` (aiohttp).

Why it exists: Prometheus scrapes one place for every shard's metrics, whichever
process (actor) the shard runs in. Host actors ship snapshots of their
``ray_syncer.metrics.REGISTRY`` to the supervisor; the operator feeds them to a
``MergedCollector`` (which also includes this process's own registry, e.g.
``krmsyncer_shards``) and this server renders it. Ray's own metrics export
(port 8080) and dashboard are separate and unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector


class HttpServer:
    def __init__(
        self,
        *,
        port: int,
        host: str = "0.0.0.0",
        collector: Collector,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
    ) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(collector)
        self._healthy = healthy
        self._ready = ready
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self._healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unhealthy\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok = self._ready()
        return web.Response(status=200 if ok else 503, text="ready\n" if ok else "not ready\n")

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
