"""openmux.js in real Chromium against the Python server, over WebSocket and WebRTC.

A page server on 127.0.0.1 serves the test page and scenario.js; the page
imports openmux.js from the OpenMux server itself (`GET /openmux.js` of the
WebRTC signaling listener, cross-origin, so CORS is exercised too) and runs
the scenarios of scenario.js. Everything listens on and talks to 127.0.0.1:
both ICE agents are pinned to it (the server with `ice_hosts`, Chromium by
the loopback flags and no STUN server).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openmux.aio as aio
import pytest
import pytest_asyncio
from openmux import ChannelSpec
from openmux.aio import _http
from openmux.aio.static import CONTENT_TYPE, script
from openmux.aio.webrtc import DataChannelSink, WebRTCListener

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
TOKEN = "browser-secret"
HERE = Path(__file__).resolve().parent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium"),
]


def policy(spec: ChannelSpec) -> int | None:
    return 4000 if spec.name.startswith("deny") else None


class App:
    """The server side: echo channels, and `ctl` commands (open, channels, bye)."""

    def __init__(self) -> None:
        self.sessions: list[aio.Session] = []
        self.datachannels: dict[str, tuple[str, str, bool, int | None]] = {}
        """channel name -> (label, protocol, ordered, maxRetransmits) of its DataChannel"""

    async def handler(self, session: aio.Session) -> None:
        self.sessions.append(session)
        tasks: set[asyncio.Task[None]] = set()

        def start(channel: aio.Channel) -> None:
            task = asyncio.get_running_loop().create_task(self.serve(session, channel, start))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        for channel in list(session.channels.values()):
            start(channel)
        try:
            while True:
                start(await session.accept())
        except aio.SessionClosedError:
            pass
        finally:
            for task in tasks:
                task.cancel()

    async def serve(self, session: aio.Session, channel: aio.Channel, start: Any) -> None:
        if not channel.name.startswith("ctl"):
            async for message in channel:
                sink = session.sink
                if isinstance(sink, DataChannelSink) and channel.id in sink.datachannels:
                    dc = sink.datachannels[channel.id]
                    self.datachannels[channel.name] = (
                        dc.label,
                        dc.protocol,
                        dc.ordered,
                        dc.maxRetransmits,
                    )
                await channel.send(message.type, message.data)
            return
        async for message in channel:
            cmd = json.loads(message.data)
            if cmd["op"] == "open":
                opened = await session.open_channel(cmd["name"])
                start(opened)
                reply: dict[str, Any] = {"ok": True, "id": opened.id}
            elif cmd["op"] == "channels":
                reply = {"channels": sorted(session.channels)}
            elif cmd["op"] == "bye":
                await session.close(cmd["code"], cmd["reason"])
                return
            else:
                reply = {"ok": False}
            await channel.send(3, json.dumps(reply).encode())


class Harness:
    def __init__(self, page: Any, app: App, server: aio.Server) -> None:
        self.page = page
        self.app = app
        self.server = server

    @property
    def ws(self) -> str:
        return self.server.url("ws")

    @property
    def webrtc(self) -> str:
        return self.server.url("webrtc+http")

    async def run(self, scenario: str, url: str, **options: Any) -> Any:
        return await self.page.evaluate(
            "([name, url, options]) => window.run(name, url, options)", [scenario, url, options]
        )


async def page_server(signaling: str = "") -> asyncio.Server:
    """The test page; it imports `<signaling>/openmux.js` (this server's own if "")."""
    page = (
        '<!doctype html><meta charset="utf-8"><title>openmux.js</title><script type="module">'
        f'import * as omux from "{signaling}/openmux.js";'
        'import * as scenarios from "/scenario.js";'
        "window.run = (name, url, options) => scenarios[name](omux, url, options);"
        "window.ready = true;</script>"
    ).encode()
    scenario_js = (HERE / "scenario.js").read_bytes()

    async def handle(request: _http.Request) -> _http.Response:
        if request.path == "/":
            return _http.Response(200, page, "text/html; charset=utf-8")
        if request.path == "/scenario.js":
            return _http.Response(200, scenario_js, "text/javascript")
        if request.path == "/openmux.js":
            return _http.Response(200, script(), CONTENT_TYPE)
        return _http.Response.text(404)

    return await _http.start_server(handle, "127.0.0.1", 0)


async def open_page(browser: Any, origin: str, messages: list[str]) -> Any:
    page = await browser.new_page()
    page.on("console", lambda m: messages.append(m.text))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    await page.goto(origin + "/")
    await page.wait_for_function("window.ready === true", timeout=30_000)
    return page


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def webrtc_listener(server: aio.Server) -> WebRTCListener:
    for listener in server.listeners:
        if isinstance(listener, WebRTCListener):
            return listener
    raise LookupError("no WebRTC listener")


async def _harness(browser: Any, **server_options: Any) -> AsyncIterator[Harness]:
    app = App()
    options = {"ice_hosts": ["127.0.0.1"], "token": TOKEN, "channel_policy": policy}
    options.update(server_options)
    server = await aio.serve(
        app.handler, ["ws://127.0.0.1:0/omux", "webrtc+http://127.0.0.1:0"], **options
    )
    signaling = server.url("webrtc+http").replace("webrtc+", "")
    pages = await page_server(signaling)
    origin = f"http://127.0.0.1:{pages.sockets[0].getsockname()[1]}"
    # the page server's port is known only now: allow it as a CORS origin
    webrtc_listener(server).cors_origins = (origin,)
    messages: list[str] = []
    page = await open_page(browser, origin, messages)
    try:
        yield Harness(page, app, server)
    finally:
        await page.close()
        pages.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
        print("\n".join(messages))


@pytest_asyncio.fixture(loop_scope="module")
async def harness(browser: Any) -> AsyncIterator[Harness]:
    async for h in _harness(browser):
        yield h


@pytest.mark.parametrize("transport", ["ws", "webrtc"])
async def test_echo_channels_ping_close(harness: Harness, transport: str) -> None:
    url = harness.ws if transport == "ws" else harness.webrtc
    out = await harness.run("echo", url, token=TOKEN)
    assert out["kind"] == ("websocket" if transport == "ws" else "webrtc")
    assert out["granted"] == ["ctl", "echo"]
    assert out["small"] == [1, "hello"]
    assert out["large"] == [9, 300000, True]
    assert out["unreliable"][1] == "datagram-ish"
    assert out["serverOpened"] == [True, "from-server", True, "server-opened"]
    assert out["rejected"] == ["ChannelRejectedError", 4000]
    assert "dyn-unreliable" not in out["channelsAfterClose"]
    assert out["rtt"] >= 0
    assert out["closed"] == {"code": 1000, "reason": "", "byPeer": False}

    session = harness.app.sessions[-1]
    await asyncio.wait_for(session.wait_closed(), 10)
    assert session.close_code == 1000
    assert session.hello is not None and session.hello["application"] == "browser-test/1"
    if transport == "webrtc":
        assert session.transport_info["transport"] == "webrtc"
        assert out["maxMessageSize"] == 65535  # Chromium's 256 KiB SCTP limit leaves it alone
        # one DataChannel per channel: the browser made those it asked for, the
        # server the one it opened
        assert harness.app.datachannels == {
            "echo": ("omux/echo", "openmux/0.1", True, None),
            "dyn-unreliable": ("omux/dyn-unreliable", "openmux/0.1", False, 0),
            "from-server": ("omux/from-server", "openmux/0.1", True, None),
        }


@pytest.mark.parametrize("transport", ["ws", "webrtc"])
async def test_wrong_token_refused(harness: Harness, transport: str) -> None:
    url = harness.ws if transport == "ws" else harness.webrtc
    out = await harness.run("refused", url, token="wrong")
    assert out == {"ok": False, "name": "HandshakeError", "code": 4000}


async def test_bad_bearer_on_the_offer_is_http_401(harness: Harness) -> None:
    out = await harness.run("refused", harness.webrtc, token="wrong", bearer=True)
    assert out == {"ok": False, "name": "HandshakeError", "code": 4000}
    # no fallback either: every transport would refuse the same token
    out = await harness.run(
        "refused", harness.webrtc, token="wrong", bearer=True, fallback=harness.ws
    )
    assert out["code"] == 4000


async def test_fallback_when_signaling_is_unreachable(harness: Harness) -> None:
    # a port nothing listens on (the page server's neighbour is not guaranteed: bind and close)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = await harness.run(
        "which", f"webrtc+http://127.0.0.1:{port}", token=TOKEN, fallback=harness.ws
    )
    assert out["kind"] == "websocket" and out["echoed"] == "ping"


async def test_fallback_after_rtc_timeout_without_an_open_datachannel(browser: Any) -> None:
    # The server answers offers but has no ICE candidate at all: no DataChannel
    # can ever open, so the browser falls back once `rtcTimeout` has passed.
    async for harness in _harness(browser, ice_hosts=[]):
        out = await harness.run(
            "which", harness.webrtc, token=TOKEN, fallback=harness.ws, rtcTimeout=1
        )
        assert out["kind"] == "websocket" and out["echoed"] == "ping"
        assert len(webrtc_listener(harness.server).peers) == 1  # WebRTC was tried first


@pytest.mark.parametrize("transport", ["ws", "webrtc"])
async def test_server_close_reaches_the_browser(harness: Harness, transport: str) -> None:
    url = harness.ws if transport == "ws" else harness.webrtc
    out = await harness.run("closedByServer", url, token=TOKEN)
    assert out["closed"] == {"code": 4321, "reason": "go away", "byPeer": True}
    assert out["sendError"] is not None


async def test_fallback_when_signaling_hangs(harness: Harness) -> None:
    """A signaling server that accepts the offer and never answers: the browser
    gives up at `rtcTimeout` and falls back."""
    hung: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)
        await reader.read(1 << 16)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        out = await harness.run(
            "which",
            f"webrtc+http://127.0.0.1:{port}",
            token=TOKEN,
            fallback=harness.ws,
            rtcTimeout=1,
        )
        assert out["kind"] == "websocket" and out["echoed"] == "ping"
        assert hung  # the offer did reach it
    finally:
        for writer in hung:
            writer.close()
        server.close()
