"""The pty channel's message types (the mux Type byte on `vroom.terminal.pty`).

| type | name | dir | payload |
|---|---|---|---|
| 0x00 | DATA | both | raw PTY bytes, 8-bit clean |
| 0x01 | WINDOW_ACK | C→S | u64 BE: pty payload bytes consumed since the session started |
| 0x02 | ZSTD_DATA | both | one zstd frame, only when `zstd_compression` was selected |
| 0x03 | EOF | C→S | empty: the client's input ended (end of local stdin) |

0x00-0x02 are House §6.1; 0x03 is ours (the spec leaves open how the end of
a piped stdin reaches the command; see docs/protocol/terminal.md).
"""

from __future__ import annotations

import enum
import struct

from .errors import DecodeError

_U64 = struct.Struct(">Q")


class PtyType(enum.IntEnum):
    DATA = 0x00
    WINDOW_ACK = 0x01
    ZSTD_DATA = 0x02
    EOF = 0x03


def encode_window_ack(count: int) -> bytes:
    return _U64.pack(count)


def decode_window_ack(payload: bytes) -> int:
    if len(payload) != _U64.size:
        raise DecodeError(f"WINDOW_ACK payload is {len(payload)} bytes, not 8")
    count: int = _U64.unpack(payload)[0]
    return count


def check_eof(payload: bytes) -> None:
    if payload:
        raise DecodeError(f"EOF carries {len(payload)} bytes, it must be empty")


__all__ = ["PtyType", "check_eof", "decode_window_ack", "encode_window_ack"]
