"""Events returned by `GraphicalServer.handle_event()` / `GraphicalClient.handle_event()`.

Frozen, slotted dataclasses, as in h11/h2. Every event names its `session`
(the channel-name suffix: `""` for the first session, `"#2"` ...), last and
defaulted so that single-session code can ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .inputs import ButtonMessage, PointerMessage
from .messages import (
    ClientHandshake,
    CommandId,
    Cursor,
    Mode,
    Notification,
    ServerHandshake,
    State,
    Timestamp,
    Viewport,
)


class GraphicalEvent:
    """Base class of every event."""

    __slots__ = ()


# ------------------------------------------------------------------ both sides


@dataclass(frozen=True, slots=True)
class HandshakeDone(GraphicalEvent):
    """VROOM_HANDSHAKE completed. `handshake` is the peer's; `capabilities`
    and `encoding` are what both sides agreed; `viewport` is the agent's."""

    handshake: ClientHandshake | ServerHandshake
    encoding: str
    capabilities: tuple[str, ...]
    mode: Mode
    viewport: Viewport
    session: str = ""


@dataclass(frozen=True, slots=True)
class HandshakeFailed(GraphicalEvent):
    """The handshake was refused (by us or the peer); the control channel closes."""

    code: int
    reason: str
    session: str = ""


@dataclass(frozen=True, slots=True)
class ModeChanged(GraphicalEvent):
    """Server: the client sent MODE (already acknowledged with STATE).
    Client: the server's STATE acknowledged a new mode."""

    mode: Mode
    previous: Mode
    session: str = ""


@dataclass(frozen=True, slots=True)
class ChatReceived(GraphicalEvent):
    role: str
    text: str
    timestamp: Timestamp | None = None
    session: str = ""


@dataclass(frozen=True, slots=True)
class ClipboardReceived(GraphicalEvent):
    """Server: `set` (write the page's clipboard), `get` (answer with
    `send_clipboard`), `push` (the client's clipboard changed). Client: `push`."""

    direction: str
    text: str | None
    mime_type: str = "text/plain"
    session: str = ""


@dataclass(frozen=True, slots=True)
class BadMessage(GraphicalEvent):
    """A peer message we refused (the server has answered it with a
    NOTIFICATION error). For logs and tests; nothing to do."""

    code: int
    reason: str
    session: str = ""


@dataclass(frozen=True, slots=True)
class VideoOpened(GraphicalEvent):
    """The `video` channel (WebSocket path) is open: frames may flow."""

    session: str = ""


@dataclass(frozen=True, slots=True)
class VideoClosed(GraphicalEvent):
    session: str = ""


@dataclass(frozen=True, slots=True)
class SessionClosed(GraphicalEvent):
    """The control channel (or the whole connection) is gone; so is the session."""

    reason: str = ""
    session: str = ""


# ------------------------------------------------------------------ server side


@dataclass(frozen=True, slots=True)
class Resized(GraphicalEvent):
    """The client's viewport changed (RESIZE). To follow it, resize the
    agent's page and call `GraphicalServer.set_viewport()`."""

    viewport: Viewport
    session: str = ""


@dataclass(frozen=True, slots=True)
class PointerInput(GraphicalEvent):
    input: PointerMessage
    session: str = ""


@dataclass(frozen=True, slots=True)
class ButtonInput(GraphicalEvent):
    input: ButtonMessage
    session: str = ""


@dataclass(frozen=True, slots=True)
class CommandReceived(GraphicalEvent):
    """A COMMAND that passed mode and security checks. Answer it exactly
    once with `GraphicalServer.reply(event, ...)`; `ticket` identifies it
    even when the client gave no `id`."""

    id: CommandId | None
    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    ticket: int = 0
    session: str = ""


@dataclass(frozen=True, slots=True)
class NavigateRequested(GraphicalEvent):
    """NAVIGATE that passed the scheme check (`url` normalised). Success is
    reported by STATE; a failure with `send_notification(type="error")`."""

    url: str
    new_tab: bool = False
    session: str = ""


@dataclass(frozen=True, slots=True)
class PasteReceived(GraphicalEvent):
    """Type this text at the focus (unlike CLIPBOARD set)."""

    text: str
    session: str = ""


# ------------------------------------------------------------------ client side


@dataclass(frozen=True, slots=True)
class InputReady(GraphicalEvent):
    """`pointer` and `button` are open: input methods may be used."""

    session: str = ""


@dataclass(frozen=True, slots=True)
class ChannelRefused(GraphicalEvent):
    """The server rejected one of our channels (pointer/button outside interact: 4000)."""

    name: str
    code: int
    reason: str = ""
    session: str = ""


@dataclass(frozen=True, slots=True)
class StateReceived(GraphicalEvent):
    state: State
    session: str = ""


@dataclass(frozen=True, slots=True)
class CursorReceived(GraphicalEvent):
    cursor: Cursor
    session: str = ""


@dataclass(frozen=True, slots=True)
class NotificationReceived(GraphicalEvent):
    """`completes` is True when this is the final NOTIFICATION of one of our COMMANDs."""

    notification: Notification
    completes: bool = False
    session: str = ""


@dataclass(frozen=True, slots=True)
class VideoFrame(GraphicalEvent):
    """One JPEG frame from the `video` channel (WebSocket path)."""

    jpeg: bytes
    session: str = ""


__all__ = [
    "BadMessage",
    "ButtonInput",
    "ChannelRefused",
    "ChatReceived",
    "ClipboardReceived",
    "CommandReceived",
    "CursorReceived",
    "GraphicalEvent",
    "HandshakeDone",
    "HandshakeFailed",
    "InputReady",
    "ModeChanged",
    "NavigateRequested",
    "NotificationReceived",
    "PasteReceived",
    "PointerInput",
    "Resized",
    "SessionClosed",
    "StateReceived",
    "VideoClosed",
    "VideoFrame",
    "VideoOpened",
]
