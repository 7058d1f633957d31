"""vroomd over WebRTC with vroomd's own page in a real Chromium (the person's browser).

One vroomd in-process per module (shared agent screen, so connections are
cheap), its agent Chromium on the test page pages/target.html. The page
connects with WebRTC first: signaling on vroomd's WebSocket port with the
token as a Bearer header, the screen as H264, the agent's voice as Opus,
the OpenMux DataChannels for control and input; then the fallback with UDP
blocked for the person's Chromium.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from openmux.aio import _http
from vroomd.daemon import Daemon, DaemonConfig
from vroomd.graphical import GraphicalConfig
from vroomd.media import resources
from vroomd.webrtc import WebRTCConfig

from .webrtc_harness import CHROMIUM, CHROMIUM_ARGS, eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

TOKEN = "webrtc-test-token"
PAGES = Path(__file__).resolve().parent / "pages"
MAGENTA = (500, 260)  # the centre of #magenta in the agent's page (CSS px)
BUTTON = (140, 90)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(PAGES))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def vroomd() -> AsyncIterator[tuple[Daemon, int]]:
    config = GraphicalConfig(chromium=CHROMIUM, browser_context="shared")
    daemon = Daemon(DaemonConfig(token=TOKEN, graphical=config))
    urls = await daemon.listen("ws://127.0.0.1:0")
    port = int(urls[0].rsplit(":", 1)[1].split("/")[0])
    yield daemon, port
    await daemon.close()


async def open_page(browser: Any, port: int, query: str = "") -> Any:
    page = await browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    await page.goto(f"http://127.0.0.1:{port}/{query}#token={TOKEN}")
    await page.wait_for_function("window.vroom && window.vroom.path", timeout=30_000)
    return page


async def show_target(page: Any, pages: str) -> None:
    """Navigate the agent to the test page (NAVIGATE needs interact or voice mode)."""
    await page.evaluate("vroom.client.setMode('interact')")
    await page.wait_for_function("vroom.client.mode === 'interact'", timeout=20_000)
    await page.evaluate("(url) => vroom.client.navigate(url)", f"{pages}/target.html")
    await eventually(
        lambda: page.evaluate(
            "vroom.client.state && /^(ready|clicked)/.test(vroom.client.state.title)"
        )
    )


async def rtc_stats(page: Any) -> dict[str, Any]:
    return await page.evaluate(
        """async () => {
          const out = {};
          (await vroom.pc.getStats()).forEach((s) => {
            if (s.type === "inbound-rtp") out[s.kind] = {
              frames: s.framesDecoded || 0, packets: s.packetsReceived || 0,
              width: s.frameWidth || 0,
            };
          });
          return out;
        }"""
    )


async def video_pixel(page: Any, x: int, y: int) -> list[int] | None:
    """The <video>'s pixel at agent CSS coordinates (x, y)."""
    return await page.evaluate(
        """([x, y]) => {
          const v = document.getElementById("rtcvideo"), agent = vroom.client.agent;
          if (!v.videoWidth || !agent) return null;
          const c = document.createElement("canvas");
          c.width = v.videoWidth; c.height = v.videoHeight;
          const ctx = c.getContext("2d");
          ctx.drawImage(v, 0, 0);
          const s = v.videoWidth / agent.width;
          const p = ctx.getImageData(Math.round(x * s), Math.round(y * s), 1, 1).data;
          return [p[0], p[1], p[2]];
        }""",
        [x, y],
    )


async def test_the_page_runs_on_webrtc(
    browser: Any, vroomd: tuple[Daemon, int], pages: str
) -> None:
    daemon, port = vroomd
    page = await open_page(browser, port)
    try:
        assert await page.evaluate("vroom.path") == "WebRTC"
        assert "WebRTC" in await page.text_content("#status")
        await show_target(page, pages)
        # The screen arrives as H264 and shows the agent's page.
        await eventually(lambda: _frames(page, 30))
        assert (await page.evaluate("vroom.stats.frames")) == 0  # no JPEG over the DataChannels
        codec = await page.evaluate(
            """async () => { let m = null; (await vroom.pc.getStats()).forEach((s) => {
                 if (s.type === "codec" && /video/.test(s.mimeType)) m = s.mimeType; });
               return m; }"""
        )
        assert codec == "video/H264"
        await eventually(lambda: _pixel_is(page, MAGENTA, (255, 0, 255)))
        # The agent's voice track flows (silence until it speaks).
        await eventually(lambda: _audio_packets(page, 20))
        [media] = list(daemon.webrtc.peers)
        assert media.codec == "H264" and media.speaker is not None
        # Input over the DataChannels: interact mode, a click on the video lands on the button.
        await page.evaluate("vroom.client.setMode('interact')")
        await page.wait_for_function("vroom.client.inputReady", timeout=20_000)
        x, y = await page.evaluate(
            """([x, y]) => { const r = document.getElementById("screen").getBoundingClientRect();
                 const a = vroom.client.agent;
                 return [r.left + x * r.width / a.width, r.top + y * r.height / a.height]; }""",
            list(BUTTON),
        )
        await page.mouse.click(x, y)
        [screen] = [v.screen for svc in daemon.graphical.services for v in svc.viewers.values()]
        await eventually(lambda: screen.page.evaluate("window.clicks === 1"))
        # Voice mode: the page sends its (fake) microphone; the pipeline hears it.
        await page.evaluate("vroom.client.setMode('voice')")
        voice = media.voice
        assert voice is not None
        await eventually(lambda: voice.seconds > 0.5 and voice.peak_dbfs > -40)
    finally:
        await page.close()
    await eventually(lambda: not daemon.webrtc.peers)


async def test_offer_with_a_bad_token_is_refused(vroomd: tuple[Daemon, int]) -> None:
    _, port = vroomd
    body = json.dumps(
        {"type": "offer", "sdp": "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"}
    )
    for headers, status in (({"Authorization": "Bearer nope"}, 401), ({}, 401)):
        got, _ = await _http.request(
            "POST", f"http://127.0.0.1:{port}/omux/vroom/offer", body.encode(), headers=headers
        )
        assert got == status


async def test_twenty_connections_release_everything(
    browser: Any, vroomd: tuple[Daemon, int], pages: str
) -> None:
    daemon, port = vroomd
    page = await open_page(browser, port)  # warm the shared screen
    await show_target(page, pages)
    await page.close()
    await eventually(lambda: not daemon.webrtc.peers)
    baseline = len(asyncio.all_tasks())
    for i in range(20):
        page = await open_page(browser, port)
        assert await page.evaluate("vroom.path") == "WebRTC"
        await eventually(lambda page=page: _frames(page, 1))
        if i % 2:
            await page.evaluate("vroom.client.close()")
        await page.close()
    await eventually(lambda: not daemon.webrtc.peers and daemon.graphical.viewers == 0)

    def settled() -> bool:
        gc.collect()
        left = resources()
        return not any(left.values()) and len(asyncio.all_tasks()) <= baseline

    try:
        await eventually(settled, timeout=30)
    except AssertionError:
        names = sorted(t.get_coro().__qualname__ for t in asyncio.all_tasks())
        raise AssertionError(f"left: {resources()}, tasks: {names}") from None


async def test_without_udp_the_page_falls_back_to_websocket(
    vroomd: tuple[Daemon, int], pages: str
) -> None:
    from playwright.async_api import async_playwright

    _, port = vroomd
    async with async_playwright() as p:
        blocked = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, "--force-webrtc-ip-handling-policy=disable_non_proxied_udp"],
        )
        try:
            page = await blocked.new_page(bypass_csp=True)
            # No UDP path at all: relay-only ICE with no TURN server gathers
            # nothing, as on a network that drops UDP (the Chromium flag
            # alone still lets loopback candidates through).
            await page.add_init_script(NO_UDP)
            await page.goto(f"http://127.0.0.1:{port}/#token={TOKEN}")
            await page.wait_for_function("window.vroom && window.vroom.path", timeout=40_000)
            assert await page.evaluate("vroom.path") == "WebSocket"
            assert await page.evaluate("vroom.pc.connectionState") != "connected"
            assert "WebSocket" in await page.text_content("#status")
            await show_target(page, pages)
            await eventually(lambda: page.evaluate("vroom.stats.decoded > 0"))
        finally:
            await blocked.close()


async def test_with_webrtc_off_the_page_uses_websocket(browser: Any) -> None:
    """`vroomd --no-webrtc`: no signaling, so the page's offer is refused and
    it falls back to the WebSocket path."""
    config = GraphicalConfig(chromium=CHROMIUM, browser_context="shared")
    daemon = Daemon(DaemonConfig(token=TOKEN, graphical=config, webrtc=WebRTCConfig(enabled=False)))
    urls = await daemon.listen("ws://127.0.0.1:0")
    port = int(urls[0].rsplit(":", 1)[1].split("/")[0])
    try:
        page = await browser.new_page(bypass_csp=True)
        await page.goto(f"http://127.0.0.1:{port}/#token={TOKEN}")
        await page.wait_for_function("window.vroom && window.vroom.path", timeout=30_000)
        assert await page.evaluate("vroom.path") == "WebSocket"
        assert not daemon.webrtc.peers
        await page.close()
    finally:
        await daemon.close()


# ------------------------------------------------------------------ helpers

NO_UDP = """(() => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (config = {}) {
    return new Native({ ...config, iceTransportPolicy: "relay", iceServers: [] });
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();"""


async def _frames(page: Any, at_least: int) -> bool:
    video = (await rtc_stats(page)).get("video")
    return bool(video) and video["frames"] >= at_least


async def _audio_packets(page: Any, at_least: int) -> bool:
    audio = (await rtc_stats(page)).get("audio")
    return bool(audio) and audio["packets"] >= at_least


async def _pixel_is(page: Any, at: tuple[int, int], colour: tuple[int, int, int]) -> bool:
    pixel = await video_pixel(page, *at)
    return pixel is not None and all(abs(a - b) <= 40 for a, b in zip(pixel, colour, strict=True))
