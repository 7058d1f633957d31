"""The daemon object: listeners, limits, and the sessions that live in it.

One `Daemon` serves every listener (WebSocket, TCP, TLS, QUIC) with the same
handler; each OpenMux connection gets a `TerminalService` (terminal.py) that
runs the VROOM-Terminal sessions on it. Terminal sessions are registered here,
not on the connection, so that the limits count them across connections and
so that a later reattach layer can find a session whose connection is gone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("vroomd")

DEFAULT_ENV_ALLOW = ("TERM", "LANG", "LC_*", "COLORTERM", "TZ")


@dataclass
class DaemonConfig:
    token: str | None = None
    """None: no authentication (--no-auth, loopback only)."""
    max_sessions: int = 256
    max_connections: int = 256
    shell: str | None = None
    """None: the login shell of the user vroomd runs as."""
    drain_timeout: float = 2.0
    window: int = 1024 * 1024
    """Most unacknowledged output bytes granted to a client offering flow control."""
    env_allow: tuple[str, ...] = DEFAULT_ENV_ALLOW
    ssl: Any = None
    kill_timeout: float = 5.0
    serve_options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for openmux.aio.serve (tests: ping intervals...)."""
    graphical: Any = None
    """`vroomd.graphical.GraphicalConfig` (None: the defaults)."""
    webrtc: Any = None
    """`vroomd.webrtc.WebRTCConfig` (None: the defaults, WebRTC on every ws:// port)."""


class Daemon:
    """Listeners plus the registry of live connections and terminal sessions."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.servers: list[Any] = []
        self.connections: set[Any] = set()
        self.sessions: set[Any] = set()
        """Live terminal sessions (`terminal.TermSession`), across connections."""
        self._closing = False
        # Graphical sessions (vroomd/graphical/): the agent's Chromium starts
        # only when the first one shakes hands.
        from .graphical import GraphicalConfig, GraphicalHub

        self.graphical = GraphicalHub(config.graphical or GraphicalConfig(), token=config.token)
        # WebRTC (vroomd/webrtc.py): signaling on each ws:// port, media per peer.
        from .webrtc import WebRTCConfig, WebRTCService

        self.webrtc = WebRTCService(config.webrtc or WebRTCConfig(), config.token)
        self.graphical.webrtc = self.webrtc

    @property
    def urls(self) -> list[str]:
        return [url for server in self.servers for url in server.urls]

    async def listen(self, url: str) -> list[str]:
        """Start one listener; raises OSError/ValueError (port in use, bad URL)."""
        import openmux.aio
        from vroom_graphical import parse_name as graphical_name
        from vroom_terminal.channels import channel_policy as terminal_policy

        graphical = self.graphical

        def channel_policy(spec: Any) -> int | str | None:
            if graphical_name(spec.name) is not None:
                return graphical.channel_policy(spec)
            return terminal_policy(spec)

        options: dict[str, Any] = {
            "ssl": self.config.ssl,
            "channel_policy": channel_policy,
            "ping_interval": 30.0,
            "http_handler": graphical.http,  # the browser page on ws:// ports
            **self.webrtc.serve_options(url),
            **self.config.serve_options,
        }
        server = await openmux.aio.serve(self.handler, url, **options)
        self.servers.append(server)
        return list(server.urls)

    async def handler(self, session: Any) -> None:
        """One OpenMux connection, for its whole life."""
        from .origin import foreign_origin
        from .terminal import TerminalService

        if self.config.token is None:
            refusal = foreign_origin(session.transport_info)
            if refusal is not None:
                log.warning(
                    "refused connection from %s: %s",
                    session.transport_info.get("peername"),
                    refusal,
                )
                await session.close(4000, refusal)
                return
        over_limit = len(self.connections) >= self.config.max_connections or self._closing
        service = TerminalService(self, session, refuse=over_limit)
        self.connections.add(service)
        # Graphical channels are taken before the terminal's tap sees them.
        graphical = self.graphical.attach(session, refuse=over_limit)
        try:
            await service.run()
        finally:
            self.connections.discard(service)
            await graphical.close()

    async def close(self) -> None:
        """Stop listening, hang up every session, wait for the children."""
        self._closing = True
        for server in self.servers:
            server.close()
        for term in list(self.sessions):
            term.hangup("vroomd is shutting down")
        await self.graphical.close()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 5)
            except (TimeoutError, Exception) as exc:  # pragma: no cover - best effort
                log.debug("server close: %r", exc)
        waits = [term.wait_reaped() for term in list(self.sessions)]
        if waits:
            await asyncio.wait_for(
                asyncio.gather(*waits, return_exceptions=True), self.config.kill_timeout + 2
            )
