"""Fixtures of the QUIC binding tests: a certificate made at test time, servers
on 127.0.0.1 with an echo handler, and a raw aioquic peer for bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import openmux.aio as aio
import pytest
from openmux.aio import quic
from openmux.testing import echo_handler

from .raw import RawPeer, raw_peer


@pytest.fixture(autouse=True)
async def _no_stray_loop_errors() -> AsyncIterator[None]:
    """An exception escaping a protocol callback only gets logged by asyncio:
    make it fail the test instead."""
    import asyncio

    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    loop.set_exception_handler(previous)
    assert not errors, errors


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return quic.write_self_signed_certificate(tmp_path_factory.mktemp("quic-cert"))


ServerFactory = Callable[..., AbstractAsyncContextManager[aio.Server]]


@pytest.fixture
def quic_server(cert: tuple[str, str]) -> ServerFactory:
    @asynccontextmanager
    async def start(handler: Any = echo_handler, **options: Any) -> AsyncIterator[aio.Server]:
        server = await aio.serve(
            handler, ["quic://127.0.0.1:0"], certfile=cert[0], keyfile=cert[1], **options
        )
        try:
            yield server
        finally:
            server.close()
            await server.wait_closed()

    return start


@pytest.fixture
def client_options(cert: tuple[str, str]) -> dict[str, Any]:
    return {"cafile": cert[0]}


RawFactory = Callable[..., AbstractAsyncContextManager[RawPeer]]


@pytest.fixture
def raw(cert: tuple[str, str]) -> RawFactory:
    def open_raw(server: aio.Server, **kwargs: Any) -> AbstractAsyncContextManager[RawPeer]:
        port = int(server.url("quic").rsplit(":", 1)[1])
        return raw_peer(port, cert[0], **kwargs)

    return open_raw
