"""The asyncio Protocol shared by byte-stream transports (TCP, TLS, stdio child side)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

from .session import Session

logger = logging.getLogger("openmux")


class StreamProtocol(asyncio.Protocol):
    """Feeds a stream-mode `Session` and is its `FrameSink`.

    Back-pressure is asyncio's own: the transport's write buffer limits call
    pause_writing/resume_writing, which the session turns into waits in
    `Channel.send`; the session's read limit pauses the transport's reading.
    """

    def __init__(self, session: Session, on_made: Callable[[Session], Any] | None = None) -> None:
        self.session = session
        self.transport: asyncio.Transport | None = None
        self._on_made = on_made
        # The session's own method, not a method of ours calling it: one
        # Python call less per read (uvloop looks it up once per transport).
        self.data_received = session.data_received  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - platform dependent
                pass
        limit = self.session.options.write_limit
        self.transport.set_write_buffer_limits(high=limit, low=limit // 4)
        info = self.session.transport_info
        info["peername"] = transport.get_extra_info("peername")
        info["sockname"] = transport.get_extra_info("sockname")
        info["ssl_object"] = transport.get_extra_info("ssl_object")
        self.session.connection_made(self)
        if self._on_made is not None:
            self._on_made(self.session)

    def data_received(self, data: bytes) -> None:
        self.session.data_received(data)

    def eof_received(self) -> bool:
        return False  # close; connection_lost tells the session

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.connection_lost(exc)

    def pause_writing(self) -> None:
        self.session.pause_writing()

    def resume_writing(self) -> None:
        self.session.resume_writing()

    # FrameSink
    def write_frames(self, frames: list[bytes]) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.writelines(frames)

    def write_frame(self, frame: bytes) -> None:
        """One frame or piece of the stream, unbuffered (`Session.send_now`)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(frame)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
