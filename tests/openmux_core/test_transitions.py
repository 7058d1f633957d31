"""Every (state, control type) pair has a defined outcome.

The connection has no explicit transition table (dispatch is by state, then
type), so the table lives here: for each state a side can be in when a frame
arrives, and every channel-0 type (plus an unknown one and an application
frame), the reply sent, the events and the state afterwards.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from openmux import ChannelSpec, Config, Connection, ControlType, State, encode_frame

from .helpers import chan, hello

UNKNOWN = 0x42
APP = -1  # a frame on application channel 1, which is open once OPEN
TYPES = [*ControlType, UNKNOWN, APP]


def payload_for(type_: int, is_client: bool) -> bytes:
    """A well-formed payload for each type, as a correct peer would send it."""
    if type_ == ControlType.PING:
        return struct.pack(">I", 5)
    if type_ == ControlType.PONG:
        return struct.pack(">II", 0, 5)
    bodies: dict[int, Any] = {
        ControlType.HELLO: {"version": [0, 1, 0], "channels": []},
        ControlType.WELCOME: {"version": [0, 1, 0], "channels": []},
        ControlType.OPEN_CHANNEL: {"requestId": 9, "id": 7, **chan("new")},
        ControlType.CHANNEL_ACK: {"requestId": 9, "id": 7, "name": "new"},
        ControlType.CLOSE_CHANNEL: {"id": 1},
        ControlType.CHANNEL_REJECT: {"requestId": 9, "code": 4000},
        ControlType.CLOSE: {"code": 1000},
        ControlType.ERROR: {"code": 4004},
    }
    return json.dumps(bodies.get(type_, {})).encode()


def frame_for(type_: int, is_client: bool) -> bytes:
    if type_ == APP:
        return encode_frame(1, 1, b"data")
    return encode_frame(0, type_, payload_for(type_, is_client))


def make(state: str, is_client: bool) -> Connection:
    channels = [ChannelSpec("a")] if is_client else []
    conn = Connection(Config(is_client=is_client, channels=channels), mode="message")
    conn.initiate(0.0)
    if state in ("open", "closing"):
        if is_client:
            welcome = {"version": [0, 1, 0], "channels": [{"name": "a", "id": 1}]}
            conn.receive_message(encode_frame(0, 2, json.dumps(welcome).encode()), 0.0)
        else:
            conn.receive_message(hello([chan("a")]), 0.0)
        assert conn.state is State.OPEN
    if state == "closing":
        conn.close(1000, "", 0.0)
    if state == "closed":
        conn.connection_lost(0.0)
    conn.messages_to_send()
    return conn


# Outcome: (reply types sent, event class names, state after).
Outcome = tuple[list[str], list[str], str]
CLOSE_1002: Outcome = (["CLOSE:1002"], [], "closing")
ERR = "ERROR:"


def expected(state: str, is_client: bool, type_: int) -> Outcome:
    if state == "closed":
        return ([], [], "closed")
    if state == "closing":
        if type_ == ControlType.CLOSE:
            return ([], ["ConnectionTerminated"], "closed")
        return ([], [], "closing")
    if state == "handshake":
        if type_ == ControlType.CLOSE:
            return (["CLOSE:1000"], ["ConnectionTerminated"], "closed")
        if type_ == ControlType.ERROR:
            return ([], ["ErrorReceived"], "await-welcome" if is_client else "await-hello")
        if is_client and type_ == ControlType.WELCOME:
            return ([], ["HandshakeCompleted"], "open")
        if not is_client and type_ == ControlType.HELLO:
            return (["WELCOME"], ["HandshakeCompleted"], "open")
        return CLOSE_1002
    # open
    table: dict[int, Outcome] = {
        ControlType.HELLO: CLOSE_1002,
        ControlType.WELCOME: CLOSE_1002,
        ControlType.OPEN_CHANNEL: (["CHANNEL_ACK"], ["ChannelOpened"], "open"),
        ControlType.CHANNEL_ACK: ([ERR + "4001"], [], "open"),  # unknown requestId
        ControlType.CLOSE_CHANNEL: ([], ["ChannelClosed"], "open"),
        ControlType.CHANNEL_REJECT: ([ERR + "4001"], [], "open"),  # unknown requestId
        ControlType.PING: (["PONG"], [], "open"),
        ControlType.PONG: ([], ["PongReceived"], "open"),
        ControlType.CLOSE: (["CLOSE:1000"], ["ConnectionTerminated"], "closed"),
        ControlType.ERROR: ([], ["ErrorReceived"], "open"),
        UNKNOWN: ([ERR + "1003"], [], "open"),
        APP: ([], ["MessageReceived"], "open"),
    }
    if type_ in table:
        return table[type_]
    assert 0x30 <= type_ <= 0x37
    return ([ERR + "1003"], [], "open")  # extension not negotiated


def describe_sent(conn: Connection) -> list[str]:
    names = []
    for message in conn.messages_to_send():
        type_ = message[1]
        name = ControlType(type_).name if message[0] == 0 else str(type_)
        if type_ in (ControlType.CLOSE, ControlType.ERROR):
            name += ":" + str(json.loads(message[6:])["code"])
        names.append(name)
    return names


CASES = [
    (state, is_client, type_)
    for state in ("handshake", "open", "closing", "closed")
    for is_client in (False, True)
    for type_ in TYPES
]


def case_id(case: Any) -> str:
    if isinstance(case, bool):
        return "client" if case else "server"
    if isinstance(case, int):
        if case == APP:
            return "APP"
        return ControlType(case).name if case in set(ControlType) else hex(case)
    return str(case)


@pytest.mark.parametrize(("state", "is_client", "type_"), CASES, ids=case_id)
def test_transition(state: str, is_client: bool, type_: int) -> None:
    conn = make(state, is_client)
    events = conn.receive_message(frame_for(type_, is_client), 1.0)
    want_sent, want_events, want_state = expected(state, is_client, type_)
    assert describe_sent(conn) == want_sent
    assert [type(e).__name__ for e in events] == want_events
    assert conn.state.value == want_state


@pytest.mark.parametrize("is_client", [False, True], ids=case_id)
@pytest.mark.parametrize(
    "type_",
    [t for t in range(256) if t not in set(ControlType)],
    ids=hex,
)
def test_every_unassigned_type_is_unsupported(is_client: bool, type_: int) -> None:
    conn = make("open", is_client)
    conn.receive_message(encode_frame(0, type_, b"{}"), 1.0)
    assert describe_sent(conn) == ["ERROR:1003"]
    assert conn.state is State.OPEN


def test_extension_types_with_negotiation() -> None:
    conn = Connection(Config(is_client=False, extensions=["session-persistence"]), mode="message")
    conn.initiate(0)
    conn.receive_message(hello(extensions=["session-persistence"]), 0)
    conn.messages_to_send()
    for type_ in range(0x30, 0x38):
        (event,) = conn.receive_message(encode_frame(0, type_, b'{"k":1}'), 0)
        assert type(event).__name__ == "ExtensionMessage"
    conn.receive_message(encode_frame(0, 0x31, b"[]"), 0)
    assert describe_sent(conn) == ["ERROR:4001"]
