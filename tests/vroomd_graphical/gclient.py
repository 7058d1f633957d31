"""A Python VROOM-Graphical peer for tests: `vroom_graphical.GraphicalClient`
over a real `openmux.aio` WebSocket session, with every graphical event kept.

The client is sans-IO and wants the connection's raw OpenMux events, so the
peer taps the session's event processing the way vroomd's services do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import openmux
import openmux.aio as aio
from openmux.aio.taps import ChannelTap
from vroom_graphical import (
    GraphicalClient,
    GraphicalEvent,
    HandshakeDone,
    InputReady,
    ModeChanged,
    NotificationReceived,
    StateReceived,
    Viewport,
    control_spec,
    parse_name,
    video_spec,
)

E = TypeVar("E", bound=GraphicalEvent)
TIMEOUT = 20.0


class Peer:
    def __init__(self, session: aio.Session, client: GraphicalClient) -> None:
        self.session = session
        self.client = client
        self.events: list[GraphicalEvent] = []
        self._changed = asyncio.Event()
        self._clients = [client]
        # Graphical channels granted in HELLO were registered by the asyncio
        # layer before the tap existed: the tap takes them back, with what
        # they got.
        ChannelTap(session, lambda name: parse_name(name) is not None, self._feed).install()

    def add_client(self, client: GraphicalClient) -> None:
        """Another graphical session on the same connection: it sees the
        graphical events too (and answers only those of its session)."""
        self._clients.append(client)

    def _feed(self, event: openmux.Event) -> None:
        for client in self._clients:
            self._push(client.handle_event(event))

    def _push(self, events: list[GraphicalEvent]) -> None:
        if events:
            self.events.extend(events)
            self._changed.set()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        viewport: tuple[int, int] = (800, 600),
        video: bool = False,
        capabilities: tuple[str, ...] | None = None,
        handshake: bool = True,
        **options: Any,
    ) -> Peer:
        specs = [control_spec()] + ([video_spec()] if video else [])
        session = await aio.connect(url, channels=specs, **options)
        kwargs: dict[str, Any] = {"viewport": Viewport(*viewport), "video": video}
        if capabilities is not None:
            kwargs["capabilities"] = capabilities
        client = GraphicalClient(session.connection, **kwargs)
        peer = cls(session, client)
        peer.flush()
        if handshake:
            await peer.wait_for(HandshakeDone)
            await peer.wait_for(StateReceived, lambda e: e.state.url is not None)
        return peer

    def flush(self) -> None:
        self.session.flush()

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a client method and send what it queued."""
        result = fn(*args, **kwargs)
        self.flush()
        return result

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda e: True,
        *,
        start: int = 0,
        timeout: float = TIMEOUT,
    ) -> E:
        """The first event of `kind` (from index `start`) matching `predicate`."""
        async with asyncio.timeout(timeout):
            seen = start
            while True:
                for event in self.events[seen:]:
                    if isinstance(event, kind) and predicate(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

    async def command(self, action: str, *, within: float = TIMEOUT, **args: Any) -> Any:
        """Send a COMMAND (`args` as sent, `timeout` included); its one final Notification."""
        start = len(self.events)
        command_id = self.do(self.client.command, action, **args)
        event = await self.wait_for(
            NotificationReceived,
            lambda e: e.completes and e.notification.ref == command_id,
            start=start,
            timeout=within,
        )
        return event.notification

    def finals(self, ref: Any) -> list[Any]:
        return [
            e.notification
            for e in self.events
            if isinstance(e, NotificationReceived)
            and e.notification.ref == ref
            and e.notification.type in ("success", "error")
        ]

    async def set_mode(self, mode: str) -> None:
        start = len(self.events)
        self.do(self.client.set_mode, mode)
        await self.wait_for(StateReceived, lambda e: e.state.mode == mode, start=start)
        if mode == "interact":
            if not self.client.input_ready:
                await self.wait_for(InputReady, start=start)
        else:
            await asyncio.sleep(0)
        _ = ModeChanged

    async def barrier(self) -> None:
        """Everything sent so far has been handled by the server (a PING
        round trip: the server reads in order on one WebSocket)."""
        await self.session.ping()

    async def close(self) -> None:
        await self.session.close()
