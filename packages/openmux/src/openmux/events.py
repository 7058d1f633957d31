"""Events returned by `Connection.receive_data()` and friends.

Frozen, slotted dataclasses, as in h11/h2: cheap to make, safe to pass around.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._record import Record
from .channels import Channel, ChannelSpec


class Event(Record):
    """Base class of every event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class HandshakeCompleted(Event):
    """HELLO/WELCOME done; `channels` are those granted in WELCOME."""

    version: tuple[int, int, int]
    peer_version: tuple[int, int, int]
    extensions: tuple[str, ...]
    max_message_size: int
    ping_interval: float
    ping_timeout: float
    channels: tuple[Channel, ...]
    application: str | None = None
    hello: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ChannelOpened(Event):
    """A channel is open (granted in the handshake, or acknowledged later)."""

    channel: Channel
    request_id: int | None = None
    locally_initiated: bool = True


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ChannelRequested(Event):
    """The peer asked for a channel and the policy deferred the answer.

    Answer with `Connection.accept_channel(request_id)` or `reject_channel()`.
    """

    request_id: int
    spec: ChannelSpec


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ChannelRejected(Event):
    """A channel we asked for was refused."""

    request_id: int
    name: str
    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ChannelClosed(Event):
    channel: Channel
    reason: str = ""
    by_peer: bool = True


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class MessageReceived(Event):
    """A complete application message (reassembled if it was fragmented)."""

    channel_id: int
    type: int
    data: bytes


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PongReceived(Event):
    """Answer to our PING; `rtt` in seconds."""

    rtt: float


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ErrorReceived(Event):
    """The peer sent ERROR (informational, not fatal)."""

    code: int
    channel: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExtensionMessage(Event):
    """A negotiated extension message on channel 0 (types 0x30-0x37)."""

    type: int
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ConnectionTerminated(Event):
    """The connection is over: close the transport after sending `data_to_send()`.

    `code`/`reason` are the cause (the peer's CLOSE, ours, or 1001 "ping
    timeout"); `by_peer` tells who started the close.
    """

    code: int
    reason: str = ""
    by_peer: bool = False
