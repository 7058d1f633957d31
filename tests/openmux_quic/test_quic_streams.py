"""Reliable channels on their own QUIC streams: mapping, opening, closing, bad use."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import openmux.aio as aio
import pytest
from openmux import CloseCode, ControlType, encode_frame
from openmux.aio.quic import QuicTransport

from .conftest import RawFactory, ServerFactory
from .raw import PATIENCE, RawPeer, channel, hello, raw_server

pytestmark = pytest.mark.timeout(60)


def sink(session: aio.Session) -> QuicTransport:
    assert isinstance(session.sink, QuicTransport)
    return session.sink


async def open_two(peer: RawPeer) -> dict[str, dict[str, Any]]:
    peer.send(0, hello(channels=[channel("a"), channel("b")]))
    entries = {e["name"]: e for e in (await peer.welcome())["channels"]}
    for entry in entries.values():  # wait until the server opened each stream
        await peer.wait_for(lambda sid=entry["streamId"]: peer.frames(sid))
    return entries


async def test_channel_stream_carries_its_channel_both_ways(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server) as peer:
        entries = await open_two(peer)
        a = entries["a"]
        peer.send(a["streamId"], encode_frame(a["id"], 9, b"on a's stream"))
        frames = await peer.wait_for(lambda: peer.frames(a["streamId"])[1:])
        assert frames[0] == (a["id"], 9, 0, b"on a's stream")
        # a PING may travel on a channel stream (that is how streams are opened)
        peer.send(a["streamId"], encode_frame(0, ControlType.PING, b"\0\0\0\1"))
        await peer.wait_for(lambda: [f for f in peer.frames(0) if f[1] == ControlType.PONG])
        assert not peer.control(ControlType.CLOSE)


@pytest.mark.parametrize(
    "case", ["other-channel", "control-frame", "on-control-stream", "unidirectional"]
)
async def test_misplaced_frames_are_close_1002(
    quic_server: ServerFactory, raw: RawFactory, case: str
) -> None:
    async with quic_server(close_timeout=0.1) as server, raw(server) as peer:
        entries = await open_two(peer)
        a, b = entries["a"], entries["b"]
        if case == "other-channel":
            peer.send(a["streamId"], encode_frame(b["id"], 1, b"b's frame on a's stream"))
        elif case == "control-frame":
            body = json.dumps({"id": b["id"]}).encode()
            peer.send(a["streamId"], encode_frame(0, ControlType.CLOSE_CHANNEL, body))
        elif case == "on-control-stream":
            peer.send(0, encode_frame(a["id"], 1, b"a's frame on the control stream"))
        else:
            peer.send(peer._quic.get_next_available_stream_id(is_unidirectional=True), b"x")
        assert await peer.close_code() == CloseCode.PROTOCOL_ERROR


async def test_stream_before_hello_closes_the_connection(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server) as peer:
        peer._quic.get_next_available_stream_id()  # skip stream 0: no HELLO at all
        peer.send(4, hello())
        await peer.wait_for(lambda: peer.terminated)
        assert peer.terminated is not None
        assert peer.terminated.reason_phrase == f"openmux {CloseCode.PROTOCOL_ERROR}"


async def test_unannounced_stream_data_is_bounded(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    """Frames on a stream no entry named are held (the entry may be late), not forever."""
    async with quic_server(read_limit=64 * 1024, close_timeout=0.1) as server, raw(server) as peer:
        peer.send(0, hello())
        await peer.welcome()
        frame = encode_frame(1, 1, b"z" * 30_000)
        for sid in (4, 8, 12):
            peer.send(sid, frame * 2)
        assert await peer.close_code() == CloseCode.PROTOCOL_ERROR


async def test_reopened_channel_gets_a_new_stream(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    async with quic_server() as server:
        session = await aio.connect(server.url("quic"), **client_options)
        first = await session.open_channel("dyn")
        first_stream = sink(session)._stream_of[first.id]
        await first.send(1, b"one")
        assert (await asyncio.wait_for(first.recv(), PATIENCE)).data == b"one"
        await first.close()
        second = await session.open_channel("dyn")
        # channel ids may be reused, QUIC streams never are
        assert sink(session)._stream_of[second.id] != first_stream
        assert first_stream in sink(session)._dead
        await second.send(2, b"two")
        assert await asyncio.wait_for(second.recv(), PATIENCE) == aio.Message(2, b"two")
        await session.close()


async def test_many_channels_in_parallel(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    async with quic_server() as server:
        names = [f"c{i}" for i in range(20)]
        session = await aio.connect(server.url("quic"), channels=names, **client_options)
        streams = {sink(session)._stream_of[session.channel(n).id] for n in names}
        assert len(streams) == len(names)

        async def talk(name: str) -> None:
            ch = session.channel(name)
            for i in range(20):
                await ch.send(1, f"{name}:{i}".encode())
            for i in range(20):
                assert (await ch.recv()).data == f"{name}:{i}".encode()

        await asyncio.wait_for(asyncio.gather(*(talk(n) for n in names)), PATIENCE)
        await session.close()


async def test_close_code_reaches_the_peer_before_quic_closes(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    seen: asyncio.Future[tuple[int | None, bool]] = asyncio.get_running_loop().create_future()

    async def handler(session: aio.Session) -> None:
        await session.wait_closed()
        seen.set_result((session.close_code, session.closed_by_peer))

    async with quic_server(handler) as server:
        session = await aio.connect(server.url("quic"), **client_options)
        await session.close(4242, "done here")
        assert await asyncio.wait_for(seen, PATIENCE) == (4242, True)


async def test_server_close_sends_going_away(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    async with quic_server() as server:
        session = await aio.connect(server.url("quic"), channels=["echo"], **client_options)
        server.close()
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert session.close_code == CloseCode.GOING_AWAY
        assert session.closed_by_peer
        await asyncio.wait_for(server.wait_closed(), PATIENCE)


async def test_control_stream_end_is_the_end_of_the_session(
    quic_server: ServerFactory, raw: RawFactory
) -> None:
    async with quic_server() as server, raw(server) as peer:
        peer.send(0, hello())
        await peer.welcome()
        peer.send(0, b"", end=True)
        await peer.wait_for(lambda: peer.terminated)
        assert not server.sessions or all(not s.is_open for s in server.sessions)


# ------------------------------------------------ against a hand-driven server


def welcome(*entries: dict[str, Any]) -> bytes:
    body = {"version": [0, 1, 0], "maxMessageSize": 65535, "channels": list(entries)}
    return encode_frame(0, ControlType.WELCOME, json.dumps(body).encode())


async def test_client_holds_frames_that_race_ahead_of_welcome(
    cert: tuple[str, str], client_options: dict[str, Any]
) -> None:
    async with raw_server(*cert) as (port, accepted):
        task = asyncio.create_task(
            aio.connect(
                f"quic://127.0.0.1:{port}", channels=["a"], close_timeout=0.1, **client_options
            )
        )
        peer = await asyncio.wait_for(_first(accepted), PATIENCE)
        await peer.wait_for(lambda: peer.control(ControlType.HELLO))
        # the channel's stream (opened with a PING) and a message on it arrive first
        peer.send(1, encode_frame(0, ControlType.PING, b"\0\0\0\0") + encode_frame(1, 7, b"early"))
        await asyncio.sleep(0.05)
        peer.send(0, welcome({"name": "a", "id": 1, "streamId": 1, "transport": "stream"}))
        session = await asyncio.wait_for(task, PATIENCE)
        a = session.channel("a")
        assert await asyncio.wait_for(a.recv(), PATIENCE) == aio.Message(7, b"early")
        await a.send(8, b"reply")
        frames = await peer.wait_for(lambda: peer.frames(1))
        assert frames[0] == (1, 8, 0, b"reply")
        await session.close()  # nobody answers the CLOSE: close_timeout ends it


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("no-transport", {}),
        ("client-stream", {"streamId": 4, "transport": "stream"}),
        ("unidirectional", {"streamId": 3, "transport": "stream"}),
        ("control-stream", {"streamId": 0, "transport": "stream"}),
        ("reliable-as-datagram", {"transport": "datagram"}),
        ("unknown-transport", {"streamId": 1, "transport": "carrier-pigeon"}),
    ],
)
async def test_bad_welcome_entry_is_close_1002(
    cert: tuple[str, str], client_options: dict[str, Any], name: str, entry: dict[str, Any]
) -> None:
    async with raw_server(*cert) as (port, accepted):
        task = asyncio.create_task(
            aio.connect(f"quic://127.0.0.1:{port}", channels=["a"], **client_options)
        )
        peer = await asyncio.wait_for(_first(accepted), PATIENCE)
        await peer.wait_for(lambda: peer.control(ControlType.HELLO))
        peer.send(0, welcome({"name": "a", "id": 1, **entry}))
        closes = await peer.wait_for(lambda: peer.control(ControlType.CLOSE))
        assert closes[0]["code"] == CloseCode.PROTOCOL_ERROR
        peer.send(0, encode_frame(0, ControlType.CLOSE, b'{"code":1002}'))
        try:
            session = await asyncio.wait_for(task, PATIENCE)
        except aio.HandshakeError as exc:
            assert exc.code == CloseCode.PROTOCOL_ERROR
        else:  # WELCOME itself was fine: the session opened, then closed on the entry
            await asyncio.wait_for(session.wait_closed(), PATIENCE)
            assert session.close_code == CloseCode.PROTOCOL_ERROR


async def test_duplicate_stream_in_welcome_is_close_1002(
    cert: tuple[str, str], client_options: dict[str, Any]
) -> None:
    async with raw_server(*cert) as (port, accepted):
        task = asyncio.create_task(
            aio.connect(f"quic://127.0.0.1:{port}", channels=["a", "b"], **client_options)
        )
        peer = await asyncio.wait_for(_first(accepted), PATIENCE)
        await peer.wait_for(lambda: peer.control(ControlType.HELLO))
        peer.send(
            0,
            welcome(
                {"name": "a", "id": 1, "streamId": 1, "transport": "stream"},
                {"name": "b", "id": 2, "streamId": 1, "transport": "stream"},
            ),
        )
        closes = await peer.wait_for(lambda: peer.control(ControlType.CLOSE))
        assert closes[0]["code"] == CloseCode.PROTOCOL_ERROR
        task.cancel()


async def _first(accepted: list[RawPeer]) -> RawPeer:
    while not accepted:
        await asyncio.sleep(0.01)
    return accepted[0]


@pytest.mark.parametrize("on", ["control", "channel"])
async def test_oversized_declaration_is_refused_before_its_payload(
    quic_server: ServerFactory, raw: RawFactory, on: str
) -> None:
    """Only the header is sent: the answer cannot have waited for 1 GiB."""
    async with quic_server(close_timeout=0.1) as server, raw(server) as peer:
        entries = await open_two(peer)
        a = entries["a"]
        header = bytes([a["id"] if on == "channel" else 0, 1, 1, 0]) + (1 << 30).to_bytes(4, "big")
        peer.send(a["streamId"] if on == "channel" else 0, header)
        assert await peer.close_code() == CloseCode.MESSAGE_TOO_LARGE
        assert peer.control(ControlType.ERROR)[0]["code"] == CloseCode.MESSAGE_TOO_LARGE


async def test_closing_a_stalled_channel_frees_the_sender(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    """The server never reads `stuck`: its credit stops, our writes pause. Closing
    the channel must not leave the session paused behind the dead stream."""

    async def handler(session: aio.Session) -> None:
        echo = session.channel("echo")
        async for kind, data in echo:
            await echo.send(kind, data)

    async with quic_server(handler, read_limit=128 * 1024) as server:
        session = await aio.connect(
            server.url("quic"), channels=["stuck", "echo"], write_limit=64 * 1024, **client_options
        )
        stuck = session.channel("stuck")

        async def flood() -> None:
            with contextlib.suppress(aio.ChannelClosedError):
                while True:
                    await stuck.send(1, b"s" * 65536)

        task = asyncio.create_task(flood())
        async with asyncio.timeout(PATIENCE):
            while not session.writing_paused:
                await asyncio.sleep(0.01)
        await stuck.close()
        await asyncio.wait_for(task, PATIENCE)
        echo = session.channel("echo")
        await echo.send(2, b"through")
        assert await asyncio.wait_for(echo.recv(), PATIENCE) == aio.Message(2, b"through")
        await session.close()
