"""A client that connects and never sends HELLO (or trickles a part of it, a
slowloris) is dropped after `hello_timeout`, at every stage: before the first
byte, inside a WebSocket upgrade, after it. vroomd serves with the defaults."""

from __future__ import annotations

import asyncio
from typing import Any

import openmux.aio as aio
import pytest
from openmux import MAGIC
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0
QUICK = {"hello_timeout": 0.2, "close_timeout": 0.1}


class Handler:
    """Counts the sessions that got through the handshake (none should)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, session: aio.Session) -> None:
        self.calls += 1


async def until_dropped(port: int, send: bytes = b"") -> bytes:
    """Connect, send `send`, then nothing; what the server wrote until it let go."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if send:
            writer.write(send)
        received = bytearray()
        async with asyncio.timeout(PATIENCE):
            try:
                while data := await reader.read(65536):
                    received += data
            except ConnectionError:
                pass
        return bytes(received)
    finally:
        writer.close()


def port_of(server: aio.Server, scheme: str) -> int:
    return int(server.url(scheme).split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


@pytest.mark.parametrize(
    "send",
    [b"", MAGIC, MAGIC + b"\x00\x01\x00"],  # nothing; magic only; half a frame header
    ids=["silent", "magic", "partial-frame"],
)
async def test_tcp_client_without_hello(send: bytes) -> None:
    handler = Handler()
    async with await aio.serve(handler, "tcp://127.0.0.1:0", **QUICK) as server:
        data = await until_dropped(port_of(server, "tcp"), send)
    assert b'"code":4007' in data  # CLOSE HELLO_TIMEOUT, then the socket closes
    assert handler.calls == 0


@pytest.mark.parametrize(
    "send",
    [b"", b"GE", b"GET /omux HTTP/1.1\r\nHost: 127.0.0.1\r\n"],  # before/inside the upgrade
    ids=["silent", "first-bytes", "partial-upgrade"],
)
async def test_ws_client_stalling_before_the_upgrade(send: bytes) -> None:
    handler = Handler()
    async with await aio.serve(handler, "ws://127.0.0.1:0/omux", **QUICK) as server:
        data = await until_dropped(port_of(server, "ws"), send)
    assert data == b""  # no answer to a request never finished: the socket is closed
    assert handler.calls == 0


async def test_ws_client_upgraded_without_hello() -> None:
    handler = Handler()
    messages: list[Any] = []
    async with await aio.serve(handler, "ws://127.0.0.1:0/omux", **QUICK) as server:
        url = server.url("ws")
        async with ws_connect(url) as ws, asyncio.timeout(PATIENCE):
            try:
                async for message in ws:
                    messages.append(message)
            except ConnectionClosed:
                pass
    assert len(messages) == 1 and b'"code":4007' in messages[0]  # the OpenMux CLOSE
    assert handler.calls == 0


async def test_vroomd_drops_a_client_without_hello() -> None:
    from vroomd.daemon import Daemon, DaemonConfig

    daemon = Daemon(DaemonConfig(serve_options=dict(QUICK)))
    try:
        await daemon.listen("tcp://127.0.0.1:0")
        await daemon.listen("ws://127.0.0.1:0/omux")
        tcp = next(u for u in daemon.urls if u.startswith("tcp:"))
        ws = next(u for u in daemon.urls if u.startswith("ws:"))
        data = await until_dropped(int(tcp.rsplit(":", 1)[1]), MAGIC)
        assert b'"code":4007' in data
        hostport = ws.split("://", 1)[1].split("/", 1)[0]
        assert await until_dropped(int(hostport.rsplit(":", 1)[1]), b"GET / HTTP/1.1\r\n") == b""
        assert not daemon.connections
    finally:
        for server in daemon.servers:
            server.close()
            await server.wait_closed()
