"""CBOR/JSON bodies: the pre-scan that keeps cbor2 inside our data model."""

from __future__ import annotations

import cbor2
import pytest
from vroom_graphical import DecodeError, MessageTooLarge, decode_body, encode_body, scan_cbor
from vroom_graphical.encoding import MAX_DEPTH, sniff


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"a": [1, -2, 3.5, True, False, None, "t", b"b", {"k": 1}]},
        {"big": 2**64 - 1, "neg": -(2**64)},
        {1: "int keys are well-formed CBOR"},
    ],
)
def test_scan_accepts(value: object) -> None:
    scan_cbor(cbor2.dumps(value))


@pytest.mark.parametrize(
    ("hex_", "match"),
    [
        ("", "truncated"),
        ("a1", "more items"),
        ("a16161", "truncated"),
        ("62", "longer than"),
        ("5b00000000ffffffff", "longer than the message"),
        ("9b00000000ffffffff", "more items"),
        ("bb000000007fffffff", "more items"),
        ("c074323031332d30332d32315432303a30343a30305a", "tags"),
        ("d81c81d81d00", "tags"),
        ("f7", "simple values"),
        ("f0", "simple values"),
        ("f820", "simple values"),
        ("1c", "reserved"),
        ("ff", "break"),
        ("9fff00", "bytes after"),
        ("a0a0", "bytes after"),
        ("a1800001", "keys must be text or integers"),
        ("a1f600", "keys must be text or integers"),
        ("1f", "indefinite length"),
        ("5f6161ff", "chunk"),
        ("5f5f4100ffff", "chunk"),
        ("bf6161ff", "break"),
        ("19ff", "truncated"),
    ],
)
def test_scan_rejects(hex_: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        scan_cbor(bytes.fromhex(hex_))


def test_indefinite_lengths() -> None:
    data = bytes.fromhex("bf61610161629f0102ff61635f41614162ff61647f61616162ffff")
    scan_cbor(data)
    assert decode_body(data, "cbor", 100) == {"a": 1, "b": [1, 2], "c": b"ab", "d": "ab"}


def test_depth_limit() -> None:
    ok = b"\x81" * MAX_DEPTH + b"\xa0"
    scan_cbor(ok)
    with pytest.raises(DecodeError, match="nests deeper"):
        scan_cbor(b"\x81" * (MAX_DEPTH + 1) + b"\x00")
    with pytest.raises(DecodeError, match="nests deeper"):
        scan_cbor(b"\x9f" * (MAX_DEPTH + 1))
    with pytest.raises(DecodeError, match="too deeply"):
        decode_body(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json", 1 << 20)


def test_json_rules() -> None:
    assert decode_body(b'{"a":1}', "json", 10) == {"a": 1}
    for bad in (b'{"a":NaN}', b'{"a":Infinity}', b"{", b"\xff", b'{"a":1}x', b"1" * 5000):
        with pytest.raises(DecodeError):
            decode_body(bad, "json", 10_000)
    with pytest.raises(MessageTooLarge):
        decode_body(b'{"a":1}', "json", 3)


def test_encode_body() -> None:
    assert encode_body({"a": (1, 2), "b": bytearray(b"x")}, "cbor") == cbor2.dumps(
        {"a": [1, 2], "b": b"x"}
    )
    assert encode_body({"é": "ü"}, "json") == '{"é":"ü"}'.encode()


def test_sniff() -> None:
    assert sniff(cbor2.dumps({"a": 1})) == "cbor"
    assert sniff(cbor2.dumps({})) == "cbor"
    assert sniff(b"{}") == "json"
    assert sniff(b" {}") == "json"
    assert sniff(b"") == "json"


def test_as_bytes() -> None:
    from vroom_graphical import as_bytes

    assert as_bytes(b"\x89PNG") == b"\x89PNG"
    assert as_bytes("iVBORw==") == b"\x89PNG"
    for bad in ("not base64!", 5, None):
        with pytest.raises(DecodeError):
            as_bytes(bad)
