"""`Connection.receive_fast`, `set_fast_handler`, `receive_messages` and
`encode_direct`: the public fast paths behave exactly like the general ones.

The property: whatever arrives (plausible frames of every kind, garbage,
fragments, control), cut anyhow, a connection fed through the fast path
ends in the same state, with the same bytes to send, as one fed through
`receive_data` / `receive_message`, and what its handlers took plus the
events it returned are, in order, the events the general path returned.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openmux import (
    ChannelSpec,
    Config,
    Connection,
    Event,
    LocalProtocolError,
    MessageReceived,
    State,
    encode_frame,
)
from openmux.testing import Pair

from .test_properties import FAST, fresh, plausible_frame

Log = list[Any]


def snapshot(conn: Connection) -> tuple[Any, ...]:
    """Everything a caller can observe of a connection, and its parser's state."""
    out = conn.data_to_send() if conn.mode == "stream" else b"".join(conn.messages_to_send())
    return (
        conn.state,
        conn.close_code,
        conn.close_reason,
        sorted((c.id, c.name) for c in conn.channels.values()),
        conn._reader.buffered,
        conn._reader.error is not None,
        {k: v[2] for k, v in conn._reassembly.items()},
        conn._last_rx,
        conn.get_timer(),
        out,
    )


def as_log(event: Event) -> Any:
    if type(event) is MessageReceived:
        return ("message", event.channel_id, event.type, bytes(event.data))
    return event


def feed_general(conn: Connection, chunks: list[bytes]) -> tuple[Log, list[Any]]:
    log: Log = []
    states = []
    for i, chunk in enumerate(chunks):
        if conn.mode == "stream":
            events = conn.receive_data(chunk, float(i + 1))
        else:
            events = conn.receive_message(chunk, float(i + 1))
        log.extend(as_log(e) for e in events)
        states.append(snapshot(conn))
    return log, states


def feed_fast(conn: Connection, chunks: list[bytes], take: bool) -> tuple[Log, list[Any]]:
    """Handlers on channels 1 and 2: channel 1's takes types below 128 (if
    `take`), channel 2's declines everything."""
    log: Log = []
    states = []

    def handler(type_: int, payload: bytes) -> bool:
        if not take or type_ >= 128:
            return False
        log.append(("message", 1, type_, bytes(payload)))
        return True

    def never(type_: int, payload: bytes) -> bool:
        return False

    if 1 in conn.channels:
        conn.set_fast_handler(1, handler)
    if 2 in conn.channels:
        conn.set_fast_handler(2, never)
    for i, chunk in enumerate(chunks):
        events = conn.receive_fast(chunk, float(i + 1))
        if events is not None:
            log.extend(as_log(e) for e in events)
        states.append(snapshot(conn))
    return log, states


@FAST
@given(
    st.booleans(),
    st.sampled_from(["stream", "message"]),
    st.booleans(),
    st.booleans(),
    st.lists(plausible_frame(), max_size=12),
    st.data(),
)
def test_receive_fast_is_receive_data_or_message(
    is_client: bool, mode: str, handshake: bool, take: bool, frames: list[bytes], data: Any
) -> None:
    if mode == "stream":
        stream = (b"" if handshake else b"OMUX") + b"".join(frames)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
        chunks = [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]
    else:
        chunks = frames
    general = feed_general(fresh(is_client, mode, handshake), chunks)
    fast = feed_fast(fresh(is_client, mode, handshake), chunks, take)
    assert fast == general


@FAST
@given(
    st.booleans(),
    st.booleans(),
    st.lists(st.one_of(plausible_frame(), st.binary(max_size=12)), max_size=14),
    st.data(),
)
def test_receive_messages_is_receive_message_on_each(
    is_client: bool, handshake: bool, frames: list[bytes], data: Any
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(frames)), max_size=5)))
    batches = [frames[a:b] for a, b in itertools.pairwise([0, *cuts, len(frames)])]
    one = fresh(is_client, "message", handshake)
    batched = fresh(is_client, "message", handshake)
    for i, batch in enumerate(batches):
        expected: list[Event] = []
        for frame in batch:
            expected.extend(one.receive_message(frame, float(i + 1)))
        got = batched.receive_messages(batch, float(i + 1))
        assert [as_log(e) for e in got] == [as_log(e) for e in expected]
        assert snapshot(batched) == snapshot(one)


def open_pair(mode: str = "message") -> Pair:
    return Pair(
        Config(is_client=True, channels=[ChannelSpec("a"), ChannelSpec("b")]),
        Config(is_client=False),
        mode=mode,  # type: ignore[arg-type]
    )


def test_receive_messages_takes_memoryviews_and_stops_when_closed() -> None:
    pair = open_pair()
    server = pair.server
    frames = [encode_frame(1, 3, b"one"), encode_frame(2, 4, b"two")]
    events = server.receive_messages([memoryview(f) for f in frames], 1.0)
    assert [(e.channel_id, e.type, e.data) for e in events] == [(1, 3, b"one"), (2, 4, b"two")]  # type: ignore[attr-defined]
    assert all(type(e.data) is bytes for e in events)  # type: ignore[attr-defined]
    # a bad frame closes (CLOSE 1002); the frames after it are not handed out
    events = server.receive_messages([b"\x01", encode_frame(1, 0, b"late")], 2.0)
    assert server.state is State.CLOSING and server.close_code == 1002
    assert not any(type(e) is MessageReceived for e in events)
    server.connection_lost(3.0)
    assert server.receive_messages([encode_frame(1, 0, b"x")], 4.0) == []


def test_receive_messages_needs_initiate() -> None:
    conn = Connection(Config(is_client=False), mode="message")
    with pytest.raises(LocalProtocolError):
        conn.receive_messages([b""], 0.0)


@pytest.mark.parametrize("mode", ["stream", "message"])
def test_fast_handler_ends_with_its_channel(mode: str) -> None:
    pair = open_pair(mode)
    client, server = pair.client, pair.server
    taken: list[bytes] = []

    def handler(type_: int, payload: bytes) -> bool:
        taken.append(payload)
        return True

    server.set_fast_handler(1, handler)
    client.send_message(1, 0, b"fast")
    wire = client.data_to_send() if mode == "stream" else client.messages_to_send()[0]
    assert server.receive_fast(wire, 1.0) is None and taken == [b"fast"]
    assert server._last_rx == 1.0
    # closed and reopened on the same id: the handler is not reached
    server.close_channel(1)
    pair.pump()
    client.open_channel("a2")
    pair.pump()
    assert server.channels[1].name == "a2" if 1 in server.channels else True
    reopened = next(c.id for c in client.channels.values() if c.name == "a2")
    client.send_message(reopened, 0, b"general")
    wire = client.data_to_send() if mode == "stream" else client.messages_to_send()[0]
    events = server.receive_fast(wire, 2.0)
    assert events is not None and [e.data for e in events] == [b"general"]  # type: ignore[attr-defined]
    assert taken == [b"fast"]
    # removing it, and registering on a channel that is not open
    server.set_fast_handler(2, handler)
    server.set_fast_handler(2, None)
    client.send_message(2, 0, b"b")
    wire = client.data_to_send() if mode == "stream" else client.messages_to_send()[0]
    assert server.receive_fast(wire, 3.0) is not None and taken == [b"fast"]
    with pytest.raises(LocalProtocolError) as info:
        server.set_fast_handler(200, handler)
    assert info.value.code == 4003


def test_receive_fast_without_handlers_is_the_general_path() -> None:
    pair = open_pair("stream")
    pair.client.send_message(1, 0, b"x")
    events = pair.server.receive_fast(pair.client.data_to_send(), 1.0)
    assert events is not None and [e.data for e in events] == [b"x"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["stream", "message"])
def test_encode_direct_is_send_message_exactly(mode: str) -> None:
    pair = open_pair(mode)
    client = pair.client
    for payload in (b"", b"k", b"x" * 65535):
        frame = client.encode_direct(1, 7, payload)
        client.send_message(1, 7, payload)
        queued = client.data_to_send() if mode == "stream" else client.messages_to_send()[0]
        assert frame == queued
    assert client.encode_direct(1, 0, b"x" * 65536) is None  # would be fragmented
    assert client.encode_direct(9, 0, b"x") is None  # not open
    client.ping(1.0)
    assert client.encode_direct(1, 0, b"x") is None  # the PING goes first
    client.data_to_send() if mode == "stream" else client.messages_to_send()
    assert client.encode_direct(1, 0, b"x") is not None
    client.close(1000, "bye", 2.0)
    assert client.encode_direct(1, 0, b"x") is None
    small = Pair(
        Config(is_client=True, channels=[ChannelSpec("a")]),
        Config(is_client=False, max_message_size=1024),
    ).client
    small.messages_to_send()
    assert small.encode_direct(1, 0, b"x" * 1025) is None  # over the negotiated size
    assert small.encode_direct(1, 0, b"x" * 1024) is not None


def test_receive_messages_stops_at_the_peers_close() -> None:
    pair = open_pair()
    client, server = pair.client, pair.server
    client.send_message(1, 0, b"before")
    client.close(1000, "bye", 1.0)
    frames = [*client.messages_to_send(), encode_frame(1, 0, b"after")]
    events = server.receive_messages(frames, 2.0)
    assert [type(e).__name__ for e in events] == ["MessageReceived", "ConnectionTerminated"]
    assert server.state is State.CLOSED


def test_receive_fast_takes_a_prefix_of_a_read_then_the_general_path() -> None:
    pair = open_pair("stream")
    client, server = pair.client, pair.server
    taken: list[bytes] = []

    def handler(type_: int, payload: bytes) -> bool:
        if type_:
            return False
        taken.append(payload)
        return True

    server.set_fast_handler(1, handler)
    for channel, type_, payload in [(1, 0, b"a"), (1, 0, b"b"), (2, 0, b"c"), (1, 0, b"d")]:
        client.send_message(channel, type_, payload)
    data = client.data_to_send()
    events = server.receive_fast(data + data[:3], 1.0)
    # a, b taken; c (no handler) and everything after it the general way
    assert taken == [b"a", b"b"]
    assert events is not None
    assert [(e.channel_id, e.data) for e in events] == [(2, b"c"), (1, b"d")]  # type: ignore[attr-defined]
    assert server._reader.buffered == 3
    # a partial frame is buffered: nothing is taken until it is complete
    events = server.receive_fast(data[3:], 2.0)
    assert taken == [b"a", b"b"] and events is not None and len(events) == 4
    events = server.receive_fast(encode_frame(1, 5, b"x") + encode_frame(1, 0, b"y"), 3.0)
    assert taken == [b"a", b"b"]  # declined: the rest goes the general way
    assert events is not None and [e.data for e in events] == [b"x", b"y"]  # type: ignore[attr-defined]
    # a frame cut by the end of the read is left to the parser, then completed there
    cut = encode_frame(1, 0, b"cut")
    assert server.receive_fast(encode_frame(1, 0, b"z") + cut[:7], 4.0) == []
    assert taken[-1] == b"z"
    events = server.receive_fast(cut[7:], 5.0)
    assert events is not None and [e.data for e in events] == [b"cut"]  # type: ignore[attr-defined]
