"""Browser contexts (per-connection, shared), several sessions on one connection,
the HTTP routes of the page, and the CLI options."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from vroom_graphical import StateReceived
from vroomd.graphical import GraphicalConfig

from .conftest import Vroomd, needs_chromium, settle, start_vroomd
from .gclient import Peer

pytestmark = [needs_chromium, pytest.mark.browser, pytest.mark.timeout(120)]
module_loop = pytest.mark.asyncio(loop_scope="module")


async def _async(value: Any) -> Any:
    return value


@module_loop
async def test_shared_context_one_page_for_every_connection(pages: str) -> None:
    server = await start_vroomd(GraphicalConfig(browser_context="shared"))
    try:
        first = await Peer.connect(server.url(), viewport=(700, 500))
        await first.set_mode("voice")
        note = await first.command("navigate", url=f"{pages}/agent.html")
        assert note.type == "success"
        # A second person joins: same page, same size, same state.
        second = await Peer.connect(server.url(), viewport=(1000, 900))
        hello = second.client.handshake
        assert hello is not None and (hello.viewport.width, hello.viewport.height) == (700, 500)
        await second.wait_for(StateReceived, lambda e: e.state.title == "Agent test page")
        await second.set_mode("interact")
        second.do(second.client.mouse_down, 360, 60)
        second.do(second.client.mouse_up, 360, 60)
        await second.barrier()
        (screen,) = {s for s in server.screens()}
        await screen.idle()
        clicks = await settle(
            lambda: screen.page.evaluate("events.filter(e => e.type === 'click').length")
        )
        assert clicks == 1
        # Chat reaches everyone watching.
        second.do(second.client.chat, "hello from two")
        from vroom_graphical import ChatReceived

        relayed = await first.wait_for(ChatReceived, lambda e: e.text == "hello from two")
        assert relayed.role == "user"
        # The page outlives its viewers.
        await first.close()
        await second.close()
        await settle(lambda: _async(server.hub.viewers == 0))
        third = await Peer.connect(server.url())
        await third.wait_for(StateReceived, lambda e: e.state.title == "Agent test page")
        await third.close()
    finally:
        await server.daemon.close()


@module_loop
async def test_two_sessions_on_one_connection_get_two_pages(vroomd: Vroomd, pages: str) -> None:
    from vroom_graphical import GraphicalClient, HandshakeDone, Viewport

    first = await Peer.connect(vroomd.url())
    try:
        # A second session (#2) on the same connection: its own page.
        second = GraphicalClient(
            first.session.connection, viewport=Viewport(640, 480), session="#2"
        )
        first.add_client(second)
        first.do(lambda: None)
        await first.wait_for(HandshakeDone, lambda e: e.session == "#2")
        await first.set_mode("voice")
        second.set_mode("voice")
        first.flush()
        await first.wait_for(StateReceived, lambda e: e.session == "#2" and e.state.mode == "voice")
        second.navigate(f"{pages}/second.html")
        first.flush()
        await first.command("navigate", url=f"{pages}/agent.html")
        await first.wait_for(
            StateReceived, lambda e: e.session == "#2" and e.state.title == "Second page"
        )
        titles = {s.page.url.rsplit("/", 1)[1] for s in vroomd.screens()}
        assert titles == {"agent.html", "second.html"}
    finally:
        await first.close()
    await settle(lambda: _async(not vroomd.hub.services))


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@module_loop
async def test_http_routes_serve_the_page_and_nothing_else(vroomd: Vroomd) -> None:
    base = f"http://127.0.0.1:{vroomd.port}"
    status, headers, body = await asyncio.to_thread(_get, base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="/static/app.js"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for path in ("/static/app.js", "/static/vroom.js", "/static/input.js", "/static/openmux.js"):
        status, headers, _ = await asyncio.to_thread(_get, base + path)
        assert status == 200 and headers["Content-Type"].startswith("text/javascript"), path
    for path in ("/static/../service.py", "/static/%2e%2e/service.py", "/static/", "/etc/passwd"):
        status, _, _ = await asyncio.to_thread(_get, base + path)
        assert status == 404, path


def _vroomd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vroomd.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_cli_options() -> None:
    help_text = _vroomd("--help").stdout
    for option in ("--allow-evaluate", "--allow-scheme", "--browser-context", "--chromium"):
        assert option in help_text
    bad = _vroomd("--no-auth", "--allow-scheme", "not a scheme")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "vroomd: --allow-scheme 'not a scheme': not a URL scheme"
    ]
    missing = _vroomd("--no-auth", "--chromium", "/nonexistent/chromium")
    assert missing.returncode == 2
    assert "--chromium /nonexistent/chromium: not an executable file" in missing.stderr
    context = _vroomd("--no-auth", "--browser-context", "global")
    assert context.returncode == 2 and "invalid choice" in context.stderr
