"""`ChannelTap`: a protocol service's share of a session's events, by channel name.

A service that runs its own sans-IO protocol on some channels (vroomd's
terminal and graphical services, a test client) takes those channels'
events ahead of the asyncio layer with `Session.add_event_tap`. It has to
know which events are its own, and the core's channel table cannot tell:
the events of one transport read (a TCP segment, a batch of WebSocket
frames) come as one list AFTER the core handled all of them, so a message
followed in the same read by its channel's CHANNEL_CLOSE names a channel
the table no longer has, and the message would be lost. The tap therefore
keeps its own table, updated by the events in their order (and, for a
channel the service accepted itself, which no event announces, from the
core's table when the service answers the request or the channel's first
message comes).
"""

from __future__ import annotations

from collections.abc import Callable

from ..channels import Channel
from ..events import (
    ChannelClosed,
    ChannelOpened,
    ChannelRejected,
    ChannelRequested,
    ConnectionTerminated,
    Event,
    MessageReceived,
)
from .session import Message, Session

__all__ = ["ChannelTap"]


class ChannelTap:
    """Feeds `feed(event)` the events of the channels whose name `claims`.

    Its events: their `ChannelRequested`, `ChannelOpened`, `MessageReceived`,
    `ChannelClosed` and `ChannelRejected`; every other event goes on to the
    asyncio layer, and `ConnectionTerminated` goes to both.
    """

    __slots__ = ("_after", "_claims", "_feed", "channels", "session")

    def __init__(
        self,
        session: Session,
        claims: Callable[[str], bool],
        feed: Callable[[Event], None],
        *,
        after: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self._claims = claims
        self._feed = feed
        self._after = after
        """Called after each batch (e.g. to tell the transport about channels)."""
        self.channels: dict[int, Channel] = {}
        """The open channels that are ours, by id."""

    def install(self, adopt: Callable[[Channel, list[Message]], None] | None = None) -> None:
        """Start taking events, and adopt the claimed channels already open
        (granted in HELLO, before any tap): `adopt(channel, unread)` for
        each, by default `feed` of a `ChannelOpened` without request id, then
        of what the channel received and nobody read."""
        session = self.session
        session.add_event_tap(self)
        for channel in list(session.connection.channels.values()):
            if not self._claims(channel.name):
                continue
            self.channels[channel.id] = channel
            unread = session.detach_channel(channel.id)
            if adopt is not None:
                adopt(channel, unread)
                continue
            self._feed(ChannelOpened(channel, None, False))
            for message in unread:
                self._feed(MessageReceived(channel.id, message.type, message.data))

    def _learn(self, channel_id: int | None) -> bool:
        """Take in the claimed channels the core opened without an event
        through this tap (accepted by `feed` or later by a policy task);
        whether `channel_id` is now ours."""
        for cid, channel in self.session.connection.channels.items():
            if cid not in self.channels and self._claims(channel.name):
                self.channels[cid] = channel
        return channel_id in self.channels

    def __call__(self, events: list[Event]) -> list[Event]:
        rest: list[Event] = []
        claims, feed, channels = self._claims, self._feed, self.channels
        for event in events:
            kind = type(event)
            if kind is MessageReceived:
                assert isinstance(event, MessageReceived)
                if event.channel_id in channels or self._learn(event.channel_id):
                    feed(event)
                    continue
            elif kind is ChannelOpened:
                assert isinstance(event, ChannelOpened)
                if claims(event.channel.name):
                    channels[event.channel.id] = event.channel
                    feed(event)
                    continue
            elif kind is ChannelClosed:
                assert isinstance(event, ChannelClosed)
                if claims(event.channel.name):
                    channels.pop(event.channel.id, None)
                    feed(event)
                    continue
            elif kind is ChannelRequested:
                assert isinstance(event, ChannelRequested)
                if claims(event.spec.name):
                    feed(event)  # which may accept it: no event says so
                    self._learn(None)
                    continue
            elif kind is ChannelRejected:
                assert isinstance(event, ChannelRejected)
                if claims(event.name):
                    feed(event)
                    continue
            elif kind is ConnectionTerminated:
                feed(event)
            rest.append(event)
        if self._after is not None:
            self._after()
        return rest
