"""The OpenMux state machine: handshake, channels, fragmentation, keepalive, close.

Sans-IO in the style of h2 and aioquic: no sockets, no asyncio, no clock. The
caller feeds bytes (`receive_data` for byte streams, `receive_message` for
message transports) with the current time, gets a list of events back, and
sends whatever `data_to_send()` / `messages_to_send()` returns. Timers follow
aioquic: `get_timer()` says when to call `handle_timer(now)`.

For callers that count their Python calls (a keystroke, bulk output):
`receive_messages` takes all the messages of one transport read at once;
`set_fast_handler` + `receive_fast` hand a protocol's hottest messages to a
callback with no event; `encode_direct` gives a small message's frame to
write at once when that is exactly what queueing it would send. Each does
what the general methods would, and says when it cannot.

A misbehaving peer never makes a `receive_*` call raise: the connection answers
on the wire (ERROR, CHANNEL_REJECT or CLOSE, as OPENMUX.md says), records the
cause in `close_code`/`close_reason`, and reports `ConnectionTerminated` once
the transport should be closed. Only local misuse raises (`LocalProtocolError`).
docs/protocol/openmux.md maps every rule of the spec to the method below that
enforces it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeGuard

from ._types import Buffer
from .bodies import BodyError, loads_json
from .channels import Channel, ChannelSpec
from .codes import (
    CONTROL_CHANNEL,
    DEFAULT_MESSAGE_SIZE,
    EXTENSION_TYPES,
    HEADER_SIZE,
    MAGIC,
    MAX_CHANNEL_ID,
    MAX_EXTENDED_LENGTH,
    MAX_STANDARD_LENGTH,
    MIN_MESSAGE_SIZE,
    CloseCode,
    ControlType,
    Flags,
)
from .config import DEFER, Config
from .errors import (
    ConnectionClosedError,
    FrameError,
    LocalProtocolError,
    MessageTooLarge,
    NotOpenMux,
    ProtocolError,
)
from .events import (
    ChannelClosed,
    ChannelOpened,
    ChannelRejected,
    ChannelRequested,
    ConnectionTerminated,
    ErrorReceived,
    Event,
    ExtensionMessage,
    HandshakeCompleted,
    MessageReceived,
    PongReceived,
)
from .frame import (
    FrameReader,
    RawFrame,
    _pack_std,
    _unpack_std,
    decode_message,
    encode_header,
)

Mode = Literal["stream", "message"]

FastHandler = Callable[[int, bytes], bool]
"""`handler(type, payload) -> bool` of `Connection.set_fast_handler`."""

_FRAGMENT = int(Flags.FRAGMENT)
_FRAGMENT_END = int(Flags.FRAGMENT_END)
_U32 = struct.Struct(">I")
_U32X2 = struct.Struct(">II")
_RESUME_EXTENSIONS = ("session-resume", "session-persistence")


def _message_factory() -> Callable[[int, int, bytes], MessageReceived]:
    """A `MessageReceived` maker for the receive fast path.

    A frozen dataclass's `__init__` goes through `object.__setattr__` per field
    (~380 ns on CPython 3.11, a third of the per-frame budget of
    bench/openmux_parse.py); filling the slots directly makes the very same
    object in ~230 ns. Falls back to the class if its fields ever change.
    """
    names = tuple(f.name for f in dataclasses.fields(MessageReceived))
    if names != ("channel_id", "type", "data"):
        return MessageReceived
    new = object.__new__
    set_channel = getattr(MessageReceived, "channel_id").__set__  # noqa: B009
    set_type = getattr(MessageReceived, "type").__set__  # noqa: B009
    set_data = getattr(MessageReceived, "data").__set__  # noqa: B009

    def make(channel_id: int, type_: int, data: bytes) -> MessageReceived:
        event = new(MessageReceived)
        set_channel(event, channel_id)
        set_type(event, type_)
        set_data(event, data)
        return event

    return make


_message_received = _message_factory()

_SPLIT_SIZE = 4096


class _Head(bytes):
    """A frame header queued apart from its payload, which is the next item of
    `_out`. For a large immutable payload in stream mode this saves a copy:
    `data_to_send` joins header and payload once instead of concatenating
    them first (and the extra allocation of every frame churns the heap:
    bench/openmux_encode.py went from ~1.2 to >10 GB/s). `messages_to_send`
    rejoins the pair, so its items stay whole frames."""

    __slots__ = ()


class State(enum.Enum):
    IDLE = "idle"  # created, initiate() not called yet
    AWAIT_HELLO = "await-hello"  # server, transport open
    AWAIT_WELCOME = "await-welcome"  # client, HELLO sent
    OPEN = "open"
    CLOSING = "closing"  # we sent CLOSE, waiting for the peer's
    CLOSED = "closed"


_OPEN = State.OPEN


def _negotiate_size(a: int, b: int) -> int:
    """Minimum of two maxMessageSize values where 0 means unlimited."""
    if a == 0:
        return b
    if b == 0:
        return a
    return min(a, b)


def _peer_size(value: int) -> int:
    """A peer's maxMessageSize, raised to the House floor (0 stays unlimited)."""
    return value if value == 0 else max(value, MIN_MESSAGE_SIZE)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _parse_version(value: object) -> tuple[int, int, int] | None:
    if isinstance(value, list) and len(value) == 3 and all(_is_int(v) and v >= 0 for v in value):
        return (value[0], value[1], value[2])
    return None


def _spec_from_json(obj: Mapping[str, Any]) -> ChannelSpec | None:
    """A channel object of HELLO/OPEN_CHANNEL, or None if a MUST field is bad."""
    name, reliable, ordered = obj.get("name"), obj.get("reliable"), obj.get("ordered")
    if not isinstance(name, str) or not name or not isinstance(reliable, bool):
        return None
    if not isinstance(ordered, bool):
        return None
    retransmits = obj.get("maxRetransmits")
    lifetime = obj.get("maxPacketLifeTime")
    metadata = obj.get("metadata")
    return ChannelSpec(
        name,
        reliable,
        ordered,
        retransmits if _is_int(retransmits) else None,
        lifetime if _is_int(lifetime) else None,
        metadata if isinstance(metadata, dict) else None,
    )


def _version_str(v: tuple[int, int, int]) -> str:
    return ".".join(str(x) for x in v)


def _decode_json(payload: bytes) -> dict[str, Any] | None:
    """A control payload as a JSON object, or None.

    Strict UTF-8 (json.loads would sniff UTF-16/32), no NaN/Infinity, and a
    hostile nesting depth is a malformed message rather than a RecursionError:
    the rules of `bodies.loads_json`, which the protocol packages use too.
    """
    try:
        body = loads_json(payload, None)
    except BodyError:
        return None
    return body if isinstance(body, dict) else None


class Connection:
    """One side of an OpenMux connection.

    `mode="stream"` for byte streams (TCP, TLS, stdio): the client writes the
    `OMUX` magic first and frames may arrive split anyhow. `mode="message"` for
    WebSocket, DataChannels and QUIC (a transport that parses QUIC streams
    itself hands over one frame at a time): each message given to
    `receive_message` must be exactly one frame.
    """

    def __init__(self, config: Config, mode: Mode = "stream") -> None:
        if mode not in ("stream", "message"):
            raise ValueError(f"mode must be 'stream' or 'message', not {mode!r}")
        self.config = config
        self.mode: Mode = mode
        self.is_client = config.is_client
        self.state = State.IDLE
        self.channels: dict[int, Channel] = {}
        self.transport_authenticated = False
        """Set by a transport that authenticated the peer itself (WebSocket upgrade)."""
        self.describe_channel: Callable[[Channel], Mapping[str, Any]] | None = None
        """Hook for transports (QUIC) that add keys to WELCOME/CHANNEL_ACK entries."""
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by_peer = False
        self.version: tuple[int, int, int] = config.version
        self.peer_version: tuple[int, int, int] | None = None
        self.extensions: tuple[str, ...] = ()
        self.max_message_size = config.max_message_size
        self.ping_interval = config.ping_interval
        self.ping_timeout = config.ping_timeout
        self.rtt: float | None = None
        self.hello: Mapping[str, Any] | None = None

        self._out: list[bytes] = []
        self._split = False  # some `_Head` in `_out`
        # Until negotiation the peer cannot know our limit: accept what the
        # spec's default (65535) allows, or more if we announce more.
        early = config.max_message_size and max(config.max_message_size, DEFAULT_MESSAGE_SIZE)
        self._reader = FrameReader(early, config.max_reassembly)
        self._stream_start = mode == "stream"  # still looking for the magic
        self._start_buffer = b""
        self._peer_sent_magic = False
        self._magic_pending = False
        self._pending_termination = False
        self._epoch = 0.0
        self._hello_deadline: float | None = None
        self._close_deadline: float | None = None
        self._last_rx = 0.0
        self._ping_sent_at: float | None = None
        self._names: dict[str, int] = {}
        self._requested: dict[str, ChannelSpec] = {c.name: c for c in config.channels}
        self._next_request_id = 1
        self._next_id = 1  # where the cyclic id search starts (server)
        # our OPEN_CHANNELs awaiting an answer: requestId -> (spec, id reserved by a server)
        self._outgoing: dict[int, tuple[ChannelSpec, int | None]] = {}
        # the peer's OPEN_CHANNELs deferred by the policy: requestId -> (spec, reserved id)
        self._incoming: dict[int, tuple[ChannelSpec, int]] = {}
        self._pending_names: set[str] = set()
        self._reserved_ids: set[int] = set()
        # channel id -> (type, fragments so far, their total size)
        self._reassembly: dict[int, tuple[int, list[bytes], int]] = {}
        self._reassembly_bytes = 0
        self._unknown_reported: set[int] = set()
        # channel id -> (the Channel it was registered for, handler)
        self._fast: dict[int, tuple[Channel, FastHandler]] = {}
        self._fast_limit = 0  # `_frame_limit()`, fixed once OPEN: taken by set_fast_handler
        self._message_mode = mode == "message"

    # ------------------------------------------------------------------ I/O

    def initiate(self, now: float) -> None:
        """Start the connection once the transport is up.

        Client: queues the magic (stream mode) and HELLO. Server: arms the
        HELLO timer.
        """
        if self.state is not State.IDLE:
            raise LocalProtocolError("initiate() was already called")
        self._epoch = now
        self._last_rx = now
        if self.is_client:
            if self.mode == "stream":
                self._out.append(MAGIC)
            hello: dict[str, Any] = {
                "version": list(self.config.version),
                "extensions": list(self.config.extensions),
                "maxMessageSize": self.config.max_message_size,
                "pingInterval": self.config.ping_interval,
                "pingTimeout": self.config.ping_timeout,
                "channels": [c.to_json() for c in self.config.channels],
            }
            if self.config.application is not None:
                hello["application"] = self.config.application
            if self.config.token is not None:
                hello["auth"] = {"type": "token", "token": self.config.token}
            hello.update(self.config.hello_extra)
            self._send_control(ControlType.HELLO, hello)
            self.state = State.AWAIT_WELCOME
        else:
            self._hello_deadline = now + self.config.hello_timeout
            self.state = State.AWAIT_HELLO

    def data_to_send(self) -> bytes:
        """Everything queued, as one byte string (stream transports)."""
        out = self._out
        if not out:
            return b""
        self._out = []
        self._split = False
        return out[0] if len(out) == 1 else b"".join(out)

    def messages_to_send(self) -> list[bytes]:
        """Everything queued, one frame per item (message transports)."""
        out, self._out = self._out, []
        if self._split:
            self._split = False
            items = iter(out)
            out = [item + next(items) if type(item) is _Head else item for item in items]
        return out

    def receive_data(self, data: Buffer, now: float) -> list[Event]:
        """Feed bytes from a byte-stream transport; returns the events they caused."""
        if self.state is State.CLOSED:
            return []
        self._check_initiated()
        self._last_rx = now
        if self._stream_start:
            data = self._consume_magic(bytes(data))
            if self._stream_start or self._closed():
                return self._terminated_if_closed([])
        frames = self._reader.feed(data)
        events: list[Event] = []
        append = events.append
        channels = self.channels
        # Fast path (bench/openmux_parse.py): a whole message on an open
        # application channel, while OPEN with no fragmented message pending,
        # changes no state; everything else goes through `_handle_frame`.
        limit = self._reader.limit
        fast = self.state is State.OPEN and not self._reassembly
        for frame in frames:
            channel_id, type_, flags, payload = frame
            if fast and not flags and channel_id in channels:
                append(_message_received(channel_id, type_, payload))
                continue
            self._handle_frame(frame, now, events)
            if self._closed():
                return events
            # A handshake in this read may have lowered the frame limit: the
            # frames parsed with the old one must go through _handle_frame.
            fast = self.state is State.OPEN and not self._reassembly and self._reader.limit == limit
            channels = self.channels
        if self._reader.error is not None:
            self._fail(self._reader.error, now)
        return events

    def receive_message(self, message: Buffer, now: float) -> list[Event]:
        """Feed one transport message, which must hold exactly one frame."""
        if self.state is State.CLOSED:
            return []
        self._check_initiated()
        self._last_rx = now
        events: list[Event] = []
        try:
            frame = decode_message(message, self._frame_limit())
        except (FrameError, MessageTooLarge) as exc:
            self._fail(exc, now)
            return events
        self._handle_frame(frame, now, events)
        return events

    def receive_messages(self, messages: Sequence[Buffer], now: float) -> list[Event]:
        """Feed several transport messages (one frame each) at once: the events
        of `receive_message` called on each in turn, as one list.

        A WebSocket read often holds several messages; one call for all of
        them takes the plain case (a whole message on an open application
        channel while OPEN, no fragmented message pending) without a call
        per message, and gives the caller one batch to handle instead of
        one per message.
        """
        if self.state is State.CLOSED or not messages:
            return []
        self._check_initiated()
        self._last_rx = now
        events: list[Event] = []
        append = events.append
        channels = self.channels
        limit = self._frame_limit()
        fast = self.state is _OPEN and not self._reassembly
        for message in messages:
            if fast:
                size = len(message) - HEADER_SIZE
                if size >= 0:
                    channel_id, type_, flags, reserved, length = _unpack_std(message)
                    if (
                        not flags
                        and not reserved
                        and length == size
                        and size <= limit
                        and channel_id in channels
                    ):
                        # bytes(...) of a bytes slice is that slice: one copy either way
                        append(_message_received(channel_id, type_, bytes(message[HEADER_SIZE:])))
                        continue
            try:
                frame = decode_message(message, self._frame_limit())
            except (FrameError, MessageTooLarge) as exc:
                self._fail(exc, now)
            else:
                self._handle_frame(frame, now, events)
            if self._closed():
                break
            # what `receive_message` would check anew for the next message
            channels = self.channels
            limit = self._frame_limit()
            fast = self.state is _OPEN and not self._reassembly
        return events

    def set_fast_handler(self, channel_id: int, handler: FastHandler | None) -> None:
        """Let `receive_fast` hand whole messages of this open channel to
        `handler(type, payload) -> bool` instead of returning them as
        `MessageReceived` (None removes it).

        For the hottest messages of a protocol on top (a keystroke, its
        echo): the event, its batch and the caller's dispatch cost more than
        the message. The handler decides before doing anything: True if it
        took the message, False (untouched) to have it, and everything after
        it in the same call, handled as `receive_data`/`receive_message`
        would. It must not raise or call this connection. The registration
        ends with the channel: a new channel on the same id is not reached.
        `LocalProtocolError` (4003) if the channel is not open.
        """
        if handler is None:
            self._fast.pop(channel_id, None)
            return
        channel = self.channels.get(channel_id)
        if channel is None:
            raise LocalProtocolError(
                f"channel {channel_id} is not open", CloseCode.CHANNEL_NOT_FOUND
            )
        self._fast_limit = self._frame_limit()  # negotiated: channels exist only from OPEN on
        self._fast[channel_id] = (channel, handler)

    def receive_fast(self, data: Buffer, now: float) -> list[Event] | None:
        """`receive_data` (stream mode) or `receive_message` (message mode),
        offering whole messages to the fast handlers first.

        Messages go to a handler only while the connection is OPEN and no
        fragmented message is pending (stream mode: starting with the frame a
        partial one buffered by an earlier read becomes, see `_fast_rest`), each
        a plain frame (no flags, standard length, within the frame limit) of
        `bytes` input on a channel still open with the handler it was
        registered for; in order, until one is not such a message or its
        handler declines. What is left is then fed to `receive_data` /
        `receive_message` and its events returned: together, exactly what
        those would have done, minus the events of the taken messages.
        Returns None when the handlers took all of `data`: no event, and
        nothing changed but the time of the last receipt (the keepalive's).
        """
        fast = self._fast
        if fast and type(data) is bytes and self.state is _OPEN and not self._reassembly:
            if self._message_mode:
                size = len(data) - HEADER_SIZE
                if size >= 0:
                    # One struct unpack, not six indexings (a keystroke's frame).
                    channel_id, type_, flags, reserved, length = _unpack_std(data)
                    if not flags and not reserved and length == size:
                        entry = fast.get(channel_id)
                        if (
                            entry is not None
                            and size <= self._fast_limit
                            and self.channels.get(channel_id) is entry[0]
                            and entry[1](type_, data[HEADER_SIZE:])
                        ):
                            self._last_rx = now
                            return None
                return self.receive_message(data, now)
            reader = self._reader
            off = 0
            if reader.error is None and (
                (not reader._chunks and reader._head is None) or (off := self._fast_rest(data))
            ):
                size = len(data)
                limit = self._fast_limit
                channels = self.channels
                while size - off >= HEADER_SIZE and self.state is _OPEN:
                    channel_id, type_, flags, reserved, length = _unpack_std(data, off)
                    if flags or reserved:
                        break  # a fragment, an extended length or a bad header
                    entry = fast.get(channel_id)
                    if entry is None:
                        break
                    end = off + HEADER_SIZE + length
                    if end > size or length > limit or channels.get(channel_id) is not entry[0]:
                        break
                    if not entry[1](type_, data[off + HEADER_SIZE : end]):
                        break
                    off = end
                if off:
                    self._last_rx = now
                    if off == size:
                        return None
                    data = data[off:]
        if self._message_mode:
            return self.receive_message(data, now)
        return self.receive_data(data, now)

    def _fast_rest(self, data: bytes) -> int:
        """Where `receive_fast` may go on in `data` after handing the frame the
        reader holds the start of to its handler, or 0 (nothing taken).

        A TCP read of bulk output usually ends inside a frame; the next read
        then starts with the rest of it, and whole frames follow. Only a frame
        whose header is complete qualifies (a cut within 8 header bytes is
        rare and left to `receive_data`): plain, standard length, within the
        frame limit, completed by `data`, on a channel still open with its
        handler. Taken, the reader is left as `FrameReader._complete` leaves
        it after handing the frame out, which is all `receive_data` would
        have changed besides returning its `MessageReceived`.
        """
        reader = self._reader
        head = reader._head
        if head is None:
            return 0
        channel_id, type_, flags, header = head
        need = reader._need
        take = need - reader._pending
        if flags or header != HEADER_SIZE or need > self._fast_limit or take > len(data):
            return 0
        entry = self._fast.get(channel_id)
        if entry is None or self.channels.get(channel_id) is not entry[0]:
            return 0
        chunks = reader._chunks
        # One copy of the payload, as `_complete` makes; the reader's pieces
        # are not touched until the handler has taken it.
        payload = b"".join([*chunks, memoryview(data)[:take]]) if chunks else data[:take]
        if not entry[1](type_, payload):
            return 0
        reader._chunks = []
        reader._pending = 0
        reader._need = HEADER_SIZE
        reader._head = None
        return take

    def receive_fast_messages(self, messages: Sequence[Buffer], now: float) -> list[Event] | None:
        """`receive_fast` over several transport messages (message mode), in
        order: the handlers take messages until the first they do not; that
        one and every later one go the general way (`receive_messages`), so
        that no handler overtakes the events of a message before it. Returns
        None when the handlers took them all (one batch of events otherwise)."""
        for i, message in enumerate(messages):
            events = self.receive_fast(message, now)
            if events is not None:
                if i + 1 < len(messages):
                    events.extend(self.receive_messages(messages[i + 1 :], now))
                return events
        return None

    def encode_direct(self, channel_id: int, type_: int, data: bytes) -> bytes | None:
        """The frame of a message for the caller to write straight to its
        transport, or None when it must go through `send_message`.

        For a protocol's hottest small sends (a keystroke): the frame,
        written at once, is exactly what `send_message` then `data_to_send`
        would produce, since it is only given while that holds: the
        connection OPEN, the channel open, nothing queued ahead of it (not
        even the magic), and `data` within one standard frame and the
        negotiated message size (no fragmenting). Nothing is queued here:
        the caller writes the frame, or nobody does.
        """
        size = len(data)
        limit = self.max_message_size
        if (
            self.state is not _OPEN
            or self._out
            or self._magic_pending
            or size > MAX_STANDARD_LENGTH
            or (limit and size > limit)
            or channel_id not in self.channels
        ):
            return None
        return _pack_std(channel_id, type_, 0, 0, size) + data

    def connection_lost(self, now: float) -> list[Event]:
        """The transport went away (EOF, reset, child exit)."""
        if self.state is State.CLOSED:
            return []
        if self.state is State.CLOSING:
            return self._finish(now, by_peer=False)
        self.close_code = CloseCode.GOING_AWAY
        self.close_reason = "transport closed"
        self.closed_by_peer = True
        return self._finish(now, by_peer=True)

    def get_timer(self) -> float | None:
        """When `handle_timer` must next be called, or None."""
        state = self.state
        if state is State.CLOSING:
            return self._close_deadline
        if state is State.AWAIT_HELLO:
            return self._hello_deadline
        if state is State.OPEN:
            deadline = self._liveness_deadline()
            if deadline is not None:
                return deadline
            if self.ping_interval > 0:
                return self._last_rx + self.ping_interval
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Act on whatever timer is due at `now`; early calls do nothing."""
        state = self.state
        if state is State.CLOSING:
            if self._close_deadline is not None and now >= self._close_deadline:
                return self._finish(now, by_peer=False)
        elif state is State.AWAIT_HELLO:
            if self._hello_deadline is not None and now >= self._hello_deadline:
                self.close(CloseCode.HELLO_TIMEOUT, "no HELLO received", now)
        elif state is State.OPEN:
            deadline = self._liveness_deadline()
            if deadline is not None:
                if now >= deadline:
                    self.close(CloseCode.GOING_AWAY, "ping timeout", now)
                    return self._finish(now, by_peer=False)
            elif self.ping_interval > 0 and now >= self._last_rx + self.ping_interval:
                self.ping(now)
        return []

    # ------------------------------------------------------------- commands

    def send_message(self, channel_id: int, type_: int, data: Buffer) -> None:
        """Queue an application message; fragmented if the channel allows it."""
        self._check_open()
        channel = self.channels.get(channel_id)
        if channel is None:
            if channel_id == CONTROL_CHANNEL:
                raise LocalProtocolError("channel 0 carries no application messages")
            raise LocalProtocolError(
                f"channel {channel_id} is not open", CloseCode.CHANNEL_NOT_FOUND
            )
        if not 0 <= type_ <= 0xFF:
            raise LocalProtocolError(f"message type {type_} does not fit a byte")
        if type(data) is bytes:
            size = len(data)
        else:
            # Count bytes, not items: a memoryview of wider items must not
            # make the header lie about the payload.
            data = memoryview(data).cast("B")
            size = len(data)
        limit = self.max_message_size
        if limit and size > limit:
            if not channel.fragmentable:
                raise LocalProtocolError(
                    f"{size}-byte message is over maxMessageSize {limit} and channel "
                    f"{channel.name!r} is not reliable+ordered, so it cannot be fragmented",
                    CloseCode.MESSAGE_TOO_LARGE,
                )
            self._queue_fragments(channel_id, type_, memoryview(data), limit)
            return
        if size > MAX_EXTENDED_LENGTH:
            raise LocalProtocolError(
                f"{size}-byte message does not fit one frame", CloseCode.MESSAGE_TOO_LARGE
            )
        if size >= _SPLIT_SIZE and type(data) is bytes and self.mode == "stream":
            self._queue(_Head(encode_header(channel_id, type_, size)))
            self._out.append(data)
            self._split = True
        else:
            self._queue(encode_header(channel_id, type_, size) + data)

    def open_channel(
        self,
        name: str | ChannelSpec,
        *,
        reliable: bool = True,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_lifetime: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Ask for a channel; returns the requestId. `ChannelOpened` or
        `ChannelRejected` follows.

        The server is the only allocator of ids (House): a server reserves the
        id now and puts it in OPEN_CHANNEL; a client learns it from CHANNEL_ACK.
        """
        self._check_open()
        spec = (
            name
            if isinstance(name, ChannelSpec)
            else ChannelSpec(
                name, reliable, ordered, max_retransmits, max_packet_lifetime, metadata
            )
        )
        if not spec.name:
            raise LocalProtocolError("a channel needs a name")
        if spec.name in self._names or spec.name in self._pending_names:
            raise LocalProtocolError(f"channel {spec.name!r} is already open or requested")
        request_id = self._next_request_id
        body = {"requestId": request_id, **spec.to_json()}
        channel_id: int | None = None
        if not self.is_client:
            channel_id = self._find_free_id()
            if channel_id is None:
                raise LocalProtocolError("no free channel id", CloseCode.CHANNEL_FULL)
            self._claim_id(channel_id)
            self._reserved_ids.add(channel_id)
            body["id"] = channel_id
        self._next_request_id += 1
        self._outgoing[request_id] = (spec, channel_id)
        self._pending_names.add(spec.name)
        self._send_control(ControlType.OPEN_CHANNEL, body)
        return request_id

    def accept_channel(self, request_id: int) -> Channel:
        """Accept a request the policy deferred (see `ChannelRequested`).

        Its id was reserved when the request arrived, so this cannot fail
        for want of a free id.
        """
        self._check_open()
        try:
            spec, channel_id = self._incoming.pop(request_id)
        except KeyError:
            raise LocalProtocolError(f"no deferred channel request {request_id}") from None
        self._pending_names.discard(spec.name)
        self._reserved_ids.discard(channel_id)
        return self._ack_incoming(request_id, spec, channel_id)

    def reject_channel(self, request_id: int, code: int, reason: str = "") -> None:
        """Refuse a request the policy deferred; any integer code is allowed."""
        self._check_open()
        try:
            spec, channel_id = self._incoming.pop(request_id)
        except KeyError:
            raise LocalProtocolError(f"no deferred channel request {request_id}") from None
        self._pending_names.discard(spec.name)
        self._reserved_ids.discard(channel_id)
        self._reject(request_id, code, reason)

    def close_channel(self, channel_id: int, reason: str = "") -> Channel:
        """Close a channel at once; frames still in flight on it are discarded."""
        self._check_open()
        if channel_id == CONTROL_CHANNEL:
            raise LocalProtocolError("channel 0 cannot be closed")
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            raise LocalProtocolError(
                f"channel {channel_id} is not open", CloseCode.CHANNEL_NOT_FOUND
            )
        del self._names[channel.name]
        self._drop_reassembly(channel_id)
        # The peer's frames already in flight are expected: don't report them.
        self._unknown_reported.add(channel_id)
        body: dict[str, Any] = {"id": channel_id}
        if reason:
            body["reason"] = reason
        self._send_control(ControlType.CLOSE_CHANNEL, body)
        return channel

    def ping(self, now: float) -> None:
        """Send a PING now; a `PongReceived` event carries the RTT."""
        self._check_open()
        self._queue(encode_header(0, ControlType.PING, 4) + _U32.pack(self._timestamp(now)))
        if self._ping_sent_at is None:
            self._ping_sent_at = now

    def send_error(self, code: int, reason: str = "", channel: int | None = None) -> None:
        """Send an informational ERROR."""
        self._check_open(allow_handshake=True)
        body: dict[str, Any] = {"code": int(code)}
        if channel is not None:
            body["channel"] = channel
        if reason:
            body["reason"] = reason
        self._send_control(ControlType.ERROR, body)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "", now: float = 0.0) -> None:
        """Start the close handshake. Idempotent once CLOSE was sent.

        The peer's answering CLOSE (or `close_timeout`, see `handle_timer`)
        ends it with `ConnectionTerminated`.
        """
        if self.state in (State.CLOSING, State.CLOSED):
            return
        self.close_code, self.close_reason = int(code), reason
        if self.state is State.IDLE:
            self.state = State.CLOSED
            return
        body: dict[str, Any] = {"code": int(code)}
        if reason:
            body["reason"] = reason
        self._send_control(ControlType.CLOSE, body)
        self.state = State.CLOSING
        self._close_deadline = now + self.config.close_timeout

    # ------------------------------------------------------------ internals

    def _closed(self) -> bool:
        # A method, not an inline test: mypy narrows `self.state` across calls.
        return self.state is State.CLOSED

    def _check_initiated(self) -> None:
        if self.state is State.IDLE:
            raise LocalProtocolError("call initiate() before feeding data")

    def _check_open(self, allow_handshake: bool = False) -> None:
        if self.state is State.OPEN:
            return
        if self.state in (State.CLOSING, State.CLOSED):
            raise ConnectionClosedError("the connection is closed")
        if allow_handshake and self.state is not State.IDLE:
            return
        raise LocalProtocolError("the handshake is not complete")

    def _timestamp(self, now: float) -> int:
        return int((now - self._epoch) * 1000) & 0xFFFFFFFF

    def _liveness_deadline(self) -> float | None:
        """Lenient keepalive (House): with a PING outstanding the peer is dead
        only when nothing at all (PONG or any other byte) arrived for
        pingTimeout, because a busy peer's PONG may queue behind its data."""
        if self._ping_sent_at is None:
            return None
        return max(self._ping_sent_at, self._last_rx) + self.ping_timeout

    def _frame_limit(self) -> int:
        """Largest single frame accepted: negotiated size, capped by max_reassembly."""
        limit = self._reader.limit
        hard = self.config.max_reassembly
        return limit if limit and limit < hard else hard

    def _queue(self, frame: bytes) -> None:
        if self._magic_pending:
            self._magic_pending = False
            self._out.append(MAGIC)
        self._out.append(frame)

    def _send_control(self, type_: int, body: Mapping[str, Any]) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        limit = self.max_message_size
        if limit and len(payload) > limit:
            self._queue_fragments(CONTROL_CHANNEL, type_, memoryview(payload), limit)
        else:
            self._queue(encode_header(CONTROL_CHANNEL, type_, len(payload)) + payload)

    def _queue_fragments(self, channel_id: int, type_: int, data: memoryview, limit: int) -> None:
        size = len(data)
        last = size - limit
        pos = 0
        while pos < size:
            flags = _FRAGMENT | (_FRAGMENT_END if pos >= last else 0)
            chunk = data[pos : pos + limit]
            self._queue(encode_header(channel_id, type_, len(chunk), flags) + chunk)
            pos += limit

    def _consume_magic(self, data: bytes) -> bytes:
        """OPENMUX.md §5.1: a stream starts with `OMUX` or directly with a frame on
        channel 0; anything else (`OMUX` twice included) is closed without a frame."""
        buf = self._start_buffer + data
        if not buf:
            return b""
        if not self._peer_sent_magic:
            if buf.startswith(MAGIC):
                self._peer_sent_magic = True
                self._magic_pending = not self.is_client
                buf = buf[len(MAGIC) :]
            elif len(buf) < len(MAGIC) and MAGIC.startswith(buf):
                self._start_buffer = buf
                return b""
        self._start_buffer = b""
        if not buf:
            return b""
        self._stream_start = False
        if buf[0] != CONTROL_CHANNEL:
            self._abort(NotOpenMux("the stream does not start with OMUX or a channel-0 frame"))
            return b""
        return buf

    def _abort(self, exc: ProtocolError) -> None:
        """Close the transport without sending a frame."""
        self.close_code, self.close_reason = exc.code, exc.reason
        self.state = State.CLOSED
        self._out.clear()
        self._pending_termination = True

    def _terminated_if_closed(self, events: list[Event]) -> list[Event]:
        if self._pending_termination:
            self._pending_termination = False
            code = self.close_code if self.close_code is not None else CloseCode.PROTOCOL_ERROR
            events.append(ConnectionTerminated(code, self.close_reason, by_peer=False))
        return events

    def _fail(self, exc: ProtocolError, now: float) -> None:
        """Answer a fatal protocol error: ERROR (for 4005) then CLOSE."""
        if self.state in (State.CLOSING, State.CLOSED):
            return
        if isinstance(exc, MessageTooLarge):
            self.send_error(exc.code, exc.reason)
        self.close(exc.code, exc.reason, now)

    def _finish(self, now: float, by_peer: bool) -> list[Event]:
        self.state = State.CLOSED
        self._close_deadline = None
        self._hello_deadline = None
        self._ping_sent_at = None
        self._reassembly.clear()
        self._reassembly_bytes = 0
        code = self.close_code if self.close_code is not None else CloseCode.NORMAL
        return [ConnectionTerminated(code, self.close_reason, by_peer=by_peer)]

    def _find_free_id(self) -> int | None:
        """Cyclic search from just after the last id handed out, so a freshly
        closed id is reused last and a frame still in flight on it is less
        likely to land on a new channel."""
        candidate = self._next_id
        for _ in range(MAX_CHANNEL_ID):
            if candidate not in self.channels and candidate not in self._reserved_ids:
                return candidate
            candidate = candidate % MAX_CHANNEL_ID + 1
        return None

    def _claim_id(self, channel_id: int) -> None:
        self._next_id = channel_id % MAX_CHANNEL_ID + 1

    def _open(self, channel: Channel) -> None:
        self.channels[channel.id] = channel
        self._names[channel.name] = channel.id
        self._unknown_reported.discard(channel.id)

    def _channel_entry(self, channel: Channel, body: dict[str, Any]) -> dict[str, Any]:
        if self.describe_channel is not None:
            body.update(self.describe_channel(channel))
        return body

    def _reject(self, request_id: int, code: int, reason: str) -> None:
        body: dict[str, Any] = {"requestId": request_id, "code": int(code)}
        if reason:
            body["reason"] = reason
        self._send_control(ControlType.CHANNEL_REJECT, body)

    def _ack_incoming(self, request_id: int, spec: ChannelSpec, channel_id: int) -> Channel:
        channel = Channel.from_spec(channel_id, spec)
        self._open(channel)
        body = self._channel_entry(
            channel, {"requestId": request_id, "id": channel_id, "name": spec.name}
        )
        self._send_control(ControlType.CHANNEL_ACK, body)
        return channel

    def _drop_reassembly(self, channel_id: int) -> None:
        current = self._reassembly.pop(channel_id, None)
        if current is not None:
            self._reassembly_bytes -= current[2]

    # ---------------------------------------------------------- frame input

    def _handle_frame(self, frame: RawFrame, now: float, events: list[Event]) -> None:
        # `receive_data` inlines the OPEN + application channel + no-flags case:
        # a change here to that case (counting, say) must be made there too.
        channel_id, type_, flags, payload = frame
        state = self.state
        limit = self._reader.limit
        if limit and len(payload) > limit:
            # Parsed in the same read as the HELLO/WELCOME that lowered the
            # limit: judge it as if it had come in a later read.
            self._fail(MessageTooLarge(f"frame of {len(payload)} bytes, limit is {limit}"), now)
            return
        if channel_id != CONTROL_CHANNEL:
            if state is State.OPEN:
                channel = self.channels.get(channel_id)
                if channel is None:
                    self._on_unknown_channel(channel_id)
                    return
                if flags or channel_id in self._reassembly:
                    message = self._reassemble(channel, type_, flags, payload, now)
                    if message is None:
                        return
                    payload = message
                events.append(MessageReceived(channel_id, type_, payload))
            elif state is not State.CLOSING:  # after our CLOSE, app frames are dropped
                self._fail(
                    ProtocolError(f"frame on channel {channel_id} before the handshake"), now
                )
            return
        if flags or CONTROL_CHANNEL in self._reassembly:
            message = self._reassemble(None, type_, flags, payload, now)
            if message is None:
                return
            payload = message
        if state is State.CLOSING:
            # After our CLOSE only the peer's CLOSE matters (House §5.7).
            if type_ == ControlType.CLOSE:
                events.extend(self._finish(now, by_peer=False))
            return
        if len(payload) > self.config.max_control_message:
            self._fail(
                MessageTooLarge(
                    f"{len(payload)}-byte control message, limit is "
                    f"{self.config.max_control_message}"
                ),
                now,
            )
            return
        self._handle_control(type_, payload, now, events)

    def _on_unknown_channel(self, channel_id: int) -> None:
        """ERROR 4003, once per id until it is opened again: frames in flight
        after a CLOSE_CHANNEL are normal, and one report per frame would let a
        peer make us send an ERROR for every 6 bytes it sends."""
        if channel_id in self._unknown_reported:
            return
        self._unknown_reported.add(channel_id)
        self.send_error(
            CloseCode.CHANNEL_NOT_FOUND, f"channel {channel_id} is not open", channel_id
        )

    def _reassemble(
        self, channel: Channel | None, type_: int, flags: int, payload: bytes, now: float
    ) -> bytes | None:
        """Fragments of one message, contiguous on their channel (§1, House §5.2)."""
        channel_id = channel.id if channel is not None else CONTROL_CHANNEL
        if channel is not None and not channel.fragmentable and flags:
            self._fail(
                ProtocolError(
                    f"FRAGMENT on channel {channel.name!r}, which is not reliable+ordered"
                ),
                now,
            )
            return None
        current = self._reassembly.get(channel_id)
        if current is None:
            # Callers come here only with FRAGMENT set or a message pending:
            # FRAGMENT_END alone was refused with the header.
            current = (type_, [], 0)
        elif not flags & _FRAGMENT or current[0] != type_:
            self._drop_reassembly(channel_id)
            self._fail(
                ProtocolError(f"a new message started on channel {channel_id} before FRAGMENT_END"),
                now,
            )
            return None
        first_type, parts, size = current
        limit = self.config.max_reassembly
        if channel_id == CONTROL_CHANNEL:
            limit = min(limit, self.config.max_control_message)
        total = self._reassembly_bytes + len(payload)
        if size + len(payload) > limit or total > self.config.max_reassembly_total:
            self._drop_reassembly(channel_id)
            self._fail(MessageTooLarge(f"reassembled message exceeds {limit} bytes"), now)
            return None
        parts.append(payload)
        if flags & _FRAGMENT_END:
            self._drop_reassembly(channel_id)
            return b"".join(parts)
        self._reassembly[channel_id] = (first_type, parts, size + len(payload))
        self._reassembly_bytes = total
        return None

    def _handle_control(self, type_: int, payload: bytes, now: float, events: list[Event]) -> None:
        if self.state is not State.OPEN:
            self._handle_handshake_control(type_, payload, now, events)
            return
        if type_ == ControlType.PING:
            if len(payload) != 4:
                self._fail(ProtocolError(f"PING payload is {len(payload)} bytes, not 4"), now)
                return
            (echo,) = _U32.unpack(payload)
            self._queue(
                encode_header(0, ControlType.PONG, 8) + _U32X2.pack(echo, self._timestamp(now))
            )
            return
        if type_ == ControlType.PONG:
            if len(payload) != 8:
                self._fail(ProtocolError(f"PONG payload is {len(payload)} bytes, not 8"), now)
                return
            echo, _ = _U32X2.unpack(payload)
            rtt = ((self._timestamp(now) - echo) & 0xFFFFFFFF) / 1000.0
            self.rtt = rtt
            self._ping_sent_at = None
            events.append(PongReceived(rtt))
            return
        if type_ in (ControlType.HELLO, ControlType.WELCOME):
            name = ControlType(type_).name
            self._fail(ProtocolError(f"{name} after the handshake"), now)
            return
        if type_ == ControlType.CLOSE:
            self._on_close(payload, now, events)
            return
        handler = self._handlers.get(type_)
        is_extension = type_ in EXTENSION_TYPES
        if handler is None and not is_extension:
            self.send_error(CloseCode.UNSUPPORTED, f"unknown control type {type_:#04x}")
            return
        if is_extension and not any(e in self.extensions for e in _RESUME_EXTENSIONS):
            self.send_error(
                CloseCode.UNSUPPORTED, f"control type {type_:#04x} needs a negotiated extension"
            )
            return
        body = _decode_json(payload)
        if body is None:
            if type_ != ControlType.ERROR:  # never answer a broken ERROR with an ERROR
                self.send_error(
                    CloseCode.INVALID_MESSAGE,
                    f"control type {type_:#04x}: payload is not a JSON object",
                )
            return
        if handler is None:
            events.append(ExtensionMessage(type_, body))
            return
        handler(self, body, now, events)

    def _handle_handshake_control(
        self, type_: int, payload: bytes, now: float, events: list[Event]
    ) -> None:
        """Before WELCOME only HELLO (server) / WELCOME (client), CLOSE and ERROR
        are allowed (§1; House §5.3 lets ERROR precede a CLOSE)."""
        if type_ == ControlType.CLOSE:
            self._on_close(payload, now, events)
        elif type_ == ControlType.ERROR:
            body = _decode_json(payload)
            if body is not None:
                self._on_error(body, now, events)
        elif self.is_client and type_ == ControlType.WELCOME:
            self._on_welcome(payload, now, events)
        elif not self.is_client and type_ == ControlType.HELLO:
            self._on_hello(payload, now, events)
        else:
            self._fail(
                ProtocolError(f"control type {type_:#04x} before the handshake completed"), now
            )

    # ------------------------------------------------------------ handshake

    def _on_hello(self, payload: bytes, now: float, events: list[Event]) -> None:
        body = _decode_json(payload)
        if body is None:
            self._fail(ProtocolError("HELLO is not a JSON object", CloseCode.INVALID_MESSAGE), now)
            return
        peer_version = _parse_version(body.get("version"))
        if peer_version is None:
            self._fail(ProtocolError("HELLO has no valid version", CloseCode.INVALID_MESSAGE), now)
            return
        ours = self.config.version
        if peer_version[0] != ours[0]:
            self._fail(
                ProtocolError(
                    f"unsupported version {_version_str(peer_version)} "
                    f"(server speaks {_version_str(ours)})",
                    CloseCode.VERSION_MISMATCH,
                ),
                now,
            )
            return
        raw_channels = body.get("channels")
        if raw_channels is None:
            raw_channels = []
        max_size = body.get("maxMessageSize", DEFAULT_MESSAGE_SIZE)
        if not isinstance(raw_channels, list) or not _is_int(max_size) or max_size < 0:
            self._fail(ProtocolError("HELLO has a malformed field", CloseCode.INVALID_MESSAGE), now)
            return
        specs: list[ChannelSpec] = []
        for entry in raw_channels:
            if isinstance(entry, str) or (
                isinstance(entry, dict) and entry.get("name") == "control"
            ):
                continue  # tolerant receive (§2)
            spec = _spec_from_json(entry) if isinstance(entry, dict) else None
            if spec is None:
                self._fail(
                    ProtocolError(
                        "HELLO channel entry lacks name/reliable/ordered", CloseCode.INVALID_MESSAGE
                    ),
                    now,
                )
                return
            specs.append(spec)
        if not self._hello_auth_ok(body.get("auth"), now):
            return
        self.peer_version = peer_version
        self.version = (ours[0], min(ours[1], peer_version[1]), ours[2])
        self.max_message_size = _negotiate_size(self.config.max_message_size, _peer_size(max_size))
        self._reader.limit = self.max_message_size
        peer_ext = body.get("extensions")
        peer_ext = peer_ext if isinstance(peer_ext, list) else []
        self.extensions = tuple(e for e in self.config.extensions if e in peer_ext)
        application = body.get("application")
        self.hello = {k: v for k, v in body.items() if k != "auth"}
        granted: list[Channel] = []
        for spec in specs:
            if spec.name in self._names:
                continue
            if self.config.channel_policy(spec) is not None:
                continue  # refused, or DEFER: HELLO cannot wait, so not granted
            channel_id = self._find_free_id()
            if channel_id is None:
                break
            self._claim_id(channel_id)
            channel = Channel.from_spec(channel_id, spec)
            self._open(channel)
            granted.append(channel)
        welcome = {
            "version": list(self.version),
            "extensions": list(self.extensions),
            "maxMessageSize": self.max_message_size,
            "pingInterval": self.ping_interval,
            "pingTimeout": self.ping_timeout,
            "channels": [self._channel_entry(c, {"name": c.name, "id": c.id}) for c in granted],
        }
        self._send_control(ControlType.WELCOME, welcome)
        self.state = State.OPEN
        self._hello_deadline = None
        events.append(self._handshake_event(application if isinstance(application, str) else None))
        events.extend(ChannelOpened(c, locally_initiated=False) for c in granted)

    def _hello_auth_ok(self, auth: object, now: float) -> bool:
        """House §2/§5.4/§5.11/§5.14: refusal is CLOSE 4000 and no WELCOME."""
        if not self.config.auth_required:
            return True  # a --no-auth server ignores `auth`
        if auth is not None:
            if not isinstance(auth, dict):
                self._fail(ProtocolError("auth is not an object", CloseCode.AUTH_FAILED), now)
                return False
            if self.config.authenticate is None and not isinstance(auth.get("token"), str):
                self._fail(ProtocolError("auth without a token", CloseCode.AUTH_FAILED), now)
                return False
        if not self.config.check_token(auth, self.transport_authenticated):
            self._fail(ProtocolError("authentication failed", CloseCode.AUTH_FAILED), now)
            return False
        return True

    def _handshake_event(self, application: str | None) -> HandshakeCompleted:
        assert self.peer_version is not None
        return HandshakeCompleted(
            version=self.version,
            peer_version=self.peer_version,
            extensions=self.extensions,
            max_message_size=self.max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            channels=tuple(self.channels.values()),
            application=application,
            hello=self.hello,
        )

    def _on_welcome(self, payload: bytes, now: float, events: list[Event]) -> None:
        body = _decode_json(payload)
        version = _parse_version(body.get("version")) if body is not None else None
        if body is None or version is None:
            self._fail(ProtocolError("WELCOME is malformed", CloseCode.INVALID_MESSAGE), now)
            return
        ours = self.config.version
        if version[0] != ours[0]:
            self._fail(
                ProtocolError(
                    f"unsupported version {_version_str(version)} "
                    f"(client speaks {_version_str(ours)})",
                    CloseCode.VERSION_MISMATCH,
                ),
                now,
            )
            return
        max_size = body.get("maxMessageSize", DEFAULT_MESSAGE_SIZE)
        interval = body.get("pingInterval", 30)
        timeout = body.get("pingTimeout", 10)
        channels = body.get("channels")
        channels = [] if channels is None else channels
        ext = body.get("extensions")
        ext = [] if ext is None else ext
        if (
            not (_is_int(max_size) and max_size >= 0)
            or not _is_number(interval)
            or not _is_number(timeout)
            or not isinstance(channels, list)
            or not isinstance(ext, list)
        ):
            self._fail(
                ProtocolError("WELCOME has a malformed field", CloseCode.INVALID_MESSAGE), now
            )
            return
        granted: list[Channel] = []
        for entry in channels:
            if not isinstance(entry, dict):
                continue
            name, channel_id = entry.get("name"), entry.get("id")
            spec = self._requested.get(name) if isinstance(name, str) else None
            if spec is None:
                continue  # not something we asked for
            if (
                not _is_int(channel_id)
                or not 1 <= channel_id <= MAX_CHANNEL_ID
                or channel_id in self.channels
                or spec.name in self._names
            ):
                self._fail(
                    ProtocolError(
                        f"WELCOME gives channel {name!r} an invalid id", CloseCode.INVALID_MESSAGE
                    ),
                    now,
                )
                return
            channel = Channel.from_spec(channel_id, spec)
            self._open(channel)
            granted.append(channel)
        self.peer_version = version
        self.version = version
        self.max_message_size = _negotiate_size(self.config.max_message_size, _peer_size(max_size))
        self._reader.limit = self.max_message_size
        self.ping_interval = float(interval)
        self.ping_timeout = float(timeout) if timeout else self.config.ping_timeout
        self.extensions = tuple(e for e in self.config.extensions if e in ext)
        self.state = State.OPEN
        events.append(self._handshake_event(self.config.application))
        events.extend(ChannelOpened(c, locally_initiated=True) for c in granted)

    def _on_close(self, payload: bytes, now: float, events: list[Event]) -> None:
        body = _decode_json(payload) or {}
        code = body.get("code")
        reason = body.get("reason")
        code = code if _is_int(code) else CloseCode.PROTOCOL_ERROR
        reason = reason if isinstance(reason, str) else ""
        # Answer with our own CLOSE echoing the code (House §5.7), then we are done.
        self._send_control(ControlType.CLOSE, {"code": code})
        self.close_code, self.close_reason, self.closed_by_peer = code, reason, True
        events.extend(self._finish(now, by_peer=True))

    # ------------------------------------------------------ channel control

    def _request_id(self, body: Mapping[str, Any]) -> int | None:
        request_id = body.get("requestId")
        if not _is_int(request_id):
            self.send_error(CloseCode.INVALID_MESSAGE, "missing or invalid requestId")
            return None
        return request_id

    def _on_open_channel(self, body: dict[str, Any], now: float, events: list[Event]) -> None:
        request_id = self._request_id(body)
        if request_id is None:
            return
        if request_id in self._incoming:
            self._reject(request_id, CloseCode.PROTOCOL_ERROR, "duplicate requestId")
            return
        spec = _spec_from_json(body)
        if spec is None:
            self._reject(request_id, CloseCode.INVALID_MESSAGE, "missing name/reliable/ordered")
            return
        channel_id: int | None
        if self.is_client:
            # Server-initiated: the server chose the id (House: only allocator).
            channel_id = body.get("id")
            if not _is_int(channel_id) or not 1 <= channel_id <= MAX_CHANNEL_ID:
                self._reject(request_id, CloseCode.INVALID_MESSAGE, "missing or invalid id")
                return
            if channel_id in self.channels or channel_id in self._reserved_ids:
                self._reject(request_id, CloseCode.PROTOCOL_ERROR, f"id {channel_id} is in use")
                return
        if spec.name in self._names or spec.name in self._pending_names:
            self._reject(
                request_id, CloseCode.PROTOCOL_ERROR, f"channel name {spec.name!r} is in use"
            )
            return
        if not self.is_client:
            channel_id = self._find_free_id()
            if channel_id is None:
                self._reject(request_id, CloseCode.CHANNEL_FULL, "no free channel id")
                return
        assert channel_id is not None
        verdict = self.config.channel_policy(spec)
        if verdict == DEFER:
            if not self.is_client:
                self._claim_id(channel_id)
            self._incoming[request_id] = (spec, channel_id)
            self._pending_names.add(spec.name)
            self._reserved_ids.add(channel_id)
            events.append(ChannelRequested(request_id, spec))
            return
        if verdict is not None:
            code = verdict if _is_int(verdict) else CloseCode.UNSUPPORTED
            self._reject(request_id, code, "refused by the application")
            return
        if not self.is_client:
            self._claim_id(channel_id)
        channel = self._ack_incoming(request_id, spec, channel_id)
        events.append(ChannelOpened(channel, request_id, locally_initiated=False))

    def _on_channel_ack(self, body: dict[str, Any], now: float, events: list[Event]) -> None:
        request_id = self._request_id(body)
        if request_id is None:
            return
        pending = self._outgoing.pop(request_id, None)
        if pending is None:
            self.send_error(
                CloseCode.INVALID_MESSAGE, f"CHANNEL_ACK for unknown requestId {request_id}"
            )
            return
        spec, channel_id = pending
        self._pending_names.discard(spec.name)
        if channel_id is None:  # we are the client: the server allocated the id
            new_id = body.get("id")
            if (
                not _is_int(new_id)
                or not 1 <= new_id <= MAX_CHANNEL_ID
                or new_id in self.channels
                or new_id in self._reserved_ids
            ):
                self._fail(ProtocolError(f"CHANNEL_ACK carries an invalid id {new_id!r}"), now)
                return
            channel_id = new_id
        else:  # we are the server: the client echoes the id we reserved
            self._reserved_ids.discard(channel_id)
        channel = Channel.from_spec(channel_id, spec)
        self._open(channel)
        events.append(ChannelOpened(channel, request_id, locally_initiated=True))

    def _on_channel_reject(self, body: dict[str, Any], now: float, events: list[Event]) -> None:
        request_id = self._request_id(body)
        if request_id is None:
            return
        pending = self._outgoing.pop(request_id, None)
        if pending is None:
            self.send_error(
                CloseCode.INVALID_MESSAGE, f"CHANNEL_REJECT for unknown requestId {request_id}"
            )
            return
        spec, channel_id = pending
        self._pending_names.discard(spec.name)
        if channel_id is not None:
            self._reserved_ids.discard(channel_id)
        code = body.get("code")
        reason = body.get("reason")
        events.append(
            ChannelRejected(
                request_id,
                spec.name,
                code if _is_int(code) else CloseCode.PROTOCOL_ERROR,
                reason if isinstance(reason, str) else "",
            )
        )

    def _on_close_channel(self, body: dict[str, Any], now: float, events: list[Event]) -> None:
        channel_id = body.get("id")
        if not _is_int(channel_id):
            self.send_error(CloseCode.INVALID_MESSAGE, "CLOSE_CHANNEL without an id")
            return
        if channel_id == CONTROL_CHANNEL:
            self.send_error(CloseCode.PROTOCOL_ERROR, "channel 0 cannot be closed", 0)
            return
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            self.send_error(
                CloseCode.CHANNEL_NOT_FOUND, f"channel {channel_id} is not open", channel_id
            )
            return
        del self._names[channel.name]
        self._drop_reassembly(channel_id)
        reason = body.get("reason")
        events.append(ChannelClosed(channel, reason if isinstance(reason, str) else "", True))

    def _on_error(self, body: dict[str, Any], now: float, events: list[Event]) -> None:
        code, channel, reason = body.get("code"), body.get("channel"), body.get("reason")
        if not _is_int(code):
            return  # never answer a broken ERROR with an ERROR
        events.append(
            ErrorReceived(
                code,
                channel if _is_int(channel) else None,
                reason if isinstance(reason, str) else "",
            )
        )

    _handlers: dict[int, Callable[[Connection, dict[str, Any], float, list[Event]], None]] = {
        ControlType.OPEN_CHANNEL: _on_open_channel,
        ControlType.CHANNEL_ACK: _on_channel_ack,
        ControlType.CHANNEL_REJECT: _on_channel_reject,
        ControlType.CLOSE_CHANNEL: _on_close_channel,
        ControlType.ERROR: _on_error,
    }
