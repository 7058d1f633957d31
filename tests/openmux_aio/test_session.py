"""Session internals that the conformance suite does not reach: the frame
splitter, keepalive while reading is paused, a raw server, serve_stdio on pipes."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import Any

import openmux.aio as aio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux import (
    MAGIC,
    ChannelSpec,
    CloseCode,
    ControlType,
    FrameError,
    MessageTooLarge,
    encode_frame,
)

from .peer import CMD, REPLY
from .peer import handler as peer_handler

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0

frames_st = st.lists(
    st.tuples(st.integers(0, 254), st.integers(0, 255), st.binary(max_size=300), st.booleans()),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(frames_st, st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_splitter_returns_the_frames_whatever_the_chunking(
    specs: list[tuple[int, int, bytes, bool]], cuts: list[int]
) -> None:
    frames = []
    for channel, type_, payload, extended in specs:
        frame = encode_frame(channel, type_, payload)
        if extended:  # the same payload behind an 8-byte header
            frame = bytes([channel, type_, 1, 0]) + struct.pack(">I", len(payload)) + payload
        frames.append(frame)
    stream = b"".join(frames)
    splitter = aio.FrameSplitter(limit=1000)
    out: list[bytes] = []
    pos, i = 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += splitter.feed(stream[pos : pos + step])
        pos += step
        i += 1
    assert out == frames


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 100))
def test_splitter_on_garbage_raises_only_protocol_errors(data: bytes, limit: int) -> None:
    splitter = aio.FrameSplitter(limit)
    try:
        for frame in splitter.feed(data):
            assert len(frame) >= 6
    except (FrameError, MessageTooLarge) as exc:
        assert exc.code in (CloseCode.PROTOCOL_ERROR, CloseCode.MESSAGE_TOO_LARGE)


def test_splitter_checks_the_declared_length_before_buffering() -> None:
    splitter = aio.FrameSplitter(limit=100)
    with pytest.raises(MessageTooLarge):
        splitter.feed(b"\x01\x01\x01\x00" + struct.pack(">I", 1 << 31))
    with pytest.raises(FrameError):
        aio.FrameSplitter(0).feed(b"\xff\x01\x00\x00\x00\x00")
    assert aio.FrameSplitter(0).feed(b"\x01\x01\x01\x00\x00") == []  # short extended header


async def test_a_reader_that_paused_itself_does_not_call_the_peer_dead() -> None:
    """Reading paused (the application is slow) while the keepalive timer runs:
    our own silence is not the peer's; the session survives and data flows."""
    count, size = 256, 64 * 1024
    async with await aio.serve(
        peer_handler, "tcp://127.0.0.1:0", ping_interval=0.1, ping_timeout=0.3
    ) as srv:
        session = await aio.connect(
            srv.url("tcp"), channels=["ctl", "flood", "sink"], read_limit=256 * 1024
        )
        ctl, flood, sink = (session.channel(n) for n in ("ctl", "flood", "sink"))
        await ctl.send(
            CMD, json.dumps({"op": "flood", "name": "flood", "count": count, "size": size}).encode()
        )
        for _ in range(20):  # keep the server's view of us fresh, read nothing
            await sink.send(1, b"alive")
            await asyncio.sleep(0.05)
        assert session.is_open
        for expected in range(count):
            message = await asyncio.wait_for(flood.recv(), PATIENCE)
            assert struct.unpack(">I", message.data[:4])[0] == expected
        report = json.loads((await asyncio.wait_for(ctl.recv(), PATIENCE)).data)
        assert report["op"] == "flood-done"
        assert session.is_open
        await session.close()


async def raw_server(script: list[bytes]) -> tuple[asyncio.Server, int]:
    """Answers HELLO with script[0]; the rest once the client sent anything more."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)  # magic
        await reader.read(1 << 16)  # HELLO
        if script:
            writer.write(MAGIC + script[0])
            await reader.read(1 << 16)
            writer.write(b"".join(script[1:]))
        try:
            await asyncio.wait_for(reader.read(), PATIENCE)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def control(type_: int, body: dict[str, Any]) -> bytes:
    return encode_frame(0, type_, json.dumps(body).encode())


async def test_client_against_a_raw_server(caplog: pytest.LogCaptureFixture) -> None:
    welcome = {"version": [0, 1, 0], "channels": [{"name": "a", "id": 7}]}
    script = [
        control(ControlType.WELCOME, welcome),
        control(ControlType.ERROR, {"code": 4003, "channel": 9, "reason": "whatever"}),
        encode_frame(7, 5, b"payload"),
        control(ControlType.CLOSE, {"code": 4321, "reason": "app says bye"}),
    ]
    server, port = await raw_server(script)
    async with server:
        session = await aio.connect(f"tcp://127.0.0.1:{port}", channels=["a", "b"])
        assert list(session.channels) == ["a"] and session.channel("a").id == 7
        await session.channel("a").send(1, b"go on")
        message = await session.channel("a").recv()
        assert message == aio.Message(5, b"payload")
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert (session.close_code, session.close_reason) == (4321, "app says bye")
        assert session.closed_by_peer
    assert "peer sent ERROR 4003" in caplog.text


async def test_connect_timeout_when_the_server_never_welcomes() -> None:
    server, port = await raw_server([])
    async with server:
        with pytest.raises(TimeoutError):
            await aio.connect(f"tcp://127.0.0.1:{port}", timeout=0.3)


async def test_serve_stdio_on_pipes() -> None:
    """The child side in-process, on two pipes instead of fds 0 and 1."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    child = asyncio.get_running_loop().create_task(
        aio.serve_stdio(peer_handler, stdin=to_child_r, stdout=from_child_w)
    )
    loop = asyncio.get_running_loop()
    session = aio.Session(aio.Options(channels=["echo", "ctl"]), is_client=True, mode="stream")
    from openmux.aio._stream import StreamProtocol

    class PipeSink(StreamProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            pass

    sink = PipeSink(session)
    writer, _ = await loop.connect_write_pipe(lambda: sink, os.fdopen(to_child_w, "wb", 0))
    reader, _ = await loop.connect_read_pipe(lambda: sink, os.fdopen(from_child_r, "rb", 0))
    sink.transport = writer  # type: ignore[assignment]
    session.connection_made(sink)
    await asyncio.wait_for(session.wait_handshake(), PATIENCE)
    await session.channel("echo").send(1, b"through pipes")
    assert (await session.channel("echo").recv()).data == b"through pipes"
    ctl = session.channel("ctl")
    await ctl.send(CMD, b'{"op": "channels"}')
    assert (await ctl.recv()).type == REPLY
    writer.close()  # EOF to the child: it ends
    served = await asyncio.wait_for(child, PATIENCE)
    assert served.close_code == CloseCode.GOING_AWAY and served.closed_by_peer
    reader.close()
    os.close(to_child_r)
    os.close(from_child_w)


async def test_unread_unreliable_channel_drops_oldest_and_blocks_nothing() -> None:
    read_limit = 256 * 1024
    async with await aio.serve(peer_handler, "tcp://127.0.0.1:0") as srv:
        session = await aio.connect(
            srv.url("tcp"),
            channels=["echo", ChannelSpec("lossy", reliable=False, ordered=False)],
            read_limit=read_limit,
        )
        lossy, echo = session.channel("lossy"), session.channel("echo")
        assert not lossy.reliable
        for seq in range(200):  # 200 x 16 KiB echoed back, never read: 3.2 MB
            await lossy.send(1, struct.pack(">I", seq) + bytes(16 * 1024))
        await echo.send(1, b"marker")  # behind all of them on the wire
        assert (await asyncio.wait_for(echo.recv(), PATIENCE)).data == b"marker"
        assert not session._read_paused
        assert lossy._lossy_bytes <= read_limit // 4
        kept = [struct.unpack(">I", (await lossy.recv()).data[:4])[0] for _ in range(3)]
        assert kept[0] > 0 and kept == sorted(kept)  # the oldest went first
        await lossy.close()
        await session.close()
