"""Hypothesis properties of the frame codec and the connection.

No test here measures time: `deadline=None` everywhere (a slow shared machine
must not fail a property).
"""

from __future__ import annotations

import itertools
import struct
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux import (
    ChannelSpec,
    Config,
    Connection,
    ConnectionTerminated,
    Event,
    FrameReader,
    MessageTooLarge,
    State,
    decode_message,
    encode_frame,
)
from openmux.codes import MAX_CHANNEL_ID
from openmux.testing import Pair

from .helpers import hello

FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ codec

payloads = st.one_of(
    st.binary(max_size=200),
    st.integers(65536, 66000).map(lambda n: b"\x5a" * n),  # needs EXTENDED_LENGTH
)
raw_frames = st.tuples(
    st.integers(0, MAX_CHANNEL_ID),
    st.integers(0, 255),
    st.sampled_from([0, 0x02, 0x06]),
    payloads,
    st.booleans(),  # force EXTENDED_LENGTH on a short payload
)


def encode(frame: tuple[int, int, int, bytes, bool]) -> bytes:
    channel, type_, flags, payload, force_extended = frame
    if force_extended and len(payload) <= 0xFFFF:
        return struct.pack(">BBBBI", channel, type_, flags | 1, 0, len(payload)) + payload
    return encode_frame(channel, type_, payload, flags)


@FAST
@given(raw_frames)
def test_encode_decode_round_trip(frame: tuple[int, int, int, bytes, bool]) -> None:
    channel, type_, flags, payload, _ = frame
    data = encode(frame)
    assert decode_message(data) == (channel, type_, flags, payload)
    assert len(data) == len(payload) + (8 if data[2] & 1 else 6)
    if not frame[4]:
        assert (data[2] & 1) == (len(payload) > 0xFFFF)


@FAST
@given(st.lists(raw_frames, max_size=6), st.data())
def test_stream_reader_any_split(frames: list[Any], data: st.DataObject) -> None:
    stream = b"".join(encode(f) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader = FrameReader()
    got = []
    last = 0
    for cut in [*cuts, len(stream)]:
        got.extend(reader.feed(stream[last:cut]))
        last = cut
    assert got == [(c, t, f, p) for c, t, f, p, _ in frames]
    assert reader.buffered == 0 and reader.error is None


def test_hostile_header_does_not_allocate() -> None:
    """A header declaring 4 GiB - 1 (or the full 16 MiB reassembly limit) must
    not make anything allocate the declared size."""
    tracemalloc.start()
    try:
        reader = FrameReader(limit=0, hard_limit=16 * 1024 * 1024)
        assert reader.feed(bytes.fromhex("01010100ffffffff")) == []
        assert isinstance(reader.error, MessageTooLarge)
        within = FrameReader(limit=0, hard_limit=16 * 1024 * 1024)
        assert within.feed(bytes.fromhex("0101010000ffffff") + b"x" * 1000) == []
        assert within.buffered == 1008
        conn = Connection(Config(is_client=False, max_message_size=0), mode="stream")
        conn.initiate(0)
        conn.receive_data(hello([{"name": "a", "reliable": True, "ordered": True}]), 0)
        conn.receive_data(bytes.fromhex("0101010000ffffff"), 0)  # 16 MiB - 1, allowed
        conn.receive_data(b"y" * 4096, 0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


# ------------------------------------------------- splitting a real stream


class Tap(Pair):
    """A stream-mode pair that records every byte the client sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.wire: list[bytes] = []
        super().__init__(*args, **kwargs)

    def _carry(self, source: Connection, sink: Connection) -> list[Event]:
        if source is self.client:
            data = source.data_to_send()
            self.wire.append(data)
            return sink.receive_data(data, self.now) if data else []
        return super()._carry(source, sink)


def server_config() -> Config:
    return Config(is_client=False, max_message_size=64)


def record_client_stream() -> bytes:
    tap = Tap(
        Config(
            is_client=True,
            channels=[ChannelSpec("a"), ChannelSpec("b", reliable=False, ordered=False)],
            application="split/1",
        ),
        server_config(),
        mode="stream",
    )
    client = tap.client
    client.send_message(1, 1, bytes(range(256)) * 2)  # fragmented
    client.send_message(2, 7, b"tiny")
    client.send_message(1, 2, b"")
    client.ping(0.0)
    client.open_channel("c", metadata={"why": "x" * 100})  # fragmented control message
    tap.pump()
    client.send_message(3, 9, b"on the new channel")
    client.close_channel(2, "done with b")
    client.send_error(4004, "slow down", 1)
    tap.pump()
    client.close(1000, "bye", 0.0)
    tap.pump()
    return b"".join(tap.wire)


CLIENT_STREAM = record_client_stream()


def feed_server(chunks: list[bytes]) -> tuple[list[Event], bytes]:
    conn = Connection(server_config(), mode="stream")
    conn.initiate(0.0)
    events: list[Event] = []
    out = b""
    for chunk in chunks:
        events.extend(conn.receive_data(chunk, 0.0))
        out += conn.data_to_send()
    return events, out


REFERENCE = feed_server([CLIENT_STREAM])


def test_reference_stream_is_meaningful() -> None:
    events, out = REFERENCE
    names = [type(e).__name__ for e in events]
    assert names.count("MessageReceived") == 4
    assert names[-1] == "ConnectionTerminated" and "ChannelOpened" in names
    assert "ErrorReceived" in names and "ChannelClosed" in names
    assert out.startswith(b"OMUX")


@FAST
@given(st.data())
def test_any_split_of_a_stream_gives_the_same_events(data: st.DataObject) -> None:
    size = len(CLIENT_STREAM)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, size - 1), max_size=40))))
    bounds = [0, *cuts, size]
    chunks = [CLIENT_STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_server(chunks) == REFERENCE


def test_byte_by_byte_stream() -> None:
    assert feed_server([CLIENT_STREAM[i : i + 1] for i in range(len(CLIENT_STREAM))]) == REFERENCE


# ------------------------------------------------------ hostile input


def check_bounds(conn: Connection) -> None:
    cfg = conn.config
    assert conn._reader.buffered <= conn._frame_limit() + 8
    assert 0 <= conn._reassembly_bytes <= cfg.max_reassembly_total
    assert sum(size for _, _, size in conn._reassembly.values()) == conn._reassembly_bytes
    for channel_id, (_, _, size) in conn._reassembly.items():
        limit = cfg.max_reassembly if channel_id else cfg.max_control_message
        assert size <= limit
    assert all(1 <= cid <= MAX_CHANNEL_ID for cid in conn.channels)
    assert {c.name: c.id for c in conn.channels.values()} == conn._names


def fresh(is_client: bool, mode: str, handshake: bool) -> Connection:
    if handshake:
        pair = Pair(
            Config(is_client=True, channels=[ChannelSpec("a"), ChannelSpec("u", False, False)]),
            Config(
                is_client=False,
                max_message_size=64,
                max_reassembly=4096,
                max_reassembly_total=6000,
                max_control_message=2048,
            ),
            mode=mode,  # type: ignore[arg-type]
        )
        conn = pair.client if is_client else pair.server
        conn.messages_to_send()
        return conn
    conn = Connection(
        Config(is_client=is_client, max_reassembly=4096, max_reassembly_total=6000),
        mode=mode,  # type: ignore[arg-type]
    )
    conn.initiate(0.0)
    conn.messages_to_send()
    return conn


def feed(conn: Connection, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    terminated = False
    for i, chunk in enumerate(chunks):
        if conn.mode == "stream":
            new = conn.receive_data(chunk, float(i))
        else:
            new = conn.receive_message(chunk, float(i))
        assert all(isinstance(e, Event) for e in new)
        if terminated:
            assert new == []
        terminated = terminated or any(isinstance(e, ConnectionTerminated) for e in new)
        events.extend(new)
        check_bounds(conn)
        conn.data_to_send()
        when = conn.get_timer()
        if when is not None:
            conn.handle_timer(when)
            conn.data_to_send()
    return events


roles = st.booleans()
modes = st.sampled_from(["stream", "message"])


@FAST
@given(roles, modes, st.booleans(), st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_raise(
    is_client: bool, mode: str, handshake: bool, chunks: list[bytes]
) -> None:
    conn = fresh(is_client, mode, handshake)
    feed(conn, chunks)


@FAST
@given(roles, st.booleans(), st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_after_magic_never_raise(
    is_client: bool, handshake: bool, chunks: list[bytes]
) -> None:
    conn = fresh(is_client, "stream", handshake)
    feed(conn, [b"OMUX\x00", *chunks] if not handshake else [b"\x00", *chunks])


# Structured fuzzing: valid headers, plausible control bodies, so the input
# gets past the codec into every handler.

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.text(max_size=4), st.just([]), st.just({})
)
channel_entry = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["a", "b", "u", "control", ""]) | junk,
            "reliable": st.booleans() | junk,
            "ordered": st.booleans() | junk,
            "metadata": junk,
            "maxRetransmits": junk,
        },
    ),
    st.text(max_size=3),
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from([[0, 1, 0], [0, 3, 1], [1, 0, 0], [0, 1], "0.1.0"]),
        "requestId": st.integers(0, 4) | junk,
        "id": st.integers(-1, 256) | junk,
        "name": st.sampled_from(["a", "b", "c", "u", "control"]) | junk,
        "reliable": st.booleans() | junk,
        "ordered": st.booleans() | junk,
        "code": st.sampled_from([1000, 1002, 4003, 4005]) | junk,
        "channel": junk,
        "reason": st.text(max_size=5) | junk,
        "channels": st.lists(channel_entry, max_size=4) | junk,
        "maxMessageSize": st.sampled_from([0, 10, 64, 100, 65535]) | junk,
        "pingInterval": st.sampled_from([0, 1, 30, 1.5]) | junk,
        "pingTimeout": st.sampled_from([0, 1, 10]) | junk,
        "extensions": st.lists(st.sampled_from(["fragmentation", "session-resume"])) | junk,
        "auth": junk,
        "sequence": junk,
    },
)
control_types = st.sampled_from(
    [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x20, 0x30, 0x37, 0x42, 0xF0]
)


@st.composite
def plausible_frame(draw: st.DrawFn) -> bytes:
    import json

    channel = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 9]))
    type_ = draw(control_types) if channel == 0 else draw(st.integers(0, 255))
    flags = draw(st.sampled_from([0, 0, 0, 0x02, 0x06, 0x04, 0x08]))
    if channel == 0 and type_ == 0x10:
        payload = draw(st.binary(min_size=3, max_size=5))
    elif channel == 0 and type_ == 0x11:
        payload = draw(st.binary(min_size=7, max_size=9))
    elif channel == 0:
        payload = json.dumps(draw(bodies)).encode()
        if draw(st.integers(0, 9)) == 0:
            payload = payload[: draw(st.integers(0, len(payload)))]
    else:
        payload = draw(st.binary(max_size=100))
    return encode_frame(channel, type_, payload, flags)


@FAST
@given(roles, modes, st.booleans(), st.lists(plausible_frame(), max_size=12), st.data())
def test_plausible_frames_never_raise(
    is_client: bool, mode: str, handshake: bool, frames: list[bytes], data: st.DataObject
) -> None:
    conn = fresh(is_client, mode, handshake)
    if mode == "stream":
        stream = (b"" if handshake else b"OMUX") + b"".join(frames)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
        bounds = [0, *cuts, len(stream)]
        chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    else:
        chunks = frames
    feed(conn, chunks)
    if conn.state is State.OPEN:
        # what is left is still a usable connection
        for channel_id in list(conn.channels):
            conn.send_message(channel_id, 1, b"still works")
        conn.close(1000, "done", 100.0)
        assert conn.handle_timer(200.0)[0] == ConnectionTerminated(1000, "done", by_peer=False)
