"""Every control message of VROOM-Terminal §2 as a typed, frozen value.

`encode_message()` turns one into (mux Type byte, TLV bytes) and
`decode_message()` does the reverse, raising only this package's
`ProtocolError` subclasses: 400 for a missing or mistyped MUST key, 404 for
an unknown type, 413 for a payload over the limit (checked before decoding).
Unknown keys are ignored, so a newer peer can add fields (we do ourselves:
EXIT_STATUS `output_bytes`, ERROR `names`, both optional).

The state machines split decoding in two (`decode_tlv`, then a state check,
then `decode_body`) so that an out-of-state message is answered 409 before
its payload is even looked at (House §6.11: the state rule wins).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from openmux._record import Record

from .capabilities import CapabilityOffer, CapabilitySelect
from .codec import (
    Encoding,
    MessageType,
    check_size,
    decode_json,
    decode_payload,
    decode_tlv,
    encode_payload,
    encode_tlv,
    mux_type,
)
from .errors import DecodeError, MessageTooLarge
from .limits import DEFAULT_LIMITS, Limits
from .schema import (
    as_map,
    opt_int,
    opt_str,
    req_bool,
    req_int,
    req_str,
    str_list,
)
from .signals import signal_name

PROTOCOL_NAME = "vroom-terminal"
U16 = 0xFFFF
U32 = 0xFFFFFFFF
_RESIZE = struct.Struct(">HHHH")


def _no_nul(value: str, key: str) -> str:
    if "\x00" in value:
        raise DecodeError(f"{key!r} contains a NUL character")
    return value


# ------------------------------------------------------------------ HELLO


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ClientHello(Record):
    """C→S HELLO: the control encodings the client accepts, preferred first."""

    TYPE: ClassVar[MessageType] = MessageType.HELLO
    control_encoding: tuple[str, ...] = ("cbor", "json")
    version: int = 1
    protocol: str = PROTOCOL_NAME

    def to_obj(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "version": self.version,
                "control_encoding": list(self.control_encoding)}  # fmt: skip

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> ClientHello:
        obj = as_map(value, "HELLO")
        protocol = req_str(obj, "protocol")
        version = req_int(obj, "version", 0, 2**31)
        encodings = obj.get("control_encoding")
        if encodings is None:
            raise DecodeError("missing MUST key 'control_encoding'")
        # Tolerant receive: a single string is a one-entry list.
        listed = (
            (encodings,)
            if isinstance(encodings, str)
            else str_list(encodings, "control_encoding", 64)
        )
        return cls(listed, version, protocol)


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ServerHello(Record):
    """S→C HELLO: the one encoding every later message uses."""

    TYPE: ClassVar[MessageType] = MessageType.HELLO
    control_encoding: str = "cbor"
    version: int = 1
    protocol: str = PROTOCOL_NAME

    def to_obj(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "version": self.version,
                "control_encoding": self.control_encoding}  # fmt: skip

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> ServerHello:
        obj = as_map(value, "HELLO")
        return cls(
            req_str(obj, "control_encoding"),
            req_int(obj, "version", 0, 2**31),
            req_str(obj, "protocol"),
        )


# ---------------------------------------------------------- capabilities


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class CapabilityOfferMessage(Record):
    TYPE: ClassVar[MessageType] = MessageType.CAPABILITY_OFFER
    offer: CapabilityOffer

    def to_obj(self) -> dict[str, Any]:
        return self.offer.to_obj()

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> CapabilityOfferMessage:
        return cls(CapabilityOffer.from_obj(value))


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class CapabilitySelectMessage(Record):
    TYPE: ClassVar[MessageType] = MessageType.CAPABILITY_SELECT
    select: CapabilitySelect

    def to_obj(self) -> dict[str, Any]:
        return self.select.to_obj()

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> CapabilitySelectMessage:
        return cls(CapabilitySelect.from_obj(value))


# ------------------------------------------------------------------- auth


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class AuthRequest(Record):
    """`{"method":"token","token":..}` or `{"method":"password","username":..,"password":..}`.

    Secrets are left out of repr() so that logging an event never leaks them.
    """

    TYPE: ClassVar[MessageType] = MessageType.AUTH_REQUEST
    method: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"method": self.method}
        if self.token is not None:
            obj["token"] = self.token
        if self.username is not None:
            obj["username"] = self.username
        if self.password is not None:
            obj["password"] = self.password
        return obj

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> AuthRequest:
        obj = as_map(value, "AUTH_REQUEST")
        method = req_str(obj, "method")
        if method == "token":
            return cls(method, token=req_str(obj, "token"))
        if method == "password":
            return cls(method, username=req_str(obj, "username"), password=req_str(obj, "password"))
        # Another method: decodable, refused (401) by a server that does not offer it.
        return cls(method, opt_str(obj, "token"), opt_str(obj, "username"),
                   opt_str(obj, "password"))  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class AuthResponse(Record):
    TYPE: ClassVar[MessageType] = MessageType.AUTH_RESPONSE
    ok: bool
    reason: str | None = None

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"ok": self.ok}
        if self.reason is not None:
            obj["reason"] = self.reason
        return obj

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> AuthResponse:
        obj = as_map(value, "AUTH_RESPONSE")
        return cls(req_bool(obj, "ok"), opt_str(obj, "reason"))


# -------------------------------------------------------------------- pty


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyRequest(Record):
    """PTY_REQUEST. `modes` is a map; the one mode defined is `raw` (see docs).

    `attach`, `resume_token`, `offset` and `readonly` are reserved for the
    reconnect extension (§4): decoded and passed on, not acted upon here.
    """

    TYPE: ClassVar[MessageType] = MessageType.PTY_REQUEST
    term: str
    rows: int
    cols: int
    pixel_width: int = 0
    pixel_height: int = 0
    modes: Mapping[str, Any] | None = None
    attach: str | None = None
    resume_token: str | None = field(default=None, repr=False)
    offset: int | None = None
    readonly: bool = False

    @property
    def raw(self) -> bool:
        """`modes: {"raw": true}`: cfmakeraw on the PTY, for byte-exact pipes."""
        return bool(self.modes and self.modes.get("raw") is True)

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "term": self.term,
            "rows": self.rows,
            "cols": self.cols,
            "pixel_width": self.pixel_width,
            "pixel_height": self.pixel_height,
        }
        if self.modes is not None:
            obj["modes"] = dict(self.modes)
        if self.attach is not None:
            obj["attach"] = self.attach
        if self.resume_token is not None:
            obj["resume_token"] = self.resume_token
        if self.offset is not None:
            obj["offset"] = self.offset
        if self.readonly:
            obj["readonly"] = True
        return obj

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> PtyRequest:
        obj = as_map(value, "PTY_REQUEST")
        modes = obj.get("modes")
        if modes is not None:
            modes = as_map(modes, "'modes'")
            if "raw" in modes and not isinstance(modes["raw"], bool):
                raise DecodeError("'modes.raw' must be a boolean")
        readonly = obj.get("readonly", False)
        if not isinstance(readonly, bool):
            raise DecodeError("'readonly' must be a boolean")
        return cls(
            _no_nul(req_str(obj, "term"), "term"),
            req_int(obj, "rows", 0, U16),
            req_int(obj, "cols", 0, U16),
            req_int(obj, "pixel_width", 0, U16),
            req_int(obj, "pixel_height", 0, U16),
            modes,
            opt_str(obj, "attach"),
            opt_str(obj, "resume_token"),
            opt_int(obj, "offset", 0, 2**63),
            readonly,
        )


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class PtyResponse(Record):
    """`channel` is the exact pty channel name, suffix included (House §6.6)."""

    TYPE: ClassVar[MessageType] = MessageType.PTY_RESPONSE
    ok: bool
    channel: str | None = None
    reason: str | None = None
    session_id: str | None = None
    resume_token: str | None = field(default=None, repr=False)

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"ok": self.ok}
        if self.channel is not None:
            obj["channel"] = self.channel
        for key in ("reason", "session_id", "resume_token"):
            value = getattr(self, key)
            if value is not None:
                obj[key] = value
        return obj

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> PtyResponse:
        obj = as_map(value, "PTY_RESPONSE")
        ok = req_bool(obj, "ok")
        channel = req_str(obj, "channel") if ok else opt_str(obj, "channel")
        return cls(ok, channel, opt_str(obj, "reason"), opt_str(obj, "session_id"),
                   opt_str(obj, "resume_token"))  # fmt: skip


# ----------------------------------------------------------------- binary


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class WindowResize(Record):
    """Binary: rows, cols, pixel_width, pixel_height, each u16 big-endian."""

    TYPE: ClassVar[MessageType] = MessageType.WINDOW_RESIZE
    rows: int
    cols: int
    pixel_width: int = 0
    pixel_height: int = 0

    def to_bytes(self) -> bytes:
        return _RESIZE.pack(self.rows, self.cols, self.pixel_width, self.pixel_height)

    @classmethod
    def from_bytes(cls, payload: bytes) -> WindowResize:
        if len(payload) != _RESIZE.size:
            raise DecodeError(f"WINDOW_RESIZE payload is {len(payload)} bytes, not 8")
        return cls(*_RESIZE.unpack(payload))


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Signal(Record):
    """Binary: one byte, a signal number read with the Linux numbering."""

    TYPE: ClassVar[MessageType] = MessageType.SIGNAL
    number: int

    @property
    def name(self) -> str:
        return signal_name(self.number) or str(self.number)

    def to_bytes(self) -> bytes:
        return bytes((self.number,))

    @classmethod
    def from_bytes(cls, payload: bytes) -> Signal:
        if len(payload) != 1:
            raise DecodeError(f"SIGNAL payload is {len(payload)} bytes, not 1")
        if signal_name(payload[0]) is None:
            raise DecodeError(f"{payload[0]} is not a Linux signal number")
        return cls(payload[0])


# ---------------------------------------------------------------- session


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SetEnv(Record):
    """A map name → value; the server filters it through its allow-list."""

    TYPE: ClassVar[MessageType] = MessageType.SET_ENV
    env: Mapping[str, str]

    def to_obj(self) -> dict[str, Any]:
        return dict(self.env)

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> SetEnv:
        obj = as_map(value, "SET_ENV")
        if len(obj) > limits.max_env:
            raise MessageTooLarge(f"SET_ENV with {len(obj)} names (limit {limits.max_env})")
        for name in obj:
            req_str(obj, name)  # every value must be text (and every key is, by decoding)
        return cls(dict(obj))


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ShellRequest(Record):
    TYPE: ClassVar[MessageType] = MessageType.SHELL_REQUEST

    def to_obj(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> ShellRequest:
        as_map(value, "SHELL_REQUEST")
        return cls()


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExecRequest(Record):
    """Exactly one of `command` (run by the user's shell, as ssh does) or `argv`."""

    TYPE: ClassVar[MessageType] = MessageType.EXEC_REQUEST
    command: str | None = None
    argv: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.command is None) == (self.argv is None):
            raise ValueError("EXEC_REQUEST needs exactly one of command and argv")

    def to_obj(self) -> dict[str, Any]:
        if self.command is not None:
            return {"command": self.command}
        return {"argv": list(self.argv or ())}

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> ExecRequest:
        obj = as_map(value, "EXEC_REQUEST")
        has_command, has_argv = obj.get("command") is not None, obj.get("argv") is not None
        if has_command == has_argv:
            raise DecodeError("EXEC_REQUEST needs exactly one of 'command' and 'argv'")
        if has_command:
            command = _no_nul(req_str(obj, "command"), "command")
            if not command:
                raise DecodeError("'command' is empty")
            return cls(command=command)
        argv = str_list(obj["argv"], "argv", limits.max_argv)
        if not argv:
            raise DecodeError("'argv' is empty")
        for item in argv:
            _no_nul(item, "argv")
        return cls(argv=argv)


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ExitStatus(Record):
    """`signal` is the name without SIG (House §6.3); `output_bytes` (ours,
    optional) is the total pty payload bytes sent, so a client on a transport
    without cross-channel order can wait for the last output byte."""

    TYPE: ClassVar[MessageType] = MessageType.EXIT_STATUS
    code: int | None
    signal: str | None = None
    core_dumped: bool = False
    output_bytes: int | None = None

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "code": self.code,
            "signal": self.signal,
            "core_dumped": self.core_dumped,
        }
        if self.output_bytes is not None:
            obj["output_bytes"] = self.output_bytes
        return obj

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> ExitStatus:
        obj = as_map(value, "EXIT_STATUS")
        for key in ("code", "signal", "core_dumped"):
            if key not in obj:
                raise DecodeError(f"missing MUST key {key!r}")
        code = opt_int(obj, "code", 0, U32)
        signal = opt_str(obj, "signal")
        if code is None and signal is None:
            raise DecodeError("EXIT_STATUS needs a code or a signal")
        return cls(code, signal, req_bool(obj, "core_dumped"),
                   opt_int(obj, "output_bytes", 0, 2**63))  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Error(Record):
    """`names` (ours, optional) lists refused SET_ENV names for machines."""

    TYPE: ClassVar[MessageType] = MessageType.ERROR
    code: int
    message: str
    fatal: bool = False
    names: tuple[str, ...] | None = None

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"code": self.code, "message": self.message, "fatal": self.fatal}
        if self.names is not None:
            obj["names"] = list(self.names)
        return obj

    @classmethod
    def from_obj(cls, value: Any, limits: Limits = DEFAULT_LIMITS) -> Error:
        obj = as_map(value, "ERROR")
        names = obj.get("names")
        return cls(req_int(obj, "code", 0, U32), req_str(obj, "message"), req_bool(obj, "fatal"),
                   str_list(names, "names") if names is not None else None)  # fmt: skip


Message: TypeAlias = (
    ClientHello
    | ServerHello
    | CapabilityOfferMessage
    | CapabilitySelectMessage
    | AuthRequest
    | AuthResponse
    | PtyRequest
    | PtyResponse
    | WindowResize
    | Signal
    | SetEnv
    | ShellRequest
    | ExecRequest
    | ExitStatus
    | Error
)

_MAP_CLASSES: dict[MessageType, Any] = {
    MessageType.CAPABILITY_OFFER: CapabilityOfferMessage,
    MessageType.CAPABILITY_SELECT: CapabilitySelectMessage,
    MessageType.AUTH_REQUEST: AuthRequest,
    MessageType.AUTH_RESPONSE: AuthResponse,
    MessageType.PTY_REQUEST: PtyRequest,
    MessageType.PTY_RESPONSE: PtyResponse,
    MessageType.SET_ENV: SetEnv,
    MessageType.SHELL_REQUEST: ShellRequest,
    MessageType.EXEC_REQUEST: ExecRequest,
    MessageType.EXIT_STATUS: ExitStatus,
    MessageType.ERROR: Error,
}


def encode_message(message: Message, encoding: Encoding | None) -> tuple[int, bytes]:
    """(mux Type byte, TLV bytes). HELLO is JSON whatever `encoding` says, and
    so is anything sent before an encoding was agreed (`encoding=None`)."""
    if isinstance(message, WindowResize | Signal):
        payload = message.to_bytes()
    elif isinstance(message, ClientHello | ServerHello) or encoding is None:
        payload = encode_payload(message.to_obj(), Encoding.JSON)
    else:
        payload = encode_payload(message.to_obj(), encoding)
    return mux_type(message.TYPE), encode_tlv(message.TYPE, payload)


def decode_body(
    message_type: MessageType,
    payload: bytes,
    encoding: Encoding | None,
    *,
    from_server: bool,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """A TLV payload → its message. `from_server` picks the HELLO shape;
    `encoding=None` means nothing was agreed yet (JSON)."""
    if message_type is MessageType.WINDOW_RESIZE:
        return WindowResize.from_bytes(payload)
    if message_type is MessageType.SIGNAL:
        return Signal.from_bytes(payload)
    check_size(payload, limits)
    if message_type is MessageType.HELLO:
        obj = decode_json(payload, limits)
        return ServerHello.from_obj(obj) if from_server else ClientHello.from_obj(obj)
    obj = decode_payload(payload, encoding or Encoding.JSON, limits)
    result: Message = _MAP_CLASSES[message_type].from_obj(obj, limits)
    return result


def decode_message(
    frame_type: int,
    data: bytes,
    encoding: Encoding | None,
    *,
    from_server: bool,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """One whole control message (mux Type byte + TLV bytes) → its message."""
    tlv = decode_tlv(frame_type, data)
    return decode_body(tlv.type, tlv.payload, encoding, from_server=from_server, limits=limits)


__all__ = [
    "PROTOCOL_NAME",
    "AuthRequest",
    "AuthResponse",
    "CapabilityOfferMessage",
    "CapabilitySelectMessage",
    "ClientHello",
    "Error",
    "ExecRequest",
    "ExitStatus",
    "Message",
    "PtyRequest",
    "PtyResponse",
    "ServerHello",
    "SetEnv",
    "ShellRequest",
    "Signal",
    "WindowResize",
    "decode_body",
    "decode_message",
    "encode_message",
]
