"""One server object over listeners of several transports, with one handler and auth."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from ..codes import CloseCode
from .session import Handler, Options, Session, serve_session

logger = logging.getLogger("openmux")


class Listener(Protocol):
    """What a transport module's `listen()` returns."""

    urls: list[str]
    """The URLs clients can use, with the real port when 0 was asked for."""

    def close(self) -> None:
        """Stop accepting; live sessions are closed by the `Server`."""

    async def wait_closed(self) -> None: ...


class Server:
    """Returned by `openmux.aio.serve()`; an async context manager.

    Transport modules hand every accepted connection to `start_session()`,
    so that `close()` can end live sessions with 1001 GOING_AWAY.
    """

    def __init__(self, handler: Handler, options: Options) -> None:
        self.handler = handler
        self.options = options
        self.listeners: list[Listener] = []
        self.sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closed = asyncio.Event()

    @property
    def urls(self) -> list[str]:
        return [url for listener in self.listeners for url in listener.urls]

    def url(self, scheme: str) -> str:
        """The first bound URL with this scheme (`server.url("tcp")`)."""
        for url in self.urls:
            if url.split(":", 1)[0] == scheme:
                return url
        raise KeyError(f"no listener for {scheme!r}")

    def start_session(self, session: Session) -> asyncio.Task[None]:
        """Run the handler for a new connection (after its `connection_made`)."""
        if self._closing:
            session.connection.close(CloseCode.GOING_AWAY, "server closing")
        self.sessions.add(session)
        task = asyncio.get_running_loop().create_task(serve_session(session, self.handler))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.sessions.discard(session)

        task.add_done_callback(done)
        return task

    def close(self) -> None:
        """Stop listening and close every live session with 1001."""
        if self._closing:
            return
        self._closing = True
        for listener in self.listeners:
            listener.close()
        loop = asyncio.get_running_loop()
        for session in list(self.sessions):
            task = loop.create_task(session.close(CloseCode.GOING_AWAY, "server closing"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def wait_closed(self) -> None:
        for listener in self.listeners:
            await listener.wait_closed()
        for session in list(self.sessions):
            await session.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._closed.set()

    async def serve_forever(self) -> None:
        await self._closed.wait()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def _add(self, listeners: Iterable[Listener]) -> None:
        self.listeners.extend(listeners)
