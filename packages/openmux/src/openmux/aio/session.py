"""Transport-agnostic asyncio driver of one `openmux.Connection`.

How a transport plugs in (TCP, TLS, stdio, WebSocket here; QUIC and WebRTC in
their own modules) -- the whole contract is this:

1. Build the session: ``session = Session(options, is_client=..., mode=...)``.
   ``mode="stream"`` if the transport is ONE byte stream (TCP, TLS, stdio: the
   core parses frames out of arbitrary chunks and handles the OMUX magic);
   ``mode="message"`` if every transport message is exactly one frame
   (WebSocket, DataChannels, QUIC datagrams, and QUIC streams once you split
   them into frames with `FrameSplitter`). `options` is an `Options`
   (`Options.from_kwargs(**kwargs)`); transport-specific keyword arguments
   end up in `options.extra`, read what you understand from there.
   Before step 2 you may set ``session.connection.transport_authenticated =
   True`` (the upgrade carried a valid Bearer token, House §5.11), and
   ``session.connection.describe_channel = fn`` where ``fn(core_channel)``
   returns extra keys for that channel's WELCOME/CHANNEL_ACK entry (QUIC:
   ``{"streamId": n, "transport": "stream" | "datagram"}``). Put peer details
   in ``session.transport_info`` (peername, path, headers...), for handlers.
2. When the transport is up: ``session.connection_made(sink)``. `sink` is any
   object implementing `FrameSink`. The client's HELLO is written from here.
3. Incoming data: ``session.data_received(chunk)`` (stream mode) or
   ``session.message_received(frame)`` (message mode, one frame per call,
   whatever channel/stream/DC it came on: the core routes by the channel
   byte). A transport that parses several messages out of one read should
   hand them over together, ``session.messages_received(frames)``: one
   batch of events, one flush (bulk output over WebSocket costs what it
   costs over TCP). Never raises for bad peer input: the core answers on
   the wire.
4. Outgoing data: the session calls ``sink.write_frames(list_of_bytes)``
   synchronously whenever the core has something to send. In stream mode
   the items are consecutive pieces of the byte stream (the first may be
   the magic ``OMUX``): write them in order. In message mode each item is
   one frame: send it as one transport message; ``frame[0]`` is the
   channel id, so a per-channel transport (QUIC stream, DataChannel) routes
   it with ``session.connection.channels[frame[0]]`` (channel 0 = control).
   Channels appear/disappear before their first/after their last frame:
   the optional sink methods ``channel_opened(core_channel)`` and
   ``channel_closed(core_channel)`` are called at those moments. Optional
   ``get_write_buffer_size()`` lets `Session.write_buffer_size()` report,
   and optional ``async wait_closed()`` makes `Session.wait_closed()` also
   wait for the transport to be really gone.
5. Back-pressure, outgoing: when the transport's buffer goes over its
   high-water mark call ``session.pause_writing()``; when it drains below
   the low-water mark call ``session.resume_writing()`` (asyncio Protocols
   get exactly these callbacks). `Channel.send` waits while paused, so at
   most one message beyond the high-water mark is ever buffered.
   Incoming: when the application leaves more than `Options.read_limit`
   bytes unread the session calls ``sink.pause_reading()``, and
   ``sink.resume_reading()`` once it has read them (stop/restart pulling
   from the transport; best effort where the transport cannot push back).
6. The transport went away (EOF, reset, child exit, DC/QUIC closed):
   ``session.connection_lost(exc)``. Call it exactly once.
7. The session decides the end: after the final CLOSE has been written it
   calls ``sink.close()``; close the transport then (WebSocket: close code
   1000, or 1001 if ``session.close_code == 1001``), and still call
   ``connection_lost`` when it is really gone.

Servers: run `serve_session(session, handler)` as the connection's task; it
waits for the handshake, runs the application handler, and closes the
session when the handler returns. Timers (HELLO timeout, keepalive, ping
timeout, close timeout) are driven here from `loop.time()`; transports do
nothing for them.

Sans-IO protocols on top (VROOM-Terminal/Graphical servers and clients
consume core events with their own ``handle_event()``) bypass `Channel`:
``session.add_event_tap(tap)``, where ``tap(events) -> events`` sees every
batch of core events first, in arrival order, and returns those the asyncio
layer should still handle. Taps are chained in registration order (the
second sees what the first returned). A tap owns a channel by swallowing
its `ChannelOpened`/`MessageReceived`/`ChannelClosed`: no `Channel` is then
created, and the sink's ``channel_opened``/``channel_closed`` hooks are
not called either (the tap tells per-channel transports itself). Channels
granted in HELLO were registered before any tap could exist:
``session.detach_channel(id)`` takes one away and returns what it had
received. After queuing sends on ``session.connection`` call
``session.flush()``; ``await session.wait_writable()`` waits out the
transport's back-pressure. A batch a tap swallowed whole costs one flush,
not the asyncio layer's pass (the keystroke path).

Fast paths, for a tap owner's hottest messages (a keystroke, its echo): a
keystroke crosses four event-loop wake-ups, and the general path costs ~50
Python calls on each (core events, taps, queue, flush). Both fast paths fall
back to the general one whenever they cannot be exact, so order, limits and
errors stay the general path's:

- ``session.set_fast_handler(channel_id, handler)``: a whole, unfragmented
  message on that channel goes straight from the transport's callback to
  ``handler(type, payload) -> bool``, with no core event, when the
  connection is OPEN, no fragmented message is pending and the stream
  parser holds no partial frame. Returning False (decided before doing
  anything) sends that message, and the rest of the read, the general way.
  The registration ends with the channel: a new channel on the same id
  is not reached. Frames of a read are taken in order, fast ones until the
  first that is not, so nothing overtakes anything. The core does the
  checks and the parsing (`Connection.set_fast_handler`/`receive_fast`).
- ``session.send_now(channel_id, type, payload) -> bool``: write one small
  message straight to the transport (sinks with ``write_frame(frame)``),
  when the connection is OPEN, the channel open, nothing is queued in the
  core ahead of it and the transport is under its high-water mark; False:
  send it the general way (which also sees to back-pressure). The frame
  comes from `Connection.encode_direct`, which says when it may be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple, Protocol

from .._types import Buffer
from ..channels import Channel as CoreChannel
from ..channels import ChannelSpec
from ..codes import EXTENDED_HEADER_SIZE, HEADER_SIZE, CloseCode
from ..config import DEFER, Config
from ..connection import Connection, State
from ..errors import ConnectionClosedError, FrameError, LocalProtocolError, MessageTooLarge
from ..events import (
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
from ..frame import check_header
from .errors import (
    ChannelClosedError,
    ChannelRejectedError,
    HandshakeError,
    HandshakeTimeoutError,
    SessionClosedError,
)

logger = logging.getLogger("openmux")

Mode = Literal["stream", "message"]
Policy = Callable[[ChannelSpec], "int | str | Awaitable[int | None] | None"]
Handler = Callable[["Session"], Awaitable[Any]]
EventTap = Callable[[list[Event]], list[Event]]
"""Sees a batch of core events first; returns those the asyncio layer handles."""
FastHandler = Callable[[int, bytes], bool]
"""`handler(type, payload)`: True if it took the message, False: the general path."""

_OPEN = State.OPEN


class FrameSink(Protocol):
    """What a transport gives the session (see the module docstring)."""

    def write_frames(self, frames: list[bytes]) -> None: ...

    def close(self) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Message(NamedTuple):
    """One application message: ``kind, data = await channel.recv()``."""

    type: int
    data: bytes


@dataclass
class Options:
    """Every keyword argument of `connect()`/`serve()`; unknown ones go to `extra`.

    `token`: client, sent in HELLO (and as a Bearer header by transports with
    an upgrade, if `extra["auth_header"]`); server, required from every peer.
    `authenticate(auth_dict_or_None) -> bool` replaces the token check.
    `write_limit` is the transport's write high-water mark, `read_limit` the
    unread bytes after which reading from the transport pauses.
    """

    token: str | None = None
    authenticate: Callable[[Mapping[str, Any] | None], bool] | None = None
    channels: Sequence[ChannelSpec | str] = ()
    channel_policy: Policy | None = None
    application: str | None = None
    ssl: Any = None
    timeout: float = 10.0
    max_message_size: int = 65535
    max_reassembly: int = 16 * 1024 * 1024
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    hello_timeout: float = 10.0
    close_timeout: float = 1.0
    extensions: Sequence[str] = ("fragmentation",)
    write_limit: int = 256 * 1024
    read_limit: int = 4 * 1024 * 1024
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Options:
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in kwargs.items() if k in names}
        extra = {k: v for k, v in kwargs.items() if k not in names and k != "extra"}
        extra.update(kwargs.get("extra") or {})
        return cls(**known, extra=extra)

    def specs(self) -> list[ChannelSpec]:
        return [ChannelSpec(c) if isinstance(c, str) else c for c in self.channels]

    def check_bearer(self, token: str) -> bool:
        """Server: is an upgrade's `Authorization: Bearer` token valid?"""
        if self.authenticate is not None:
            return bool(self.authenticate({"type": "token", "token": token}))
        if self.token is None:
            return True
        import hmac  # here: a client never checks tokens (hashlib costs it ~1 ms)

        return hmac.compare_digest(token.encode(), self.token.encode())

    @property
    def auth_required(self) -> bool:
        return self.token is not None or self.authenticate is not None


class Channel:
    """An open channel of a `Session`: send, receive, iterate, close.

    Read every reliable channel you keep open (or close it): once more than
    `Options.read_limit` bytes wait unread, the session stops reading from the
    transport, which holds up every channel, as TCP would. Messages on an
    unreliable channel never hold anything up: past a quarter of the read
    limit unread, the oldest are dropped, as the network may drop them.
    """

    def __init__(self, session: Session, info: CoreChannel) -> None:
        self._session = session
        self.info = info
        self._queue: deque[Message] = deque()
        self._lossy_bytes = 0  # unread bytes of an unreliable channel
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.close_reason = ""

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def reliable(self) -> bool:
        return self.info.reliable

    @property
    def ordered(self) -> bool:
        return self.info.ordered

    @property
    def metadata(self) -> Mapping[str, Any] | None:
        return self.info.metadata

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<openmux.aio.Channel {self.name!r} id={self.id} {state}>"

    async def send(self, type_: int, payload: Buffer = b"") -> None:
        """Send one message; waits while the transport is over its high-water mark."""
        session = self._session
        if session._write_paused:
            await session.wait_writable()
        if self.closed:
            raise ChannelClosedError(f"channel {self.name!r} is closed")
        try:
            session.connection.send_message(self.info.id, type_, payload)
        except ConnectionClosedError:
            raise session._closed_error() from None
        session.flush()

    async def recv(self) -> Message:
        """The next message; raises `ChannelClosedError` once closed and drained."""
        while not self._queue:
            if self.closed:
                raise ChannelClosedError(
                    f"channel {self.name!r} is closed {self.close_reason}".rstrip()
                )
            self._waiter = self._session._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._queue.popleft()
        if self.info.reliable:
            self._session._consumed(len(message.data))
        else:
            self._lossy_bytes -= len(message.data)
        return message

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.recv()
            except ChannelClosedError:
                return

    async def close(self, reason: str = "") -> None:
        """Close at once (CLOSE_CHANNEL is not acknowledged); unread messages are dropped."""
        if self.closed:
            return
        session = self._session
        if session.connection.state is State.OPEN:
            core = session.connection.close_channel(self.info.id, reason)
            session._forget(core, reason or "closed locally")
            session.flush()
        else:
            self._mark_closed("session closed")
        self._drop()

    # -- session side

    def _deliver(self, message: Message) -> None:
        self._queue.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _mark_closed(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver_lossy(self, message: Message, limit: int) -> None:
        self._lossy_bytes += len(message.data)
        while self._lossy_bytes > limit and self._queue:
            self._lossy_bytes -= len(self._queue.popleft().data)
        self._deliver(message)

    def _drop(self) -> None:
        dropped = sum(len(m.data) for m in self._queue)
        self._queue.clear()
        if self.info.reliable:
            self._session._consumed(dropped)
        self._lossy_bytes = 0


class Session:
    """One OpenMux connection over some transport, with an asyncio API.

    Created by a transport module (see the module docstring); applications
    get it from `openmux.aio.connect()` or as their `serve()` handler's argument.
    """

    def __init__(self, options: Options, *, is_client: bool, mode: Mode) -> None:
        self.options = options
        self.is_client = is_client
        self._loop = asyncio.get_running_loop()
        policy = options.channel_policy
        self._async_policy: Callable[[ChannelSpec], Awaitable[int | None]] | None = None
        core_policy: Callable[[ChannelSpec], int | str | None]
        if policy is None:
            core_policy = _accept_all
        elif inspect.iscoroutinefunction(policy):
            self._async_policy = policy
            # Dynamic opens are deferred to the coroutine; channels asked for in
            # HELLO cannot wait (the WELCOME is built synchronously) and are
            # granted: the peer has been authenticated by then.
            core_policy = self._defer_when_open
        else:
            core_policy = policy  # type: ignore[assignment]
        config = Config(
            is_client=is_client,
            application=options.application,
            channels=options.specs() if is_client else (),
            token=options.token,
            authenticate=options.authenticate if not is_client else None,
            channel_policy=core_policy,
            extensions=tuple(options.extensions),
            max_message_size=options.max_message_size,
            max_reassembly=options.max_reassembly,
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            hello_timeout=options.hello_timeout,
            close_timeout=options.close_timeout,
        )
        self.connection = Connection(config, mode=mode)
        self.mode = mode
        self.transport_info: dict[str, Any] = {}
        self.sink: FrameSink | None = None
        self.channels: dict[str, Channel] = {}
        self._by_id: dict[int, Channel] = {}
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._transport_gone = asyncio.Event()
        self._opening: dict[int, asyncio.Future[Channel]] = {}
        self._pings: deque[asyncio.Future[float]] = deque()
        self._incoming: deque[Channel] = deque()
        self._taps: list[EventTap] = []
        self._fast: set[int] = set()  # channels with a fast handler in the core
        self._write_frame: Callable[[bytes], None] | None = None
        self._accept_waiter: asyncio.Future[None] | None = None
        self._policy_tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._write_paused = False
        self._write_waiters: list[asyncio.Future[None]] = []
        self._read_paused = False
        self._grace_until = 0.0
        self._unread = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by_peer = False
        self.handshake: HandshakeCompleted | None = None

    def __repr__(self) -> str:
        side = "client" if self.is_client else "server"
        return f"<openmux.aio.Session {side} {self.connection.state.value}>"

    def _defer_when_open(self, spec: ChannelSpec) -> int | str | None:
        return DEFER if self.connection.state is State.OPEN else None

    # ------------------------------------------------------ transport side

    def connection_made(self, sink: FrameSink) -> None:
        self.sink = sink
        self._write_frame = getattr(sink, "write_frame", None)
        self.connection.initiate(self._loop.time())
        self.flush()
        self._arm_timer()

    def data_received(self, data: Buffer) -> None:
        conn = self.connection
        if self._fast:
            events = conn.receive_fast(data, self._loop.time())
            if events is None:
                return  # the fast handlers took it all (a keystroke)
        else:
            events = conn.receive_data(data, self._loop.time())
        self._process(events)

    def message_received(self, frame: Buffer) -> None:
        conn = self.connection
        if self._fast:
            events = conn.receive_fast(frame, self._loop.time())
            if events is None:
                return
        else:
            events = conn.receive_message(frame, self._loop.time())
        self._process(events)

    def messages_received(self, frames: Sequence[Buffer]) -> None:
        """Several frames of one transport read (message mode), in order:
        one batch of events for the taps and the asyncio layer, one flush."""
        conn = self.connection
        now = self._loop.time()
        if self._fast:
            events = conn.receive_fast_messages(frames, now)
            if events is not None:
                self._process(events)
            return
        self._process(conn.receive_messages(frames, now))

    def connection_lost(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            logger.debug("transport lost: %r", exc)
        self._transport_gone.set()
        self._process(self.connection.connection_lost(self._loop.time()))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiters, self._write_waiters = self._write_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --------------------------------------------------- application side

    @property
    def is_open(self) -> bool:
        return self.connection.state is State.OPEN

    @property
    def writing_paused(self) -> bool:
        """True while the transport is over its high-water mark (sends wait)."""
        return self._write_paused

    def write_buffer_size(self) -> int | None:
        """Bytes waiting in the transport's buffer, if the sink can tell
        (optional sink method `get_write_buffer_size()`)."""
        size = getattr(self.sink, "get_write_buffer_size", None)
        return None if size is None else int(size())

    @property
    def rtt(self) -> float | None:
        return self.connection.rtt

    @property
    def hello(self) -> Mapping[str, Any] | None:
        """Server side: the peer's HELLO (without `auth`)."""
        return self.connection.hello

    async def wait_handshake(self) -> None:
        """Until WELCOME was sent/received; `HandshakeError` if it never will be."""
        await asyncio.shield(self._handshake)

    def channel(self, name: str) -> Channel:
        """An open channel by name (granted in HELLO, or opened later)."""
        try:
            return self.channels[name]
        except KeyError:
            raise KeyError(f"no open channel named {name!r}") from None

    async def open_channel(
        self,
        name: str | ChannelSpec,
        *,
        reliable: bool = True,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_lifetime: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Channel:
        """Ask the peer for a channel; `ChannelRejectedError` carries its code."""
        try:
            request_id = self.connection.open_channel(
                name,
                reliable=reliable,
                ordered=ordered,
                max_retransmits=max_retransmits,
                max_packet_lifetime=max_packet_lifetime,
                metadata=metadata,
            )
        except ConnectionClosedError:
            raise self._closed_error() from None
        future: asyncio.Future[Channel] = self._loop.create_future()
        self._opening[request_id] = future
        self.flush()
        return await future

    async def accept(self) -> Channel:
        """The next channel the peer opened (after OPEN_CHANNEL, not HELLO)."""
        while not self._incoming:
            if self._closed.done():
                raise self._closed_error()
            self._accept_waiter = self._loop.create_future()
            try:
                await self._accept_waiter
            finally:
                self._accept_waiter = None
        return self._incoming.popleft()

    async def ping(self) -> float:
        """Send PING now and return the RTT in seconds."""
        try:
            self.connection.ping(self._loop.time())
        except ConnectionClosedError:
            raise self._closed_error() from None
        future: asyncio.Future[float] = self._loop.create_future()
        self._pings.append(future)
        self.flush()
        self._arm_timer()
        return await future

    def fail(self, code: int, reason: str = "") -> None:
        """Transport-detected protocol error (a WebSocket text message: 1002):
        send CLOSE with `code` now; the close handshake then runs its course."""
        if not self._closed.done():
            self.connection.close(code, reason, self._loop.time())
            self.flush()
            self._arm_timer()

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send CLOSE, wait for the peer's (up to `close_timeout`), close the transport."""
        if not self._closed.done():
            self.connection.close(code, reason, self._loop.time())
            if self.connection.state is State.CLOSED:  # never started
                self._terminate(ConnectionTerminated(code, reason, by_peer=False))
            else:
                self.flush()
                self._arm_timer()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Until the session is over and, if the sink can tell (optional
        `async wait_closed()`, e.g. a stdio child's exit), its transport is gone."""
        await asyncio.shield(self._closed)
        sink_wait = getattr(self.sink, "wait_closed", None)
        if sink_wait is not None:
            await sink_wait()

    # ----------------------------------------- sans-IO protocols on top

    def add_event_tap(self, tap: EventTap) -> None:
        """Feed every batch of core events to `tap` before the asyncio layer.

        `tap(events)` gets the batch in arrival order and returns the events
        the asyncio layer should still handle (the same list if it took
        none). Taps run in registration order, each on what the previous one
        returned. Swallowing a channel's `ChannelOpened` keeps it out of the
        asyncio layer for good (no `Channel`, no sink hooks). Pass on what
        is not about your channels, `ConnectionTerminated` (the session ends
        on it) and `PongReceived` (`ping()` and the keepalive timer) above
        all. Taps run synchronously on the transport's callback: no I/O.
        """
        self._taps.append(tap)

    def remove_event_tap(self, tap: EventTap) -> None:
        self._taps.remove(tap)

    def set_fast_handler(self, channel_id: int, handler: FastHandler | None) -> None:
        """Hand whole messages of an open channel to `handler(type, payload)`
        straight from the transport (see "Fast paths" in the module
        docstring and `Connection.set_fast_handler`); None removes it. The
        handler must decide before doing anything: True if it took the
        message, False and untouched for the general path (the tap). It
        must not raise. The channel's owner still handles every other
        message of the channel, in order, on its tap. KeyError if the
        channel is not open."""
        try:
            self.connection.set_fast_handler(channel_id, handler)
        except LocalProtocolError:
            raise KeyError(f"channel {channel_id} is not open") from None
        if handler is None:
            self._fast.discard(channel_id)
        else:
            self._fast.add(channel_id)

    def send_now(self, channel_id: int, type_: int, data: bytes) -> bool:
        """Write one message straight to the transport if that keeps every
        rule (see "Fast paths" in the module docstring); False: nothing was
        done, send it the general way (``connection.send_message`` and
        `flush`). Refused while writing is paused, so the general path (and
        its back-pressure handling) takes over at the high-water mark."""
        write = self._write_frame
        if write is None or self._write_paused:
            return False
        frame = self.connection.encode_direct(channel_id, type_, data)
        if frame is None:
            return False
        write(frame)
        return True

    def detach_channel(self, channel_id: int) -> list[Message]:
        """Take a registered channel away from the asyncio layer (one granted
        in HELLO, before a tap could swallow its opening); returns what it had
        received and nobody read, in order. The channel stays open on the wire
        and the sink is not told: its new owner handles it from here on."""
        channel = self._by_id.pop(channel_id, None)
        if channel is None:
            return []
        if self.channels.get(channel.name) is channel:
            del self.channels[channel.name]
        try:
            self._incoming.remove(channel)
        except ValueError:
            pass
        unread = list(channel._queue)
        channel._drop()
        channel._mark_closed("taken by an event tap")
        return unread

    def flush(self) -> None:
        """Hand what the core queued to the transport (after calling
        `session.connection` directly, e.g. through a sans-IO protocol)."""
        out = self.connection.messages_to_send()
        if out and self.sink is not None:
            self.sink.write_frames(out)

    async def wait_writable(self) -> None:
        """Until the transport is under its high-water mark again;
        `SessionClosedError` if the session ends first."""
        while self._write_paused and not self._closed.done():
            waiter = self._loop.create_future()
            self._write_waiters.append(waiter)
            await waiter
        if self._closed.done():
            raise self._closed_error()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------ internals

    def _closed_error(self) -> SessionClosedError:
        code = self.close_code if self.close_code is not None else CloseCode.NORMAL
        return SessionClosedError(code, self.close_reason)

    def _consumed(self, size: int) -> None:
        self._unread -= size
        if self._read_paused and self._unread <= self.options.read_limit // 4:
            self._read_paused = False
            # Peer silence while we were not reading was our doing: give the
            # keepalive a fresh pingTimeout before judging the peer.
            self._grace_until = self._loop.time() + self.connection.ping_timeout
            if self.sink is not None and not self._closed.done():
                self.sink.resume_reading()

    def _arm_timer(self) -> None:
        when = self.connection.get_timer()
        if when is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        if self._timer is not None:
            if self._timer_at <= when:
                return  # an earlier wake-up re-arms for the later deadline
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self.connection.state is State.OPEN and (self._read_paused or now < self._grace_until):
            later = max(self._grace_until, now + self.connection.ping_timeout)
            self._timer_at = later
            self._timer = self._loop.call_at(later, self._on_timer)
            return
        self._process(self.connection.handle_timer(max(now, self._timer_at)))

    def _process(self, events: list[Event]) -> None:
        for tap in self._taps:
            events = tap(events)
        if not events and self._taps:
            # The taps took everything (a keystroke): no channel or state
            # change for the asyncio layer, only the flush. While OPEN, what
            # arrives only moves the core's deadlines later (a PONG moves it
            # earlier, but taps pass PongReceived on), so an armed timer stays
            # valid (an early wake-up re-arms); re-arm if none is (this batch
            # came from the timer itself: the keepalive PING) or the state
            # changed.
            self.flush()
            if (
                self._timer is None or self.connection.state is not State.OPEN
            ) and not self._closed.done():
                self._arm_timer()
            return
        for event in events:
            if type(event) is MessageReceived:
                channel = self._by_id.get(event.channel_id)
                if channel is not None and not channel.info.reliable:
                    channel._deliver_lossy(
                        Message(event.type, event.data), self.options.read_limit // 4
                    )
                elif channel is not None:
                    channel._deliver(Message(event.type, event.data))
                    self._unread += len(event.data)
                    if self._unread > self.options.read_limit and not self._read_paused:
                        self._read_paused = True
                        if self.sink is not None:
                            self.sink.pause_reading()
            else:
                self._handle_event(event)
        self.flush()
        if not self._closed.done():
            self._arm_timer()

    def _handle_event(self, event: Event) -> None:
        if isinstance(event, ChannelOpened):
            channel = self._register(event.channel)
            if event.request_id is None:
                return  # granted in the handshake: reachable with channel(name)
            if event.locally_initiated:
                future = self._opening.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_result(channel)
            else:
                self._push_incoming(channel)
        elif isinstance(event, ChannelRequested):
            if self._async_policy is None:
                logger.warning(
                    "channel %r deferred by a synchronous policy: refused "
                    "(give an async policy instead)",
                    event.spec.name,
                )
                self.connection.reject_channel(
                    event.request_id, CloseCode.UNSUPPORTED, "deferred without an answer"
                )
                return
            task = self._loop.create_task(self._run_policy(event))
            self._policy_tasks.add(task)
            task.add_done_callback(self._policy_tasks.discard)
        elif isinstance(event, ChannelClosed):
            self._forget(event.channel, event.reason or "closed by peer")
        elif isinstance(event, ChannelRejected):
            future = self._opening.pop(event.request_id, None)
            if future is not None and not future.done():
                future.set_exception(ChannelRejectedError(event.name, event.code, event.reason))
        elif isinstance(event, PongReceived):
            while self._pings:
                ping = self._pings.popleft()
                if not ping.done():
                    ping.set_result(event.rtt)
                    break
        elif isinstance(event, HandshakeCompleted):
            self.handshake = event
            if not self._handshake.done():
                self._handshake.set_result(None)
        elif isinstance(event, ConnectionTerminated):
            self._terminate(event)
        elif isinstance(event, ErrorReceived):
            logger.warning(
                "peer sent ERROR %d (channel %s): %s", event.code, event.channel, event.reason
            )
        elif isinstance(event, ExtensionMessage):
            logger.debug("extension message %#04x ignored", event.type)

    def _register(self, info: CoreChannel) -> Channel:
        channel = Channel(self, info)
        self.channels[info.name] = channel
        self._by_id[info.id] = channel
        sink_hook = getattr(self.sink, "channel_opened", None)
        if sink_hook is not None:
            sink_hook(info)
        return channel

    def _forget(self, info: CoreChannel, reason: str) -> None:
        channel = self._by_id.pop(info.id, None)
        if channel is None:
            return
        if self.channels.get(info.name) is channel:
            del self.channels[info.name]
        channel._mark_closed(reason)
        sink_hook = getattr(self.sink, "channel_closed", None)
        if sink_hook is not None:
            sink_hook(info)

    def _push_incoming(self, channel: Channel) -> None:
        self._incoming.append(channel)
        waiter = self._accept_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run_policy(self, event: ChannelRequested) -> None:
        assert self._async_policy is not None
        try:
            verdict = await self._async_policy(event.spec)
        except Exception:
            logger.exception("channel policy failed on %r", event.spec.name)
            verdict = CloseCode.UNSUPPORTED
        if self.connection.state is not State.OPEN:
            return
        if verdict is None:
            try:
                info = self.connection.accept_channel(event.request_id)
            except ConnectionClosedError:
                return
            except Exception as exc:  # no free id: the core already answered
                logger.warning("could not accept channel %r: %s", event.spec.name, exc)
            else:
                self._push_incoming(self._register(info))
        else:
            code = verdict if isinstance(verdict, int) else CloseCode.UNSUPPORTED
            self.connection.reject_channel(event.request_id, code, "refused by the application")
        self.flush()

    def _terminate(self, event: ConnectionTerminated) -> None:
        if self._closed.done():
            return
        self.close_code, self.close_reason = event.code, event.reason
        self.closed_by_peer = event.by_peer
        logger.debug("session closed: %d %s (by peer: %s)", event.code, event.reason, event.by_peer)
        self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.sink is not None:
            self.sink.close()
        error = self._closed_error()
        if not self._handshake.done():
            self._handshake.set_exception(HandshakeError(event.code, event.reason))
            self._handshake.exception()  # retrieved: nobody may be waiting
        for future in self._opening.values():
            if not future.done():
                future.set_exception(error)
        self._opening.clear()
        for ping in self._pings:
            if not ping.done():
                ping.set_exception(error)
        self._pings.clear()
        for channel in list(self._by_id.values()):
            channel._mark_closed(f"session closed ({event.code})")
        self._by_id.clear()
        self.channels.clear()
        for task in self._policy_tasks:
            task.cancel()
        self._fast.clear()
        self._closed.set_result(None)
        if self._accept_waiter is not None and not self._accept_waiter.done():
            self._accept_waiter.set_result(None)
        self.resume_writing()


def _accept_all(spec: ChannelSpec) -> int | str | None:
    return None


async def serve_session(session: Session, handler: Handler) -> None:
    """A server connection's task: handshake, the handler, then a clean close.

    The handler returning closes the session with 1000 (like websockets); an
    exception escaping it is logged and closes with 1001 GOING_AWAY (OpenMux
    has no "internal error" code). When the session ends first (peer gone,
    ping timeout), the handler is cancelled: its only subject is gone, and a
    stdio child must not linger waiting on something else. A failed handshake
    ends quietly: the core already answered it on the wire.
    """
    try:
        await session.wait_handshake()
    except HandshakeError as exc:
        logger.info("handshake failed: %s", exc)
        return
    loop = asyncio.get_running_loop()
    task: asyncio.Future[Any] = asyncio.ensure_future(handler(session))
    closed = loop.create_task(session.wait_closed())
    try:
        await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
        if not task.done():
            task.cancel()
    try:
        await task
    except (SessionClosedError, ChannelClosedError, asyncio.CancelledError):
        pass
    except Exception:
        logger.exception("openmux handler failed")
        await session.close(CloseCode.GOING_AWAY, "handler error")
        return
    await session.close()


@contextlib.asynccontextmanager
async def handshake_deadline(timeout: float, peer: str) -> AsyncIterator[None]:
    """Client side: bound transport set-up and HELLO/WELCOME by `timeout`.

    The core has no WELCOME timer (a client waits as long as its caller
    does), so a server that accepts and stays silent is cut here. Any
    `TimeoutError` inside (asyncio's, websockets' `open_timeout`, a kernel
    ETIMEDOUT) becomes one `HandshakeTimeoutError` naming the peer.
    """
    try:
        async with asyncio.timeout(timeout):
            yield
    except HandshakeTimeoutError:
        raise
    except TimeoutError as exc:
        raise HandshakeTimeoutError(
            f"no OpenMux session with {peer} within {timeout:g} s (handshake timeout)"
        ) from exc


class FrameSplitter:
    """Splits one byte stream into whole frames, for message-mode sessions fed
    from several streams (QUIC: one splitter per stream). The declared length
    is checked against `limit` before any payload is buffered; a bad header
    raises `FrameError`/`MessageTooLarge` (answer with CLOSE 1002/4005)."""

    __slots__ = ("_buf", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buf = bytearray()

    def feed(self, data: Buffer) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        off = 0
        size = len(buf)
        while size - off >= HEADER_SIZE:
            channel, flags, reserved = buf[off], buf[off + 2], buf[off + 3]
            check_header(channel, flags, reserved)
            if flags & 1:
                if size - off < EXTENDED_HEADER_SIZE:
                    break
                length = int.from_bytes(buf[off + 4 : off + 8], "big")
                header = EXTENDED_HEADER_SIZE
            else:
                length = (buf[off + 4] << 8) | buf[off + 5]
                header = HEADER_SIZE
            if self.limit and length > self.limit:
                raise MessageTooLarge(f"frame declares {length} bytes, limit is {self.limit}")
            end = off + header + length
            if end > size:
                break
            frames.append(bytes(buf[off:end]))
            off = end
        if off:
            del buf[:off]
        return frames


__all__ = [
    "Channel",
    "EventTap",
    "FastHandler",
    "FrameError",
    "FrameSink",
    "FrameSplitter",
    "Handler",
    "Message",
    "Options",
    "Session",
    "handshake_deadline",
    "serve_session",
]
