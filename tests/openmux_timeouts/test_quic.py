"""The same over QUIC, on real aioquic peers. A client that completes the
QUIC handshake (or stalls in it, or trickles half a frame) and never sends
HELLO is dropped after `hello_timeout`, not after QUIC's idle timeout. And
with `ping_interval=0` an idle session outlives QUIC's idle timeout, as it
outlives any silence on TCP/WebSocket: each side's binding keeps QUIC alive
on its own (the raw peers here never PING), while a peer that is gone still
ends the session."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import openmux.aio as aio
import pytest
from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from openmux import CloseCode, ControlType, encode_frame
from openmux.aio import quic
from openmux.testing import echo_handler
from openmux_quic.raw import RawPeer

from .test_server import QUICK, Handler

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0  # hang protection only, never asserted on
IDLE = 1.0  # QUIC idle timeout of both sides in the keepalive tests
QUIET = 3.0  # how long a session stays idle there: three idle timeouts


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return quic.write_self_signed_certificate(tmp_path_factory.mktemp("quic-cert"))


def server_config(cert: tuple[str, str], idle: float | None = None) -> QuicConfiguration:
    config = quic.quic_configuration(is_client=False)
    if idle is not None:
        config.idle_timeout = idle
    config.load_cert_chain(*cert)
    return config


def client_config(cert: tuple[str, str], idle: float | None = None) -> QuicConfiguration:
    config = quic.quic_configuration(is_client=True)
    if idle is not None:
        config.idle_timeout = idle
    config.server_name = "127.0.0.1"
    config.load_verify_locations(cert[0])
    return config


class Peer(RawPeer):
    """A bare aioquic endpoint that speaks OpenMux by hand and never PINGs."""

    async def ping_pong(self) -> None:
        """An OpenMux PING on the control stream is answered: the session is alive."""

        def pongs() -> int:  # binary payloads: not `control()`'s JSON
            return sum(1 for f in self.frames(0) if f[0] == 0 and f[1] == ControlType.PONG)

        before = pongs()
        self.send(0, encode_frame(0, ControlType.PING, b"\0\0\0\7"))
        await self.wait_for(lambda: pongs() > before)


def frame(type_: int, **body: Any) -> bytes:
    return encode_frame(0, type_, json.dumps({"version": [0, 1, 0], **body}).encode())


@asynccontextmanager
async def peer_of(
    server: aio.Server, cert: tuple[str, str], idle: float | None = None
) -> AsyncIterator[Peer]:
    port = int(server.url("quic").rsplit(":", 1)[1])
    config = client_config(cert, idle)
    async with quic_connect("127.0.0.1", port, configuration=config, create_protocol=Peer) as peer:
        assert isinstance(peer, Peer)
        yield peer


async def until(predicate: Callable[[], Any]) -> None:
    async with asyncio.timeout(PATIENCE):
        while not predicate():
            await asyncio.sleep(0.02)


# ------------------------------------------------------------ hello_timeout


async def test_quic_client_that_never_opens_a_stream(
    cert: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    handler = Handler()
    caplog.set_level(logging.INFO, logger="openmux")
    async with (
        await aio.serve(
            handler, "quic://127.0.0.1:0", certfile=cert[0], keyfile=cert[1], **QUICK
        ) as server,
        peer_of(server, cert) as peer,
    ):
        terminated = await peer.wait_for(lambda: peer.terminated)
        await until(lambda: not server.sessions)
    # no control stream to carry CLOSE 4007: it is the QUIC application error
    assert terminated.error_code == CloseCode.HELLO_TIMEOUT
    assert terminated.reason_phrase == f"openmux {CloseCode.HELLO_TIMEOUT}"
    assert not peer.streams
    assert handler.calls == 0
    logged = [r.getMessage() for r in caplog.records]
    assert any("handshake failed" in m and "4007" in m for m in logged)  # as TCP/WS log it


async def test_quic_client_trickling_half_a_frame(cert: tuple[str, str]) -> None:
    handler = Handler()
    async with (
        await aio.serve(
            handler, "quic://127.0.0.1:0", certfile=cert[0], keyfile=cert[1], **QUICK
        ) as server,
        peer_of(server, cert) as peer,
    ):
        peer.send(0, b"\x00\x01\x00")  # the control stream exists, the HELLO never comes
        closes = await peer.wait_for(lambda: peer.control(ControlType.CLOSE))
        await peer.wait_for(lambda: peer.terminated)
    assert closes[0]["code"] == CloseCode.HELLO_TIMEOUT
    assert handler.calls == 0


class Silent(asyncio.DatagramProtocol):
    """Reads and ignores whatever the server sends."""


async def test_quic_client_stalling_in_the_quic_handshake(cert: tuple[str, str]) -> None:
    handler = Handler()
    async with await aio.serve(
        handler, "quic://127.0.0.1:0", certfile=cert[0], keyfile=cert[1], **QUICK
    ) as server:
        port = int(server.url("quic").rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Silent, remote_addr=("127.0.0.1", port))
        try:
            client = QuicConnection(configuration=client_config(cert))
            client.connect(("127.0.0.1", port), now=loop.time())
            for data, _addr in client.datagrams_to_send(now=loop.time()):
                transport.sendto(data)  # the first flight, then silence
            await until(lambda: server.sessions)
            await until(lambda: not server.sessions)
        finally:
            transport.close()
    assert handler.calls == 0


# ------------------------------------------------------- QUIC keepalive


class Recorder:
    """A server handler that keeps each session until it ends."""

    def __init__(self) -> None:
        self.sessions: list[aio.Session] = []

    async def __call__(self, session: aio.Session) -> None:
        self.sessions.append(session)
        await session.wait_closed()


async def test_idle_session_outlives_the_quic_idle_timeout(cert: tuple[str, str]) -> None:
    async with await aio.serve(
        echo_handler,
        "quic://127.0.0.1:0",
        ping_interval=0,
        quic_configuration=server_config(cert, IDLE),
    ) as server:
        session = await aio.connect(
            server.url("quic"),
            channels=["echo"],
            ping_interval=0,
            quic_configuration=client_config(cert, IDLE),
        )
        assert session.connection.ping_interval == 0
        await asyncio.sleep(QUIET)
        assert session.is_open
        echo = session.channel("echo")
        await echo.send(1, b"still here")
        assert await asyncio.wait_for(echo.recv(), PATIENCE) == aio.Message(1, b"still here")
        await session.close()
        assert session.close_code == CloseCode.NORMAL


@asynccontextmanager
async def welcomed_peer(cert: tuple[str, str], recorder: Recorder) -> AsyncIterator[Peer]:
    """A server with `ping_interval=0` and QUIC idle timeout IDLE, and a raw
    peer past HELLO/WELCOME that asked for no keepalive either."""
    async with (
        await aio.serve(
            recorder,
            "quic://127.0.0.1:0",
            ping_interval=0,
            quic_configuration=server_config(cert, IDLE),
        ) as server,
        peer_of(server, cert, IDLE) as peer,
    ):
        peer.send(0, frame(ControlType.HELLO, pingInterval=0))
        await peer.wait_for(lambda: peer.control(ControlType.WELCOME))
        yield peer


async def test_server_keeps_a_silent_quic_client(cert: tuple[str, str]) -> None:
    recorder = Recorder()
    async with welcomed_peer(cert, recorder) as peer:
        await asyncio.sleep(QUIET)
        assert peer.terminated is None
        await peer.ping_pong()
        await until(lambda: recorder.sessions)
        assert recorder.sessions[0].is_open


async def test_client_keeps_a_silent_quic_server(cert: tuple[str, str]) -> None:
    accepted: list[Peer] = []

    def create(*args: Any, **kwargs: Any) -> Peer:
        accepted.append(Peer(*args, **kwargs))
        return accepted[-1]

    listener = await quic_serve(
        "127.0.0.1", 0, configuration=server_config(cert, IDLE), create_protocol=create
    )
    try:
        port = listener._transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        task = asyncio.create_task(
            aio.connect(
                f"quic://127.0.0.1:{port}",
                ping_interval=0,
                close_timeout=0.1,
                quic_configuration=client_config(cert, IDLE),
            )
        )
        await until(lambda: accepted)
        peer = accepted[0]
        await peer.wait_for(lambda: peer.control(ControlType.HELLO))
        peer.send(0, frame(ControlType.WELCOME, pingInterval=0, channels=[]))
        session = await asyncio.wait_for(task, PATIENCE)
        await asyncio.sleep(QUIET)
        assert session.is_open and peer.terminated is None
        await session.close()  # nobody answers the CLOSE: close_timeout ends it
    finally:
        listener.close()


async def test_a_vanished_quic_peer_still_ends_the_session(cert: tuple[str, str]) -> None:
    recorder = Recorder()
    async with welcomed_peer(cert, recorder) as peer:
        assert peer._transport is not None
        await until(lambda: recorder.sessions)
        peer._transport.close()  # gone without a CONNECTION_CLOSE
        session = recorder.sessions[0]
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
    assert session.close_code == CloseCode.GOING_AWAY  # transport lost
