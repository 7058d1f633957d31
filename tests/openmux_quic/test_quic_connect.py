"""Connecting: URLs and ports, TLS, failures, 0-RTT HELLO."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import openmux.aio as aio
import pytest
from aioquic.tls import SessionTicket
from openmux.aio import quic

from .conftest import ServerFactory, echo_handler
from .raw import PATIENCE

pytestmark = pytest.mark.timeout(60)


def test_default_port_and_alpn() -> None:
    assert quic.DEFAULT_PORT == 4433
    assert "openmux/0.1" in quic.ALPN
    assert aio.SCHEMES["quic"] == "quic"


def test_self_signed_certificate_names_its_hosts(tmp_path: Any) -> None:
    from cryptography import x509

    certfile, keyfile = quic.write_self_signed_certificate(tmp_path, ["127.0.0.1", "vroom.test"])
    with open(certfile, "rb") as fp:
        cert = x509.load_pem_x509_certificate(fp.read())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["vroom.test"]
    assert os.stat(keyfile).st_mode & 0o077 == 0


async def test_listener_reports_its_url(quic_server: ServerFactory) -> None:
    async with quic_server() as server:
        url = server.url("quic")
        assert url.startswith("quic://127.0.0.1:") and not url.endswith(":0")


async def test_server_needs_a_certificate() -> None:
    with pytest.raises(ValueError, match="certfile"):
        await aio.serve(echo_handler, ["quic://127.0.0.1:0"])


async def test_unverifiable_certificate_is_a_transport_error(quic_server: ServerFactory) -> None:
    async with quic_server() as server:
        with pytest.raises(aio.TransportError):
            await aio.connect(server.url("quic"))  # no cafile: the self-signed cert fails


async def test_verify_false_accepts_any_certificate(quic_server: ServerFactory) -> None:
    async with quic_server() as server:
        session = await aio.connect(server.url("quic"), verify=False)
        assert session.transport_info["alpn"] == "openmux/0.1"
        await session.close()


async def test_nobody_listening_times_out(client_options: dict[str, Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))  # a UDP port that never answers
        port = sock.getsockname()[1]
        with pytest.raises(TimeoutError):
            await aio.connect(f"quic://127.0.0.1:{port}", timeout=0.3, **client_options)


async def test_token_auth_refused_is_a_handshake_error(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    async with quic_server(token="secret") as server:
        with pytest.raises(aio.HandshakeError) as info:
            await aio.connect(server.url("quic"), token="wrong", **client_options)
        assert info.value.code == 4000


async def test_hello_travels_in_0rtt_with_a_session_ticket(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    infos: list[dict[str, Any]] = []

    async def handler(session: aio.Session) -> None:
        infos.append(session.transport_info)  # filled in as the QUIC handshake goes
        await echo_handler(session)

    tickets: list[SessionTicket] = []
    async with quic_server(handler) as server:
        first = await aio.connect(
            server.url("quic"), session_ticket_handler=tickets.append, **client_options
        )
        await first.close()
        assert tickets and tickets[-1].max_early_data_size
        second = await aio.connect(
            server.url("quic"), channels=["echo"], session_ticket=tickets[-1], **client_options
        )
        echo = second.channel("echo")
        await echo.send(1, b"after 0-RTT")
        assert await asyncio.wait_for(echo.recv(), PATIENCE) == aio.Message(1, b"after 0-RTT")
        assert second.transport_info["early_data_accepted"] is True
        await second.close()
    assert infos[0]["hello_in_0rtt"] is False
    assert infos[1]["hello_in_0rtt"] is True
    assert infos[1]["early_data_accepted"] is True


async def test_session_tickets_are_single_use(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    """A ticket works once, so a captured 0-RTT HELLO replays at most once."""
    tickets: list[SessionTicket] = []
    async with quic_server() as server:
        first = await aio.connect(
            server.url("quic"), session_ticket_handler=tickets.append, **client_options
        )
        await first.close()
        ticket = tickets[-1]
        for expected in (True, False):
            session = await aio.connect(server.url("quic"), session_ticket=ticket, **client_options)
            assert session.transport_info["early_data_accepted"] is expected
            await session.close()


async def test_zero_rtt_can_be_turned_off(
    quic_server: ServerFactory, client_options: dict[str, Any]
) -> None:
    tickets: list[SessionTicket] = []
    async with quic_server(zero_rtt=False) as server:
        first = await aio.connect(
            server.url("quic"), session_ticket_handler=tickets.append, **client_options
        )
        await first.close()
        assert not tickets  # no ticket, no 0-RTT


@pytest.mark.parametrize("verify", [True, False])
async def test_ssl_context_of_the_other_transports_applies(
    quic_server: ServerFactory, cert: tuple[str, str], verify: bool
) -> None:
    import ssl

    if verify:
        context = ssl.create_default_context(cafile=cert[0])
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    async with quic_server() as server:
        session = await aio.connect(server.url("quic"), ssl=context)
        assert session.is_open
        await session.close()


async def test_closed_port_fails_at_once(client_options: dict[str, Any]) -> None:
    """ICMP port unreachable ends the attempt (the fallback chain moves on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(aio.TransportError, match="no QUIC server"):
        await aio.connect(f"quic://127.0.0.1:{port}", timeout=PATIENCE, **client_options)
