"""ThreadedApiServer: an ApiServer for synchronous code.

The server runs its own event loop in a daemon thread, so synchronous tests
(the official ``kubernetes`` client), Ray actors in other processes (through
the kubeconfig: it is a real socket) and the ``dev-cluster`` command can use
it. Attributes mirror :class:`~.server.ApiServer`; ``faults`` is the same
thread-aware object, and :meth:`stop` blocks until the server is down.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .auth import Allow
from .faults import Faults
from .http import RequestRecord
from .server import ApiServer

if TYPE_CHECKING:
    import kubernetes.client


class ThreadedApiServer:
    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: ApiServer | None = None
        self._thread = threading.Thread(target=self._run, args=(options,), daemon=True,
                                        name=f"apiserver-{options.get('name', 'cluster')}")
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        if self._server is None:
            raise RuntimeError("the API server did not start within 30s")

    def _run(self, options: dict[str, Any]) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(ApiServer.start(**options))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    @property
    def server(self) -> ApiServer:
        assert self._server is not None
        return self._server

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(server, ...)`` on the server's loop (sync or async fn) and return its result."""
        async def run() -> Any:
            result = fn(self.server, *args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=60)

    def stop(self) -> None:
        if not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> ThreadedApiServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- the ApiServer surface -------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def admin_token(self) -> str:
        return self.server.admin_token

    @property
    def faults(self) -> Faults:
        return self.server.faults

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.server.request_log

    @property
    def ca_pem(self) -> bytes | None:
        return self.server.ca_pem

    @property
    def bookmark_interval(self) -> float:
        return self.server.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self.server.bookmark_interval = seconds

    def clear_log(self) -> None:
        self.server.clear_log()

    def add_user(self, token: str, *, user: str, allow: Allow | None = None) -> None:
        self.server.add_user(token, user=user, allow=allow)

    def kubeconfig(self, *, token: str | None = None, context: str | None = None) -> str:
        return self.server.kubeconfig(token=token, context=context)

    def kubeconfig_dict(self, *, token: str | None = None, context: str | None = None) -> dict[str, Any]:
        return self.server.kubeconfig_dict(token=token, context=context)

    def write_kubeconfig(self, path: str | Path, *, token: str | None = None, context: str | None = None) -> Path:
        return self.server.write_kubeconfig(path, token=token, context=context)

    def configuration(self, *, token: str | None = None) -> kubernetes.client.Configuration:
        return self.server.configuration(token=token)

    def __repr__(self) -> str:
        return f"ThreadedApiServer(name={self.name!r}, url={self.url!r})"


def start_in_thread(**options: Any) -> ThreadedApiServer:
    """Start an :class:`ApiServer` on its own loop in a daemon thread (same options as ApiServer.start)."""
    return ThreadedApiServer(**options)
