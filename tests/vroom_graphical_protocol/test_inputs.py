"""Packed input codecs: exact layouts, ranges, reserved bits, size checks."""

from __future__ import annotations

import pytest
from vroom_graphical import (
    DecodeError,
    InputType,
    KeyDown,
    KeyUp,
    LocalProtocolError,
    MessageTooLarge,
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
    UnknownMessage,
    decode_input,
    encode_input,
)
from vroom_graphical.errors import ErrorCode

CASES = [
    (MouseMove(512, 300), 0x01, "0200012c"),
    (MouseMove(0xFFFF, 0), 0x01, "ffff0000"),
    (MouseMoveRel(-1, 32767), 0x02, "ffff7fff"),
    (Scroll(0, -120), 0x03, "0000ff88"),
    (MouseDown(10, 20, MouseButton.LEFT), 0x10, "000a001400"),
    (MouseUp(10, 20, MouseButton.FORWARD), 0x11, "000a001404"),
    (KeyDown("a", "KeyA"), 0x12, "0161044b65794100"),
    (KeyUp("é", "", Modifiers.SHIFT | Modifiers.CAPS_LOCK), 0x13, "02c3a90011"),
    (TouchStart(3, 100, 200, 128), 0x14, "03006400c880"),
    (TouchMove(255, 1, 2, 0), 0x15, "ff0001000200"),
    (TouchEnd(7), 0x16, "07"),
]


@pytest.mark.parametrize(("message", "type_", "payload"), CASES)
def test_round_trip(message: object, type_: int, payload: str) -> None:
    assert encode_input(message) == (type_, bytes.fromhex(payload))  # type: ignore[arg-type]
    assert decode_input(type_, bytes.fromhex(payload)) == message


def test_mouse_move_is_ten_bytes_on_the_wire() -> None:
    from openmux import encode_frame

    type_, payload = encode_input(MouseMove(512, 300))
    frame = encode_frame(1, type_, payload)
    assert frame == bytes.fromhex("01 01 00 00 00 04 02 00 01 2c")


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        (0x01, ""),
        (0x01, "000000"),
        (0x01, "0000000000"),
        (0x03, "00"),
        (0x10, "00000000"),
        (0x11, "000000000000"),
        (0x14, "0000000000"),
        (0x16, ""),
        (0x16, "0000"),
    ],
)
def test_wrong_sizes(type_: int, payload: str) -> None:
    with pytest.raises(DecodeError, match="must be"):
        decode_input(type_, bytes.fromhex(payload))


def test_bad_mouse_button() -> None:
    with pytest.raises(DecodeError, match="mouse button 5"):
        decode_input(0x10, bytes.fromhex("0000000005"))
    with pytest.raises(LocalProtocolError):
        encode_input(MouseDown(0, 0, 9))  # type: ignore[arg-type]


@pytest.mark.parametrize("bit", [0x20, 0x40, 0x80])
def test_reserved_modifier_bits(bit: int) -> None:
    payload = bytes.fromhex("0161044b657941") + bytes((bit | 0x01,))
    with pytest.raises(DecodeError, match="reserved bits"):
        decode_input(0x12, payload)
    with pytest.raises(LocalProtocolError, match="reserved"):
        encode_input(KeyDown("a", "KeyA", Modifiers(bit)))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("0000", "at least 3"),
        ("00000000", "key is empty"),
        ("05610000", "runs past"),
        ("0161000000", "lengths say"),
        ("01610300", "lengths say"),
        ("01ff0000", "not valid UTF-8"),
        ("016102c32800", "not valid UTF-8"),
    ],
)
def test_bad_keys(payload: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_input(0x13, bytes.fromhex(payload))


def test_key_size_checked_before_reading() -> None:
    with pytest.raises(MessageTooLarge) as info:
        decode_input(0x12, b"\x01" * 514)
    assert info.value.code == ErrorCode.TOO_LARGE
    # the largest legal key message decodes
    big = KeyDown("k" * 255, "c" * 255, Modifiers.META)
    assert decode_input(*encode_input(big)) == big


def test_unknown_type() -> None:
    with pytest.raises(UnknownMessage) as info:
        decode_input(0x04, b"")
    assert info.value.code == ErrorCode.UNKNOWN


@pytest.mark.parametrize(
    "message",
    [
        MouseMove(-1, 0),
        MouseMove(0, 65536),
        MouseMoveRel(32768, 0),
        Scroll(0, -32769),
        TouchStart(256, 0, 0),
        TouchMove(0, 0, 0, 300),
        TouchEnd(-1),
        KeyDown(""),
        KeyDown("x" * 256),
        KeyUp("a", "c" * 256),
    ],
)
def test_encode_ranges(message: object) -> None:
    with pytest.raises(LocalProtocolError):
        encode_input(message)  # type: ignore[arg-type]


def test_touch_force() -> None:
    assert TouchStart(0, 0, 0, 255).force == 1.0
    assert TouchMove(0, 0, 0, 0).force == 0.0


def test_types_are_the_spec_numbers() -> None:
    assert [t.value for t in InputType] == [1, 2, 3, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16]
