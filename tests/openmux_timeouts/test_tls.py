"""The same over TLS: the TLS handshake itself is bounded on both ends."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import openmux.aio as aio
import pytest
from openmux.aio.quic import write_self_signed_certificate

from .test_client import TIMEOUT, check
from .test_server import QUICK, Handler, until_dropped

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0


def contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    certfile, keyfile = write_self_signed_certificate(folder)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certfile, keyfile)
    return server, ssl.create_default_context(cafile=certfile)


async def test_tls_server_that_never_welcomes(tmp_path: Path) -> None:
    server_ctx, client_ctx = contexts(tmp_path)
    gone = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            gone.set()
            writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0, ssl=server_ctx)
    async with server:
        url = f"tls://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(aio.HandshakeTimeoutError) as caught:
            await aio.connect(url, ssl=client_ctx, timeout=TIMEOUT)
        check(caught.value, url)
        await asyncio.wait_for(gone.wait(), PATIENCE)


@pytest.mark.parametrize("send", [b"", b"\x16\x03\x01"], ids=["silent", "partial-client-hello"])
async def test_tls_client_stalling_in_the_tls_handshake(tmp_path: Path, send: bytes) -> None:
    server_ctx, _ = contexts(tmp_path)
    handler = Handler()
    async with await aio.serve(handler, "tls://127.0.0.1:0", ssl=server_ctx, **QUICK) as server:
        port = int(server.url("tls").rsplit(":", 1)[1])
        assert await until_dropped(port, send) == b""
    assert handler.calls == 0
