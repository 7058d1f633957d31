"""`openmux.aio.taps.ChannelTap`: a service's share of a session's events,
by channel name, kept in event order (over real TCP on 127.0.0.1 where the
session matters; a hand-made batch where the order within a read matters)."""

from __future__ import annotations

import asyncio
from typing import Any

import openmux.aio as aio
import pytest
from openmux import (
    DEFER,
    Channel,
    ChannelClosed,
    ChannelOpened,
    ChannelRequested,
    ChannelSpec,
    ConnectionTerminated,
    Event,
    MessageReceived,
    PongReceived,
)
from openmux.aio.taps import ChannelTap

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0


def claims(name: str) -> bool:
    return name.startswith("svc/")


async def test_a_message_and_its_channels_close_in_one_batch_stay_ours() -> None:
    """The core handles a whole read before the taps see it: the channel of
    the message is already gone from its table when the tap looks."""
    server = await aio.serve(lambda session: asyncio.sleep(0), "tcp://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0])
        fed: list[Event] = []
        tap = ChannelTap(client, claims, fed.append)
        ours, other = Channel(7, "svc/a"), Channel(9, "plain")
        batch: list[Event] = [
            ChannelOpened(ours, 1, False),
            MessageReceived(7, 1, b"last words"),
            ChannelClosed(ours, "done"),
            ChannelOpened(other, 2, False),
            MessageReceived(9, 1, b"not ours"),
            PongReceived(0.001),
            ConnectionTerminated(1000, "bye", True),
        ]
        rest = tap(batch)
        assert fed == [*batch[:3], batch[-1]]
        assert rest == batch[3:]  # the end of the connection goes to both
        assert tap.channels == {}
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_channels_granted_in_hello_are_adopted_with_their_unread_messages() -> None:
    fed: list[Event] = []
    installed = asyncio.Event()

    async def handler(session: aio.Session) -> None:
        # Let the client's first messages reach the asyncio layer first
        # (unread in the channel's queue: a peek at a private attribute).
        while "svc/h" not in session.channels or len(session.channels["svc/h"]._queue) < 2:
            await asyncio.sleep(0.01)
        ChannelTap(session, claims, fed.append).install()
        installed.set()
        await session.wait_closed()

    server = await aio.serve(handler, "tcp://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=[ChannelSpec("svc/h"), "plain"])
        channel = client.channels["svc/h"]
        await channel.send(1, b"one")
        await channel.send(2, b"two")
        await asyncio.wait_for(installed.wait(), PATIENCE)
        await channel.send(3, b"three")
        await channel.close()

        def kinds() -> list[Any]:
            return [(type(e).__name__, getattr(e, "data", None)) for e in fed]

        deadline = asyncio.get_running_loop().time() + PATIENCE
        while len(fed) < 5 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert kinds() == [
            ("ChannelOpened", None),
            ("MessageReceived", b"one"),
            ("MessageReceived", b"two"),
            ("MessageReceived", b"three"),
            ("ChannelClosed", None),
        ]
        opened = fed[0]
        assert isinstance(opened, ChannelOpened) and opened.request_id is None
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_channel_the_service_accepts_itself_is_ours() -> None:
    """Accepting a deferred request opens the channel with no event: the tap
    learns it from the core when the service has answered."""
    fed: list[Event] = []
    got_three = asyncio.Event()

    def policy(spec: ChannelSpec) -> int | str | None:
        return DEFER if claims(spec.name) else None

    async def handler(session: aio.Session) -> None:
        def feed(event: Event) -> None:
            fed.append(event)
            if isinstance(event, ChannelRequested):
                session.connection.accept_channel(event.request_id)
            if len([e for e in fed if isinstance(e, MessageReceived)]) == 3:
                got_three.set()

        ChannelTap(session, claims, feed).install()
        await session.wait_closed()

    server = await aio.serve(handler, "tcp://127.0.0.1:0", channel_policy=policy)
    try:
        client = await aio.connect(server.urls[0])
        channel = await client.open_channel("svc/late")
        for i in range(3):
            await channel.send(1, b"m%d" % i)
        await asyncio.wait_for(got_three.wait(), PATIENCE)
        assert [e.data for e in fed if isinstance(e, MessageReceived)] == [b"m0", b"m1", b"m2"]
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
