"""OpenMux over TCP (`tcp://host:port`) and TLS (`tls://host:port`), OPENMUX.md §3.

A byte stream: the core parses frames out of arbitrary reads and handles the
OMUX magic. TLS uses `ssl=`: an `ssl.SSLContext` (required on a server; a
client without one verifies against the system's CAs).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from typing import Any

from ._stream import StreamProtocol
from ._urls import netloc, split
from .server import Server
from .session import Options, Session

DEFAULT_PORT = 2222


def _client_ssl(scheme: str, options: Options) -> Any:
    if scheme != "tls":
        return None
    if isinstance(options.ssl, _ssl.SSLContext):
        return options.ssl
    return _ssl.create_default_context()


async def connect(url: str, options: Options) -> Session:
    parts, host, port = split(url, DEFAULT_PORT)
    loop = asyncio.get_running_loop()
    session = Session(options, is_client=True, mode="stream")
    ssl_context = _client_ssl(parts.scheme, options)
    transport, _ = await loop.create_connection(
        lambda: StreamProtocol(session),
        host,
        port,
        ssl=ssl_context,
        server_hostname=options.extra.get("server_hostname", host) if ssl_context else None,
    )
    try:
        await session.wait_handshake()
    except BaseException:
        transport.abort()
        raise
    return session


class TCPListener:
    def __init__(self, server: asyncio.Server, scheme: str) -> None:
        self._server = server
        self.urls = [
            f"{scheme}://{netloc(sock.getsockname()[0], sock.getsockname()[1])}"
            for sock in server.sockets
        ]

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


async def listen(url: str, server: Server) -> TCPListener:
    parts, host, port = split(url, DEFAULT_PORT)
    options = server.options
    ssl_context = None
    if parts.scheme == "tls":
        if not isinstance(options.ssl, _ssl.SSLContext):
            raise ValueError("a tls:// listener needs ssl=<server SSLContext>")
        ssl_context = options.ssl

    def factory() -> StreamProtocol:
        session = Session(options, is_client=False, mode="stream")
        return StreamProtocol(session, on_made=server.start_session)

    aserver = await asyncio.get_running_loop().create_server(
        factory,
        host,
        port,
        ssl=ssl_context,
        reuse_address=True,
        # the core's HELLO timer starts once TLS is up: bound TLS itself too
        ssl_handshake_timeout=options.hello_timeout if ssl_context else None,
    )
    return TCPListener(aserver, parts.scheme)
