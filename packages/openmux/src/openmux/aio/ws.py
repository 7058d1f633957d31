"""OpenMux over WebSocket (`ws://`, `wss://`) with `websockets`' asyncio API (OPENMUX.md §3).

One frame per binary WebSocket message. A text message is a protocol error:
OpenMux CLOSE 1002, then the WebSocket close 1000 (House §5.8). The token may
come in HELLO or as `Authorization: Bearer` in the upgrade (House §5.11/§5.14):
a bad Bearer token is refused with HTTP 401; a good one marks the connection
transport-authenticated, and a token in HELLO must then be valid as well.

Writes go straight from the session into websockets' sans-IO protocol, the way
`websockets.broadcast()` does, so a send costs no task switch; back-pressure is
websockets' own write buffer limit, reported to the session. Reads too: whole
binary messages reach the session from the transport's data_received
(`WebSocketSink.deliver_directly`), not through websockets' queue and a task.
For the keystroke path (openmux.aio's session "Fast paths") even websockets'
framing is skipped when it would only do the obvious: `write_frame` frames a
small binary message itself, and small whole binary frames arriving while
websockets' parser sits between frames with nothing buffered are unmasked
and delivered here (`WebSocketSink._fast_receive`); anything else goes
through websockets as before.

Plain HTTP on the same port: a GET that is not for an OpenMux path goes to the
application's `http_handler(request) -> Response | None` (websockets' Request
and Response; vroomd's browser page), then `/openmux.js` is served, else 404.

**WebRTC signaling on the same port** (`serve(..., webrtc=True)`, or a
`webrtc+http(s)://` URL on the host:port of this `ws(s)://` URL). websockets
parses only GET requests (it drops a POST without an answer), and the
signaling is two POSTs. So every accepted connection starts with a tiny
dispatcher, `_Front`: it waits for the first four bytes (at most
`_http.READ_TIMEOUT`), and if they are `GET ` it hands the transport, those
bytes included, to the `ServerConnection` that `websockets.asyncio.server.serve`
builds for it (through serve's own `create_connection` hook, so websockets'
handshake, limits, open_timeout and server bookkeeping are untouched).
Anything else goes to `_http`'s one-request server (head and body limits
checked before buffering), routed to a `WebRTCListener`; without signaling
it answers 405 (an OpenMux path) or 404, so the WebRTC attempt of the
`vroom://` fallback fails at once and clearly.

The hand-off is `transport.set_protocol()` before any WebSocket byte is
parsed: from then on the transport (asyncio's or uvloop's) calls websockets
directly, so the data path is exactly that of a plain websockets server.
Peeking with MSG_PEEK was the other way; it needs the raw socket (not there
under TLS) and an accept loop of our own, where this keeps asyncio's and
websockets' servers as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.connection import Connection as WSConnection
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import SERVER, Protocol
from websockets.protocol import State as WSState
from websockets.streams import StreamReader

from ..codes import HEADER_SIZE, CloseCode
from ..websocket import encode_frame
from . import _http
from ._urls import netloc, split
from .errors import HandshakeError, TransportError
from .server import Server
from .session import Options, Session
from .static import CONTENT_TYPE, SCRIPT, script

try:
    from websockets.speedups import apply_mask  # what websockets itself uses
except ImportError:  # pragma: no cover - built without its C extension
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from .webrtc import WebRTCListener

logger = logging.getLogger("openmux")

DEFAULT_PATH = "/omux"
PATHS = ("/omux", "/vroom")
"""Served paths; `/omux/<app>` sub-paths are served too (House: vroomd's `/omux/vroom`)."""


_WS_OPEN = WSState.OPEN
_SERVER_HEADS = [bytes((0x82, size)) for size in range(126)]
"""The head of a server's final binary frame of `size` (< 126) bytes (RFC 6455 §5.2)."""
_state_property = getattr(Protocol, "state", None)
_PLAIN_STATE = (
    isinstance(_state_property, property)
    and _state_property.fget is not None
    and _state_property.fget.__code__.co_names == ("_state",)
)
"""websockets' `Protocol.state` only returns `_state` (as in every version
since 11): the keystroke paths read the attribute, not the property (a
Python call each time); with another websockets they are not taken."""


def path_allowed(path: str, paths: tuple[str, ...] = PATHS) -> bool:
    path = path.split("?", 1)[0]
    return path in paths or path.startswith("/omux/")


def _ws_limits(options: Options) -> dict[str, Any]:
    # Let the core see oversized frames (it answers 4005): websockets only
    # stops what no OpenMux limit could accept.
    return {
        "max_size": options.max_reassembly + 2 * HEADER_SIZE,
        "write_limit": options.write_limit,
        "compression": None,
        "ping_interval": None,  # OpenMux has its own keepalive
        "close_timeout": options.close_timeout,
    }


class WebSocketSink:
    """The `FrameSink` of a session over one websockets connection."""

    def __init__(self, ws: WSConnection, session: Session) -> None:
        self.ws = ws
        self.session = session
        self._reading = asyncio.Event()
        self._reading.set()
        self._reading_on = True  # the same as a plain attribute, for the fast receive
        self._drain_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None  # client side: the reader
        self._heads = _SERVER_HEADS if ws.protocol.side is SERVER and _PLAIN_STATE else None
        """The heads of a server's small binary frames, by size; None: no such shortcut."""

    def write_frames(self, frames: list[bytes]) -> None:
        ws = self.ws
        if ws.protocol.state is not WSState.OPEN:
            return
        for frame in frames:
            ws.protocol.send_binary(frame)
        self._write(ws.send_data)

    def write_frame(self, frame: bytes) -> None:
        """One small message framed here, not by websockets (`Session.send_now`):
        a final binary frame, masked on a client, exactly what `send_binary`
        would write. Anything unusual goes through `write_frames`."""
        ws = self.ws
        protocol = ws.protocol
        size = len(frame)
        heads = self._heads
        if heads is not None and size < 126 and protocol._state is _WS_OPEN and not protocol.writes:
            # A server's keystroke echo: the head from a table, `_write` inline.
            try:
                ws.transport.write(heads[size] + frame)
            except Exception as exc:  # the transport broke under us
                logger.debug("websocket write failed: %r", exc)
                ws.transport.abort()
                return
            if ws.paused and self._drain_task is None:
                self._pause()
            return
        if protocol.state is not WSState.OPEN or protocol.writes or size > 0xFFFF:
            self.write_frames([frame])
            return
        if protocol.side is SERVER:
            if size < 126:
                data = bytes((0x82, size)) + frame
            else:
                data = bytes((0x82, 126, size >> 8, size & 0xFF)) + frame
        else:
            data = encode_frame(0x2, frame)
        self._write(ws.transport.write, data)

    def _write(self, write: Callable[..., object], *data: bytes) -> None:
        """`write(*data)`, then pause the session while websockets' buffer is full."""
        ws = self.ws
        try:
            write(*data)
        except Exception as exc:  # the transport broke under us
            logger.debug("websocket write failed: %r", exc)
            ws.transport.abort()
            return
        if ws.paused and self._drain_task is None:
            self._pause()

    def _pause(self) -> None:
        """websockets' write buffer is full: the session waits until it drains."""
        self.session.pause_writing()
        self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            await self.ws.drain()
        except Exception:
            pass
        finally:
            self._drain_task = None
            self.session.resume_writing()

    def deliver_directly(self) -> None:
        """Hand whole binary messages to the session from the transport's
        data_received, instead of through websockets' message queue and the
        `run()` task: that costs a loop iteration and a task switch per
        message (~40 us of CPU per keystroke echo on each side here).

        Order is kept: a message goes the direct way only when nothing waits
        in the queue and no fragmented message is being assembled; text,
        fragments and everything while reading is paused still take the
        queue, which `run()` drains (and which pauses the transport).
        """
        ws = self.ws
        base = ws.process_event
        queue = ws.recv_messages.frames.queue
        reading = self._reading
        deliver = self.session.message_received
        binary, cont = Opcode.BINARY, Opcode.CONT
        fragmented = False

        def process_event(event: Any) -> None:
            nonlocal fragmented
            if (
                type(event) is Frame
                and event.opcode is binary
                and event.fin
                and not fragmented
                and not queue
                and reading.is_set()
            ):
                data = event.data
                try:
                    deliver(data if type(data) is bytes else bytes(data))
                except Exception:  # pragma: no cover - defensive, as run() is
                    logger.exception("openmux session failed on a message")
                    ws.transport.abort()
                return
            if type(event) is Frame and event.opcode in (binary, cont, Opcode.TEXT):
                fragmented = not event.fin
            base(event)

        ws.process_event = process_event  # type: ignore[method-assign]
        self._fast_receive()

    def _fast_receive(self) -> None:
        """Parse small whole binary frames here, before websockets does
        (~25 us of Python per frame on each side, a third of a keystroke's
        CPU): only while websockets' parser waits between two frames with
        nothing buffered, no fragmented message is open and nothing waits in
        its queue, so what websockets would see is exactly what it would
        have delivered. The frames of a read are taken in order until one
        that is not such a frame (control, text, fragment, large, split,
        badly masked); that one and the rest go to websockets, which then
        answers errors as it always does. Skipped when websockets' parser is
        not built the way this checks (another websockets version)."""
        ws = self.ws
        protocol = ws.protocol
        at_eof = StreamReader.at_eof.__code__
        parser = protocol.parser
        # The frame loop, `Protocol.parse()`, runs inside the side's own
        # parser (after the HTTP upgrade); between frames it waits in
        # `reader.at_eof()`.
        frames: Any = parser
        while (
            frames is not None and getattr(frames, "gi_code", None) is not Protocol.parse.__code__
        ):
            frames = getattr(frames, "gi_yieldfrom", None)
        waiting = getattr(frames, "gi_yieldfrom", None)
        if (
            getattr(waiting, "gi_code", None) is not at_eof
            or not hasattr(protocol, "current_size")
            or not _PLAIN_STATE
        ):
            return  # not websockets' parser as known here
        base = ws.data_received
        reader = protocol.reader
        open_ = WSState.OPEN
        masked = protocol.side is SERVER  # a client's frames are masked, a server's not
        mask_bit = 0x80 if masked else 0
        head_size = 6 if masked else 2
        limit = 0xFFFF
        for bound in (protocol.max_message_size, getattr(protocol, "max_fragment_size", None)):
            if bound is not None:
                limit = min(limit, bound)
        small = min(limit, 125)  # a frame with a 7-bit length
        queue = ws.recv_messages.frames.queue
        deliver = self.session.message_received
        deliver_all = self.session.messages_received
        sink = self
        # `Session.message_received`'s own parts, so that a keystroke costs
        # one Python frame here, as a TCP read does in the session (the set
        # of fast channels is the session's, changed in place).
        fast_ids = self.session._fast
        receive_fast = self.session.connection.receive_fast
        loop_time = asyncio.get_running_loop().time
        process = self.session._process
        # A fast frame cut by the end of a read, kept here (websockets has not
        # seen it, so its parser still waits between frames): its pieces, their
        # size, and the frame's whole size once its header is complete.
        held: list[bytes] = []
        held_size = 0
        need = 0
        # websockets' parser was seen waiting between frames with nothing
        # buffered or queued, and has not been fed since: only feeding it
        # (`feed`, `eof_received`) changes that, so the check is not made
        # again on every read (a keystroke's).
        idle = False

        def websockets_idle() -> bool:
            nonlocal idle
            idle = (
                protocol.current_size is None
                and not reader.buffer
                and not queue
                and protocol.parser is parser
                and (waiting := frames.gi_yieldfrom) is not None
                and waiting.gi_code is at_eof
            )
            return idle

        def feed(data: bytes) -> None:
            nonlocal idle
            idle = False
            base(data)

        def data_received(data: bytes) -> None:
            nonlocal held, held_size, need
            if held:
                held.append(data)
                held_size += len(data)
                if held_size < need:
                    return  # one join when the frame is complete, not one per read
                data = b"".join(held)
                held, held_size, need = [], 0, 0
            if (
                protocol._state is open_
                and (idle or websockets_idle())
                and type(data) is bytes
                and sink._reading_on
            ):
                size = len(data)
                if size >= head_size and data[0] == 0x82:
                    # A keystroke (or its echo): one small whole frame.
                    length = data[1] ^ mask_bit
                    if length <= small and length == size - head_size:
                        try:
                            payload = apply_mask(data[6:], data[2:6]) if masked else data[2:]
                            if fast_ids:  # `Session.message_received`, inline
                                events = receive_fast(payload, loop_time())
                                if events is not None:
                                    process(events)
                            else:
                                deliver(payload)
                        except Exception:  # pragma: no cover - defensive, as run() is
                            logger.exception("openmux session failed on a message")
                            ws.transport.abort()
                        return
                off = 0
                payloads: list[bytes] = []
                while off < size and sink._reading_on:
                    if size - off < 2:
                        held, held_size = [data[off:]], size - off  # header cut
                        break
                    second = data[off + 1]
                    if data[off] != 0x82 or second & 0x80 != mask_bit:
                        break  # not a final binary frame, or masked wrongly
                    length = second & 0x7F
                    start = off + head_size
                    if length >= 126:
                        if length == 127:
                            break
                        if size - off < head_size + 2:
                            held, held_size = [data[off:]], size - off  # header cut
                            break
                        length = (data[off + 2] << 8) | data[off + 3]
                        start += 2
                    elif size - off < head_size:
                        held, held_size = [data[off:]], size - off  # mask key cut
                        break
                    end = start + length
                    if length > limit:
                        break
                    if end > size:
                        held, held_size, need = [data[off:]], size - off, end - off
                        break
                    if masked:
                        payloads.append(apply_mask(data[start:end], data[start - 4 : start]))
                    else:
                        payloads.append(data[start:end])
                    off = end
                if payloads:
                    # One batch for the whole read (bulk output: one event
                    # batch, one flush, not one per message).
                    try:
                        if len(payloads) == 1:
                            deliver(payloads[0])
                        else:
                            deliver_all(payloads)
                    except Exception:  # pragma: no cover - defensive, as run() is
                        logger.exception("openmux session failed on a message")
                        ws.transport.abort()
                        return
                    if held and (protocol.state is not open_ or not sink._reading_on):
                        # The session closed or paused on this batch: the cut
                        # frame goes to websockets, as it would have.
                        off = size - held_size
                        held, held_size, need = [], 0, 0
                if held:
                    return
                if off == size:
                    return
                if off:
                    data = data[off:]
            feed(data)

        base_eof = ws.eof_received

        def eof_received() -> None:
            nonlocal held, held_size, need, idle
            if held:  # websockets sees the cut frame, as without this path
                data = b"".join(held)
                held, held_size, need = [], 0, 0
                feed(data)
            idle = False
            base_eof()

        ws.data_received = data_received  # type: ignore[method-assign]
        ws.eof_received = eof_received  # type: ignore[method-assign]
        # uvloop keeps the bound methods it was given: give it these
        ws.transport.set_protocol(ws)

    def close(self) -> None:
        if self._close_task is None:
            going_away = self.session.connection.close_code == CloseCode.GOING_AWAY
            code = 1001 if going_away else 1000
            self._close_task = asyncio.get_running_loop().create_task(self.ws.close(code))

    async def wait_closed(self) -> None:
        """Until our WebSocket close handshake is over (`Session.wait_closed`):
        with messages delivered from data_received, the session can end
        before websockets has seen the peer's close frame."""
        task = self._close_task
        if task is not None:
            try:
                await asyncio.shield(task)
            except Exception:
                pass

    def get_write_buffer_size(self) -> int:
        return self.ws.transport.get_write_buffer_size()

    def pause_reading(self) -> None:
        self._reading_on = False
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading_on = True
        self._reading.set()

    async def run(self) -> None:
        """Pull messages into the session until the WebSocket closes."""
        ws, session = self.ws, self.session
        exc: BaseException | None = None
        try:
            while True:
                if not self._reading.is_set():
                    await self._reading.wait()
                message = await ws.recv()
                if isinstance(message, str):
                    session.fail(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux WebSocket")
                    continue
                session.message_received(message)
        except ConnectionClosed as closed:
            exc = None if closed.rcvd is not None else closed
        except Exception as error:  # pragma: no cover - defensive
            exc = error
        finally:
            session.connection_lost(exc)
            if self._close_task is not None:
                try:
                    await self._close_task
                except Exception:
                    pass


def _bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def connect(url: str, options: Options) -> Session:
    parts, host, port = split(url, 443 if url.startswith("wss:") else 80)
    path = parts.path or DEFAULT_PATH
    target = f"{parts.scheme}://{netloc(host, port)}{path}"
    if parts.query:
        target += f"?{parts.query}"
    headers = {}
    if options.token is not None and options.extra.get("auth_header"):
        headers["Authorization"] = f"Bearer {options.token}"
    ssl = options.ssl if parts.scheme == "wss" and options.ssl is not None else None
    try:
        ws: ClientConnection = await ws_connect(
            target,
            additional_headers=headers,
            ssl=ssl,
            open_timeout=options.timeout,
            **_ws_limits(options),
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise HandshakeError(CloseCode.AUTH_FAILED, f"HTTP {status}") from exc
        raise TransportError(f"WebSocket upgrade refused: HTTP {status}") from exc
    session = Session(options, is_client=True, mode="message")
    session.transport_info.update(peername=ws.remote_address, path=path)
    sink = WebSocketSink(ws, session)
    session.connection_made(sink)
    sink.deliver_directly()
    sink.task = asyncio.get_running_loop().create_task(sink.run())
    try:
        await session.wait_handshake()
    except BaseException:
        ws.transport.abort()
        raise
    return session


def _script_response() -> Response:
    body = script()
    headers = Headers({"Content-Type": CONTENT_TYPE, "Content-Length": str(len(body))})
    headers["Cache-Control"] = "no-cache"
    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)


_GET = b"GET "


class _Front(asyncio.Protocol):
    """The first protocol of a connection on a shared port: GET -> websockets, else -> HTTP.

    Buffers at most three bytes, for at most `timeout` seconds, then replaces
    itself on the transport (see the module docstring).
    """

    def __init__(
        self,
        websocket: Callable[[], asyncio.Protocol],
        http: Callable[[], asyncio.Protocol],
        timeout: float,
    ) -> None:
        self._websocket = websocket
        self._http = http
        self._timeout = timeout
        self._head = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but duck-type it
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._transport.abort)

    def data_received(self, data: bytes) -> None:
        head = self._head + data
        if len(head) < len(_GET) and _GET.startswith(head):
            self._head = head
            return
        self._head = b""
        if self._timer is not None:
            self._timer.cancel()
        transport = self._transport
        assert transport is not None
        protocol = self._websocket() if head.startswith(_GET) else self._http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(head)

    def eof_received(self) -> bool | None:
        return None  # closes the transport: nothing was asked

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


class WebSocketListener:
    def __init__(
        self,
        server: Any,
        scheme: str,
        path: str,
        signaling: WebRTCListener | None = None,
    ) -> None:
        self._server = server
        self.signaling = signaling
        """The WebRTC signaling sharing this port, if any."""
        self.urls = []
        for sock in server.sockets:
            hostport = netloc(sock.getsockname()[0], sock.getsockname()[1])
            self.urls.append(f"{scheme}://{hostport}{path}")
            if signaling is not None:
                secure = "s" if scheme == "wss" else ""
                self.urls.append(f"webrtc+http{secure}://{hostport}{signaling.base}")
        if signaling is not None:
            signaling.urls = [u for u in self.urls if u.startswith("webrtc+")]

    def close(self) -> None:
        self._server.close(close_connections=False)
        if self.signaling is not None:
            self.signaling.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()
        if self.signaling is not None:
            await self.signaling.wait_closed()


async def listen(
    url: str, server: Server, *, webrtc_bases: Sequence[str] = ()
) -> WebSocketListener:
    """Listen for WebSocket sessions at `url`; with WebRTC signaling on the port if
    `server.options.extra["webrtc"]` is true or `webrtc_bases` (the paths of
    `webrtc+http(s)://` URLs sharing this port, given by `openmux.aio.serve`)."""
    parts, host, port = split(url, 443 if url.startswith("wss:") else 80)
    options = server.options
    path = parts.path or DEFAULT_PATH
    paths = tuple(dict.fromkeys((path, *PATHS)))
    ssl = None
    if parts.scheme == "wss":
        if options.ssl is None:
            raise ValueError("a wss:// listener needs ssl=<server SSLContext>")
        ssl = options.ssl
    authenticated: set[int] = set()

    http_handler = options.extra.get("http_handler")

    def serves_script(request_path: str) -> bool:
        request_path = request_path.split("?", 1)[0]
        prefix, _, leaf = request_path.rpartition("/")
        return leaf == SCRIPT and (prefix == "" or path_allowed(prefix, paths))

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if not path_allowed(request.path, paths):
            if http_handler is not None:
                # An application's plain HTTP routes on the same port (vroomd's
                # browser page): `http_handler(request) -> Response | None`.
                response: Response | None = http_handler(request)
                if response is not None:
                    return response
            if serves_script(request.path):
                return _script_response()
            return connection.respond(HTTPStatus.NOT_FOUND, "not an OpenMux endpoint\n")
        if serves_script(request.path):  # /omux/openmux.js
            return _script_response()
        token = _bearer(request.headers)
        if token is not None and options.auth_required:
            if not token or not options.check_bearer(token):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "bad bearer token\n")
            authenticated.add(id(connection))
        return None

    async def handler(ws: ServerConnection) -> None:
        session = Session(options, is_client=False, mode="message")
        if id(ws) in authenticated:
            authenticated.discard(id(ws))
            session.connection.transport_authenticated = True
        request = ws.request
        session.transport_info.update(
            peername=ws.remote_address,
            path=request.path if request is not None else None,
            headers=request.headers if request is not None else None,
        )
        sink = WebSocketSink(ws, session)
        session.connection_made(sink)
        server.start_session(session)
        sink.deliver_directly()
        await sink.run()

    signaling: WebRTCListener | None = None
    route: _http.Handler
    if options.extra.get("webrtc") or webrtc_bases:
        from . import webrtc  # aiortc only when asked for

        explicit = tuple(b.rstrip("/") for b in webrtc_bases)
        signaling = webrtc.WebRTCListener(
            server,
            explicit[0] if explicit else "",
            webrtc._hosts(options),
            bases=lambda prefix: prefix in ("", *explicit) or path_allowed(prefix, paths),
            get_paths=lambda p: path_allowed(p, paths),
        )
        route = signaling.handle
    else:

        async def route(request: _http.Request) -> _http.Response:
            if request.method in ("GET", "HEAD") and serves_script(request.path):
                return _http.Response(HTTPStatus.OK, script(), CONTENT_TYPE)
            if path_allowed(request.path, paths) or serves_script(request.path):
                response = _http.Response.text(HTTPStatus.METHOD_NOT_ALLOWED, "GET only")
                response.headers["Allow"] = "GET"
                return response
            return _http.Response.text(HTTPStatus.NOT_FOUND, "not an OpenMux endpoint")

    on_http = _http.connection_handler(route)

    def create_connection(protocol: Any, ws_server: Any, **kwargs: Any) -> _Front:
        return _Front(
            lambda: ServerConnection(protocol, ws_server, **kwargs),
            lambda: _http.stream_protocol(on_http),
            min(_http.READ_TIMEOUT, options.hello_timeout),
        )

    wserver = await ws_serve(
        handler,
        host,
        port,
        ssl=ssl,
        process_request=process_request,
        create_connection=create_connection,  # type: ignore[arg-type]  # a factory is fine
        # a client that stalls before HELLO is dropped at every stage: the first
        # bytes (_Front), the upgrade (here, TLS included), HELLO (the core)
        open_timeout=options.hello_timeout,
        **_ws_limits(options),
    )
    return WebSocketListener(wserver, parts.scheme, path, signaling)
