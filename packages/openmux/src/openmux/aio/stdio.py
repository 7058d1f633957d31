"""OpenMux over a child process's stdin/stdout (`stdio:<command>`), OPENMUX.md §3.

Parent side: `connect("stdio:python -m app --serve")` or `connect_stdio(argv)`
spawns the command and is the OpenMux client. Child side: `serve_stdio(handler)`
serves one session on its own stdin/stdout. Frames are a byte stream as on
TCP; stderr is logs only (inherited by default, `stderr=` to redirect). stdin
EOF = the peer closed; the child's exit = close. Writes go to the pipe at once
(no Python-level buffering); the pipe's buffer limits give back-pressure.

The child moves its real stdout aside and points fd 1 at stderr, so a stray
`print()` in the application cannot corrupt the frame stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, cast

from ._stream import StreamProtocol
from .errors import TransportError
from .server import Server
from .session import Handler, Options, Session, handshake_deadline, serve_session

logger = logging.getLogger("openmux")


def parse_url(url: str) -> list[str]:
    """`stdio:cmd arg ...` (or `stdio://cmd ...`) -> argv, split like a shell would."""
    rest = url.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:]
    argv = shlex.split(rest)
    if not argv:
        raise ValueError(f"{url!r} names no command")
    return argv


class _ChildProcessProtocol(asyncio.SubprocessProtocol):
    """Parent side: drives the session from the child's pipes; also its sink."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.transport: asyncio.SubprocessTransport | None = None
        self._lost = False
        self._kill_handle: asyncio.TimerHandle | None = None
        self.exited = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.SubprocessTransport, transport)
        stdin = self._stdin()
        if stdin is not None:
            limit = self.session.options.write_limit
            stdin.set_write_buffer_limits(high=limit, low=limit // 4)
        self.session.transport_info["pid"] = self.transport.get_pid()

    def _stdin(self) -> asyncio.WriteTransport | None:
        if self.transport is None:
            return None
        return cast("asyncio.WriteTransport | None", self.transport.get_pipe_transport(0))

    def _stdout(self) -> asyncio.ReadTransport | None:
        if self.transport is None:
            return None
        return cast("asyncio.ReadTransport | None", self.transport.get_pipe_transport(1))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.session.data_received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._gone(exc)

    def process_exited(self) -> None:
        self._gone(None)
        if self._kill_handle is not None:
            self._kill_handle.cancel()
        if not self.exited.done():
            self.exited.set_result(None)

    def _gone(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self.session.connection_lost(exc)

    def pause_writing(self) -> None:
        self.session.pause_writing()

    def resume_writing(self) -> None:
        self.session.resume_writing()

    # FrameSink
    def write_frames(self, frames: list[bytes]) -> None:
        stdin = self._stdin()
        if stdin is not None and not stdin.is_closing():
            stdin.writelines(frames)

    async def wait_closed(self) -> None:
        """The child has exited (`close()` killed it if it lingered)."""
        await asyncio.shield(self.exited)

    def get_write_buffer_size(self) -> int:
        stdin = self._stdin()
        return stdin.get_write_buffer_size() if stdin is not None else 0

    def close(self) -> None:
        """Close the child's stdin (its EOF); kill it if it lingers."""
        stdin = self._stdin()
        if stdin is not None:
            stdin.close()
        if self.transport is not None and not self.exited.done() and self._kill_handle is None:
            grace = self.session.options.close_timeout + 2.0
            self._kill_handle = asyncio.get_running_loop().call_later(grace, self._kill)

    def _kill(self) -> None:
        if self.transport is not None and self.transport.get_returncode() is None:
            logger.warning(
                "stdio child %s did not exit after EOF: killed", self.transport.get_pid()
            )
            self.transport.kill()

    def pause_reading(self) -> None:
        stdout = self._stdout()
        if stdout is not None:
            stdout.pause_reading()

    def resume_reading(self) -> None:
        stdout = self._stdout()
        if stdout is not None:
            stdout.resume_reading()


async def connect_stdio(argv: Sequence[str], **kwargs: Any) -> Session:
    """Spawn `argv` and speak OpenMux with it over its stdin/stdout."""
    options = Options.from_kwargs(**kwargs)
    async with handshake_deadline(options.timeout, f"child {argv[0]!r}"):
        return await _spawn(list(argv), options)


async def connect(url: str, options: Options) -> Session:
    return await _spawn(parse_url(url), options)


async def _spawn(argv: list[str], options: Options) -> Session:
    loop = asyncio.get_running_loop()
    session = Session(options, is_client=True, mode="stream")
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _ChildProcessProtocol(session),
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=options.extra.get("stderr"),
            env=options.extra.get("env"),
            cwd=options.extra.get("cwd"),
        )
    except OSError as exc:
        raise TransportError(f"cannot start {argv[0]!r}: {exc}") from exc
    session.transport_info["process"] = transport
    session.connection_made(protocol)
    try:
        await session.wait_handshake()
    except BaseException:
        if transport.get_returncode() is None:
            transport.kill()
        transport.close()
        raise
    return session


async def listen(url: str, server: Server) -> Any:
    raise ValueError("stdio: is client-only; a child serves with serve_stdio(handler)")


async def serve_stdio(
    handler: Handler, *, stdin: int | None = None, stdout: int | None = None, **kwargs: Any
) -> Session:
    """Child side: serve one OpenMux session on this process's stdin/stdout.

    Returns the (closed) session once the handler is done or the parent left.
    `stdin`/`stdout` name other file descriptors (pipes, sockets) to serve
    on instead; they are duplicated, the caller keeps its own.
    """
    options = Options.from_kwargs(**kwargs)
    loop = asyncio.get_running_loop()
    if stdin is None and stdout is None:
        in_fd, out_fd = os.dup(0), os.dup(1)
        sys.stdout.flush()
        os.dup2(2, 1)  # stray prints go to the logs
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    else:
        in_fd = os.dup(0 if stdin is None else stdin)
        out_fd = os.dup(1 if stdout is None else stdout)
    session = Session(options, is_client=False, mode="stream")
    protocol = _ChildSideProtocol(session)
    reader = os.fdopen(in_fd, "rb", buffering=0)
    writer = os.fdopen(out_fd, "wb", buffering=0)
    write_transport, _ = await loop.connect_write_pipe(lambda: protocol, writer)
    protocol.writer = write_transport
    read_transport, _ = await loop.connect_read_pipe(lambda: protocol, reader)
    protocol.reader = read_transport
    limit = options.write_limit
    protocol.writer.set_write_buffer_limits(high=limit, low=limit // 4)
    session.connection_made(protocol)
    await serve_session(session, handler)
    await session.wait_closed()
    return session


class _ChildSideProtocol(StreamProtocol):
    """Child side: one protocol object for the stdin read pipe and stdout write pipe."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.reader: asyncio.ReadTransport | None = None
        self.writer: asyncio.WriteTransport | None = None
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass  # two pipes: wired up by serve_stdio

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self.session.connection_lost(exc)

    def write_frames(self, frames: list[bytes]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.writelines(frames)

    def get_write_buffer_size(self) -> int:
        return self.writer.get_write_buffer_size() if self.writer is not None else 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.reader is not None:
            self.reader.close()

    def pause_reading(self) -> None:
        if self.reader is not None and not self.reader.is_closing():
            self.reader.pause_reading()

    def resume_reading(self) -> None:
        if self.reader is not None and not self.reader.is_closing():
            self.reader.resume_reading()
