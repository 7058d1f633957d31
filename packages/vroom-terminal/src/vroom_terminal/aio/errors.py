"""What the asyncio client raises: one class per way a session can fail.

They extend vroom_terminal's error tree (`TerminalError`, each with the House
ERROR code that says the same thing on the wire), so one `except
TerminalError` catches every failure of a client, and a caller can tell a
refusal (401, 503) from a lost connection without parsing text.
"""

from __future__ import annotations

from ..errors import ErrorCode, TerminalError


class ClientError(TerminalError):
    """A connection or a process failed (base of the classes below)."""

    code = ErrorCode.INTERNAL


class ConnectError(ClientError):
    """The connection could not be opened (refused, unreachable, TLS, no
    answer within the timeout, the OpenMux handshake refused)."""

    code = ErrorCode.UNAVAILABLE


class AuthError(ClientError):
    """vroomd refused the token (401), or wants one and none was given."""

    code = ErrorCode.AUTH_FAILED


class PtyRefusedError(ClientError):
    """vroomd refused the PTY (e.g. its session limit): `reason` says why."""

    code = ErrorCode.UNAVAILABLE


class ServerBusyError(ClientError):
    """vroomd is at a limit (ERROR 503, e.g. its connection limit)."""

    code = ErrorCode.UNAVAILABLE


class SessionError(ClientError):
    """The server ended the session with a fatal ERROR (`code`) or closed it
    before the program's exit status."""


class ConnectionLost(ClientError):
    """The connection ended (either side, or the keepalive) while a process
    still ran or started; `close_code` is the OpenMux close code."""

    code = ErrorCode.UNAVAILABLE

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class StartTimeout(ClientError, TimeoutError):
    """The session did not start within the timeout (also a `TimeoutError`)."""

    code = ErrorCode.UNAVAILABLE


class ProcessError(ClientError):
    """`run(check=True)` / `wait(check=True)`: the program did not exit with 0.
    `result` is the `CompletedProcess`, as asyncssh's ProcessError carries."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


__all__ = [
    "AuthError",
    "ClientError",
    "ConnectError",
    "ConnectionLost",
    "ProcessError",
    "PtyRefusedError",
    "ServerBusyError",
    "SessionError",
    "StartTimeout",
]
