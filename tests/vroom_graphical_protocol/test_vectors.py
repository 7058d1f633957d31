"""The codecs against the golden vectors in tests/vectors/graphical/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openmux import encode_frame
from vroom_graphical import (
    GraphicalError,
    decode_body,
    decode_control,
    decode_input,
    encode_control,
    encode_input,
)

from .make_vectors import plain

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "graphical"
CONTROL = json.loads((VECTORS / "control.json").read_text(encoding="utf-8"))
INPUT = json.loads((VECTORS / "input.json").read_text(encoding="utf-8"))


def _id(v: dict[str, Any]) -> str:
    return str(v["name"])


@pytest.mark.parametrize("vector", CONTROL["vectors"], ids=_id)
def test_control_vector(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    message = decode_control(
        vector["type"], payload, vector["encoding"], from_client=vector["direction"] == "C->S"
    )
    assert type(message).__name__ == vector["message"]["class"]
    assert plain(decode_body(payload, vector["encoding"], 1 << 20)) == vector["body"]
    assert plain(message) == vector["message"]["fields"]
    assert encode_control(message, vector["encoding"]) == (vector["type"], payload)


def test_every_control_type_has_cbor_and_json_vectors() -> None:
    seen = {(v["type_name"], v["direction"], v["encoding"]) for v in CONTROL["vectors"]}
    expected = {
        ("VROOM_HANDSHAKE", "C->S"),
        ("VROOM_HANDSHAKE", "S->C"),
        ("MODE", "C->S"),
        ("RESIZE", "C->S"),
        ("CLIPBOARD", "C->S"),
        ("CLIPBOARD", "S->C"),
        ("NAVIGATE", "C->S"),
        ("COMMAND", "C->S"),
        ("PASTE", "C->S"),
        ("CURSOR", "S->C"),
        ("STATE", "S->C"),
        ("NOTIFICATION", "S->C"),
        ("CHAT", "C->S"),
        ("CHAT", "S->C"),
    }
    assert {(n, d, e) for n, d in expected for e in ("cbor", "json")} <= seen
    actions = {
        v["message"]["fields"]["action"] for v in CONTROL["vectors"] if v["type_name"] == "COMMAND"
    }
    assert len(actions) == 13


@pytest.mark.parametrize("vector", CONTROL["invalid"], ids=_id)
def test_invalid_control_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(GraphicalError) as info:
        decode_control(
            vector["type"],
            bytes.fromhex(vector["hex"]),
            vector["encoding"],
            from_client=vector["direction"] == "C->S",
        )
    assert info.value.code == vector["code"]


@pytest.mark.parametrize("vector", INPUT["vectors"], ids=_id)
def test_input_vector(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])
    message = decode_input(vector["type"], payload)
    assert type(message).__name__ == vector["message"]["class"]
    assert plain(message) == vector["message"]["fields"]
    assert encode_input(message) == (vector["type"], payload)
    frame = encode_frame(vector["frame_channel_id"], vector["type"], payload)
    assert frame.hex() == vector["frame_hex"]


def test_mouse_move_vector_is_the_spec_example() -> None:
    first = INPUT["vectors"][0]
    assert first["frame_hex"] == "0101000000040200012c"  # 01 01 00 00 00 04 02 00 01 2c
    assert len(bytes.fromhex(first["frame_hex"])) == 10


def test_every_input_type_has_a_vector() -> None:
    assert {v["type"] for v in INPUT["vectors"]} == {
        1,
        2,
        3,
        0x10,
        0x11,
        0x12,
        0x13,
        0x14,
        0x15,
        0x16,
    }


@pytest.mark.parametrize("vector", INPUT["invalid"], ids=_id)
def test_invalid_input_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(GraphicalError) as info:
        decode_input(vector["type"], bytes.fromhex(vector["hex"]))
    assert info.value.code == vector["code"]
