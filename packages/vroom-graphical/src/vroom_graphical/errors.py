"""One error tree for VROOM-Graphical; every error carries the code that goes on the wire.

Codes are HTTP-style, as in VROOM-Terminal, and travel in NOTIFICATION
`code` (a House field) so a client can tell a refusal from a typo without
parsing text. The one OpenMux code we use, 4000, is what a server puts in
CHANNEL_REJECT for pointer/button outside interact.

`ProtocolError` is what the *peer* did wrong: the state machines never let it
escape `handle_event()`, they answer it (NOTIFICATION error, CLOSE_CHANNEL)
and report `BadMessage`. `LocalProtocolError` is local misuse of the API and
is the only thing raised at the application.
"""

from __future__ import annotations

from enum import IntEnum

from openmux.errors import CodedError


class ErrorCode(IntEnum):
    BAD_MESSAGE = 400
    """Undecodable, a MUST field missing or of the wrong type, bad packed input."""
    FORBIDDEN = 403
    """Refused by policy: `evaluate`, a non-http(s) URL, a capability not agreed."""
    UNKNOWN = 404
    """Unknown message type or COMMAND action."""
    WRONG_STATE = 409
    """Before VROOM_HANDSHAKE, a second handshake, or a message outside its modes."""
    TOO_LARGE = 413
    """Over a size limit, checked before decoding."""
    UNSUPPORTED_ENCODING = 415
    """No control encoding in common."""
    INTERNAL = 500
    """The application failed to carry out a COMMAND."""
    TIMEOUT = 504
    """A COMMAND (wait, navigate) did not finish in time."""
    VERSION_MISMATCH = 505
    """A different major version."""
    NOT_AUTHORISED = 4000
    """OpenMux CHANNEL_REJECT code for pointer/button outside interact."""


class GraphicalError(CodedError):
    """Base class. `code` is the code that goes on the wire."""

    code = ErrorCode.BAD_MESSAGE


class ProtocolError(GraphicalError):
    """The peer sent something we cannot accept.

    `ref` is the COMMAND id the bad message carried, if any, so the answer
    can echo it (House clarification 6).
    """

    def __init__(
        self, message: str, code: int = ErrorCode.BAD_MESSAGE, *, ref: str | int | None = None
    ) -> None:
        super().__init__(message, code)
        self.ref = ref


class DecodeError(ProtocolError):
    """Bytes that are not a valid message (control or packed input)."""


class MessageTooLarge(DecodeError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.TOO_LARGE)


class UnknownMessage(DecodeError):
    def __init__(self, message: str, *, ref: str | int | None = None) -> None:
        super().__init__(message, ErrorCode.UNKNOWN, ref=ref)


class HandshakeError(ProtocolError):
    """A VROOM_HANDSHAKE we refuse; the server closes the control channel after it."""


class LocalProtocolError(GraphicalError):
    """The application misused the API; nothing was sent."""

    code = ErrorCode.WRONG_STATE
