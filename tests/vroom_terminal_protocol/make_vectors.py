"""Writes tests/vectors/terminal/*.json (one file per message) from the codecs.

Run when a vector is added: `.venv/bin/python -m tests.vroom_terminal_protocol.make_vectors`.
The files are then the reference: test_vectors.py checks the codecs against
them both ways, so a codec change that alters bytes fails until the vectors
are deliberately regenerated and the diff reviewed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2
from vroom_terminal import (
    AuthInfo,
    AuthRequest,
    AuthResponse,
    CapabilityOffer,
    CapabilityOfferMessage,
    CapabilitySelectMessage,
    ClientHello,
    Encoding,
    Error,
    ExecRequest,
    ExitStatus,
    ExtensionsOffer,
    KittyKeyboardOffer,
    KittyOffer,
    MessageType,
    PtyRequest,
    PtyResponse,
    ServerCapabilities,
    ServerHello,
    SetEnv,
    ShellRequest,
    Signal,
    TerminalInfo,
    WindowResize,
    encode_message,
    encode_tlv,
    encode_window_ack,
    resolve,
)
from vroom_terminal.codec import encode_payload

OUT = Path(__file__).resolve().parents[1] / "vectors" / "terminal"
FORMAT = "vroom-terminal-vectors/1"


def plain(value: Any) -> Any:
    """JSON view of a decoded message: dataclasses as maps, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


FULL_OFFER = CapabilityOffer(
    terminal=TerminalInfo("xterm-256color", "15.1", True),
    kitty=KittyOffer(KittyKeyboardOffer((1, 2, 3), 3), True, True, True),
    mouse=("sgr", "kitty", "xterm"),
    features=("bracketed_paste", "osc52_clipboard", "focus_reporting", "hyperlinks",
              "progress_indicator"),
    extensions=ExtensionsOffer(True, True, True, 1024 * 1024),
)  # fmt: skip
MINIMAL_OFFER = CapabilityOffer(extensions=ExtensionsOffer(flow_control=None))
SERVER = ServerCapabilities(kitty_keyboard_levels=(1, 2), sixel=False, zstd_compression=True,
                            mouse=("xterm", "sgr"), max_window=512 * 1024)  # fmt: skip

AUTH_BOTH = AuthInfo(True, ("token", "password"))

# name, message, direction, note
MESSAGES: dict[str, list[tuple[str, Any, str, str]]] = {
    "hello": [
        ("client HELLO", ClientHello(("cbor", "json")), "C->S", "always JSON"),
        ("server HELLO choosing CBOR", ServerHello("cbor"), "S->C", "always JSON"),
        ("server HELLO choosing JSON", ServerHello("json"), "S->C", "always JSON"),
    ],
    "capability_offer": [
        ("the spec's example offer, with flow control", CapabilityOfferMessage(FULL_OFFER),
         "C->S", ""),
        ("minimal offer: no flow control, everything off", CapabilityOfferMessage(MINIMAL_OFFER),
         "C->S", ""),
    ],
    "capability_select": [
        ("SELECT for the example offer against a server without sixel, kitty levels 1-2, "
         "512 KiB max window; auth required",
         CapabilitySelectMessage(resolve(FULL_OFFER, SERVER, AUTH_BOTH)),
         "S->C", "kitty level 2 (highest common <= preferred 3); window 512 KiB (<= offered)"),
        ("SELECT for the minimal offer, auth not required (mux authenticated)",
         CapabilitySelectMessage(resolve(MINIMAL_OFFER, SERVER, AuthInfo(False))), "S->C",
         "every key present; flow_control null"),
    ],
    "auth_request": [
        ("token", AuthRequest("token", token="0123456789abcdef"), "C->S", ""),
        ("password", AuthRequest("password", username="ann", password="hunter2"), "C->S", ""),
    ],
    "auth_response": [
        ("success", AuthResponse(True), "S->C", ""),
        ("failure (ERROR 401 and CLOSE_CHANNEL follow)",
         AuthResponse(False, "authentication failed"), "S->C", ""),
    ],
    "pty_request": [
        ("interactive", PtyRequest("xterm-256color", 24, 80, 640, 480), "C->S", ""),
        ("raw PTY for a pipe (`vroom term URL -- cmd`)",
         PtyRequest("dumb", 24, 80, 0, 0, {"raw": True}), "C->S", "cfmakeraw on the PTY"),
    ],
    "pty_response": [
        ("granted, first session", PtyResponse(True, "vroom.terminal.pty"), "S->C", ""),
        ("granted, session #2, reconnect fields",
         PtyResponse(True, "vroom.terminal.pty#2", None, "s-42", "r-secret"), "S->C",
         "session_id/resume_token reserved for reconnect"),
        ("refused (ERROR 503 and CLOSE_CHANNEL follow)",
         PtyResponse(False, None, "no PTY available"), "S->C", ""),
    ],
    "window_resize": [
        ("24x80, 640x480 px", WindowResize(24, 80, 640, 480), "C->S", "binary, 4 x u16 BE"),
        ("max values", WindowResize(65535, 65535, 65535, 65535), "C->S", "binary"),
    ],
    "signal": [
        ("SIGINT", Signal(2), "C->S", "binary, Linux numbering"),
        ("SIGUSR1 (10 on Linux, 30 on macOS)", Signal(10), "C->S", "binary, Linux numbering"),
        ("SIGTERM", Signal(15), "C->S", "binary"),
    ],
    "set_env": [
        ("allowed and refused names", SetEnv({"LANG": "C.UTF-8", "LC_ALL": "C", "PATH": "/x"}),
         "C->S", "PATH is refused with one non-fatal ERROR 403"),
    ],
    "shell_request": [("shell", ShellRequest(), "C->S", "empty map")],
    "exec_request": [
        ("command for the user's shell", ExecRequest(command="ls -l /tmp"), "C->S", ""),
        ("argv", ExecRequest(argv=("printf", "%s\\n", "héllo")), "C->S", ""),
    ],
    "exit_status": [
        ("exit 42", ExitStatus(42, None, False, 1234), "S->C", "output_bytes: ours, optional"),
        ("killed by SIGTERM", ExitStatus(None, "TERM", False, 0), "S->C", "name without SIG"),
        ("SIGSEGV with core", ExitStatus(None, "SEGV", True), "S->C", ""),
    ],
    "error": [
        ("refused SET_ENV names", Error(403, "SET_ENV refused: PATH, LD_PRELOAD", False,
                                        ("PATH", "LD_PRELOAD")), "both", "names: ours, optional"),
        ("out of state", Error(409, "SHELL_REQUEST is not allowed in state PTYRequest", False),
         "both", ""),
        ("refused HELLO version (sent in JSON)", Error(400, "version 2 is not supported", True),
         "S->C", "before an encoding is agreed: JSON"),
        ("no common encoding (sent in JSON)", Error(415, "no common control encoding", True),
         "S->C", "before an encoding is agreed: JSON"),
    ],
}  # fmt: skip

# Vectors a decoder must refuse: (name, mux type, hex of the whole message, code, encoding)
INVALID: dict[str, list[tuple[str, int, str, int, str]]] = {
    "hello": [
        ("not JSON", 0x01, encode_tlv(0x01, b"\xa0").hex(), 400, "json"),
        ("no control_encoding", 0x01,
         encode_tlv(0x01, b'{"protocol":"vroom-terminal","version":1}').hex(), 400, "json"),
    ],
    "pty_request": [
        ("missing pixel_height", 0x20, encode_tlv(0x20, cbor2.dumps(
            {"term": "x", "rows": 1, "cols": 1, "pixel_width": 0})).hex(), 400, "cbor"),
        ("TLV length larger than the payload", 0x20, "000000200000000aa0", 400, "cbor"),
        ("mux Type byte is not the TLV's low byte", 0x21,
         encode_tlv(0x20, b"\xa0").hex(), 400, "cbor"),
    ],
    "window_resize": [("7 bytes", 0x30, encode_tlv(0x30, b"\x00" * 7).hex(), 400, "binary")],
    "signal": [
        ("signal 0", 0x31, encode_tlv(0x31, b"\x00").hex(), 400, "binary"),
        ("2 bytes", 0x31, encode_tlv(0x31, b"\x02\x02").hex(), 400, "binary"),
    ],
    "exec_request": [
        ("both command and argv", 0x51,
         encode_tlv(0x51, cbor2.dumps({"command": "a", "argv": ["a"]})).hex(), 400, "cbor"),
    ],
    "unknown": [("TLV type 0x12", 0x12, encode_tlv(0x12, b"").hex(), 404, "cbor")],
}  # fmt: skip


def _encodings(message: Any) -> list[Encoding | None]:
    if isinstance(message, ClientHello | ServerHello | WindowResize | Signal):
        return [None]
    if isinstance(message, Error) and message.code in (400, 415) and message.fatal:
        return [None]
    return [Encoding.CBOR, Encoding.JSON]


def _encoding_name(message: Any, encoding: Encoding | None) -> str:
    if isinstance(message, WindowResize | Signal):
        return "binary"
    return "json" if encoding is None else encoding.value


def build() -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for key, items in MESSAGES.items():
        vectors = []
        type_ = items[0][1].TYPE
        for name, message, direction, note in items:
            for encoding in _encodings(message):
                mux_type, data = encode_message(message, encoding)
                enc = _encoding_name(message, encoding)
                body: Any
                if enc == "binary":
                    body = {"payload_hex": data[8:].hex()}
                else:
                    body = message.to_obj()
                    assert data[8:] == encode_payload(body, encoding or Encoding.JSON)
                vectors.append({
                    "name": f"{name} ({enc})",
                    "direction": direction,
                    "encoding": enc,
                    "mux_type": mux_type,
                    "hex": data.hex(),
                    "body": body,
                    "message": {"class": type(message).__name__, **plain(message)},
                    **({"note": note} if note else {}),
                })  # fmt: skip
        files[key] = {
            "format": FORMAT,
            "message": MessageType(type_).name,
            "tlv_type": int(type_),
            "channel": "vroom.terminal.control",
            "description": (
                "One control message per vector: `hex` is the whole OpenMux message payload "
                "(8-byte TLV header type:u32 length:u32, then the payload) and `mux_type` the "
                "OpenMux frame Type byte (the TLV type's low byte). `body` is the decoded map "
                "(`payload_hex` for binary messages), `message` the decoded dataclass."
            ),
            "vectors": vectors,
            "invalid": [
                {"name": n, "mux_type": t, "hex": h, "code": c, "encoding": e}
                for n, t, h, c, e in INVALID.get(key, [])
            ],
        }
    files["unknown"] = {
        "format": FORMAT,
        "message": None,
        "description": "TLV types this version does not define: ERROR 404, not fatal.",
        "vectors": [],
        "invalid": [
            {"name": n, "mux_type": t, "hex": h, "code": c, "encoding": e}
            for n, t, h, c, e in INVALID["unknown"]
        ],
    }
    files["pty"] = {
        "format": FORMAT,
        "channel": "vroom.terminal.pty",
        "description": (
            "pty-channel messages: the OpenMux Type byte is `mux_type`, `hex` the payload. "
            "0x00 DATA (both), 0x01 WINDOW_ACK (C->S, u64 BE cumulative pty payload bytes "
            "consumed), 0x02 ZSTD_DATA (one zstd frame, only when zstd_compression was "
            "selected), 0x03 EOF (C->S, empty: end of the client's input)."
        ),
        "vectors": [
            {"name": "DATA, all 256 byte values", "mux_type": 0, "direction": "both",
             "hex": bytes(range(256)).hex(), "meaning": {"data_len": 256}},
            {"name": "WINDOW_ACK 1 MiB consumed", "mux_type": 1, "direction": "C->S",
             "hex": encode_window_ack(1 << 20).hex(), "meaning": {"count": 1 << 20}},
            {"name": "WINDOW_ACK 5 GiB consumed (u64)", "mux_type": 1, "direction": "C->S",
             "hex": encode_window_ack(5 << 30).hex(), "meaning": {"count": 5 << 30}},
            {"name": "ZSTD_DATA (zstd frame magic + opaque rest)", "mux_type": 2,
             "direction": "both", "hex": "28b52ffd2000010000", "meaning": {"compressed": True}},
            {"name": "EOF", "mux_type": 3, "direction": "C->S", "hex": "",
             "meaning": {"eof": True}},
        ],
        "invalid": [
            {"name": "WINDOW_ACK of 4 bytes", "mux_type": 1, "hex": "00100000", "code": 400},
            {"name": "EOF with a payload", "mux_type": 3, "hex": "00", "code": 400},
            {"name": "unknown type 0x07", "mux_type": 7, "hex": "", "code": 404},
        ],
    }  # fmt: skip
    return files


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for key, content in build().items():
        text = json.dumps(content, indent=1, ensure_ascii=False) + "\n"
        (OUT / f"{key}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
