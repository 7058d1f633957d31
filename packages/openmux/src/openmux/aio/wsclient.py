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
import logging
import socket
from typing import Any, cast

from .. import websocket as _ws
from ..codes import HEADER_SIZE, CloseCode
from ..websocket import GUID as GUID
from ..websocket import MAX_HEAD as MAX_HEAD
from ..websocket import FrameDecoder, UpgradeRefused, WebSocketError, encode_small
from ..websocket import encode_frame as encode_frame
from ..websocket import mask as mask
from ..websocket import mask_key as mask_key
from ..websocket import proxy_configured as proxy_configured
from .errors import HandshakeError, TransportError
from .session import Options, Session

logger = logging.getLogger("openmux")

DEFAULT_PATH = "/omux"
_BINARY, _CLOSE, _PING, _PONG = _ws.BINARY, _ws.CLOSE, _ws.PING, _ws.PONG


class _Redirect(Exception):
    """The upgrade answered 3xx: websockets follows redirects, so ws.py takes over."""


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
        self.decoder = FrameDecoder(max_size)
        self.buffer = self.decoder.buffer
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
        decoder = self.decoder
        if self.attached and not self.paused and self.open:
            if (
                len(data) >= 2
                and data[0] == 0x82
                and data[1] < 126  # unmasked, 7-bit length
                and len(data) - 2 == data[1]
                and not decoder.buffer  # `decoder.idle`, inline
                and not decoder.held
                and decoder.fragments is None
                and not decoder.skipping_text
            ):
                # The common case, a keystroke's echo: one whole small binary frame.
                self.session.message_received(data[2:])
                return
            # The whole binary messages of a read as one batch (bulk output:
            # one event list and one flush per read, as over TCP), then the
            # rest (control frames, fragments, a cut frame) frame by frame.
            payloads = decoder.feed(data)
            if payloads:
                if len(payloads) == 1:
                    self.session.message_received(payloads[0])
                else:
                    self.session.messages_received(payloads)
            buffer = self.buffer
            if buffer and len(buffer) >= decoder.need:  # (not a cut frame only)
                self._frames()
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
        try:
            if not _ws.parse_response(self.buffer, self.accept):
                return False
        except UpgradeRefused as exc:
            error: Exception
            if exc.status in (401, 403):
                error = HandshakeError(CloseCode.AUTH_FAILED, f"HTTP {exc.status}")
            elif exc.location is not None:
                error = _Redirect()
            else:
                error = TransportError(str(exc))
            self._refuse(error)
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
        decoder = self.decoder
        while self.open and self.attached and not self.paused:
            try:
                item = decoder.next()
            except WebSocketError as exc:
                self._fail(exc.code, exc.reason)
                return
            if item is None:
                return
            opcode, payload = item
            if opcode == _BINARY:
                self.session.message_received(payload)
            elif opcode == _ws.TEXT:
                self.session.fail(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux WebSocket")
            elif opcode == _PING:
                self._send(_PONG, payload)
            elif opcode == _CLOSE:
                self._on_close(payload)

    def _on_close(self, payload: bytes) -> None:
        self.close_received = True
        code = _ws.close_code(payload)
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
            self._write(encode_frame(_CLOSE, _ws.close_payload(code, reason)))

    # -- FrameSink

    def write_frames(self, frames: list[bytes]) -> None:
        if not self.open or self.close_sent:
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if len(frames) == 1:
            transport.write(encode_frame(_BINARY, frames[0]))
        else:
            transport.write(b"".join([encode_frame(_BINARY, f) for f in frames]))

    def write_frame(self, frame: bytes) -> None:
        """One whole OpenMux frame as one message, now (`Session.send_now`)."""
        transport = self.transport
        if self.open and not self.close_sent and transport and not transport.is_closing():
            small = len(frame) < 126  # a keystroke
            transport.write(encode_small(frame) if small else encode_frame(_BINARY, frame))

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
    target = _ws.Target.of(url, DEFAULT_PATH)
    secure, host, port, path = target.secure, target.host, target.port, target.path
    headers = []
    if options.token is not None and options.extra.get("auth_header"):
        headers.append(f"Authorization: Bearer {options.token}")
    request, accept = _ws.client_request(target.host_header, target.target, headers)
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
