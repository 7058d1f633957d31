"""A bare aioquic client that speaks OpenMux by hand, to send what a correct
peer never would (bad datagrams, foreign frames on a channel stream, ...)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.events import (
    ConnectionTerminated,
    DatagramFrameReceived,
    QuicEvent,
    StreamDataReceived,
)
from aioquic.tls import SessionTicket
from openmux import ControlType, FrameReader, encode_frame
from openmux.aio import quic

PATIENCE = 30.0  # hang protection only, never asserted on


def hello(**fields: Any) -> bytes:
    return encode_frame(0, ControlType.HELLO, json.dumps({"version": [0, 1, 0], **fields}).encode())


def channel(name: str, reliable: bool = True, ordered: bool = True) -> dict[str, Any]:
    return {"name": name, "reliable": reliable, "ordered": ordered}


class RawPeer(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams: dict[int, bytearray] = {}
        self.datagrams: list[bytes] = []
        self.terminated: ConnectionTerminated | None = None
        self._changed = asyncio.Event()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self.streams.setdefault(event.stream_id, bytearray()).extend(event.data)
        elif isinstance(event, DatagramFrameReceived):
            self.datagrams.append(event.data)
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event
        self._changed.set()

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream=end)
        self.transmit()

    def send_datagram(self, data: bytes) -> None:
        self._quic.send_datagram_frame(data)
        self.transmit()

    def frames(self, stream_id: int = 0) -> list[tuple[int, int, int, bytes]]:
        return FrameReader(0).feed(bytes(self.streams.get(stream_id, b"")))

    def control(self, type_: int) -> list[dict[str, Any]]:
        return [json.loads(f[3]) for f in self.frames(0) if f[0] == 0 and f[1] == type_]

    async def wait_for(self, predicate: Callable[[], Any]) -> Any:
        async with asyncio.timeout(PATIENCE):
            while not (result := predicate()):
                self._changed.clear()
                await self._changed.wait()
        return result

    async def welcome(self) -> dict[str, Any]:
        bodies = await self.wait_for(lambda: self.control(ControlType.WELCOME))
        return dict(bodies[0])

    async def close_code(self) -> int:
        """The code of the server's OpenMux CLOSE."""
        bodies = await self.wait_for(lambda: self.control(ControlType.CLOSE))
        return int(bodies[0]["code"])


@asynccontextmanager
async def raw_peer(
    port: int,
    cafile: str,
    *,
    datagrams: bool = True,
    ticket: SessionTicket | None = None,
    datagram_frame_size: int | None = None,
    **connect_args: Any,
) -> AsyncIterator[RawPeer]:
    """`ticket` + `wait_connected=False`: what is sent first travels in 0-RTT."""
    config = quic.quic_configuration(is_client=True, datagrams=datagrams)
    if datagram_frame_size is not None:
        config.max_datagram_frame_size = datagram_frame_size
    config.load_verify_locations(cafile)
    config.session_ticket = ticket
    async with connect(
        "127.0.0.1", port, configuration=config, create_protocol=RawPeer, **connect_args
    ) as peer:
        assert isinstance(peer, RawPeer)
        yield peer


@asynccontextmanager
async def raw_server(
    certfile: str, keyfile: str, *, datagrams: bool = True
) -> AsyncIterator[tuple[int, list[RawPeer]]]:
    """A bare aioquic server; yields its port and the connections it accepted."""
    from aioquic.asyncio.server import serve

    config = quic.quic_configuration(is_client=False, datagrams=datagrams)
    config.load_cert_chain(certfile, keyfile)
    accepted: list[RawPeer] = []

    def create(*args: Any, **kwargs: Any) -> RawPeer:
        peer = RawPeer(*args, **kwargs)
        accepted.append(peer)
        return peer

    server = await serve("127.0.0.1", 0, configuration=config, create_protocol=create)
    try:
        yield server._transport.get_extra_info("sockname")[1], accepted  # type: ignore[union-attr]
    finally:
        server.close()
