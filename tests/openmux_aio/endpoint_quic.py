"""The QUIC endpoints of the conformance suite (openmux.aio.quic client <-> server).

Two entries: `quic-datagrams` (both sides announce QUIC datagrams, so
unreliable+unordered channels ride on them) and `quic-streams` (the client
does not, so every channel falls back to its own stream). Clients reach the
server through a loopback UDP relay: `cut()` makes it forward nothing (only a
ping timeout can notice), `kill()` drops the server's QUIC connections with an
immediate CONNECTION_CLOSE and no OpenMux CLOSE, the QUIC analogue of a reset
socket. `raw_exchange` is a bare aioquic client writing the raw bytes on the
control stream (stream 0) and reading what comes back on it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived
from openmux import FrameReader
from openmux.aio import quic

from .endpoints import RawResult, ServerEndpoint, certificate

LOOPBACK = "127.0.0.1"


class UdpRelay(asyncio.DatagramProtocol):
    """Forwards UDP between one client and `target` until `silent`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None
        self.silent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.silent or self.transport is None:
            return
        if addr == self.target:
            if self.client is not None:
                self.transport.sendto(data, self.client)
        else:
            self.client = addr
            self.transport.sendto(data, self.target)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RawQuicClient(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received = bytearray()
        self.done = asyncio.Event()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id == 0:
            self.received += event.data
        elif isinstance(event, ConnectionTerminated):
            self.done.set()


class QuicDatagramsEndpoint(ServerEndpoint):
    name = "quic-datagrams"
    listen_url = "quic://127.0.0.1:0"
    scheme = "quic"
    proxied = False
    stream = False  # no OMUX magic on QUIC: garbage is just a bad frame (1002)
    client_datagrams = True

    def __init__(self, **server_options: Any) -> None:
        super().__init__(**server_options)
        self.relays: list[UdpRelay] = []

    def extra_server_options(self) -> dict[str, Any]:
        cert, key = certificate()
        return {"certfile": cert, "keyfile": key}

    def extra_client_options(self) -> dict[str, Any]:
        return {"cafile": certificate()[0], "datagrams": self.client_datagrams}

    async def connect(self, **client_options: Any) -> Any:
        loop = asyncio.get_running_loop()
        _, relay = await loop.create_datagram_endpoint(
            lambda: UdpRelay(self.address), local_addr=(LOOPBACK, 0)
        )
        self.relays.append(relay)
        options = {**self.extra_client_options(), **client_options}
        from openmux import aio

        return await aio.connect(f"quic://{LOOPBACK}:{relay.port}", **options)

    async def cut(self) -> None:
        for relay in self.relays:
            relay.silent = True

    async def kill(self) -> None:
        assert self.server is not None
        for listener in self.server.listeners:
            assert isinstance(listener, quic.QuicListener)
            for protocol in list(listener._protocols):
                protocol._close_quic()

    async def __aexit__(self, *exc: object) -> None:
        for relay in self.relays:
            relay.close()
        await super().__aexit__(*exc)

    async def raw_exchange(self, items: list[bytes | str], magic: bool = True) -> RawResult:
        config = quic.quic_configuration(is_client=True, datagrams=self.client_datagrams)
        config.load_verify_locations(certificate()[0])
        data = b"".join(i.encode() if isinstance(i, str) else i for i in items)
        async with quic_connect(
            LOOPBACK, self.address[1], configuration=config, create_protocol=RawQuicClient
        ) as client:
            assert isinstance(client, RawQuicClient)
            client._quic.send_stream_data(client._quic.get_next_available_stream_id(), data)
            client.transmit()
            try:
                async with asyncio.timeout(10):
                    await client.done.wait()
            except TimeoutError:
                pass
        return RawResult(frames=FrameReader(0).feed(bytes(client.received)))


class QuicStreamsEndpoint(QuicDatagramsEndpoint):
    name = "quic-streams"
    client_datagrams = False


ENDPOINTS = [QuicDatagramsEndpoint, QuicStreamsEndpoint]
