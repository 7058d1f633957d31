"""The WebSocket keystroke paths' own framing: a client's small frame built as
one integer (`openmux.websocket.encode_small`), the client decoder's batch
(`FrameDecoder.feed`) against its frame-at-a-time parser, both client
drivers taking a read's whole messages as one batch (the builtin asyncio
client, `openmux.polled`), and vroomd's side (openmux.aio.ws) refusing a
keystroke-shaped frame whenever websockets' parser is not between frames.
Real peers on 127.0.0.1 where a peer is needed; hypothesis for the decoder."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import struct

import openmux.aio as aio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux import ChannelSpec, Event, MessageReceived, encode_frame
from openmux import websocket as ws
from openmux.polled import PolledClient
from vterm_support import server_frame
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, Protocol, State

from .test_fast_path import (
    FAST,
    OTHER,
    PATIENCE,
    _connect_kwargs,
    _serve,
    _ws_frame,
    recorded_session,
)
from .test_message_batches import feed_cut_anyhow

pytestmark = pytest.mark.timeout(120)


# ------------------------------------------------------------ encode_small


def _open_server_protocol() -> Protocol:
    """websockets' own server side, open (no HTTP here): the real parser a
    client frame must satisfy (masking, lengths, opcodes)."""
    return Protocol(SERVER, state=State.OPEN, max_size=None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=125))
def test_encode_small_is_encode_frame_with_its_key(payload: bytes) -> None:
    frame = ws.encode_small(payload)
    key = frame[2:6]
    assert frame == ws.encode_frame(ws.BINARY, payload, key)
    assert frame[:2] == bytes((0x82, 0x80 | len(payload)))
    protocol = _open_server_protocol()
    protocol.receive_data(frame)
    events = protocol.events_received()
    assert events == [Frame(Opcode.BINARY, payload)]
    assert protocol.data_to_send() == []  # nothing to answer: no error


def test_encode_small_draws_a_fresh_key_each_time() -> None:
    """RFC 6455 §5.3: a fresh, unpredictable key per frame (the pool is refilled
    from os.urandom 4 KiB at a time: cross a refill or two here)."""
    keys = [ws.encode_small(b"k")[2:6] for _ in range(3000)]
    assert len(set(keys)) > 2990  # 32-bit keys: a repeat or two at most by chance
    # the masked byte follows its own key, never a fixed pattern
    frames = [ws.encode_small(b"\0" * 9) for _ in range(100)]
    assert all(f[6:] == (f[2:6] * 3)[:9] for f in frames)


def test_encode_frame_without_a_key_uses_the_small_path_only_for_small_binary() -> None:
    for size in (0, 1, 125):
        frame = ws.encode_frame(ws.BINARY, b"x" * size)
        assert frame[:2] == bytes((0x82, 0x80 | size))
        assert ws.mask(frame[6:], frame[2:6]) == b"x" * size
    for opcode, payload in ((ws.PING, b"p"), (ws.CLOSE, b"\x03\xe8"), (ws.BINARY, b"y" * 126)):
        frame = ws.encode_frame(opcode, payload)
        protocol = _open_server_protocol()
        protocol.receive_data(frame)
        assert [(e.opcode, e.data) for e in protocol.events_received()] == [
            (Opcode(opcode), payload)
        ]


# ------------------------------------------------------------ FrameDecoder.feed


def _decode_reference(max_size: int, chunks: list[bytes]) -> tuple[list[object], int | None]:
    """Frame at a time, as before `feed`: items, then the error code if any."""
    decoder = ws.FrameDecoder(max_size)
    out: list[object] = []
    try:
        for chunk in chunks:
            decoder.buffer += chunk
            while (item := decoder.next()) is not None:
                out.append(item)
    except ws.WebSocketError as exc:
        return out, exc.code
    return out, None


def _decode_fed(
    max_size: int, chunks: list[bytes], eager: bool = False
) -> tuple[list[object], int | None]:
    """What a client does now: `feed` each read, then `next()` for the rest
    when the buffer holds `need` bytes (`eager`: whatever it holds)."""
    decoder = ws.FrameDecoder(max_size)
    out: list[object] = []
    fed = 0
    try:
        for chunk in chunks:
            fed += len(chunk)
            out.extend((ws.BINARY, payload) for payload in decoder.feed(chunk))
            kept = len(decoder.buffer) + decoder.held_size
            assert kept <= fed  # never more than what came
            assert not (decoder.held and decoder.buffer)  # kept pieces, or the buffer
            if eager or len(decoder.buffer) >= max(decoder.need, 1):
                while (item := decoder.next()) is not None:
                    out.append(item)
        while (item := decoder.next()) is not None:  # (nothing whole is left behind)
            out.append(item)
    except ws.WebSocketError as exc:
        return out, exc.code
    return out, None


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(data[pos : pos + cut])
        pos += cut
    chunks.append(data[pos:])
    return chunks


@st.composite
def _server_stream(draw: st.DrawFn) -> bytes:
    """Mostly plain binary frames of every length form, with what `feed`
    must leave to `next()`: fragments with a control frame between them,
    pings, text, a close, and now and then a broken frame."""
    parts = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["small", "small", "medium", "long64", "fragmented",
                                     "ping", "text", "close", "junk"]))  # fmt: skip
        payload = draw(st.binary(max_size=300))
        if kind == "small":
            parts.append(server_frame(ws.BINARY, payload[:125]))
        elif kind == "medium":
            parts.append(server_frame(ws.BINARY, payload + b"m" * 126))
        elif kind == "long64":  # a 64-bit length: legal, not the batch's
            parts.append(bytes((0x82, 127)) + struct.pack("!Q", len(payload)) + payload)
        elif kind == "fragmented":
            half = len(payload) // 2
            parts.append(server_frame(ws.BINARY, payload[:half], fin=False))
            parts.append(server_frame(ws.PING, b"between"))
            if draw(st.integers(0, 3)) == 0:  # a protocol error (RFC 6455 §5.4)
                parts.append(server_frame(ws.BINARY, b"not a continuation"))
            parts.append(server_frame(ws.CONT, payload[half:]))
        elif kind == "ping":
            parts.append(server_frame(ws.PING, payload[:125]))
        elif kind == "text":
            parts.append(server_frame(ws.TEXT, payload, fin=False) + server_frame(ws.CONT, b"t"))
        elif kind == "close":
            parts.append(server_frame(ws.CLOSE, b"\x03\xe8"))
        else:
            parts.append(draw(st.binary(max_size=12)))
    return b"".join(parts)


@settings(max_examples=400, deadline=None)
@given(
    _server_stream(),
    st.lists(st.integers(min_value=0, max_value=400), max_size=20),
    st.sampled_from([0, 1, 125, 126, 200, 400, 1 << 20]),
    st.booleans(),
)
def test_feed_then_next_equals_next_alone(
    stream: bytes, cuts: list[int], max_size: int, eager: bool
) -> None:
    """Any stream (valid or not), cut anywhere, any limit: the same messages,
    control frames and error as the frame-at-a-time parser, in order."""
    chunks = _cut(stream, cuts)
    assert _decode_fed(max_size, chunks, eager) == _decode_reference(max_size, chunks)


@settings(max_examples=200, deadline=None)
@given(_server_stream(), st.lists(st.integers(min_value=0, max_value=400), max_size=20), st.data())
def test_bytes_added_to_the_buffer_directly_keep_their_place(
    stream: bytes, cuts: list[int], data: st.DataObject
) -> None:
    """A client that stopped reading frames (paused) adds reads to `buffer`
    itself: what `feed` kept of a cut frame still comes first."""
    chunks = _cut(stream, cuts)
    decoder = ws.FrameDecoder(1 << 20)
    out: list[object] = []
    try:
        for chunk in chunks:
            if data.draw(st.booleans()):
                decoder.buffer += chunk
            else:
                out.extend((ws.BINARY, payload) for payload in decoder.feed(chunk))
        while (item := decoder.next()) is not None:
            out.append(item)
    except ws.WebSocketError as exc:
        assert (out, exc.code) == _decode_reference(1 << 20, chunks)
        return
    assert (out, None) == _decode_reference(1 << 20, chunks)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 50), max_size=10), st.integers(0, 300))
def test_feed_on_any_bytes(data: bytes, cuts: list[int], max_size: int) -> None:
    chunks = _cut(data, cuts)
    assert _decode_fed(max_size, chunks) == _decode_reference(max_size, chunks)


def test_feed_checks_the_size_limit_before_the_payload_arrives() -> None:
    for head in (
        bytes((0x82, 127)) + struct.pack("!Q", 1 << 62),
        bytes((0x82, 126)) + struct.pack("!H", 1001),
    ):
        decoder = ws.FrameDecoder(1000)
        assert decoder.feed(server_frame(ws.BINARY, b"ok") + head) == [b"ok"]
        assert decoder.need == 0  # not waiting for that payload
        with pytest.raises(ws.WebSocketError) as info:
            decoder.next()
        assert info.value.code == 1009


def test_feed_keeps_a_cut_frame_until_it_is_whole() -> None:
    frame = server_frame(ws.BINARY, b"z" * 5000)
    decoder = ws.FrameDecoder(10000)
    assert decoder.feed(server_frame(ws.BINARY, b"a") + frame[:100]) == [b"a"]
    assert decoder.need == len(frame) and not decoder.buffer and not decoder.idle
    for pos in range(100, 4100, 1000):
        assert decoder.feed(frame[pos : pos + 1000]) == []
        assert decoder.held_size == pos + 1000 and not decoder.buffer
    # the cut frame, then what followed it in the same read
    assert decoder.feed(frame[4100:] + server_frame(ws.BINARY, b"b")) == [b"z" * 5000, b"b"]
    assert decoder.idle and decoder.need == 0


# ------------------------------------------------------------ the clients' batches


def _bulk(rng: random.Random, channel: int) -> tuple[list[bytes], bytes]:
    payloads = [rng.randbytes(rng.choice([0, 1, 100, 119, 120, 4096, 20000])) for _ in range(30)]
    frames = [server_frame(ws.BINARY, encode_frame(channel, 0, p)) for p in payloads]
    ping_at = len(frames) // 2
    frames.insert(ping_at, server_frame(ws.PING, b"ping"))
    return payloads, b"".join(frames)


@pytest.mark.parametrize("seed", range(3))
async def test_builtin_client_batches_a_read(seed: int) -> None:
    """OpenMux's own asyncio WebSocket client fed bulk output cut anyhow (as
    its transport would): every payload whole and in order, several to a
    batch, the ping among them answered, the session still open."""

    async def handler(session: aio.Session) -> None:
        await asyncio.sleep(PATIENCE)

    server = await aio.serve(handler, "ws://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=[FAST, OTHER], ws_client="builtin")
        protocol = client.sink
        assert type(protocol).__name__ == "WSClientProtocol"
        got: list[bytes] = []
        batches: list[int] = []

        def tap(events: list[Event]) -> list[Event]:
            batches.append(sum(type(e) is MessageReceived for e in events))
            got.extend(bytes(e.data) for e in events if type(e) is MessageReceived)
            return [e for e in events if type(e) is not MessageReceived]

        client.add_event_tap(tap)
        channel = client.channel(FAST).info.id
        rng = random.Random(seed)
        payloads, wire = _bulk(rng, channel)
        written: list[bytes] = []
        protocol._write = written.append  # type: ignore[union-attr]  # the pong's way out
        feed = protocol.data_received  # type: ignore[union-attr]
        feed_cut_anyhow(feed, wire, rng, [1, 2, 3, 7, 100, 4096, 10000, 70000])
        del protocol._write  # type: ignore[union-attr]
        assert got == payloads
        assert max(batches) > 1
        pongs = [w for w in written if w[0] == 0x8A]
        assert len(pongs) == 1 and ws.mask(pongs[0][6:], pongs[0][2:6]) == b"ping"
        assert client.is_open
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_polled_client_batches_a_read() -> None:
    """`openmux.polled` over ws://: a read's whole messages in one batch,
    cut frames kept across reads, the ping answered, nothing lost."""

    async def handler(session: aio.Session) -> None:
        await asyncio.sleep(PATIENCE)

    server = await aio.serve(handler, "ws://127.0.0.1:0")
    try:
        url = server.urls[0]
        client = PolledClient(url, channels=[ChannelSpec(FAST)])
        await asyncio.get_running_loop().run_in_executor(None, client.connect)
        batches: list[list[bytes]] = []
        client.start(
            lambda events: batches.append(
                [bytes(e.data) for e in events if type(e) is MessageReceived]
            )
        )
        channel = next(c.id for c in client.connection.channels.values() if c.name == FAST)
        rng = random.Random(7)
        payloads, wire = _bulk(rng, channel)
        sent: list[bytes] = []
        client.write = sent.append  # type: ignore[method-assign]
        feed_cut_anyhow(client._ws_read, wire, rng, [1, 5, 100, 4096, 10000, 70000])
        assert [p for batch in batches for p in batch] == payloads
        assert max(len(batch) for batch in batches) > 1
        pongs = [w for w in sent if w[0] == 0x8A]
        assert len(pongs) == 1 and ws.mask(pongs[0][6:], pongs[0][2:6]) == b"ping"
        assert not client.lost
        client.abort()
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------ vroomd's side


async def test_server_keystroke_frame_inside_a_fragmented_message_is_a_protocol_error() -> None:
    """A keystroke-shaped frame (whole, small, binary) while websockets holds
    an unfinished fragmented message is not a keystroke: websockets sees it
    and fails the connection (RFC 6455 §5.4), whatever came before (the
    server's record of websockets being idle is dropped once it is fed)."""
    async with recorded_session("ws") as (client, recorder):
        session = recorder.session
        sock_ws = session.sink.ws  # type: ignore[union-attr]
        assert not inspect.ismethod(sock_ws.data_received)  # the fast receive is installed
        ids = recorder.ids
        key = encode_frame(ids[FAST], 0, b"k")
        sock_ws.data_received(_ws_frame(key))  # a keystroke: fast
        assert recorder.log == [(FAST, 0, b"k")]
        split = encode_frame(ids[OTHER], 0, b"two fragments")
        sock_ws.data_received(_ws_frame(split[:5], fin=False))
        for _ in range(3):  # let websockets' reader take the fragment from its queue
            await asyncio.sleep(0)
        sock_ws.data_received(_ws_frame(encode_frame(ids[FAST], 0, b"x")))
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert recorder.log == [(FAST, 0, b"k")]  # "x" never delivered
        assert sock_ws.protocol.close_sent.code == 1002
        await client.wait_closed()


async def test_server_echo_frames_are_what_websockets_would_write() -> None:
    """vroomd's echo (`send_now` → the sink's table-built head) for every
    small size and past it, read by websockets' own client."""
    got: list[bytes] = []
    done = asyncio.Event()
    sizes = [*range(0, 131), 1000, 1018]

    async def handler(session: aio.Session) -> None:
        channel = session.channel(FAST)
        for size in sizes:
            payload = os.urandom(size)
            assert session.send_now(channel.info.id, 0, payload)
            got.append(payload)
        await done.wait()

    server, url = await _serve("ws", handler)
    try:
        client = await aio.connect(url, **_connect_kwargs("ws"))
        channel = client.channel(FAST)
        received = [(await asyncio.wait_for(channel.recv(), PATIENCE)).data for _ in sizes]
        assert [bytes(r) for r in received] == got
        done.set()
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
