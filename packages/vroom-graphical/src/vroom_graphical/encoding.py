"""Control-message bodies as CBOR or JSON, with limits checked before decoding.

Both encodings carry the same data model: maps with text keys, arrays, text,
numbers, booleans, null, and (CBOR only) byte strings, which JSON carries as
base64 text. CBOR is scanned (`openmux.bodies.scan_cbor`) before cbor2 sees
it so that nothing a peer sends can make us allocate more than the payload's
size, nest deeper than `MAX_DEPTH`, or build objects outside that model:
cbor2 honours tags, and the shared-reference tags alone can build cyclic
structures. JSON goes through `openmux.bodies.loads_json` (UTF-8, no
NaN/Infinity, the same depth rule).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import cbor2
from openmux import bodies

from .errors import DecodeError, LocalProtocolError, MessageTooLarge

Encoding = Literal["cbor", "json"]
ENCODINGS: Final[tuple[Encoding, ...]] = ("cbor", "json")
MAX_DEPTH: Final = 32


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
        return bodies.loads_json(payload, MAX_DEPTH, count_empty=False)
    except bodies.BodyError as exc:
        raise DecodeError(str(exc)) from None


def scan_cbor(data: bytes) -> None:
    """Check that `data` is exactly one well-formed CBOR item in our data model.

    The rules are `openmux.bodies.scan_cbor`'s; ours are the lenient options:
    nested maps may have integer keys (well-formed CBOR; only the top-level
    body must have text keys), and a definite empty container does not count
    as a level, so MAX_DEPTH arrays may still hold an empty map.
    """
    try:
        bodies.scan_cbor(data, MAX_DEPTH, integer_keys=True, count_empty=False)
    except bodies.BodyError as exc:
        raise DecodeError(str(exc)) from None
