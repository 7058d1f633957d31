"""Control-message bodies as CBOR or JSON, with limits checked before decoding.

Both encodings carry the same data model: maps with text keys, arrays, text,
numbers, booleans, null, and (CBOR only) byte strings, which JSON carries as
base64 text. CBOR is scanned before cbor2 sees it so that nothing a peer
sends can make us allocate more than the payload's size, nest deeper than
`MAX_DEPTH`, or build objects outside that model: cbor2 honours tags, and the
shared-reference tags alone can build cyclic structures.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import cbor2

from .errors import DecodeError, LocalProtocolError, MessageTooLarge

Encoding = Literal["cbor", "json"]
ENCODINGS: Final[tuple[Encoding, ...]] = ("cbor", "json")
MAX_DEPTH: Final = 32

_ARRAY, _MAP, _BYTES_CHUNKS, _TEXT_CHUNKS = 0, 1, 2, 3


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _jsonable(value: Any) -> Any:
    """JSON has no byte strings: House clarification 4 sends them as base64."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _cborable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _cborable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cborable(v) for v in value]
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def encode_body(body: Mapping[str, Any], encoding: Encoding) -> bytes:
    """Serialise a message body; unserialisable data is local misuse."""
    try:
        if encoding == "json":
            return json.dumps(
                _jsonable(body), separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode()
        if encoding == "cbor":
            return bytes(cbor2.dumps(_cborable(body)))
    except (TypeError, ValueError, cbor2.CBOREncodeError) as exc:
        raise LocalProtocolError(f"cannot encode the message as {encoding}: {exc}") from None
    raise LocalProtocolError(f"unknown control encoding {encoding!r}")


def as_bytes(value: object) -> bytes:
    """A byte string from a decoded body: CBOR gives bytes, JSON base64 text
    (House clarification 4: screenshot `data.bytes`)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise DecodeError("not base64 text") from None
    raise DecodeError(f"expected bytes or base64 text, got {type(value).__name__}")


def sniff(payload: bytes) -> Encoding:
    """Guess the encoding of a map: a CBOR map starts 0xa0-0xbf, JSON with `{`.

    Used only before the encoding is agreed (the handshakes), where the House
    rule says JSON but a tolerant receiver costs nothing: the two never overlap.
    """
    if payload and 0xA0 <= payload[0] <= 0xBF:
        return "cbor"
    return "json"


def decode_body(payload: bytes, encoding: Encoding, limit: int) -> dict[str, Any]:
    """Decode one body, which must be a map with text keys."""
    if len(payload) > limit:
        raise MessageTooLarge(f"{len(payload)}-byte control message exceeds the {limit}-byte limit")
    if encoding == "json":
        body = _decode_json(payload)
    else:
        scan_cbor(payload)
        try:
            body = cbor2.loads(payload)
        except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise DecodeError(f"invalid CBOR: {exc}") from None
    if not isinstance(body, dict):
        raise DecodeError(f"a control message must be a {encoding} map")
    if not all(isinstance(k, str) for k in body):
        raise DecodeError("control message keys must be text")
    return body


def _decode_json(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise DecodeError("JSON is not valid UTF-8") from None
    except RecursionError:
        raise DecodeError("JSON nests too deeply") from None
    except ValueError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    """The head's argument (value or length) and the position after it."""
    if info < 24:
        return info, pos
    size = 1 << (info - 24)  # 24..27 -> 1, 2, 4, 8 bytes
    if pos + size > len(data):
        raise DecodeError("CBOR item header is truncated")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def scan_cbor(data: bytes) -> None:
    """Check that `data` is exactly one well-formed CBOR item in our data model.

    Iterative (no recursion to exhaust) and allocation-free: every declared
    length is compared with the bytes actually left before anything is built.
    Rejected: tags, simple values other than false/true/null, undefined,
    map keys other than text or integers, nesting deeper than MAX_DEPTH.
    """
    n = len(data)
    pos = 0
    # Open containers: [kind, items left (-1 = indefinite), items seen]
    stack: list[list[int]] = []
    while True:
        if pos >= n:
            raise DecodeError("CBOR is truncated")
        head = data[pos]
        pos += 1
        major, info = head >> 5, head & 0x1F
        top = stack[-1] if stack else None
        if head == 0xFF:
            if top is None or top[1] != -1 or (top[0] == _MAP and top[2] % 2):
                raise DecodeError("unexpected CBOR break")
            stack.pop()
        else:
            if top is not None:
                if top[0] == _MAP and top[2] % 2 == 0 and major not in (0, 1, 3):
                    raise DecodeError("CBOR map keys must be text or integers")
                if top[0] in (_BYTES_CHUNKS, _TEXT_CHUNKS) and (major != top[0] or info == 31):
                    raise DecodeError("bad chunk in an indefinite-length CBOR string")
            if info in (28, 29, 30):
                raise DecodeError(f"reserved CBOR additional information {info}")
            if info == 31:
                if major in (0, 1, 6, 7):
                    raise DecodeError("indefinite length on a CBOR type that has none")
                if len(stack) >= MAX_DEPTH:
                    raise DecodeError(f"CBOR nests deeper than {MAX_DEPTH}")
                kind = {2: _BYTES_CHUNKS, 3: _TEXT_CHUNKS, 4: _ARRAY, 5: _MAP}[major]
                if top is not None:
                    top[2] += 1
                    if top[1] > 0:
                        top[1] -= 1
                stack.append([kind, -1, 0])
                continue
            value, pos = _argument(data, pos, info)
            if major in (2, 3):
                if value > n - pos:
                    raise DecodeError("CBOR string is longer than the message")
                pos += value
            elif major in (4, 5):
                items = value * 2 if major == 5 else value
                if items > n - pos:
                    raise DecodeError("CBOR container declares more items than the message holds")
                if items:
                    if len(stack) >= MAX_DEPTH:
                        raise DecodeError(f"CBOR nests deeper than {MAX_DEPTH}")
                    if top is not None:
                        top[2] += 1
                        if top[1] > 0:
                            top[1] -= 1
                    stack.append([_ARRAY if major == 4 else _MAP, items, 0])
                    continue
            elif major == 6:
                raise DecodeError("CBOR tags are not accepted")
            elif major == 7 and info not in (20, 21, 22, 25, 26, 27):
                raise DecodeError(
                    "only false, true, null and floats are accepted as CBOR simple values"
                )
            # A complete item: count it against its container.
            if top is not None:
                top[2] += 1
                if top[1] > 0:
                    top[1] -= 1
        # Close every definite container this item completed.
        while stack and stack[-1][1] == 0:
            stack.pop()
        if not stack:
            break
    if pos != n:
        raise DecodeError(f"{n - pos} bytes after the CBOR item")
