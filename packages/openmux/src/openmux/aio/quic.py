"""OpenMux over QUIC with aioquic (`quic://host:4433`), OPENMUX.md §3.

How channels map onto QUIC (House decisions where the spec leaves a choice,
to be restated in docs/protocol/openmux.md):

- ALPN `openmux/0.1` (a server also accepts `xumux/0.1`). Control (channel 0)
  is the first client-opened bidirectional stream (id 0); the client's HELLO
  opens it. No `OMUX` magic anywhere on QUIC.
- Every reliable channel, and every unreliable one when datagrams are not
  available, gets its own bidirectional stream. The side that writes the
  channel's WELCOME/CHANNEL_ACK entry opens the stream and names it there
  (`"streamId": n, "transport": "stream"`). A QUIC stream only exists for the
  peer once bytes travel on it, so the writer opens it at once with a PING
  (channel 0) on the new stream; the peer answers PONG on the control stream
  and can send on the stream as soon as it has seen it. Channel-0 PING is the
  only foreign frame a channel stream may carry; anything else for another
  channel there is CLOSE 1002.
- Unreliable *and* unordered channels use QUIC DATAGRAM frames when both
  sides announced `max_datagram_frame_size` (`"transport": "datagram"`, no
  streamId): one datagram = one frame, demuxed by the channel byte. EXTENDED
  or FRAGMENT flags on a datagram are CLOSE 1002; sending a message that does
  not fit one datagram raises `LocalProtocolError` (4005). Datagrams that race
  ahead of the entry announcing their channel are dropped, as are datagrams
  that arrive while the application is not reading (they are unreliable).
- Stream bytes are parsed per stream (`StreamSplitter`) and every frame goes
  to the session, which routes by the channel byte. A frame declaring more
  than the negotiated maxMessageSize is refused before its payload arrives
  (ERROR + CLOSE 4005). Frames on a stream whose entry has not been processed
  yet (QUIC does not order streams) are held until it is, within `read_limit`.
- Closing a channel ends its stream (FIN) from both sides; late bytes are
  ignored. Closing the session sends CLOSE on the control stream, waits for it
  to be acknowledged (up to `close_timeout`), then closes the QUIC connection.
- 0-RTT: a client given a session ticket sends HELLO as early data and
  nothing else (nothing else can be sent before WELCOME). A server acts on a
  0-RTT HELLO at once but holds any other early byte until the QUIC handshake
  completes; more than a HELLO's worth of early data is CLOSE 1002. Server
  tickets are single-use, which bounds replays of an early HELLO; still, the
  application handler may start before the QUIC handshake has completed.

Back-pressure. aioquic buffers stream data without bound and auto-tunes flow
control to twice what was ever received, so the binding accounts for itself:
writing pauses the session while more than `write_limit` bytes are
unacknowledged, and while the application is not reading, channel streams get
no new flow-control credit (the control stream always does) -- so a slow
reader makes the sender wait. Queued outgoing datagrams are capped (dropped).

TLS: a client verifies the server against `cafile`/`cadata`/`capath`, or the
CAs of an `ssl=` SSLContext (what the TCP/WebSocket transports take); a
server needs `certfile`/`keyfile`, since a certificate cannot be read back
out of an SSLContext.

Liveness. A server session's `hello_timeout` (the core's HELLO timer) runs
from the client's first QUIC packet, so a client that completes the QUIC/TLS
handshake, or stalls in it, and never sends HELLO is dropped then, as on
TCP/WebSocket ("handshake failed ... 4007" in the log), not at QUIC's idle
timeout. A CLOSE travels only on the control stream: when the client never
opened it, the QUIC connection is closed at once rather than after
`close_timeout` waiting for an acknowledgement that cannot come. The QUIC
connection always ends with an application CONNECTION_CLOSE whose error code
is the OpenMux close code (0 for 1000), reason phrase `openmux <code>`.

While the OpenMux session is open, the binding sends a QUIC PING every third
of the negotiated QUIC idle timeout (the smaller of both sides'
`idle_timeout`, aioquic's default 60 s), so an idle session lives as long as
the peer's QUIC stack answers: with `ping_interval=0` it lives forever, as
on TCP/WebSocket. A peer that is gone still ends it after the idle timeout,
since unanswered PINGs do not restart QUIC's idle timer. (Deriving the idle
timeout from the OpenMux config instead would turn `ping_interval=0` into
"never notice a dead peer", and the peer may announce a shorter one anyway.)

Keyword arguments (`options.extra`): client `cafile`, `cadata`, `capath`,
`verify` (default True), `server_name`, `session_ticket`,
`session_ticket_handler`; server `certfile`, `keyfile`, `password`,
`zero_rtt` (default True), `retry`; both `datagrams` (default True) and
`quic_configuration` (a ready `QuicConfiguration`, used as is).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ipaddress
import json
import logging
import os
import socket
import ssl
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic import events as qevents
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.tls import SessionTicket

from ..channels import Channel as CoreChannel
from ..codes import EXTENDED_HEADER_SIZE, HEADER_SIZE, CloseCode, ControlType, Flags
from ..connection import State
from ..errors import FrameError, LocalProtocolError, MessageTooLarge
from ..frame import check_header, decode_message
from ._urls import netloc, split
from .errors import TransportError
from .server import Server
from .session import Options, Session

logger = logging.getLogger("openmux")

DEFAULT_PORT = 4433
ALPN = ("openmux/0.1", "xumux/0.1")
MAX_DATAGRAM_FRAME_SIZE = 65536
"""What we announce; the real limit is one QUIC packet (see `datagram_limit`)."""
MIN_DATAGRAM_FRAME_SIZE = 256
"""A peer announcing less gets streams for its unreliable channels."""
CONNECTION_WINDOW = 4 * 1024 * 1024
STREAM_WINDOW = 1024 * 1024
MIN_STREAM_WINDOW = 64 * 1024
"""Flow-control credit kept ahead of what was received (connection / per stream)."""
DATAGRAM_QUEUE = 256
"""Outgoing datagrams aioquic may hold before new ones are dropped."""
EARLY_DATA_LIMIT = 64 * 1024
"""Bytes held from before the QUIC handshake completes (a HELLO is far smaller)."""
KEEPALIVE_FRACTION = 1 / 3
"""QUIC PINGs go out at this fraction of the idle timeout: a lost one is retried in time."""
_KEEPALIVE_UID = 0
"""The uid of keepalive PINGs; aioquic's own `ping()` waiters use id() values."""
_PACKET_OVERHEAD = 48
"""Short header with the longest connection id, packet number, AEAD tag, frame header."""

_PING = int(ControlType.PING)
_WELCOME = int(ControlType.WELCOME)
_CHANNEL_ACK = int(ControlType.CHANNEL_ACK)
_DATAGRAM_FORBIDDEN = int(Flags.EXTENDED_LENGTH | Flags.FRAGMENT | Flags.FRAGMENT_END)
_FRAGMENT = int(Flags.FRAGMENT)
_FRAGMENT_END = int(Flags.FRAGMENT_END)


# ------------------------------------------------------------ configuration


def quic_configuration(
    *,
    is_client: bool,
    alpn: Sequence[str] = ALPN,
    datagrams: bool = True,
    read_limit: int | None = None,
) -> QuicConfiguration:
    """The aioquic settings OpenMux uses (the bare benchmark uses them too).

    The per-stream window is at most half the session's `read_limit`: that is
    how far a sender may run ahead of a reader that stopped reading.
    """
    window = STREAM_WINDOW
    if read_limit is not None:
        window = max(MIN_STREAM_WINDOW, min(window, read_limit // 2))
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=list(alpn),
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE if datagrams else None,
        max_data=CONNECTION_WINDOW,
        max_stream_data=window,
    )


def _client_configuration(host: str, options: Options) -> QuicConfiguration:
    extra = options.extra
    given = extra.get("quic_configuration")
    if isinstance(given, QuicConfiguration):
        return given
    config = quic_configuration(
        is_client=True,
        datagrams=bool(extra.get("datagrams", True)),
        read_limit=options.read_limit,
    )
    config.server_name = extra.get("server_name", host)
    context = options.ssl
    if isinstance(context, ssl.SSLContext):
        # What the other transports take: its CAs (or its CERT_NONE) apply here too.
        if context.verify_mode == ssl.CERT_NONE:
            config.verify_mode = ssl.CERT_NONE
        else:
            cas = context.get_ca_certs(binary_form=True)
            if cas:
                config.cadata = "".join(ssl.DER_cert_to_PEM_cert(c) for c in cas).encode()
    if not extra.get("verify", True):
        config.verify_mode = ssl.CERT_NONE
    if any(extra.get(k) for k in ("cafile", "cadata", "capath")):
        config.load_verify_locations(
            cafile=extra.get("cafile"), capath=extra.get("capath"), cadata=extra.get("cadata")
        )
    ticket = extra.get("session_ticket")
    if isinstance(ticket, SessionTicket):
        config.session_ticket = ticket
    return config


def _server_configuration(options: Options) -> QuicConfiguration:
    extra = options.extra
    given = extra.get("quic_configuration")
    if isinstance(given, QuicConfiguration):
        return given
    certfile = extra.get("certfile")
    if not certfile:
        raise ValueError("a quic:// listener needs certfile= (and keyfile=): QUIC is always TLS")
    config = quic_configuration(
        is_client=False,
        datagrams=bool(extra.get("datagrams", True)),
        read_limit=options.read_limit,
    )
    config.load_cert_chain(certfile, extra.get("keyfile"), extra.get("password"))
    return config


def self_signed_certificate(
    hosts: Sequence[str] = ("127.0.0.1", "localhost"), days: int = 7
) -> tuple[bytes, bytes]:
    """`(certificate_pem, private_key_pem)` of a fresh self-signed ECDSA certificate.

    QUIC has no plaintext mode, so tests, benchmarks and a daemon's first run
    need a certificate nobody issued; `hosts` become subjectAltNames so that a
    client given this certificate as its CA verifies the name it dialled.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "openmux")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def write_self_signed_certificate(
    directory: str | os.PathLike[str], hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> tuple[str, str]:
    """Write `cert.pem` and `key.pem` (mode 0600) into `directory`; returns their paths."""
    cert_pem, key_pem = self_signed_certificate(hosts)
    certfile = os.path.join(directory, "cert.pem")
    keyfile = os.path.join(directory, "key.pem")
    with open(certfile, "wb") as fp:
        fp.write(cert_pem)
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(key_pem)
    return certfile, keyfile


# ------------------------------------------------- aioquic internals, in one place


def stream_buffered(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to a stream and not yet acknowledged by the peer.

    aioquic keeps them in the stream's send buffer and offers no public count.
    """
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    return len(stream.sender._buffer)


def _datagrams_queued(quic: QuicConnection) -> int:
    return len(getattr(quic, "_datagrams_pending", ()))


def _remote_datagram_size(quic: QuicConnection) -> int | None:
    size: int | None = getattr(quic, "_remote_max_datagram_frame_size", None)
    return size


def _idle_timeout(quic: QuicConnection) -> float:
    """The negotiated idle timeout: the smaller of both sides', at least 3 PTOs."""
    return float(quic._idle_timeout())


def _install_flow_control(quic: QuicConnection, reading_paused: Callable[[int], bool]) -> None:
    """Replace aioquic's flow-control auto-tuning by a fixed window.

    aioquic doubles its receive credit whenever half of it was used, so the
    credit stays near twice the bytes *ever received* and a peer is never held
    back by a reader that does not read. Here the credit is kept at most one
    window ahead of what was received, and a stream for which
    `reading_paused(stream_id)` is true gets none: its sender stalls within
    one window. aioquic's own writers still emit the frames; they are only
    shown a zero "used" count so that they do not double the limits.
    """
    write_connection_limits = quic._write_connection_limits
    write_stream_limits = quic._write_stream_limits
    connection_window = quic.configuration.max_data
    stream_window = quic.configuration.max_stream_data

    def connection_limits(builder: Any, space: Any) -> None:
        limit = quic._local_max_data
        used = limit.used
        if limit.value - used < connection_window // 2:
            limit.value = used + connection_window
        limit.used = 0
        try:
            write_connection_limits(builder=builder, space=space)
        finally:
            limit.used = used

    def stream_limits(builder: Any, space: Any, stream: Any) -> None:
        receiver = stream.receiver
        received = receiver.highest_offset
        if (
            stream.max_stream_data_local
            and stream.max_stream_data_local - received < stream_window // 2
            and not reading_paused(stream.stream_id)
        ):
            stream.max_stream_data_local = received + stream_window
        receiver.highest_offset = 0
        try:
            write_stream_limits(builder=builder, space=space, stream=stream)
        finally:
            receiver.highest_offset = received

    quic._write_connection_limits = connection_limits  # type: ignore[method-assign]
    quic._write_stream_limits = stream_limits  # type: ignore[method-assign]


# ------------------------------------------------------------ stream parsing


class StreamSplitter:
    """Cuts one QUIC stream into whole frames (header included) for the session.

    Like the core's `FrameReader`: chunks wait in a list until the next frame
    is complete and are joined once, so a 64 KiB frame arriving in fifty
    packets costs one copy; the declared length is checked against `limit`
    before anything is buffered for it. A bad header stops the splitter:
    `feed` returns the frames before it and leaves the exception in `error`
    (the frames before a bad one are the peer's and are delivered first).
    """

    __slots__ = ("_chunks", "_need", "_pending", "error", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.error: FrameError | MessageTooLarge | None = None
        self._chunks: list[bytes] = []
        self._pending = 0
        self._need = HEADER_SIZE

    def feed(self, data: bytes) -> list[bytes]:
        if self.error is not None:
            return []
        if self._chunks:
            self._chunks.append(data)
            self._pending += len(data)
            if self._pending < self._need:
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
        else:
            buf = data
            if len(buf) < self._need:
                if buf:
                    self._chunks.append(buf)
                    self._pending = len(buf)
                return []
        frames: list[bytes] = []
        size = len(buf)
        off = 0
        need = HEADER_SIZE
        try:
            while size - off >= HEADER_SIZE:
                channel, flags, reserved = buf[off], buf[off + 2], buf[off + 3]
                if reserved or flags & 0xF8 or channel == 255 or (flags & 6) == 4:
                    check_header(channel, flags, reserved)
                if flags & 1:
                    if size - off < EXTENDED_HEADER_SIZE:
                        need = EXTENDED_HEADER_SIZE
                        break
                    length = int.from_bytes(buf[off + 4 : off + 8], "big")
                    end = off + EXTENDED_HEADER_SIZE + length
                else:
                    length = (buf[off + 4] << 8) | buf[off + 5]
                    end = off + HEADER_SIZE + length
                if length > self.limit:
                    raise MessageTooLarge(f"frame declares {length} bytes, limit is {self.limit}")
                if end > size:
                    need = end - off
                    break
                frames.append(buf if off == 0 and end == size else buf[off:end])
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


# ------------------------------------------------------------------ protocol


class QuicTransport(QuicConnectionProtocol):
    """One QUIC connection carrying one OpenMux session; the session's `FrameSink`."""

    def __init__(
        self,
        quic: QuicConnection,
        stream_handler: Any = None,
        *,
        session: Session | None = None,
        server: Server | None = None,
        listener: QuicListener | None = None,
    ) -> None:
        super().__init__(quic)
        if session is None:
            assert server is not None
            session = Session(server.options, is_client=False, mode="message")
        self.session = session
        self.is_client = quic.configuration.is_client
        self._server = server
        self._listener = listener
        self._limit = session.options.max_reassembly
        self._write_limit = session.options.write_limit
        self._read_limit = session.options.read_limit
        self._local_datagrams = quic.configuration.max_datagram_frame_size is not None
        session.connection.describe_channel = self._describe
        _install_flow_control(quic, self._stream_paused)

        self.started = False
        self.terminated: qevents.ConnectionTerminated | None = None
        self._quic_ready = False
        self._lost = False
        self._closing = False
        self._quic_closed = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._write_paused = False
        self._control = 0
        self._next_stream = 4 if self.is_client else 1
        # channel id <-> stream id, for stream channels
        self._stream_of: dict[int, int] = {}
        self._channel_of: dict[int, int] = {}
        self._datagram_channels: set[int] = set()
        self._splitters: dict[int, StreamSplitter] = {}
        self._dead: set[int] = set()
        self._seen: set[int] = set()  # peer-initiated streams aioquic knows (we may send)
        self._held_in: dict[int, list[bytes]] = {}  # frames of streams not yet announced
        self._held_in_bytes = 0
        self._held_out: dict[int, list[bytes]] = {}  # frames for peer streams not seen yet
        self._held_out_bytes = 0
        self._dirty: set[int] = set()  # streams with unacknowledged bytes
        self._described: dict[int, tuple[str, int | None]] = {}
        self._entries: dict[int, dict[str, Any]] = {}
        self._sniff: tuple[int, list[bytes], int] | None = None
        self._openers: deque[int] = deque()
        self._ready: list[int] = []
        self._hello_delivered = False
        self._early: list[qevents.QuicEvent] = []
        self._early_control: list[bytes] = []
        self._early_bytes = 0
        self._datagram_size: int | None = None

    # -------------------------------------------------------- lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        info = self.session.transport_info
        info["sockname"] = transport.get_extra_info("sockname")
        info["transport"] = "quic"
        if not self.is_client:
            self.start()
            assert self._server is not None
            self._server.start_session(self.session)
            if self._listener is not None:
                self._listener.track(self)

    def start(self) -> None:
        """Hand the connection to the session (client: HELLO goes out now)."""
        if self.started:
            return
        self.started = True
        if self.is_client:
            self._control = self._quic.get_next_available_stream_id()
            self._next_stream = self._control + 4
        self.session.connection_made(self)
        self._transmit_soon()
        if not self._quic_closed:
            self._arm_keepalive()

    def _arm_keepalive(self) -> None:
        interval = _idle_timeout(self._quic) * KEEPALIVE_FRACTION
        self._keepalive = self._loop.call_later(interval, self._keepalive_due)

    def _keepalive_due(self) -> None:
        """Keep QUIC's idle timer from ending an open OpenMux session (module docstring)."""
        self._keepalive = None
        if self._lost or self._closing or self._quic_closed:
            return
        if self.session.connection.state is State.OPEN:
            self._quic.send_ping(_KEEPALIVE_UID)
            self.transmit()
        self._arm_keepalive()

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        info = self.session.transport_info
        if "peername" not in info:
            info["peername"] = addr
        super().datagram_received(data, addr)
        if self._dirty or self._write_paused or self._closing:
            self._check_buffers()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors reach a connected UDP socket: before the handshake, give up."""
        logger.debug("quic: UDP error %r", exc)
        waiter = self._connected_waiter
        if self.is_client and not self._quic_ready and waiter is not None and not waiter.done():
            self._connected_waiter = None
            waiter.set_exception(ConnectionRefusedError(f"no QUIC server there ({exc})"))

    def abort(self) -> None:
        """Drop the connection without the OpenMux close handshake (failed connect)."""
        self._close_quic()
        if self.started:
            self._lost_once(ConnectionError("connection aborted"))
        if self._transport is not None and self.is_client:
            self._transport.close()

    # ----------------------------------------------------- QUIC events

    def quic_event_received(self, event: qevents.QuicEvent) -> None:
        if isinstance(event, qevents.StreamDataReceived):
            if (
                not self._quic_ready
                and not self.is_client
                and (event.stream_id != self._control or self._hello_delivered)
            ):
                self._hold_early(event, len(event.data))
                return
            self._stream_data(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, qevents.DatagramFrameReceived):
            if not self._quic_ready:
                self._hold_early(event, len(event.data))
                return
            self._datagram(event.data)
        elif isinstance(event, qevents.HandshakeCompleted):
            self._quic_ready = True
            info = self.session.transport_info
            info["alpn"] = event.alpn_protocol
            info["early_data_accepted"] = event.early_data_accepted
            info["session_resumed"] = event.session_resumed
            early, self._early = self._early, []
            control, self._early_control = self._early_control, []
            self._early_bytes = 0
            if control:
                self._control_frames(control)
            for held in early:
                self.quic_event_received(held)
        elif isinstance(event, qevents.StopSendingReceived):
            self._dirty.discard(event.stream_id)  # aioquic resets our side: nothing to wait for
        elif isinstance(event, qevents.StreamReset):
            if event.stream_id == self._control:
                self._lost_once(ConnectionError("control stream reset by the peer"))
            else:
                self._dead.add(event.stream_id)
        elif isinstance(event, qevents.ConnectionTerminated):
            self.terminated = event
            self._quic_closed = True
            self._lost_once(ConnectionError(f"QUIC closed: {event.reason_phrase}".rstrip(": ")))
            if self.is_client and self._transport is not None:
                self._loop.call_soon(self._transport.close)

    def _hold_early(self, event: qevents.QuicEvent, size: int) -> None:
        """Server, before the QUIC handshake completed: only HELLO may act (0-RTT)."""
        self._early_bytes += size
        if self._early_bytes > EARLY_DATA_LIMIT:
            self._fail(CloseCode.PROTOCOL_ERROR, "only HELLO may be sent in 0-RTT")
            return
        self._early.append(event)

    def _lost_once(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._stop_keepalive()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self.started:
            self.session.connection_lost(exc)
        if self._listener is not None:
            self._listener.untrack(self)

    # ------------------------------------------------------- incoming

    def _fail(self, code: int, reason: str) -> None:
        logger.debug("quic: %s (%d)", reason, code)
        if not self.started:
            self._close_quic()
            return
        connection = self.session.connection
        if code == CloseCode.MESSAGE_TOO_LARGE and connection.state in (
            State.OPEN,
            State.AWAIT_HELLO,
            State.AWAIT_WELCOME,
        ):
            connection.send_error(code, reason)  # ERROR then CLOSE, as the core does
        self.session.fail(code, reason)

    def _splitter(self, sid: int) -> StreamSplitter | None:
        splitter = self._splitters.get(sid)
        if splitter is not None:
            return splitter
        if sid & 2:
            self._fail(CloseCode.PROTOCOL_ERROR, "OpenMux uses no unidirectional QUIC stream")
            return None
        if sid != self._control and not self._is_local(sid):
            if self.session.connection.state is not State.OPEN and not self.is_client:
                self._fail(CloseCode.PROTOCOL_ERROR, f"QUIC stream {sid} before the handshake")
                return None
            if sid not in self._channel_of:
                self._held_in[sid] = []
        splitter = self._splitters[sid] = StreamSplitter(self._limit)
        return splitter

    def _is_local(self, sid: int) -> bool:
        return (sid & 1) == (0 if self.is_client else 1)

    def _stream_data(self, sid: int, data: bytes, end: bool) -> None:
        if sid in self._dead or self.session.connection.state is State.CLOSED:
            return
        if sid not in self._seen:
            self._seen.add(sid)
            if sid in self._held_out:
                self._release_out(sid)
        splitter = self._splitter(sid)
        if splitter is None:
            self._dead.add(sid)
            return
        # A frame may not declare more than the negotiated maxMessageSize: check
        # it before waiting for (and buffering) its payload.
        splitter.limit = self.session.connection.max_message_size or self._limit
        frames = splitter.feed(data) if data else []
        if sid == self._control:
            self._control_frames(frames)
            if end:
                self._lost_once(ConnectionError("control stream closed by the peer"))
        else:
            held = self._held_in.get(sid)
            if held is not None:
                for frame in frames:
                    self._held_in_bytes += len(frame)
                    held.append(frame)
                if self._held_in_bytes > self._read_limit:
                    self._fail(CloseCode.PROTOCOL_ERROR, "data on QUIC streams no entry announced")
            else:
                self._channel_frames(sid, frames)
            if end:
                self._dead.add(sid)
        error = splitter.error
        if error is not None:
            self._dead.add(sid)
            self._fail(error.code, error.reason)

    def _channel_frames(self, sid: int, frames: list[bytes]) -> None:
        channel_id = self._channel_of.get(sid)
        if channel_id is None:  # closed meanwhile: late bytes are ignored
            return
        session = self.session
        for frame in frames:
            if frame[0] != channel_id and (frame[0] != 0 or frame[1] != _PING):
                self._dead.add(sid)
                self._fail(
                    CloseCode.PROTOCOL_ERROR,
                    f"frame for channel {frame[0]} on the QUIC stream of channel {channel_id}",
                )
                return
            session.message_received(frame)
            if sid in self._dead or session.connection.state is State.CLOSED:
                return

    def _control_frames(self, frames: list[bytes]) -> None:
        session = self.session
        for index, frame in enumerate(frames):
            if not self._quic_ready and self._hello_delivered and not self.is_client:
                rest = frames[index:]
                self._early_control.extend(rest)
                self._early_bytes += sum(len(f) for f in rest)
                if self._early_bytes > EARLY_DATA_LIMIT:
                    self._fail(CloseCode.PROTOCOL_ERROR, "only HELLO may be sent in 0-RTT")
                return
            channel_id = frame[0]
            if channel_id == 0:
                if frame[1] in (_WELCOME, _CHANNEL_ACK):
                    self._sniff_entries(frame)
            elif channel_id in self._stream_of or channel_id in self._datagram_channels:
                self._fail(
                    CloseCode.PROTOCOL_ERROR,
                    f"frame for channel {channel_id} on the control stream, not its own",
                )
                return
            if not self._hello_delivered and not self.is_client:
                self._hello_delivered = True
                session.transport_info["hello_in_0rtt"] = not self._quic_ready
            session.message_received(frame)
            self._entries.clear()
            if self._ready:
                ready, self._ready = self._ready, []
                for sid in ready:
                    frames_held = self._held_in.pop(sid, [])
                    self._held_in_bytes -= sum(len(f) for f in frames_held)
                    self._channel_frames(sid, frames_held)
            if session.connection.state is State.CLOSED:
                return

    def _sniff_entries(self, frame: bytes) -> None:
        """Read `streamId`/`transport` of the peer's WELCOME/CHANNEL_ACK entries.

        The core parses these messages too but keeps only what it needs; the
        stream mapping is this binding's business, so it looks for itself.
        """
        try:
            _, type_, flags, payload = decode_message(frame, self._limit)
        except (FrameError, MessageTooLarge):
            return  # the core answers
        if flags & _FRAGMENT:
            first = self._sniff
            if first is None:
                first = (type_, [], 0)
            _, parts, size = first
            size += len(payload)
            if size > self.session.connection.config.max_control_message:
                self._sniff = None
                return
            parts.append(payload)
            if not flags & _FRAGMENT_END:
                self._sniff = (type_, parts, size)
                return
            self._sniff = None
            payload = b"".join(parts)
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(body, dict):
            return
        entries = body.get("channels") if type_ == _WELCOME else [body]
        if not isinstance(entries, list):
            return
        for entry in entries:
            if isinstance(entry, dict) and type(entry.get("id")) is int:
                self._entries[entry["id"]] = entry

    def _datagram(self, data: bytes) -> None:
        session = self.session
        if len(data) < 6:
            self._fail(CloseCode.PROTOCOL_ERROR, "QUIC datagram shorter than a frame header")
            return
        channel_id = data[0]
        if data[2] & _DATAGRAM_FORBIDDEN:
            self._fail(CloseCode.PROTOCOL_ERROR, "EXTENDED_LENGTH/FRAGMENT flag on a QUIC datagram")
            return
        if channel_id in self._datagram_channels:
            if not self._reading_paused:
                session.message_received(data)
            return
        if channel_id == 0 or channel_id in self._stream_of:
            self._fail(
                CloseCode.PROTOCOL_ERROR,
                f"QUIC datagram for channel {channel_id}, not a datagram channel",
            )
        # else: a channel not (yet) announced or already closed: dropped.

    # ------------------------------------------------------ channel map

    def _datagrams_available(self) -> bool:
        """Both sides announced DATAGRAM support, with room for useful frames."""
        remote = _remote_datagram_size(self._quic)
        return self._local_datagrams and remote is not None and remote >= MIN_DATAGRAM_FRAME_SIZE

    def datagram_limit(self) -> int:
        """The largest frame one QUIC datagram carries on this connection."""
        if self._datagram_size is None:
            remote = _remote_datagram_size(self._quic) or 0
            packet = self._quic.configuration.max_datagram_size - _PACKET_OVERHEAD
            self._datagram_size = max(0, min(remote - 9, packet))
        return self._datagram_size

    def _describe(self, channel: CoreChannel) -> dict[str, Any]:
        """The core writes a WELCOME/CHANNEL_ACK entry: we pick the transport."""
        if not channel.reliable and not channel.ordered and self._datagrams_available():
            self._described[channel.id] = ("datagram", None)
            return {"transport": "datagram"}
        sid = self._next_stream
        self._next_stream += 4
        self._described[channel.id] = ("stream", sid)
        return {"streamId": sid, "transport": "stream"}

    def channel_opened(self, channel: CoreChannel) -> None:
        mine = self._described.pop(channel.id, None)
        if mine is not None:
            transport, sid = mine
        else:
            entry = self._entries.pop(channel.id, None)
            if entry is None:
                self._fail(
                    CloseCode.PROTOCOL_ERROR, f"entry of channel {channel.id} has no QUIC transport"
                )
                return
            transport = entry.get("transport", "stream")
            raw_sid = entry.get("streamId")
            sid = raw_sid if type(raw_sid) is int else None
        if transport == "datagram":
            if channel.reliable or channel.ordered or not self._local_datagrams:
                self._fail(
                    CloseCode.PROTOCOL_ERROR,
                    f"channel {channel.name!r} cannot be mapped to QUIC datagrams",
                )
                return
            self._datagram_channels.add(channel.id)
            return
        if transport != "stream" or sid is None or not self._valid_channel_stream(sid, mine):
            self._fail(
                CloseCode.PROTOCOL_ERROR,
                f"invalid QUIC stream for channel {channel.name!r}: {sid!r}",
            )
            return
        self._stream_of[channel.id] = sid
        self._channel_of[sid] = channel.id
        if mine is not None:
            self._openers.append(sid)
            connection = self.session.connection
            if connection.state is State.OPEN:
                connection.ping(self._loop.time())
        elif sid in self._held_in:
            self._ready.append(sid)

    def _valid_channel_stream(self, sid: int, mine: object) -> bool:
        if sid < 0 or sid & 2 or sid == self._control or sid in self._channel_of:
            return False
        if sid in self._dead:
            return False
        return mine is not None or not self._is_local(sid)

    def channel_closed(self, channel: CoreChannel) -> None:
        self._datagram_channels.discard(channel.id)
        sid = self._stream_of.pop(channel.id, None)
        if sid is None:
            return
        self._channel_of.pop(sid, None)
        self._dead.add(sid)
        self._dirty.discard(sid)  # what it still holds no longer holds anyone back
        self._splitters.pop(sid, None)
        held = self._held_out.pop(sid, None)
        if held:
            self._held_out_bytes -= sum(len(f) for f in held)
        if sid in self._openers:
            self._openers.remove(sid)
        if self._is_local(sid) or sid in self._seen:
            try:
                self._quic.send_stream_data(sid, b"", end_stream=True)
            except (ValueError, RuntimeError):
                pass
            self._transmit_soon()

    # ------------------------------------------------------- outgoing

    def write_frames(self, frames: list[bytes]) -> None:
        if self._quic_closed or self._closing:
            return
        if (
            not self.is_client
            and self._control not in self._seen
            and self.session.connection.state is State.CLOSING
        ):
            # CLOSE (4007 after hello_timeout, 1001 from a closing server)
            # before the client opened its control stream: nothing can carry
            # it, so waiting close_timeout for its acknowledgement is pointless.
            self._close_quic()
            return
        quic = self._quic
        batch: dict[int, list[bytes]] = {}
        too_large: LocalProtocolError | None = None
        for frame in frames:
            channel_id = frame[0]
            if channel_id == 0:
                sid = self._control
                if frame[1] == _PING and self._openers:
                    sid = self._openers.popleft()
            elif channel_id in self._datagram_channels:
                if len(frame) > self.datagram_limit():
                    too_large = LocalProtocolError(
                        f"a {len(frame)}-byte frame does not fit one QUIC datagram "
                        f"({self.datagram_limit()} bytes) of unreliable channel {channel_id}",
                        CloseCode.MESSAGE_TOO_LARGE,
                    )
                elif _datagrams_queued(quic) < DATAGRAM_QUEUE:
                    quic.send_datagram_frame(frame)
                continue
            else:
                found = self._stream_of.get(channel_id)
                if found is None:
                    continue  # the channel is gone
                sid = found
            if sid in self._seen or self._is_local(sid):
                batch.setdefault(sid, []).append(frame)
            else:
                self._held_out.setdefault(sid, []).append(frame)
                self._held_out_bytes += len(frame)
        for sid, parts in batch.items():
            self._send(sid, parts[0] if len(parts) == 1 else b"".join(parts))
        self._transmit_soon()
        self._check_buffers()
        if too_large is not None:
            raise too_large

    def _send(self, sid: int, data: bytes) -> None:
        try:
            self._quic.send_stream_data(sid, data)
        except (ValueError, RuntimeError) as exc:  # finished or reset meanwhile
            logger.debug("quic: dropped %d bytes for stream %d: %s", len(data), sid, exc)
            return
        self._dirty.add(sid)

    def _release_out(self, sid: int) -> None:
        held = self._held_out.pop(sid, [])
        self._held_out_bytes -= sum(len(f) for f in held)
        if held:
            self._send(sid, b"".join(held))
            self._transmit_soon()

    def _check_buffers(self) -> None:
        quic = self._quic
        total = self._held_out_bytes
        drained = []
        for sid in self._dirty:
            size = stream_buffered(quic, sid)
            if size:
                total += size
            else:
                drained.append(sid)
        for sid in drained:
            self._dirty.discard(sid)
        if self._closing:
            if self._control not in self._dirty:
                self._close_quic()
            return
        if not self._write_paused:
            if total > self._write_limit:
                self._write_paused = True
                self.session.pause_writing()
        elif total <= self._write_limit // 4:
            self._write_paused = False
            self.session.resume_writing()

    # ------------------------------------------------------------ sink

    def close(self) -> None:  # type: ignore[override]
        """The session is over: let the last CLOSE reach the peer, then close QUIC."""
        if self._closing or self._quic_closed:
            return
        self._closing = True
        if self._write_paused:
            self._write_paused = False
            self.session.resume_writing()
        self.transmit()
        if stream_buffered(self._quic, self._control) == 0:
            self._close_quic()
        else:
            self._close_timer = self._loop.call_later(
                self.session.options.close_timeout, self._close_quic
            )

    def _close_quic(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._stop_keepalive()
        if self._quic_closed:
            return
        self._quic_closed = True
        session = self.session
        code = session.close_code or session.connection.close_code or CloseCode.NORMAL
        error = 0 if code == CloseCode.NORMAL else int(code)  # an application error code
        self._quic.close(error_code=error, reason_phrase=f"openmux {code}")
        self.transmit()

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self.transmit()  # the withheld flow-control credit goes out now

    def _stream_paused(self, sid: int) -> bool:
        return self._reading_paused and sid != self._control

    def get_write_buffer_size(self) -> int:
        return self._held_out_bytes + sum(stream_buffered(self._quic, s) for s in self._dirty)


# ------------------------------------------------------------------ client


async def connect(url: str, options: Options) -> Session:
    _, host, port = split(url, DEFAULT_PORT)
    loop = asyncio.get_running_loop()
    config = _client_configuration(host, options)
    session = Session(options, is_client=True, mode="message")
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, addr = infos[0][0], infos[0][4]
    quic = QuicConnection(
        configuration=config, session_ticket_handler=options.extra.get("session_ticket_handler")
    )
    _, protocol = await loop.create_datagram_endpoint(
        lambda: QuicTransport(quic, session=session),
        # connected, so that an ICMP "port unreachable" ends the attempt at once
        # instead of after the timeout (the fallback chain moves on sooner)
        remote_addr=(str(addr[0]), int(addr[1])),
        family=family,
    )
    assert isinstance(protocol, QuicTransport)
    early = config.session_ticket is not None and config.session_ticket.max_early_data_size
    try:
        if early:
            # 0-RTT: the HELLO leaves with the client's first flight.
            protocol.connect(addr, transmit=False)
            protocol.start()
            protocol.transmit()
        else:
            protocol.connect(addr)
            try:
                await protocol.wait_connected()
            except ConnectionError as exc:
                reason = protocol.terminated.reason_phrase if protocol.terminated else str(exc)
                raise TransportError(
                    f"QUIC connection to {netloc(host, port)} failed: {reason}".rstrip(": ")
                ) from None
            protocol.start()
        await session.wait_handshake()
    except BaseException:
        protocol.abort()
        raise
    return session


# ------------------------------------------------------------------ server


class _Tickets:
    """Session tickets for 0-RTT, each usable once (so an early HELLO can be
    replayed at most once), bounded in number."""

    def __init__(self, size: int = 4096) -> None:
        self._tickets: OrderedDict[bytes, SessionTicket] = OrderedDict()
        self._size = size

    def add(self, ticket: SessionTicket) -> None:
        self._tickets[ticket.ticket] = ticket
        while len(self._tickets) > self._size:
            self._tickets.popitem(last=False)

    def pop(self, label: bytes) -> SessionTicket | None:
        return self._tickets.pop(label, None)


class QuicListener:
    """`Listener` over one UDP socket. QUIC cannot stop accepting without
    closing that socket, which live sessions still use: `close()` stops
    new sessions (the Server closes them with 1001) and `wait_closed()`
    closes the socket once the live ones are gone."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.quic_server: QuicServer | None = None
        self._protocols: set[QuicTransport] = set()
        self._closing = False

    def track(self, protocol: QuicTransport) -> None:
        self._protocols.add(protocol)

    def untrack(self, protocol: QuicTransport) -> None:
        self._protocols.discard(protocol)

    def close(self) -> None:
        self._closing = True

    async def wait_closed(self) -> None:
        for protocol in list(self._protocols):
            await protocol.session.wait_closed()
            if protocol._close_timer is not None:  # let the final CLOSE be acknowledged
                await asyncio.sleep(protocol.session.options.close_timeout)
        if self.quic_server is not None:
            self.quic_server.close()
            self.quic_server = None


async def listen(url: str, server: Server) -> QuicListener:
    _, host, port = split(url, DEFAULT_PORT)
    options = server.options
    config = _server_configuration(options)
    listener = QuicListener()
    tickets = _Tickets() if options.extra.get("zero_rtt", True) else None
    quic_server = await quic_serve(
        host,
        port,
        configuration=config,
        create_protocol=functools.partial(QuicTransport, server=server, listener=listener),
        session_ticket_fetcher=tickets.pop if tickets else None,
        session_ticket_handler=tickets.add if tickets else None,
        retry=bool(options.extra.get("retry", False)),
    )
    listener.quic_server = quic_server
    sockname = quic_server._transport.get_extra_info("sockname")  # type: ignore[union-attr]
    listener.urls = [f"quic://{netloc(sockname[0], sockname[1])}"]
    return listener


__all__ = [
    "ALPN",
    "DEFAULT_PORT",
    "QuicListener",
    "QuicTransport",
    "connect",
    "listen",
    "quic_configuration",
    "self_signed_certificate",
    "stream_buffered",
    "write_self_signed_certificate",
]
