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
import struct
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


@st.composite
def fast_frame(draw: st.DrawFn) -> bytes:
    """A plain frame on a channel with a handler (1 takes types below 128, 2
    declines), sometimes over the frame limit of `fresh` (64 when handshaken)."""
    channel = draw(st.sampled_from([1, 1, 1, 2]))
    type_ = draw(st.sampled_from([0, 7, 200]))
    return encode_frame(channel, type_, draw(st.binary(max_size=80)))


@st.composite
def cuts_inside_frames(draw: st.DrawFn, frames: list[bytes], skip: int) -> list[int]:
    """Read boundaries that mostly fall inside frames (in a header, in a
    payload, one or two in the same frame), as TCP reads of bulk output do."""
    cuts = []
    start = skip
    for frame in frames:
        for _ in range(draw(st.integers(0, 2))):
            cuts.append(start + draw(st.integers(1, max(1, len(frame) - 1))))
        start += len(frame)
    return sorted(set(cuts))


@FAST
@given(
    st.booleans(),
    st.sampled_from(["stream", "message"]),
    st.booleans(),
    st.booleans(),
    st.lists(st.one_of(plausible_frame(), fast_frame()), max_size=12),
    st.booleans(),
    st.data(),
)
def test_receive_fast_is_receive_data_or_message(
    is_client: bool,
    mode: str,
    handshake: bool,
    take: bool,
    frames: list[bytes],
    inside: bool,
    data: Any,
) -> None:
    if mode == "stream":
        stream = (b"" if handshake else b"OMUX") + b"".join(frames)
        if inside:
            cuts = data.draw(cuts_inside_frames(frames, 0 if handshake else 4))
        else:
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
    # a frame cut by the end of the read is left to the parser; completed by
    # the next read, it is taken there (its header was whole)
    cut = encode_frame(1, 0, b"cut")
    assert server.receive_fast(encode_frame(1, 0, b"z") + cut[:7], 4.0) == []
    assert taken[-1] == b"z"
    assert server.receive_fast(cut[7:], 5.0) is None and taken[-1] == b"cut"
    assert server._reader.buffered == 0 and server._last_rx == 5.0
    # cut inside its header: the general path completes it
    assert server.receive_fast(cut[:3], 6.0) == []
    events = server.receive_fast(cut[3:], 7.0)
    assert events is not None and [e.data for e in events] == [b"cut"]  # type: ignore[attr-defined]


# ------------------------------------------- frames cut across stream reads


def cut_twins(
    sends: list[tuple[int, int, bytes]],
    bounds: list[int],
    between: Any = None,
    wire: bytes | None = None,
) -> tuple[Log, list[Any]]:
    """Feed the same wire, cut at `bounds`, to two servers (one general, one
    fast with `feed_fast`'s handlers), `between(server, i)` called on both
    before read i; both must see the same; returns the fast one's log and
    what each `receive_fast` returned."""
    general, fast = open_pair("stream"), open_pair("stream")
    for pair in (general, fast):
        for channel, type_, payload in sends:
            pair.client.send_message(channel, type_, payload)
    stream = general.client.data_to_send() if wire is None else wire
    assert wire is not None or fast.client.data_to_send() == stream
    chunks = [stream[a:b] for a, b in itertools.pairwise([0, *bounds, len(stream)])]
    log_g: Log = []
    log_f: Log = []
    returned = []

    def handler(type_: int, payload: bytes) -> bool:
        if type_ >= 128:
            return False
        assert type(payload) is bytes
        log_f.append(("message", 1, type_, payload))
        return True

    fast.server.set_fast_handler(1, handler)
    fast.server.set_fast_handler(2, lambda type_, payload: False)
    for i, chunk in enumerate(chunks):
        if between is not None:
            log_g.extend(as_log(e) for e in between(general.server, i))
            log_f.extend(as_log(e) for e in between(fast.server, i))
        log_g.extend(as_log(e) for e in general.server.receive_data(chunk, float(i + 1)))
        events = fast.server.receive_fast(chunk, float(i + 1))
        returned.append(events)
        log_f.extend(as_log(e) for e in events or ())
        assert snapshot(fast.server) == snapshot(general.server)
    assert log_f == log_g
    return log_f, returned


BIG = bytes(range(256)) * 80  # 20480 bytes: kept as a memoryview piece
SMALL = b"s" * 1000  # kept in a bytearray piece


@pytest.mark.parametrize("payload", [BIG, SMALL])
@pytest.mark.parametrize("at", [6, 7, 500])
def test_a_frame_completed_by_the_next_read_is_taken(payload: bytes, at: int) -> None:
    sends = [(1, 0, payload), (1, 1, b"a"), (1, 2, b"b"), (1, 3, payload)]
    end = 6 + len(payload) + 7 + 7 + 6 + 100  # the second read ends inside the last frame
    log, returned = cut_twins(sends, [at, end])
    assert [m[2] for m in log] == [0, 1, 2, 3]
    # read 2 finished the first frame and took the whole ones; the rest of the
    # last frame is buffered by the general path, which returns no event
    assert returned[0] == [] and returned[1] == [] and returned[2] is None


@pytest.mark.parametrize("payload", [BIG, SMALL])
def test_a_frame_completed_across_three_reads_is_taken(payload: bytes) -> None:
    sends = [(1, 0, payload), (1, 1, b"tail")]
    log, returned = cut_twins(sends, [10, 300])
    assert returned == [[], [], None]
    assert [m[2] for m in log] == [0, 1] and log[0][3] == payload
    # the third read ends exactly at the frame's end: nothing after it
    log, returned = cut_twins([(1, 0, payload)], [3, 20])
    assert returned == [[], [], None] and log == [("message", 1, 0, payload)]


def test_a_declining_handler_leaves_the_cut_frame_to_the_general_path() -> None:
    sends = [(1, 200, SMALL), (1, 0, b"after")]
    log, returned = cut_twins(sends, [50])
    # both went the general way: returned as events, not taken
    assert [as_log(e) for e in returned[1] or ()] == log
    assert log == [("message", 1, 200, SMALL), ("message", 1, 0, b"after")]


def test_a_cut_frame_on_a_channel_without_a_taking_handler() -> None:
    # channel 2's handler declines everything; once the cut frame went the
    # general way, so does the rest of the read (channel 1's frame too)
    log, returned = cut_twins([(2, 0, SMALL), (1, 0, b"x")], [50])
    assert log == [("message", 2, 0, SMALL), ("message", 1, 0, b"x")]
    assert [as_log(e) for e in returned[1] or ()] == log


def test_a_cut_extended_frame_goes_the_general_way() -> None:
    payload = b"e" * 300
    # a legal but needless extended header (EXTENDED_LENGTH, 32-bit length)
    wire = struct.pack(">BBBBI", 1, 0, 0x01, 0, len(payload)) + payload
    wire += encode_frame(1, 0, b"next")
    log, returned = cut_twins([], [100], wire=wire)
    assert log == [("message", 1, 0, payload), ("message", 1, 0, b"next")]
    assert returned[1] is not None and len(returned[1]) == 2


def test_a_cut_fragment_goes_the_general_way() -> None:
    payload = bytes(range(256)) * 300  # 76800 bytes: two fragments
    log, returned = cut_twins([(1, 0, payload), (1, 0, b"next")], [1000, 70000])
    assert log == [("message", 1, 0, payload), ("message", 1, 0, b"next")]
    assert returned[2] is not None and len(returned[2]) == 2


def test_a_cut_frame_whose_channel_closes_in_between() -> None:
    def close_1(server: Connection, i: int) -> list[Event]:
        if i == 1:
            server.close_channel(1)
        return []

    log, returned = cut_twins([(1, 0, SMALL), (1, 0, b"x")], [50], between=close_1)
    # the handler is not reached: whatever the general path makes of frames
    # on a closing channel, the fast one does too (checked in cut_twins)
    assert returned[1] is not None
    assert [as_log(e) for e in returned[1]] == log


def test_receive_fast_messages_takes_until_the_first_declined() -> None:
    """The handlers take messages until one is declined; it and every later
    one (taken-able or not) come back as events, in order."""
    pair = open_pair()
    server = pair.server
    taken: list[bytes] = []

    def handler(type_: int, payload: bytes) -> bool:
        if payload == b"no":
            return False
        taken.append(payload)
        return True

    server.set_fast_handler(1, handler)
    frames = [encode_frame(1, 0, p) for p in (b"a", b"b")]
    assert server.receive_fast_messages(frames, 1.0) is None and taken == [b"a", b"b"]
    frames = [encode_frame(1, 0, b"c"), encode_frame(2, 0, b"other"),
              encode_frame(1, 0, b"d"), encode_frame(1, 0, b"no")]  # fmt: skip
    events = server.receive_fast_messages(frames, 2.0)
    assert taken == [b"a", b"b", b"c"]
    assert events is not None
    assert [(e.channel_id, e.data) for e in events] == [(2, b"other"), (1, b"d"), (1, b"no")]  # type: ignore[attr-defined]
    assert server.receive_fast_messages([], 3.0) is None
