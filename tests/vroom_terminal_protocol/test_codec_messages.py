"""TLV framing, the two payload encodings, and every message's schema."""

from __future__ import annotations

import json

import cbor2
import pytest
from vroom_terminal import (
    AuthRequest,
    AuthResponse,
    ClientHello,
    DecodeError,
    Encoding,
    Error,
    ErrorCode,
    ExecRequest,
    ExitStatus,
    Limits,
    MessageTooLarge,
    MessageType,
    PtyRequest,
    PtyResponse,
    ServerHello,
    SetEnv,
    ShellRequest,
    Signal,
    UnknownMessage,
    WindowResize,
    decode_message,
    decode_tlv,
    encode_message,
    encode_tlv,
)
from vroom_terminal.codec import decode_payload, encode_payload

ALL = [
    ClientHello(),
    ServerHello("json"),
    AuthRequest("token", token="t"),
    AuthRequest("password", username="u", password="p"),
    AuthResponse(False, "nope"),
    PtyRequest("xterm", 24, 80, 640, 480, {"raw": True}),
    PtyResponse(True, "vroom.terminal.pty#2", session_id="s", resume_token="r"),
    WindowResize(1, 2, 3, 4),
    Signal(15),
    SetEnv({"LANG": "C"}),
    ShellRequest(),
    ExecRequest(command="ls -l"),
    ExecRequest(argv=("ls", "-l")),
    ExitStatus(None, "KILL", True, 12),
    Error(409, "wrong state", False),
]


@pytest.mark.parametrize("encoding", [Encoding.CBOR, Encoding.JSON])
@pytest.mark.parametrize("message", ALL, ids=lambda m: type(m).__name__)
def test_roundtrip(message: object, encoding: Encoding) -> None:
    type_, data = encode_message(message, encoding)  # type: ignore[arg-type]
    assert type_ == data[3]  # mux Type byte = low byte of the TLV type
    from_server = isinstance(message, ServerHello)
    assert decode_message(type_, data, encoding, from_server=from_server) == message


def test_hello_is_always_json() -> None:
    _, data = encode_message(ClientHello(), Encoding.CBOR)
    assert json.loads(data[8:]) == {
        "protocol": "vroom-terminal",
        "version": 1,
        "control_encoding": ["cbor", "json"],
    }


def test_tlv_framing_errors() -> None:
    with pytest.raises(DecodeError) as exc:
        decode_tlv(0x01, b"\x00\x00\x00\x01\x00\x00")
    assert exc.value.code == 400 and not exc.value.fatal
    with pytest.raises(DecodeError):  # length field says 5, 4 follow
        decode_tlv(0x01, b"\x00\x00\x00\x01\x00\x00\x00\x05abcd")
    with pytest.raises(DecodeError):  # length field says 3, 4 follow
        decode_tlv(0x01, b"\x00\x00\x00\x01\x00\x00\x00\x03abcd")
    with pytest.raises(DecodeError, match="low byte"):
        decode_tlv(0x02, encode_tlv(0x01, b"{}"))
    with pytest.raises(UnknownMessage) as unknown:
        decode_tlv(0x12, encode_tlv(0x12, b""))
    assert unknown.value.code == 404
    with pytest.raises(UnknownMessage):  # low byte matches a known type, high bytes do not
        decode_tlv(0x01, encode_tlv(0x0101, b""))


def test_size_limit_before_decoding() -> None:
    limits = Limits(max_control_payload=16)
    payload = encode_payload({"term": "x" * 20}, Encoding.CBOR)
    with pytest.raises(MessageTooLarge) as exc:
        decode_payload(payload, Encoding.CBOR, limits)
    assert exc.value.code == 413
    with pytest.raises(MessageTooLarge):
        decode_message(0x20, encode_tlv(0x20, payload), Encoding.CBOR, from_server=False,
                       limits=limits)  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [
        b"\x9b\x00\x00\x00\x0f\xff\xff\xff\xff",  # array of 2^36 items in 9 bytes
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # byte string of 2^64-1 bytes
        b"\xbb\x00\x00\x00\x00\x10\x00\x00\x00",  # map of 2^28 pairs
        b"\x81" * 40 + b"\x00",  # nesting deeper than max_depth
        b"\xc1\x00",  # tag 1 (epoch datetime): no tags
        b"\xd8\x1c\x80",  # shareable (tag 28)
        b"\xf7",  # undefined
        b"\xf0",  # simple value 16
        b"\xa1\x01\x02",  # integer map key
        b"\xa0\x00",  # trailing byte
        b"\xff",  # lone break
        b"\x7f\x61a\x41b\xff",  # text chunk of the wrong major type
        b"\x1c",  # reserved additional information
        b"\x62\xff\xfe",  # invalid UTF-8 text
        b"",
    ],
)
def test_cbor_scan_refuses(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(payload, Encoding.CBOR)


def test_cbor_accepts_indefinite_lengths_and_floats() -> None:
    value = decode_payload(b"\xbf\x61a\x9f\x01\xf9\x3c\x00\xff\x7f\x61b\x61c\xff\xf5\xff",
                           Encoding.CBOR)  # fmt: skip
    assert value == {"a": [1, 1.0], "bc": True}


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b"NaN",
        b'{"a":Infinity}',
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
        b"[[[[" * 10 + b"]]]]" * 10,
    ],
)
def test_json_refuses(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(payload, Encoding.JSON)


BAD_BODIES = [
    (MessageType.AUTH_REQUEST, {}),
    (MessageType.AUTH_REQUEST, {"method": "token"}),
    (MessageType.AUTH_REQUEST, {"method": "password", "username": "u"}),
    (MessageType.AUTH_RESPONSE, {"reason": "x"}),
    (MessageType.PTY_REQUEST, {"term": "x", "rows": 1, "cols": 1, "pixel_width": 0}),
    (
        MessageType.PTY_REQUEST,
        {"term": "x", "rows": 70000, "cols": 1, "pixel_width": 0, "pixel_height": 0},
    ),
    (
        MessageType.PTY_REQUEST,
        {"term": "x", "rows": True, "cols": 1, "pixel_width": 0, "pixel_height": 0},
    ),
    (
        MessageType.PTY_REQUEST,
        {
            "term": "x",
            "rows": 1,
            "cols": 1,
            "pixel_width": 0,
            "pixel_height": 0,
            "modes": {"raw": "yes"},
        },
    ),
    (MessageType.PTY_RESPONSE, {"ok": True}),
    (MessageType.SET_ENV, {"LANG": 1}),
    (MessageType.SET_ENV, ["LANG"]),
    (MessageType.EXEC_REQUEST, {}),
    (MessageType.EXEC_REQUEST, {"command": "a", "argv": ["a"]}),
    (MessageType.EXEC_REQUEST, {"argv": []}),
    (MessageType.EXEC_REQUEST, {"argv": ["a", 1]}),
    (MessageType.EXEC_REQUEST, {"command": "a\x00b"}),
    (MessageType.EXEC_REQUEST, {"command": ""}),
    (MessageType.EXIT_STATUS, {"code": 0, "signal": None}),
    (MessageType.EXIT_STATUS, {"code": None, "signal": None, "core_dumped": False}),
    (MessageType.EXIT_STATUS, {"code": -1, "signal": None, "core_dumped": False}),
    (MessageType.ERROR, {"code": 400, "message": "x"}),
    (MessageType.CAPABILITY_OFFER, {}),
    (MessageType.CAPABILITY_OFFER, {"protocol_version": 1, "mouse": "sgr"}),
    (
        MessageType.CAPABILITY_OFFER,
        {"protocol_version": 1, "extensions": {"flow_control": {"window": 0}}},
    ),
    (MessageType.CAPABILITY_SELECT, {"protocol_version": 1}),
    (MessageType.CAPABILITY_SELECT, {"protocol_version": 1, "auth": {"methods": []}}),
    (MessageType.SHELL_REQUEST, []),
]


@pytest.mark.parametrize("encoding", [Encoding.CBOR, Encoding.JSON])
@pytest.mark.parametrize(("type_", "body"), BAD_BODIES)
def test_missing_or_mistyped_keys_are_400(type_: MessageType, body: object,
                                          encoding: Encoding) -> None:  # fmt: skip
    data = encode_tlv(type_, encode_payload(body, encoding))
    with pytest.raises(DecodeError) as exc:
        decode_message(type_ & 0xFF, data, encoding, from_server=False)
    assert exc.value.code == ErrorCode.BAD_MESSAGE


def test_unknown_keys_are_ignored() -> None:
    body = {"term": "x", "rows": 1, "cols": 2, "pixel_width": 3, "pixel_height": 4, "new": [1]}
    data = encode_tlv(0x20, cbor2.dumps(body))
    assert decode_message(0x20, data, Encoding.CBOR, from_server=False) == PtyRequest(
        "x", 1, 2, 3, 4
    )


def test_binary_messages() -> None:
    assert WindowResize.from_bytes(b"\x00\x18\x00\x50\x02\x80\x01\xe0") == WindowResize(
        24, 80, 640, 480
    )
    for bad in (b"", b"\x00" * 7, b"\x00" * 9):
        with pytest.raises(DecodeError):
            WindowResize.from_bytes(bad)
    assert Signal.from_bytes(b"\x0a").name == "USR1"
    for bad in (b"", b"\x02\x02", b"\x00", b"\x20", b"\x21", b"\x41", b"\xff"):
        with pytest.raises(DecodeError):
            Signal.from_bytes(bad)


def test_auth_secrets_not_in_repr() -> None:
    text = repr(AuthRequest("password", username="ann", password="hunter2"))
    assert "hunter2" not in text and "ann" in text
    assert "s3cr3t" not in repr(AuthRequest("token", token="s3cr3t"))


def test_limits_on_env_and_argv() -> None:
    limits = Limits(max_env=2, max_argv=2)
    env = encode_tlv(0x40, cbor2.dumps({"A": "1", "B": "2", "C": "3"}))
    with pytest.raises(MessageTooLarge):
        decode_message(0x40, env, Encoding.CBOR, from_server=False, limits=limits)
    argv = encode_tlv(0x51, cbor2.dumps({"argv": ["a", "b", "c"]}))
    with pytest.raises(MessageTooLarge):
        decode_message(0x51, argv, Encoding.CBOR, from_server=False, limits=limits)
    with pytest.raises(ValueError):
        Limits(max_control_payload=0)
