"""openmux.websocket, the sans-IO WebSocket client part both clients use:
the frame decoder and the upgrade check fuzzed (only their own errors, the
size limit before any payload is buffered) and round trips cut anywhere."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux import websocket as ws
from vterm_support import server_frame


def decode_all(decoder: ws.FrameDecoder, chunks: list[bytes]) -> list[tuple[int, bytes]]:
    out = []
    for chunk in chunks:
        decoder.buffer += chunk
        while (item := decoder.next()) is not None:
            out.append(item)
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=300))
def test_any_bytes_give_frames_or_a_websocket_error(data: bytes, max_size: int) -> None:
    decoder = ws.FrameDecoder(max_size)
    try:
        for item in decode_all(decoder, [data]):
            opcode, payload = item
            assert opcode in (ws.BINARY, ws.TEXT, ws.PING, ws.PONG, ws.CLOSE)
            if opcode == ws.BINARY:
                assert len(payload) <= max_size
    except ws.WebSocketError as exc:
        assert exc.code in (1002, 1009)
    # never more buffered than what was fed
    assert len(decoder.buffer) <= len(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["binary", "fragmented", "ping", "text"]), st.binary(max_size=300)
        ),
        max_size=8,
    ),
    st.lists(st.integers(min_value=1, max_value=50), max_size=30),
)
def test_messages_cut_anywhere_come_back_whole(
    messages: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    stream = b""
    expected: list[tuple[int, bytes]] = []
    for kind, payload in messages:
        if kind == "binary":
            stream += server_frame(ws.BINARY, payload)
            expected.append((ws.BINARY, payload))
        elif kind == "fragmented":
            half = len(payload) // 2
            stream += server_frame(ws.BINARY, payload[:half], fin=False)
            stream += server_frame(ws.PING, b"p")  # a control frame between fragments
            stream += server_frame(ws.CONT, payload[half:])
            expected += [(ws.PING, b"p"), (ws.BINARY, payload)]
        elif kind == "ping":
            stream += server_frame(ws.PING, payload[:125])
            expected.append((ws.PING, payload[:125]))
        else:
            stream += server_frame(ws.TEXT, payload, fin=False) + server_frame(ws.CONT, b"x")
            expected.append((ws.TEXT, b""))  # reported once, the rest skipped
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(stream[pos : pos + cut])
        pos += cut
    chunks.append(stream[pos:])
    decoder = ws.FrameDecoder(1024)
    assert decode_all(decoder, chunks) == expected
    assert decoder.idle


def test_size_limit_is_checked_before_the_payload_arrives() -> None:
    decoder = ws.FrameDecoder(1000)
    decoder.buffer += bytes((0x82, 127)) + struct.pack("!Q", 1 << 62)  # no payload yet
    with pytest.raises(ws.WebSocketError) as info:
        decoder.next()
    assert info.value.code == 1009
    decoder = ws.FrameDecoder(1000)  # fragments count together
    decoder.buffer += server_frame(ws.BINARY, b"a" * 600, fin=False)
    decoder.buffer += bytes((0x80, 126)) + struct.pack("!H", 600)
    with pytest.raises(ws.WebSocketError) as info:
        decoder.next()
    assert info.value.code == 1009


@pytest.mark.parametrize(
    "frame",
    [
        bytes((0x82 | 0x40, 0)),  # a reserved bit
        bytes((0x82, 0x80)) + b"\0" * 4,  # a masked server frame
        bytes((0x09, 0)),  # a fragmented control frame
        bytes((0x89, 126)) + struct.pack("!H", 126) + b"\0" * 126,  # control frame too long
        bytes((0x80, 0)),  # a continuation with nothing to continue
        bytes((0x83, 0)),  # an unknown opcode
    ],
)
def test_protocol_errors(frame: bytes) -> None:
    decoder = ws.FrameDecoder(1000)
    decoder.buffer += frame
    with pytest.raises(ws.WebSocketError) as info:
        decoder.next()
    assert info.value.code == 1002


def _answer(accept: bytes, status: str = "101 Switching Protocols", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept.decode()}\r\n{extra}\r\n"
    ).encode()


def test_upgrade_request_and_answer() -> None:
    target = ws.Target.of("ws://[::1]:8022/omux?x=1", "/omux")
    request, accept = ws.client_request(target.host_header, target.target, ["X-A: b"])
    assert request.startswith(b"GET /omux?x=1 HTTP/1.1\r\nHost: [::1]:8022\r\n")
    assert request.endswith(b"X-A: b\r\n\r\n")
    buffer = bytearray(_answer(accept) + b"\x82\x01z")
    assert ws.parse_response(buffer, accept)
    assert buffer == b"\x82\x01z"  # frames after the head stay
    assert not ws.parse_response(bytearray(b"HTTP/1.1 101 Swi"), accept)
    with pytest.raises(ws.UpgradeRefused) as info:
        ws.parse_response(bytearray(_answer(accept, "401 Unauthorized")), accept)
    assert info.value.status == 401
    with pytest.raises(ws.UpgradeRefused) as info:
        ws.parse_response(bytearray(_answer(accept, "302 Found", "Location: /x\r\n")), accept)
    assert info.value.location == "/x"
    with pytest.raises(ws.UpgradeRefused):
        ws.parse_response(bytearray(_answer(b"wrong")), accept)
    with pytest.raises(ws.UpgradeRefused):
        ws.parse_response(bytearray(b"x" * (ws.MAX_HEAD + 1)), accept)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_answer_is_accepted_refused_or_awaited(data: bytes) -> None:
    buffer = bytearray(data)
    try:
        ws.parse_response(buffer, b"abc")
    except ws.UpgradeRefused:
        pass


def test_mask_round_trip() -> None:
    key = b"\x01\x02\x03\x04"
    for size in range(0, 20):
        data = bytes(range(size))
        assert ws.mask(ws.mask(data, key), key) == data
    frame = ws.encode_frame(ws.BINARY, b"hello", key)
    assert frame[:2] == b"\x82\x85" and frame[2:6] == key and ws.mask(frame[6:], key) == b"hello"
