"""Debian's headless chromium, driven over the DevTools protocol (aiohttp's websocket client).

Why not ``--screenshot`` alone: the Ray dashboard is a JavaScript app that fills its tables
from its HTTP API after load; over the protocol the test waits until the page really shows
what it expects, reads the rendered text, and only then takes the screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-port=0",
)  # fmt: skip


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, proc: subprocess.Popen[bytes], ws: Any, session: aiohttp.ClientSession) -> None:
        self.proc, self.ws, self.session = proc, ws, session
        self._ids = itertools.count(1)

    @classmethod
    async def start(cls, profile: Path, *, width: int = 1600, height: int = 1000) -> Browser:
        binary = chromium()
        assert binary is not None
        profile.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=(profile / "chromium.log").open("wb"),
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None, (profile / "chromium.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        session = aiohttp.ClientSession()
        async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in await r.json() if t.get("type") == "page"]
        ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        return cls(proc, ws, session)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), timeout=60)
            if msg.get("id") == ident:
                assert "error" not in msg, msg["error"]
                return dict(msg.get("result") or {})

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def text(self) -> str:
        result = await self.call(
            "Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
            returnByValue=True,
        )  # fmt: skip
        return str(result.get("result", {}).get("value") or "")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.session.close()
        self.proc.kill()
        self.proc.wait(timeout=10)
