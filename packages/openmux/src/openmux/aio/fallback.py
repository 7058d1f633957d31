"""The client fallback chain for `vroom://host[:port][/path]` (OPENMUX.md §3).

QUIC (`quic://host:4433`), then WebRTC (`webrtc+http://host:port/path`, whose
module POSTs `<path>/offer`), then WebSocket (`ws://host:port/path`, default
`/omux`), each attempt bounded by `attempt_timeout` (5 s), the whole chain
by `timeout` when the caller gives one (otherwise up to three attempts'
worth: the default 10 s would starve the WebSocket attempt behind two
timed-out UDP ones). `vroom+tls://` (or
`ssl=`) uses `webrtc+https`/`wss`. A transport whose module or dependency is
missing is skipped. The first session that completes its handshake wins; an
authentication refusal (4000) ends the chain at once, since every transport
would give the same answer.

The WebRTC attempt POSTs to the WebSocket's port: a server started with
`serve(..., webrtc=True)` answers there (ws.py), one without signaling
answers 404 at once, and the chain moves on to the WebSocket.
"""

from __future__ import annotations

import asyncio
import logging

from ..codes import CloseCode
from ._urls import netloc, split
from .errors import HandshakeError, HandshakeTimeoutError, TransportError
from .session import Options, Session

logger = logging.getLogger("openmux")

MANAGES_TIMEOUT = True
"""`openmux.aio.connect()` does not wrap this module in `options.timeout`."""

ATTEMPT_TIMEOUT = 5.0
QUIC_PORT = 4433


def chain(url: str, options: Options) -> list[str]:
    """The URLs tried, in order (overridable with `fallback=[...]`)."""
    explicit = options.extra.get("fallback")
    if explicit:
        return list(explicit)
    parts, host, port = split(url, 443 if url.startswith("vroom+tls:") else 80)
    secure = parts.scheme == "vroom+tls" or options.ssl is not None
    path = parts.path.rstrip("/")
    quic_port = options.extra.get("quic_port", QUIC_PORT)
    hostport = netloc(host, port)
    return [
        f"quic://{netloc(host, quic_port)}{path}",
        f"webrtc+{'https' if secure else 'http'}://{hostport}{path}",
        f"{'wss' if secure else 'ws'}://{hostport}{path or '/omux'}",
    ]


async def connect(url: str, options: Options) -> Session:
    from . import _module  # late: the package imports us lazily

    per_attempt = float(options.extra.get("attempt_timeout", ATTEMPT_TIMEOUT))
    given = options.extra.get("chain_timeout")
    total = None if given is None else float(given)
    loop = asyncio.get_running_loop()
    deadline = None if total is None else loop.time() + total
    errors: list[str] = []
    for candidate in chain(url, options):
        budget = per_attempt if deadline is None else min(per_attempt, deadline - loop.time())
        if budget <= 0:
            raise HandshakeTimeoutError(
                f"no OpenMux session with {url} within {total:g} s (handshake timeout): "
                + "; ".join(errors)
            )
        try:
            module = _module(candidate)
        except ImportError as exc:
            logger.info("fallback: skipping %s (%s)", candidate, exc)
            errors.append(f"{candidate}: unavailable ({exc})")
            continue
        attempt = Options(**{**vars(options), "timeout": budget})
        try:
            async with asyncio.timeout(budget):
                session: Session = await module.connect(candidate, attempt)
        except HandshakeError as exc:
            if exc.code == CloseCode.AUTH_FAILED:
                raise
            errors.append(f"{candidate}: {exc}")
        except TimeoutError:
            errors.append(f"{candidate}: timed out after {budget:g} s")
        except (OSError, TransportError, ValueError) as exc:
            errors.append(f"{candidate}: {exc!r}")
        else:
            session.transport_info["url"] = candidate
            logger.info("fallback: connected with %s", candidate)
            return session
        logger.info("fallback: %s failed", candidate)
    if deadline is not None and loop.time() >= deadline:
        raise HandshakeTimeoutError(
            f"no OpenMux session with {url} within {total:g} s (handshake timeout): "
            + "; ".join(errors)
        )
    raise TransportError("no transport of the fallback chain worked: " + "; ".join(errors))
