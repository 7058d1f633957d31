"""asyncio transports for OpenMux: one API whatever the transport.

    session = await openmux.aio.connect("tcp://127.0.0.1:2222", channels=["echo"])
    await session.channel("echo").send(1, b"hi")

    async def handler(session): ...
    server = await openmux.aio.serve(handler, ["ws://127.0.0.1:0/omux", "tcp://127.0.0.1:0"])

The URL scheme picks the transport module, imported only when used so that
`websockets`, `aioquic` and `aiortc` stay optional. Each module provides
`connect(url, options) -> Session` and `listen(url, server) -> Listener`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import (
    ChannelClosedError,
    ChannelRejectedError,
    HandshakeError,
    HandshakeTimeoutError,
    SessionClosedError,
    TransportError,
)
from .server import Listener, Server
from .session import (
    Channel,
    EventTap,
    FrameSink,
    FrameSplitter,
    Handler,
    Message,
    Options,
    Session,
    handshake_deadline,
)

if TYPE_CHECKING:
    from .static import static_path
    from .stdio import connect_stdio, serve_stdio

SCHEMES: dict[str, str] = {
    "ws": "ws",
    "wss": "ws",
    "tcp": "tcp",
    "tls": "tcp",
    "stdio": "stdio",
    "quic": "quic",
    "webrtc+http": "webrtc",
    "webrtc+https": "webrtc",
    "vroom": "fallback",
    "vroom+tls": "fallback",
}
"""URL scheme -> module of `openmux.aio` implementing it."""


def _module(url: str) -> Any:
    scheme = urlsplit(url).scheme.lower() if "://" in url else url.split(":", 1)[0].lower()
    try:
        name = SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unsupported OpenMux URL scheme {scheme!r} in {url!r}") from None
    return importlib.import_module(f"{__name__}.{name}")


async def connect(url: str, **kwargs: Any) -> Session:
    """Open a client session; returns once WELCOME arrived.

    Keywords: see `Options` (channels, token, ssl, timeout, ping_interval, ...);
    others are transport-specific. Raises `HandshakeError` (with the close
    code, e.g. 4000) or `TransportError`/`OSError`; `HandshakeTimeoutError`
    (a `TransportError` and a `TimeoutError`) when no WELCOME came within
    `timeout` seconds (default 10), transport set-up included.
    `ws_client="builtin"`: ws:// and wss:// through `wsclient` (lean start-up,
    no `websockets` import) instead of websockets' client.
    """
    options = Options.from_kwargs(**kwargs)
    if options.extra.get("ws_client") == "builtin" and url.lower().startswith(("ws:", "wss:")):
        module = importlib.import_module(f"{__name__}.wsclient")
    else:
        module = _module(url)
    if getattr(module, "MANAGES_TIMEOUT", False):
        if "timeout" in kwargs:  # the caller's bound for the whole chain
            options.extra["chain_timeout"] = options.timeout
        session: Session = await module.connect(url, options)
        return session
    async with handshake_deadline(options.timeout, url):
        session = await module.connect(url, options)
    return session


def _shared_ports(urls: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """`webrtc+http(s)://h:p/base` with the h:p (p != 0) of a `ws(s)://` URL rides on
    that WebSocket listener (one port, see `ws.py`): `(url, listen kwargs)` pairs."""
    ws_at: dict[tuple[str, str | None, int], str] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("ws", "wss") and parts.port:
            ws_at.setdefault((parts.scheme, parts.hostname, parts.port), url)
    bases: dict[str, list[str]] = {}
    plan: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        scheme = {"webrtc+http": "ws", "webrtc+https": "wss"}.get(parts.scheme)
        target = ws_at.get((scheme, parts.hostname, parts.port or 0)) if scheme else None
        if target is None:
            plan.append(url)
        else:
            bases.setdefault(target, []).append(parts.path)
    return [(url, {"webrtc_bases": bases[url]} if url in bases else {}) for url in plan]


async def serve(handler: Handler, urls: str | Sequence[str], **kwargs: Any) -> Server:
    """Listen on one or several transports with the same handler and auth.

    `handler(session)` runs once the handshake is done; the session is closed
    (1000) when it returns. Port 0 binds a free port: see `Server.urls`.
    `webrtc=True` adds WebRTC signaling (`POST <path>/offer`) to every
    `ws(s)://` listener, on its port; so does a `webrtc+http(s)://` URL with
    the same host and (non-zero) port as a `ws(s)://` URL.
    """
    options = Options.from_kwargs(**kwargs)
    server = Server(handler, options)
    for url, shared in _shared_ports([urls] if isinstance(urls, str) else list(urls)):
        try:
            listener = await _module(url).listen(url, server, **shared)
        except BaseException:
            server.close()
            await server.wait_closed()
            raise
        server._add([listener])
    return server


__all__ = [
    "SCHEMES",
    "Channel",
    "ChannelClosedError",
    "ChannelRejectedError",
    "EventTap",
    "FrameSink",
    "FrameSplitter",
    "Handler",
    "HandshakeError",
    "HandshakeTimeoutError",
    "Listener",
    "Message",
    "Options",
    "Server",
    "Session",
    "SessionClosedError",
    "TransportError",
    "connect",
    "connect_stdio",
    "serve",
    "serve_stdio",
    "static_path",
]

_LAZY = {"static_path": "static", "connect_stdio": "stdio", "serve_stdio": "stdio"}
"""Imported on first use (PEP 562): a client has no use for them, and
`static` pulls in pathlib."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
