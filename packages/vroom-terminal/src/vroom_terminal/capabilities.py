"""CAPABILITY_OFFER / CAPABILITY_SELECT: the typed shapes and the resolution rules.

Negotiation is mandatory and one-shot: the client offers, the server answers
with the intersection (VROOM-TERMINAL.md §2, House §6.2/§6.11):

- kitty keyboard level: the highest level both support that is <= the
  client's preferred one; 0 means off;
- booleans are ANDed, lists are intersected in the client's order;
- SELECT mirrors the OFFER's shape with every key present (false and empty
  lists included), echoes `terminal`, says `protocol_version: 1`, and adds
  `auth: {required, methods}`;
- flow control: the granted window is > 0 and <= the offered one; a client
  that did not offer it gets `flow_control: null` (transport back-pressure only);
- unknown OFFER keys are ignored, omitted ones are false/empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openmux._record import Record

from .errors import DecodeError, ErrorCode
from .schema import (
    as_map,
    int_list,
    is_int,
    opt_bool,
    opt_map,
    opt_str,
    opt_str_list,
    req_bool,
    req_int,
    str_list,
)

PROTOCOL_VERSION = 1
DEFAULT_WINDOW = 1024 * 1024
"""The window our clients offer (House §6.1)."""
MAX_WINDOW = 2**62
MAX_LEVEL = 255

MOUSE_MODES = ("sgr", "kitty", "xterm", "urxvt", "sgr_pixels", "x10")
FEATURES = (
    "bracketed_paste",
    "osc52_clipboard",
    "focus_reporting",
    "hyperlinks",
    "progress_indicator",
)


def _intersect(client: Iterable[str], server: Iterable[str]) -> tuple[str, ...]:
    allowed = set(server)
    out: list[str] = []
    for item in client:
        if item in allowed and item not in out:
            out.append(item)
    return tuple(out)


# ----------------------------------------------------------------- shared


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class TerminalInfo(Record):
    """The client's terminal, as it describes itself; SELECT echoes it."""

    name: str = ""
    unicode_version: str = ""
    truecolor: bool = False

    def to_obj(self) -> dict[str, Any]:
        return {"name": self.name, "unicode_version": self.unicode_version,
                "truecolor": self.truecolor}  # fmt: skip

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> TerminalInfo:
        return cls(
            opt_str(obj, "name", "") or "",
            opt_str(obj, "unicode_version", "") or "",
            opt_bool(obj, "truecolor"),
        )


def _window(obj: Mapping[str, Any]) -> int | None:
    value = obj.get("flow_control")
    if value is None or value is False:
        return None
    fc = as_map(value, "'flow_control'")
    return req_int(fc, "window", 1, MAX_WINDOW)


# ------------------------------------------------------------------ offer


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class KittyKeyboardOffer(Record):
    supported_levels: tuple[int, ...] = ()
    preferred_level: int = 0


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class KittyOffer(Record):
    keyboard: KittyKeyboardOffer = field(default_factory=KittyKeyboardOffer)
    graphics: bool = False
    sixel: bool = False
    synchronized_output: bool = False


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExtensionsOffer(Record):
    structured_keys: bool = False
    reconnect: bool = False
    zstd_compression: bool = False
    flow_control: int | None = DEFAULT_WINDOW
    """The credit window offered in bytes; None = flow control not offered."""


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class CapabilityOffer(Record):
    protocol_version: int = PROTOCOL_VERSION
    terminal: TerminalInfo = field(default_factory=TerminalInfo)
    kitty: KittyOffer = field(default_factory=KittyOffer)
    mouse: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    extensions: ExtensionsOffer = field(default_factory=ExtensionsOffer)

    def to_obj(self) -> dict[str, Any]:
        ext: dict[str, Any] = {
            "structured_keys": self.extensions.structured_keys,
            "reconnect": self.extensions.reconnect,
            "zstd_compression": self.extensions.zstd_compression,
        }
        if self.extensions.flow_control is not None:
            ext["flow_control"] = {"window": self.extensions.flow_control}
        kb = self.kitty.keyboard
        return {
            "protocol_version": self.protocol_version,
            "terminal": self.terminal.to_obj(),
            "kitty": {
                "keyboard": {
                    "supported_levels": list(kb.supported_levels),
                    "preferred_level": kb.preferred_level,
                },
                "graphics": self.kitty.graphics,
                "sixel": self.kitty.sixel,
                "synchronized_output": self.kitty.synchronized_output,
            },
            "mouse": list(self.mouse),
            "features": list(self.features),
            "extensions": ext,
        }

    @classmethod
    def from_obj(cls, value: Any) -> CapabilityOffer:
        obj = as_map(value, "CAPABILITY_OFFER")
        version = req_int(obj, "protocol_version", 0, 2**31)
        if version != PROTOCOL_VERSION:
            raise DecodeError(
                f"protocol_version {version} is not supported (server speaks {PROTOCOL_VERSION})",
                ErrorCode.BAD_MESSAGE,
                fatal=True,
            )
        kitty = opt_map(obj, "kitty")
        keyboard = opt_map(kitty, "keyboard")
        levels = keyboard.get("supported_levels")
        preferred = keyboard.get("preferred_level")
        if preferred is not None and (not is_int(preferred) or not 0 <= preferred <= MAX_LEVEL):
            raise DecodeError(f"'preferred_level' must be an integer in 0..{MAX_LEVEL}")
        ext = opt_map(obj, "extensions")
        return cls(
            protocol_version=version,
            terminal=TerminalInfo.from_obj(opt_map(obj, "terminal")),
            kitty=KittyOffer(
                KittyKeyboardOffer(
                    int_list(levels, "supported_levels", 0, MAX_LEVEL)
                    if levels is not None
                    else (),
                    int(preferred) if preferred is not None else 0,
                ),
                opt_bool(kitty, "graphics"),
                opt_bool(kitty, "sixel"),
                opt_bool(kitty, "synchronized_output"),
            ),
            mouse=opt_str_list(obj, "mouse"),
            features=opt_str_list(obj, "features"),
            extensions=ExtensionsOffer(
                opt_bool(ext, "structured_keys"),
                opt_bool(ext, "reconnect"),
                opt_bool(ext, "zstd_compression"),
                _window(ext),
            ),
        )


# ---------------------------------------------------------------- support


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ServerCapabilities(Record):
    """What a server supports; `resolve()` intersects it with an OFFER.

    The defaults describe a byte-transparent server: Kitty keyboard and
    graphics, Sixel, mouse modes and the listed features are escape
    sequences that pass through the PTY untouched, so the server supports
    them whenever the client does. The extensions need server code, so they
    stay off until the application says it has them.
    """

    kitty_keyboard_levels: tuple[int, ...] = (1, 2, 3)
    kitty_graphics: bool = True
    sixel: bool = True
    synchronized_output: bool = True
    mouse: tuple[str, ...] = MOUSE_MODES
    features: tuple[str, ...] = FEATURES
    structured_keys: bool = False
    reconnect: bool = False
    zstd_compression: bool = False
    max_window: int = 4 * 1024 * 1024
    """The largest credit window granted (House §6.11: granted <= offered)."""

    def __post_init__(self) -> None:
        if self.max_window <= 0:
            raise ValueError("max_window must be > 0")


# ----------------------------------------------------------------- select


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class AuthInfo(Record):
    required: bool
    methods: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class KittySelect(Record):
    keyboard_level: int = 0
    """The chosen Kitty keyboard level, 0 = off."""
    graphics: bool = False
    sixel: bool = False
    synchronized_output: bool = False


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExtensionsSelect(Record):
    structured_keys: bool = False
    reconnect: bool = False
    zstd_compression: bool = False
    flow_control: int | None = None
    """The granted credit window in bytes; None = no flow control."""


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class CapabilitySelect(Record):
    auth: AuthInfo
    protocol_version: int = PROTOCOL_VERSION
    terminal: TerminalInfo = field(default_factory=TerminalInfo)
    kitty: KittySelect = field(default_factory=KittySelect)
    mouse: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    extensions: ExtensionsSelect = field(default_factory=ExtensionsSelect)

    def to_obj(self) -> dict[str, Any]:
        window = self.extensions.flow_control
        return {
            "protocol_version": self.protocol_version,
            "terminal": self.terminal.to_obj(),
            "kitty": {
                "keyboard": {"level": self.kitty.keyboard_level},
                "graphics": self.kitty.graphics,
                "sixel": self.kitty.sixel,
                "synchronized_output": self.kitty.synchronized_output,
            },
            "mouse": list(self.mouse),
            "features": list(self.features),
            "extensions": {
                "structured_keys": self.extensions.structured_keys,
                "reconnect": self.extensions.reconnect,
                "zstd_compression": self.extensions.zstd_compression,
                "flow_control": None if window is None else {"window": window},
            },
            "auth": {"required": self.auth.required, "methods": list(self.auth.methods)},
        }

    @classmethod
    def from_obj(cls, value: Any) -> CapabilitySelect:
        obj = as_map(value, "CAPABILITY_SELECT")
        version = req_int(obj, "protocol_version", 0, 2**31)
        auth = obj.get("auth")
        if auth is None:
            raise DecodeError("missing MUST key 'auth'")
        auth_map = as_map(auth, "'auth'")
        methods = auth_map.get("methods")
        kitty = opt_map(obj, "kitty")
        keyboard = opt_map(kitty, "keyboard")
        ext = opt_map(obj, "extensions")
        level = keyboard.get("level", 0)
        if not is_int(level) or not 0 <= level <= MAX_LEVEL:
            raise DecodeError(f"'level' must be an integer in 0..{MAX_LEVEL}")
        return cls(
            auth=AuthInfo(
                req_bool(auth_map, "required"),
                str_list(methods, "methods") if methods is not None else (),
            ),
            protocol_version=version,
            terminal=TerminalInfo.from_obj(opt_map(obj, "terminal")),
            kitty=KittySelect(
                int(level),
                opt_bool(kitty, "graphics"),
                opt_bool(kitty, "sixel"),
                opt_bool(kitty, "synchronized_output"),
            ),
            mouse=opt_str_list(obj, "mouse"),
            features=opt_str_list(obj, "features"),
            extensions=ExtensionsSelect(
                opt_bool(ext, "structured_keys"),
                opt_bool(ext, "reconnect"),
                opt_bool(ext, "zstd_compression"),
                _window(ext),
            ),
        )


def resolve(offer: CapabilityOffer, server: ServerCapabilities, auth: AuthInfo) -> CapabilitySelect:
    """The server's answer to an OFFER: every House resolution rule in one place."""
    kb = offer.kitty.keyboard
    common = set(kb.supported_levels) & set(server.kitty_keyboard_levels)
    eligible = [lv for lv in common if 1 <= lv <= kb.preferred_level]
    window = offer.extensions.flow_control
    granted = None if window is None else max(1, min(window, server.max_window))
    return CapabilitySelect(
        auth=auth,
        protocol_version=PROTOCOL_VERSION,
        terminal=offer.terminal,
        kitty=KittySelect(
            max(eligible, default=0),
            offer.kitty.graphics and server.kitty_graphics,
            offer.kitty.sixel and server.sixel,
            offer.kitty.synchronized_output and server.synchronized_output,
        ),
        mouse=_intersect(offer.mouse, server.mouse),
        features=_intersect(offer.features, server.features),
        extensions=ExtensionsSelect(
            offer.extensions.structured_keys and server.structured_keys,
            offer.extensions.reconnect and server.reconnect,
            offer.extensions.zstd_compression and server.zstd_compression,
            granted,
        ),
    )


__all__ = [
    "DEFAULT_WINDOW",
    "FEATURES",
    "MOUSE_MODES",
    "PROTOCOL_VERSION",
    "AuthInfo",
    "CapabilityOffer",
    "CapabilitySelect",
    "ExtensionsOffer",
    "ExtensionsSelect",
    "KittyKeyboardOffer",
    "KittyOffer",
    "KittySelect",
    "ServerCapabilities",
    "TerminalInfo",
    "resolve",
]
