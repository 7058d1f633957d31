"""A server that accepts the socket (or the WebSocket upgrade) and never sends
WELCOME must not hang `openmux.aio.connect`: it raises `HandshakeTimeoutError`
(a `TransportError` and a `TimeoutError`) and lets go of the socket."""

from __future__ import annotations

import asyncio
import sys

import openmux.aio as aio
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0
TIMEOUT = 0.3


class SilentServer:
    """Accepts TCP connections, reads everything, answers nothing; `gone` is set
    when a client's socket closes (EOF or reset)."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            self.gone.set()
            writer.close()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def check(error: aio.HandshakeTimeoutError, url: str) -> None:
    assert isinstance(error, TimeoutError) and isinstance(error, aio.TransportError)
    assert str(error) == f"no OpenMux session with {url} within {TIMEOUT:g} s (handshake timeout)"


async def test_tcp_server_that_never_welcomes() -> None:
    silent = SilentServer()
    async with silent as port:
        url = f"tcp://127.0.0.1:{port}"
        with pytest.raises(aio.HandshakeTimeoutError) as caught:
            await aio.connect(url, timeout=TIMEOUT)
        check(caught.value, url)
        await asyncio.wait_for(silent.gone.wait(), PATIENCE)  # the socket was let go


async def test_ws_server_that_never_answers_the_upgrade() -> None:
    silent = SilentServer()
    async with silent as port:
        url = f"ws://127.0.0.1:{port}/omux"
        with pytest.raises(aio.HandshakeTimeoutError) as caught:
            await aio.connect(url, timeout=TIMEOUT)
        check(caught.value, url)
        await asyncio.wait_for(silent.gone.wait(), PATIENCE)


async def test_ws_server_that_upgrades_and_never_welcomes() -> None:
    gone = asyncio.Event()

    async def mute(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                pass  # HELLO, unanswered
        finally:
            gone.set()

    async with ws_serve(mute, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/omux"
        with pytest.raises(aio.HandshakeTimeoutError) as caught:
            await aio.connect(url, timeout=TIMEOUT)
        check(caught.value, url)
        await asyncio.wait_for(gone.wait(), PATIENCE)


async def test_stdio_child_that_never_welcomes() -> None:
    child = "import sys; sys.stdin.buffer.read()"
    with pytest.raises(aio.HandshakeTimeoutError) as caught:
        await aio.connect_stdio([sys.executable, "-c", child], timeout=TIMEOUT)
    assert "handshake timeout" in str(caught.value)


async def test_timeout_error_is_still_caught_as_before() -> None:
    silent = SilentServer()
    async with silent as port:
        with pytest.raises(TimeoutError):
            await aio.connect(f"tcp://127.0.0.1:{port}", timeout=TIMEOUT)


async def test_quic_server_that_never_answers() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # takes packets, says nothing
        udp.bind(("127.0.0.1", 0))
        url = f"quic://127.0.0.1:{udp.getsockname()[1]}"
        with pytest.raises(aio.HandshakeTimeoutError) as caught:
            await aio.connect(url, timeout=TIMEOUT)
        check(caught.value, url)


async def test_the_vroom_fallback_chain_keeps_the_callers_timeout() -> None:
    """`vroom://` with `timeout=`: the whole chain within it (QUIC to a UDP port
    nobody answers would take its own 5 s attempt), then HandshakeTimeoutError
    naming what was tried; without `timeout`, each attempt has its own."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))  # bound, never read: QUIC's handshake hangs
        quic_port = udp.getsockname()[1]
        async with SilentServer() as port:
            with pytest.raises(aio.HandshakeTimeoutError, match="quic://") as caught:
                await aio.connect(f"vroom://127.0.0.1:{port}", quic_port=quic_port, timeout=0.5)
            assert "within 0.5 s" in str(caught.value)
            with pytest.raises(aio.TransportError, match="fallback") as chained:
                await aio.connect(
                    f"vroom://127.0.0.1:{port}", quic_port=quic_port, attempt_timeout=0.3
                )
            assert not isinstance(chained.value, aio.HandshakeTimeoutError)
            assert str(chained.value).count("timed out after 0.3 s") == 3
