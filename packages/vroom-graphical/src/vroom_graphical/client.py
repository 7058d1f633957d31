"""The client side of VROOM-Graphical, layered on an `openmux.Connection`.

One `GraphicalClient` drives one graphical session (its channel suffix is
`session`); two sessions on one connection are two clients fed the same
OpenMux events, each taking only what concerns its own channels.

The client owns its session's channels: it opens `vroom.graphical.control`
(unless HELLO already got it), `video` when asked, and `pointer`/`button`
when the server's STATE confirms interact mode (House clarification 2: over
WebRTC the channels are separate DataChannels, so opening them before the
acknowledgement could race the MODE). Leaving interact closes them at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, cast

import openmux
from openmux import Channel

from .channels import (
    Role,
    button_spec,
    channel_name,
    check_session,
    control_spec,
    parse_name,
    pointer_spec,
    video_spec,
)
from .encoding import ENCODINGS, Encoding, sniff
from .errors import ErrorCode, GraphicalError, LocalProtocolError, ProtocolError
from .events import (
    BadMessage,
    ChannelRefused,
    ChatReceived,
    ClipboardReceived,
    CursorReceived,
    GraphicalEvent,
    HandshakeDone,
    HandshakeFailed,
    InputReady,
    ModeChanged,
    NotificationReceived,
    SessionClosed,
    StateReceived,
    VideoClosed,
    VideoFrame,
    VideoOpened,
)
from .inputs import (
    POINTER_TYPES,
    InputMessage,
    KeyDown,
    KeyUp,
    Modifiers,
    MouseButton,
    MouseDown,
    MouseMove,
    MouseMoveRel,
    MouseUp,
    Scroll,
    TouchEnd,
    TouchMove,
    TouchStart,
    encode_input,
)
from .messages import (
    CAPABILITIES,
    MODES,
    Chat,
    ClientHandshake,
    ClientInfo,
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
from .server import VERSION, VIDEO_FRAME

DEFAULT_CLIENT_CAPABILITIES = ("pointer", "keyboard", "touch", "clipboard", "command", "cursor")


class GraphicalClient:
    """VROOM-Graphical client state machine for one session over one OpenMux connection."""

    def __init__(
        self,
        mux: openmux.Connection,
        *,
        viewport: Viewport,
        capabilities: Sequence[str] = DEFAULT_CLIENT_CAPABILITIES,
        encodings: Sequence[Encoding] = ENCODINGS,
        mode: Mode = "view",
        client: ClientInfo | None = None,
        session: str = "",
        video: bool = False,
        max_control_size: int = 16 << 20,
        version: str = VERSION,
    ) -> None:
        if not encodings or any(e not in ENCODINGS for e in encodings):
            raise ValueError(f"encodings must be a non-empty subset of {ENCODINGS}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        parsed = parse_version(version)
        if parsed is None:
            raise ValueError(f"version {version!r} is not MAJOR.MINOR.PATCH")
        self.mux = mux
        self.session = check_session(session)
        self.hello = ClientHandshake(
            version,
            Viewport(viewport.width, viewport.height, viewport.scale, viewport.pixel_ratio),
            tuple(c for c in capabilities if c in CAPABILITIES),
            tuple(encodings),
            mode,
            client,
        )
        check_outgoing(self.hello)
        self.want_video = video
        self.max_control_size = max_control_size
        self._major = parsed[0]
        self.handshake: ServerHandshake | None = None
        self.encoding: Encoding | None = None
        self.capabilities: tuple[str, ...] = ()
        self.mode: Mode = "view"
        """The mode the server last confirmed."""
        self.requested_mode: Mode = mode
        self.viewport: Viewport | None = None
        """The agent's viewport: what input coordinates are relative to."""
        self.state: State | None = None
        self.pending: set[CommandId] = set()
        """COMMAND ids still waiting for their final NOTIFICATION."""
        self._ids: dict[Role, int] = {}
        self._requests: dict[int, Role] = {}
        self._started = False
        self._hello_sent = False
        self._closed = False
        self._command_ids = itertools.count(1)
        self._ended = False
        if mux.state is openmux.State.OPEN:
            self._start([])

    # ------------------------------------------------------------ properties

    @property
    def ready(self) -> bool:
        """The handshake is done: control messages may be sent."""
        return self.handshake is not None and not self._closed

    @property
    def input_ready(self) -> bool:
        return Role.POINTER in self._ids and Role.BUTTON in self._ids

    @property
    def video_open(self) -> bool:
        return Role.VIDEO in self._ids

    def channel_specs(self) -> list[openmux.ChannelSpec]:
        """Channels to ask for in HELLO (Config.channels), saving a round trip."""
        specs = [control_spec(self.session)]
        if self.want_video:
            specs.append(video_spec(self.session))
        return specs

    # ------------------------------------------------------------ events

    def handle_event(self, event: openmux.Event) -> list[GraphicalEvent]:
        """Feed one OpenMux event; returns the graphical events it caused."""
        out: list[GraphicalEvent] = []
        if isinstance(event, openmux.MessageReceived):
            role = self._role_of(event.channel_id)
            if role is Role.CONTROL:
                self._on_control(event.type, event.data, out)
            elif role is Role.VIDEO:
                if event.type == VIDEO_FRAME and event.data.startswith(b"\xff\xd8"):
                    out.append(VideoFrame(event.data, self.session))
                else:
                    out.append(
                        BadMessage(ErrorCode.BAD_MESSAGE, "not a JPEG video frame", self.session)
                    )
            elif role is not None:
                out.append(
                    BadMessage(
                        ErrorCode.BAD_MESSAGE, f"the server sent on {role.value}", self.session
                    )
                )
        elif isinstance(event, openmux.HandshakeCompleted):
            self._start(out)
        elif isinstance(event, openmux.ChannelOpened):
            self._on_opened(event.channel, event.request_id, out)
        elif isinstance(event, openmux.ChannelRejected):
            role = self._requests.pop(event.request_id, None)
            if role is not None:
                if role is Role.CONTROL:
                    self._closed = self._ended = True
                    out.append(HandshakeFailed(event.code, event.reason, self.session))
                else:
                    out.append(ChannelRefused(event.name, event.code, event.reason, self.session))
        elif isinstance(event, openmux.ChannelClosed):
            role = self._role_of(event.channel.id)
            if role is not None:
                del self._ids[role]
                if role is Role.CONTROL:
                    self._end(event.reason or "control channel closed", out)
                elif role is Role.VIDEO:
                    out.append(VideoClosed(self.session))
        elif isinstance(event, openmux.ConnectionTerminated):
            self._ids.clear()
            self._requests.clear()
            self._closed = True
            if self._started and not self._ended:
                self._ended = True
                out.append(SessionClosed(event.reason or "connection closed", self.session))
        return out

    def _role_of(self, channel_id: int) -> Role | None:
        for role, cid in self._ids.items():
            if cid == channel_id:
                return role
        return None

    def _start(self, out: list[GraphicalEvent]) -> None:
        if self._started:
            return
        self._started = True
        for channel in list(self.mux.channels.values()):
            self._on_opened(channel, None, out)
        if Role.CONTROL not in self._ids:
            self._open(Role.CONTROL)
        if self.want_video and Role.VIDEO not in self._ids:
            self._open(Role.VIDEO)

    def _open(self, role: Role) -> None:
        spec = {
            Role.CONTROL: control_spec,
            Role.POINTER: pointer_spec,
            Role.BUTTON: button_spec,
            Role.VIDEO: video_spec,
        }[role](self.session)
        rid = self._mux_call(self.mux.open_channel, spec)
        self._requests[rid] = role

    def _on_opened(
        self, channel: Channel, request_id: int | None, out: list[GraphicalEvent]
    ) -> None:
        parsed = parse_name(channel.name)
        if parsed is None or parsed[1] != self.session or channel.id in self._ids.values():
            return
        role = parsed[0]
        if request_id is not None and self._requests.pop(request_id, None) is not role:
            return  # someone else opened a channel by that name: not ours to manage
        if role in (Role.POINTER, Role.BUTTON) and request_id is None:
            return  # input channels are only ever ours when we asked for them
        self._ids[role] = channel.id
        if role is Role.CONTROL and not self._hello_sent:
            self._hello_sent = True
            # House: the client's VROOM_HANDSHAKE is always JSON.
            type_, payload = encode_control(self.hello, "json")
            self._mux_call(self.mux.send_message, channel.id, type_, payload)
        elif role is Role.VIDEO:
            out.append(VideoOpened(self.session))
        elif role in (Role.POINTER, Role.BUTTON):
            if self.requested_mode != "interact":  # we left interact while it was opening
                self._close(role)
            elif self.input_ready:
                out.append(InputReady(self.session))

    def _on_control(self, type_: int, data: bytes, out: list[GraphicalEvent]) -> None:
        try:
            if self.handshake is None:
                # Before the encoding is agreed the server speaks JSON, and its
                # VROOM_HANDSHAKE reply uses the encoding it picked: sniff.
                message = decode_control(
                    type_, data, sniff(data), from_client=False, limit=self.max_control_size
                )
                if isinstance(message, ServerHandshake):
                    self._on_handshake(message, out)
                    return
                if isinstance(message, Notification) and message.type == "error":
                    self._closed = True
                    out.append(
                        HandshakeFailed(
                            message.code or ErrorCode.BAD_MESSAGE, message.text, self.session
                        )
                    )
                    return
                raise ProtocolError(
                    f"{MessageType(type_).name} before VROOM_HANDSHAKE", ErrorCode.WRONG_STATE
                )
            assert self.encoding is not None
            message = decode_control(
                type_, data, self.encoding, from_client=False, limit=self.max_control_size
            )
            self._dispatch(message, out)
        except ProtocolError as exc:
            out.append(BadMessage(int(exc.code), exc.reason, self.session))

    def _on_handshake(self, reply: ServerHandshake, out: list[GraphicalEvent]) -> None:
        peer = parse_version(reply.version)
        problem = None
        if peer is None or peer[0] != self._major:
            problem = (
                ErrorCode.VERSION_MISMATCH,
                f"server speaks {reply.version}, we speak {self.hello.version}",
            )
        elif reply.control_encoding not in self.hello.control_encoding:
            problem = (
                ErrorCode.UNSUPPORTED_ENCODING,
                f"server picked {reply.control_encoding!r}, which we did not offer",
            )
        if problem is not None:
            self._closed = True
            out.append(HandshakeFailed(problem[0], problem[1], self.session))
            self._close(Role.CONTROL, "bad VROOM_HANDSHAKE")
            self._end("bad VROOM_HANDSHAKE", out)
            return
        self.handshake = reply
        self.encoding = cast(Encoding, reply.control_encoding)
        self.capabilities = tuple(c for c in reply.capabilities if c in self.hello.capabilities)
        self.viewport = reply.viewport
        self.mode = "view"
        out.append(
            HandshakeDone(
                reply,
                reply.control_encoding,
                self.capabilities,
                self.requested_mode,
                reply.viewport,
                self.session,
            )
        )

    def _dispatch(self, message: ControlMessage, out: list[GraphicalEvent]) -> None:
        key = self.session
        if isinstance(message, State):
            self._on_state(message, out)
        elif isinstance(message, Cursor):
            out.append(CursorReceived(message, key))
        elif isinstance(message, Notification):
            completes = False
            if message.is_final and message.ref is not None and message.ref in self.pending:
                self.pending.discard(message.ref)
                completes = True
            out.append(NotificationReceived(message, completes, key))
        elif isinstance(message, Chat):
            out.append(ChatReceived(message.role, message.text, message.timestamp, key))
        elif isinstance(message, Clipboard):
            out.append(ClipboardReceived(message.direction, message.text, message.mime_type, key))
        else:
            raise ProtocolError("VROOM_HANDSHAKE was already done", ErrorCode.WRONG_STATE)

    def _on_state(self, state: State, out: list[GraphicalEvent]) -> None:
        if state.viewport is not None:
            self.viewport = state.viewport
        self.state = state
        if state.mode is not None and state.mode != self.mode:
            previous, self.mode = self.mode, state.mode
            out.append(ModeChanged(state.mode, previous, self.session))
        if self.mode == "interact" and self.requested_mode == "interact":
            for role in (Role.POINTER, Role.BUTTON):
                if role not in self._ids and role not in self._requests.values():
                    self._open(role)
        elif self.mode != "interact":
            self._close_input()
        out.append(StateReceived(state, self.session))

    # ------------------------------------------------------------ control messages

    def set_mode(self, mode: Mode) -> None:
        """Send MODE. Leaving interact closes pointer/button now; entering it
        opens them when the server's STATE confirms the mode."""
        if mode not in MODES:
            raise LocalProtocolError(f"mode must be one of {MODES}")
        self._send(SetMode(mode))
        self.requested_mode = mode
        if mode != "interact":
            self._close_input()

    def resize(
        self, width: int, height: int, *, scale: float = 1.0, pixel_ratio: float = 1.0
    ) -> None:
        self._send(Resize(width, height, scale, pixel_ratio))

    def command(self, action: str, /, id: CommandId | None = None, **args: Any) -> CommandId:
        """Send COMMAND; returns its id (one is made up if not given). Its one
        final NOTIFICATION arrives as `NotificationReceived(completes=True)`."""
        if id is None:
            id = next(self._command_ids)
            while id in self.pending:
                id = next(self._command_ids)
        elif id in self.pending:
            raise LocalProtocolError(f"COMMAND id {id!r} is still pending")
        self._send(Command(action, args, id))
        self.pending.add(id)
        return id

    def navigate(self, url: str, *, new_tab: bool = False) -> None:
        self._send(Navigate(url, new_tab))

    def paste(self, text: str) -> None:
        self._send(Paste(text))

    def chat(self, text: str, *, timestamp: Timestamp | None = None) -> None:
        self._send(Chat("user", text, timestamp))

    def clipboard(
        self, direction: str, text: str | None = None, *, mime_type: str = "text/plain"
    ) -> None:
        """CLIPBOARD set (write the agent's clipboard), get (ask for a push), push."""
        if direction not in ("set", "get", "push"):
            raise LocalProtocolError("direction must be set, get or push")
        self._send(Clipboard(cast(Any, direction), text, mime_type))

    def close(self, reason: str = "") -> None:
        """End the session: close every channel of it that is open."""
        for role in (Role.POINTER, Role.BUTTON, Role.VIDEO, Role.CONTROL):
            self._close(role, reason)
        self._closed = True

    # ------------------------------------------------------------ input

    def send_input(self, message: InputMessage) -> None:
        """Send one packed input on the channel its type belongs to."""
        role = Role.POINTER if message.TYPE in POINTER_TYPES else Role.BUTTON
        channel_id = self._ids.get(role)
        if channel_id is None:
            raise LocalProtocolError(
                f"{channel_name(role, self.session)} is not open (input needs interact mode)"
            )
        try:
            type_, payload = encode_input(message)
        except GraphicalError as exc:
            raise LocalProtocolError(exc.reason) from None
        self._mux_call(self.mux.send_message, channel_id, type_, payload)

    def mouse_move(self, x: int, y: int) -> None:
        self.send_input(MouseMove(x, y))

    def mouse_move_rel(self, dx: int, dy: int) -> None:
        self.send_input(MouseMoveRel(dx, dy))

    def scroll(self, dx: int, dy: int) -> None:
        self.send_input(Scroll(dx, dy))

    def mouse_down(self, x: int, y: int, button: int = MouseButton.LEFT) -> None:
        self.send_input(MouseDown(x, y, _button(button)))

    def mouse_up(self, x: int, y: int, button: int = MouseButton.LEFT) -> None:
        self.send_input(MouseUp(x, y, _button(button)))

    def key_down(self, key: str, code: str = "", modifiers: int = 0) -> None:
        self.send_input(KeyDown(key, code, _modifiers(modifiers)))

    def key_up(self, key: str, code: str = "", modifiers: int = 0) -> None:
        self.send_input(KeyUp(key, code, _modifiers(modifiers)))

    def touch_start(self, id: int, x: int, y: int, pressure: int = 255) -> None:
        self.send_input(TouchStart(id, x, y, pressure))

    def touch_move(self, id: int, x: int, y: int, pressure: int = 255) -> None:
        self.send_input(TouchMove(id, x, y, pressure))

    def touch_end(self, id: int) -> None:
        self.send_input(TouchEnd(id))

    # ------------------------------------------------------------ internals

    def _send(self, message: ControlMessage) -> None:
        if self._closed:
            raise LocalProtocolError("the graphical session is closed")
        if self.handshake is None or self.encoding is None:
            raise LocalProtocolError("the VROOM_HANDSHAKE is not done yet")
        check_outgoing(message)
        type_, payload = encode_control(message, self.encoding)
        self._mux_call(self.mux.send_message, self._ids[Role.CONTROL], type_, payload)

    def _close(self, role: Role, reason: str = "") -> None:
        channel_id = self._ids.pop(role, None)
        if channel_id is not None:
            try:
                self.mux.close_channel(channel_id, reason)
            except openmux.OpenMuxError:
                pass  # already gone with the connection

    def _close_input(self) -> None:
        self._close(Role.POINTER)
        self._close(Role.BUTTON)

    def _end(self, reason: str, out: list[GraphicalEvent]) -> None:
        """The control channel is gone: the session and its other channels with it."""
        for role in (Role.POINTER, Role.BUTTON, Role.VIDEO):
            self._close(role)
        self._closed = True
        if not self._ended:
            self._ended = True
            out.append(SessionClosed(reason, self.session))

    @staticmethod
    def _mux_call(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except openmux.OpenMuxError as exc:
            raise LocalProtocolError(f"OpenMux: {exc}") from exc


def _button(value: int) -> MouseButton:
    try:
        return MouseButton(value)
    except ValueError:
        raise LocalProtocolError(f"mouse button {value} is not 0..4") from None


def _modifiers(value: int) -> Modifiers:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"modifiers {value} do not fit a byte")
    return Modifiers(value)
