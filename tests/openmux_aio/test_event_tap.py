"""`Session.add_event_tap` / `detach_channel` / `flush`: how sans-IO protocols
(VROOM-Terminal, VROOM-Graphical) take their channels' core events ahead of
the asyncio layer, over a real TCP connection on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import openmux.aio as aio
import pytest
from openmux import (
    MAGIC,
    ChannelClosed,
    ChannelOpened,
    ConnectionTerminated,
    ControlType,
    Event,
    MessageReceived,
    encode_frame,
)

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0


def _owned(session: aio.Session, event: Event, prefix: str) -> bool:
    if type(event) is MessageReceived:
        channel = session.connection.channels.get(event.channel_id)
        return channel is not None and channel.name.startswith(prefix)
    if isinstance(event, ChannelOpened | ChannelClosed):
        return event.channel.name.startswith(prefix)
    return False


async def test_taps_run_in_order_and_own_their_channels() -> None:
    seen_first: list[Event] = []
    seen_second: list[Event] = []
    done = asyncio.Event()

    async def handler(session: aio.Session) -> None:
        def first(events: list[Event]) -> list[Event]:
            seen_first.extend(events)
            rest = []
            for event in events:
                if not _owned(session, event, "tap/"):
                    rest.append(event)
                elif type(event) is MessageReceived:  # echo it, bypassing Channel
                    session.connection.send_message(event.channel_id, event.type, event.data)
            return rest

        def second(events: list[Event]) -> list[Event]:
            seen_second.extend(events)
            return events

        session.add_event_tap(first)
        session.add_event_tap(second)
        plain = await session.accept()  # the tapped channel never shows up here
        async for kind, data in plain:
            await plain.send(kind, data)
        assert "tap/x" not in session.channels
        done.set()

    server = await aio.serve(handler, "tcp://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0])
        tapped = await client.open_channel("tap/x")
        plain = await client.open_channel("plain")
        for i in range(5):
            await tapped.send(1, b"t%d" % i)
        await plain.send(2, b"p")
        assert await asyncio.wait_for(plain.recv(), PATIENCE) == (2, b"p")
        got = [await asyncio.wait_for(tapped.recv(), PATIENCE) for _ in range(5)]
        assert got == [(1, b"t%d" % i) for i in range(5)]  # in arrival order
        await plain.close()
        await asyncio.wait_for(done.wait(), PATIENCE)
        await client.close()
    finally:
        server.close()
        await server.wait_closed()

    tapped_msgs = [e.data for e in seen_first if type(e) is MessageReceived and e.type == 1]
    assert tapped_msgs == [b"t%d" % i for i in range(5)]
    # The second tap sees only what the first returned: nothing of tap/x.
    assert not any(isinstance(e, ChannelOpened) and e.channel.name == "tap/x" for e in seen_second)
    assert not any(type(e) is MessageReceived and e.type == 1 for e in seen_second)
    assert any(isinstance(e, ChannelOpened) and e.channel.name == "plain" for e in seen_second)
    assert any(isinstance(e, ConnectionTerminated) for e in seen_second)


async def test_detach_channel_hands_over_what_was_unread() -> None:
    async def handler(session: aio.Session) -> None:
        early = session.channel("early")
        for i in range(3):
            await early.send(1, b"e%d" % i)
        await session.channel("other").send(1, b"go")  # same stream: after early's
        async for _kind, data in session.channel("other"):
            await early.send(1, data)

    server = await aio.serve(handler, "tcp://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=["early", "other"])
        early = client.channel("early")
        assert await asyncio.wait_for(client.channel("other").recv(), PATIENCE) == (1, b"go")
        later: list[bytes] = []
        arrived = asyncio.Event()

        def tap(events: list[Event]) -> list[Event]:
            rest = []
            for event in events:
                if type(event) is MessageReceived and event.channel_id == early.id:
                    later.append(event.data)
                    arrived.set()
                else:
                    rest.append(event)
            return rest

        client.add_event_tap(tap)
        unread = client.detach_channel(early.id)
        assert [m.data for m in unread] == [b"e0", b"e1", b"e2"]
        assert early.closed and "early" not in client.channels
        assert client.detach_channel(early.id) == []  # no longer the asyncio layer's
        await client.channel("other").send(1, b"after")
        await asyncio.wait_for(arrived.wait(), PATIENCE)
        assert later == [b"after"]
        # The channel is still open on the wire: the new owner sends on it.
        client.connection.send_message(early.id, 1, b"raw")
        client.flush()
        await client.wait_writable()  # not paused: returns at once
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_tap_that_takes_every_event_still_notices_a_silent_peer() -> None:
    """Timer batches go through the taps too: when a tap takes the whole
    batch (the keepalive PING was just sent), the session must still re-arm
    its timer, or a peer that went silent is never noticed."""
    welcome = {"version": [0, 1, 0], "channels": [], "pingInterval": 0.05, "pingTimeout": 0.2}

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)  # magic
        await reader.read(1 << 16)  # HELLO
        writer.write(MAGIC + encode_frame(0, ControlType.WELCOME, json.dumps(welcome).encode()))
        try:  # then never a byte more: no PONG
            await asyncio.wait_for(reader.read(), PATIENCE)
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        client = await aio.connect(f"tcp://127.0.0.1:{port}")  # timings from WELCOME
        client.add_event_tap(lambda events: [e for e in events if type(e) is ConnectionTerminated])
        await asyncio.wait_for(client.wait_closed(), PATIENCE)
        assert (client.close_code, client.close_reason) == (1001, "ping timeout")
