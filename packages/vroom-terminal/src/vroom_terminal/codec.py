"""The control-message byte formats: the TLV envelope and the two payload encodings.

Each OpenMux message on a control channel is one TLV (`type:u32 length:u32`
then the payload); the mux Type byte must equal the TLV type's low byte
(House). HELLO payloads are always JSON; once HELLO agreed an encoding,
every other structured payload uses it (CBOR or JSON as UTF-8).

CBOR is walked once by `openmux.bodies.scan_cbor` *before* cbor2 sees it:
every declared length must fit in the bytes that remain (so nothing is
allocated for a length the peer did not send), nesting is bounded, map keys
are text, and tags and odd simple values are refused, so cbor2 only ever
builds plain dicts, lists, str, bytes, int, float, bool and None. JSON goes
through `openmux.bodies.loads_json`; both raise `BodyError`, which becomes a
400 `DecodeError` here.
"""

from __future__ import annotations

import enum
import json
import struct
from typing import Any, NamedTuple

import cbor2
from openmux.bodies import BodyError, loads_json, scan_cbor

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
    try:
        scan_cbor(payload, limits.max_depth)
    except BodyError as exc:
        raise DecodeError(str(exc)) from None
    try:
        return cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"invalid CBOR: {exc}") from None


def decode_json(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    check_size(payload, limits)
    try:
        return loads_json(payload, limits.max_depth)
    except BodyError as exc:
        raise DecodeError(str(exc)) from None


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
