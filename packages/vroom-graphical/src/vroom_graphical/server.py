"""The server side of VROOM-Graphical, layered on an `openmux.Connection`.

Like aioquic's H3Connection on a QuicConnection: the application feeds every
OpenMux event to `handle_event()`, gets graphical events back, and sends what
the mux has queued. One `GraphicalServer` serves every graphical session of
a connection; events and methods name the session by its channel suffix.

The server enforces the protocol's rules itself so that every application
gets them: the handshake and its checks, modes (pointer/button refused with
4000 outside interact, input dropped outside it, COMMAND/NAVIGATE/PASTE/
CLIPBOARD set refused in the wrong mode), the URL and `evaluate` policy, and
exactly one final NOTIFICATION per COMMAND.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import openmux
from openmux import Channel

from .channels import Role, channel_name, check_session, parse_name
from .encoding import ENCODINGS, Encoding, decode_body, sniff
from .errors import (
    ErrorCode,
    GraphicalError,
    HandshakeError,
    LocalProtocolError,
    ProtocolError,
)
from .events import (
    BadMessage,
    ButtonInput,
    ChatReceived,
    ClipboardReceived,
    CommandReceived,
    GraphicalEvent,
    HandshakeDone,
    HandshakeFailed,
    ModeChanged,
    NavigateRequested,
    PasteReceived,
    PointerInput,
    Resized,
    SessionClosed,
    VideoClosed,
    VideoOpened,
)
from .inputs import (
    BUTTON_TYPES,
    POINTER_TYPES,
    InputType,
    MouseMove,
    MouseMoveRel,
    Scroll,
    decode_input,
)
from .messages import (
    CAPABILITIES,
    AgentInfo,
    Chat,
    ClientHandshake,
    Clipboard,
    Command,
    CommandId,
    ControlMessage,
    Cursor,
    MessageType,
    Mode,
    Navigate,
    Notification,
    Paste,
    Resize,
    ServerHandshake,
    SetMode,
    State,
    Timestamp,
    Viewport,
    check_outgoing,
    decode_control,
    encode_control,
    parse_version,
)
from .urls import DEFAULT_SCHEMES, check_url

VERSION = "0.1.0"
VIDEO_FRAME = 0x01
"""Type byte of a JPEG frame on the `video` channel (House)."""

DEFAULT_VIEWPORT = Viewport(1280, 720)

ViewportPolicy = Callable[[Viewport], Viewport]
"""Given the client's viewport, the agent viewport to render at."""

_INPUT_CAPABILITY = {
    InputType.MOUSE_MOVE: "pointer",
    InputType.MOUSE_MOVE_REL: "pointer",
    InputType.SCROLL: "pointer",
    InputType.MOUSE_DOWN: "pointer",
    InputType.MOUSE_UP: "pointer",
    InputType.KEY_DOWN: "keyboard",
    InputType.KEY_UP: "keyboard",
    InputType.TOUCH_START: "touch",
    InputType.TOUCH_MOVE: "touch",
    InputType.TOUCH_END: "touch",
}
_COMMAND_MODES = ("interact", "voice")


@dataclass(slots=True)
class _Session:
    key: str
    control_id: int
    viewport: Viewport
    encoding: Encoding = "json"  # until the handshake agrees one (House clarification 7)
    handshake: ClientHandshake | None = None
    capabilities: frozenset[str] = frozenset()
    mode: Mode = "view"
    client_viewport: Viewport | None = None
    state: State = field(default_factory=State)
    # ticket -> COMMAND id (None when the client gave none)
    pending: dict[int, CommandId | None] = field(default_factory=dict)


@dataclass(slots=True)
class _Route:
    role: Role
    session: str


class GraphicalServer:
    """VROOM-Graphical server state machine over one OpenMux connection.

    Install `vroom_graphical.channel_policy` (or a policy that returns
    `openmux.DEFER` for pointer/button names) in the connection's Config so
    that pointer/button requests reach `handle_event()` as
    `ChannelRequested` and can be decided from the session's mode.
    """

    def __init__(
        self,
        mux: openmux.Connection,
        *,
        viewport: Viewport | ViewportPolicy = DEFAULT_VIEWPORT,
        capabilities: Collection[str] = CAPABILITIES,
        encodings: Sequence[Encoding] = ENCODINGS,
        agent: AgentInfo | None = None,
        allow_evaluate: bool = False,
        allowed_schemes: Collection[str] = DEFAULT_SCHEMES,
        max_control_size: int = 1 << 20,
        version: str = VERSION,
    ) -> None:
        if not encodings or any(e not in ENCODINGS for e in encodings):
            raise ValueError(f"encodings must be a non-empty subset of {ENCODINGS}")
        parsed = parse_version(version)
        if parsed is None:
            raise ValueError(f"version {version!r} is not MAJOR.MINOR.PATCH")
        self.mux = mux
        self.viewport = viewport
        self.capabilities = tuple(c for c in CAPABILITIES if c in set(capabilities))
        self.encodings = tuple(encodings)
        self.agent = agent
        self.allow_evaluate = allow_evaluate
        self.allowed_schemes = tuple(allowed_schemes)
        self.max_control_size = max_control_size
        self.version = version
        self._major = parsed[0]
        self.sessions: dict[str, _Session] = {}
        self.dropped_input = 0
        """Input frames dropped because their session was not in interact mode."""
        self._routes: dict[int, _Route] = {}
        self._tickets = itertools.count(1)
        for channel in list(mux.channels.values()):
            self._adopt(channel, [])

    # ------------------------------------------------------------ public API

    def handle_event(self, event: openmux.Event) -> list[GraphicalEvent]:
        """Feed one OpenMux event; returns the graphical events it caused.

        Events about channels that are not graphical return `[]`, so the same
        OpenMux events can be given to other protocols (VROOM-Terminal) too.
        """
        out: list[GraphicalEvent] = []
        if isinstance(event, openmux.MessageReceived):
            route = self._routes.get(event.channel_id)
            if route is not None:
                self._on_message(route, event.type, event.data, out)
        elif isinstance(event, openmux.ChannelOpened):
            self._adopt(event.channel, out)
        elif isinstance(event, openmux.ChannelRequested):
            self._on_requested(event, out)
        elif isinstance(event, openmux.ChannelClosed):
            self._on_closed(event.channel.id, event.reason or "channel closed", out)
        elif isinstance(event, openmux.ConnectionTerminated):
            for key in list(self.sessions):
                del self.sessions[key]
                out.append(SessionClosed(event.reason or "connection closed", key))
            self._routes.clear()
        return out

    def mode(self, session: str = "") -> Mode:
        return self._session(session).mode

    def send_state(self, state: State | str, *, session: str = "") -> None:
        """Send STATE. `mode` is always filled in with the session's mode (so
        every STATE also confirms it) and the state is remembered for MODE acks."""
        s = self._ready(session)
        if isinstance(state, str):
            state = replace(s.state, state=state)
        s.state = replace(state, mode=None, viewport=None)
        self._send(s, replace(state, mode=s.mode))

    def send_cursor(
        self, type: str, x: float, y: float, *, visible: bool = True, session: str = ""
    ) -> bool:
        """Send CURSOR; False (nothing sent) if `cursor` was not negotiated."""
        s = self._ready(session)
        if "cursor" not in s.capabilities:
            return False
        self._send(s, Cursor(type, x, y, visible))
        return True

    def send_notification(
        self,
        text: str,
        *,
        type: str = "info",
        ref: CommandId | None = None,
        data: Any = None,
        code: int | None = None,
        timestamp: Timestamp | None = None,
        session: str = "",
    ) -> None:
        """Send NOTIFICATION. A success/error with the `ref` of a pending
        COMMAND is its final answer; a second final answer is refused."""
        s = self._ready(session)
        note = Notification(type, text, ref, timestamp, data, code)
        if ref is not None and note.is_final:
            ticket = next((t for t, i in s.pending.items() if i == ref), None)
            if ticket is None:
                raise LocalProtocolError(f"COMMAND {ref!r} is not pending: it was answered already")
            self._send(s, note)
            del s.pending[ticket]
            return
        self._send(s, note)

    def reply(
        self,
        command: CommandReceived,
        ok: bool = True,
        text: str | None = None,
        *,
        data: Any = None,
        code: int | None = None,
    ) -> None:
        """The one final NOTIFICATION for a COMMAND (with `ref` = its id, if any)."""
        s = self._ready(command.session)
        if command.ticket not in s.pending:
            raise LocalProtocolError(f"COMMAND ticket {command.ticket} was answered already")
        if text is None:
            text = f"{command.action}: " + ("done" if ok else "failed")
        if not ok and code is None:
            code = ErrorCode.INTERNAL
        note = Notification("success" if ok else "error", text, command.id, None, data, code)
        self._send(s, note)
        del s.pending[command.ticket]

    def pending_commands(self, session: str = "") -> list[int]:
        """Tickets of the COMMANDs still waiting for their final NOTIFICATION."""
        return list(self._session(session).pending)

    def send_chat(
        self,
        text: str,
        *,
        role: str = "agent",
        timestamp: Timestamp | None = None,
        session: str = "",
    ) -> None:
        self._send(self._ready(session), Chat(role, text, timestamp))

    def send_clipboard(
        self, text: str, *, mime_type: str = "text/plain", session: str = ""
    ) -> None:
        """CLIPBOARD push: the answer to a get, or the page's clipboard changed."""
        self._send(self._ready(session), Clipboard("push", text, mime_type))

    def set_viewport(self, viewport: Viewport, *, session: str = "") -> None:
        """The agent's viewport changed (after RESIZE): tell the client in STATE."""
        s = self._ready(session)
        s.viewport = Viewport(viewport.width, viewport.height)
        self._send(s, replace(s.state, mode=s.mode, viewport=s.viewport))

    def video_open(self, session: str = "") -> bool:
        return self._find(Role.VIDEO, session) is not None

    def send_video_frame(self, jpeg: bytes, *, session: str = "") -> bool:
        """Queue one JPEG frame on `video` (Type 0x01); the core fragments
        large frames. False if the video channel is not open. Dropping frames
        for a slow client is the transport layer's job: it alone sees the queue."""
        channel_id = self._find(Role.VIDEO, session)
        if channel_id is None:
            return False
        if not jpeg.startswith(b"\xff\xd8"):
            raise LocalProtocolError("a video frame must be a JPEG (starts FF D8)")
        self._mux_call(self.mux.send_message, channel_id, VIDEO_FRAME, jpeg)
        return True

    def close_session(self, session: str = "", reason: str = "") -> None:
        """Close the session's control channel (its other channels are the client's)."""
        s = self._session(session)
        self._mux_call(self.mux.close_channel, s.control_id, reason)
        self._drop_session(s.key)

    # ------------------------------------------------------------ channels

    def _adopt(self, channel: Channel, out: list[GraphicalEvent]) -> None:
        parsed = parse_name(channel.name)
        if parsed is None or channel.id in self._routes:
            return
        role, key = parsed
        self._routes[channel.id] = _Route(role, key)
        if role is Role.CONTROL:
            viewport = self.viewport if isinstance(self.viewport, Viewport) else DEFAULT_VIEWPORT
            self.sessions[key] = _Session(key, channel.id, viewport)
        elif role is Role.VIDEO:
            out.append(VideoOpened(key))

    def _on_requested(self, event: openmux.ChannelRequested, out: list[GraphicalEvent]) -> None:
        parsed = parse_name(event.spec.name)
        if parsed is None:
            return
        role, key = parsed
        if role in (Role.POINTER, Role.BUTTON):
            s = self.sessions.get(key)
            if s is None or s.handshake is None or s.mode != "interact":
                self._try_mux(
                    self.mux.reject_channel,
                    event.request_id,
                    ErrorCode.NOT_AUTHORISED,
                    f"{event.spec.name} is only available in interact mode",
                )
                return
        channel = self._try_mux(self.mux.accept_channel, event.request_id)
        if isinstance(channel, Channel):
            self._adopt(channel, out)

    def _on_closed(self, channel_id: int, reason: str, out: list[GraphicalEvent]) -> None:
        route = self._routes.pop(channel_id, None)
        if route is None:
            return
        if route.role is Role.CONTROL:
            s = self.sessions.get(route.session)
            if s is not None and s.control_id == channel_id:
                self._drop_session(route.session)
                out.append(SessionClosed(reason, route.session))
        elif route.role is Role.VIDEO:
            out.append(VideoClosed(route.session))

    def _drop_session(self, key: str) -> None:
        s = self.sessions.pop(key, None)
        if s is not None:
            self._routes.pop(s.control_id, None)

    def _find(self, role: Role, session: str) -> int | None:
        for channel_id, route in self._routes.items():
            if route.role is role and route.session == session:
                return channel_id
        return None

    # ------------------------------------------------------------ messages

    def _on_message(
        self, route: _Route, type_: int, data: bytes, out: list[GraphicalEvent]
    ) -> None:
        s = self.sessions.get(route.session)
        if route.role is Role.CONTROL:
            if s is not None:
                self._on_control(s, type_, data, out)
        elif route.role in (Role.POINTER, Role.BUTTON):
            self._on_input(s, route.role, type_, data, out)
        elif s is not None and s.handshake is not None:
            self._refuse(s, ProtocolError("the client sends nothing on the video channel"), out)

    def _on_control(self, s: _Session, type_: int, data: bytes, out: list[GraphicalEvent]) -> None:
        if s.handshake is None:
            self._on_handshake(s, type_, data, out)
            return
        try:
            message = decode_control(
                type_, data, s.encoding, from_client=True, limit=self.max_control_size
            )
            self._dispatch(s, message, out)
        except ProtocolError as exc:
            self._refuse(s, exc, out)

    def _on_handshake(
        self, s: _Session, type_: int, data: bytes, out: list[GraphicalEvent]
    ) -> None:
        if type_ != MessageType.VROOM_HANDSHAKE:
            name = (
                MessageType(type_).name if type_ in MessageType._value2member_map_ else hex(type_)
            )
            exc = ProtocolError(
                f"{name} before VROOM_HANDSHAKE",
                ErrorCode.WRONG_STATE,
                ref=self._peek_ref(type_, data),
            )
            self._refuse(s, exc, out)
            return
        try:
            hello = decode_control(
                type_, data, sniff(data), from_client=True, limit=self.max_control_size
            )
            assert isinstance(hello, ClientHandshake)
            self._accept_handshake(s, hello, out)
        except ProtocolError as exc:
            self._refuse(s, exc, out)
            self._try_mux(self.mux.close_channel, s.control_id, "bad VROOM_HANDSHAKE")
            self._drop_session(s.key)
            out.append(HandshakeFailed(exc.code, exc.reason, s.key))

    def _accept_handshake(
        self, s: _Session, hello: ClientHandshake, out: list[GraphicalEvent]
    ) -> None:
        peer = parse_version(hello.version)
        assert peer is not None
        if peer[0] != self._major:
            raise HandshakeError(
                f"unsupported version {hello.version} (server speaks {self.version})",
                ErrorCode.VERSION_MISMATCH,
            )
        encoding = next((e for e in hello.control_encoding if e in self.encodings), None)
        if encoding is None:
            raise HandshakeError(
                f"no common control encoding: client offers {list(hello.control_encoding)}, "
                f"server supports {list(self.encodings)}",
                ErrorCode.UNSUPPORTED_ENCODING,
            )
        viewport = self.viewport(hello.viewport) if callable(self.viewport) else self.viewport
        s.viewport = Viewport(viewport.width, viewport.height)
        s.client_viewport = hello.viewport
        s.capabilities = frozenset(c for c in hello.capabilities if c in self.capabilities)
        s.mode = hello.mode
        agreed = tuple(c for c in hello.capabilities if c in s.capabilities)
        reply = ServerHandshake(self.version, encoding, agreed, s.viewport, self.agent)
        s.encoding = encoding
        s.handshake = hello
        self._send(s, reply)
        # Connection flow step 6: the client learns the mode from the first STATE.
        self._send(s, replace(s.state, mode=s.mode))
        out.append(HandshakeDone(hello, encoding, agreed, s.mode, s.viewport, s.key))

    def _peek_ref(self, type_: int, data: bytes) -> CommandId | None:
        """The id of a COMMAND we refuse before decoding it properly."""
        if type_ != MessageType.COMMAND:
            return None
        try:
            ref = decode_body(data, sniff(data), self.max_control_size).get("id")
        except GraphicalError:
            return None
        if isinstance(ref, str) or (isinstance(ref, int) and not isinstance(ref, bool)):
            return ref
        return None

    def _dispatch(self, s: _Session, message: ControlMessage, out: list[GraphicalEvent]) -> None:
        key = s.key
        if isinstance(message, SetMode):
            previous, s.mode = s.mode, message.mode
            self._send(s, replace(s.state, mode=s.mode))  # House clarification 2
            out.append(ModeChanged(message.mode, previous, key))
        elif isinstance(message, Command):
            out.append(self._on_command(s, message))
        elif isinstance(message, Navigate):
            self._need_mode(s, "NAVIGATE", _COMMAND_MODES)
            url = check_url(message.url, self.allowed_schemes)
            out.append(NavigateRequested(url, message.new_tab, key))
        elif isinstance(message, Paste):
            self._need_mode(s, "PASTE", ("interact",))
            out.append(PasteReceived(message.text, key))
        elif isinstance(message, Clipboard):
            if "clipboard" not in s.capabilities:
                raise ProtocolError(
                    "CLIPBOARD: the clipboard capability was not negotiated", ErrorCode.FORBIDDEN
                )
            if message.direction == "set":
                self._need_mode(s, "CLIPBOARD set", _COMMAND_MODES)
            out.append(ClipboardReceived(message.direction, message.text, message.mime_type, key))
        elif isinstance(message, Resize):
            s.client_viewport = message.viewport
            out.append(Resized(message.viewport, key))
        elif isinstance(message, Chat):
            if message.role != "user":
                raise ProtocolError("CHAT from a client must have role 'user'")
            out.append(ChatReceived(message.role, message.text, message.timestamp, key))
        else:  # a second VROOM_HANDSHAKE
            raise ProtocolError("VROOM_HANDSHAKE was already done", ErrorCode.WRONG_STATE)

    def _on_command(self, s: _Session, message: Command) -> CommandReceived:
        ref = message.id
        if "command" not in s.capabilities:
            raise ProtocolError(
                "COMMAND: the command capability was not negotiated", ErrorCode.FORBIDDEN, ref=ref
            )
        self._need_mode(s, f"COMMAND {message.action}", _COMMAND_MODES, ref)
        if ref is not None and ref in s.pending.values():
            raise ProtocolError(
                f"COMMAND id {ref!r} is still pending", ErrorCode.WRONG_STATE, ref=ref
            )
        args = dict(message.args)
        if message.action == "evaluate" and not self.allow_evaluate:
            raise ProtocolError(
                "COMMAND evaluate is not allowed on this server", ErrorCode.FORBIDDEN, ref=ref
            )
        if message.action == "navigate":
            try:
                args["url"] = check_url(args["url"], self.allowed_schemes)
            except ProtocolError as exc:
                exc.ref = ref
                raise
        ticket = next(self._tickets)
        s.pending[ticket] = ref
        return CommandReceived(ref, message.action, args, ticket, s.key)

    @staticmethod
    def _need_mode(
        s: _Session, what: str, modes: Sequence[str], ref: CommandId | None = None
    ) -> None:
        if s.mode not in modes:
            raise ProtocolError(
                f"{what} is not accepted in {s.mode} mode (only in {' or '.join(modes)})",
                ErrorCode.WRONG_STATE,
                ref=ref,
            )

    def _on_input(
        self, s: _Session | None, role: Role, type_: int, data: bytes, out: list[GraphicalEvent]
    ) -> None:
        if s is None or s.handshake is None or s.mode != "interact":
            self.dropped_input += 1  # House: input outside interact is dropped
            return
        try:
            allowed = POINTER_TYPES if role is Role.POINTER else BUTTON_TYPES
            if type_ not in allowed and type_ in InputType._value2member_map_:
                raise ProtocolError(
                    f"{InputType(type_).name} does not belong on the {role.value} channel"
                )
            message = decode_input(type_, data)
            needed = _INPUT_CAPABILITY[message.TYPE]
            if needed not in s.capabilities:
                raise ProtocolError(
                    f"{message.TYPE.name}: the {needed} capability was not negotiated",
                    ErrorCode.FORBIDDEN,
                )
        except ProtocolError as exc:
            self._refuse(s, exc, out)
            return
        if isinstance(message, MouseMove | MouseMoveRel | Scroll):
            out.append(PointerInput(message, s.key))
        else:
            out.append(ButtonInput(message, s.key))

    # ------------------------------------------------------------ sending

    def _refuse(self, s: _Session, exc: ProtocolError, out: list[GraphicalEvent]) -> None:
        """House clarification 6: a bad message gets a NOTIFICATION error."""
        note = Notification("error", exc.reason, exc.ref, None, None, int(exc.code))
        try:
            self._send(s, note)
        except LocalProtocolError:
            pass  # the connection is going away; nobody is left to tell
        out.append(BadMessage(int(exc.code), exc.reason, s.key))

    def _session(self, session: str) -> _Session:
        s = self.sessions.get(check_session(session))
        if s is None:
            raise LocalProtocolError(
                f"no graphical session {channel_name(Role.CONTROL, session)!r}"
            )
        return s

    def _ready(self, session: str) -> _Session:
        s = self._session(session)
        if s.handshake is None:
            raise LocalProtocolError("the VROOM_HANDSHAKE is not done yet")
        return s

    def _send(self, s: _Session, message: ControlMessage) -> None:
        check_outgoing(message)
        type_, payload = encode_control(message, s.encoding)
        self._mux_call(self.mux.send_message, s.control_id, type_, payload)

    def _try_mux(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A mux call made while handling the peer's input must not raise:
        the core has already answered on the wire, or the connection is closing."""
        try:
            return fn(*args)
        except openmux.OpenMuxError:
            return None

    @staticmethod
    def _mux_call(fn: Callable[..., Any], *args: Any) -> Any:
        """Misuse reported by the core becomes our LocalProtocolError, so the
        application catches one error tree."""
        try:
            return fn(*args)
        except openmux.OpenMuxError as exc:
            raise LocalProtocolError(f"OpenMux: {exc}") from exc
