"""Why a client could not open a session: shared by every client driver
(`openmux.aio` and the asyncio-free `openmux.polled`), so that callers
catch one set of classes whichever driver connected them."""

from __future__ import annotations

from .codes import CloseCode
from .errors import OpenMuxError


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
