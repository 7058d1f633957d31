"""A process's stdout and stdin, shaped like asyncio's streams (and asyncssh's).

`OutputReader` has `asyncio.StreamReader`'s reading API and acknowledges
output as it is read: vroomd never has more than the negotiated window in
flight, so a reader that does not read stops the remote program (within
that window) instead of filling our memory. `InputWriter` has
`asyncio.StreamWriter`'s writing API over the pty channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .process import TerminalProcess

INPUT_CHUNK = 16 * 1024
"""Input goes out in messages of at most this many bytes: a keystroke stays
one small frame, a paste does not hold the pty channel for long."""


class OutputReader:
    """The remote program's output (the PTY's: stdout and stderr merged).

    Bytes count as consumed, and are acknowledged to vroomd, when a read
    returns them. A read that must wait for more than the buffer holds
    (`readexactly`, `readuntil` across the window) acknowledges what it is
    holding first, or a request larger than the window would wait forever.
    Once the stream failed (`ConnectionLost`, ...) the bytes that arrived
    before are still returned; then the error is raised.
    """

    def __init__(self, consumed: Callable[[int], None], limit: int) -> None:
        self._consumed = consumed
        self._limit = limit
        self._buffer = bytearray()
        self._credited = 0  # bytes at the front of _buffer already acknowledged
        self._eof = False
        self._error: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        return f"<OutputReader {len(self._buffer)} bytes buffered{' eof' if self._eof else ''}>"

    # -------------------------------------------------------- producer side

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        if self._waiters:
            self._wake()

    def _feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _set_error(self, exc: BaseException) -> None:
        if not self._eof:
            self._error = exc
            self._eof = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -------------------------------------------------------- consumer side

    def at_eof(self) -> bool:
        """True once the output ended and everything was read."""
        return self._eof and not self._buffer

    def exception(self) -> BaseException | None:
        return self._error

    def _take(self, size: int) -> bytes:
        buffer = self._buffer
        if size >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:size])
            del buffer[:size]
        credited = self._credited
        if credited >= len(data):
            self._credited = credited - len(data)
        else:
            self._credited = 0
            self._consumed(len(data) - credited)
        return data

    def _credit_all(self) -> None:
        """Acknowledge what is buffered now, before waiting for more."""
        extra = len(self._buffer) - self._credited
        if extra > 0:
            self._credited = len(self._buffer)
            self._consumed(extra)

    async def _wait(self) -> None:
        if self._eof:
            if self._error is not None:
                raise self._error
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all of the output until its end if `n` < 0);
        b"" at the end of the output."""
        if n == 0:
            return b""
        if n < 0:
            parts: list[bytes] = []
            while True:
                if self._buffer:
                    parts.append(self._take(len(self._buffer)))
                elif self._eof:
                    if self._error is not None and not parts:
                        raise self._error
                    return b"".join(parts)
                else:
                    await self._wait()
        while not self._buffer:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            await self._wait()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly `n` bytes; `asyncio.IncompleteReadError` if the output ends first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while len(self._buffer) < n:
            if self._eof:
                if self._error is not None:
                    raise self._error
                partial = self._take(len(self._buffer))
                raise asyncio.IncompleteReadError(partial, n)
            self._credit_all()
            await self._wait()
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Up to and including `separator`. `asyncio.IncompleteReadError` if
        the output ends first; `asyncio.LimitOverrunError` (nothing consumed)
        if no separator within the reader's limit."""
        if not separator:
            raise ValueError("separator should be at least one-byte string")
        start = 0
        while True:
            buffer = self._buffer
            found = buffer.find(separator, start)
            if found >= 0:
                end = found + len(separator)
                if end > self._limit:
                    raise asyncio.LimitOverrunError(
                        "separator is found, but chunk is longer than limit", found
                    )
                return self._take(end)
            if len(buffer) > self._limit:
                raise asyncio.LimitOverrunError(
                    "separator is not found, and chunk exceed the limit", len(buffer)
                )
            if self._eof:
                if self._error is not None:
                    raise self._error
                partial = self._take(len(buffer))
                raise asyncio.IncompleteReadError(partial, None)
            start = max(0, len(buffer) - len(separator) + 1)
            self._credit_all()
            await self._wait()

    async def readline(self) -> bytes:
        """A line with its b"\\n"; the rest at the end of the output; b"" after it."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            self._take(exc.consumed)
            raise ValueError(exc.args[0]) from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        while line := await self.readline():
            yield line


class InputWriter:
    """Input for the remote PTY; `write_eof()` ends it (the program reads EOF)."""

    def __init__(self, process: TerminalProcess) -> None:
        self._process = process

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Send now (UTF-8 for str). `BrokenPipeError` once the session is over."""
        if isinstance(data, str):
            data = data.encode()
        self._process._write(bytes(data))

    def writelines(self, lines: list[bytes]) -> None:
        self.write(b"".join(lines))

    def write_eof(self) -> None:
        self._process._write_eof()

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self._process._input_closed()

    async def drain(self) -> None:
        """Until the transport is under its high-water mark again."""
        await self._process._drain()

    def close(self) -> None:
        """As `write_eof()` (asyncssh's SSHWriter.close does the same)."""
        if not self.is_closing():
            self.write_eof()


__all__ = ["InputWriter", "OutputReader"]
