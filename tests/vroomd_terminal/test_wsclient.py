"""openmux.aio.wsclient, the WebSocket client `vroom term` uses (no
`websockets` import at start-up). The conformance suite runs it against the
websockets server (tests/openmux_aio, `*-builtin-client`); here: what that
server never sends (fragments, pings, text, oversized and garbage frames),
from a raw WebSocket server on 127.0.0.1 in front of a sans-IO OpenMux
server `Connection`, and the hand-overs to websockets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux import Config, Connection, OpenMuxError, aio
from openmux.aio import wsclient
from vterm_support import server_frame
from websockets.utils import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    assert b1 & 0x80, "client frames are masked"
    size = b1 & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4)
    return b0 & 0x0F, apply_mask(await reader.readexactly(size), key)


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], "asyncio.Future[None] | object"]


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[str]:
    """Answers the upgrade (101, right Accept), then runs `script`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await script(reader, writer)  # type: ignore[misc]
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/omux"
    finally:
        server.close()


def mux_server() -> Connection:
    conn = Connection(Config(is_client=False), mode="message")
    conn.initiate(time.monotonic())
    return conn


# ------------------------------------------------------------------ masking


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_mask_is_rfc6455s(data: bytes, key: bytes) -> None:
    assert wsclient.mask(data, key) == apply_mask(data, key)
    assert wsclient.mask(wsclient.mask(data, key), key) == data


def test_mask_of_a_large_payload() -> None:
    data, key = os.urandom(200_000), os.urandom(4)
    assert wsclient.mask(data, key) == apply_mask(data, key)


# ------------------------------------------------------- what servers send


async def test_fragmented_messages_and_pings() -> None:
    """WELCOME arrives in three fragments with a ping between them; the
    client assembles it, answers the ping with the same payload, and the
    session works (a message each way)."""
    seen: list[tuple[int, bytes]] = []
    got_message = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = mux_server()
        while True:
            opcode, payload = await read_frame(reader)
            seen.append((opcode, payload))
            if opcode != 2:
                continue
            events = conn.receive_message(payload, time.monotonic())
            if any(type(e).__name__ == "MessageReceived" for e in events):
                got_message.set()
            for message in conn.messages_to_send():
                a, b = message[:3], message[3:]
                writer.write(server_frame(2, a, fin=False))
                writer.write(server_frame(9, b"are you there"))
                writer.write(server_frame(0, b[:1], fin=False))
                writer.write(server_frame(0, b[1:]))

    async with raw_server(script) as url:
        session = await aio.connect(
            url, ws_client="builtin", channels=["echo"], timeout=5, close_timeout=0.1
        )
        assert isinstance(session.sink, wsclient.WSClientProtocol)
        await session.channel("echo").send(1, b"hi")
        await asyncio.wait_for(got_message.wait(), 5)
        assert (10, b"are you there") in seen
        await session.close()


async def test_text_message_is_an_openmux_protocol_error() -> None:
    closes: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(server_frame(1, b"not a frame"))
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 2:
                closes.append(payload)

    async with raw_server(script) as url:
        with pytest.raises(OpenMuxError) as info:
            await aio.connect(url, ws_client="builtin", timeout=5)
    assert info.value.code == 1002


@pytest.mark.parametrize(
    ("frames", "ws_code"),
    [
        (server_frame(2, b"x" * 5000), 1009),  # over max_reassembly + 2 headers
        (server_frame(2, b"x" * 3000, fin=False) + server_frame(0, b"x" * 3000), 1009),
        (bytes((0x82 | 0x40, 1, 0)), 1002),  # a reserved bit
        (bytes((0x82, 0x81, 0, 0, 0, 0, 0)), 1002),  # a masked server frame
        (server_frame(0, b"x"), 1002),  # a continuation of nothing
        (server_frame(9, b"x" * 126), 1002),  # a control frame over 125 bytes
        (server_frame(3, b""), 1002),  # an unknown opcode
    ],
)
async def test_bad_frames_close_the_websocket(frames: bytes, ws_code: int) -> None:
    codes: list[int] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frames)
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 8:
                codes.append(struct.unpack("!H", payload[:2])[0])
                return

    async with raw_server(script) as url:
        with pytest.raises((OpenMuxError, OSError)):
            await aio.connect(url, ws_client="builtin", timeout=5, max_reassembly=4096)
        for _ in range(100):
            if codes:
                break
            await asyncio.sleep(0.01)
    assert codes == [ws_code]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=64))
def test_garbage_after_the_upgrade_is_an_error_not_a_crash(garbage: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(garbage)
        await reader.read()

    async def main() -> None:
        async with raw_server(script) as url:
            with pytest.raises((OpenMuxError, OSError, TimeoutError)):
                await aio.connect(url, ws_client="builtin", timeout=0.2)

    asyncio.run(main())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: wrong\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 101 OK\r\n" + b"X: y\r\n" * 12_000,
    ],
)
async def test_bad_upgrade_answers(answer: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(aio.TransportError):
            await aio.connect(f"ws://127.0.0.1:{port}/omux", ws_client="builtin", timeout=5)


# ------------------------------------------------- websockets' server, hand-overs


async def test_close_codes_seen_by_websockets() -> None:
    server = await aio.serve(lambda s: asyncio.sleep(30), ["ws://127.0.0.1:0/omux"])
    async with server:
        session = await aio.connect(server.url("ws"), ws_client="builtin")
        sink = session.sink
        assert isinstance(sink, wsclient.WSClientProtocol)
        await session.close()
        assert sink.close_code == 1000
        session = await aio.connect(server.url("ws"), ws_client="builtin")
        sink = session.sink
        assert isinstance(sink, wsclient.WSClientProtocol)
        await session.close(1001)
        assert sink.close_code == 1001


async def test_bearer_token_in_the_upgrade() -> None:
    server = await aio.serve(lambda s: asyncio.sleep(30), ["ws://127.0.0.1:0/omux"], token="s")
    async with server:
        with pytest.raises(aio.HandshakeError) as info:
            await aio.connect(server.url("ws"), ws_client="builtin", token="x", auth_header=True)
        assert info.value.code == 4000
        session = await aio.connect(
            server.url("ws"), ws_client="builtin", token="s", auth_header=True
        )
        await session.close()


async def test_a_proxy_in_the_environment_goes_to_websockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not wsclient.proxy_configured({"no_proxy": "*", "PATH": "/bin"})
    assert wsclient.proxy_configured({"HTTPS_PROXY": "http://proxy:3128"})
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # bypassed for 127.0.0.1
    server = await aio.serve(lambda s: asyncio.sleep(30), ["ws://127.0.0.1:0/omux"])
    async with server:
        session = await aio.connect(server.url("ws"), ws_client="builtin")
        assert not isinstance(session.sink, wsclient.WSClientProtocol)
        await session.close()


async def test_a_redirect_goes_to_websockets() -> None:
    server = await aio.serve(lambda s: asyncio.sleep(30), ["ws://127.0.0.1:0/omux"])
    target = server.url("ws")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: " + target.encode() + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    front = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = front.sockets[0].getsockname()[1]
    async with server, front:
        session = await aio.connect(f"ws://127.0.0.1:{port}/omux", ws_client="builtin")
        assert not isinstance(session.sink, wsclient.WSClientProtocol)
        await session.close()


async def test_write_frame_sends_one_whole_frame_now() -> None:
    """`write_frame` (the sink's unbuffered path, `Session.send_now`): one
    OpenMux frame as one WebSocket message, echoed by websockets' server."""
    from openmux import encode_frame
    from openmux.testing import echo_handler

    server = await aio.serve(echo_handler, ["ws://127.0.0.1:0/omux"])
    async with server:
        session = await aio.connect(server.url("ws"), ws_client="builtin", channels=["echo"])
        sink = session.sink
        assert isinstance(sink, wsclient.WSClientProtocol)
        channel = session.channel("echo")
        sink.write_frame(encode_frame(channel.id, 7, b"now"))
        assert await asyncio.wait_for(channel.recv(), 5) == (7, b"now")
        await session.close()


async def test_a_non_minimal_length_is_not_taken_for_a_small_frame() -> None:
    """0x82 0x7E 00 7C + 124 bytes: 128 bytes in all, like a 126-byte small
    frame; it is a 124-byte message (the keystroke fast path must not bite)."""
    got: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = mux_server()
        while True:
            opcode, payload = await read_frame(reader)
            if opcode != 2:
                continue
            conn.receive_message(payload, time.monotonic())
            for message in conn.messages_to_send():
                writer.write(server_frame(2, message))
            if conn.state.name == "OPEN" and not got:
                channel = next(iter(conn.channels))
                conn.send_message(channel, 5, b"y" * 118)  # 6-byte header: 124 bytes
                frame = conn.messages_to_send()[0]
                assert len(frame) == 124
                await writer.drain()
                await asyncio.sleep(0.1)  # alone in its read, as a keystroke's echo is
                writer.write(bytes((0x82, 126)) + struct.pack("!H", 124) + frame)
                got.append(frame)

    async with raw_server(script) as url:
        session = await aio.connect(
            url, ws_client="builtin", channels=["echo"], timeout=5, close_timeout=0.1
        )
        assert await asyncio.wait_for(session.channel("echo").recv(), 5) == (5, b"y" * 118)
        await session.close()
