"""`Session.set_fast_handler` / `Session.send_now` and the WebSocket sink's own
framing: the keystroke fast paths must deliver exactly what the general path
would, in the same order, over real TCP and WebSocket connections on
127.0.0.1 -- fast and slow frames interleaved in one read, reads split at
every byte, and what the fast path must refuse (fragments, bad headers,
something queued ahead) going the general way."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import openmux.aio as aio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux import ConnectionTerminated, ControlType, Event, MessageReceived, encode_frame

pytestmark = pytest.mark.timeout(120)
PATIENCE = 30.0
FAST, OTHER = "fast", "other"
DONE = 9  # type on OTHER: the script is over


class Recorder:
    """Owns every channel of a session with a tap; the FAST channel's types
    in `fast_types` also through a fast handler. One log for both paths."""

    def __init__(self, session: aio.Session, fast_types: tuple[int, ...] = (0,)) -> None:
        self.session = session
        self.log: list[tuple[str, int, bytes]] = []
        self.fast_count = 0
        self.done = asyncio.Event()
        self.terminated: ConnectionTerminated | None = None
        conn = session.connection
        for channel in list(conn.channels.values()):  # granted in HELLO
            assert session.detach_channel(channel.id) == []

        def tap(events: list[Event]) -> list[Event]:
            rest: list[Event] = []
            for event in events:
                if type(event) is MessageReceived and event.channel_id in conn.channels:
                    name = conn.channels[event.channel_id].name
                    if event.type == DONE:
                        self.done.set()
                    else:
                        self.log.append((name, event.type, bytes(event.data)))
                else:
                    if isinstance(event, ConnectionTerminated):
                        self.terminated = event
                        self.done.set()
                    rest.append(event)
            return rest

        def fast(type_: int, payload: bytes) -> bool:
            assert type(payload) is bytes
            if type_ not in fast_types:
                return False
            self.fast_count += 1
            self.log.append((FAST, type_, payload))
            return True

        session.add_event_tap(tap)
        self.ids = {c.name: c.id for c in conn.channels.values()}
        session.set_fast_handler(self.ids[FAST], fast)


def script(rng: random.Random, count: int) -> list[tuple[str, int, bytes]]:
    """Messages to send: mostly fast-path ones, mixed with what is not."""
    out: list[tuple[str, int, bytes]] = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.6:  # a keystroke, or a small burst of output
            size = rng.choice([0, 1, 1, 1, 3, 125, 126, 127, 300, 1024])
            out.append((FAST, 0, rng.randbytes(size)))
        elif kind < 0.75:
            out.append((FAST, 1, struct.pack(">Q", i)))  # not taken by the handler
        elif kind < 0.9:
            out.append((OTHER, 0, rng.randbytes(rng.choice([1, 50]))))
        else:  # over maxMessageSize: fragmented, the general path's
            out.append((FAST, 0, rng.randbytes(rng.choice([1025, 3000]))))
    return out


async def _serve(scheme: str, handler: aio.Handler) -> tuple[aio.Server, str]:
    server = await aio.serve(handler, f"{scheme}://127.0.0.1:0", max_message_size=1024)
    return server, server.urls[0]


@asynccontextmanager
async def recorded_session(scheme: str) -> AsyncIterator[tuple[aio.Session, Recorder]]:
    """A client connected to a server session that a `Recorder` owns, for the
    tests that feed that session by hand; the server closed on the way out."""
    recorded: asyncio.Future[Recorder] = asyncio.get_running_loop().create_future()

    async def handler(session: aio.Session) -> None:
        recorded.set_result(Recorder(session))
        await asyncio.sleep(PATIENCE)

    server, url = await _serve(scheme, handler)
    try:
        client = await aio.connect(url, **_connect_kwargs(scheme))
        yield client, await asyncio.wait_for(recorded, PATIENCE)
    finally:
        server.close()
        await server.wait_closed()


def _connect_kwargs(transport: str) -> dict[str, object]:
    kwargs: dict[str, object] = {"channels": [FAST, OTHER], "max_message_size": 1024}
    if transport == "ws-builtin":
        kwargs["ws_client"] = "builtin"
    return kwargs


def _send(session: aio.Session, ids: dict[str, int], name: str, type_: int, data: bytes) -> None:
    session.connection.send_message(ids[name], type_, data)


@pytest.mark.parametrize("transport", ["tcp", "ws", "ws-builtin"])
async def test_interleaved_fast_and_general_messages_keep_order_both_ways(
    transport: str,
) -> None:
    scheme = "tcp" if transport == "tcp" else "ws"
    rng = random.Random(f"fast-{transport}")
    up = script(rng, 600)
    down = script(rng, 600)
    recorded: asyncio.Future[Recorder] = asyncio.get_running_loop().create_future()
    sent_now = {"server": 0, "refused": 0}

    async def handler(session: aio.Session) -> None:
        recorder = Recorder(session)
        recorded.set_result(recorder)
        await asyncio.wait_for(recorder.done.wait(), PATIENCE)
        # Back down, each message by send_now when it may go that way, in
        # batches: what was queued first must make send_now refuse.
        ids = recorder.ids
        pos = 0
        while pos < len(down):
            batch = down[pos : pos + rng.randint(1, 7)]
            pos += len(batch)
            for name, type_, data in batch:
                if name == FAST and rng.random() < 0.7 and session.send_now(ids[name], type_, data):
                    sent_now["server"] += 1
                    continue
                if name == FAST and session.connection._out:
                    sent_now["refused"] += int(not session.send_now(ids[name], type_, data))
                _send(session, ids, name, type_, data)
            session.flush()
            await asyncio.sleep(0)
        _send(session, ids, OTHER, DONE, b"")
        session.flush()
        await asyncio.sleep(PATIENCE)

    server, url = await _serve(scheme, handler)
    try:
        client = await aio.connect(url, **_connect_kwargs(transport))
        mine = Recorder(client)
        ids = mine.ids
        # Up: batches of several frames per write, so reads mix both kinds.
        pos = 0
        while pos < len(up):
            batch = up[pos : pos + rng.randint(1, 8)]
            pos += len(batch)
            for name, type_, data in batch:
                _send(client, ids, name, type_, data)
            if rng.random() < 0.2:
                client.connection.ping(asyncio.get_running_loop().time())
            client.flush()
            if rng.random() < 0.3:
                await asyncio.sleep(0)
        _send(client, ids, OTHER, DONE, b"")
        client.flush()
        theirs = await asyncio.wait_for(recorded, PATIENCE)
        await asyncio.wait_for(theirs.done.wait(), PATIENCE)
        assert theirs.terminated is None
        assert theirs.log == up
        # The fast path was taken (a read goes the general way from its first
        # frame the fast path may not take: batches make those common here).
        assert theirs.fast_count > 10
        await asyncio.wait_for(mine.done.wait(), PATIENCE)
        assert mine.terminated is None
        assert mine.log == down
        assert mine.fast_count > 10
        assert sent_now["server"] > 10 and sent_now["refused"] > 0
        # The client's own send_now, keystroke-sized.
        for i in range(50):
            assert client.send_now(ids[FAST], 0, bytes([i]))
        _send(client, ids, OTHER, DONE, b"")
        theirs.done.clear()
        client.flush()
        await asyncio.wait_for(theirs.done.wait(), PATIENCE)
        assert theirs.log[len(up) :] == [(FAST, 0, bytes([i])) for i in range(50)]
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


def _stream() -> tuple[bytes, list[tuple[str, int, bytes]], dict[str, int]]:
    ids = {FAST: 1, OTHER: 2}  # the server grants HELLO's channels in order
    parts = [
        (FAST, 0, b"a"),
        (OTHER, 0, b"b"),
        (FAST, 0, b""),
        (FAST, 1, struct.pack(">Q", 7)),
        (FAST, 0, bytes(range(256)) * 2),
        (FAST, 0, b"\x03"),
    ]
    data = b""
    for name, type_, payload in parts[:3]:
        data += encode_frame(ids[name], type_, payload)
    data += encode_frame(0, ControlType.PING, b"\0\0\0\1")  # answered, not logged
    for name, type_, payload in parts[3:]:
        data += encode_frame(ids[name], type_, payload)
    return data, parts, ids


async def test_stream_reads_split_at_every_byte() -> None:
    """The server session fed as a TCP transport would, the stream cut at
    every offset, then one byte per read: the same log every time, and no
    partial frame left behind."""
    async with recorded_session("tcp") as (client, recorder):
        session = recorder.session
        data, expected, ids = _stream()
        assert recorder.ids == ids
        cuts = [[data[:i], data[i:]] for i in range(len(data) + 1)]
        cuts.append([data[i : i + 1] for i in range(len(data))])
        before = recorder.fast_count
        for pieces in cuts:
            recorder.log.clear()
            for piece in pieces:
                session.data_received(piece)
            assert recorder.log == expected, pieces[0][-8:]
            assert session.connection._reader.buffered == 0
        # Each read after a partial frame goes the general way, the others fast.
        assert recorder.fast_count - before > len(cuts) // 2
        assert recorder.terminated is None and session.is_open
        # A fast channel's frame with a bad header is not the fast path's:
        # the general path answers it (CLOSE 1002).
        recorder.log.clear()
        bad = bytearray(encode_frame(ids[FAST], 0, b"x"))
        bad[3] = 1  # the reserved byte
        session.data_received(encode_frame(ids[FAST], 0, b"ok") + bytes(bad))
        assert recorder.log == [(FAST, 0, b"ok")]
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert session.close_code == 1002
        await client.wait_closed()


def _ws_frame(payload: bytes, opcode: int = 2, fin: bool = True) -> bytes:
    """A client (masked) WebSocket frame."""
    key = os.urandom(4)
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        head = bytes((first, 0x80 | size))
    else:
        head = bytes((first, 0x80 | 126)) + struct.pack("!H", size)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


async def test_websocket_reads_split_at_every_byte() -> None:
    """The server's websockets connection fed as its transport would: OpenMux
    frames in binary WebSocket frames, with a WebSocket ping and a message
    in two fragments among them, cut at every offset. Fast frames, frames
    websockets parses and messages it assembles come out in order."""
    async with recorded_session("ws") as (client, recorder):
        session = recorder.session
        ws = session.sink.ws  # type: ignore[union-attr]
        assert not inspect.ismethod(ws.data_received)  # the fast receive is installed
        ids = recorder.ids
        first = encode_frame(ids[FAST], 0, b"k")
        split = encode_frame(ids[FAST], 0, b"fragmented across two WebSocket frames")
        big = encode_frame(ids[FAST], 0, bytes(range(256)) * 3)  # 16-bit length
        data = (
            _ws_frame(first)
            + _ws_frame(encode_frame(ids[OTHER], 0, b"o"))
            + _ws_frame(b"are you there", opcode=9)  # ping: websockets answers
            + _ws_frame(split[:10], fin=False)
            + _ws_frame(split[10:], opcode=0)
            + _ws_frame(big)
            + _ws_frame(encode_frame(ids[FAST], 1, struct.pack(">Q", 1)))
            + _ws_frame(encode_frame(ids[FAST], 0, b"\r"))
        )
        expected = [
            (FAST, 0, b"k"),
            (OTHER, 0, b"o"),
            (FAST, 0, b"fragmented across two WebSocket frames"),
            (FAST, 0, bytes(range(256)) * 3),
            (FAST, 1, struct.pack(">Q", 1)),
            (FAST, 0, b"\r"),
        ]
        cuts = [[data[:i], data[i:]] for i in range(len(data) + 1)]
        cuts.append([data[i : i + 1] for i in range(len(data))])
        fast_before = recorder.fast_count
        for pieces in cuts:
            recorder.log.clear()
            for piece in pieces:
                ws.data_received(piece)
            # Once websockets assembles a fragmented message, it and what
            # follows it reach the session from its reader task.
            for _ in range(1000):
                if len(recorder.log) >= len(expected):
                    break
                await asyncio.sleep(0.001)
            assert recorder.log == expected, len(pieces[0])
        assert recorder.fast_count - fast_before > 3 * len(cuts)
        assert recorder.terminated is None and session.is_open
        await client.close()


async def test_send_now_refuses_what_it_cannot_do_exactly() -> None:
    async with recorded_session("tcp") as (client, recorder):
        ids = Recorder(client).ids
        assert not client.send_now(ids[FAST], 0, b"x" * 1025)  # over maxMessageSize
        assert not client.send_now(99, 0, b"x")  # no such channel
        _send(client, ids, OTHER, 0, b"first")  # queued, not flushed
        assert not client.send_now(ids[FAST], 0, b"second")  # would overtake it
        _send(client, ids, FAST, 0, b"second")
        client.flush()
        assert client.send_now(ids[FAST], 0, b"third")
        _send(client, ids, OTHER, DONE, b"")
        client.flush()
        await asyncio.wait_for(recorder.done.wait(), PATIENCE)
        assert recorder.log == [(OTHER, 0, b"first"), (FAST, 0, b"second"), (FAST, 0, b"third")]
        await client.close()
        assert not client.send_now(ids[FAST], 0, b"late")  # closed


# ------------------------------------------------- fast == general, fuzzed


class _MemorySink:
    """The transport side of an in-memory byte stream (what a test peer sees)."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def write_frames(self, frames: list[bytes]) -> None:
        self.out.extend(frames)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _frame_piece(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 7))
    channel = draw(st.sampled_from([1, 1, 1, 2, 3]))  # 3: not open
    if kind <= 2:  # a plain message, often a keystroke
        size = draw(st.sampled_from([0, 1, 1, 2, 126, 1024, 1025]))
        return encode_frame(channel, draw(st.sampled_from([0, 0, 1, 2])), b"k" * size)
    if kind == 3:  # a fragmented message (maybe left unfinished)
        first = encode_frame(channel, 0, b"f" * 10, 0x02)
        if draw(st.booleans()):
            return first + encode_frame(channel, 0, b"e" * 5, 0x06)
        return first
    if kind == 4:  # control (not PING: its PONG carries the time)
        return encode_frame(0, ControlType.ERROR, b'{"code":1000}')
    if kind == 5:  # a header with reserved bits or byte
        frame = bytearray(encode_frame(channel, 0, b"r"))
        frame[draw(st.sampled_from([2, 3]))] |= draw(st.sampled_from([0x80, 0x01]))
        return bytes(frame)
    if kind == 6:  # an extended-length header
        return encode_frame(channel, 0, b"x" * 3, 0x01)[:2] + b"\x01\x00\0\0\0\3xxx"
    return draw(st.binary(max_size=12))  # garbage


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    data = b"".join(_frame_piece(draw) for _ in range(draw(st.integers(1, 12))))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return data, cuts


@st.composite
def _messages(draw: st.DrawFn) -> list[bytes]:
    return [_frame_piece(draw) for _ in range(draw(st.integers(1, 12)))]


def _logging_server(
    mode: Literal["stream", "message"], fast: bool, *, batch_hello: bool = False
) -> tuple[aio.Session, _MemorySink, list[tuple[str, int, bytes]]]:
    """A server session past its handshake with a client that asked for the
    FAST and OTHER channels, whose messages it logs (from a tap, and from a
    fast handler on FAST if `fast`), and the sink that holds what it sent."""
    from openmux import ChannelSpec, Config, Connection

    client = Connection(
        Config(is_client=True, channels=[ChannelSpec(FAST), ChannelSpec(OTHER)],
               max_message_size=1024),
        mode=mode,
    )  # fmt: skip
    client.initiate(0.0)
    session = aio.Session(aio.Options(max_message_size=1024), is_client=False, mode=mode)
    sink = _MemorySink()
    session.connection_made(sink)
    if mode == "stream":
        session.data_received(client.data_to_send())
    elif batch_hello:
        session.messages_received(client.messages_to_send())
    else:
        for hello in client.messages_to_send():
            session.message_received(hello)
    log: list[tuple[str, int, bytes]] = []
    conn = session.connection

    def tap(events: list[Event]) -> list[Event]:
        for event in events:
            if type(event) is MessageReceived and event.channel_id in conn.channels:
                log.append((conn.channels[event.channel_id].name, event.type, bytes(event.data)))
        return [e for e in events if type(e) is not MessageReceived]

    session.add_event_tap(tap)
    for channel in list(conn.channels.values()):
        session.detach_channel(channel.id)
    if fast:

        def handler(type_: int, payload: bytes) -> bool:
            if type_:
                return False
            log.append((FAST, type_, payload))
            return True

        session.set_fast_handler(1, handler)
    return session, sink, log


async def _run_server(
    data: bytes, cuts: list[int], fast: bool, messages: list[bytes] | None = None
) -> tuple[object, ...]:
    session, sink, log = _logging_server("stream" if messages is None else "message", fast)
    if messages is None:
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            session.data_received(data[start:end])
    else:
        for message in messages:
            session.message_received(message)
    conn = session.connection
    return log, b"".join(sink.out), sink.closed, session.close_code, conn.state


@settings(max_examples=300, deadline=None)
@given(_streams())
def test_fast_path_equals_general_path_on_any_stream(stream: tuple[bytes, list[int]]) -> None:
    """Whatever arrives, cut anyhow: a session with a fast handler logs,
    answers and fails exactly as one without."""
    data, cuts = stream
    fast = asyncio.run(_run_server(data, cuts, True))
    general = asyncio.run(_run_server(data, cuts, False))
    assert fast == general


@settings(max_examples=200, deadline=None)
@given(_messages())
def test_fast_path_equals_general_path_on_any_messages(messages: list[bytes]) -> None:
    """The same for message transports (WebSocket, QUIC, DataChannels): one
    frame per message, or not."""
    fast = asyncio.run(_run_server(b"", [], True, messages))
    general = asyncio.run(_run_server(b"", [], False, messages))
    assert fast == general
