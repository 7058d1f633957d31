"""Frame codec: headers, stream parsing and message parsing (OPENMUX.md §1).

This module knows nothing of channels or handshakes; it turns bytes into
`(channel, type, flags, payload)` tuples and back, and enforces the rules that
can be checked from a header alone. Limits are checked on the *declared* length
before a payload is waited for or copied, so a hostile header never makes us
allocate.
"""

from __future__ import annotations

import struct
from ._types import Buffer

from .codes import (
    EXTENDED_HEADER_SIZE,
    HEADER_SIZE,
    MAX_EXTENDED_LENGTH,
    MAX_STANDARD_LENGTH,
    RESERVED_CHANNEL,
    RESERVED_FLAG_BITS,
    Flags,
)
from .errors import FrameError, MessageTooLarge

_STD = struct.Struct(">BBBBH")
_EXT = struct.Struct(">BBBBI")
_EXT_LEN = struct.Struct(">I")
_EXTENDED = int(Flags.EXTENDED_LENGTH)
_FRAGMENT = int(Flags.FRAGMENT)
_FRAGMENT_END = int(Flags.FRAGMENT_END)

RawFrame = tuple[int, int, int, bytes]
"""`(channel, type, flags, payload)`; flags never include EXTENDED_LENGTH."""


def encode_header(channel: int, type_: int, length: int, flags: int = 0) -> bytes:
    """A header for a payload of `length` bytes; EXTENDED_LENGTH is chosen as needed."""
    if length > MAX_STANDARD_LENGTH:
        if length > MAX_EXTENDED_LENGTH:
            raise ValueError(f"payload of {length} bytes does not fit one frame")
        return _EXT.pack(channel, type_, flags | _EXTENDED, 0, length)
    return _STD.pack(channel, type_, flags, 0, length)


def encode_frame(channel: int, type_: int, payload: Buffer = b"", flags: int = 0) -> bytes:
    """One complete frame (header + payload) as bytes."""
    return encode_header(channel, type_, len(memoryview(payload)), flags) + payload


def check_header(channel: int, flags: int, reserved: int) -> None:
    """Rules of OPENMUX.md §1 that a header alone can break (all CLOSE 1002)."""
    if reserved:
        raise FrameError(f"reserved header byte is {reserved:#04x}, must be 0")
    if flags & RESERVED_FLAG_BITS:
        raise FrameError(f"reserved flag bits set ({flags:#04x})")
    if channel == RESERVED_CHANNEL:
        raise FrameError("channel 255 is reserved")
    if flags & _FRAGMENT_END and not flags & _FRAGMENT:
        raise FrameError("FRAGMENT_END without FRAGMENT")


def _check_length(length: int, limit: int) -> None:
    if limit and length > limit:
        raise MessageTooLarge(f"frame declares {length} bytes, limit is {limit}")


def decode_message(message: Buffer, limit: int = 0) -> RawFrame:
    """Parse a transport message that must hold exactly one frame (message mode)."""
    mv = memoryview(message)
    size = len(mv)
    if size < HEADER_SIZE:
        raise FrameError(f"message of {size} bytes is shorter than a frame header")
    channel, type_, flags, reserved, length = _STD.unpack_from(mv)
    check_header(channel, flags, reserved)
    header = HEADER_SIZE
    if flags & _EXTENDED:
        if size < EXTENDED_HEADER_SIZE:
            raise FrameError("message is shorter than an extended frame header")
        (length,) = _EXT_LEN.unpack_from(mv, 4)
        header = EXTENDED_HEADER_SIZE
    _check_length(length, limit)
    if size != header + length:
        raise FrameError(
            f"message of {size} bytes holds a frame of {header + length}: one message, one frame"
        )
    return channel, type_, flags & ~_EXTENDED, bytes(mv[header:])


class FrameReader:
    """Incremental parser for byte-stream transports (TCP, TLS, stdio, QUIC streams).

    Bytes arrive in arbitrary chunks. Chunks are kept in a list until the next
    frame is complete, then joined once, so a large frame arriving in many
    reads costs one copy, not one per read. `limit` is the largest declared
    payload accepted (0 = only `hard_limit`); it may change after negotiation.
    A header error stops the reader: `feed` returns the frames before it and
    stores the exception in `error`.
    """

    __slots__ = ("_chunks", "_need", "_pending", "error", "hard_limit", "limit")

    def __init__(self, limit: int = 0, hard_limit: int = MAX_EXTENDED_LENGTH) -> None:
        self.limit = limit
        self.hard_limit = hard_limit
        self.error: FrameError | MessageTooLarge | None = None
        self._chunks: list[bytes] = []
        self._pending = 0
        self._need = HEADER_SIZE

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return self._pending

    def feed(self, data: Buffer) -> list[RawFrame]:
        if self.error is not None:
            return []
        if self._chunks:
            self._chunks.append(bytes(data))
            self._pending += len(self._chunks[-1])
            if self._pending < self._need:
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
        else:
            buf = data if isinstance(data, bytes) else bytes(data)
            if len(buf) < self._need:
                if buf:
                    self._chunks.append(buf)
                    self._pending = len(buf)
                return []
        return self._parse(buf)

    def _parse(self, buf: bytes) -> list[RawFrame]:
        frames: list[RawFrame] = []
        append = frames.append
        unpack_std = _STD.unpack_from
        limit = self.limit if self.limit and self.limit < self.hard_limit else self.hard_limit
        size = len(buf)
        off = 0
        need = HEADER_SIZE
        try:
            while size - off >= HEADER_SIZE:
                channel, type_, flags, reserved, length = unpack_std(buf, off)
                if reserved or flags & 0xF8 or channel == 255 or (flags & 6) == 4:
                    check_header(channel, flags, reserved)
                if flags & 1:
                    if size - off < EXTENDED_HEADER_SIZE:
                        need = EXTENDED_HEADER_SIZE
                        break
                    (length,) = _EXT_LEN.unpack_from(buf, off + 4)
                    start = off + EXTENDED_HEADER_SIZE
                    flags &= ~1
                else:
                    start = off + HEADER_SIZE
                if length > limit:
                    _check_length(length, limit)
                end = start + length
                if end > size:
                    need = end - off
                    break
                append((channel, type_, flags, buf[start:end]))
                off = end
        except (FrameError, MessageTooLarge) as exc:
            self.error = exc
            self._chunks = []
            self._pending = 0
            return frames
        self._need = need
        if off < size:
            rest = buf[off:] if off else buf
            self._chunks = [rest]
            self._pending = len(rest)
        else:
            self._pending = 0
        return frames
