"""Errors raised by the asyncio layer; all are `OpenMuxError`s carrying a wire code."""

from __future__ import annotations

from ..codes import CloseCode
from ..errors import ConnectionClosedError, OpenMuxError


class ChannelRejectedError(OpenMuxError):
    """The peer answered our OPEN_CHANNEL with CHANNEL_REJECT; `code` is its code."""

    def __init__(self, name: str, code: int, reason: str = "") -> None:
        super().__init__(f"channel {name!r} rejected ({code}): {reason}".rstrip(": "), code)
        self.name = name
        self.peer_reason = reason


class ChannelClosedError(OpenMuxError):
    """The channel was closed (by either side, or because the session ended)."""

    code = CloseCode.NORMAL


class SessionClosedError(ConnectionClosedError):
    """The session is over; `code`/`reason` are the session's close code and reason."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"session closed ({code}) {reason}".rstrip(), code)
        self.close_reason = reason


class HandshakeError(OpenMuxError):
    """The connection ended before WELCOME (auth refused 4000, version 4006, ...)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"handshake failed ({code}) {reason}".rstrip(), code)
        self.close_reason = reason


class TransportError(OpenMuxError):
    """The transport could not be opened (refused, TLS failure, HTTP 401, timeout)."""

    code = CloseCode.GOING_AWAY


class HandshakeTimeoutError(TransportError, TimeoutError):
    """No session within `connect(timeout=...)`: a server that accepts the socket
    (or the WebSocket upgrade) and never sends WELCOME must not hang a client.
    Also a `TimeoutError`, what `connect()` raised before it had a message."""
