"""Less travelled paths: 0-RTT early data, stream resets, fragmented WELCOME,
sends that wait for the peer to open a stream, configuration pass-through."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openmux.aio as aio
import pytest
from aioquic.tls import SessionTicket
from openmux import ChannelSpec, CloseCode, ControlType, encode_frame
from openmux.aio import quic

from .conftest import RawFactory, ServerFactory
from .raw import PATIENCE, RawPeer, channel, hello, raw_server

pytestmark = pytest.mark.timeout(60)


async def a_ticket(server: aio.Server, raw: RawFactory) -> SessionTicket:
    tickets: list[SessionTicket] = []
    async with raw(server, session_ticket_handler=tickets.append) as peer:
        peer.send(0, hello())
        await peer.welcome()
        await peer.wait_for(lambda: tickets)
    return tickets[-1]


def newest_info(server: aio.Server) -> dict[str, Any]:
    """transport_info of the session that resumed (the ticket's first one may linger)."""
    (info,) = [s.transport_info for s in server.sessions if s.transport_info["session_resumed"]]
    return info


async def test_early_data_beyond_hello_waits_for_the_handshake(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server:
        ticket = await a_ticket(server, raw)
        async with raw(server, ticket=ticket, wait_connected=False) as peer:
            dg = channel("dg", reliable=False, ordered=False)
            # all of this leaves in 0-RTT: HELLO acts at once, the rest is held
            peer.send(0, hello(channels=[dg]) + encode_frame(0, ControlType.PING, b"\0\0\0\7"))
            peer.send_datagram(encode_frame(1, 4, b"early datagram"))
            await peer.welcome()
            pongs = await peer.wait_for(
                lambda: [f for f in peer.frames(0) if f[1] == ControlType.PONG]
            )
            assert pongs[0][3][:4] == b"\0\0\0\7"
            info = newest_info(server)
            assert info["hello_in_0rtt"] is True and info["early_data_accepted"] is True
            # the early datagram was delivered after the handshake, and echoed
            assert (await peer.wait_for(lambda: peer.datagrams))[0] == encode_frame(
                1, 4, b"early datagram"
            )


async def test_too_much_early_data_is_close_1002(
    quic_server: ServerFactory, raw: RawFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aioquic's first flight cannot carry 64 KiB: lower the bar to reach it
    monkeypatch.setattr(quic, "EARLY_DATA_LIMIT", 256)
    async with quic_server(close_timeout=0.1) as server:
        ticket = await a_ticket(server, raw)
        async with raw(server, ticket=ticket, wait_connected=False) as peer:
            pings = encode_frame(0, ControlType.PING, b"\0\0\0\1") * 40
            peer.send(0, hello() + pings)
            assert await peer.close_code() == CloseCode.PROTOCOL_ERROR


async def test_control_stream_reset_ends_the_session(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server) as peer:
        peer.send(0, hello())
        await peer.welcome()
        peer._quic.reset_stream(0, 0)
        peer.transmit()
        await peer.wait_for(lambda: peer.terminated)


async def test_channel_stream_reset_leaves_the_session_alone(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server) as peer:
        peer.send(0, hello(channels=[channel("a")]))
        sid = (await peer.welcome())["channels"][0]["streamId"]
        await peer.wait_for(lambda: peer.frames(sid))
        peer._quic.reset_stream(sid, 0)
        peer.transmit()
        peer.send(0, encode_frame(0, ControlType.PING, b"\0\0\0\2"))
        await peer.wait_for(lambda: [f for f in peer.frames(0) if f[1] == ControlType.PONG])
        assert not peer.control(ControlType.CLOSE) and peer.terminated is None


async def test_fragmented_welcome_still_maps_every_channel(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    names = [f"channel-with-a-long-name-{i}" for i in range(8)]
    specs = [*names, ChannelSpec("dg", reliable=False, ordered=False)]
    async with quic_server() as server:
        session = await aio.connect(
            server.url("quic"), channels=specs, max_message_size=64, **client_options
        )
        assert session.connection.max_message_size == 64  # WELCOME came in fragments
        sink = session.sink
        assert isinstance(sink, quic.QuicTransport)
        assert session.channel("dg").id in sink._datagram_channels
        for name in names:
            ch = session.channel(name)
            assert ch.id in sink._stream_of
            await ch.send(1, name.encode() * 10)  # fragmented on its stream
            assert await asyncio.wait_for(ch.recv(), PATIENCE) == aio.Message(1, name.encode() * 10)
        await session.close()


def welcome(*entries: dict[str, Any]) -> bytes:
    body = {"version": [0, 1, 0], "channels": list(entries)}
    return encode_frame(0, ControlType.WELCOME, json.dumps(body).encode())


async def test_send_waits_until_the_peer_opened_the_stream(
    cert: tuple[str, str], client_options: dict[str, Any]
) -> None:
    async with raw_server(*cert) as (port, accepted):
        task = asyncio.create_task(
            aio.connect(
                f"quic://127.0.0.1:{port}", channels=["a"], close_timeout=0.1, **client_options
            )
        )
        while not accepted:
            await asyncio.sleep(0.01)
        peer: RawPeer = accepted[0]
        await peer.wait_for(lambda: peer.control(ControlType.HELLO))
        peer.send(0, welcome({"name": "a", "id": 1, "streamId": 1, "transport": "stream"}))
        session = await asyncio.wait_for(task, PATIENCE)
        await session.channel("a").send(5, b"before the stream exists")  # held
        await asyncio.sleep(0.05)
        assert not peer.frames(1)
        peer.send(1, encode_frame(0, ControlType.PING, b"\0\0\0\0"))  # now it exists
        frames = await peer.wait_for(lambda: peer.frames(1))
        assert frames[0] == (1, 5, 0, b"before the stream exists")
        await session.close()


async def test_ready_made_quic_configuration_is_used(
    quic_server: ServerFactory, cert: tuple[str, str]
) -> None:
    config = quic.quic_configuration(is_client=True, datagrams=False)
    config.load_verify_locations(cert[0])
    async with quic_server() as server:
        session = await aio.connect(
            server.url("quic"),
            channels=[ChannelSpec("dg", reliable=False, ordered=False)],
            quic_configuration=config,
        )
        sink = session.sink
        assert isinstance(sink, quic.QuicTransport)
        assert not sink._datagram_channels  # datagrams=False came through
        await session.close()


def test_ticket_store_is_bounded_and_single_use() -> None:
    store = quic._Tickets(size=2)
    tickets = [
        SessionTicket(
            age_add=0,
            cipher_suite=0,  # type: ignore[arg-type]
            not_valid_after=None,  # type: ignore[arg-type]
            not_valid_before=None,  # type: ignore[arg-type]
            resumption_secret=b"",
            server_name="",
            ticket=bytes([i]),
        )
        for i in range(3)
    ]
    for ticket in tickets:
        store.add(ticket)
    assert store.pop(b"\0") is None  # the oldest was evicted
    assert store.pop(b"\2") is tickets[2]
    assert store.pop(b"\2") is None  # used once
