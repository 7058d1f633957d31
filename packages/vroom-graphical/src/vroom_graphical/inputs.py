"""Packed input on the `pointer` and `button` channels (big-endian, exact sizes).

The OpenMux Type byte is the input type and the payload is the packed struct,
so a MOUSE_MOVE costs 10 bytes on the wire (6-byte header + x u16 + y u16).
Decoders check the payload size against the type's fixed (or, for keys,
maximum) size before reading anything, and every reserved bit and range.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, TypeAlias

from .errors import DecodeError, LocalProtocolError, MessageTooLarge, UnknownMessage


class InputType(enum.IntEnum):
    MOUSE_MOVE = 0x01
    MOUSE_MOVE_REL = 0x02
    SCROLL = 0x03
    MOUSE_DOWN = 0x10
    MOUSE_UP = 0x11
    KEY_DOWN = 0x12
    KEY_UP = 0x13
    TOUCH_START = 0x14
    TOUCH_MOVE = 0x15
    TOUCH_END = 0x16


POINTER_TYPES: Final = frozenset({InputType.MOUSE_MOVE, InputType.MOUSE_MOVE_REL, InputType.SCROLL})
BUTTON_TYPES: Final = frozenset(InputType) - POINTER_TYPES


class MouseButton(enum.IntEnum):
    """DOM `MouseEvent.button` numbering."""

    LEFT = 0
    MIDDLE = 1
    RIGHT = 2
    BACK = 3
    FORWARD = 4


class Modifiers(enum.IntFlag):
    NONE = 0
    SHIFT = 0x01
    CTRL = 0x02
    ALT = 0x04
    META = 0x08
    CAPS_LOCK = 0x10


RESERVED_MODIFIER_BITS: Final = 0xE0
MAX_KEY_PAYLOAD: Final = 1 + 255 + 1 + 255 + 1

_XY = struct.Struct(">HH")
_DXDY = struct.Struct(">hh")
_XYB = struct.Struct(">HHB")
_TOUCH = struct.Struct(">BHHB")


def _u16(name: str, value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{name}={value} does not fit u16 (0..65535)")
    return value


def _i16(name: str, value: int) -> int:
    if not -0x8000 <= value <= 0x7FFF:
        raise LocalProtocolError(f"{name}={value} does not fit i16 (-32768..32767)")
    return value


def _u8(name: str, value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name}={value} does not fit u8 (0..255)")
    return value


@dataclass(frozen=True, slots=True)
class MouseMove:
    """Absolute position in agent viewport pixels."""

    TYPE: ClassVar[InputType] = InputType.MOUSE_MOVE
    x: int
    y: int

    def pack(self) -> bytes:
        return _XY.pack(_u16("x", self.x), _u16("y", self.y))


@dataclass(frozen=True, slots=True)
class MouseMoveRel:
    """Relative motion under pointer lock."""

    TYPE: ClassVar[InputType] = InputType.MOUSE_MOVE_REL
    dx: int
    dy: int

    def pack(self) -> bytes:
        return _DXDY.pack(_i16("dx", self.dx), _i16("dy", self.dy))


@dataclass(frozen=True, slots=True)
class Scroll:
    """Wheel motion in pixels; positive is right/down."""

    TYPE: ClassVar[InputType] = InputType.SCROLL
    dx: int
    dy: int

    def pack(self) -> bytes:
        return _DXDY.pack(_i16("dx", self.dx), _i16("dy", self.dy))


@dataclass(frozen=True, slots=True)
class MouseDown:
    """A press carries its position so that a lost MOUSE_MOVE never misplaces it."""

    TYPE: ClassVar[InputType] = InputType.MOUSE_DOWN
    x: int
    y: int
    button: MouseButton = MouseButton.LEFT

    def pack(self) -> bytes:
        return _XYB.pack(_u16("x", self.x), _u16("y", self.y), _button(self.button))


@dataclass(frozen=True, slots=True)
class MouseUp:
    TYPE: ClassVar[InputType] = InputType.MOUSE_UP
    x: int
    y: int
    button: MouseButton = MouseButton.LEFT

    def pack(self) -> bytes:
        return _XYB.pack(_u16("x", self.x), _u16("y", self.y), _button(self.button))


def _button(value: int) -> int:
    if value not in MouseButton._value2member_map_:
        raise LocalProtocolError(f"mouse button {value} is not 0..4")
    return int(value)


def _pack_key(key: str, code: str, modifiers: int) -> bytes:
    k, c = key.encode("utf-8"), code.encode("utf-8")
    if not 1 <= len(k) <= 255:
        raise LocalProtocolError(f"key {key!r} must be 1..255 bytes of UTF-8")
    if len(c) > 255:
        raise LocalProtocolError(f"code {code!r} must be at most 255 bytes of UTF-8")
    if not 0 <= modifiers <= 0xFF or modifiers & RESERVED_MODIFIER_BITS:
        raise LocalProtocolError(f"modifiers {modifiers:#x} set reserved bits 5-7")
    return bytes((len(k),)) + k + bytes((len(c),)) + c + bytes((modifiers,))


@dataclass(frozen=True, slots=True)
class KeyDown:
    """DOM `KeyboardEvent.key` / `.code`; `code` may be empty (virtual keyboards)."""

    TYPE: ClassVar[InputType] = InputType.KEY_DOWN
    key: str
    code: str = ""
    modifiers: Modifiers = Modifiers.NONE

    def pack(self) -> bytes:
        return _pack_key(self.key, self.code, self.modifiers)


@dataclass(frozen=True, slots=True)
class KeyUp:
    TYPE: ClassVar[InputType] = InputType.KEY_UP
    key: str
    code: str = ""
    modifiers: Modifiers = Modifiers.NONE

    def pack(self) -> bytes:
        return _pack_key(self.key, self.code, self.modifiers)


@dataclass(frozen=True, slots=True)
class TouchStart:
    """`pressure` is 0..255 on the wire; `force` gives the DOM's 0.0..1.0."""

    TYPE: ClassVar[InputType] = InputType.TOUCH_START
    id: int
    x: int
    y: int
    pressure: int = 255

    @property
    def force(self) -> float:
        return self.pressure / 255

    def pack(self) -> bytes:
        return _TOUCH.pack(
            _u8("id", self.id), _u16("x", self.x), _u16("y", self.y), _u8("pressure", self.pressure)
        )


@dataclass(frozen=True, slots=True)
class TouchMove:
    TYPE: ClassVar[InputType] = InputType.TOUCH_MOVE
    id: int
    x: int
    y: int
    pressure: int = 255

    @property
    def force(self) -> float:
        return self.pressure / 255

    def pack(self) -> bytes:
        return _TOUCH.pack(
            _u8("id", self.id), _u16("x", self.x), _u16("y", self.y), _u8("pressure", self.pressure)
        )


@dataclass(frozen=True, slots=True)
class TouchEnd:
    TYPE: ClassVar[InputType] = InputType.TOUCH_END
    id: int

    def pack(self) -> bytes:
        return bytes((_u8("id", self.id),))


InputMessage: TypeAlias = (
    "MouseMove | MouseMoveRel | Scroll | MouseDown | MouseUp | KeyDown | KeyUp"
    " | TouchStart | TouchMove | TouchEnd"
)
PointerMessage: TypeAlias = "MouseMove | MouseMoveRel | Scroll"
ButtonMessage: TypeAlias = (
    "MouseDown | MouseUp | KeyDown | KeyUp | TouchStart | TouchMove | TouchEnd"
)

_FIXED_SIZE: Final = {
    InputType.MOUSE_MOVE: 4,
    InputType.MOUSE_MOVE_REL: 4,
    InputType.SCROLL: 4,
    InputType.MOUSE_DOWN: 5,
    InputType.MOUSE_UP: 5,
    InputType.TOUCH_START: 6,
    InputType.TOUCH_MOVE: 6,
    InputType.TOUCH_END: 1,
}


def encode_input(message: InputMessage) -> tuple[int, bytes]:
    """(OpenMux Type byte, packed payload)."""
    return int(message.TYPE), message.pack()


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is not valid UTF-8") from None


def _decode_key(type_: InputType, data: bytes) -> KeyDown | KeyUp:
    n = len(data)
    if n < 3:
        raise DecodeError(f"{type_.name} needs at least 3 bytes, got {n}")
    key_len = data[0]
    if key_len == 0:
        raise DecodeError(f"{type_.name}: the key is empty")
    if 1 + key_len + 1 > n:
        raise DecodeError(f"{type_.name}: key_len {key_len} runs past the payload")
    code_len = data[1 + key_len]
    expected = 1 + key_len + 1 + code_len + 1
    if expected != n:
        raise DecodeError(f"{type_.name}: lengths say {expected} bytes, payload has {n}")
    key = _text(data[1 : 1 + key_len], f"{type_.name} key")
    code = _text(data[2 + key_len : 2 + key_len + code_len], f"{type_.name} code")
    modifiers = data[-1]
    if modifiers & RESERVED_MODIFIER_BITS:
        raise DecodeError(f"{type_.name}: modifiers {modifiers:#04x} set reserved bits 5-7")
    cls = KeyDown if type_ is InputType.KEY_DOWN else KeyUp
    return cls(key, code, Modifiers(modifiers))


def _fixed(kind: InputType, data: bytes) -> None:
    size = _FIXED_SIZE[kind]
    if len(data) != size:
        raise DecodeError(f"{kind.name} payload must be {size} bytes, got {len(data)}")


def _mouse_move(data: bytes) -> InputMessage:
    _fixed(InputType.MOUSE_MOVE, data)
    return MouseMove(*_XY.unpack(data))


def _mouse_move_rel(data: bytes) -> InputMessage:
    _fixed(InputType.MOUSE_MOVE_REL, data)
    return MouseMoveRel(*_DXDY.unpack(data))


def _scroll(data: bytes) -> InputMessage:
    _fixed(InputType.SCROLL, data)
    return Scroll(*_DXDY.unpack(data))


def _mouse_button(kind: InputType, data: bytes) -> tuple[int, int, MouseButton]:
    _fixed(kind, data)
    x, y, button = _XYB.unpack(data)
    if button > MouseButton.FORWARD:
        raise DecodeError(f"{kind.name}: mouse button {button} is not 0..4")
    return x, y, MouseButton(button)


def _mouse_down(data: bytes) -> InputMessage:
    return MouseDown(*_mouse_button(InputType.MOUSE_DOWN, data))


def _mouse_up(data: bytes) -> InputMessage:
    return MouseUp(*_mouse_button(InputType.MOUSE_UP, data))


def _key(kind: InputType) -> Callable[[bytes], InputMessage]:
    def decode(data: bytes) -> InputMessage:
        if len(data) > MAX_KEY_PAYLOAD:
            raise MessageTooLarge(
                f"{kind.name} payload of {len(data)} bytes exceeds {MAX_KEY_PAYLOAD}"
            )
        return _decode_key(kind, data)

    return decode


def _touch_start(data: bytes) -> InputMessage:
    _fixed(InputType.TOUCH_START, data)
    return TouchStart(*_TOUCH.unpack(data))


def _touch_move(data: bytes) -> InputMessage:
    _fixed(InputType.TOUCH_MOVE, data)
    return TouchMove(*_TOUCH.unpack(data))


def _touch_end(data: bytes) -> InputMessage:
    _fixed(InputType.TOUCH_END, data)
    return TouchEnd(data[0])


_DECODERS: Final[dict[int, Callable[[bytes], InputMessage]]] = {
    InputType.MOUSE_MOVE: _mouse_move,
    InputType.MOUSE_MOVE_REL: _mouse_move_rel,
    InputType.SCROLL: _scroll,
    InputType.MOUSE_DOWN: _mouse_down,
    InputType.MOUSE_UP: _mouse_up,
    InputType.KEY_DOWN: _key(InputType.KEY_DOWN),
    InputType.KEY_UP: _key(InputType.KEY_UP),
    InputType.TOUCH_START: _touch_start,
    InputType.TOUCH_MOVE: _touch_move,
    InputType.TOUCH_END: _touch_end,
}


def decode_input(type_: int, data: bytes) -> InputMessage:
    """Decode one packed input message; bad bytes raise `DecodeError` (400).

    The size is checked against the type's fixed size (or, for keys, the
    largest possible one) before anything is read.
    """
    decoder = _DECODERS.get(type_)
    if decoder is None:
        raise UnknownMessage(f"unknown input type {type_:#04x}")
    return decoder(data)


__all__ = [
    "BUTTON_TYPES",
    "MAX_KEY_PAYLOAD",
    "POINTER_TYPES",
    "RESERVED_MODIFIER_BITS",
    "ButtonMessage",
    "InputMessage",
    "InputType",
    "KeyDown",
    "KeyUp",
    "Modifiers",
    "MouseButton",
    "MouseDown",
    "MouseMove",
    "MouseMoveRel",
    "MouseUp",
    "PointerMessage",
    "Scroll",
    "TouchEnd",
    "TouchMove",
    "TouchStart",
    "decode_input",
    "encode_input",
]
