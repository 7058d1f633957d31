"""WebRTC DataChannels on loopback: bare aiortc beside OpenMux over WebRTC, same run.

    .venv/bin/python bench/transport_webrtc.py

The server runs in a child process (one core each side, as two real peers
would), the client in this one; both gather ICE candidates on 127.0.0.1 only.
The child serves OpenMux at `webrtc+http://127.0.0.1:<port>` (channels `sink`
and `echo` of _transport.py) and, on a second signaling port, bare aiortc
peers whose DataChannel `sink` counts bytes (a text "?" asks for the count)
and `echo` sends every message back. Figures (`name value unit` lines):

- bulk: 64 KiB messages one way on one reliable ordered channel / DataChannel,
  the sender waiting while more than 256 KiB is buffered (the session's
  default write high-water mark; bare: `bufferedAmount` with a 64 KiB low
  mark); MB/s from the first byte to the server's count of everything.
- round trips: a 16-byte message echoed by the server, one at a time.

aiortc's SCTP is pure Python, so the figures are small; the interesting one
is the ratio. Each figure is the best of three alternated runs.
`BENCH_WEBRTC_MB` sets the bulk volume (default 32), `BENCH_RTT_SECONDS` the
round-trip duration (default 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from http import HTTPStatus
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openmux.aio as aio
from _transport import MESSAGE, RTT_SECONDS, SMALL, _rtt, handler, report, round_trips
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from openmux.aio import _http
from openmux.aio.webrtc import ice_hosts

LOOPBACK = ["127.0.0.1"]
BULK_BYTES = int(os.environ.get("BENCH_WEBRTC_MB", "32")) * 1024 * 1024
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


# ------------------------------------------------------------- bare aiortc


def _bare_channel(dc: RTCDataChannel) -> None:
    if dc.label == "sink":
        received = 0

        def on_sink(message: bytes | str) -> None:
            nonlocal received
            if isinstance(message, str):
                dc.send(str(received))
                received = 0
            else:
                received += len(message)

        dc.on("message", on_sink)
    else:
        dc.on("message", dc.send)


async def _bare_serve(peers: set[RTCPeerConnection]) -> asyncio.Server:
    async def offer(request: _http.Request) -> _http.Response:
        body = request.json()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.add(pc)
        pc.on("datachannel", _bare_channel)
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        with ice_hosts(LOOPBACK):
            await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        return _http.Response.json({"sdp": answer.sdp, "type": answer.type})

    return await _http.start_server(offer, "127.0.0.1", 0)


async def _bare_connect(url: str) -> tuple[RTCPeerConnection, RTCDataChannel, RTCDataChannel]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sink, echo = pc.createDataChannel("sink"), pc.createDataChannel("echo")
    with ice_hosts(LOOPBACK):
        await pc.setLocalDescription(await pc.createOffer())
    offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
    status, body = await _http.request("POST", url, json.dumps(offer).encode())
    assert status == HTTPStatus.OK, body
    await pc.setRemoteDescription(RTCSessionDescription(json.loads(body)["sdp"], "answer"))
    for dc in (sink, echo):
        if dc.readyState != "open":
            opened = asyncio.Event()
            dc.once("open", opened.set)
            await opened.wait()
    return pc, sink, echo


class _Inbox:
    """Messages of one DataChannel as an awaitable queue."""

    def __init__(self, dc: RTCDataChannel) -> None:
        self.queue: asyncio.Queue[bytes | str] = asyncio.Queue()
        dc.on("message", self.queue.put_nowait)

    async def get(self) -> bytes | str:
        return await self.queue.get()


async def _send_paced(dc: RTCDataChannel, payload: bytes) -> None:
    dc.send(payload)
    if dc.bufferedAmount > HIGH_WATER:
        drained = asyncio.Event()
        dc.bufferedAmountLowThreshold = LOW_WATER
        dc.once("bufferedamountlow", drained.set)
        await drained.wait()


async def bare_figures(url: str) -> tuple[float, float]:
    pc, sink, echo = await _bare_connect(url)
    sink_inbox, echo_inbox = _Inbox(sink), _Inbox(echo)
    payload = os.urandom(MESSAGE)
    count = BULK_BYTES // MESSAGE
    sink.send(payload)  # warm up
    sink.send("?")
    await sink_inbox.get()
    start = time.perf_counter()
    for _ in range(count):
        await _send_paced(sink, payload)
    sink.send("?")
    reply = await sink_inbox.get()
    elapsed = time.perf_counter() - start
    assert int(reply) == count * MESSAGE, reply
    small = b"x" * SMALL

    async def send() -> None:
        echo.send(small)

    rate = await _rtt(send, echo_inbox.get, RTT_SECONDS)
    await pc.close()
    return count * MESSAGE / elapsed / 1e6, rate


# ----------------------------------------------------------------- OpenMux


async def openmux_figures(url: str) -> tuple[float, float]:
    session = await aio.connect(
        url, channels=["sink", "echo"], ice_hosts=LOOPBACK, max_message_size=0
    )
    sink = session.channel("sink")
    payload = os.urandom(MESSAGE)
    count = BULK_BYTES // MESSAGE
    await sink.send(1, payload)  # warm up
    await sink.send(2)
    await sink.recv()
    start = time.perf_counter()
    for _ in range(count):
        await sink.send(1, payload)
    await sink.send(2)
    reply = await sink.recv()
    elapsed = time.perf_counter() - start
    assert int(reply.data) == count * MESSAGE, reply
    rate = await round_trips(session)
    await session.close()
    return count * MESSAGE / elapsed / 1e6, rate


# ------------------------------------------------------------------- main


async def serve_main() -> None:
    server = await aio.serve(
        handler, ["webrtc+http://127.0.0.1:0"], ice_hosts=LOOPBACK, max_message_size=0
    )
    peers: set[RTCPeerConnection] = set()
    bare = await _bare_serve(peers)
    port = bare.sockets[0].getsockname()[1]
    print(json.dumps([server.url("webrtc+http"), f"http://127.0.0.1:{port}/offer"]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    bare.close()
    for pc in peers:
        await pc.close()
    server.close()
    await server.wait_closed()


async def main() -> None:
    from _transport import server_process

    async with server_process([], __file__) as urls:
        omux_url, bare_url = urls
        figures: dict[str, float] = {}
        for _ in range(3):  # alternate, keep the best of each (a shared machine is noisy)
            runs: Any = (await openmux_figures(omux_url), await bare_figures(bare_url))
            for prefix, (bulk, rtt) in zip(("omux", "bare"), runs, strict=True):
                figures[f"{prefix}_bulk"] = max(figures.get(f"{prefix}_bulk", 0.0), bulk)
                figures[f"{prefix}_rtt"] = max(figures.get(f"{prefix}_rtt", 0.0), rtt)
        report("openmux_webrtc_bulk_64k", figures["omux_bulk"], "MB/s")
        report("bare_aiortc_bulk_64k", figures["bare_bulk"], "MB/s")
        report("openmux_webrtc_round_trips", figures["omux_rtt"], "round-trips/s")
        report("bare_aiortc_round_trips", figures["bare_rtt"], "round-trips/s")
        print(f"openmux_webrtc_vs_bare_bulk {figures['omux_bulk'] / figures['bare_bulk']:.2f} x")
        print(f"openmux_webrtc_vs_bare_rtt {figures['omux_rtt'] / figures['bare_rtt']:.2f} x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve_main())
    else:
        asyncio.run(main())
