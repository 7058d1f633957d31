"""Unreliable+unordered channels on QUIC datagrams, and the fall back to streams."""

from __future__ import annotations

import asyncio
from typing import Any

import openmux.aio as aio
import pytest
from openmux import ChannelSpec, CloseCode, ControlType, LocalProtocolError, encode_frame
from openmux.aio.quic import QuicTransport

from .conftest import RawFactory, ServerFactory
from .raw import PATIENCE, channel, hello

pytestmark = pytest.mark.timeout(60)

DGRAM = ChannelSpec("dg", reliable=False, ordered=False)


def sink(session: aio.Session) -> QuicTransport:
    assert isinstance(session.sink, QuicTransport)
    return session.sink


async def test_welcome_entries_name_the_stream_or_datagram(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    channels = [
        channel("rel"),
        channel("dg", reliable=False, ordered=False),
        channel("half", reliable=False, ordered=True),  # unordered only may use datagrams
    ]
    async with quic_server() as server, raw(server) as peer:
        peer.send(0, hello(channels=channels))
        entries = {e["name"]: e for e in (await peer.welcome())["channels"]}
        assert entries["dg"]["transport"] == "datagram"
        assert "streamId" not in entries["dg"]
        for name in ("rel", "half"):
            assert entries[name]["transport"] == "stream"
            sid = entries[name]["streamId"]
            assert sid % 4 == 1  # a server-initiated bidirectional stream
            # the server opened it with a PING so that we may send on it
            frames = await peer.wait_for(lambda sid=sid: peer.frames(sid))
            assert frames[0][:2] == (0, ControlType.PING)
        assert entries["rel"]["streamId"] != entries["half"]["streamId"]


async def test_unreliable_channel_travels_in_datagrams(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server) as peer:
        peer.send(0, hello(channels=[channel("dg", reliable=False, ordered=False)]))
        entry = (await peer.welcome())["channels"][0]
        frame = encode_frame(entry["id"], 5, b"ping over a datagram")
        peer.send_datagram(frame)
        echoed = await peer.wait_for(lambda: peer.datagrams)
        assert echoed[0] == frame  # one datagram = one frame, echoed as a datagram


async def test_session_maps_unreliable_channel_to_datagrams(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    async with quic_server() as server:
        session = await aio.connect(server.url("quic"), channels=["rel", DGRAM], **client_options)
        dg = session.channel("dg")
        assert dg.id in sink(session)._datagram_channels
        assert session.channel("rel").id in sink(session)._stream_of
        limit = sink(session).datagram_limit()
        assert 1000 < limit < 1200
        payload = b"u" * (limit - 6)  # the largest message one datagram carries
        await dg.send(1, payload)
        assert await asyncio.wait_for(dg.recv(), PATIENCE) == aio.Message(1, payload)
        await session.close()


async def test_message_too_large_for_a_datagram_is_a_local_error(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    async with quic_server() as server:
        session = await aio.connect(server.url("quic"), channels=[DGRAM], **client_options)
        dg = session.channel("dg")
        with pytest.raises(LocalProtocolError) as info:
            await dg.send(1, b"x" * sink(session).datagram_limit())
        assert info.value.code == CloseCode.MESSAGE_TOO_LARGE
        assert "QUIC datagram" in info.value.reason
        # nothing was sent and the session goes on
        assert session.is_open
        await dg.send(2, b"small")
        assert await asyncio.wait_for(dg.recv(), PATIENCE) == aio.Message(2, b"small")
        await session.close()


@pytest.mark.parametrize(
    ("name", "datagram"),
    [
        ("fragment", b"\x01\x05\x02\x00\x00\x01x"),
        ("fragment-end", b"\x01\x05\x06\x00\x00\x01x"),
        ("extended-length", b"\x01\x05\x01\x00\x00\x00\x00\x01x"),
        ("control-channel", encode_frame(0, ControlType.PING, b"\0\0\0\0")),
        ("short", b"\x01\x05\x00"),
        ("reserved-flag", b"\x01\x05\x10\x00\x00\x00"),
    ],
)
async def test_bad_datagram_is_close_1002(
    quic_server: ServerFactory, raw: RawFactory, name: str, datagram: bytes
) -> None:
    async with quic_server(close_timeout=0.1) as server, raw(server) as peer:
        peer.send(0, hello(channels=[channel("dg", reliable=False, ordered=False)]))
        assert (await peer.welcome())["channels"][0]["id"] == 1
        peer.send_datagram(datagram)
        assert await peer.close_code() == CloseCode.PROTOCOL_ERROR


async def test_datagram_for_a_stream_channel_is_close_1002(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server(close_timeout=0.1) as server, raw(server) as peer:
        peer.send(0, hello(channels=[channel("rel")]))
        entry = (await peer.welcome())["channels"][0]
        peer.send_datagram(encode_frame(entry["id"], 1, b"wrong way"))
        assert await peer.close_code() == CloseCode.PROTOCOL_ERROR


async def test_datagram_for_an_unknown_channel_is_dropped(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    """It may have raced ahead of the CHANNEL_ACK, or trail a CLOSE_CHANNEL."""
    async with quic_server() as server, raw(server) as peer:
        peer.send(0, hello(channels=[channel("dg", reliable=False, ordered=False)]))
        await peer.welcome()
        peer.send_datagram(encode_frame(77, 1, b"nobody"))
        peer.send_datagram(encode_frame(1, 1, b"echo me"))
        assert (await peer.wait_for(lambda: peer.datagrams))[0] == encode_frame(1, 1, b"echo me")
        assert not peer.control(ControlType.ERROR) and not peer.control(ControlType.CLOSE)


@pytest.mark.parametrize("side", ["client", "server"])
async def test_falls_back_to_streams_without_datagrams(
    quic_server: ServerFactory, client_options: dict[str, Any], side: str
) -> None:
    server_opts = {"datagrams": False} if side == "server" else {}
    client_opts = {"datagrams": False} if side == "client" else {}
    async with quic_server(**server_opts) as server:
        session = await aio.connect(
            server.url("quic"), channels=[DGRAM], **client_options, **client_opts
        )
        dg = session.channel("dg")
        assert not sink(session)._datagram_channels
        assert dg.id in sink(session)._stream_of
        big = b"b" * 5000  # no datagram limit on a stream
        await dg.send(3, big)
        assert await asyncio.wait_for(dg.recv(), PATIENCE) == aio.Message(3, big)
        # a dynamic unreliable channel falls back the same way
        later = await session.open_channel("later", reliable=False, ordered=False)
        assert later.id in sink(session)._stream_of
        await later.send(4, b"x")
        assert await asyncio.wait_for(later.recv(), PATIENCE) == aio.Message(4, b"x")
        await session.close()


async def test_raw_peer_without_datagrams_gets_a_stream(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server, datagrams=False) as peer:
        peer.send(0, hello(channels=[channel("dg", reliable=False, ordered=False)]))
        entry = (await peer.welcome())["channels"][0]
        assert entry["transport"] == "stream" and entry["streamId"] % 4 == 1


async def test_peer_with_tiny_datagrams_gets_a_stream(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server, datagram_frame_size=100) as peer:
        peer.send(0, hello(channels=[channel("dg", reliable=False, ordered=False)]))
        entry = (await peer.welcome())["channels"][0]
        assert entry["transport"] == "stream"
