"""Errors raised by the asyncio layer; all are `OpenMuxError`s carrying a wire code."""

from __future__ import annotations

from ..codes import CloseCode
from ..connect_errors import HandshakeError as HandshakeError
from ..connect_errors import HandshakeTimeoutError as HandshakeTimeoutError
from ..connect_errors import TransportError as TransportError
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
