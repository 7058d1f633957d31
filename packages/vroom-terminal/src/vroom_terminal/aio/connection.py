"""One OpenMux connection to a vroomd, carrying any number of processes.

The sans-IO `TerminalClient` runs the protocol; this drives it on an
`openmux.aio.Session` through an event tap, and gives each process's pty
DATA a fast handler (openmux.aio's "Fast paths"): bulk output goes from the
transport's callback to the process's stdout buffer or `on_output`
callback, with no core event, no `handle_event` and no `PtyOutput`, while
the session simply runs and the message needs nothing else (no
WINDOW_ACK due, no overrun to report). Everything else, and any message the
fast handler declines, goes the general way, which keeps every rule: the
handler only does what the general path would do, and keeps the
client's credit accounting (`AckWindow`) exactly as that path would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator, Sequence
from typing import Any

import openmux
import openmux.aio

from ..capabilities import CapabilityOffer, ExtensionsOffer
from ..channels import session_key
from ..client import TerminalClient
from ..errors import LocalProtocolError
from ..events import PtyOutput, SessionClosed, TerminalEvent
from ..states import State
from .errors import AuthError, ConnectError, ConnectionLost, StartTimeout
from .process import CompletedProcess, OutputCallback, TerminalProcess

logger = logging.getLogger("vroom_terminal.aio")

DEFAULT_TIMEOUT = 10.0
DEFAULT_WINDOW = 1024 * 1024
"""The credit window offered (House §6.1): vroomd keeps at most this much
output unacknowledged in flight, so a reader that stops stops the program."""
DEFAULT_ACK_EVERY = 128 * 1024
"""WINDOW_ACK once this much more output was consumed (cumulative counts;
capped at half the window so vroomd never waits on an ack we hold back)."""

_MessageReceived = openmux.MessageReceived
_ConnectionTerminated = openmux.ConnectionTerminated
_ACTIVE = State.SESSION_ACTIVE


class TerminalConnection:
    """A connection to vroomd (asyncssh's SSHClientConnection): start
    programs with `create_process()` or `run()`; `close()` when done, or use
    it as `async with`. Each process is one session on the connection
    (House `#N` channel names), so several run side by side."""

    def __init__(
        self,
        session: openmux.aio.Session,
        url: str,
        *,
        token: str | None,
        timeout: float,
        window: int | None,
        ack_every: int,
    ) -> None:
        self.session = session
        """The `openmux.aio.Session` underneath (ping(), rtt, transport_info)."""
        self.url = url
        self.token = token
        self.timeout = timeout
        self.window = window
        self.client = TerminalClient(
            session.connection,
            offer=CapabilityOffer(extensions=ExtensionsOffer(flow_control=window)),
            ack_every=ack_every,
        )
        """The sans-IO protocol state (its `sessions` by process key)."""
        self._processes: dict[str, TerminalProcess] = {}
        self._count = 0
        self._processing = False
        self._lost: ConnectionLost | None = None
        self._closing = False
        session.add_event_tap(self._tap)
        self._watch = asyncio.get_running_loop().create_task(self._watch_session())

    def __repr__(self) -> str:
        return f"<TerminalConnection {self.url} {len(self._processes)} processes>"

    # --------------------------------------------------------------- API

    @property
    def is_closed(self) -> bool:
        return self._lost is not None

    async def create_process(
        self,
        command: str | Sequence[str] | None = None,
        *,
        term_type: str = "xterm-256color",
        term_size: tuple[int, ...] = (80, 24),
        env: dict[str, str] | None = None,
        raw: bool = False,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
    ) -> TerminalProcess:
        """Start `command` on a new PTY and return once it runs.

        `command`: None for the user's login shell, a string for the shell
        (`sh -c`, as ssh does), a list for an argv. `term_size`: (columns,
        rows) or (columns, rows, pixel width, pixel height). `raw`: a raw
        PTY (no echo, no CR/LF translation): the program's bytes arrive
        exactly. `on_output(data)`: output goes to this callback (each chunk
        acknowledged when it returns) instead of `stdout`. `timeout`
        (default: the connection's) bounds the start: `StartTimeout`.
        """
        if self._lost is not None:
            raise self._lost
        self._count += 1
        key = session_key(self._count)
        process = TerminalProcess(
            self,
            key,
            command,
            term_type=term_type,
            term_size=term_size,
            env=env,
            raw=raw,
            on_output=on_output,
        )
        self._processes[key] = process
        try:
            self.client.open_session(key)
        except LocalProtocolError:  # the connection is closing
            del self._processes[key]
            raise self._lost_error() from None
        self._flush()
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(process._started)
        except TimeoutError:
            if process._started.done() and process._started.exception() is not None:
                raise process._started.exception() from None  # type: ignore[misc]
            error = StartTimeout(f"{self.url}: the session did not start within {limit:g} s")
            process._fail(error)
            self._abandon(key)
            raise error from None
        except asyncio.CancelledError:
            process._fail(ConnectionLost("cancelled while starting"))
            self._abandon(key)
            raise
        return process

    async def run(
        self,
        command: str | Sequence[str] | None = None,
        *,
        input: bytes | str | None = None,  # asyncssh's and subprocess's name
        check: bool = False,
        raw: bool = True,
        timeout: float | None = None,
        **options: Any,
    ) -> CompletedProcess:
        """Run `command` to its end: its output and exit status.

        `input` is written, then end of input; without it the program reads
        end of input at once (as `subprocess.run` with stdin closed). The PTY
        is raw by default (as `vroom term` for pipes): the output is the
        program's bytes exactly. `check`: `ProcessError` unless exit 0.
        `timeout` bounds the whole run (`TimeoutError`); `options` go to
        `create_process`."""
        async with asyncio.timeout(timeout):
            process = await self.create_process(command, raw=raw, **options)
            try:
                # A quick program may be over already: its input has nowhere to go.
                with contextlib.suppress(BrokenPipeError):
                    if input is not None:
                        process.stdin.write(input)
                        await process.stdin.drain()
                    process.stdin.write_eof()
                return await process.wait(check=check)
            finally:
                process.close()

    async def close(self) -> None:
        """Close the connection: running processes get `ConnectionLost`."""
        self._closing = True
        if self.session.is_open:
            try:
                await asyncio.wait_for(self.session.close(), self.timeout)
            except (TimeoutError, openmux.OpenMuxError):
                pass
        self._on_lost(None, "closed by the client")

    async def wait_closed(self) -> None:
        await self.session.wait_closed()

    async def __aenter__(self) -> TerminalConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --------------------------------------------------------- internals

    def _flush(self) -> None:
        """Hand what the protocol queued to the transport; inside the tap the
        asyncio layer does it after the tap (once channels are registered)."""
        if not self._processing:
            self.session.flush()

    def _lost_error(self) -> ConnectionLost:
        if self._lost is None:
            return self._closed_error(self.session.close_code, self.session.close_reason)
        return self._lost

    def _closed_error(self, code: int | None, reason: str) -> ConnectionLost:
        text = f" ({code}{': ' + reason if reason else ''})" if code is not None else ""
        if self._closing:
            text = " (closed by the client)"
        return ConnectionLost(f"connection to {self.url} closed{text}", code)

    def _on_lost(self, code: int | None, reason: str) -> None:
        if self._lost is None:
            self._lost = self._closed_error(code, reason)
        for process in list(self._processes.values()):
            process._fail(self._lost)

    async def _watch_session(self) -> None:
        """The connection's fate for every wait, whatever ends it."""
        try:
            await self.session.wait_closed()
        except Exception:
            pass
        self._on_lost(self.session.close_code, self.session.close_reason)

    def _forget(self, process: TerminalProcess) -> None:
        key = process.key
        if self._processes.get(key) is process:
            del self._processes[key]
        sess = self.client.sessions.get(key)
        if sess is not None and not sess.live:
            del self.client.sessions[key]

    def _abandon(self, key: str) -> None:
        sess = self.client.sessions.get(key)
        if sess is not None and sess.live:
            self.client.close_session(key, "abandoned by the client")
            self._flush()

    def _tap(self, events: list[openmux.Event]) -> list[openmux.Event]:
        client = self.client
        processes = self._processes
        self._processing = True
        try:
            for event in events:
                if type(event) is _ConnectionTerminated:
                    self._on_lost(event.code, event.reason)
                try:
                    results = client.handle_event(event)
                except openmux.LocalProtocolError:
                    # A batch can hold a channel's opening and its closing: the
                    # core already forgot the channel we would answer on.
                    continue
                for result in results:
                    process = processes.get(result.session)  # type: ignore[attr-defined]
                    if process is None:
                        self._orphan(result)
                    elif type(result) is PtyOutput:
                        process._on_output(result.data)
                    else:
                        try:
                            process._handle(result)
                        except Exception as exc:  # nothing may escape into the transport
                            logger.exception("%s: session %r failed", self.url, process.key)
                            process._fail(exc)
        finally:
            self._processing = False
        # pongs, channel bookkeeping and the end of the connection: the asyncio layer's
        return [e for e in events if type(e) is not _MessageReceived]

    def _orphan(self, event: TerminalEvent) -> None:
        """An event for a process that is over: its session's last words."""
        if type(event) is SessionClosed:
            sess = self.client.sessions.get(event.session)
            if sess is not None and not sess.live:
                del self.client.sessions[event.session]
        elif type(event) is PtyOutput and event.session in self.client.sessions:
            # closed by us while output was under way
            self.client.ack(len(event.data), session=event.session)

    def _install_fast_path(self, process: TerminalProcess, channel: int) -> None:
        """pty DATA on `channel` straight from the transport (module docstring).

        `AckWindow.on_data` / `consume` inline: the handler declines a message
        that would overrun the window (the general path reports it). In
        callback mode, a WINDOW_ACK that falls due is sent from the event loop
        right after this read (`call_soon`: a fast handler must not call the
        connection), not by declining the message: in a batch of frames (a
        WebSocket read) a declined one sends every frame after it the general
        way too."""
        sess = self.client.sessions.get(process.key)
        if sess is None or sess.pty_id != channel:
            return
        window = sess.ack_window
        limit = window.window
        active = _ACTIVE
        callback = process._callback
        if callback is None:
            feed = process.stdout._feed

            def fast_output(type_: int, data: bytes) -> bool:
                if type_ or sess.state is not active or sess.pty_id != channel:
                    return False  # only DATA while the session runs
                size = len(data)
                if limit is not None and window.received + size - window.acked > limit:
                    return False  # an overrun to report
                window.received += size
                feed(data)  # acknowledged when read
                return True

        else:
            on_output = callback
            failed = process._callback_failed
            call_soon = asyncio.get_running_loop().call_soon
            key = process.key
            client = self.client
            ack_pending = False

            def send_ack() -> None:
                nonlocal ack_pending
                ack_pending = False
                if key in client.sessions:
                    client.ack(0, session=key)  # the WINDOW_ACK due, if still live
                    self._flush()

            def fast_output(type_: int, data: bytes) -> bool:
                nonlocal ack_pending
                if type_ or sess.state is not active or sess.pty_id != channel:
                    return False
                size = len(data)
                if limit is not None and window.received + size - window.acked > limit:
                    return False  # an overrun to report
                window.received += size
                try:
                    on_output(data)
                except Exception as exc:
                    failed(exc)
                window.consumed += size
                if (
                    limit is not None
                    and not ack_pending
                    and window.consumed - window.acked >= window.ack_every
                ):
                    ack_pending = True
                    call_soon(send_ack)
                return True

        try:
            self.session.set_fast_handler(channel, fast_output)
        except KeyError:  # closed in the batch being handled
            pass


class _Connecting:
    """`await connect(...)` or `async with connect(...) as conn:` (as asyncssh)."""

    def __init__(self, opening: Any) -> None:
        self._opening = opening
        self._conn: TerminalConnection | None = None

    def __await__(self) -> Generator[Any, None, TerminalConnection]:
        return self._opening.__await__()  # type: ignore[no-any-return]

    async def __aenter__(self) -> TerminalConnection:
        self._conn = await self._opening
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            await self._conn.close()


def connect(
    url: str,
    *,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    window: int | None = DEFAULT_WINDOW,
    ack_every: int = DEFAULT_ACK_EVERY,
    **options: Any,
) -> _Connecting:
    """Connect to vroomd at `url` (ws://, wss://, tcp://, tls://, quic://,
    vroom://: any `openmux.aio` transport).

    `token`: vroomd's token; None looks at $VROOM_TOKEN, then (for a vroomd
    on this machine) vroomd's own token file, as `vroom term` does.
    `timeout` bounds the connection and, by default, each process's start.
    `window`: the credit window offered (None: transport back-pressure
    only); `ack_every`: how much consumed output makes a WINDOW_ACK.
    `options` go to `openmux.aio.connect` (`ssl`, `cafile`, `ws_client`,
    `ping_interval` (default 30 s: a dead peer ends every wait), ...).
    Raises `ConnectError`, or `AuthError` when the handshake refused us.
    """
    return _Connecting(
        _open(url, token=token, timeout=timeout, window=window, ack_every=ack_every, **options)
    )


async def _open(
    url: str,
    *,
    token: str | None,
    timeout: float,
    window: int | None,
    ack_every: int,
    **options: Any,
) -> TerminalConnection:
    from ..cli import Failure, connect_failure, find_token

    if token is None:
        try:
            token = find_token(url, None)
        except Failure:
            token = None
    options.setdefault("ping_interval", 30.0)
    try:
        session = await openmux.aio.connect(url, timeout=timeout, **options)
    except Exception as exc:
        if isinstance(exc, openmux.aio.HandshakeError) and exc.code == 4000:
            raise AuthError(f"{url}: authentication refused") from exc
        raise ConnectError(str(connect_failure(url, timeout, exc))) from exc
    return TerminalConnection(
        session, url, token=token, timeout=timeout, window=window, ack_every=ack_every
    )


__all__ = ["DEFAULT_ACK_EVERY", "DEFAULT_WINDOW", "TerminalConnection", "connect"]
