"""The control-message byte formats: the TLV envelope and the two payload encodings.

Each OpenMux message on a control channel is one TLV (`type:u32 length:u32`
then the payload); the mux Type byte must equal the TLV type's low byte
(House). HELLO payloads are always JSON; once HELLO agreed an encoding,
every other structured payload uses it (CBOR or JSON as UTF-8).

CBOR is walked once by `_scan` *before* cbor2 sees it: every declared length
must fit in the bytes that remain (so nothing is allocated for a length the
peer did not send), nesting is bounded, map keys are text, and tags and odd
simple values are refused, so cbor2 only ever builds plain dicts, lists,
str, bytes, int, float, bool and None.
"""

from __future__ import annotations

import enum
import json
import struct
from typing import Any, NamedTuple

import cbor2

from .errors import DecodeError, MessageTooLarge, UnknownMessage
from .limits import DEFAULT_LIMITS, Limits

TLV_HEADER = struct.Struct(">II")
TLV_HEADER_SIZE = TLV_HEADER.size


class MessageType(enum.IntEnum):
    HELLO = 0x00000001
    CAPABILITY_OFFER = 0x00000002
    CAPABILITY_SELECT = 0x00000003
    AUTH_REQUEST = 0x00000010
    AUTH_RESPONSE = 0x00000011
    PTY_REQUEST = 0x00000020
    PTY_RESPONSE = 0x00000021
    WINDOW_RESIZE = 0x00000030
    SIGNAL = 0x00000031
    SET_ENV = 0x00000040
    SHELL_REQUEST = 0x00000050
    EXEC_REQUEST = 0x00000051
    EXIT_STATUS = 0x000000F0
    ERROR = 0x000000FF


_KNOWN = frozenset(int(t) for t in MessageType)

BINARY_TYPES = frozenset({MessageType.WINDOW_RESIZE, MessageType.SIGNAL})
"""Types whose payload is fixed binary, not a map in the control encoding."""


class Encoding(enum.Enum):
    CBOR = "cbor"
    JSON = "json"


class Tlv(NamedTuple):
    type: MessageType
    payload: bytes


def mux_type(message_type: int) -> int:
    """The OpenMux frame Type byte for a TLV type (House: its low byte)."""
    return message_type & 0xFF


def encode_tlv(message_type: int, payload: bytes) -> bytes:
    return TLV_HEADER.pack(message_type, len(payload)) + payload


def decode_tlv(frame_type: int, data: bytes) -> Tlv:
    """Split one control message into its TLV type and payload.

    Framing is checked before anything else, since a header that disagrees
    with itself cannot be attributed to a message type: short header, length
    field != payload length, Type byte != low byte → 400; unknown type → 404.
    """
    if len(data) < TLV_HEADER_SIZE:
        raise DecodeError(f"control message of {len(data)} bytes is shorter than a TLV header")
    type_, length = TLV_HEADER.unpack_from(data)
    if length != len(data) - TLV_HEADER_SIZE:
        raise DecodeError(
            f"TLV length {length} but {len(data) - TLV_HEADER_SIZE} payload bytes follow"
        )
    if frame_type != type_ & 0xFF:
        raise DecodeError(
            f"mux Type byte {frame_type:#04x} is not the low byte of TLV type {type_:#010x}"
        )
    if type_ not in _KNOWN:
        raise UnknownMessage(f"unknown TLV type {type_:#010x}")
    return Tlv(MessageType(type_), data[TLV_HEADER_SIZE:])


def check_size(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    if len(payload) > limits.max_control_payload:
        raise MessageTooLarge(
            f"control payload of {len(payload)} bytes exceeds {limits.max_control_payload}"
        )


# ------------------------------------------------------------------- encode


def encode_payload(obj: Any, encoding: Encoding) -> bytes:
    if encoding is Encoding.CBOR:
        return bytes(cbor2.dumps(obj))
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------- decode


def decode_payload(payload: bytes, encoding: Encoding, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Bytes → plain Python values, or DecodeError/MessageTooLarge; never anything else."""
    check_size(payload, limits)
    if encoding is Encoding.JSON:
        return decode_json(payload, limits)
    _scan_cbor(payload, limits.max_depth)
    try:
        return cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"invalid CBOR: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    check_size(payload, limits)
    try:
        text = payload.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise DecodeError(f"invalid JSON: {exc}") from None
    _check_depth(value, limits.max_depth)
    return value


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            raise DecodeError(f"nesting deeper than {max_depth}")
        stack.extend((child, depth + 1) for child in children)


_ARG_SIZES = {24: 1, 25: 2, 26: 4, 27: 8}


def _scan_cbor(data: bytes, max_depth: int) -> None:
    if not data:
        raise DecodeError("empty CBOR payload")
    end = _scan_item(data, 0, 0, max_depth)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} trailing bytes after the CBOR item")


def _scan_head(data: bytes, pos: int) -> tuple[int, int, int | None, int]:
    """(major, info, argument or None when indefinite, position after the head)."""
    if pos >= len(data):
        raise DecodeError("truncated CBOR")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, info, pos
    size = _ARG_SIZES.get(info)
    if size is not None:
        if pos + size > len(data):
            raise DecodeError("truncated CBOR")
        return major, info, int.from_bytes(data[pos : pos + size], "big"), pos + size
    if info == 31:
        return major, info, None, pos
    raise DecodeError(f"reserved CBOR additional information {info}")


def _scan_item(data: bytes, pos: int, depth: int, max_depth: int, key: bool = False) -> int:
    major, info, arg, pos = _scan_head(data, pos)
    if key and major != 3:
        raise DecodeError("CBOR map keys must be text strings")
    if major in (0, 1):
        if arg is None:
            raise DecodeError("indefinite-length integer")
        return pos
    if major in (2, 3):
        if arg is not None:
            if arg > len(data) - pos:
                raise DecodeError("CBOR string longer than the payload")
            return pos + arg
        while True:  # indefinite string: definite chunks of the same major type, then break
            if pos < len(data) and data[pos] == 0xFF:
                return pos + 1
            chunk_major, _, chunk_len, pos = _scan_head(data, pos)
            if chunk_major != major or chunk_len is None:
                raise DecodeError("bad chunk in an indefinite-length CBOR string")
            if chunk_len > len(data) - pos:
                raise DecodeError("CBOR string longer than the payload")
            pos += chunk_len
    if major in (4, 5):
        if depth + 1 > max_depth:
            raise DecodeError(f"nesting deeper than {max_depth}")
        per_entry = 2 if major == 5 else 1
        if arg is not None:
            if arg * per_entry > len(data) - pos:
                raise DecodeError("CBOR container declares more items than the payload holds")
            for _ in range(arg):
                pos = _scan_item(data, pos, depth + 1, max_depth, key=major == 5)
                if major == 5:
                    pos = _scan_item(data, pos, depth + 1, max_depth)
            return pos
        while True:
            if pos >= len(data):
                raise DecodeError("truncated CBOR")
            if data[pos] == 0xFF:
                return pos + 1
            pos = _scan_item(data, pos, depth + 1, max_depth, key=major == 5)
            if major == 5:
                pos = _scan_item(data, pos, depth + 1, max_depth)
    if major == 6:
        raise DecodeError("CBOR tags are not used by VROOM-Terminal")
    # major 7: false, true, null and floats only
    if info in (20, 21, 22, 25, 26, 27):
        return pos
    if info == 31:
        raise DecodeError("unexpected CBOR break")
    raise DecodeError(f"CBOR simple value {info} is not used by VROOM-Terminal")


__all__ = [
    "BINARY_TYPES",
    "TLV_HEADER_SIZE",
    "Encoding",
    "MessageType",
    "Tlv",
    "check_size",
    "decode_json",
    "decode_payload",
    "decode_tlv",
    "encode_payload",
    "encode_tlv",
    "mux_type",
]
