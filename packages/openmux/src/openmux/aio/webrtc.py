"""OpenMux over WebRTC DataChannels with aiortc (`webrtc+http(s)://host:port[/base]`).

The binding of OPENMUX.md §3, both sides:

- Control is the DataChannel `omux/control`, created by both peers with
  `negotiated=true, id=0`, protocol `openmux/0.1`, reliable and ordered. The
  connection is dead when it closes.
- Every application channel has its own DataChannel labelled `omux/<name>`,
  protocol `openmux/0.1` (`xumux/0.1` accepted on receive). Reliable channels
  keep aiortc's defaults; unordered ones set `ordered=false`; unreliable
  ones set `maxRetransmits` (0 unless the channel asked for a number) or
  `maxPacketLifeTime` if only that was asked for.
- One frame per DataChannel message, channel byte included (a gateway may
  bridge the frame to another transport). The receiver routes by that byte,
  whatever DataChannel carried the frame (tolerant receive: a frame for an
  unknown channel, necessarily sent on `omux/control`, gets ERROR 4003 like
  on any transport). A text message is a protocol error (CLOSE 1002).
- **Who creates a channel's DataChannel (House rule).** The side that asked
  for the OpenMux channel, once the channel is open on its side: the client
  for channels granted in WELCOME, the sender of OPEN_CHANNEL when its
  CHANNEL_ACK arrives. Its peer already considers the channel open at that
  moment (it sent the WELCOME/ACK), so it binds the incoming DataChannel by
  label, and holds its own frames for the channel until then. No frame can
  reach a peer that does not know its channel yet, and each channel's frames
  ride one SCTP stream, so they stay in order. A DataChannel whose label
  names no open, unbound channel is closed.
- A DataChannel that closes while its channel is open -> CLOSE_CHANNEL.
  After CLOSE_CHANNEL (sent or received) both sides close the DataChannel;
  frames still arriving on it are discarded, as §2 says.
- The frame size is capped by the peer's SDP `max-message-size` (RFC 8841;
  aiortc and Chromium say 256 KiB, 64 KiB is assumed when absent): the
  `maxMessageSize` we announce is lowered to fit a frame in one message.

Signaling (the URL is the signaling endpoint, `/offer` is appended to its
path): `POST <base>/offer` `{sdp, type:"offer", candidates?}` -> `{sdp,
type:"answer", candidates, id}`; `POST <base>/candidate` `{id, candidate,
sdpMid?, sdpMLineIndex?}` trickles a browser's late candidates (`candidate`
null or "" = end of candidates). The server also serves the browser client
at `GET /openmux.js`. A `webrtc+http(s)://` listener has a port of its own;
`serve(..., webrtc=True)` (or a `webrtc+http` URL with the host:port of a
`ws://` URL) puts the same `WebRTCListener` on the WebSocket port instead
(ws.py), answering `<p>/offer` for p = "", the URL's base and every OpenMux
WebSocket path. Auth is the WebSocket path's: a token in HELLO, and/or
`Authorization: Bearer` on the offer (a bad one gets HTTP 401; a good one
marks the connection transport-authenticated).
`peer_connection=` (a `serve()` keyword) is an async `hook(pc, session,
request)` run on each offer's `RTCPeerConnection` before the offer is
applied: an application adds its media tracks there (vroomd's screen and
voice), and may refuse the offer by raising an exception whose `status` is
401 or 403.

ICE: aioice never offers loopback host candidates (RFC 8445 forbids them),
so two peers on 127.0.0.1 cannot meet by themselves. `ice_hosts=[...]`
(keyword of `connect()`/`serve()`) pins the addresses host candidates are
gathered on; default None = aioice's choice (every address of the machine
but loopback). No STUN/TURN server is used unless `ice_servers=` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import aioice.ice
from aiortc import (
    InvalidStateError,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from ..channels import Channel as CoreChannel
from ..codes import CONTROL_CHANNEL, EXTENDED_HEADER_SIZE, CloseCode, ControlType
from . import _http
from ._urls import netloc, split
from .errors import HandshakeError, TransportError
from .server import Server
from .session import Options, Session
from .static import CONTENT_TYPE, SCRIPT, script

logger = logging.getLogger("openmux")

PROTOCOL = "openmux/0.1"
PROTOCOLS = ("openmux/0.1", "xumux/0.1")
"""DataChannel protocols accepted on receive (House: the renamed draft's too)."""
CONTROL_LABEL = "omux/control"
LABEL_PREFIX = "omux/"
DEFAULT_MAX_MESSAGE = 65536
"""SCTP message size to assume when the SDP has no `max-message-size` (RFC 8841 §6)."""
MAX_PENDING = 64
"""Offers answered whose control DataChannel is not open yet (server side)."""
BURST = 64
"""Frames written in one turn of the event loop before `Channel.send` waits for the next.

aiortc costs a task and an SCTP packet per message whatever its size, and
`bufferedAmount` counts bytes: thousands of small sends would pass the byte
high-water mark and starve the loop, until ICE consent checks time out and
the connection dies. Yielding every BURST frames keeps each turn short."""

_OPENER_TYPES = (ControlType.WELCOME, ControlType.CHANNEL_ACK)
_MAX_MESSAGE_RE = re.compile(r"^a=max-message-size:(\d+)\s*$", re.MULTILINE)


# ---------------------------------------------------------------- ICE hosts

_ice_hosts: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "openmux_ice_hosts", default=None
)
_default_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def _install_ice_hook() -> None:
    """Let `ice_hosts()` choose aioice's host addresses, per asyncio context.

    aioice has no option for it; its `gather_candidates` looks the module
    function up at call time, so one wrapper that defers to aioice unless a
    context asked otherwise leaves every other user of aioice untouched.
    """
    global _default_get_host_addresses
    if _default_get_host_addresses is not None:
        return
    default = aioice.ice.get_host_addresses
    _default_get_host_addresses = default

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        pinned = _ice_hosts.get()
        if pinned is None:
            return default(use_ipv4, use_ipv6)
        return [a for a in pinned if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


CONSENT_FAILURES = 30
"""Consecutive failed ICE consent checks before aioice drops the connection.

aioice checks consent (RFC 7675) every ~5 s with a single, never retransmitted
STUN request, and gives up after 6 misses in a row: 30 s during which the
event loop was too busy to read an answer in time (bulk SCTP in pure Python on
a loaded 2-core machine does it) kills a healthy connection. Liveness is
OpenMux's job here (pingTimeout, answered in-band), so consent only has to
catch a peer that is really gone: 30 misses, ~150 s. aioice reads the module
constant at check time; raising it is process-wide and only ever loosens it.
"""
if getattr(aioice.ice, "CONSENT_FAILURES", CONSENT_FAILURES) < CONSENT_FAILURES:
    aioice.ice.CONSENT_FAILURES = CONSENT_FAILURES


@contextlib.contextmanager
def ice_hosts(addresses: Sequence[str] | None) -> Iterator[None]:
    """Gather host candidates only on `addresses` inside this block (None: aioice's default).

    aiortc gathers in `setLocalDescription()`, so wrap that call:
    ``with ice_hosts(["127.0.0.1"]): await pc.setLocalDescription(offer)``.
    """
    _install_ice_hook()
    token = _ice_hosts.set(None if addresses is None else tuple(addresses))
    try:
        yield
    finally:
        _ice_hosts.reset(token)


def _configuration(options: Options) -> RTCConfiguration:
    servers = options.extra.get("ice_servers") or []
    return RTCConfiguration(
        iceServers=[s if isinstance(s, RTCIceServer) else RTCIceServer(s) for s in servers]
    )


def _hosts(options: Options) -> Sequence[str] | None:
    hosts = options.extra.get("ice_hosts")
    if hosts is None:
        return None
    return [hosts] if isinstance(hosts, str) else [str(h) for h in hosts]


def _fit_options(options: Options, remote_sdp: str) -> Options:
    """Lower the announced maxMessageSize so that a frame fits one SCTP message."""
    match = _MAX_MESSAGE_RE.search(remote_sdp)
    remote_max = int(match.group(1)) if match else DEFAULT_MAX_MESSAGE
    if remote_max == 0:  # the peer takes messages of any size
        return options
    cap = max(remote_max - EXTENDED_HEADER_SIZE, 1)
    if options.max_message_size == 0 or options.max_message_size > cap:
        return dataclasses.replace(options, max_message_size=cap)
    return options


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _loopback_only(hosts: Sequence[str] | None) -> bool:
    return bool(hosts) and all(_is_loopback(h) for h in hosts or ())


_SDP_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) .*(?:\r?\n|$)", re.MULTILINE)


def _reachable_sdp(sdp: str, hosts: Sequence[str] | None) -> str:
    """Drop the remote candidates a loopback-pinned peer cannot reach.

    A socket bound to 127.0.0.1 only reaches loopback, so checks towards the
    browser's other addresses are pointless, and would be the only packets
    sent anywhere but 127.0.0.1 in a loopback setup.
    """
    if not _loopback_only(hosts):
        return sdp
    return _SDP_CANDIDATE.sub(lambda m: m.group(0) if _is_loopback(m.group(1)) else "", sdp)


def _reachable(candidate: RTCIceCandidate | None, hosts: Sequence[str] | None) -> bool:
    return candidate is None or not _loopback_only(hosts) or _is_loopback(candidate.ip)


def _reliability(info: CoreChannel) -> dict[str, Any]:
    params: dict[str, Any] = {"ordered": info.ordered}
    if not info.reliable:
        if info.max_packet_lifetime is not None and info.max_retransmits is None:
            params["maxPacketLifeTime"] = info.max_packet_lifetime
        else:
            params["maxRetransmits"] = info.max_retransmits or 0
    return params


def _candidate(obj: Any) -> RTCIceCandidate | None:
    """A browser's `RTCIceCandidateInit` as aiortc wants it; None = end of candidates.
    `ValueError` if malformed."""
    if not isinstance(obj, dict):
        raise ValueError("a candidate is an object")
    text = obj.get("candidate")
    if text is None or text == "":
        return None
    if not isinstance(text, str) or len(text) > 1024:
        raise ValueError("candidate must be a string")
    try:
        candidate = candidate_from_sdp(
            text.split(":", 1)[1] if text.startswith("candidate:") else text
        )
    except (AssertionError, IndexError, ValueError) as exc:
        raise ValueError(f"malformed candidate {text!r}") from exc
    mid, index = obj.get("sdpMid"), obj.get("sdpMLineIndex")
    candidate.sdpMid = mid if isinstance(mid, str) else None
    candidate.sdpMLineIndex = index if isinstance(index, int) else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate


# ----------------------------------------------------------------- the sink


class DataChannelSink:
    """The `FrameSink` of one session over one `RTCPeerConnection`.

    Routes outgoing frames by channel byte to their DataChannel, feeds every
    incoming frame to the session, creates/binds/closes DataChannels as
    channels come and go, and turns DataChannel buffering into back-pressure.
    """

    def __init__(
        self,
        session: Session,
        pc: RTCPeerConnection,
        control: RTCDataChannel,
        on_open: Callable[[DataChannelSink], Any] | None = None,
    ) -> None:
        self.session = session
        self.pc = pc
        self.control = control
        self._loop = asyncio.get_running_loop()
        self._on_open = on_open
        self.opened: asyncio.Future[None] = self._loop.create_future()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self._dcs: dict[int, RTCDataChannel] = {}
        self._ids: dict[RTCDataChannel, int] = {}
        self._held: dict[int, list[bytes]] = {}
        self._held_bytes = 0
        self._full: set[RTCDataChannel] = set()
        self._paused = False
        self._burst = 0  # frames written in this turn of the event loop
        self._receiving: int | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        limit = session.options.write_limit
        self._high, self._low = limit, limit // 4
        self._bind(control, CONTROL_CHANNEL)
        control.on("open", self._control_open)
        pc.on("datachannel", self._incoming)
        pc.on("connectionstatechange", self._state_changed)
        self._gate_reading()

    # -- DataChannels

    def _bind(self, dc: RTCDataChannel, channel_id: int) -> None:
        self._dcs[channel_id] = dc
        self._ids[dc] = channel_id
        dc.bufferedAmountLowThreshold = self._low
        dc.on("message", lambda data: self._message(dc, data))
        dc.on("close", lambda: self._dc_closed(dc))
        dc.on("bufferedamountlow", lambda: self._drained(dc))

    def _control_open(self) -> None:
        if self.opened.done():
            return
        self.opened.set_result(None)
        self.session.connection_made(self)
        if self._on_open is not None:
            self._on_open(self)

    def _incoming(self, dc: RTCDataChannel) -> None:
        label = dc.label
        name = label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else None
        # The core's channels, not the asyncio layer's: an application may
        # take channels out of `session.channels` (vroomd's services tap them).
        channel = None
        if name:
            channels = self.session.connection.channels.values()
            channel = next((c for c in channels if c.name == name and c.id), None)
        if dc.protocol not in PROTOCOLS or label == CONTROL_LABEL or channel is None:
            logger.info("closing DataChannel %r (%r): no such channel", label, dc.protocol)
            dc.close()
            return
        if channel.id in self._dcs:
            logger.info("closing DataChannel %r: channel %d has one", label, channel.id)
            dc.close()
            return
        self._bind(dc, channel.id)
        self._flush_held(dc)  # an announced DataChannel is open at once

    def _message(self, dc: RTCDataChannel, data: bytes | str) -> None:
        channel_id = self._ids.get(dc)
        if channel_id is None:
            return  # its channel is closed: an in-flight frame, discarded (§2)
        if isinstance(data, str):
            self.session.fail(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux DataChannel")
            return
        if len(data) > 1 and data[0] == CONTROL_CHANNEL:
            self._receiving = data[1]
        try:
            self.session.message_received(data)
        finally:
            self._receiving = None

    def _dc_closed(self, dc: RTCDataChannel) -> None:
        self._full.discard(dc)
        channel_id = self._ids.pop(dc, None)
        if channel_id is None:
            self._check_pressure()
            return  # closed by us, after its channel
        if channel_id == CONTROL_CHANNEL:
            self._transport_lost(ConnectionError("the omux/control DataChannel closed"))
            return
        del self._dcs[channel_id]
        self._drop_held(channel_id)
        for channel in list(self.session.channels.values()):
            if channel.id == channel_id:
                logger.info("DataChannel %r closed: closing its channel", dc.label)
                self._spawn(channel.close("DataChannel closed"))
        self._check_pressure()

    # -- FrameSink: channels

    def channel_opened(self, info: CoreChannel) -> None:
        if self._receiving not in _OPENER_TYPES:
            return  # the peer asked for it: it creates the DataChannel
        try:
            dc = self.pc.createDataChannel(
                LABEL_PREFIX + info.name, protocol=PROTOCOL, **_reliability(info)
            )
        except (InvalidStateError, ValueError) as exc:
            logger.warning("cannot create the DataChannel of %r: %s", info.name, exc)
            return
        self._bind(dc, info.id)
        dc.on("open", lambda: self._flush_held(dc))

    def channel_closed(self, info: CoreChannel) -> None:
        dc = self._dcs.pop(info.id, None)
        self._drop_held(info.id)
        if dc is not None:
            self._ids.pop(dc, None)
            self._full.discard(dc)
            dc.close()
        self._check_pressure()

    # -- FrameSink: writing

    def write_frames(self, frames: list[bytes]) -> None:
        for frame in frames:
            channel_id = frame[0]
            dc = self._dcs.get(channel_id)
            if dc is not None and dc.readyState == "open" and channel_id not in self._held:
                self._send(dc, frame)
            elif channel_id != CONTROL_CHANNEL and channel_id in self.session.connection.channels:
                self._held.setdefault(channel_id, []).append(frame)
                self._held_bytes += len(frame)
            # else: the control channel is gone, or the channel is: nothing to deliver to
        if self._burst == 0:
            self._loop.call_soon(self._end_burst)
        self._burst += len(frames)
        self._check_pressure()

    @property
    def datachannels(self) -> dict[int, RTCDataChannel]:
        """The bound DataChannels by channel id (0 = `omux/control`)."""
        return dict(self._dcs)

    def get_write_buffer_size(self) -> int:
        """Bytes not yet handed to SCTP: DataChannel buffers plus frames held for a DC."""
        return self._held_bytes + sum(dc.bufferedAmount for dc in self._ids)

    def _send(self, dc: RTCDataChannel, frame: bytes) -> None:
        try:
            dc.send(frame)
        except (InvalidStateError, ValueError) as exc:
            logger.debug("DataChannel %r: frame dropped (%s)", dc.label, exc)
            return
        if dc.bufferedAmount > self._high:
            self._full.add(dc)

    def _flush_held(self, dc: RTCDataChannel) -> None:
        channel_id = self._ids.get(dc)
        if channel_id is None:
            return
        for frame in self._held.pop(channel_id, ()):
            self._held_bytes -= len(frame)
            self._send(dc, frame)
        self._check_pressure()

    def _drop_held(self, channel_id: int) -> None:
        for frame in self._held.pop(channel_id, ()):
            self._held_bytes -= len(frame)

    def _drained(self, dc: RTCDataChannel) -> None:
        self._full.discard(dc)
        self._check_pressure()

    def _end_burst(self) -> None:
        self._burst = 0
        self._check_pressure()

    def _check_pressure(self) -> None:
        if self._full or self._held_bytes > self._high or self._burst >= BURST:
            if not self._paused:
                self._paused = True
                self.session.pause_writing()
        elif self._paused and self._held_bytes <= self._low:
            self._paused = False
            self.session.resume_writing()

    # -- FrameSink: reading

    def _gate_reading(self) -> None:
        """Make `pause_reading()` stop the SCTP receive path.

        aiortc's DataChannels cannot stop reading, and its SCTP ignores the
        receive window, so a slow reader would only grow memory. Holding
        `RTCSctpTransport._receive` (aiortc's "stream -> upper layer" hook)
        stops SACKs too: the sender's congestion window fills and its
        `bufferedAmount` grows, which pauses its session. Without that hook
        (another aiortc) pausing is a no-op.
        """
        sctp = self.pc.sctp
        receive = getattr(sctp, "_receive", None)
        if sctp is None or receive is None:  # pragma: no cover - other aiortc
            return
        reading = self._reading

        async def gated(*args: Any) -> None:
            if not reading.is_set():
                await reading.wait()
            await receive(*args)

        setattr(sctp, "_receive", gated)  # noqa: B010 - an instance override, on purpose

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    # -- FrameSink: the end

    def close(self) -> None:
        """The session is over: let the last frames out, then close the peer connection."""
        if not self._closing:
            self._closing = True
            self._spawn(self._shutdown())

    async def _shutdown(self) -> None:
        # pc.close() aborts the SCTP association at once, dropping what is not
        # yet acknowledged, and the final CLOSE is among it: wait (bounded).
        sctp = self.pc.sctp
        try:
            async with asyncio.timeout(self.session.options.close_timeout):
                while self.control.readyState == "open" and (
                    self.control.bufferedAmount
                    or getattr(sctp, "_outbound_queue", None)
                    or getattr(sctp, "_sent_queue", None)
                ):
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass
        await self.pc.close()
        self._transport_lost(None)

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self._transport_lost(ConnectionError(f"peer connection {state}"))

    def _transport_lost(self, exc: BaseException | None) -> None:
        if self.lost.done():
            return
        self.lost.set_result(None)
        self._reading.set()  # nothing may stay blocked in the receive path
        self.session.connection_lost(exc)
        if not self._closing:
            self._closing = True
            self._spawn(self.pc.close())

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# ------------------------------------------------------------------- client


async def connect(url: str, options: Options) -> Session:
    parts, host, port = split(url, 443 if url.startswith("webrtc+https:") else 80)
    secure = parts.scheme == "webrtc+https"
    offer_url = f"{'https' if secure else 'http'}://{netloc(host, port)}"
    offer_url += f"{parts.path.rstrip('/')}/offer"
    pc = RTCPeerConnection(_configuration(options))
    try:
        control = pc.createDataChannel(CONTROL_LABEL, negotiated=True, id=0, protocol=PROTOCOL)
        with ice_hosts(_hosts(options)):
            await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer", "candidates": []}
        headers = {}
        if options.token is not None and options.extra.get("auth_header"):
            headers["Authorization"] = f"Bearer {options.token}"
        status, data = await _http.request(
            "POST",
            offer_url,
            json.dumps(body).encode(),
            headers=headers,
            ssl=options.ssl if secure else None,
        )
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise HandshakeError(CloseCode.AUTH_FAILED, f"HTTP {status}")
        if status != HTTPStatus.OK:
            raise TransportError(f"WebRTC offer refused: HTTP {status}")
        try:
            answer = json.loads(data)
            sdp = answer["sdp"]
            if not isinstance(sdp, str) or answer.get("type") != "answer":
                raise ValueError
            candidates = [_candidate(c) for c in answer.get("candidates") or []]
        except (ValueError, KeyError, TypeError):
            raise TransportError("the WebRTC signaling answer is malformed") from None
        hosts = _hosts(options)
        sdp = _reachable_sdp(sdp, hosts)
        candidates = [c for c in candidates if _reachable(c, hosts)]
        session = Session(_fit_options(options, sdp), is_client=True, mode="message")
        session.transport_info.update(url=url, transport="webrtc")
        sink = DataChannelSink(session, pc, control)
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        for candidate in candidates:
            await pc.addIceCandidate(candidate)
        done, _ = await asyncio.wait([sink.opened, sink.lost], return_when=asyncio.FIRST_COMPLETED)
        if sink.lost in done and not sink.opened.done():
            raise TransportError("the WebRTC connection failed before omux/control opened")
        await session.wait_handshake()
    except BaseException:
        await pc.close()
        raise
    return session


# ------------------------------------------------------------------- server


class WebRTCListener:
    """The signaling HTTP server of a `webrtc+http(s)://` listener and its peers."""

    def __init__(
        self,
        server: Server,
        base: str,
        hosts: Sequence[str] | None,
        *,
        bases: Callable[[str], bool] | None = None,
        get_paths: Callable[[str], bool] | None = None,
    ) -> None:
        self.server = server
        self.options = server.options
        self.base = base
        self._bases = bases
        """Other prefixes `/offer` and `/candidate` are served under (a shared port's)."""
        self._get_paths = get_paths
        """Paths that exist for GET only (a shared port's WebSocket endpoints): 405, not 404."""
        self.hosts = hosts
        self.urls: list[str] = []
        self.http: asyncio.Server | None = None
        self.peers: dict[str, DataChannelSink] = {}
        self._pending: set[DataChannelSink] = set()
        cors = self.options.extra.get("cors_origins") or ()
        self.cors_origins: tuple[str, ...] = (cors,) if isinstance(cors, str) else tuple(cors)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        for sink in list(self._pending):  # live sessions are the Server's to close
            sink.close()

    async def wait_closed(self) -> None:
        if self.http is not None:
            await self.http.wait_closed()

    # -- HTTP

    def _cors(self, request: _http.Request, response: _http.Response) -> _http.Response:
        origin = request.headers.get("origin")
        if origin and ("*" in self.cors_origins or origin in self.cors_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def handle(self, request: _http.Request) -> _http.Response:
        return self._cors(request, await self._route(request))

    def _known_base(self, prefix: str) -> bool:
        return prefix == self.base or (self._bases is not None and self._bases(prefix))

    async def _route(self, request: _http.Request) -> _http.Response:
        path, method = request.path, request.method
        prefix, _, leaf = path.rpartition("/")
        if leaf == SCRIPT and (prefix == "" or self._known_base(prefix)):
            if method not in ("GET", "HEAD"):
                return _http.Response.text(HTTPStatus.METHOD_NOT_ALLOWED)
            return _http.Response(HTTPStatus.OK, script(), CONTENT_TYPE)
        if leaf not in ("offer", "candidate") or not self._known_base(prefix):
            if self._get_paths is not None and self._get_paths(path):
                response = _http.Response.text(HTTPStatus.METHOD_NOT_ALLOWED, "GET only")
                response.headers["Allow"] = "GET"
                return response
            return _http.Response.text(HTTPStatus.NOT_FOUND, "not an OpenMux signaling endpoint")
        if method == "OPTIONS":
            response = _http.Response(HTTPStatus.NO_CONTENT)
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            return response
        if method != "POST":
            return _http.Response.text(HTTPStatus.METHOD_NOT_ALLOWED)
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            return _http.Response.text(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        if path.endswith("/candidate"):
            return await self._candidate(body)
        authenticated = False
        token = request.bearer()
        if token is not None and self.options.auth_required:
            if not token or not self.options.check_bearer(token):
                return _http.Response.text(HTTPStatus.UNAUTHORIZED, "bad bearer token")
            authenticated = True
        return await self._offer(body, authenticated, request)

    async def _candidate(self, body: Mapping[str, Any]) -> _http.Response:
        key = body.get("id")
        sink = self.peers.get(key) if isinstance(key, str) else None
        if sink is None:
            return _http.Response.text(HTTPStatus.NOT_FOUND, "unknown id")
        items = body.get("candidates")
        if not isinstance(items, list):
            items = [body]
        try:
            candidates = [_candidate(c) for c in items[:64]]
        except ValueError as exc:
            return _http.Response.text(HTTPStatus.BAD_REQUEST, str(exc))
        for candidate in candidates:
            if _reachable(candidate, self.hosts):
                await sink.pc.addIceCandidate(candidate)
        return _http.Response(HTTPStatus.NO_CONTENT)

    async def _offer(
        self, body: Mapping[str, Any], authenticated: bool, request: _http.Request
    ) -> _http.Response:
        sdp = body.get("sdp")
        if body.get("type") != "offer" or not isinstance(sdp, str):
            return _http.Response.text(HTTPStatus.BAD_REQUEST, "expected {sdp, type: 'offer'}")
        if "\nm=application " not in sdp:
            return _http.Response.text(HTTPStatus.BAD_REQUEST, "the offer has no DataChannels")
        if len(self._pending) >= MAX_PENDING:
            return _http.Response.text(HTTPStatus.SERVICE_UNAVAILABLE, "too many pending offers")
        try:
            candidates = [_candidate(c) for c in (body.get("candidates") or [])[:64]]
        except (ValueError, TypeError) as exc:
            return _http.Response.text(HTTPStatus.BAD_REQUEST, str(exc))
        sdp = _reachable_sdp(sdp, self.hosts)
        candidates = [c for c in candidates if _reachable(c, self.hosts)]
        pc = RTCPeerConnection(_configuration(self.options))
        control = pc.createDataChannel(CONTROL_LABEL, negotiated=True, id=0, protocol=PROTOCOL)
        session = Session(_fit_options(self.options, sdp), is_client=False, mode="message")
        session.connection.transport_authenticated = authenticated
        session.transport_info.update(
            transport="webrtc",
            peername=request.peername,
            path=request.path,
            headers=dict(request.headers),
        )
        sink = DataChannelSink(session, pc, control, on_open=self._opened)
        hook = self.options.extra.get("peer_connection")
        if hook is not None:
            # An application's media on the same peer connection (vroomd's
            # screen and voice): its tracks and codec preferences must exist
            # before the offer is applied. An exception carrying an HTTP
            # `status` (401, 403) refuses the offer with that status.
            try:
                await hook(pc, session, request)
            except Exception as exc:
                await pc.close()
                status = getattr(exc, "status", None)
                if status not in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                    logger.exception("the peer_connection hook failed")
                    status = HTTPStatus.INTERNAL_SERVER_ERROR
                return _http.Response.text(status, str(exc) or "offer refused")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            for candidate in candidates:
                await pc.addIceCandidate(candidate)
            with ice_hosts(self.hosts):
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises all sorts on a bad SDP
            logger.info("WebRTC offer refused: %r", exc)
            await pc.close()
            return _http.Response.text(HTTPStatus.BAD_REQUEST, "unusable offer")
        key = secrets.token_urlsafe(16)
        self.peers[key] = sink
        self._pending.add(sink)
        sink.lost.add_done_callback(lambda _: self._forget(key, sink))
        loop = asyncio.get_running_loop()
        loop.call_later(self.options.timeout, self._expire, sink)
        answer = pc.localDescription
        return _http.Response.json(
            {"sdp": answer.sdp, "type": answer.type, "candidates": [], "id": key}
        )

    def _opened(self, sink: DataChannelSink) -> None:
        self._pending.discard(sink)
        self.server.start_session(sink.session)

    def _expire(self, sink: DataChannelSink) -> None:
        if sink in self._pending:
            logger.info("WebRTC peer never opened omux/control: dropped")
            self._pending.discard(sink)
            sink._transport_lost(TimeoutError("omux/control did not open"))

    def _forget(self, key: str, sink: DataChannelSink) -> None:
        self._pending.discard(sink)
        if self.peers.get(key) is sink:
            del self.peers[key]


async def listen(url: str, server: Server) -> WebRTCListener:
    parts, host, port = split(url, 443 if url.startswith("webrtc+https:") else 80)
    options = server.options
    ssl = None
    if parts.scheme == "webrtc+https":
        if options.ssl is None:
            raise ValueError("a webrtc+https:// listener needs ssl=<server SSLContext>")
        ssl = options.ssl
    base = parts.path.rstrip("/")
    listener = WebRTCListener(server, base, _hosts(options))
    listener.http = await _http.start_server(listener.handle, host, port, ssl=ssl)
    listener.urls = [
        f"{parts.scheme}://{netloc(sock.getsockname()[0], sock.getsockname()[1])}{base}"
        for sock in listener.http.sockets
    ]
    return listener


__all__ = [
    "CONTROL_LABEL",
    "PROTOCOL",
    "PROTOCOLS",
    "DataChannelSink",
    "WebRTCListener",
    "connect",
    "ice_hosts",
    "listen",
]
