"""Control messages 0x80-0x93 of `vroom.graphical.control`: schemas and defaults.

Each message is a frozen, slotted dataclass with `to_body()` (the map that
goes on the wire, camelCase keys as upstream spells them) and `from_body()`
(checks every MUST field and type, fills defaults, ignores unknown keys). The
OpenMux Type byte is the message type, so a body never carries its own type.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeAlias, cast

from .encoding import Encoding, decode_body, encode_body
from .errors import DecodeError, ErrorCode, LocalProtocolError, UnknownMessage


class MessageType(enum.IntEnum):
    VROOM_HANDSHAKE = 0x80
    MODE = 0x81
    RESIZE = 0x82
    CLIPBOARD = 0x83
    NAVIGATE = 0x84
    COMMAND = 0x85
    PASTE = 0x86
    CURSOR = 0x90
    STATE = 0x91
    NOTIFICATION = 0x92
    CHAT = 0x93


CLIENT_TYPES: Final = frozenset(
    {
        MessageType.VROOM_HANDSHAKE,
        MessageType.MODE,
        MessageType.RESIZE,
        MessageType.CLIPBOARD,
        MessageType.NAVIGATE,
        MessageType.COMMAND,
        MessageType.PASTE,
        MessageType.CHAT,
    }
)
SERVER_TYPES: Final = frozenset(
    {
        MessageType.VROOM_HANDSHAKE,
        MessageType.CLIPBOARD,
        MessageType.CURSOR,
        MessageType.STATE,
        MessageType.NOTIFICATION,
        MessageType.CHAT,
    }
)

Mode = Literal["view", "interact", "voice"]
MODES: Final[tuple[Mode, ...]] = ("view", "interact", "voice")
CAPABILITIES: Final = ("pointer", "keyboard", "touch", "clipboard", "command", "cursor", "gamepad")
AGENT_STATES: Final = ("idle", "thinking", "browsing", "speaking", "listening", "coding")
NOTIFICATION_TYPES: Final = ("info", "success", "warning", "error")
CHAT_ROLES: Final = ("user", "agent", "system")
CLIPBOARD_DIRECTIONS: Final = ("set", "get", "push")
MAX_VIEWPORT: Final = 0xFFFF
"""Coordinates are u16 on the wire, so no viewport side may exceed this."""

CommandId: TypeAlias = "str | int"
Timestamp: TypeAlias = "int | float | str"


# ----------------------------------------------------------------- field checks


class _Fields:
    """Reads one body, raising DecodeError that names the message and the field."""

    __slots__ = ("body", "name", "ref")

    def __init__(self, body: Mapping[str, Any], name: str, ref: CommandId | None = None) -> None:
        self.body = body
        self.name = name
        self.ref = ref

    def fail(self, key: str, what: str) -> DecodeError:
        return DecodeError(f"{self.name}: {key!r} {what}", ref=self.ref)

    def has(self, key: str) -> bool:
        return self.body.get(key) is not None

    def text(self, key: str, *, nonempty: bool = False) -> str:
        value = self.body.get(key)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        if nonempty and not value:
            raise self.fail(key, "must not be empty")
        return value

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        if default is not None and not self.has(key):
            return default
        value = self.text(key)
        if value not in choices:
            raise self.fail(key, "must be one of " + ", ".join(choices))
        return value

    def integer(self, key: str, lo: int, hi: int) -> int:
        value = self.body.get(key)
        if value is None:
            raise self.fail(key, "is required")
        if not _is_int(value) or not lo <= value <= hi:
            raise self.fail(key, f"must be an integer in {lo}..{hi}")
        return int(value)

    def number(self, key: str, default: float | None = None, *, positive: bool = False) -> float:
        value = self.body.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, "is required")
            return default
        if not _is_number(value) or (positive and value <= 0):
            raise self.fail(key, "must be a " + ("positive " if positive else "") + "number")
        return cast(float, value)

    def flag(self, key: str, default: bool | None = None) -> bool | None:
        value = self.body.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, "must be a boolean")
        return value

    def text_list(self, key: str, default: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.body.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, "is required")
            return tuple(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def obj(self, key: str) -> Mapping[str, Any] | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "must be an object")
        return value

    def timestamp(self) -> Timestamp | None:
        value = self.body.get("timestamp")
        if value is None:
            return None
        if not (_is_number(value) or isinstance(value, str)):
            raise self.fail("timestamp", "must be a number or a string")
        return cast("Timestamp", value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _command_id(value: object) -> CommandId | None:
    if value is None:
        return None
    if isinstance(value, str) or _is_int(value):
        return cast(CommandId, value)
    raise DecodeError("COMMAND: 'id' must be a string or an integer")


def _put(body: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        body[key] = value


# ----------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Viewport:
    """A viewport in CSS pixels; `scale`/`pixel_ratio` only on the client's."""

    width: int
    height: int
    scale: float = 1.0
    pixel_ratio: float = 1.0

    def to_body(self, *, full: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"width": self.width, "height": self.height}
        if full:
            body["scale"] = self.scale
            body["pixelRatio"] = self.pixel_ratio
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any], name: str) -> Viewport:
        f = _Fields(body, name)
        return cls(
            f.integer("width", 1, MAX_VIEWPORT),
            f.integer("height", 1, MAX_VIEWPORT),
            f.number("scale", 1.0, positive=True),
            f.number("pixelRatio", 1.0, positive=True),
        )


def _viewport(f: _Fields) -> Viewport:
    body = f.obj("viewport")
    if body is None:
        raise f.fail("viewport", "is required")
    return Viewport.from_body(body, f.name + " viewport")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    name: str | None = None
    version: str | None = None
    platform: str | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        _put(body, "name", self.name)
        _put(body, "version", self.version)
        _put(body, "platform", self.platform)
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ClientInfo:
        f = _Fields(body, "VROOM_HANDSHAKE client")
        return cls(f.opt_text("name"), f.opt_text("version"), f.opt_text("platform"))


@dataclass(frozen=True, slots=True)
class AgentInfo:
    name: str | None = None
    state: str | None = None
    browser: str | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        _put(body, "name", self.name)
        _put(body, "state", self.state)
        _put(body, "browser", self.browser)
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AgentInfo:
        f = _Fields(body, "VROOM_HANDSHAKE agent")
        return cls(f.opt_text("name"), f.opt_text("state"), f.opt_text("browser"))


def _check_version(f: _Fields) -> str:
    version = f.text("version", nonempty=True)
    if parse_version(version) is None:
        raise f.fail("version", "must be a semantic version such as 0.1.0")
    return version


def parse_version(version: str) -> tuple[int, int, int] | None:
    """MAJOR.MINOR.PATCH, with an optional -prerelease/+build that we ignore."""
    core = version.split("+", 1)[0].split("-", 1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(p.isdigit() and p.isascii() and len(p) <= 9 for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def _capabilities(f: _Fields) -> tuple[str, ...]:
    """Unknown names are dropped, not refused, so a newer peer can still talk to us."""
    return tuple(c for c in f.text_list("capabilities") if c in CAPABILITIES)


@dataclass(frozen=True, slots=True)
class ClientHandshake:
    TYPE: ClassVar[MessageType] = MessageType.VROOM_HANDSHAKE

    version: str
    viewport: Viewport
    capabilities: tuple[str, ...]
    control_encoding: tuple[str, ...] = ("cbor",)
    mode: Mode = "view"
    client: ClientInfo | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": self.version,
            "control_encoding": list(self.control_encoding),
            "capabilities": list(self.capabilities),
            "viewport": self.viewport.to_body(),
            "mode": self.mode,
        }
        if self.client is not None:
            body["client"] = self.client.to_body()
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ClientHandshake:
        f = _Fields(body, "VROOM_HANDSHAKE")
        client = f.obj("client")
        return cls(
            _check_version(f),
            _viewport(f),
            _capabilities(f),
            f.text_list("control_encoding", ("cbor",)),
            cast(Mode, f.choice("mode", MODES, "view")),
            ClientInfo.from_body(client) if client is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ServerHandshake:
    TYPE: ClassVar[MessageType] = MessageType.VROOM_HANDSHAKE

    version: str
    control_encoding: str
    capabilities: tuple[str, ...]
    viewport: Viewport
    agent: AgentInfo | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": self.version,
            "control_encoding": self.control_encoding,
            "capabilities": list(self.capabilities),
            "viewport": self.viewport.to_body(full=False),
        }
        if self.agent is not None:
            body["agent"] = self.agent.to_body()
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ServerHandshake:
        f = _Fields(body, "VROOM_HANDSHAKE")
        agent = f.obj("agent")
        vp = _viewport(f)
        return cls(
            _check_version(f),
            f.text("control_encoding", nonempty=True),
            _capabilities(f),
            Viewport(vp.width, vp.height),
            AgentInfo.from_body(agent) if agent is not None else None,
        )


@dataclass(frozen=True, slots=True)
class SetMode:
    """MODE (0x81); named SetMode so that `Mode` can be the mode's type."""

    TYPE: ClassVar[MessageType] = MessageType.MODE

    mode: Mode

    def to_body(self) -> dict[str, Any]:
        return {"mode": self.mode}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SetMode:
        return cls(cast(Mode, _Fields(body, "MODE").choice("mode", MODES)))


@dataclass(frozen=True, slots=True)
class Resize:
    TYPE: ClassVar[MessageType] = MessageType.RESIZE

    width: int
    height: int
    scale: float = 1.0
    pixel_ratio: float = 1.0

    @property
    def viewport(self) -> Viewport:
        return Viewport(self.width, self.height, self.scale, self.pixel_ratio)

    def to_body(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "scale": self.scale,
            "pixelRatio": self.pixel_ratio,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Resize:
        vp = Viewport.from_body(body, "RESIZE")
        return cls(vp.width, vp.height, vp.scale, vp.pixel_ratio)


@dataclass(frozen=True, slots=True)
class Clipboard:
    TYPE: ClassVar[MessageType] = MessageType.CLIPBOARD

    direction: Literal["set", "get", "push"]
    text: str | None = None
    mime_type: str = "text/plain"

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"direction": self.direction}
        _put(body, "text", self.text)
        body["mimeType"] = self.mime_type
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Clipboard:
        f = _Fields(body, "CLIPBOARD")
        direction = f.choice("direction", CLIPBOARD_DIRECTIONS)
        text = f.text("text") if direction != "get" else f.opt_text("text")
        mime = f.opt_text("mimeType")
        return cls(cast(Any, direction), text, mime or "text/plain")


@dataclass(frozen=True, slots=True)
class Navigate:
    TYPE: ClassVar[MessageType] = MessageType.NAVIGATE

    url: str
    new_tab: bool = False

    def to_body(self) -> dict[str, Any]:
        return {"url": self.url, "newTab": self.new_tab}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Navigate:
        f = _Fields(body, "NAVIGATE")
        return cls(f.text("url", nonempty=True), bool(f.flag("newTab", False)))


_SCROLL_DIRECTIONS: Final = ("up", "down", "left", "right")
_WAIT_STATES: Final = ("attached", "detached", "visible", "hidden")


def _args_click(f: _Fields) -> None:
    f.text("selector", nonempty=True)


def _args_type(f: _Fields) -> None:
    f.text("selector", nonempty=True)
    f.text("text")


def _args_scroll(f: _Fields) -> None:
    f.choice("direction", _SCROLL_DIRECTIONS)
    f.number("amount")


def _args_navigate(f: _Fields) -> None:
    f.text("url", nonempty=True)


def _args_none(f: _Fields) -> None:
    pass


def _args_select(f: _Fields) -> None:
    f.text("selector", nonempty=True)
    f.text_list("values")


def _args_wait(f: _Fields) -> None:
    f.text("selector", nonempty=True)
    f.choice("state", _WAIT_STATES)


def _args_evaluate(f: _Fields) -> None:
    f.text("expression", nonempty=True)


def _args_natural(f: _Fields) -> None:
    f.text("text", nonempty=True)


_ACTIONS: Final = {
    "click": _args_click,
    "type": _args_type,
    "scroll": _args_scroll,
    "navigate": _args_navigate,
    "back": _args_none,
    "forward": _args_none,
    "refresh": _args_none,
    "screenshot": _args_none,
    "select": _args_select,
    "hover": _args_click,
    "wait": _args_wait,
    "evaluate": _args_evaluate,
    "natural": _args_natural,
}
ACTIONS: Final = tuple(_ACTIONS)
"""COMMAND actions of VROOM-GRAPHICAL §3, each with its MUST arguments checked."""


@dataclass(frozen=True, slots=True)
class Command:
    """COMMAND: `action` plus its arguments, which sit beside it in the body."""

    TYPE: ClassVar[MessageType] = MessageType.COMMAND

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    id: CommandId | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        _put(body, "id", self.id)
        body["action"] = self.action
        for key, value in self.args.items():
            if key not in ("id", "action"):
                body[key] = value
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Command:
        ref = _command_id(body.get("id"))
        f = _Fields(body, "COMMAND", ref)
        action = f.text("action", nonempty=True)
        check = _ACTIONS.get(action)
        if check is None:
            raise UnknownMessage(f"COMMAND: unknown action {action!r}", ref=ref)
        f.name = f"COMMAND {action}"
        check(f)
        args = {k: v for k, v in body.items() if k not in ("id", "action")}
        return cls(action, args, ref)


@dataclass(frozen=True, slots=True)
class Paste:
    TYPE: ClassVar[MessageType] = MessageType.PASTE

    text: str

    def to_body(self) -> dict[str, Any]:
        return {"text": self.text}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Paste:
        return cls(_Fields(body, "PASTE").text("text"))


@dataclass(frozen=True, slots=True)
class Cursor:
    TYPE: ClassVar[MessageType] = MessageType.CURSOR

    type: str
    x: float
    y: float
    visible: bool = True

    def to_body(self) -> dict[str, Any]:
        return {"type": self.type, "x": self.x, "y": self.y, "visible": self.visible}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Cursor:
        f = _Fields(body, "CURSOR")
        return cls(
            f.text("type", nonempty=True),
            f.number("x"),
            f.number("y"),
            bool(f.flag("visible", True)),
        )


@dataclass(frozen=True, slots=True)
class BrowserState:
    can_go_back: bool = False
    can_go_forward: bool = False

    def to_body(self) -> dict[str, Any]:
        return {"canGoBack": self.can_go_back, "canGoForward": self.can_go_forward}


@dataclass(frozen=True, slots=True)
class State:
    """STATE. `mode` and `viewport` are House additions: `mode` acknowledges
    MODE (House clarification 2) and `viewport` announces a new agent viewport
    after RESIZE, so the client's scaling follows."""

    TYPE: ClassVar[MessageType] = MessageType.STATE

    state: str = "idle"
    url: str | None = None
    title: str | None = None
    loading: bool | None = None
    browser: BrowserState | None = None
    mode: Mode | None = None
    viewport: Viewport | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": self.state}
        _put(body, "url", self.url)
        _put(body, "title", self.title)
        _put(body, "loading", self.loading)
        if self.browser is not None:
            body["browser"] = self.browser.to_body()
        _put(body, "mode", self.mode)
        if self.viewport is not None:
            body["viewport"] = self.viewport.to_body(full=False)
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> State:
        f = _Fields(body, "STATE")
        browser = f.obj("browser")
        browser_state = None
        if browser is not None:
            b = _Fields(browser, "STATE browser")
            browser_state = BrowserState(
                bool(b.flag("canGoBack", False)), bool(b.flag("canGoForward", False))
            )
        viewport = None
        if f.has("viewport"):
            vp = _viewport(f)
            viewport = Viewport(vp.width, vp.height)
        mode = f.choice("mode", MODES) if f.has("mode") else None
        return cls(
            f.choice("state", AGENT_STATES),
            f.opt_text("url"),
            f.opt_text("title"),
            f.flag("loading"),
            browser_state,
            cast("Mode | None", mode),
            viewport,
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """NOTIFICATION. `data` carries COMMAND results (House clarification 4);
    `code` (House) is the `ErrorCode` of an error notification."""

    TYPE: ClassVar[MessageType] = MessageType.NOTIFICATION

    type: str
    text: str
    ref: CommandId | None = None
    timestamp: Timestamp | None = None
    data: Any = None
    code: int | None = None

    @property
    def is_final(self) -> bool:
        """success/error end a COMMAND; info/warning with a ref are progress."""
        return self.type in ("success", "error")

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        _put(body, "ref", self.ref)
        body["type"] = self.type
        body["text"] = self.text
        _put(body, "timestamp", self.timestamp)
        _put(body, "data", self.data)
        _put(body, "code", self.code)
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Notification:
        f = _Fields(body, "NOTIFICATION")
        ref = body.get("ref")
        if ref is not None and not (isinstance(ref, str) or _is_int(ref)):
            raise f.fail("ref", "must be a string or an integer")
        code = body.get("code")
        if code is not None and not _is_int(code):
            raise f.fail("code", "must be an integer")
        return cls(
            f.choice("type", NOTIFICATION_TYPES),
            f.text("text"),
            cast("CommandId | None", ref),
            f.timestamp(),
            body.get("data"),
            cast("int | None", code),
        )


@dataclass(frozen=True, slots=True)
class Chat:
    TYPE: ClassVar[MessageType] = MessageType.CHAT

    role: str
    text: str
    timestamp: Timestamp | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"role": self.role, "text": self.text}
        _put(body, "timestamp", self.timestamp)
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Chat:
        f = _Fields(body, "CHAT")
        return cls(f.choice("role", CHAT_ROLES), f.text("text"), f.timestamp())


ControlMessage: TypeAlias = (
    "ClientHandshake | ServerHandshake | SetMode | Resize | Clipboard | Navigate | Command"
    " | Paste | Cursor | State | Notification | Chat"
)

_DECODERS: Final[dict[int, Any]] = {
    MessageType.MODE: SetMode.from_body,
    MessageType.RESIZE: Resize.from_body,
    MessageType.CLIPBOARD: Clipboard.from_body,
    MessageType.NAVIGATE: Navigate.from_body,
    MessageType.COMMAND: Command.from_body,
    MessageType.PASTE: Paste.from_body,
    MessageType.CURSOR: Cursor.from_body,
    MessageType.STATE: State.from_body,
    MessageType.NOTIFICATION: Notification.from_body,
    MessageType.CHAT: Chat.from_body,
}


def encode_control(message: ControlMessage, encoding: Encoding) -> tuple[int, bytes]:
    """(OpenMux Type byte, payload) for one control message."""
    return int(message.TYPE), encode_body(message.to_body(), encoding)


def check_outgoing(message: ControlMessage) -> None:
    """Refuse to send what our own decoder would refuse (a bad mode, a
    missing text): the mistake is the application's, so it is raised here."""
    try:
        type(message).from_body(message.to_body())
    except DecodeError as exc:
        raise LocalProtocolError(f"invalid {message.TYPE.name}: {exc.reason}") from None


def decode_control(
    type_: int, payload: bytes, encoding: Encoding, *, from_client: bool, limit: int = 1 << 20
) -> ControlMessage:
    """Decode one control message sent by a client (`from_client`) or a server.

    The type is checked before the payload is touched, and the size before
    it is decoded.
    """
    allowed = CLIENT_TYPES if from_client else SERVER_TYPES
    if type_ not in allowed:
        if type_ in CLIENT_TYPES | SERVER_TYPES:
            side = "server" if from_client else "client"
            raise DecodeError(f"{MessageType(type_).name} may only be sent by a {side}")
        raise UnknownMessage(f"unknown control message type {type_:#04x}")
    body = decode_body(payload, encoding, limit)
    if type_ == MessageType.VROOM_HANDSHAKE:
        return ClientHandshake.from_body(body) if from_client else ServerHandshake.from_body(body)
    return cast(ControlMessage, _DECODERS[type_](body))


__all__ = [
    "ACTIONS",
    "AGENT_STATES",
    "CAPABILITIES",
    "CHAT_ROLES",
    "CLIENT_TYPES",
    "CLIPBOARD_DIRECTIONS",
    "MAX_VIEWPORT",
    "MODES",
    "NOTIFICATION_TYPES",
    "SERVER_TYPES",
    "AgentInfo",
    "BrowserState",
    "Chat",
    "ClientHandshake",
    "ClientInfo",
    "Clipboard",
    "Command",
    "CommandId",
    "ControlMessage",
    "Cursor",
    "ErrorCode",
    "MessageType",
    "Mode",
    "Navigate",
    "Notification",
    "Paste",
    "Resize",
    "ServerHandshake",
    "SetMode",
    "State",
    "Timestamp",
    "Viewport",
    "check_outgoing",
    "decode_control",
    "encode_control",
    "parse_version",
]
