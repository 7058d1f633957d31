"""OpenMux numbers: close/error codes, control message types, frame flags.

Kept in one module so that the codec, the connection and the docs quote the
same values (docs/protocol/openmux.md quotes them by hand: keep it in step when
this file changes).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

MAGIC = b"OMUX"
"""Sent once by a client before its first frame on byte-stream transports."""

VERSION: tuple[int, int, int] = (0, 1, 0)

CONTROL_CHANNEL = 0
RESERVED_CHANNEL = 255
MAX_CHANNEL_ID = 254

HEADER_SIZE = 6
EXTENDED_HEADER_SIZE = 8
MAX_STANDARD_LENGTH = 0xFFFF
MAX_EXTENDED_LENGTH = 0xFFFFFFFF

DEFAULT_MESSAGE_SIZE = 65535
"""maxMessageSize when HELLO/WELCOME leave it out, and the frame limit that
applies before the handshake has negotiated one."""

MIN_MESSAGE_SIZE = 64
"""House floor for a non-zero maxMessageSize: below it PING/PONG and the
smallest control messages could not be sent unfragmented, so a peer's smaller
value is raised to this and a local one is refused."""


class Flags(IntFlag):
    EXTENDED_LENGTH = 0x01
    FRAGMENT = 0x02
    FRAGMENT_END = 0x04


RESERVED_FLAG_BITS = 0xF8


class CloseCode(IntEnum):
    """Codes used in CLOSE, ERROR and CHANNEL_REJECT (OPENMUX.md §2 "Codes")."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED = 1003
    AUTH_FAILED = 4000
    INVALID_MESSAGE = 4001
    CHANNEL_FULL = 4002
    CHANNEL_NOT_FOUND = 4003
    RATE_LIMITED = 4004
    MESSAGE_TOO_LARGE = 4005
    VERSION_MISMATCH = 4006
    HELLO_TIMEOUT = 4007
    SESSION_NOT_FOUND = 4100
    SESSION_EXPIRED = 4101
    BUFFER_OVERFLOW = 4102
    SEQUENCE_MISMATCH = 4103


class ControlType(IntEnum):
    """Message types on channel 0."""

    HELLO = 0x01
    WELCOME = 0x02
    OPEN_CHANNEL = 0x03
    CHANNEL_ACK = 0x04
    CLOSE_CHANNEL = 0x05
    CHANNEL_REJECT = 0x06
    PING = 0x10
    PONG = 0x11
    CLOSE = 0x20
    SESSION_ID = 0x30
    RESUME_REQUEST = 0x31
    RESUME_RESPONSE = 0x32
    DETACH = 0x33
    SESSION_LIST_REQUEST = 0x34
    SESSION_LIST_RESPONSE = 0x35
    ATTACH_REQUEST = 0x36
    RESUME_ACK = 0x37
    ERROR = 0xF0


EXTENSION_TYPES = frozenset(range(0x30, 0x38))
"""Channel-0 types owned by the session-resume/persistence extensions."""
