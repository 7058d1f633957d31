"""Real Chromiums around `vroomd.media`: the agent's page and the person's peer.

The agent: a Playwright page showing bench/_media_pages.py's clock page,
its CDP screencast feeding a `MediaPeer` (as vroomd's screen does). The
person: a second Chromium page at http://localhost/ (a secure context, so
getUserMedia works with the fake microphone) running client_page.js; the
offer and answer travel through page.evaluate(), so these tests need no
signaling server (vroomd's own signaling is tested in test_vroomd_*.py).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import sys
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import unpack_header_extensions
from openmux.aio.webrtc import _reachable_sdp, ice_hosts
from vroomd.media import MediaConfig, MediaPeer, VoicePipeline, resources

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "bench"))

from _media_pages import AGENT_PAGE, CHROMIUM_ARGS, GREY, GREY_BOX, MAGENTA_BOX  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LOOPBACK = ["127.0.0.1"]
CLIENT_HTML = "<!doctype html><html><body><script src='/client_page.js'></script></body></html>"

__all__ = [
    "AGENT_PAGE",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "GREY",
    "GREY_BOX",
    "MAGENTA_BOX",
    "Agent",
    "answer",
    "eventually",
    "open_person",
    "rtp_extensions",
    "settled_resources",
]


async def eventually(check: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `check()` (sync or async) until truthy; its last value, or AssertionError."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


class Agent:
    """The agent's page and its screencast, fanned out to whoever listens."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.cdp: Any = None
        self.sinks: list[Any] = []
        self.frames = 0
        self._acks: set[asyncio.Future[Any]] = set()

    @classmethod
    async def open(cls, browser: Any, width: int = 1280, height: int = 720) -> Agent:
        page = await browser.new_page(viewport={"width": width, "height": height})
        await page.set_content(AGENT_PAGE)
        agent = cls(page)
        agent.cdp = await page.context.new_cdp_session(page)
        agent.cdp.on("Page.screencastFrame", agent._frame)
        await agent._start(width, height)
        return agent

    async def _start(self, width: int, height: int) -> None:
        await self.cdp.send(
            "Page.startScreencast",
            {"format": "jpeg", "quality": 70, "maxWidth": width, "maxHeight": height},
        )

    def _frame(self, params: dict[str, Any]) -> None:
        ack = asyncio.ensure_future(
            self.cdp.send("Page.screencastFrameAck", {"sessionId": params["sessionId"]})
        )
        self._acks.add(ack)
        ack.add_done_callback(self._ack_done)
        jpeg = base64.b64decode(params["data"])
        self.frames += 1
        for sink in list(self.sinks):
            sink(jpeg)

    def _ack_done(self, ack: asyncio.Future[Any]) -> None:
        # An ack in flight when the page closes fails; that is expected.
        self._acks.discard(ack)
        if not ack.cancelled():
            ack.exception()

    async def resize(self, width: int, height: int) -> None:
        await self.page.set_viewport_size({"width": width, "height": height})
        await self.cdp.send("Page.stopScreencast")
        await self._start(width, height)

    async def close(self) -> None:
        await self.page.close()


async def open_person(browser: Any) -> Any:
    """A fresh page of the person's browser at http://localhost/ with client_page.js."""
    page = await browser.new_page()
    script = (HERE / "client_page.js").read_text()

    async def route(route: Any) -> None:
        if route.request.url.endswith("/client_page.js"):
            await route.fulfill(body=script, content_type="text/javascript")
        else:
            await route.fulfill(body=CLIENT_HTML, content_type="text/html")

    await page.route("http://localhost/**", route)
    await page.goto("http://localhost/")
    return page


async def answer(
    person: Any,
    config: MediaConfig | None = None,
    voice: VoicePipeline | None = None,
    **opts: Any,
) -> tuple[RTCPeerConnection, MediaPeer]:
    """Offer from the person's page, a `MediaPeer` answers, loopback ICE."""
    sdp = await person.evaluate("(opts) => rtc.start(opts)", opts)
    pc = RTCPeerConnection()
    media = MediaPeer(pc, config, voice=voice)
    await media.start()
    await pc.setRemoteDescription(RTCSessionDescription(_reachable_sdp(sdp, LOOPBACK), "offer"))
    with ice_hosts(LOOPBACK):
        await pc.setLocalDescription(await pc.createAnswer())
    await person.evaluate("(sdp) => rtc.answer(sdp)", pc.localDescription.sdp)
    return pc, media


async def settled_resources(baseline_tasks: int, timeout: float = 20.0) -> dict[str, int]:
    """Wait until every media object is gone and the task count is back to the baseline."""

    def check() -> dict[str, int] | None:
        gc.collect()
        now = dict(resources(), tasks=len(asyncio.all_tasks()))
        done = not any(v for k, v in now.items() if k != "tasks")
        return now if done and now["tasks"] <= baseline_tasks else None

    try:
        return await eventually(check, timeout)
    except AssertionError:
        gc.collect()
        left = dict(resources(), tasks=len(asyncio.all_tasks()))
        names = sorted(t.get_coro().__qualname__ for t in asyncio.all_tasks())
        raise AssertionError(f"media resources left: {left}, tasks {names}") from None


def rtp_extensions(packet: bytes) -> list[tuple[int, bytes]]:
    """The header extension elements (id, value) of a plain RTP packet."""
    if not packet[0] & 0x10:
        return []
    at = 12 + 4 * (packet[0] & 0x0F)
    profile = int.from_bytes(packet[at : at + 2], "big")
    length = 4 * int.from_bytes(packet[at + 2 : at + 4], "big")
    return unpack_header_extensions(profile, packet[at + 4 : at + 4 + length])
