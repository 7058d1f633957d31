"""One error tree for VROOM-Terminal; every error carries the code that goes on the wire.

Codes are the House ERROR codes of VROOM-TERMINAL.md §2/§6 (HTTP-style, so a
client can tell a refusal from a typo without parsing text).

`ProtocolError` is what the *peer* did wrong: the state machines never let it
escape `handle_event()`; they answer it with an ERROR message (and close the
control channel when it is fatal) and report `ErrorSent`. Decoders raise it
(or a subclass) and nothing else, which is what the fuzz tests check.
`LocalProtocolError` is local misuse of the API and is the only thing raised
at the application.
"""

from __future__ import annotations

from enum import IntEnum

from openmux.errors import CodedError


class ErrorCode(IntEnum):
    BAD_MESSAGE = 400
    """Undecodable, a MUST key missing or mistyped, TLV header inconsistent,
    malformed WINDOW_ACK, or a refused HELLO version."""
    AUTH_FAILED = 401
    """AUTH_REQUEST refused; fatal, the control channel is closed."""
    FORBIDDEN = 403
    """Refused by policy, e.g. SET_ENV names outside the allow-list."""
    UNKNOWN = 404
    """Unknown TLV type or pty-channel message type."""
    WRONG_STATE = 409
    """Out of state; the state is unchanged. Wins over every other rule."""
    TOO_LARGE = 413
    """Over a size limit, checked before decoding."""
    UNSUPPORTED_ENCODING = 415
    """No control encoding in common (refused HELLO)."""
    INTERNAL = 500
    """The application failed."""
    UNAVAILABLE = 503
    """A resource is not available (PTY allocation, session limit)."""


class TerminalError(CodedError):
    """Base class. `code` is the House ERROR code that goes on the wire."""

    code = ErrorCode.BAD_MESSAGE


class ProtocolError(TerminalError):
    """The peer sent something we cannot accept; `fatal` says whether the
    control channel is closed after the ERROR."""

    def __init__(
        self, message: str, code: int = ErrorCode.BAD_MESSAGE, *, fatal: bool = False
    ) -> None:
        super().__init__(message, code)
        self.fatal = fatal


class DecodeError(ProtocolError):
    """Bytes that are not a valid message (TLV, payload encoding, or schema)."""


class MessageTooLarge(DecodeError):
    """A payload over the configured limit; refused before it is decoded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.TOO_LARGE)


class UnknownMessage(DecodeError):
    """A TLV type (or pty-channel type) this version does not define."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.UNKNOWN)


class WrongState(ProtocolError):
    """A message that is valid, but not now (409, state unchanged)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.WRONG_STATE)


class HandshakeError(ProtocolError):
    """A refused HELLO (400 version, 415 encoding): always fatal."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message, code, fatal=True)


class AuthenticationFailed(ProtocolError):
    """AUTH_REQUEST refused (401, fatal)."""

    def __init__(self, message: str = "authentication failed") -> None:
        super().__init__(message, ErrorCode.AUTH_FAILED, fatal=True)


class LocalProtocolError(TerminalError):
    """The application misused the API; nothing was sent."""

    code = ErrorCode.WRONG_STATE


__all__ = [
    "AuthenticationFailed",
    "DecodeError",
    "ErrorCode",
    "HandshakeError",
    "LocalProtocolError",
    "MessageTooLarge",
    "ProtocolError",
    "TerminalError",
    "UnknownMessage",
    "WrongState",
]
