"""An in-memory client/server pair: openmux.testing.Pair (two real
openmux.Connection objects in message mode, as on WebSocket), each side
wrapped by the real GraphicalClient / GraphicalServer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import openmux
import openmux.testing
from openmux import ChannelSpec, Config, Connection
from vroom_graphical import (
    GraphicalClient,
    GraphicalEvent,
    GraphicalServer,
    Viewport,
    channel_policy,
    control_spec,
)


class Pair:
    def __init__(
        self,
        *,
        sessions: Sequence[str] = ("",),
        hello_channels: Sequence[ChannelSpec] | None = None,
        policy: Callable[[ChannelSpec], int | str | None] = channel_policy,
        server: dict[str, Any] | None = None,
        client: dict[str, Any] | None = None,
        start: bool = True,
        serve: bool = True,
    ) -> None:
        self.serve = serve
        specs = (
            list(hello_channels)
            if hello_channels is not None
            else [control_spec(s) for s in sessions]
        )
        self.mux = openmux.testing.Pair(
            Config(is_client=True, channels=specs, ping_interval=0),
            Config(is_client=False, channel_policy=policy, ping_interval=0),
            handshake=False,
            eof=False,
        )
        self.smux, self.cmux = self.mux.server, self.mux.client
        self.c2s_frames: list[bytes] = []
        self.s2c_frames: list[bytes] = []
        _log(self.cmux, self.c2s_frames)
        _log(self.smux, self.s2c_frames)
        self.server = GraphicalServer(self.smux, **(server or {}))
        kwargs = {"viewport": Viewport(800, 600)} | (client or {})
        self.clients = {s: GraphicalClient(self.cmux, session=s, **kwargs) for s in sessions}
        self.client = self.clients[sessions[0]]
        self.server_events: list[GraphicalEvent] = []
        self.client_events: list[GraphicalEvent] = []
        self.server_mux_events: list[openmux.Event] = []
        self.client_mux_events: list[openmux.Event] = []
        if start:
            self.pump()

    def pump(self) -> tuple[list[GraphicalEvent], list[GraphicalEvent]]:
        """Deliver everything both sides queued until both are quiet; returns
        the (server, client) graphical events this caused. Each OpenMux event
        reaches the graphical layer as soon as it happens, so answers queued
        by the handlers travel in the same pump."""
        server_new: list[GraphicalEvent] = []
        client_new: list[GraphicalEvent] = []
        while self.cmux._out or self.smux._out:
            for ev in self.mux.to_server():
                self.server_mux_events.append(ev)
                if self.serve:
                    server_new += self.server.handle_event(ev)
            for ev in self.mux.to_client():
                self.client_mux_events.append(ev)
                for c in self.clients.values():
                    client_new += c.handle_event(ev)
        self.server_events += server_new
        self.client_events += client_new
        return server_new, client_new

    def inject_to_server(self, channel_id: int, type_: int, data: bytes) -> list[GraphicalEvent]:
        """A frame from a (possibly misbehaving) client, bypassing GraphicalClient."""
        self.cmux.send_message(channel_id, type_, data)
        return self.pump()[0]

    def inject_to_client(self, channel_id: int, type_: int, data: bytes) -> list[GraphicalEvent]:
        self.smux.send_message(channel_id, type_, data)
        return self.pump()[1]

    def client_channel(self, name: str) -> int:
        return next(c.id for c in self.cmux.channels.values() if c.name == name)


def of(events: Sequence[object], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def _log(conn: Connection, sink: list[bytes]) -> None:
    """Keep a copy of every frame a side sends, for byte-level assertions."""
    send = conn.messages_to_send

    def logged() -> list[bytes]:
        out = send()
        sink.extend(out)
        return out

    conn.messages_to_send = logged  # type: ignore[method-assign]
