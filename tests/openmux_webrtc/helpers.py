"""Helpers of the WebRTC binding tests: servers on 127.0.0.1 (ICE pinned to it)
with an echo handler, and a raw aiortc peer that speaks frames by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import openmux.aio as aio
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from openmux import decode_message
from openmux.aio import _http, webrtc
from openmux.testing import echo_handler

LOOPBACK = ["127.0.0.1"]
PATIENCE = 20.0  # hang protection only, never asserted on


@asynccontextmanager
async def webrtc_server(
    handler: Callable[[aio.Session], Any] = echo_handler, url: str = "", **options: Any
) -> AsyncIterator[aio.Server]:
    options.setdefault("ice_hosts", LOOPBACK)
    server = await aio.serve(handler, [url or "webrtc+http://127.0.0.1:0"], **options)
    try:
        yield server
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), PATIENCE)


def listener_of(server: aio.Server) -> webrtc.WebRTCListener:
    (listener,) = server.listeners
    assert isinstance(listener, webrtc.WebRTCListener)
    return listener


def http_base(server: aio.Server) -> str:
    return server.urls[0].replace("webrtc+", "")


class RawPeer:
    """An aiortc peer with `omux/control`, driven frame by frame by the test."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.control = self.pc.createDataChannel(
            webrtc.CONTROL_LABEL, negotiated=True, id=0, protocol=webrtc.PROTOCOL
        )
        self.frames: asyncio.Queue[tuple[str, tuple[int, int, int, bytes]]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.watch(self.control)
        self.control.on("close", self.closed.set)
        self.answer: dict[str, Any] = {}

    def watch(self, dc: RTCDataChannel) -> None:
        dc.on("message", lambda m: self.frames.put_nowait((dc.label, decode_message(m))))

    async def connect(self, base: str, headers: dict[str, str] | None = None) -> None:
        with webrtc.ice_hosts(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        status, body = await _http.request(
            "POST", f"{base}/offer", json.dumps(offer).encode(), headers=headers
        )
        assert status == HTTPStatus.OK, body
        self.answer = json.loads(body)
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer["sdp"], "answer"))
        if self.control.readyState != "open":
            opened = asyncio.Event()
            self.control.once("open", opened.set)
            await asyncio.wait_for(opened.wait(), PATIENCE)

    async def next(self, type_: int | None = None) -> tuple[str, tuple[int, int, int, bytes]]:
        """The next frame (of `type_` on channel 0, skipping others, if given)."""
        while True:
            label, frame = await asyncio.wait_for(self.frames.get(), PATIENCE)
            if type_ is None or (frame[0] == 0 and frame[1] == type_):
                return label, frame

    async def close(self) -> None:
        await self.pc.close()


@asynccontextmanager
async def raw_peer(server: aio.Server) -> AsyncIterator[RawPeer]:
    peer = RawPeer()
    try:
        await peer.connect(http_base(server))
        yield peer
    finally:
        await peer.close()
