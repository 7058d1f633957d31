"""The client side of RFC 6455, sans-IO: the upgrade and the frames.

Why here and not in a transport: OpenMux's own WebSocket client
(`openmux.aio.wsclient`, asyncio) and `vroom term`'s asyncio-free driver
(`openmux.polled`) speak the same WebSocket, so the request, the check of
the answer, the masking and the frame parser live once, with no I/O and no
asyncio: bytes in, frames out, as the rest of the core.

What it speaks: one upgrade (no extensions, no subprotocol), binary
messages (fragmented or not), pings, the close handshake; a text message is
reported (OpenMux answers it with CLOSE 1002). Limits are checked before a
payload is buffered: the response head (`MAX_HEAD`) and the message size
(`max_size`, fragments included).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 64 * 1024
"""Most bytes of HTTP response head we buffer (websockets: 8 KiB lines, 128 headers)."""

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class WebSocketError(Exception):
    """A WebSocket protocol error; `code` is the close code to send (1002, 1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class UpgradeRefused(Exception):
    """The upgrade failed: `status` is the HTTP status (0 when the answer was
    not a valid one), `location` set for a 3xx that names one."""

    def __init__(self, message: str, status: int = 0, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.location = location


def proxy_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when a proxy is set in the environment (a `*_proxy` variable):
    websockets' client then goes through it, so our own clients hand over."""
    env = os.environ if env is None else env
    return any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in env.items()
    )


def _key_stream() -> Iterator[bytes]:
    while True:
        block = os.urandom(4096)
        for start in range(0, 4096, 4):
            yield block[start : start + 4]


mask_key: Callable[[], bytes] = _key_stream().__next__
"""Four bytes from the OS's CSPRNG for a frame's mask (RFC 6455 §5.3),
drawn 4 KiB at a time: `os.urandom(4)` per frame was a `getrandom` system
call on every keystroke. (A forked child would repeat its parent's next
keys; no OpenMux client forks.)"""


_KEY_BLOCK = struct.Struct("<1024I")
_keys: list[int] = []
_pop_key = _keys.pop
_from_bytes = int.from_bytes
# A small frame as one little-endian integer: head (2 bytes), key (4), the
# masked payload. `key * _KEY_SPREAD[size]` puts the key at byte 2 and
# repeated from byte 6 on (RFC 6455 §5.3: payload byte i is masked with key
# byte i % 4), `& _FRAME_BITS[size]` cuts what the last repeat put beyond
# the frame; the head and the payload after it (`_SMALL_HEADS[size] +
# payload`, zeros where the key goes) are XORed in.
_spreads = [1 << 16]  # by the number of 4-byte words of payload: built in 32 steps
for _word in range(32):
    _spreads.append(_spreads[-1] | 1 << (48 + 32 * _word))
_KEY_SPREAD = [_spreads[(size + 3) >> 2] for size in range(126)]
del _spreads, _word
_FRAME_BITS = [(1 << (8 * (size + 6))) - 1 for size in range(126)]
_SMALL_HEADS = [bytes((0x82, 0x80 | size)) + bytes(4) for size in range(126)]
"""The head of a final, masked binary frame of `size` (< 126) bytes, and room for its key."""


def encode_small(payload: bytes) -> bytes:
    """One final, masked binary client frame of a payload under 126 bytes
    (a keystroke): the same bytes as `encode_frame(BINARY, payload, key)`,
    computed as one integer (above) with a 32-bit key from a pool filled
    4 KiB of `os.urandom` at a time. Why: the general masking (a key from
    `mask_key`, `mask`, three concatenations) was ~9 k instructions per
    keystroke, a third of the client's; this is ~4 k. (As with `mask_key`,
    a forked child would repeat its parent's next keys; no client forks.)"""
    try:
        key = _pop_key()
    except IndexError:
        _keys.extend(_KEY_BLOCK.unpack(os.urandom(4096)))
        key = _pop_key()
    size = len(payload)
    return (
        key * _KEY_SPREAD[size] & _FRAME_BITS[size]
        ^ _from_bytes(_SMALL_HEADS[size] + payload, "little")
    ).to_bytes(size + 6, "little")


def mask(data: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3 masking, four bytes at a time as one big integer XOR."""
    size = len(data)
    if not size:
        return b""
    keys = (key * ((size >> 2) + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        size, "little"
    )


def encode_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final, masked client frame (the key: a fresh one when None)."""
    size = len(payload)
    if key is None:
        if size < 126 and opcode == BINARY:
            return encode_small(payload)
        key = mask_key()
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 0x10000:
        head = bytes((0x80 | opcode, 0x80 | 126)) + _U16.pack(size)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + _U64.pack(size)
    return head + key + mask(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    return _U16.pack(code) + reason.encode()[:123]


def close_code(payload: bytes) -> int:
    """The code of a CLOSE frame's payload (1000 when empty, 1002 when malformed)."""
    if len(payload) == 1:
        return 1002
    return _U16.unpack_from(payload)[0] if payload else 1000


class Target:
    """Where an upgrade goes: from a `ws://` or `wss://` URL."""

    __slots__ = ("host", "host_header", "path", "port", "secure", "target")

    def __init__(self, host: str, port: int, secure: bool, path: str, query: str) -> None:
        self.host, self.port, self.secure, self.path = host, port, secure, path
        self.target = f"{path}?{query}" if query else path
        if port != (443 if secure else 80):
            self.host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            self.host_header = f"[{host}]" if ":" in host else host

    @classmethod
    def of(cls, url: str, default_path: str) -> Target:
        from .urls import split_url

        parts = split_url(url)
        secure = parts.scheme == "wss"
        port = parts.port if parts.port is not None else (443 if secure else 80)
        return cls(parts.host or "127.0.0.1", port, secure, parts.path or default_path,
                   parts.query)  # fmt: skip


def client_request(
    host_header: str, target: str, headers: list[str] | None = None
) -> tuple[bytes, bytes]:
    """`(request, expected Sec-WebSocket-Accept)` for an upgrade to `target`."""
    # Here, and not hashlib/base64: hashlib loads OpenSSL's libcrypto and
    # base64 imports re, ~40 M instructions of a client's start for one SHA-1.
    from binascii import b2a_base64

    try:
        from _sha1 import sha1  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # pragma: no cover - a Python built without it
        from hashlib import sha1

    key = b2a_base64(os.urandom(16), newline=False)
    accept = b2a_base64(sha1(key + GUID).digest(), newline=False)
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        "User-Agent: Python openmux",
        *(headers or ()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept


def parse_response(buffer: bytearray, accept: bytes) -> bool:
    """True once `buffer` holds a whole, valid `101` answer, which is then
    removed from it (what follows is frames); False: wait for more bytes.
    Raises `UpgradeRefused` for any other answer or a head over `MAX_HEAD`."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise UpgradeRefused("WebSocket upgrade: response head too large")
        return False
    head = bytes(buffer[:end]).decode("latin-1")
    del buffer[: end + 4]
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise UpgradeRefused("did not receive a valid HTTP response")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise UpgradeRefused("did not receive a valid HTTP response")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if status != 101:
        location = headers.get("location") if 300 <= status < 400 else None
        raise UpgradeRefused(f"WebSocket upgrade refused: HTTP {status}", status, location)
    upgrade = headers.get("upgrade", "").lower()
    connection = [t.strip().lower() for t in headers.get("connection", "").split(",")]
    if upgrade != "websocket" or "upgrade" not in connection:
        raise UpgradeRefused("WebSocket upgrade: bad Upgrade/Connection headers", status)
    if headers.get("sec-websocket-accept", "").encode() != accept:
        raise UpgradeRefused("WebSocket upgrade: bad Sec-WebSocket-Accept", status)
    if "sec-websocket-extensions" in headers or "sec-websocket-protocol" in headers:
        raise UpgradeRefused("WebSocket upgrade: unrequested extension or protocol", status)
    return True


class FrameDecoder:
    """Server frames to messages: `buffer` is fed by the caller (`+=`), each
    `next()` returns `(opcode, payload)` or None when more bytes are needed.

    Opcodes returned: BINARY (a whole message, fragments joined), TEXT (a
    text message began: the rest of it is skipped), PING, PONG, CLOSE.
    Raises `WebSocketError` (1002 protocol error, 1009 message too big; the
    size is checked before the payload is buffered).
    """

    __slots__ = (
        "buffer", "fragments", "held", "held_size", "max_size", "need", "pending", "skipping_text",
    )  # fmt: skip

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.buffer = bytearray()
        self.fragments: list[bytes] | None = None  # a binary message being assembled
        self.pending = 0  # their total size
        self.skipping_text = False
        self.held: list[bytes] = []
        """The pieces of a plain binary frame cut by the end of a read
        (`feed`), ahead of anything in `buffer`."""
        self.held_size = 0
        self.need = 0
        """The whole size of the frame cut in `held`, or at the start of
        `buffer` once its header is there (0: not known): until then a read
        is only added to it, not parsed again."""

    @property
    def idle(self) -> bool:
        """Between messages with nothing buffered: a whole frame may bypass it."""
        return (
            not self.buffer and not self.held and self.fragments is None and not self.skipping_text
        )

    def feed(self, data: bytes) -> list[bytes]:
        """Take a read: the payloads of the whole, final binary frames it
        completes or holds, in order, up to the first frame that is not one
        (control, text, fragment, 64-bit length, over `max_size`) or is cut;
        what follows stays for `next()`, which the caller runs next (it
        raises the errors, limits included) when `buffer` holds `need` bytes.

        Why: a read of bulk output holds several frames; here they cost a
        slice each and can go to the session as one batch, where `next()`
        costs a copy into the buffer, a copy out and a call per frame (and
        the session's work per message). A plain frame cut by the end of a
        read is kept as its pieces (`held`), joined once when `need` bytes
        are there: not copied into the buffer and out again on every read."""
        held = self.held
        if held and not self.buffer:
            held.append(data)
            self.held_size += len(data)
            if self.held_size < self.need:
                return []
            data = b"".join(held)
            self.held, self.held_size = [], 0
        elif held or self.buffer or self.fragments is not None or self.skipping_text:
            buf = self.buffer
            if held:
                self._unhold()
            buf += data
            if len(buf) < self.need or self.fragments is not None or self.skipping_text:
                return []
            data = bytes(buf)
            buf.clear()
        self.need = 0
        payloads: list[bytes] = []
        size = len(data)
        limit = self.max_size
        off = 0
        while size - off >= 2:
            second = data[off + 1]
            if data[off] != 0x82 or second > 126:
                break  # not a final binary frame, masked, or a 64-bit length
            if second == 126:
                if size - off < 4:
                    break
                length = (data[off + 2] << 8) | data[off + 3]
                start = off + 4
            else:
                length = second
                start = off + 2
            if length > limit:
                break  # `next()` answers it (1009) before the payload is buffered
            end = start + length
            if end > size:
                self.held = [data[off:] if off else data]
                self.held_size = size - off
                self.need = end - off
                return payloads
            payloads.append(data[start:end])
            off = end
        if off < size:
            self.buffer += data[off:] if off else data
        return payloads

    def _unhold(self) -> None:
        """The kept pieces of a cut frame into `buffer`, ahead of what is there."""
        self.buffer[:0] = b"".join(self.held)
        self.held, self.held_size = [], 0

    def next(self) -> tuple[int, bytes] | None:
        if self.held:
            self._unhold()
        buf = self.buffer
        while True:
            size = len(buf)
            if size < 2:
                return None
            b0, b1 = buf[0], buf[1]
            if b0 & 0x70 or b1 & 0x80:  # reserved bits (no extension) or a masked server frame
                raise WebSocketError(1002, "protocol error")
            opcode, length, offset = b0 & 0x0F, b1 & 0x7F, 2
            if length == 126:
                if size < 4:
                    return None
                length, offset = _U16.unpack_from(buf, 2)[0], 4
            elif length == 127:
                if size < 10:
                    return None
                length, offset = _U64.unpack_from(buf, 2)[0], 10
            fin = b0 & 0x80
            if opcode >= 8:
                if not fin or length > 125:
                    raise WebSocketError(1002, "bad control frame")
            elif self.pending + length > self.max_size:  # before buffering the payload
                raise WebSocketError(1009, "message too big")
            if size < offset + length:
                self.need = offset + length
                return None
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            self.need = 0
            result = self._frame(opcode, bool(fin), payload)
            if result is not None:
                return result

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> tuple[int, bytes] | None:
        if opcode == BINARY and self.fragments is None and not self.skipping_text:
            if fin:
                return BINARY, payload
            self.fragments, self.pending = [payload], len(payload)
            return None
        if opcode == CONT:
            if self.skipping_text:
                self.skipping_text = not fin
                return None
            if self.fragments is None:
                raise WebSocketError(1002, "unexpected continuation frame")
            self.fragments.append(payload)
            self.pending += len(payload)
            if not fin:
                return None
            message, self.fragments, self.pending = b"".join(self.fragments), None, 0
            return BINARY, message
        if opcode == TEXT and self.fragments is None and not self.skipping_text:
            self.skipping_text = not fin
            return TEXT, b""
        if opcode in (PING, PONG, CLOSE):
            return opcode, payload
        raise WebSocketError(1002, "unexpected frame")


__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "MAX_HEAD",
    "PING",
    "PONG",
    "TEXT",
    "FrameDecoder",
    "Target",
    "UpgradeRefused",
    "WebSocketError",
    "client_request",
    "close_code",
    "close_payload",
    "encode_frame",
    "encode_small",
    "mask",
    "mask_key",
    "parse_response",
    "proxy_configured",
]
