"""A WebSocket client of OpenMux's own (RFC 6455, client side), for start-up.

Why: importing `websockets` costs a client ~25 ms of CPU before its first
byte (its package imports `importlib.metadata` for a version string, and
with it `email`, `zipfile` and `pathlib`; its client imports `urllib.request`
for proxy support), a quarter of `vroom term`'s start. An OpenMux client
needs little of it: one upgrade, binary messages, pings, the close
handshake. `connect(url, ws_client="builtin")` (what `vroom term` passes)
uses this; every other caller, and every server, keeps `websockets`
(ws.py). It hands over to ws.py when websockets would do something this
does not: a proxy configured in the environment, an HTTP redirect.

It speaks as ws.py's client does: the same upgrade request (no extensions,
no subprotocol, `Authorization: Bearer` when `auth_header` is set), HTTP
401/403 as `HandshakeError(4000)`, another status as `TransportError`, the
same size limit (`max_reassembly` + two headers, checked before a payload is
buffered), a text message answered with OpenMux CLOSE 1002, WebSocket close
1000 (1001 when the session went away) when the session ends, 1002 on a
WebSocket protocol error, 1009 on a message over the limit.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import struct
from typing import Any, cast

from ..codes import HEADER_SIZE, CloseCode
from ._urls import netloc, split
from .errors import HandshakeError, TransportError
from .session import Options, Session

logger = logging.getLogger("openmux")

DEFAULT_PATH = "/omux"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 64 * 1024
"""Most bytes of HTTP response head we buffer (websockets: 8 KiB lines, 128 headers)."""

_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0, 1, 2, 8, 9, 10
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class _Redirect(Exception):
    """The upgrade answered 3xx: websockets follows redirects, so ws.py takes over."""


def proxy_configured(env: Any = None) -> bool:
    """True when websockets would look for a proxy (a `*_proxy` variable)."""
    env = os.environ if env is None else env
    return any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in env.items()
    )


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
    """One final, masked client frame."""
    key = os.urandom(4) if key is None else key
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 0x10000:
        head = bytes((0x80 | opcode, 0x80 | 126)) + _U16.pack(size)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + _U64.pack(size)
    return head + key + mask(payload, key)


def _close_payload(code: int, reason: str = "") -> bytes:
    return _U16.pack(code) + reason.encode()[:123]


class WSClientProtocol(asyncio.Protocol):
    """The upgrade, then frames: feeds a message-mode `Session`, is its `FrameSink`."""

    def __init__(self, session: Session, request: bytes, accept: bytes, max_size: int) -> None:
        self.session = session
        self.request = request
        self.accept = accept
        self.max_size = max_size
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open = False
        self.attached = False
        """True once the session has this protocol as its sink (frames flow)."""
        self.buffer = bytearray()
        self.fragments: list[bytes] | None = None  # a binary message being assembled
        self.skipping_text = False
        self.close_sent = False
        self.close_code: int | None = None
        """The close code we sent (ws.py's tests read websockets' `close_code`)."""
        self.close_received = False
        self.paused = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_timer: asyncio.TimerHandle | None = None

    # -- asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - platform dependent
                pass
        limit = self.session.options.write_limit
        self.transport.set_write_buffer_limits(high=limit, low=limit // 4)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        # The common case, a keystroke's echo: one whole small binary frame.
        if (
            self.attached
            and not self.buffer
            and len(data) >= 2
            and data[0] == 0x82
            and data[1] < 126  # unmasked, 7-bit length
            and len(data) - 2 == data[1]
            and self.fragments is None
            and not self.skipping_text
            and not self.paused
            and self.open
        ):
            self.session.message_received(data[2:])
            return
        self.buffer += data
        if not self.open:
            self._handshake()
        elif self.attached:
            self._frames()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.opened.done():
            self.opened.set_exception(
                exc or TransportError("did not receive a valid HTTP response")
            )
            return
        if self.open and self.attached:
            self.open = False
            clean = self.close_received and exc is None
            self.session.connection_lost(None if clean else exc)
        self.open = False

    def pause_writing(self) -> None:
        self.session.pause_writing()

    def resume_writing(self) -> None:
        self.session.resume_writing()

    # -- the upgrade

    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._refuse(TransportError("WebSocket upgrade: response head too large"))
            return False
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            self._refuse(TransportError("did not receive a valid HTTP response"))
            return False
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._refuse(TransportError("did not receive a valid HTTP response"))
                return False
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if status != 101:
            if status in (401, 403):
                error: Exception = HandshakeError(CloseCode.AUTH_FAILED, f"HTTP {status}")
            elif 300 <= status < 400 and "location" in headers:
                error = _Redirect()
            else:
                error = TransportError(f"WebSocket upgrade refused: HTTP {status}")
            self._refuse(error)
            return False
        upgrade = headers.get("upgrade", "").lower()
        connection = [t.strip().lower() for t in headers.get("connection", "").split(",")]
        if upgrade != "websocket" or "upgrade" not in connection:
            self._refuse(TransportError("WebSocket upgrade: bad Upgrade/Connection headers"))
            return False
        if headers.get("sec-websocket-accept", "").encode() != self.accept:
            self._refuse(TransportError("WebSocket upgrade: bad Sec-WebSocket-Accept"))
            return False
        if "sec-websocket-extensions" in headers or "sec-websocket-protocol" in headers:
            self._refuse(TransportError("WebSocket upgrade: unrequested extension or protocol"))
            return False
        self.open = True
        self.opened.set_result(None)
        return True

    def _refuse(self, error: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    # -- frames

    def _frames(self) -> None:
        buf = self.buffer
        while self.open and self.attached and not self.paused:
            size = len(buf)
            if size < 2:
                return
            b0, b1 = buf[0], buf[1]
            if b0 & 0x70 or b1 & 0x80:  # reserved bits (no extension) or a masked server frame
                self._fail(1002, "protocol error")
                return
            opcode, length, offset = b0 & 0x0F, b1 & 0x7F, 2
            if length == 126:
                if size < 4:
                    return
                length, offset = _U16.unpack_from(buf, 2)[0], 4
            elif length == 127:
                if size < 10:
                    return
                length, offset = _U64.unpack_from(buf, 2)[0], 10
            fin = b0 & 0x80
            if opcode >= 8:
                if not fin or length > 125:
                    self._fail(1002, "bad control frame")
                    return
            else:
                pending = sum(map(len, self.fragments)) if self.fragments else 0
                if pending + length > self.max_size:  # before buffering the payload
                    self._fail(1009, "message too big")
                    return
            if size < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            self._frame(opcode, bool(fin), payload)

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == _BINARY and self.fragments is None and not self.skipping_text:
            if fin:
                self.session.message_received(payload)
            else:
                self.fragments = [payload]
        elif opcode == _CONT:
            if self.skipping_text:
                self.skipping_text = not fin
            elif self.fragments is None:
                self._fail(1002, "unexpected continuation frame")
            else:
                self.fragments.append(payload)
                if fin:
                    message, self.fragments = b"".join(self.fragments), None
                    self.session.message_received(message)
        elif opcode == _TEXT and self.fragments is None and not self.skipping_text:
            self.skipping_text = not fin
            self.session.fail(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux WebSocket")
        elif opcode == _PING:
            self._send(_PONG, payload)
        elif opcode == _PONG:
            pass
        elif opcode == _CLOSE:
            self._on_close(payload)
        else:
            self._fail(1002, "unexpected frame")

    def _on_close(self, payload: bytes) -> None:
        self.close_received = True
        if len(payload) == 1:
            code = 1002
        elif payload:
            code = _U16.unpack_from(payload)[0]
        else:
            code = 1000
        if not self.close_sent:  # echo the peer's code (RFC 6455 §5.5.1)
            self.close_sent = True
            self.close_code = code
            self._write(encode_frame(_CLOSE, payload[:2] if len(payload) != 1 else b""))
        assert self.transport is not None
        self.transport.close()  # the handshake is over: nothing more will come

    def _fail(self, code: int, reason: str) -> None:
        logger.debug("websocket client: %s (%d)", reason, code)
        self._send_close(code, reason)
        self.open = False
        assert self.transport is not None
        self.transport.close()
        self.session.connection_lost(TransportError(f"WebSocket: {reason}"))

    def _send(self, opcode: int, payload: bytes) -> None:
        if not self.close_sent:
            self._write(encode_frame(opcode, payload))

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _send_close(self, code: int, reason: str = "") -> None:
        if not self.close_sent:
            self.close_sent = True
            self.close_code = code
            self._write(encode_frame(_CLOSE, _close_payload(code, reason)))

    # -- FrameSink

    def write_frames(self, frames: list[bytes]) -> None:
        if not self.open or self.close_sent:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        urandom = os.urandom
        if len(frames) == 1:
            transport.write(encode_frame(_BINARY, frames[0], urandom(4)))
        else:
            transport.write(b"".join([encode_frame(_BINARY, f, urandom(4)) for f in frames]))

    def write_frame(self, frame: bytes) -> None:
        """One whole OpenMux frame as one message, now (`Session.send_now`)."""
        transport = self.transport
        if self.open and not self.close_sent and transport and not transport.is_closing():
            size = len(frame)
            if size < 126:  # a keystroke
                key = os.urandom(4)
                transport.write(bytes((0x82, 0x80 | size)) + key + mask(frame, key))
            else:
                transport.write(encode_frame(_BINARY, frame))

    def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        going_away = self.session.connection.close_code == CloseCode.GOING_AWAY
        self._send_close(1001 if going_away else 1000)
        # the server answers with its close frame and closes the TCP connection
        timeout = self.session.options.close_timeout
        self._close_timer = asyncio.get_running_loop().call_later(timeout, self.transport.abort)

    async def wait_closed(self) -> None:
        await asyncio.shield(self.lost)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def pause_reading(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        self._frames()


async def connect(url: str, options: Options) -> Session:
    if proxy_configured():
        from . import ws

        return await ws.connect(url, options)
    try:
        return await _connect(url, options)
    except _Redirect:
        from . import ws

        return await ws.connect(url, options)


async def _connect(url: str, options: Options) -> Session:
    parts, host, port = split(url, 443 if url.startswith("wss:") else 80)
    secure = parts.scheme == "wss"
    path = parts.path or DEFAULT_PATH
    target = f"{path}?{parts.query}" if parts.query else path
    default_port = 443 if secure else 80
    if port != default_port:
        host_header = netloc(host, port)
    else:
        host_header = f"[{host}]" if ":" in host else host
    key = base64.b64encode(os.urandom(16))
    import hashlib

    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        "User-Agent: Python openmux",
    ]
    if options.token is not None and options.extra.get("auth_header"):
        lines.append(f"Authorization: Bearer {options.token}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    ssl: Any = None
    if secure:
        ssl = options.ssl
        if ssl is None:
            import ssl as _ssl

            ssl = _ssl.create_default_context()
    session = Session(options, is_client=True, mode="message")
    max_size = options.max_reassembly + 2 * HEADER_SIZE
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(
        lambda: WSClientProtocol(session, request, accept, max_size),
        host,
        port,
        ssl=ssl,
        server_hostname=host if secure else None,
    )
    try:
        await protocol.opened
        if transport.is_closing():
            raise TransportError("connection closed after the WebSocket upgrade")
    except BaseException:
        transport.abort()
        raise
    session.transport_info.update(peername=transport.get_extra_info("peername"), path=path)
    session.connection_made(protocol)
    protocol.attached = True
    protocol._frames()  # whatever came with or after the 101
    try:
        await session.wait_handshake()
    except BaseException:
        transport.abort()
        raise
    return session
