"""An OpenMux client over TCP or WebSocket without asyncio, for a poll() loop.

Why: a command-line client (`vroom term`) spends ~40 ms of its start-up
importing asyncio and what it drags in (ssl, subprocess, concurrent.futures,
inspect...), and an event-loop turn with its callbacks on every keystroke.
With one socket and a terminal there is nothing an event loop buys: this
drives the sans-IO `Connection` (and `openmux.websocket` for ws://) from the
caller's own `select.poll()`, on a non-blocking socket, with the same fast
paths as `openmux.aio.Session` (`set_fast_handler`, `send_now`), so a
keystroke is one `read` and one `send`.

The caller's loop: `connect()` (blocking, bounded by `timeout`: TCP
connect, WebSocket upgrade, HELLO/WELCOME), then `start(on_events)`; poll
`sock` for reading, and for writing while `wants_write`; call
`on_readable()` / `on_writable()`, and `on_timer(now)` at `next_timer()`
(keepalive pings). Sends queued on `connection` go out on `flush()`. Bytes
the kernel does not take wait in `pending`, in order; `writing_paused` is
True from `write_limit` pending bytes until they drain to a quarter of it,
and the caller then stops producing (reading its own input). `shutdown()`
ends it: CLOSE, the peer's answer (at most `close_timeout`), the socket.

tcp://, ws://, and over TLS tls:// and wss:// (`ssl_context`; TLS runs on
memory BIOs, so the loop and the write buffer are the same). No proxy, no
redirect: `connect()` raises `HandOver` when the upgrade redirects, and the
caller uses `openmux.aio`.
Errors are `openmux.connect_errors`' (as `openmux.aio.connect()` raises
them) or `OSError`.
"""

from __future__ import annotations

import _socket
import os
import select
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import websocket as ws
from .channels import ChannelSpec
from .codes import HEADER_SIZE, CloseCode
from .config import Config
from .connect_errors import HandshakeError, HandshakeTimeoutError, TransportError
from .connection import Connection, State
from .errors import LocalProtocolError
from .events import Event, HandshakeCompleted
from .urls import split_url
from .websocket import encode_frame, encode_small

FastHandler = Callable[[int, bytes], bool]
"""`handler(type, payload)`: True if it took the message, False: the general path."""

SCHEMES = ("tcp", "ws", "tls", "wss")
DEFAULT_PORTS = {"tcp": 2222, "ws": 80, "tls": 2222, "wss": 443}
DEFAULT_PATH = "/omux"
READ_SIZE = 64 * 1024
"""Largest read: under glibc's mmap threshold (128 KiB); a `read` of 256 KiB
had the allocator map and unmap its buffer around every keystroke's echo."""
SMALL_READ = 256
"""First read size: a keystroke's echo fits, and a buffer this small comes
from Python's own allocator (64 KiB ones cost malloc, realloc and free, a
tenth of the client's instructions per keystroke). A read that fills it
makes the next one 16 times larger, up to READ_SIZE; a read under a
sixteenth of a large size goes back to this."""
_OPEN = State.OPEN
os_read, os_write = os.read, os.write
_monotonic = time.monotonic
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT


def _create_connection(host: str, port: int, timeout: float) -> _socket.socket:
    """`socket.create_connection` on the C module: `import socket` costs
    ~13 M instructions of a client's start (its enums and `selectors`), and
    a `str` host makes getaddrinfo import the idna codec (~5 M more)."""
    try:
        name = host.encode("ascii")
    except UnicodeEncodeError:
        name = host.encode("idna")
    error: OSError | None = None
    for family, type_, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, type_, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError(f"no address for {host!r}")


class HandOver(Exception):
    """This connection needs what only `openmux.aio` does (an HTTP redirect)."""


class PolledClient:
    """One client connection: a socket, a `Connection`, a write buffer."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        token: str | None = None,
        channels: Sequence[ChannelSpec] = (),
        ping_interval: float = 30.0,
        ping_timeout: float = 10.0,
        close_timeout: float = 1.0,
        max_message_size: int = 65535,
        max_reassembly: int = 16 * 1024 * 1024,
        write_limit: int = 256 * 1024,
        ssl_context: Any = None,
    ) -> None:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in SCHEMES:
            raise ValueError(f"openmux.polled speaks {', '.join(SCHEMES)}, not {scheme!r}")
        self.url = url
        self.timeout = timeout
        self.scheme = scheme
        self.ws = scheme in ("ws", "wss")
        self.ssl_context = ssl_context
        """tls://, wss://: an `ssl.SSLContext` (default: the system's CAs)."""
        self._tls: Any = None  # ssl.SSLObject on memory BIOs, once connected
        self._tls_in: Any = None
        self._tls_out: Any = None
        self._tls_eof = False
        self.connection = Connection(
            Config(
                is_client=True,
                channels=channels,
                token=token,
                max_message_size=max_message_size,
                max_reassembly=max_reassembly,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                close_timeout=close_timeout,
            ),
            mode="message" if self.ws else "stream",
        )
        self.write_limit = write_limit
        self.sock: _socket.socket | None = None
        self.pending = bytearray()
        """Bytes written that the kernel has not taken yet, in order."""
        self.writing_paused = False
        self.on_events: Callable[[list[Event]], None] | None = None
        self.handshake: HandshakeCompleted | None = None
        self.lost = False
        """The socket is gone (EOF, error, or closed by us)."""
        self.changed = True
        """Something a poll loop derives its registrations and timeout from
        may have changed: `pending` became empty or not, `writing_paused`,
        or `next_timer()` moved earlier (the general path ran; the fast
        paths only move the keepalive later). A loop keeps what it derived
        while this is False, and clears it when it looks again."""
        self._read_size = SMALL_READ
        self.fd = -1
        """The socket's descriptor: read and written with `os.read`/`os.write`,
        whose argument parsing costs less than the socket methods'."""
        self._early: list[Event] = []
        self._fast: set[int] = set()  # channels with a fast handler
        self._decoder = ws.FrameDecoder(max_reassembly + 2 * HEADER_SIZE)
        self._ws_close_sent = False

    # ------------------------------------------------------------ set-up

    def connect(self) -> None:
        """TCP connect, WebSocket upgrade, HELLO/WELCOME, within `timeout`."""
        deadline = time.monotonic() + self.timeout
        parts = split_url(self.url)
        host = parts.host or "127.0.0.1"
        port = parts.port if parts.port is not None else DEFAULT_PORTS[self.scheme]
        try:
            sock = _create_connection(host, port, self.timeout)
        except TimeoutError:
            raise self._timeout() from None
        self.sock = sock
        self.fd = sock.fileno()
        try:
            if sock.family in (_socket.AF_INET, _socket.AF_INET6):
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
            sock.setblocking(False)
            if self.scheme in ("tls", "wss"):
                self._tls_handshake(host, deadline)
            if self.ws:
                self._upgrade(deadline)
            conn = self.connection
            conn.initiate(time.monotonic())
            self.flush()
            while conn.state is State.AWAIT_WELCOME:
                if not self._wait(deadline):
                    raise self._timeout()
                self.on_readable()
            if conn.state is not _OPEN:
                raise HandshakeError(
                    conn.close_code if conn.close_code is not None else CloseCode.GOING_AWAY,
                    conn.close_reason,
                )
        except BaseException:
            self.abort()
            raise

    def _timeout(self) -> HandshakeTimeoutError:
        return HandshakeTimeoutError(
            f"no OpenMux session with {self.url} within {self.timeout:g} s (handshake timeout)"
        )

    def _wait(self, deadline: float) -> bool:
        """Poll the socket until it is readable (writing what is pending); False at `deadline`."""
        assert self.sock is not None
        poller = select.poll()
        fd = self.sock.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.register(fd, _POLLIN | (_POLLOUT if self.pending else 0))
            for _, mask in poller.poll(left * 1000 + 1):
                if mask & _POLLOUT:
                    self.on_writable()
                if mask & ~_POLLOUT:
                    return True

    def _tls_handshake(self, host: str, deadline: float) -> None:
        """TLS on memory BIOs (sans-IO, as the rest): the socket stays ours,
        ciphertext in `pending`, the same poll loop."""
        import ssl

        context = self.ssl_context or ssl.create_default_context()
        self._tls_in, self._tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._tls_in, self._tls_out, server_hostname=host)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._raw_write(self._tls_out.read())
                if not self._wait(deadline):
                    raise self._timeout() from None
                raw = self._raw_recv(READ_SIZE)
                if raw is None:
                    continue
                if not raw:
                    raise TransportError("connection closed during the TLS handshake") from None
                self._tls_in.write(raw)
        self._raw_write(self._tls_out.read())

    def _tls_data(self, raw: bytes) -> None:
        plain = self._decrypt(raw)
        if plain:
            if self.ws:
                self._ws_data(plain)
            else:
                events = self.connection.receive_fast(plain, _monotonic())
                if events is not None:
                    self._process(events)
        if self._tls_eof:
            self._lost()

    def _decrypt(self, raw: bytes) -> bytes | None:
        """Plaintext of what arrived (None: no whole record yet, or the
        end); `_tls_eof` set at the TLS close or on a TLS error (the
        session then ends as on EOF)."""
        import ssl

        self._tls_in.write(raw)
        chunks = []
        ended = False
        while True:
            try:
                chunk = self._tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:
                ended = True
                break
            if not chunk:
                ended = True
                break
            chunks.append(chunk)
        if self._tls_out.pending:  # post-handshake messages (TLS 1.3 key update)
            self._raw_write(self._tls_out.read())
        self._tls_eof = ended
        return b"".join(chunks) if chunks else None

    def _upgrade(self, deadline: float) -> None:
        assert self.sock is not None
        target = ws.Target.of(self.url, DEFAULT_PATH)
        request, accept = ws.client_request(target.host_header, target.target)
        self.write(request)
        buffer = self._decoder.buffer
        while True:
            if not self._wait(deadline):
                raise self._timeout()
            data = self._recv()
            if data is None:
                continue
            if not data:
                raise TransportError("did not receive a valid HTTP response")
            buffer += data
            try:
                if ws.parse_response(buffer, accept):
                    return  # what followed the 101 stays in the decoder's buffer
            except ws.UpgradeRefused as exc:
                if exc.status in (401, 403):
                    raise HandshakeError(CloseCode.AUTH_FAILED, f"HTTP {exc.status}") from None
                if exc.location is not None:
                    raise HandOver(str(exc)) from None
                raise TransportError(str(exc)) from None

    def start(self, on_events: Callable[[list[Event]], None]) -> None:
        """From now on every batch of core events goes to `on_events` (after
        the handshake's own, and whatever came with WELCOME)."""
        self.on_events = on_events
        early, self._early = self._early, []
        if early:
            on_events(early)
        if self.ws and self._decoder.buffer:
            self._ws_frames()
        self.flush()

    # --------------------------------------------------------- the fast paths

    def set_fast_handler(self, channel_id: int, handler: FastHandler) -> None:
        """As `openmux.aio.Session.set_fast_handler`: whole messages of an
        open channel go to `handler(type, payload) -> bool` straight from
        the read (`Connection.set_fast_handler`); KeyError if not open."""
        try:
            self.connection.set_fast_handler(channel_id, handler)
        except LocalProtocolError:
            raise KeyError(f"channel {channel_id} is not open") from None
        self._fast.add(channel_id)

    def send_now(self, channel_id: int, type_: int, data: bytes) -> bool:
        """As `openmux.aio.Session.send_now`: one message straight to the
        socket when nothing is queued ahead of it; False: send it the general way."""
        if self.writing_paused:
            return False
        frame = self.connection.encode_direct(channel_id, type_, data)
        if frame is None:
            return False
        if self.ws:
            frame = encode_small(frame) if len(frame) < 126 else encode_frame(ws.BINARY, frame)
        if self.pending or self.lost or self._tls is not None:
            self.write(frame)
            return True
        try:  # `write`, inline: a keystroke
            sent = os_write(self.fd, frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._lost()
            return True
        if sent != len(frame):
            self.pending += memoryview(frame)[sent:]
            self.writing_paused = len(self.pending) > self.write_limit
            self.changed = True
        return True

    # ------------------------------------------------------------ reading

    def _recv(self) -> bytes | None:
        """What the socket has (plaintext); b"" at its end, None if nothing now."""
        raw = self._raw_recv(ws.MAX_HEAD)
        if raw and self._tls is not None:
            plain = self._decrypt(raw)
            return b"" if plain is None and self._tls_eof else plain
        return raw

    def _raw_recv(self, size: int) -> bytes | None:
        try:
            return os_read(self.fd, size)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def on_readable(self) -> None:
        """Read what the socket has; events go to `on_events`, sends out."""
        if self.lost:
            return
        want = self._read_size
        try:
            data = os_read(self.fd, want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        size = len(data)
        if size == want:
            if want < READ_SIZE:
                self._read_size = want << 4
        elif not size:
            self._lost()
            return
        elif want > SMALL_READ and size < want >> 4:
            self._read_size = SMALL_READ
        if self._tls is not None:
            self._tls_data(data)
            return
        if self.ws:
            decoder = self._decoder
            if (
                size >= 2
                and data[0] == 0x82
                and data[1] < 126  # a whole small binary frame, unmasked: an echo
                and size - 2 == data[1]
                and not decoder.buffer  # `decoder.idle`, inline
                and not decoder.held
                and decoder.fragments is None
                and not decoder.skipping_text
            ):
                events = self.connection.receive_fast(data[2:], _monotonic())
                if events is not None:
                    self._process(events)
                return
            self._ws_read(data)
            return
        events = self.connection.receive_fast(data, _monotonic())
        if events is not None:  # (None: the fast handlers took it all)
            self._process(events)

    def _ws_data(self, data: bytes) -> None:
        decoder = self._decoder
        if (
            len(data) >= 2
            and data[0] == 0x82
            and data[1] < 126  # a whole small binary frame, unmasked
            and len(data) - 2 == data[1]
            and not decoder.buffer  # `decoder.idle`, inline
            and not decoder.held
            and decoder.fragments is None
            and not decoder.skipping_text
        ):
            events = self.connection.receive_fast(data[2:], time.monotonic())
            if events is not None:
                self._process(events)
            return
        self._ws_read(data)

    def _ws_read(self, data: bytes) -> None:
        """A read's whole binary messages as one batch (one event list, one
        flush, as a TCP read's frames), then the rest frame by frame."""
        decoder = self._decoder
        payloads = decoder.feed(data)
        if payloads:
            events = self.connection.receive_fast_messages(payloads, _monotonic())
            if events is not None:
                self._process(events)
        buffer = decoder.buffer
        if buffer and len(buffer) >= decoder.need:  # (not a cut frame only)
            self._ws_frames()

    def _ws_frames(self) -> None:
        decoder = self._decoder
        conn = self.connection
        while not self.lost:
            try:
                item = decoder.next()
            except ws.WebSocketError as exc:
                self._ws_close(exc.code, exc.reason)
                self._lost()
                return
            if item is None:
                return
            opcode, payload = item
            if opcode == ws.BINARY:
                events = conn.receive_fast(payload, time.monotonic())
                if events is not None:
                    self._process(events)
            elif opcode == ws.TEXT:
                if conn.state not in (State.CLOSING, State.CLOSED):
                    conn.close(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux WebSocket",
                               time.monotonic())  # fmt: skip
                    self.flush()
            elif opcode == ws.PING:
                if not self._ws_close_sent:
                    self.write(ws.encode_frame(ws.PONG, payload))
            elif opcode == ws.CLOSE:
                code = ws.close_code(payload)
                self._ws_close(code, payload=payload[:2] if len(payload) != 1 else b"")
                self._lost()
                return

    def _ws_close(self, code: int, reason: str = "", payload: bytes | None = None) -> None:
        if not self._ws_close_sent:
            self._ws_close_sent = True
            self.write(ws.encode_frame(ws.CLOSE, ws.close_payload(code, reason)
                                       if payload is None else payload))  # fmt: skip

    def _lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        self._process(self.connection.connection_lost(time.monotonic()))

    def _process(self, events: list[Event]) -> None:
        self.changed = True
        if events:
            if self.on_events is None:
                for event in events:
                    if isinstance(event, HandshakeCompleted):
                        self.handshake = event
                    else:
                        self._early.append(event)
            else:
                self.on_events(events)
        self.flush()

    # ------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write what the connection queued."""
        conn = self.connection
        if self.ws:
            frames = conn.messages_to_send()
            if frames and not self._ws_close_sent:
                self.write(b"".join([encode_frame(ws.BINARY, f) for f in frames]))
        else:
            data = conn.data_to_send()
            if data:
                self.write(data)

    def write(self, data: bytes) -> None:
        """Send now what the kernel takes; keep the rest in `pending`, in order."""
        if self.lost or self.sock is None:
            return
        if self._tls is not None:
            self._tls.write(data)
            data = self._tls_out.read()
        self._raw_write(data)

    def _raw_write(self, data: bytes) -> None:
        if self.lost or self.sock is None or not data:
            return
        if self.pending:
            self.pending += data
        else:
            try:
                sent = os_write(self.fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._lost()
                return
            if sent == len(data):
                return
            self.pending += memoryview(data)[sent:]
            self.changed = True
        if len(self.pending) > self.write_limit:
            self.writing_paused = True

    @property
    def wants_write(self) -> bool:
        return bool(self.pending) and not self.lost

    def on_writable(self) -> None:
        if self.lost or not self.pending:
            return
        try:
            sent = os_write(self.fd, self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.pending.clear()
            self._lost()
            return
        del self.pending[:sent]
        if not self.pending:
            self.changed = True
        if self.writing_paused and len(self.pending) <= self.write_limit // 4:
            self.writing_paused = False
            self.changed = True

    # ------------------------------------------------------------- timers

    def next_timer(self) -> float | None:
        """When `on_timer` is due (`time.monotonic()` clock), or None."""
        return self.connection.get_timer()

    def on_timer(self, now: float) -> None:
        self._process(self.connection.handle_timer(now))

    # ------------------------------------------------------------ the end

    def shutdown(self, timeout: float = 2.0) -> None:
        """Close the session (CLOSE, the peer's CLOSE or `close_timeout`),
        write out what is pending, close the socket; at most `timeout` s."""
        conn = self.connection
        deadline = time.monotonic() + timeout
        # The application is done: what still arrives is dropped.
        for channel_id in self._fast:
            self.connection.set_fast_handler(channel_id, None)
        self._fast.clear()
        self.on_events = self._drop
        if conn.state is _OPEN:
            conn.close(CloseCode.NORMAL, "", time.monotonic())
            self.flush()
        while self.sock is not None and not self.lost:
            if conn.state is State.CLOSED and not self.pending:
                break
            when = conn.get_timer()
            until = deadline if when is None else min(deadline, when)
            ready = self._wait(until)
            if time.monotonic() >= deadline:
                break
            if ready:
                self.on_readable()
            else:
                self.on_timer(time.monotonic())
        if self.ws and not self.lost:
            going_away = conn.close_code == CloseCode.GOING_AWAY
            self._ws_close(1001 if going_away else 1000)
            self._drain(deadline)
        if self._tls is not None and not self.lost:
            try:
                self._tls.unwrap()  # close_notify
            except Exception:  # SSLWantReadError: the peer's close_notify need not come
                pass
            self._raw_write(self._tls_out.read())
            self._drain(deadline)
        self.abort()

    @staticmethod
    def _drop(events: list[Event]) -> None:
        pass

    def _drain(self, deadline: float) -> None:
        while self.pending and not self.lost and self._wait_writable(deadline):
            self.on_writable()

    def _wait_writable(self, deadline: float) -> bool:
        assert self.sock is not None
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        poller = select.poll()
        poller.register(self.sock.fileno(), _POLLOUT)
        return bool(poller.poll(left * 1000 + 1))

    def abort(self) -> None:
        """Close the socket now."""
        self.lost = True
        if self.sock is not None:
            self.sock.close()
            self.sock = None


__all__ = ["HandOver", "PolledClient"]
