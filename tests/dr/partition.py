"""A network partition between one client and one API server: a TCP forwarder that can be cut.

Why: the emergency-failover-through-a-partition scenario needs the old
active's operator cut off from the standby while the person on call can
still reach the standby and promote it. ``faults.outage`` on the server cuts
everyone, so the old active's kubeconfig points at this forwarder instead:
``cut()`` severs its open connections and refuses new ones (connection
refused, like an outage), ``heal()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class Partition:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._scheme = parts.scheme
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def heal(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


async def linked(kubeconfig: str, server: str) -> tuple[Partition, str]:
    """A started link to ``server`` and ``kubeconfig`` rewritten to go through it.

    "The cluster is down" for whoever holds that kubeconfig is ``cut()``: the same
    mechanism on the in-memory server and on a real apiserver shared with other tests.
    """
    link = Partition(server)
    await link.start()
    through = kubeconfig.replace(server, link.url)
    if link.url not in through:
        raise AssertionError(f"{server} is not in the kubeconfig")
    return link, through
