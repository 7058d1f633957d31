"""Control message schemas: MUST fields, defaults, directions, encodings."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest
from vroom_graphical import (
    ACTIONS,
    Chat,
    ClientHandshake,
    Clipboard,
    Command,
    Cursor,
    DecodeError,
    LocalProtocolError,
    MessageTooLarge,
    MessageType,
    Navigate,
    Notification,
    Paste,
    Resize,
    ServerHandshake,
    SetMode,
    State,
    UnknownMessage,
    Viewport,
    decode_control,
    encode_control,
)
from vroom_graphical.errors import ErrorCode
from vroom_graphical.messages import BrowserState, check_outgoing, parse_version


def dec(type_: int, body: Any, *, from_client: bool = True, encoding: str = "json") -> Any:
    payload = json.dumps(body).encode() if encoding == "json" else cbor2.dumps(body)
    return decode_control(type_, payload, encoding, from_client=from_client)  # type: ignore[arg-type]


HELLO = {"version": "0.1.0", "capabilities": ["pointer"], "viewport": {"width": 800, "height": 600}}


def test_client_handshake_defaults() -> None:
    msg = dec(0x80, HELLO)
    assert msg == ClientHandshake("0.1.0", Viewport(800, 600), ("pointer",))
    assert msg.control_encoding == ("cbor",)
    assert msg.mode == "view"
    assert msg.client is None


def test_client_handshake_full() -> None:
    body = HELLO | {
        "control_encoding": ["json", "cbor"],
        "capabilities": ["pointer", "gamepad", "telepathy"],
        "viewport": {"width": 1, "height": 65535, "scale": 2, "pixelRatio": 1.5},
        "mode": "voice",
        "client": {"name": "web", "version": "1", "platform": "linux"},
        "extra": "ignored",
    }
    msg = dec(0x80, body)
    assert msg.capabilities == ("pointer", "gamepad")  # unknown names dropped
    assert msg.viewport == Viewport(1, 65535, 2, 1.5)
    assert msg.mode == "voice"
    assert msg.client.platform == "linux"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"version": None}, "'version' is required"),
        ({"version": 1}, "'version' must be a string"),
        ({"version": "1.0"}, "semantic version"),
        ({"capabilities": None}, "'capabilities' is required"),
        ({"capabilities": "pointer"}, "list of strings"),
        ({"viewport": None}, "'viewport' is required"),
        ({"viewport": [800, 600]}, "must be an object"),
        ({"viewport": {"width": 0, "height": 1}}, "'width' must be an integer in 1..65535"),
        ({"viewport": {"width": 1, "height": 70000}}, "'height'"),
        ({"viewport": {"width": 1, "height": 1, "scale": -1}}, "'scale' must be a positive"),
        ({"viewport": {"width": True, "height": 1}}, "'width'"),
        ({"mode": "drive"}, "'mode' must be one of view, interact, voice"),
        ({"client": "me"}, "'client' must be an object"),
        ({"control_encoding": "cbor"}, "list of strings"),
    ],
)
def test_client_handshake_must_fields(change: dict[str, Any], match: str) -> None:
    body = {k: v for k, v in (HELLO | change).items() if v is not None}
    with pytest.raises(DecodeError, match=match) as info:
        dec(0x80, body)
    assert info.value.code == ErrorCode.BAD_MESSAGE


def test_server_handshake() -> None:
    body = {
        "version": "0.1.3",
        "control_encoding": "cbor",
        "capabilities": ["cursor"],
        "viewport": {"width": 1280, "height": 720},
        "agent": {"name": "vroomd", "state": "idle", "browser": "chromium"},
    }
    msg = dec(0x80, body, from_client=False, encoding="cbor")
    assert isinstance(msg, ServerHandshake)
    assert msg.viewport == Viewport(1280, 720)
    assert msg.agent is not None and msg.agent.browser == "chromium"
    assert msg.to_body() == body
    with pytest.raises(DecodeError, match="control_encoding"):
        dec(0x80, body | {"control_encoding": ["cbor"]}, from_client=False)


@pytest.mark.parametrize(
    ("type_", "body", "expected"),
    [
        (0x81, {"mode": "interact"}, SetMode("interact")),
        (0x82, {"width": 10, "height": 20}, Resize(10, 20, 1.0, 1.0)),
        (0x82, {"width": 10, "height": 20, "scale": 0.5, "pixelRatio": 3}, Resize(10, 20, 0.5, 3)),
        (0x83, {"direction": "get"}, Clipboard("get", None, "text/plain")),
        (
            0x83,
            {"direction": "set", "text": "x", "mimeType": "text/html"},
            Clipboard("set", "x", "text/html"),
        ),
        (0x84, {"url": "https://a"}, Navigate("https://a", False)),
        (0x84, {"url": "https://a", "newTab": True}, Navigate("https://a", True)),
        (0x85, {"action": "back"}, Command("back", {}, None)),
        (
            0x85,
            {"id": "c1", "action": "click", "selector": "#b", "button": "right"},
            Command("click", {"selector": "#b", "button": "right"}, "c1"),
        ),
        (0x86, {"text": ""}, Paste("")),
        (0x93, {"role": "user", "text": "hi"}, Chat("user", "hi")),
        (0x93, {"role": "user", "text": "hi", "timestamp": 17}, Chat("user", "hi", 17)),
    ],
)
def test_client_messages(type_: int, body: dict[str, Any], expected: object) -> None:
    for encoding in ("json", "cbor"):
        assert dec(type_, body, encoding=encoding) == expected


@pytest.mark.parametrize(
    ("type_", "body", "expected"),
    [
        (0x90, {"type": "pointer", "x": 1, "y": 2}, Cursor("pointer", 1, 2, True)),
        (0x90, {"type": "text", "x": 1.5, "y": 2, "visible": False}, Cursor("text", 1.5, 2, False)),
        (0x91, {"state": "idle"}, State("idle")),
        (
            0x91,
            {
                "state": "browsing",
                "url": "u",
                "title": "t",
                "loading": True,
                "browser": {"canGoBack": True},
                "mode": "voice",
                "viewport": {"width": 5, "height": 6},
            },
            State("browsing", "u", "t", True, BrowserState(True, False), "voice", Viewport(5, 6)),
        ),
        (0x92, {"type": "info", "text": "x"}, Notification("info", "x")),
        (
            0x92,
            {"ref": 3, "type": "error", "text": "no", "code": 403, "data": [1]},
            Notification("error", "no", 3, None, [1], 403),
        ),
        (0x93, {"role": "agent", "text": "ok"}, Chat("agent", "ok")),
        (0x83, {"direction": "push", "text": "t"}, Clipboard("push", "t")),
    ],
)
def test_server_messages(type_: int, body: dict[str, Any], expected: object) -> None:
    for encoding in ("json", "cbor"):
        assert dec(type_, body, from_client=False, encoding=encoding) == expected


@pytest.mark.parametrize(
    ("type_", "body", "match"),
    [
        (0x81, {}, "MODE: 'mode' is required"),
        (0x81, {"mode": "fly"}, "must be one of"),
        (0x82, {"width": 1}, "'height' is required"),
        (0x83, {"direction": "set"}, "'text' is required"),
        (0x83, {"direction": "copy"}, "one of set, get, push"),
        (0x84, {"url": ""}, "must not be empty"),
        (0x84, {"url": "x", "newTab": "yes"}, "boolean"),
        (0x85, {}, "'action' is required"),
        (0x85, {"action": "type", "selector": "#a"}, "COMMAND type: 'text' is required"),
        (0x85, {"action": "scroll", "direction": "up"}, "'amount' is required"),
        (0x85, {"action": "scroll", "direction": "in", "amount": 1}, "direction"),
        (0x85, {"action": "select", "selector": "s", "values": "a"}, "list of strings"),
        (0x85, {"action": "wait", "selector": "s", "state": "gone"}, "state"),
        (0x85, {"action": "evaluate"}, "expression"),
        (0x85, {"action": "natural", "text": ""}, "must not be empty"),
        (0x85, {"action": "hover"}, "selector"),
        (0x85, {"action": "navigate"}, "url"),
        (0x85, {"id": 1.5, "action": "back"}, "'id' must be a string or an integer"),
        (0x86, {"text": 5}, "must be a string"),
        (0x93, {"role": "bot", "text": "x"}, "role"),
        (0x93, {"role": "user", "text": "x", "timestamp": []}, "timestamp"),
    ],
)
def test_client_message_errors(type_: int, body: dict[str, Any], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        dec(type_, body)


@pytest.mark.parametrize(
    ("type_", "body", "match"),
    [
        (0x90, {"type": "", "x": 1, "y": 1}, "must not be empty"),
        (0x90, {"type": "a", "x": "1", "y": 1}, "'x' must be a number"),
        (0x91, {}, "'state' is required"),
        (0x91, {"state": "sleeping"}, "must be one of idle"),
        (0x91, {"state": "idle", "browser": {"canGoBack": 1}}, "boolean"),
        (0x92, {"type": "fatal", "text": "x"}, "one of info"),
        (0x92, {"type": "info", "text": "x", "ref": [1]}, "'ref'"),
        (0x92, {"type": "info", "text": "x", "code": "403"}, "'code'"),
    ],
)
def test_server_message_errors(type_: int, body: dict[str, Any], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        dec(type_, body, from_client=False)


def test_command_errors_carry_the_id() -> None:
    with pytest.raises(DecodeError) as info:
        dec(0x85, {"id": "c7", "action": "click"})
    assert info.value.ref == "c7"
    with pytest.raises(UnknownMessage) as unknown:
        dec(0x85, {"id": 9, "action": "teleport"})
    assert unknown.value.ref == 9
    assert unknown.value.code == ErrorCode.UNKNOWN


def test_every_action_has_a_schema() -> None:
    assert ACTIONS == (
        "click",
        "type",
        "scroll",
        "navigate",
        "back",
        "forward",
        "refresh",
        "screenshot",
        "select",
        "hover",
        "wait",
        "evaluate",
        "natural",
    )


def test_directions() -> None:
    with pytest.raises(DecodeError, match="CURSOR may only be sent by a server"):
        dec(0x90, {"type": "a", "x": 1, "y": 1})
    with pytest.raises(DecodeError, match="MODE may only be sent by a client"):
        dec(0x81, {"mode": "view"}, from_client=False)
    with pytest.raises(UnknownMessage, match="0x87"):
        dec(0x87, {})
    with pytest.raises(UnknownMessage):
        decode_control(0x01, b"", "json", from_client=True)


def test_type_checked_before_payload() -> None:
    with pytest.raises(UnknownMessage):
        decode_control(0x99, b"\xff" * 10, "cbor", from_client=True)


def test_size_limit() -> None:
    payload = json.dumps({"text": "x" * 100}).encode()
    with pytest.raises(MessageTooLarge):
        decode_control(0x86, payload, "json", from_client=True, limit=50)


def test_not_a_map() -> None:
    with pytest.raises(DecodeError, match="must be a json map"):
        decode_control(0x86, b"[1]", "json", from_client=True)
    with pytest.raises(DecodeError, match="must be a cbor map"):
        decode_control(0x86, cbor2.dumps("x"), "cbor", from_client=True)
    with pytest.raises(DecodeError, match="keys must be text"):
        decode_control(0x86, cbor2.dumps({1: "x"}), "cbor", from_client=True)


def test_bytes_in_json_are_base64() -> None:
    note = Notification("success", "shot", 1, data={"mime": "image/png", "bytes": b"\x89PNG"})
    _, payload = encode_control(note, "json")
    assert json.loads(payload)["data"]["bytes"] == "iVBORw=="
    _, payload = encode_control(note, "cbor")
    assert cbor2.loads(payload)["data"]["bytes"] == b"\x89PNG"


def test_encode_control_uses_wire_names() -> None:
    type_, payload = encode_control(Resize(1, 2, 1.0, 2.0), "json")
    assert type_ == MessageType.RESIZE
    assert payload == b'{"width":1,"height":2,"scale":1.0,"pixelRatio":2.0}'
    _, payload = encode_control(Command("click", {"selector": "a"}, "x"), "json")
    assert payload == b'{"id":"x","action":"click","selector":"a"}'


def test_check_outgoing() -> None:
    check_outgoing(State("coding"))
    with pytest.raises(LocalProtocolError, match="invalid STATE"):
        check_outgoing(State("napping"))
    with pytest.raises(LocalProtocolError, match="invalid COMMAND"):
        check_outgoing(Command("click", {}))
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        encode_control(Notification("info", "x", data={"nan": float("nan")}), "json")
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        encode_control(Notification("info", "x", data=object()), "cbor")


def test_parse_version() -> None:
    assert parse_version("0.1.0") == (0, 1, 0)
    assert parse_version("1.2.3-rc.1+build") == (1, 2, 3)
    assert parse_version("1.2") is None
    assert parse_version("a.b.c") is None
    assert parse_version("1.2.٣") is None
