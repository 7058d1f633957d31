"""Events returned by `TerminalServer.handle_event()` / `TerminalClient.handle_event()`.

Frozen, slotted dataclasses as in h11/h2. Every one names its `session`,
the channel-name suffix (`""` for the first session, `"#2"` ...), so that
several sessions on one connection stay apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openmux._record import Record

from .capabilities import CapabilityOffer, CapabilitySelect
from .codec import Encoding
from .messages import PtyRequest, PtyResponse


class TerminalEvent(Record):
    """Base class of every event."""

    __slots__ = ()


# ------------------------------------------------------------- both sides


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SessionOpened(TerminalEvent):
    """The control channel is open. A server over its session limit answers
    with `send_error(session, 503, ..., fatal=True)`."""

    session: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class HelloCompleted(TerminalEvent):
    """HELLOs exchanged; every later structured payload uses `encoding`.
    A client that has no preset offer calls `offer()` now."""

    session: str
    encoding: Encoding


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Negotiated(TerminalEvent):
    """CAPABILITY_SELECT sent (server) or received (client)."""

    session: str
    offer: CapabilityOffer
    select: CapabilitySelect


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class AuthResult(TerminalEvent):
    session: str
    ok: bool
    method: str = ""
    username: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyReady(TerminalEvent):
    """The pty channel is open: data can flow."""

    session: str
    channel_id: int


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SessionActive(TerminalEvent):
    """The program was requested and the pty channel is open (§3 SessionActive)."""

    session: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ErrorReceived(TerminalEvent):
    session: str
    code: int
    message: str
    fatal: bool
    names: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ErrorSent(TerminalEvent):
    """We answered something the peer did wrong (for logs and tests)."""

    session: str
    code: int
    message: str
    fatal: bool


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SessionClosed(TerminalEvent):
    """The session is over; its channels are closed (vroomd hangs up the PTY)."""

    session: str
    reason: str = ""
    by_peer: bool = True


# ------------------------------------------------------------ server side


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyRequested(TerminalEvent):
    """Answer with `grant_pty(session)` or `refuse_pty(session, reason)`."""

    session: str
    request: PtyRequest


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class EnvSet(TerminalEvent):
    """Only the allowed names; the refused ones were answered with ERROR 403."""

    session: str
    env: Mapping[str, str]
    refused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ShellRequested(TerminalEvent):
    session: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExecRequested(TerminalEvent):
    """Exactly one of `command` (for the user's shell, `-c`) and `argv`."""

    session: str
    command: str | None = None
    argv: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class WindowResized(TerminalEvent):
    session: str
    rows: int
    cols: int
    pixel_width: int
    pixel_height: int


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SignalRequested(TerminalEvent):
    """`number` in the Linux numbering, `name` without SIG; goes to the PTY's
    foreground process group (killpg(tcgetpgrp(master)))."""

    session: str
    number: int
    name: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyInput(TerminalEvent):
    """Bytes for the PTY master; `compressed` means one zstd frame (0x02)."""

    session: str
    data: bytes
    compressed: bool = False


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class InputClosed(TerminalEvent):
    """pty EOF (0x03): the client's input ended; deliver end of input."""

    session: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class WindowAcked(TerminalEvent):
    """Credit came back: resume reading the PTY if `available` > 0."""

    session: str
    acked: int
    available: int


# ------------------------------------------------------------ client side


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyGranted(TerminalEvent):
    """PTY_RESPONSE ok; the client has asked for the pty channel."""

    session: str
    response: PtyResponse


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyRefused(TerminalEvent):
    session: str
    reason: str


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyOutput(TerminalEvent):
    """Output bytes; call `ack(len(data), session=...)` once they were consumed."""

    session: str
    data: bytes
    compressed: bool = False


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExitStatusReceived(TerminalEvent):
    """Reported once every output byte announced by the server has arrived."""

    session: str
    code: int | None
    signal: str | None
    core_dumped: bool


__all__ = [
    "AuthResult",
    "EnvSet",
    "ErrorReceived",
    "ErrorSent",
    "ExecRequested",
    "ExitStatusReceived",
    "HelloCompleted",
    "InputClosed",
    "Negotiated",
    "PtyGranted",
    "PtyInput",
    "PtyOutput",
    "PtyReady",
    "PtyRefused",
    "PtyRequested",
    "SessionActive",
    "SessionClosed",
    "SessionOpened",
    "ShellRequested",
    "SignalRequested",
    "TerminalEvent",
    "WindowAcked",
    "WindowResized",
]
