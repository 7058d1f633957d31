"""A TerminalClient and a TerminalServer over two real openmux.Connection objects in memory."""

from __future__ import annotations

from typing import Any

from openmux import Config
from openmux.connection import Mode
from openmux.testing import Pair
from vroom_terminal import (
    CapabilityOffer,
    Encoding,
    ExtensionsOffer,
    TerminalClient,
    TerminalEvent,
    TerminalServer,
    channel_policy,
)


class TermPair:
    """Runs both state machines on top of `openmux.testing.Pair`.

    `pump()` carries bytes both ways, feeds every mux event into the right
    endpoint and returns the new terminal events of (client, server).
    """

    def __init__(
        self,
        *,
        client_kwargs: dict[str, Any] | None = None,
        server_kwargs: dict[str, Any] | None = None,
        client_config: dict[str, Any] | None = None,
        server_config: dict[str, Any] | None = None,
        mode: Mode = "message",
    ) -> None:
        self.pair = Pair(
            Config(is_client=True, **(client_config or {})),
            Config(is_client=False, **({"channel_policy": channel_policy} | (server_config or {}))),
            mode=mode,
            handshake=False,
        )
        ckw = {"offer": CapabilityOffer()} | (client_kwargs or {})
        self.client = TerminalClient(self.pair.client, **ckw)
        self.server = TerminalServer(self.pair.server, **(server_kwargs or {}))
        self.client_events: list[TerminalEvent] = []
        self.server_events: list[TerminalEvent] = []
        self.pump()

    def pump(self) -> tuple[list[TerminalEvent], list[TerminalEvent]]:
        c_new: list[TerminalEvent] = []
        s_new: list[TerminalEvent] = []
        for _ in range(10_000):
            mux_s = self.pair.to_server()
            for event in mux_s:
                s_new.extend(self.server.handle_event(event))
            mux_c = self.pair.to_client()
            for event in mux_c:
                c_new.extend(self.client.handle_event(event))
            if not mux_s and not mux_c and not self.pair._queued():
                break
        else:
            raise RuntimeError("still talking")
        self.client_events.extend(c_new)
        self.server_events.extend(s_new)
        return c_new, s_new


def offer(window: int | None = 1024 * 1024, **kw: Any) -> CapabilityOffer:
    return CapabilityOffer(extensions=ExtensionsOffer(flow_control=window, **kw))


def of_type(events: list[TerminalEvent], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


ENCODINGS = (Encoding.CBOR, Encoding.JSON)


# --------------------------------------------------------------- raw peers

from openmux import ChannelOpened, MessageReceived  # noqa: E402
from vroom_terminal import (  # noqa: E402
    Message,
    MessageType,
    control_spec,
    decode_message,
    encode_message,
    pty_spec,
)


class RawPeer:
    """One real endpoint (`self.endpoint`) against a bare openmux.Connection
    that the test drives by hand, so any byte sequence can be sent in any state."""

    def __init__(self, endpoint_side: str, make_endpoint: Any, *, server_policy: Any = None):
        policy = {"channel_policy": server_policy} if server_policy else {}
        self.pair = Pair(Config(is_client=True), Config(is_client=False, **policy),
                         handshake=False)  # fmt: skip
        self.side = endpoint_side
        mine = self.pair.server if endpoint_side == "server" else self.pair.client
        self.raw = self.pair.client if endpoint_side == "server" else self.pair.server
        self.endpoint = make_endpoint(mine)
        self.events: list[TerminalEvent] = []
        self.raw_events: list[Any] = []
        self.encoding: Encoding | None = None
        self.control: int | None = None
        self.pty: int | None = None
        self.pump()

    def pump(self) -> list[TerminalEvent]:
        new: list[TerminalEvent] = []
        for _ in range(10_000):
            if self.side == "server":
                mine, raw = self.pair.to_server(), self.pair.to_client()
            else:
                raw, mine = self.pair.to_server(), self.pair.to_client()
            for event in mine:
                new.extend(self.endpoint.handle_event(event))
            self.raw_events.extend(raw)
            for event in raw:
                if isinstance(event, ChannelOpened):
                    if event.channel.name.startswith("vroom.terminal.control"):
                        self.control = event.channel.id
                    elif event.channel.name.startswith("vroom.terminal.pty"):
                        self.pty = event.channel.id
            if not mine and not raw and not self.pair._queued():
                break
        self.events.extend(new)
        return new

    def open(self, spec: Any) -> list[TerminalEvent]:
        self.raw.open_channel(spec)
        return self.pump()

    def send(self, message: Message, encoding: Encoding | None = None) -> list[TerminalEvent]:
        type_, data = encode_message(message, encoding or self.encoding)
        assert self.control is not None
        self.raw.send_message(self.control, type_, data)
        return self.pump()

    def send_raw(self, type_: int, data: bytes, channel: int | None = None) -> list[TerminalEvent]:
        target = self.control if channel is None else channel
        assert target is not None
        self.raw.send_message(target, type_, data)
        return self.pump()

    def received(self) -> list[Message]:
        """Every control message the endpoint sent us, decoded."""
        out = []
        for event in self.raw_events:
            if isinstance(event, MessageReceived) and event.channel_id == self.control:
                out.append(decode_message(event.type, event.data, self._enc_for(event.data),
                                          from_server=self.side == "server"))  # fmt: skip
        return out

    def _enc_for(self, data: bytes) -> Encoding | None:
        # HELLO and anything before the agreement are JSON.
        if int.from_bytes(data[:4], "big") == MessageType.HELLO:
            return None
        return self.encoding

    def clear(self) -> None:
        self.raw_events.clear()
        self.events.clear()


__all__ = ["ENCODINGS", "RawPeer", "TermPair", "of_type", "offer", "pty_spec", "control_spec"]
