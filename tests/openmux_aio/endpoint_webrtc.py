"""The WebRTC endpoint of the conformance suite (aiortc client <-> aiortc server).

Both peers gather ICE candidates on 127.0.0.1 only (`ice_hosts`). To make
`cut()` a real silence, the client's signaling goes through a small HTTP
proxy that puts a UDP relay between the peers: it rewrites the host
candidate in the offer and in the answer to the relay's port, so each peer
sees the other at the relay, and the relay can stop forwarding. `kill()`
closes the server's peer connections abruptly (no CLOSE; aiortc sends an SCTP
ABORT), the WebRTC analogue of a reset socket.
"""

from __future__ import annotations

import asyncio
import json
import re
from http import HTTPStatus
from typing import Any

from openmux import decode_message
from openmux.aio import _http, webrtc

from .endpoints import RawResult, ServerEndpoint

LOOPBACK = "127.0.0.1"
_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ udp \d+ )(\S+) (\d+)( typ host.*)$", re.M)


def _candidate_port(sdp: str) -> int:
    match = _CANDIDATE.search(sdp)
    assert match is not None and match.group(2) == LOOPBACK, "expected a 127.0.0.1 host candidate"
    return int(match.group(3))


def _rewrite(sdp: str, port: int) -> str:
    return _CANDIDATE.sub(lambda m: f"{m.group(1)}{LOOPBACK} {port}{m.group(4)}", sdp)


class UdpRelay(asyncio.DatagramProtocol):
    """One loopback UDP socket both peers talk to; forwards between them until `silent`."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.silent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.silent or self.transport is None:
            return
        if addr == self.client and self.server is not None:
            self.transport.sendto(data, self.server)
        elif addr == self.server and self.client is not None:
            self.transport.sendto(data, self.client)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


class SignalingProxy:
    """Forwards `POST /offer` to the real server, with a `UdpRelay` spliced into the SDPs."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # http://host:port
        self.relays: list[UdpRelay] = []
        self.http: asyncio.Server | None = None

    async def start(self) -> int:
        self.http = await _http.start_server(self._handle, LOOPBACK, 0)
        return int(self.http.sockets[0].getsockname()[1])

    async def _handle(self, request: _http.Request) -> _http.Response:
        if request.path != "/offer":
            return _http.Response.text(HTTPStatus.NOT_FOUND)
        offer = request.json()
        loop = asyncio.get_running_loop()
        _, relay = await loop.create_datagram_endpoint(UdpRelay, local_addr=(LOOPBACK, 0))
        self.relays.append(relay)
        relay.client = (LOOPBACK, _candidate_port(offer["sdp"]))
        offer["sdp"] = _rewrite(offer["sdp"], relay.port)
        headers = {k: v for k, v in request.headers.items() if k == "authorization"}
        status, body = await _http.request(
            "POST", f"{self.upstream}/offer", json.dumps(offer).encode(), headers=headers
        )
        if status != HTTPStatus.OK:
            return _http.Response(status, body)
        answer = json.loads(body)
        relay.server = (LOOPBACK, _candidate_port(answer["sdp"]))
        answer["sdp"] = _rewrite(answer["sdp"], relay.port)
        return _http.Response.json(answer)

    def cut(self) -> None:
        for relay in self.relays:
            relay.silent = True

    async def close(self) -> None:
        for relay in self.relays:
            if relay.transport is not None:
                relay.transport.close()
        if self.http is not None:
            self.http.close()
            await self.http.wait_closed()


class WebRTCEndpoint(ServerEndpoint):
    name = "webrtc"
    listen_url = "webrtc+http://127.0.0.1:0"
    scheme = "webrtc+http"
    stream = False
    proxied = False

    def __init__(self, **server_options: Any) -> None:
        super().__init__(**server_options)
        self.signaling: SignalingProxy | None = None

    def extra_server_options(self) -> dict[str, Any]:
        return {"ice_hosts": [LOOPBACK]}

    def extra_client_options(self) -> dict[str, Any]:
        return {"ice_hosts": [LOOPBACK]}

    async def __aenter__(self) -> WebRTCEndpoint:
        await super().__aenter__()
        host, port = self.address
        self.signaling = SignalingProxy(f"http://{host}:{port}")
        self._proxy_port = await self.signaling.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        if self.signaling is not None:
            await self.signaling.close()

    def client_url(self) -> str:
        return f"webrtc+http://{LOOPBACK}:{self._proxy_port}"

    async def cut(self) -> None:
        assert self.signaling is not None
        self.signaling.cut()

    async def kill(self) -> None:
        assert self.server is not None
        for session in list(self.server.sessions):
            sink = session.sink
            assert isinstance(sink, webrtc.DataChannelSink)
            await sink.pc.close()

    async def raw_exchange(self, items: list[bytes | str], magic: bool = True) -> RawResult:
        """An aiortc peer that sends `items` on `omux/control` as they are."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        result = RawResult()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        control = pc.createDataChannel(
            webrtc.CONTROL_LABEL, negotiated=True, id=0, protocol=webrtc.PROTOCOL
        )
        opened, closed = asyncio.Event(), asyncio.Event()
        control.on("open", opened.set)
        control.on("close", closed.set)
        control.on("message", lambda m: result.frames.append(decode_message(m)))
        pc.on(
            "connectionstatechange",
            lambda: pc.connectionState in ("failed", "closed") and closed.set(),
        )
        try:
            with webrtc.ice_hosts([LOOPBACK]):
                await pc.setLocalDescription(await pc.createOffer())
            offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
            status, body = await _http.request(
                "POST", f"{self.url.replace('webrtc+', '')}/offer", json.dumps(offer).encode()
            )
            assert status == HTTPStatus.OK, body
            await pc.setRemoteDescription(RTCSessionDescription(json.loads(body)["sdp"], "answer"))
            async with asyncio.timeout(10):
                await opened.wait()
                for item in items:
                    control.send(item)
                await closed.wait()
        except TimeoutError:
            pass
        finally:
            await pc.close()
        return result


ENDPOINTS = [WebRTCEndpoint]
