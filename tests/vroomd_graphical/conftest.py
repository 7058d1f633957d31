"""Fixtures: vroomd in-process (its agent Chromium via Playwright), test pages on
127.0.0.1, and the person's Chromium (another Playwright browser).

Each test module gets one vroomd and one agent browser (module-scoped, on the
module's event loop), so a test costs a page, not a browser launch.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from vroomd.daemon import Daemon, DaemonConfig
from vroomd.graphical import GraphicalConfig

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "graphical-test-token"
PAGES = Path(__file__).resolve().parent / "pages"

needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def pages() -> Iterator[str]:
    """Base URL of the test pages (a real HTTP server on 127.0.0.1)."""
    handler = functools.partial(_QuietHandler, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Vroomd:
    daemon: Daemon
    port: int

    @property
    def hub(self) -> Any:
        return self.daemon.graphical

    def url(self, token: str | None = TOKEN) -> str:
        query = f"?token={token}" if token is not None else ""
        return f"ws://127.0.0.1:{self.port}/omux/vroom{query}"

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/#token={TOKEN}"

    def screens(self) -> list[Any]:
        return [
            viewer.screen
            for service in self.hub.services
            for viewer in service.viewers.values()
            if viewer.screen is not None
        ]

    def screen(self) -> Any:
        screens = self.screens()
        assert len(screens) == 1, f"expected one screen, found {len(screens)}"
        return screens[0]

    async def agent(self, expression: str, arg: Any = None) -> Any:
        """Evaluate in the agent's page once its input queue is drained."""
        screen = self.screen()
        await screen.idle()
        await screen.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
        return await screen.page.evaluate(expression, arg)


async def start_vroomd(config: GraphicalConfig | None = None, token: str | None = TOKEN) -> Vroomd:
    daemon = Daemon(DaemonConfig(token=token, graphical=config or GraphicalConfig()))
    urls = await daemon.listen("ws://127.0.0.1:0")
    port = int(urls[0].rsplit(":", 1)[1].split("/")[0])
    return Vroomd(daemon, port)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def vroomd() -> AsyncIterator[Vroomd]:
    server = await start_vroomd()
    yield server
    await server.daemon.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def person() -> AsyncIterator[Any]:
    """The person's browser (a second, separate Chromium)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        yield browser
        await browser.close()


async def settle(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll an async predicate until truthy (no timing assertion: a deadline)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(interval)
