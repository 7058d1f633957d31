"""Hypothesis fuzzing of every decoder and of both state machines.

Random bytes must only ever raise this package's own errors (TerminalError),
and decoding must never allocate much more than what was received: declared
lengths are checked against the bytes actually present before anything is
built.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux import MessageReceived, State
from vroom_terminal import (
    AuthRequest,
    CapabilityOffer,
    CapabilityOfferMessage,
    ClientHello,
    DecodeError,
    Encoding,
    ExecRequest,
    Limits,
    MessageType,
    PtyRequest,
    PtyType,
    SetEnv,
    ShellRequest,
    Signal,
    TerminalError,
    WindowResize,
    decode_message,
    decode_tlv,
    decode_window_ack,
    encode_tlv,
)
from vroom_terminal import State as VState
from vroom_terminal.codec import decode_payload, encode_payload
from vroom_terminal.messages import decode_body
from vroom_terminal.ptywire import check_eof

from .helpers import TermPair
from .test_flow_pair import _ready
from .test_states import _server_to

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = list(MessageType)
LIMITS = Limits(max_control_payload=4096)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
# Maps shaped like our messages, with the right keys and random values.
KEYS = ["protocol", "version", "control_encoding", "protocol_version", "terminal", "kitty",
        "keyboard", "supported_levels", "preferred_level", "level", "mouse", "features",
        "extensions", "flow_control", "window", "auth", "required", "methods", "method", "token",
        "username", "password", "ok", "reason", "term", "rows", "cols", "pixel_width",
        "pixel_height", "modes", "raw", "channel", "session_id", "resume_token", "attach",
        "offset", "readonly", "command", "argv", "code", "signal", "core_dumped",
        "output_bytes", "message", "fatal", "names", "LANG"]  # fmt: skip
shaped = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=8)
    ),
    max_leaves=30,
)


def _only_ours(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except TerminalError:
        return None


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=64))
def test_decode_tlv(frame_type: int, data: bytes) -> None:
    _only_ours(decode_tlv, frame_type, data)


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=300), st.sampled_from(list(Encoding)),
       st.booleans())  # fmt: skip
def test_decode_message_random_payload(
    type_: MessageType, payload: bytes, encoding: Encoding, from_server: bool
) -> None:
    data = encode_tlv(type_, payload)
    _only_ours(decode_message, type_ & 0xFF, data, encoding, from_server=from_server,
               limits=LIMITS)  # fmt: skip


@FUZZ
@given(st.sampled_from(TYPES), shaped, st.sampled_from(list(Encoding)), st.booleans())
def test_decode_body_shaped_values(
    type_: MessageType, value: Any, encoding: Encoding, from_server: bool
) -> None:
    try:
        payload = encode_payload(value, encoding)
    except (ValueError, TypeError):
        return
    _only_ours(decode_body, type_, payload, encoding, from_server=from_server, limits=LIMITS)


@FUZZ
@given(json_values)
def test_decode_payload_cbor_of_any_value(value: Any) -> None:
    _only_ours(decode_payload, cbor2.dumps(value), Encoding.CBOR, LIMITS)


@FUZZ
@given(st.binary(max_size=200))
def test_decode_payload_random_bytes(data: bytes) -> None:
    _only_ours(decode_payload, data, Encoding.CBOR, LIMITS)
    _only_ours(decode_payload, data, Encoding.JSON, LIMITS)


@FUZZ
@given(st.binary(max_size=16))
def test_binary_decoders(data: bytes) -> None:
    _only_ours(WindowResize.from_bytes, data)
    _only_ours(Signal.from_bytes, data)
    _only_ours(decode_window_ack, data)
    _only_ours(check_eof, data)


# Heads that declare huge lengths, followed by random bytes.
huge_heads = st.sampled_from(
    [b"\x9b", b"\x5b", b"\x7b", b"\xbb", b"\x9a", b"\x5a", b"\xba", b"\x9f", b"\x5f", b"\xbf"]
)


@settings(max_examples=150, deadline=None)
@given(huge_heads, st.binary(min_size=0, max_size=8), st.binary(max_size=2000))
def test_cbor_never_over_allocates(head: bytes, length: bytes, rest: bytes) -> None:
    data = head + length + rest
    tracemalloc.start()
    try:
        _only_ours(decode_payload, data, Encoding.CBOR, Limits(max_control_payload=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024 + 200 * len(data)


def test_declared_lengths_are_refused_cheaply() -> None:
    for data in (b"\x9b" + b"\xff" * 8, b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00" + b"x" * 100):
        tracemalloc.start()
        try:
            try:
                decode_payload(data, Encoding.CBOR)
            except DecodeError:
                pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024


# ------------------------------------------------------- state machines

raw_msgs = st.tuples(st.sampled_from(["raw", "pty"]), st.integers(0, 255), st.binary(max_size=40))
typed_msgs = st.tuples(
    st.just("tlv"),
    st.sampled_from(TYPES),
    st.one_of(st.binary(max_size=40), shaped.map(cbor2.dumps)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(raw_msgs, typed_msgs), max_size=12), st.booleans())
def test_state_machines_never_raise(
    messages: list[tuple[str, int, bytes]], at_server: bool
) -> None:
    """Random control-channel messages and pty-channel frames, fed to an active session:
    handle_event() answers them on the wire and never raises."""
    pair = TermPair()
    _ready(pair)
    endpoint = pair.server if at_server else pair.client
    mux = pair.pair.server if at_server else pair.pair.client
    sess = endpoint.sessions[""]
    for kind, type_, payload in messages:
        if kind == "tlv":
            frame_type, data, channel_id = type_ & 0xFF, encode_tlv(type_, payload), sess.control_id
        elif kind == "raw":
            frame_type, data, channel_id = type_, payload, sess.control_id
        else:
            frame_type, data, channel_id = type_ % 8, payload, sess.pty_id
        if channel_id is None or mux.state is not State.OPEN:
            break
        endpoint.handle_event(MessageReceived(channel_id, frame_type, data))
    pair.pump()


def test_pty_types_listed() -> None:
    assert [t.value for t in PtyType] == [0, 1, 2, 3]


valid_msgs = st.sampled_from(
    [(m.TYPE, m) for m in (
        ClientHello(("cbor",)), CapabilityOfferMessage(CapabilityOffer()),
        AuthRequest("token", token="good"), PtyRequest("xterm", 24, 80), SetEnv({"LANG": "C"}),
        ShellRequest(), ExecRequest(command="x"), WindowResize(1, 2), Signal(2),
    )]
)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(raw_msgs, typed_msgs, valid_msgs), max_size=14),
    st.sampled_from(
        ["ControlOpen", "HelloExchange", "Authenticating", "PTYRequest", "PTYAllocated"]
    ),
)
def test_server_from_any_state_never_raises(messages: list[Any], start: str) -> None:
    """Valid and random messages in any order, from several starting states."""
    peer = _server_to(start)
    for kind, type_, *rest in messages:
        if peer.endpoint.state("") is VState.DISCONNECTED or peer.control is None:
            break
        if kind in set(MessageType):  # a valid message
            peer.send(type_, Encoding.CBOR)
        elif kind == "tlv":
            peer.send_raw(type_ & 0xFF, encode_tlv(type_, rest[0]))
        elif kind == "raw":
            peer.send_raw(type_, rest[0])
        elif peer.pty is not None:
            peer.send_raw(type_ % 8, rest[0], channel=peer.pty)
