"""One error tree for the package; every error carries its OpenMux code.

`ProtocolError` describes what a *peer* did wrong. The connection never lets it
escape `receive_data()`: it answers on the wire (ERROR or CLOSE) and records the
cause, as websockets does. `LocalProtocolError` is raised for local misuse of
the API (sending on a closed channel, a message too large for an unreliable
channel, sending after CLOSE) and is the only thing the core raises at you.
"""

from __future__ import annotations

from .codes import CloseCode


class CodedError(Exception):
    """An error that carries the code that goes on the wire, and its reason.

    The shared root of each protocol's own tree (`OpenMuxError` here,
    `vroom_terminal.TerminalError`, `vroom_graphical.GraphicalError`); the
    trees stay apart (catching one never catches another's). Each base sets
    its default `code`; an instance may override it.
    """

    code: int

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else ""


class OpenMuxError(CodedError):
    """Base class. `code` is the OpenMux code that goes on the wire."""

    code = CloseCode.PROTOCOL_ERROR


class ProtocolError(OpenMuxError):
    """The peer broke the protocol; `fatal` says whether the connection must close."""

    def __init__(self, message: str, code: int = CloseCode.PROTOCOL_ERROR, *, fatal: bool = True):
        super().__init__(message, code)
        self.fatal = fatal


class FrameError(ProtocolError):
    """A frame header or frame boundary is invalid (always fatal)."""


class MessageTooLarge(ProtocolError):
    """A declared frame or reassembled message exceeds a limit (4005)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, CloseCode.MESSAGE_TOO_LARGE)


class NotOpenMux(ProtocolError):
    """A byte stream that does not start like OpenMux: close without a frame."""


class LocalProtocolError(OpenMuxError):
    """The local application misused the API; nothing was sent."""


class ConnectionClosedError(LocalProtocolError):
    """Sending was attempted after CLOSE was sent or received."""

    code = CloseCode.NORMAL
