"""Writes tests/vectors/graphical/*.json from the codecs.

Run once when a vector is added: `.venv/bin/python -m tests.vroom_graphical_protocol.make_vectors`.
The files are then the reference: test_vectors.py checks the codecs against
them, so a codec change that alters bytes fails until the vectors are
deliberately regenerated and the diff reviewed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

from openmux import encode_frame
from vroom_graphical import (
    AgentInfo,
    BrowserState,
    Chat,
    ClientHandshake,
    ClientInfo,
    Clipboard,
    Command,
    Cursor,
    KeyDown,
    KeyUp,
    Modifiers,
    MouseButton,
    MouseDown,
    MouseMove,
    MouseMoveRel,
    MouseUp,
    Navigate,
    Notification,
    Paste,
    Resize,
    Scroll,
    ServerHandshake,
    SetMode,
    State,
    TouchEnd,
    TouchMove,
    TouchStart,
    Viewport,
    decode_body,
    decode_control,
    encode_control,
    encode_input,
)
from vroom_graphical.errors import ErrorCode

OUT = Path(__file__).resolve().parents[1] / "vectors" / "graphical"


def plain(value: Any) -> Any:
    """JSON view of decoded values: bytes as {"$bytes": hex}, enums as numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


HELLO = ClientHandshake(
    "0.1.0",
    Viewport(1440, 900, 1.0, 2.0),
    ("pointer", "keyboard", "touch", "clipboard", "command", "cursor"),
    ("cbor", "json"),
    "view",
    ClientInfo("vroom-web", "0.1.0", "linux"),
)
REPLY = ServerHandshake(
    "0.1.0",
    "cbor",
    ("pointer", "keyboard", "touch", "clipboard", "command", "cursor"),
    Viewport(1280, 720),
    AgentInfo("vroomd", "idle", "chromium"),
)
CONTROL = [
    ("client VROOM_HANDSHAKE (House: always JSON; CBOR tolerated)", "C->S", HELLO),
    (
        "client VROOM_HANDSHAKE, minimal",
        "C->S",
        ClientHandshake("0.1.0", Viewport(800, 600), ("pointer",)),
    ),
    ("server VROOM_HANDSHAKE", "S->C", REPLY),
    ("MODE interact", "C->S", SetMode("interact")),
    ("MODE view", "C->S", SetMode("view")),
    ("MODE voice", "C->S", SetMode("voice")),
    ("RESIZE", "C->S", Resize(1024, 768, 1.0, 2.0)),
    ("CLIPBOARD set", "C->S", Clipboard("set", "hello", "text/plain")),
    ("CLIPBOARD get", "C->S", Clipboard("get")),
    ("CLIPBOARD push", "S->C", Clipboard("push", "from the page")),
    ("NAVIGATE", "C->S", Navigate("https://example.com/", False)),
    ("NAVIGATE new tab", "C->S", Navigate("https://example.com/docs", True)),
    ("COMMAND click", "C->S", Command("click", {"selector": "#submit"}, "c1")),
    ("COMMAND type", "C->S", Command("type", {"selector": "input[name=q]", "text": "vroom"}, "c2")),
    ("COMMAND scroll", "C->S", Command("scroll", {"direction": "down", "amount": 400}, "c3")),
    ("COMMAND navigate", "C->S", Command("navigate", {"url": "https://example.com/"}, "c4")),
    ("COMMAND back", "C->S", Command("back", {}, "c5")),
    ("COMMAND forward", "C->S", Command("forward", {}, "c6")),
    ("COMMAND refresh", "C->S", Command("refresh", {}, "c7")),
    ("COMMAND screenshot", "C->S", Command("screenshot", {}, "c8")),
    ("COMMAND select", "C->S", Command("select", {"selector": "#c", "values": ["a", "b"]}, "c9")),
    ("COMMAND hover", "C->S", Command("hover", {"selector": "nav a"}, 10)),
    ("COMMAND wait", "C->S", Command("wait", {"selector": ".ready", "state": "visible"}, 11)),
    ("COMMAND evaluate", "C->S", Command("evaluate", {"expression": "document.title"}, 12)),
    ("COMMAND natural", "C->S", Command("natural", {"text": "open the pricing page"}, 13)),
    ("COMMAND without id", "C->S", Command("refresh")),
    ("PASTE", "C->S", Paste("pasted text ✓")),
    ("CURSOR", "S->C", Cursor("pointer", 640, 360, True)),
    ("CURSOR hidden", "S->C", Cursor("text", 12.5, 7, False)),
    ("STATE minimal", "S->C", State("idle")),
    ("STATE acknowledging MODE (House)", "S->C", State("idle", mode="interact")),
    (
        "STATE full",
        "S->C",
        State(
            "browsing",
            "https://example.com/",
            "Example Domain",
            False,
            BrowserState(True, False),
            "view",
            Viewport(1024, 768),
        ),
    ),
    ("NOTIFICATION success", "S->C", Notification("success", "click: done", "c1")),
    (
        "NOTIFICATION error with code (House)",
        "S->C",
        Notification(
            "error",
            "COMMAND evaluate is not allowed on this server",
            12,
            None,
            None,
            ErrorCode.FORBIDDEN,
        ),
    ),
    (
        "NOTIFICATION screenshot data (House)",
        "S->C",
        Notification(
            "success",
            "screenshot: done",
            "c8",
            1700000000000,
            {"mime": "image/png", "bytes": bytes.fromhex("89504e470d0a1a0a")},
        ),
    ),
    (
        "NOTIFICATION evaluate data (House)",
        "S->C",
        Notification("success", "evaluate: done", 12, None, "Example Domain"),
    ),
    ("NOTIFICATION info, no ref", "S->C", Notification("info", "agent is thinking")),
    ("CHAT user", "C->S", Chat("user", "please open the docs")),
    ("CHAT agent", "S->C", Chat("agent", "Opening them now.", 1700000000000)),
    ("CHAT system", "S->C", Chat("system", "session recorded")),
]

BAD_CONTROL = [
    # (name, type, direction, encoding, payload hex, code)
    ("MODE missing mode", 0x81, "C->S", "json", b"{}".hex(), ErrorCode.BAD_MESSAGE),
    ("MODE bad value", 0x81, "C->S", "cbor", "a1646d6f6465656472697665", ErrorCode.BAD_MESSAGE),
    (
        "COMMAND unknown action",
        0x85,
        "C->S",
        "json",
        b'{"id":"z","action":"teleport"}'.hex(),
        ErrorCode.UNKNOWN,
    ),
    (
        "COMMAND click without selector",
        0x85,
        "C->S",
        "json",
        b'{"id":"z","action":"click"}'.hex(),
        ErrorCode.BAD_MESSAGE,
    ),
    (
        "CURSOR sent by a client",
        0x90,
        "C->S",
        "json",
        b'{"type":"a","x":1,"y":1}'.hex(),
        ErrorCode.BAD_MESSAGE,
    ),
    ("unknown type 0x87", 0x87, "C->S", "json", b"{}".hex(), ErrorCode.UNKNOWN),
    ("CBOR tag", 0x86, "C->S", "cbor", "a16474657874c06178", ErrorCode.BAD_MESSAGE),
    (
        "CBOR array declaring 2^32 items",
        0x86,
        "C->S",
        "cbor",
        "9b00000000ffffffff",
        ErrorCode.BAD_MESSAGE,
    ),
    ("JSON NaN", 0x82, "C->S", "json", b'{"width":NaN,"height":1}'.hex(), ErrorCode.BAD_MESSAGE),
    ("not a map", 0x86, "C->S", "json", b'["text"]'.hex(), ErrorCode.BAD_MESSAGE),
]

POINTER_CHANNEL, BUTTON_CHANNEL = 1, 2
INPUT = [
    ("MOUSE_MOVE (the spec's 10-byte example)", MouseMove(512, 300)),
    ("MOUSE_MOVE origin", MouseMove(0, 0)),
    ("MOUSE_MOVE max", MouseMove(65535, 65535)),
    ("MOUSE_MOVE_REL", MouseMoveRel(-5, 12)),
    ("MOUSE_MOVE_REL extremes", MouseMoveRel(-32768, 32767)),
    ("SCROLL down", Scroll(0, 120)),
    ("SCROLL left", Scroll(-40, 0)),
    ("MOUSE_DOWN left", MouseDown(100, 200, MouseButton.LEFT)),
    ("MOUSE_DOWN right", MouseDown(100, 200, MouseButton.RIGHT)),
    ("MOUSE_UP middle", MouseUp(100, 200, MouseButton.MIDDLE)),
    ("MOUSE_UP forward", MouseUp(1, 2, MouseButton.FORWARD)),
    ("MOUSE_DOWN back", MouseDown(1, 2, MouseButton.BACK)),
    ("KEY_DOWN a", KeyDown("a", "KeyA")),
    ("KEY_DOWN A with Shift", KeyDown("A", "KeyA", Modifiers.SHIFT)),
    ("KEY_DOWN Ctrl+a", KeyDown("a", "KeyA", Modifiers.CTRL)),
    ("KEY_UP Enter", KeyUp("Enter", "Enter")),
    ("KEY_DOWN all modifiers", KeyDown("Meta", "MetaLeft", Modifiers(0x1F))),
    ("KEY_DOWN non-ASCII key, empty code", KeyDown("é", "")),
    ("KEY_UP emoji", KeyUp("😀", "", Modifiers.ALT)),
    ("TOUCH_START", TouchStart(0, 300, 400, 128)),
    ("TOUCH_MOVE", TouchMove(0, 310, 420, 255)),
    ("TOUCH_END", TouchEnd(0)),
    ("TOUCH_START second finger", TouchStart(1, 10, 20, 0)),
]
BAD_INPUT = [
    ("MOUSE_MOVE short", 0x01, "000000", ErrorCode.BAD_MESSAGE),
    ("MOUSE_MOVE long", 0x01, "0000000000", ErrorCode.BAD_MESSAGE),
    ("MOUSE_DOWN button 5", 0x10, "0000000005", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN reserved modifier bit 5", 0x12, "0161044b65794120", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN reserved modifier bit 7", 0x12, "0161044b65794180", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN empty key", 0x12, "000000", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN key_len past the end", 0x12, "09610000", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN trailing byte", 0x12, "0161000000", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN invalid UTF-8", 0x12, "01ff0000", ErrorCode.BAD_MESSAGE),
    ("KEY_DOWN over 513 bytes", 0x12, "01" * 514, ErrorCode.TOO_LARGE),
    ("TOUCH_END empty", 0x16, "", ErrorCode.BAD_MESSAGE),
    ("unknown type 0x04", 0x04, "", ErrorCode.UNKNOWN),
]


def control_vectors() -> dict[str, Any]:
    vectors = []
    for name, direction, message in CONTROL:
        for encoding in ("cbor", "json"):
            type_, payload = encode_control(message, encoding)
            decoded = decode_control(type_, payload, encoding, from_client=direction == "C->S")
            vectors.append(
                {
                    "name": f"{name} ({encoding.upper()})",
                    "type": type_,
                    "type_name": message.TYPE.name,
                    "direction": direction,
                    "encoding": encoding,
                    "hex": payload.hex(),
                    "body": plain(decode_body(payload, encoding, 1 << 20)),
                    "message": {"class": type(message).__name__, "fields": plain(decoded)},
                }
            )
    return {
        "description": "VROOM-Graphical control messages on vroom.graphical.control: the OpenMux"
        " Type byte is `type`, the payload is `hex`. `body` is the decoded map (CBOR byte"
        ' strings as {"$bytes": hex}); `message` is the decoded dataclass. Under JSON a'
        " byte string travels as base64 text, so its decoded `fields` hold that text."
        " `invalid` vectors must be refused with the given NOTIFICATION `code`.",
        "vectors": vectors,
        "invalid": [
            {"name": n, "type": t, "direction": d, "encoding": e, "hex": h, "code": int(c)}
            for n, t, d, e, h, c in BAD_CONTROL
        ],
    }


def input_vectors() -> dict[str, Any]:
    vectors = []
    for name, message in INPUT:
        type_, payload = encode_input(message)
        pointer = type_ < 0x10
        channel_id = POINTER_CHANNEL if pointer else BUTTON_CHANNEL
        vectors.append(
            {
                "name": name,
                "channel": "pointer" if pointer else "button",
                "type": type_,
                "type_name": message.TYPE.name,
                "hex": payload.hex(),
                "frame_channel_id": channel_id,
                "frame_hex": encode_frame(channel_id, type_, payload).hex(),
                "message": {"class": type(message).__name__, "fields": plain(message)},
            }
        )
    return {
        "description": "VROOM-Graphical packed input (big-endian). `hex` is the payload,"
        " `frame_hex` the whole OpenMux frame on a channel with id `frame_channel_id`."
        " `invalid` payloads must be refused with the given code.",
        "vectors": vectors,
        "invalid": [{"name": n, "type": t, "hex": h, "code": int(c)} for n, t, h, c in BAD_INPUT],
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for filename, data in (("control.json", control_vectors()), ("input.json", input_vectors())):
        text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
        (OUT / filename).write_text(text, encoding="utf-8")
        print(OUT / filename, len(data["vectors"]), "vectors", len(data["invalid"]), "invalid")


if __name__ == "__main__":
    main()
