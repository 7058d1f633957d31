"""Two `Connection`s wired back to back in memory, for tests of any layer.

No sockets and no clock: the pair carries each side's output to the other
when asked, and time only moves when the test says so. Other packages use it to
test their protocols over a real OpenMux core without a transport:

    pair = Pair(Config(is_client=True, channels=[ChannelSpec("term")]),
                Config(is_client=False))
    pair.client.send_message(1, 0x01, b"hi")
    client_events, server_events = pair.pump()

Stream mode goes through `data_to_send`/`receive_data` (magic included),
message mode through `messages_to_send`/`receive_message`.

`echo_handler` is the peer the transport tests of `openmux.aio` (QUIC,
WebRTC...) serve: every message back, on every channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Config
from .connection import Connection, Mode, State
from .events import ConnectionTerminated, Event

if TYPE_CHECKING:
    from .aio import Session


class Pair:
    """A client and a server `Connection` joined by a perfect in-memory link.

    `client_events` / `server_events` accumulate every event each side has
    produced; `pump()` and `advance()` also return the new ones. With
    `eof=True` (the default), a side that reached CLOSED and has nothing left
    to send closes its "transport", and the other side sees `connection_lost`,
    as a real transport would.
    """

    def __init__(
        self,
        client: Config | None = None,
        server: Config | None = None,
        *,
        mode: Mode = "message",
        now: float = 0.0,
        handshake: bool = True,
        eof: bool = True,
    ) -> None:
        self.client = Connection(client or Config(is_client=True), mode)
        self.server = Connection(server or Config(is_client=False), mode)
        if not self.client.is_client or self.server.is_client:
            raise ValueError("the client config needs is_client=True, the server's False")
        self.mode: Mode = mode
        self.now = now
        self.eof = eof
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.server.initiate(now)
        self.client.initiate(now)
        if handshake:
            self.pump()
            if self.client.state is not State.OPEN or self.server.state is not State.OPEN:
                raise RuntimeError(
                    f"handshake failed: client {self.client.state.value} "
                    f"({self.client.close_code} {self.client.close_reason!r}), "
                    f"server {self.server.state.value} "
                    f"({self.server.close_code} {self.server.close_reason!r})"
                )

    def _carry(self, source: Connection, sink: Connection) -> list[Event]:
        """Deliver everything `source` has queued to `sink`; `sink`'s new events."""
        if self.mode == "stream":
            data = source.data_to_send()
            return sink.receive_data(data, self.now) if data else []
        events: list[Event] = []
        for message in source.messages_to_send():
            events.extend(sink.receive_message(message, self.now))
        return events

    def to_server(self) -> list[Event]:
        """Deliver the client's queued output; returns the server's new events."""
        events = self._carry(self.client, self.server)
        self.server_events.extend(events)
        return events

    def to_client(self) -> list[Event]:
        """Deliver the server's queued output; returns the client's new events."""
        events = self._carry(self.server, self.client)
        self.client_events.extend(events)
        return events

    def pump(self, max_rounds: int = 1000) -> tuple[list[Event], list[Event]]:
        """Carry output both ways until both sides are quiet.

        Returns the (client, server) events this produced.
        """
        client_new: list[Event] = []
        server_new: list[Event] = []
        for _ in range(max_rounds):
            got_server = self.to_server()
            got_client = self.to_client()
            server_new.extend(got_server)
            client_new.extend(got_client)
            if self.eof:
                client_new.extend(self._eof(self.server, self.client, self.client_events))
                server_new.extend(self._eof(self.client, self.server, self.server_events))
            if not got_server and not got_client and not self._queued():
                return client_new, server_new
        raise RuntimeError(f"the pair is still talking after {max_rounds} rounds")

    def _queued(self) -> bool:
        return bool(self.client._out or self.server._out)

    def _eof(self, closed: Connection, other: Connection, sink: list[Event]) -> list[Event]:
        if closed.state is State.CLOSED and not closed._out and other.state is not State.CLOSED:
            events = other.connection_lost(self.now)
            sink.extend(events)
            return events
        return []

    def advance(self, now: float) -> tuple[list[Event], list[Event]]:
        """Move the clock to `now`, fire every due timer on both sides, pump.

        Returns the (client, server) events this produced.
        """
        if now < self.now:
            raise ValueError("time does not go backwards")
        self.now = now
        client_new: list[Event] = []
        server_new: list[Event] = []
        for _ in range(1000):
            fired = False
            for conn, new, sink in (
                (self.client, client_new, self.client_events),
                (self.server, server_new, self.server_events),
            ):
                when = conn.get_timer()
                if when is not None and when <= now:
                    events = conn.handle_timer(now)
                    sink.extend(events)
                    new.extend(events)
                    fired = True
            c, s = self.pump()
            client_new.extend(c)
            server_new.extend(s)
            if not fired:
                return client_new, server_new
        raise RuntimeError("timers keep firing without the clock moving")

    @property
    def terminated(self) -> bool:
        """Both sides have reported `ConnectionTerminated`."""
        return any(isinstance(e, ConnectionTerminated) for e in self.client_events) and any(
            isinstance(e, ConnectionTerminated) for e in self.server_events
        )


async def echo_handler(session: Session) -> None:
    """An `openmux.aio` server handler that echoes every message on every
    channel, those granted in HELLO and later ones, until the session ends."""
    import asyncio  # here: the rest of this module is sans-IO

    from .aio import Channel, ChannelClosedError, SessionClosedError

    async def echo(channel: Channel) -> None:
        async for kind, data in channel:
            try:
                await channel.send(kind, data)
            except ChannelClosedError:
                return

    tasks = [asyncio.create_task(echo(c)) for c in list(session.channels.values())]
    try:
        while True:
            tasks.append(asyncio.create_task(echo(await session.accept())))
    except SessionClosedError:
        pass
    finally:
        for task in tasks:
            task.cancel()
