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
# Bound methods looked up once: the hot loops call them per frame.
_pack_std = _STD.pack
_pack_ext = _EXT.pack
_unpack_std = _STD.unpack_from
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
        return _pack_ext(channel, type_, flags | _EXTENDED, 0, length)
    return _pack_std(channel, type_, flags, 0, length)


def encode_frame(channel: int, type_: int, payload: Buffer = b"", flags: int = 0) -> bytes:
    """One complete frame (header + payload) as bytes: the payload is copied once."""
    # `nbytes`, not `len()`: a memoryview of wider items counts items, not bytes.
    length = len(payload) if type(payload) is bytes else memoryview(payload).nbytes
    if length > MAX_STANDARD_LENGTH:
        return encode_header(channel, type_, length, flags) + payload
    return _pack_std(channel, type_, flags, 0, length) + payload


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
    if type(message) is not bytes:
        # One copy of the payload, never two: the caller may reuse its buffer.
        message = memoryview(message).cast("B")
    size = len(message)
    if size < HEADER_SIZE:
        raise FrameError(f"message of {size} bytes is shorter than a frame header")
    channel, type_, flags, reserved, length = _unpack_std(message)
    header = HEADER_SIZE
    if flags or reserved or channel == RESERVED_CHANNEL:
        check_header(channel, flags, reserved)
        if flags & _EXTENDED:
            if size < EXTENDED_HEADER_SIZE:
                raise FrameError("message is shorter than an extended frame header")
            (length,) = _EXT_LEN.unpack_from(message, 4)
            header = EXTENDED_HEADER_SIZE
            flags &= ~_EXTENDED
    if limit and length > limit:
        _check_length(length, limit)
    if size != header + length:
        raise FrameError(
            f"message of {size} bytes holds a frame of {header + length}: one message, one frame"
        )
    return channel, type_, flags, bytes(message[header:])  # no second copy of bytes


_SMALL_PIECE = 4096
"""Pieces of a partial frame smaller than this are copied into a bytearray
rather than kept as separate objects, so a peer trickling one byte per read
costs one byte of memory per byte, not ~50 (a bytes object and a list slot)."""


class FrameReader:
    """Incremental parser for byte-stream transports (TCP, TLS, stdio, QUIC streams).

    Bytes arrive in arbitrary chunks. Frames that lie inside one chunk are
    sliced out of it (one copy of the payload). For a frame that straddles
    chunks, the header is decoded and checked as soon as it is complete, then
    only the payload pieces are kept (memoryviews of the caller's immutable
    bytes, no copy) and joined once when the last one arrives: a 64 KiB frame
    arriving in many reads still costs exactly one copy. `limit` is the largest
    declared payload accepted (0 = only `hard_limit`); it may change after
    negotiation. A header error stops the reader: `feed` returns the frames
    before it and stores the exception in `error`.
    """

    __slots__ = ("_chunks", "_head", "_need", "_pending", "error", "hard_limit", "limit")

    def __init__(self, limit: int = 0, hard_limit: int = MAX_EXTENDED_LENGTH) -> None:
        self.limit = limit
        self.hard_limit = hard_limit
        self.error: FrameError | MessageTooLarge | None = None
        # Pieces of the first incomplete frame: its header bytes while `_head`
        # is None, else only its payload bytes.
        self._chunks: list[Buffer] = []
        self._pending = 0  # bytes in `_chunks`
        self._need = HEADER_SIZE  # bytes `_chunks` must reach to make progress
        # (channel, type, flags, header size) once the pending header is decoded
        self._head: tuple[int, int, int, int] | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        head = self._head
        return self._pending + (head[3] if head is not None else 0)

    def _limit(self) -> int:
        limit = self.limit
        hard = self.hard_limit
        return limit if limit and limit < hard else hard

    def feed(self, data: Buffer) -> list[RawFrame]:
        if self.error is not None:
            return []
        if type(data) is not bytes:
            # The caller may reuse a bytearray or memoryview: payloads handed out
            # (and pieces kept) must not change under the application.
            data = bytes(data)
        frames: list[RawFrame] = []
        try:
            if self._chunks or self._head is not None:
                off = self._complete(data, frames)
                if off < 0:
                    return frames
            else:
                off = 0
            self._parse(data, off, frames)
        except (FrameError, MessageTooLarge) as exc:
            self.error = exc
            self._chunks = []
            self._pending = 0
            self._head = None
        return frames

    def _stash(self, piece: Buffer) -> None:
        size = len(piece)
        if not size:
            return
        chunks = self._chunks
        if size < _SMALL_PIECE:
            if chunks and type(chunks[-1]) is bytearray:
                chunks[-1] += piece
            else:
                chunks.append(bytearray(piece))
        else:
            chunks.append(piece)
        self._pending += size

    def _complete(self, data: bytes, frames: list[RawFrame]) -> int:
        """Finish the frame started by earlier chunks with the front of `data`.

        Returns the offset in `data` where whole-frame parsing may resume, or
        -1 when all of `data` went into the pending frame.
        """
        size = len(data)
        pos = 0
        while self._head is None:
            # Header still incomplete: take just the bytes it lacks (<= 8).
            take = self._need - self._pending
            if size - pos < take:
                self._stash(data[pos:])
                return -1
            header = b"".join(self._chunks) + data[pos : pos + take]
            pos += take
            channel, type_, flags, reserved, length = _unpack_std(header)
            check_header(channel, flags, reserved)
            if flags & _EXTENDED:
                if len(header) < EXTENDED_HEADER_SIZE:
                    self._chunks = [header]
                    self._pending = len(header)
                    self._need = EXTENDED_HEADER_SIZE
                    continue
                (length,) = _EXT_LEN.unpack_from(header, 4)
                self._head = (channel, type_, flags & ~_EXTENDED, EXTENDED_HEADER_SIZE)
            else:
                self._head = (channel, type_, flags, HEADER_SIZE)
            self._chunks = []
            self._pending = 0
            self._need = length
        # The limit may have been lowered by a negotiation since the header came.
        _check_length(self._need, self._limit())
        take = self._need - self._pending
        if size - pos < take:
            self._stash(memoryview(data)[pos:] if pos else data)
            return -1
        chunks = self._chunks
        if chunks:
            chunks.append(memoryview(data)[pos : pos + take])
            payload = b"".join(chunks)
        else:
            payload = data[pos : pos + take]
        channel, type_, flags, _ = self._head
        frames.append((channel, type_, flags, payload))
        self._chunks = []
        self._pending = 0
        self._need = HEADER_SIZE
        self._head = None
        return pos + take

    def _parse(self, buf: bytes, off: int, frames: list[RawFrame]) -> None:
        """Whole frames from `buf[off:]`; the incomplete tail goes to `_chunks`."""
        append = frames.append
        unpack_std = _unpack_std
        limit = self._limit()
        size = len(buf)
        while True:
            start = off + HEADER_SIZE
            if start > size:
                break
            channel, type_, flags, reserved, length = unpack_std(buf, off)
            if flags or reserved or channel == RESERVED_CHANNEL:
                # Anything but a plain standard frame: validate, maybe extended.
                check_header(channel, flags, reserved)
                if flags & _EXTENDED:
                    start = off + EXTENDED_HEADER_SIZE
                    if start > size:
                        break
                    (length,) = _EXT_LEN.unpack_from(buf, off + 4)
                    flags &= ~_EXTENDED
            if length > limit:
                _check_length(length, limit)
            end = start + length
            if end > size:
                # Header complete, payload not: keep only the payload piece.
                self._head = (channel, type_, flags, start - off)
                self._need = length
                self._stash(memoryview(buf)[start:] if start else buf)
                return
            append((channel, type_, flags, buf[start:end]))
            off = end
        if off < size:
            # An incomplete header (< 8 bytes): copied, it is tiny.
            self._need = HEADER_SIZE if size - off < HEADER_SIZE else EXTENDED_HEADER_SIZE
            self._stash(buf[off:])
