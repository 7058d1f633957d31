"""One remote program on a PTY: asyncssh's SSHClientProcess, for vroomd.

A process is one VROOM-Terminal session (`""`, `"#2"` ... on the
connection). It is started by `TerminalConnection.create_process`, which
returns once the program runs; it answers the session's protocol events
(the connection's event tap hands them over) and holds what the
application sees: `stdin`, `stdout`, the exit status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import events as ev
from ..errors import LocalProtocolError, TerminalError
from ..signals import signal_number
from ..states import State
from .errors import (
    AuthError,
    ProcessError,
    PtyRefusedError,
    ServerBusyError,
    SessionError,
)
from .streams import INPUT_CHUNK, InputWriter, OutputReader

if TYPE_CHECKING:
    from .connection import TerminalConnection

logger = logging.getLogger("vroom_terminal.aio")

OutputCallback = Callable[[bytes], object]
"""`on_output(data)`: a chunk of output, acknowledged once the call returns."""

_ACTIVE = State.SESSION_ACTIVE


@dataclass(frozen=True, slots=True)
class CompletedProcess:
    """What `run()` and `wait()` return (asyncssh's SSHCompletedProcess).

    A PTY has one output stream: `stdout` holds stderr too. `exit_signal` is
    the signal's name without SIG (`"TERM"`) when the program died of one;
    `returncode` is `exit_status`, or minus the signal's number then."""

    command: str | tuple[str, ...] | None
    exit_status: int | None
    exit_signal: str | None
    core_dumped: bool
    returncode: int | None
    stdout: bytes


class TerminalProcess:
    """A program running on a remote PTY (asyncssh's SSHClientProcess).

    `stdin.write()` / `write_eof()`, `stdout.read()` ..., `await wait()`;
    `change_terminal_size()`, `send_signal()`, `close()`. With `on_output`
    the output goes to that callback instead and `stdout` stays empty.
    """

    def __init__(
        self,
        conn: TerminalConnection,
        key: str,
        command: str | Sequence[str] | None,
        *,
        term_type: str,
        term_size: tuple[int, ...],
        env: dict[str, str] | None,
        raw: bool,
        on_output: OutputCallback | None,
    ) -> None:
        if len(term_size) not in (2, 4):
            raise ValueError("term_size is (columns, rows) or (columns, rows, pixwidth, pixheight)")
        self._conn = conn
        self.key = key
        """The session's key on the connection (`""`, `"#2"` ...)."""
        self.command: str | tuple[str, ...] | None = (
            command if command is None or isinstance(command, str) else tuple(command)
        )
        self._term_type = term_type
        self._term_size = tuple(term_size) + (0, 0) * (len(term_size) == 2)
        self._env = env
        self._raw = raw
        self._callback = on_output
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._started: asyncio.Future[None] = loop.create_future()
        self._finished: asyncio.Future[None] = loop.create_future()
        self.stdout = OutputReader(self._consumed, max(64 * 1024, conn.window or 0))
        self.stdin = InputWriter(self)
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.core_dumped = False
        self.env_refused: tuple[str, ...] = ()
        """Names of `env` the server's allow-list refused (ERROR 403)."""
        self._error: BaseException | None = None
        self._eof_sent = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<TerminalProcess {self.key or '#1'} {self.command!r}>"

    # --------------------------------------------------------------- API

    @property
    def returncode(self) -> int | None:
        """`exit_status`, or minus the signal's number; None while it runs."""
        if self.exit_status is not None:
            return self.exit_status
        if self.exit_signal is not None:
            return -(signal_number(self.exit_signal) or 0)
        return None

    @property
    def is_running(self) -> bool:
        return not self._finished.done()

    async def wait(self, check: bool = False, timeout: float | None = None) -> CompletedProcess:
        """Until the program exited; returns its result with the output not
        read yet (reading it is what lets a program with a lot of output
        finish: vroomd sends no more than the window ahead of what we read).
        `check`: `ProcessError` unless it exited with 0."""
        async with asyncio.timeout(timeout):
            output = b"" if self._callback is not None else await self.stdout.read()
            await asyncio.shield(self._finished)
        result = CompletedProcess(
            self.command,
            self.exit_status,
            self.exit_signal,
            self.core_dumped,
            self.returncode,
            output,
        )
        if check and result.returncode != 0:
            how = (
                f"exit status {result.exit_status}"
                if result.exit_status is not None
                else f"signal {result.exit_signal}"
            )
            raise ProcessError(f"{self.command!r} ended with {how}", result)
        return result

    def change_terminal_size(
        self, width: int, height: int, pixwidth: int = 0, pixheight: int = 0
    ) -> None:
        """WINDOW_RESIZE: columns, rows (asyncssh's order), pixels optional."""
        self._call(
            lambda client: client.resize(height, width, pixwidth, pixheight, session=self.key)
        )

    def send_signal(self, signal: int | str) -> None:
        """To the PTY's foreground process group: `"INT"`, `"SIGTERM"`, or a
        number in the Linux numbering (`signal.SIGINT` on Linux)."""
        self._call(lambda client: client.signal(signal, session=self.key))

    def terminate(self) -> None:
        self.send_signal("TERM")

    def kill(self) -> None:
        self.send_signal("KILL")

    def close(self) -> None:
        """Hang up: vroomd closes the PTY (the program gets SIGHUP). `wait()`
        then returns with no exit status unless one arrived."""
        if self._closed:
            return
        self._closed = True
        client = self._conn.client
        sess = client.sessions.get(self.key)
        if sess is not None and sess.live:
            client.close_session(self.key, "closed by the client")
            self._conn._flush()
        self._finish()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._finished)

    async def __aenter__(self) -> TerminalProcess:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------- stdin, stdout

    def _call(self, action: Callable[..., object]) -> None:
        if self._finished.done():
            raise BrokenPipeError(f"the session {self.key or '#1'} is over")
        try:
            action(self._conn.client)
        except LocalProtocolError as exc:
            raise BrokenPipeError(str(exc)) from None
        self._conn._flush()

    def _write(self, data: bytes) -> None:
        if self._eof_sent:
            raise BrokenPipeError("input was ended with write_eof()")
        if self._finished.done():
            raise BrokenPipeError(f"the session {self.key or '#1'} is over")
        conn = self._conn
        client = conn.client
        sess = client.sessions.get(self.key)
        channel = sess.pty_id if sess is not None else None
        send_now = conn.session.send_now
        for start in range(0, len(data), INPUT_CHUNK):
            piece = data[start : start + INPUT_CHUNK]
            if (
                sess is not None
                and channel is not None
                and sess.state is _ACTIVE
                and send_now(channel, 0, piece)  # pty DATA, straight to the transport
            ):
                continue
            try:
                client.send_input(piece, session=self.key)
            except LocalProtocolError as exc:
                raise BrokenPipeError(str(exc)) from None
        conn._flush()

    def _write_eof(self) -> None:
        if self._eof_sent:
            return
        self._call(lambda client: client.send_eof(session=self.key))
        self._eof_sent = True

    def _input_closed(self) -> bool:
        return self._eof_sent or self._finished.done()

    async def _drain(self) -> None:
        session = self._conn.session
        if session.writing_paused:
            try:
                await session.wait_writable()
            except Exception:
                raise self._conn._lost_error() from None

    def _consumed(self, size: int) -> None:
        """`stdout` handed `size` more bytes to the application."""
        client = self._conn.client
        if self.key in client.sessions:
            client.ack(size, session=self.key)
            self._conn._flush()

    # ------------------------------------------- from the connection's tap

    def _on_output(self, data: bytes) -> None:
        """Output that came the general way (`PtyOutput`)."""
        callback = self._callback
        if callback is None:
            self.stdout._feed(data)
            return
        try:
            callback(data)
        except Exception as exc:
            self._callback_failed(exc)
        client = self._conn.client
        if self.key in client.sessions:
            client.ack(len(data), session=self.key)

    def _callback_failed(self, exc: BaseException) -> None:
        """`on_output` raised: the process fails with that error (raised by
        `wait()`), and the session is closed, from the loop: this may run
        inside a fast handler, which must not call the connection."""
        if self._error is None and not self._finished.done():
            self._fail(exc)
            self._loop.call_soon(self.close)

    def _handle(self, event: ev.TerminalEvent) -> None:
        if self._finished.done() and not isinstance(event, ev.ExitStatusReceived):
            return
        conn = self._conn
        client = conn.client
        key = self.key
        if isinstance(event, ev.Negotiated):
            auth = event.select.auth
            if not auth.required:
                self._request_pty()
            elif "token" not in auth.methods:
                self._fail_closing(AuthError(f"{conn.url}: no authentication method we support"))
            elif conn.token is None:
                self._fail_closing(
                    AuthError(f"{conn.url} requires a token: pass token= or set VROOM_TOKEN")
                )
            else:
                client.authenticate(token=conn.token, session=key)
        elif isinstance(event, ev.AuthResult):
            if event.ok:
                self._request_pty()
            else:
                reason = f" ({event.reason})" if event.reason else ""
                self._fail(AuthError(f"{conn.url}: authentication refused{reason}"))
        elif isinstance(event, ev.PtyGranted):
            if self._env:
                client.set_env(self._env, session=key)
            if self.command is None:
                client.shell(session=key)
            else:
                client.exec(self.command, session=key)
        elif isinstance(event, ev.PtyReady):
            conn._install_fast_path(self, event.channel_id)
        elif isinstance(event, ev.SessionActive):
            if not self._started.done():
                self._started.set_result(None)
        elif isinstance(event, ev.PtyRefused):
            self._fail(PtyRefusedError(f"{conn.url}: PTY refused: {event.reason}"))
        elif isinstance(event, ev.ExitStatusReceived):
            self.exit_status = event.code
            self.exit_signal = event.signal
            self.core_dumped = event.core_dumped
            self._finish()
        elif isinstance(event, ev.ErrorReceived):
            self._on_error(event)
        elif isinstance(event, ev.SessionClosed):
            lost = conn._lost
            if lost is not None:
                self._fail(lost)
            else:
                self._fail(
                    SessionError(f"{conn.url}: session closed by the server ({event.reason})")
                )

    def _on_error(self, event: ev.ErrorReceived) -> None:
        url = self._conn.url
        if event.code == 403 and event.names:
            self.env_refused = event.names
            logger.warning("%s: the server refused the variables %s", url, ", ".join(event.names))
        elif not event.fatal:
            logger.warning("%s: server: %s (%d)", url, event.message, event.code)
        elif event.code == 401:
            self._fail(AuthError(f"{url}: authentication refused"))
        elif event.code == 503:
            self._fail(ServerBusyError(f"{url}: {event.message or 'server limit reached'}"))
        else:
            self._fail(SessionError(f"{url}: {event.message} ({event.code})", event.code))

    def _request_pty(self) -> None:
        cols, rows, pw, ph = self._term_size
        modes = {"raw": True} if self._raw else None
        self._conn.client.request_pty(self._term_type, rows, cols, pw, ph, modes, session=self.key)

    # ------------------------------------------------------------ ending

    def _fail_closing(self, exc: TerminalError) -> None:
        self._fail(exc)
        client = self._conn.client
        sess = client.sessions.get(self.key)
        if sess is not None and sess.live:
            client.close_session(self.key, exc.reason)

    def _fail(self, exc: BaseException) -> None:
        """The process failed: `exc` for whoever waits (start, stdout, wait)."""
        if self._finished.done():
            return
        self._error = exc
        if not self._started.done():
            self._started.set_exception(exc)
            self._started.exception()  # retrieved: the starter may be gone
        self.stdout._set_error(exc)
        self._finished.set_exception(exc)
        self._finished.exception()
        self._conn._forget(self)

    def _finish(self) -> None:
        if self._finished.done():
            return
        if not self._started.done():
            self._started.set_exception(SessionError(f"session {self.key or '#1'} was closed"))
            self._started.exception()
        self.stdout._feed_eof()
        self._finished.set_result(None)
        self._conn._forget(self)


__all__ = ["CompletedProcess", "OutputCallback", "TerminalProcess"]
