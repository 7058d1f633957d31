"""The speed paths of the core (issue 3) against plain reference code.

`FrameReader` keeps only payload pieces of a straddling frame and slices the
others out of each chunk; `Connection.receive_data` inlines plain application
frames. Both must give exactly what the simple versions give, for any stream
and any way of cutting it into reads.
"""

from __future__ import annotations

import struct
from array import array

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux import ChannelSpec, Config, Connection, Event, MessageReceived
from openmux.errors import FrameError, MessageTooLarge
from openmux.frame import FrameReader, RawFrame, check_header, decode_message, encode_frame

STD = struct.Struct(">BBBBH")
EXT = struct.Struct(">BBBBI")


def reference_parse(
    buf: bytes, limit: int
) -> tuple[list[RawFrame], int, FrameError | MessageTooLarge | None]:
    """All complete frames of `buf` (the obvious way), the bytes left, the error."""
    frames: list[RawFrame] = []
    off = 0
    try:
        while len(buf) - off >= 6:
            channel, type_, flags, reserved, length = STD.unpack_from(buf, off)
            check_header(channel, flags, reserved)
            header = 6
            if flags & 1:
                if len(buf) - off < 8:
                    break
                length = EXT.unpack_from(buf, off)[4]
                header = 8
            if limit and length > limit:
                raise MessageTooLarge(f"frame declares {length} bytes, limit is {limit}")
            if len(buf) - off < header + length:
                break
            start = off + header
            frames.append((channel, type_, flags & ~1, buf[start : start + length]))
            off = start + length
    except (FrameError, MessageTooLarge) as exc:
        return frames, 0, exc
    return frames, len(buf) - off, None


def frame_bytes() -> st.SearchStrategy[bytes]:
    standard = st.builds(
        lambda c, t, f, p: STD.pack(c, t, f, 0, len(p)) + p,
        st.integers(0, 255),
        st.integers(0, 255),
        st.sampled_from([0, 0, 2, 6, 4, 0x80]),
        st.binary(max_size=300),
    )
    extended = st.builds(
        lambda c, f, p: EXT.pack(c, 1, f | 1, 0, len(p)) + p,
        st.integers(0, 254),
        st.sampled_from([0, 2, 6]),
        st.binary(min_size=0, max_size=9000),
    )
    bad_reserved = st.builds(lambda r: STD.pack(1, 1, 0, r, 0), st.integers(1, 255))
    return st.one_of(standard, standard, standard, extended, bad_reserved, st.binary(max_size=9))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(frame_bytes(), max_size=10).map(b"".join),
    st.lists(st.integers(1, 10_000), max_size=20),
    st.sampled_from([0, 100, 5000]),
    st.booleans(),
)
def test_reader_matches_reference_for_any_cut(
    stream: bytes, cuts: list[int], limit: int, reuse_buffer: bool
) -> None:
    expected, rest, error = reference_parse(stream, limit)
    reader = FrameReader(limit)
    got: list[RawFrame] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        chunk = stream[pos : pos + cut]
        pos += cut
        if reuse_buffer:
            buffer = bytearray(chunk)
            got += reader.feed(buffer)
            buffer[:] = b"\xee" * len(buffer)  # the caller reuses its buffer
        else:
            got += reader.feed(chunk)
        if pos >= len(stream):
            break
    assert got == expected
    assert all(type(frame[3]) is bytes for frame in got)
    assert type(reader.error) is type(error) and str(reader.error) == str(error)
    if error is None:
        assert reader.buffered == rest


def test_reader_rechecks_a_pending_frame_against_a_lowered_limit() -> None:
    reader = FrameReader(0)
    assert reader.feed(encode_frame(1, 1, bytes(5000))[:100]) == []
    reader.limit = 1000  # negotiated meanwhile
    assert reader.feed(b"\0" * 10) == []
    assert isinstance(reader.error, MessageTooLarge)


def test_trickled_bytes_do_not_multiply_memory() -> None:
    reader = FrameReader(0)
    frame = encode_frame(1, 1, bytes(range(256)) * 40)
    for i in range(len(frame) - 1):
        assert reader.feed(frame[i : i + 1]) == []
    assert len(reader._chunks) <= 2
    assert reader.feed(frame[-1:]) == [(1, 1, 0, bytes(range(256)) * 40)]
    assert reader.buffered == 0


def test_wide_memoryviews_count_bytes() -> None:
    words = array("H", [1, 2, 3])
    frame = encode_frame(1, 2, memoryview(words))
    assert decode_message(frame) == (1, 2, 0, words.tobytes())


class Reference(Connection):
    """`receive_data` without the inline fast path: one `_handle_frame` per frame."""

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[Event]:
        if self.state.value == "closed":
            return []
        self._check_initiated()
        self._last_rx = now
        if self._stream_start:
            data = self._consume_magic(bytes(data))
            if self._stream_start or self._closed():
                return self._terminated_if_closed([])
        events: list[Event] = []
        for frame in self._reader.feed(data):
            self._handle_frame(frame, now, events)
            if self._closed():
                return events
        if self._reader.error is not None:
            self._fail(self._reader.error, now)
        return events


SPECS = [ChannelSpec("a"), ChannelSpec("b", reliable=False, ordered=False)]


def open_server(cls: type[Connection]) -> Connection:
    client = Connection(Config(is_client=True, channels=SPECS))
    server = cls(Config(is_client=False, max_message_size=1024))
    client.initiate(0.0)
    server.initiate(0.0)
    server.receive_data(client.data_to_send(), 0.0)
    assert sorted(server.channels) == [1, 2]
    server.data_to_send()
    return server


def app_frame() -> st.SearchStrategy[bytes]:
    plain = st.builds(encode_frame, st.integers(1, 4), st.integers(0, 3), st.binary(max_size=40))
    fragment = st.builds(
        lambda c, f, p: encode_frame(c, 1, p, f),
        st.integers(0, 2),
        st.sampled_from([2, 6]),
        st.binary(max_size=20),
    )
    control = st.sampled_from(
        [
            encode_frame(0, 0x10, b"\0\0\0\1"),  # PING
            encode_frame(0, 0x05, b'{"id":2}'),  # CLOSE_CHANNEL
            encode_frame(0, 0x03, b'{"requestId":7,"name":"c","reliable":true,"ordered":true}'),
            encode_frame(0, 0x20, b'{"code":1000}'),  # CLOSE
            encode_frame(0, 0x77, b""),  # unknown type
            encode_frame(1, 1, bytes(2000)),  # over maxMessageSize
        ]
    )
    return st.one_of(plain, plain, plain, fragment, control)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(app_frame(), max_size=25).map(b"".join), st.lists(st.integers(1, 200), max_size=10))
def test_connection_fast_path_matches_per_frame_handling(stream: bytes, cuts: list[int]) -> None:
    fast, slow = open_server(Connection), open_server(Reference)
    pos = 0
    for cut in [*cuts, len(stream)]:
        chunk = stream[pos : pos + cut]
        pos += cut
        assert fast.receive_data(chunk, 1.0) == slow.receive_data(chunk, 1.0)
        assert fast.data_to_send() == slow.data_to_send()
        assert fast.state is slow.state
        assert fast.channels == slow.channels
        if pos >= len(stream):
            break


def test_fast_path_events() -> None:
    server = open_server(Connection)
    events = server.receive_data(encode_frame(2, 1, b"\2\0\1\x2c") * 3, 1.0)
    assert events == [MessageReceived(2, 1, b"\2\0\1\x2c")] * 3


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame_bytes(), st.sampled_from([0, 100, 5000]), st.sampled_from([bytes, bytearray]))
def test_decode_message_matches_reference(message: bytes, limit: int, kind: type) -> None:
    frames, rest, error = reference_parse(message, limit)
    try:
        got = decode_message(kind(message), limit)
    except (FrameError, MessageTooLarge) as exc:
        assert error is not None or len(frames) != 1 or rest, exc
        if error is not None and not frames:  # the first header is the culprit
            assert type(exc) is type(error) and str(exc) == str(error)
    else:
        assert error is None and rest == 0 and frames == [got]
        assert type(got[3]) is bytes


def test_fast_event_is_a_real_message_received() -> None:
    import dataclasses

    import pytest
    from openmux.connection import _message_received

    event = _message_received(3, 7, b"x")
    assert type(event) is MessageReceived
    assert event == MessageReceived(3, 7, b"x") and hash(event) == hash(MessageReceived(3, 7, b"x"))
    assert repr(event) == "MessageReceived(channel_id=3, type=7, data=b'x')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.type = 8  # type: ignore[misc]


def open_stream_client() -> Connection:
    client = Connection(Config(is_client=True, channels=[ChannelSpec("a")], max_message_size=0))
    server = Connection(Config(is_client=False, max_message_size=0))
    client.initiate(0.0)
    server.initiate(0.0)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    assert list(client.channels) == [1]
    return client


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 5, 4095, 4096, 70_000]), st.sampled_from([bytes, bytearray])),
        max_size=6,
    )
)
def test_large_payloads_queued_apart_still_make_whole_frames(
    sends: list[tuple[int, type]],
) -> None:
    joined, framed = open_stream_client(), open_stream_client()
    expected = []
    for i, (size, kind) in enumerate(sends):
        payload = bytes([i]) * size
        expected.append(encode_frame(1, i, payload))
        for conn in (joined, framed):
            conn.send_message(1, i, kind(payload))
    assert joined.data_to_send() == b"".join(expected)
    frames = framed.messages_to_send()
    assert frames == expected
    assert all(type(frame) is bytes for frame in frames)
    assert joined.data_to_send() == b"" and framed.messages_to_send() == []
