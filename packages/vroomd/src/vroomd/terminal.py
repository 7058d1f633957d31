"""VROOM-Terminal on real PTYs: the glue between `TerminalServer` and `PtySession`.

`TerminalService` runs for one OpenMux connection. It taps the connection's
events *before* the asyncio layer queues them per channel and feeds them to
the sans-IO `TerminalServer` in arrival order, so that on one ordered
transport a WINDOW_RESIZE sent before some keystrokes is applied before
them (House §6.10), and so that pty bytes go to the PTY without a task
switch. Terminal channels never reach the asyncio layer's queues; other
channels (Graphical) are left to it.

Output is read from the PTY only while the client has credit: `PtySession`
reads at most `send_credit()` bytes, then stops reading until WINDOW_ACKs
come back, so the kernel blocks the program (House §6.1). When the transport
itself is over its high-water mark, reading stops as well.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import pwd
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import openmux
from openmux.aio.taps import ChannelTap
from vroom_terminal import events as ev
from vroom_terminal.capabilities import ServerCapabilities
from vroom_terminal.channels import parse_name
from vroom_terminal.errors import ErrorCode, LocalProtocolError
from vroom_terminal.messages import AuthRequest, PtyRequest
from vroom_terminal.server import TerminalServer
from vroom_terminal.states import State

from .pty import ExitStatus, PtySession

if TYPE_CHECKING:
    from openmux.aio import Session

    from .daemon import Daemon

log = logging.getLogger("vroomd")


def _claims(name: str) -> bool:
    """The terminal protocol's channels (`vroom.terminal.*`, with `#N`)."""
    return parse_name(name) is not None


DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
INPUT_HIGH_WATER = 1024 * 1024
"""Input queued for a PTY whose program does not read: beyond this, stop
reading the connection (transport back-pressure reaches the client)."""
INPUT_LIMIT = 64 * 1024 * 1024
"""Input buffered while reading cannot stop (a PTY waits for WINDOW_ACKs
behind it): past this the session ends with ERROR 413."""


def login_shell() -> str:
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    return shell if shell and os.access(shell, os.X_OK) else "/bin/sh"


def base_environment(term: str, shell: str) -> dict[str, str]:
    """What sshd gives a session before the client's allowed SET_ENV names."""
    try:
        entry = pwd.getpwuid(os.getuid())
        home, user = entry.pw_dir, entry.pw_name
    except KeyError:
        home, user = "/", str(os.getuid())
    return {
        "HOME": home,
        "USER": user,
        "LOGNAME": user,
        "SHELL": shell,
        "PATH": DEFAULT_PATH if os.getuid() else "/usr/local/sbin:/usr/sbin:/sbin:" + DEFAULT_PATH,
        "TERM": term,
    }


class TermSession:
    """One terminal session of vroomd: the protocol session key on its
    connection, and the process on a PTY. Registered in the daemon so that
    limits count it and so that it may outlive its connection."""

    def __init__(self, service: TerminalService, key: str, request: PtyRequest) -> None:
        self.service: TerminalService | None = service
        self.daemon = service.daemon
        self.key = key
        self.request = request
        self.env: dict[str, str] = {}
        self.size = (request.rows, request.cols, request.pixel_width, request.pixel_height)
        self.pty: PtySession | None = None
        self.what = ""
        self.started_at = time.monotonic()
        self.pending_input: list[bytes] = []
        self.eof_pending = False
        self.pty_ready = False
        self.exit_pending: ExitStatus | None = None
        self.failed_output = b""
        self.ended = False
        self._reaped = asyncio.Event()
        self._fast_output: Callable[[bytes], None] | None = None

    @property
    def label(self) -> str:
        return f"session {self.key or '#1'} of {self.service.peer if self.service else '?'}"

    # ----------------------------------------------------------------- start

    def start(self, argv: list[str], executable: str | None, what: str) -> None:
        service = self.service
        assert service is not None
        config = service.daemon.config
        shell = config.shell or login_shell()
        env = base_environment(self.request.term or "xterm-256color", shell)
        env.update(self.env)
        home = env.get("HOME", "/")
        rows, cols, pw, ph = self.size
        self.what = what
        pty = PtySession(
            argv,
            executable=executable,
            env=env,
            cwd=home if os.path.isdir(home) else "/",
            rows=rows or 24,
            cols=cols or 80,
            pixel_width=pw,
            pixel_height=ph,
            raw=self.request.raw,
            drain_timeout=config.drain_timeout,
            kill_timeout=config.kill_timeout,
        )
        pty.chunk = service.chunk
        pty.set_credit(0)  # nothing is read before the pty channel is open
        pty.on_output = self._fast_output or self._on_output
        pty.on_exit = self._on_exit
        pty.on_input_drained = self._on_input_drained
        try:
            pty.start()
        except OSError as exc:
            log.info("%s: cannot start %s: %s", self.label, what, exc)
            reason = exc.strerror or str(exc)
            self.failed_output = f"vroomd: cannot run {what}: {reason}\r\n".encode()
            self._finish(ExitStatus(127, None, False))
            self._reaped.set()
            return
        self.pty = pty
        for data in self.pending_input:
            pty.write(data)
        self.pending_input.clear()
        if self.eof_pending:
            pty.send_eof()
        log.info(
            "session start: %s, %s, pid %d, %dx%d%s",
            self.label,
            what,
            pty.pid or 0,
            cols,
            rows,
            ", raw" if self.request.raw else "",
        )
        if self.pty_ready:
            self.update_credit()

    # ---------------------------------------------------------- from client

    def write(self, data: bytes) -> None:
        if self.pty is not None:
            self.pty.write(data)
            service = self.service
            pending = len(self.pty._in_buffer)  # `input_pending`, per keystroke
            if service is not None and pending > INPUT_HIGH_WATER:
                if pending > INPUT_LIMIT:
                    self.overflow(service)
                else:
                    service.pause_input(self)
        elif not self.ended:
            self.pending_input.append(data)

    def overflow(self, service: TerminalService) -> None:
        log.warning("%s: over %d bytes of unread input: closing", self.label, INPUT_LIMIT)
        try:
            service.server.send_error(
                self.key,
                ErrorCode.TOO_LARGE,
                "too much input the program does not read",
                fatal=True,
            )
        except LocalProtocolError:
            pass
        service.flush()
        self.hangup("input overflow")

    def _on_input_drained(self) -> None:
        if self.service is not None:
            self.service.resume_input(self)

    def send_eof(self) -> None:
        if self.pty is not None:
            self.pty.send_eof()
        else:
            self.eof_pending = True

    def resize(self, rows: int, cols: int, pw: int, ph: int) -> None:
        self.size = (rows, cols, pw, ph)
        if self.pty is not None:
            self.pty.resize(rows, cols, pw, ph)

    def signal(self, number: int) -> None:
        if self.pty is not None:
            self.pty.send_signal(number)

    def on_pty_ready(self, channel: int | None = None) -> None:
        self.pty_ready = True
        if channel is not None:
            self._install_fast_paths(channel)
        if self.failed_output or self.exit_pending is not None:
            self._send_pending_exit()
        else:
            self.update_credit()

    def update_credit(self) -> None:
        service, pty = self.service, self.pty
        if service is None or pty is None or not self.pty_ready:
            return
        try:
            credit = service.server.send_credit(self.key)
        except LocalProtocolError:
            credit = 0
        pty.set_credit(credit)
        if service._input_paused:
            service.update_reading()

    def _install_fast_paths(self, channel: int) -> None:
        """A keystroke and its echo skip the protocol layers while the
        session simply runs (openmux.aio's "Fast paths"): DATA from the
        client goes from the socket's callback to the PTY, output read from
        the PTY within the credit is written to the socket as one DATA frame,
        with the credit counted here. Anything else (another state, a
        WINDOW_ACK, no credit, something queued ahead) goes the general way;
        these do only what the general path would do."""
        service = self.service
        assert service is not None
        sess = service.server.sessions.get(self.key)
        if sess is None or sess.pty_id != channel:
            return
        session = service.session
        active = State.SESSION_ACTIVE
        window = sess.send_window
        send_now = session.send_now
        general = self._on_output

        def fast_input(type_: int, data: bytes) -> bool:
            if (
                type_  # only DATA (WINDOW_ACK, EOF, ZSTD_DATA: the tap)
                or self.service is not service
                or sess.state is not active
                or sess.pty_id != channel
                or sess.eof
            ):
                return False
            pty = self.pty
            if pty is not None and not pty._in_buffer:
                # `write` without its high-water check: nothing was queued
                # and one message is far below INPUT_HIGH_WATER.
                pty.write(data)
            else:
                self.write(data)
            return True

        def fast_output(data: bytes) -> None:
            size = len(data)
            limit = window.window
            if (
                self.service is service
                and sess.state is active
                and sess.pty_id == channel
                and (limit is None or window.sent - window.acked + size <= limit)
                and send_now(channel, 0, data)
            ):
                window.take(size)
                if service._input_paused:
                    self._after_output(service)
                return  # (send_now refuses while writing is paused)
            general(data)

        try:
            session.set_fast_handler(channel, fast_input)
        except KeyError:  # closed in the batch being handled
            return
        self._fast_output = fast_output
        if self.pty is not None:
            self.pty.on_output = fast_output

    # --------------------------------------------------------- from the PTY

    def _after_output(self, service: TerminalService) -> None:
        service.flush()
        if service._input_paused and self.pty is not None and self.pty.credit == 0:
            service.update_reading()

    def _on_output(self, data: bytes) -> None:
        service = self.service
        if service is None:
            return  # nobody attached: a later attach layer would buffer here
        try:
            sent = service.server.send_output(self.key, data)
        except LocalProtocolError as exc:  # the session closed under us
            log.debug("%s: output dropped: %s", self.label, exc)
            return
        if sent != len(data):  # cannot happen: reads are bounded by the credit
            log.error("%s: %d output bytes beyond the credit", self.label, len(data) - sent)
        self._after_output(service)

    def _on_exit(self, status: ExitStatus) -> None:
        self._finish(status)
        self._reaped.set()

    def _finish(self, status: ExitStatus) -> None:
        if self.ended:
            return
        self.exit_pending = status
        if self.service is not None and self.pty_ready:
            self._send_pending_exit()

    def _send_pending_exit(self) -> None:
        service, status = self.service, self.exit_pending
        if service is None or status is None or self.ended:
            return
        self.ended = True
        try:
            if self.failed_output:
                credit = service.server.send_credit(self.key)
                data = self.failed_output
                if credit is not None:
                    data = data[:credit]
                service.server.send_output(self.key, data)
            service.server.send_exit_status(
                self.key, status.code, status.signal, status.core_dumped
            )
            # The client closes the session once it has the status (as SSH's
            # exit-status then close): closing from both ends would cross.
        except LocalProtocolError as exc:
            log.debug("%s: no EXIT_STATUS sent: %s", self.label, exc)
        service.flush()
        self._log_end(status)
        self.daemon.sessions.discard(self)
        service.terms.pop(self.key, None)

    def _log_end(self, status: ExitStatus) -> None:
        pty = self.pty
        log.info(
            "session end: %s, %s, %s, in %d B, out %d B, %.1f s",
            self.label,
            self.what or "(not started)",
            status,
            pty.bytes_in if pty else 0,
            pty.bytes_out if pty else 0,
            time.monotonic() - self.started_at,
        )

    # ------------------------------------------------------------ lifecycle

    def hangup(self, reason: str) -> None:
        """The connection went away (or vroomd stops): SIGHUP the session."""
        service = self.service
        self.service = None
        if service is not None:
            service.terms.pop(self.key, None)
            service.resume_input(self)
        if self.pty is not None and not self.pty.finished:
            if not self.ended:
                log.info("%s: hanging up (%s)", self.label, reason)
            self.pty.on_exit = self._on_exit_detached
            self.pty.hangup()
        else:
            self._detached_done()

    def _on_exit_detached(self, status: ExitStatus) -> None:
        if not self.ended:
            self.ended = True
            self._log_end(status)
        self._detached_done()

    def _detached_done(self) -> None:
        self._reaped.set()
        self.daemon.sessions.discard(self)

    async def wait_reaped(self) -> None:
        await self._reaped.wait()


class TerminalService:
    """The terminal sessions of one OpenMux connection."""

    def __init__(self, daemon: Daemon, session: Session, *, refuse: bool = False) -> None:
        self.daemon = daemon
        self.session = session
        self.refuse = refuse
        self.terms: dict[str, TermSession] = {}
        config = daemon.config
        peer = session.transport_info.get("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
        token = config.token
        authenticate: Callable[[AuthRequest], bool] | None = None
        if token is not None:
            expected = token.encode()

            def authenticate(request: AuthRequest) -> bool:
                given = (request.token or "").encode()
                return request.method == "token" and hmac.compare_digest(given, expected)

        self.server = TerminalServer(
            session.connection,
            capabilities=ServerCapabilities(max_window=config.window),
            authenticate=authenticate,
            mux_authenticated=self._bearer_ok(),
            env_allow=config.env_allow,
        )
        limit = session.connection.max_message_size or 65535
        self.chunk = max(1024, min(65536, limit) - 16)
        self._writable_task: asyncio.Task[None] | None = None
        self._input_paused: set[TermSession] = set()
        self._reading_paused = False
        self._channels: dict[int, Any] = {}
        """Terminal channels the transport was told about (`_sync_channels`)."""
        self._last_ids: set[int] = set()

    def _bearer_ok(self) -> bool:
        """A WebSocket upgrade carrying `Authorization: Bearer <token>`."""
        token = self.daemon.config.token
        if token is None:
            return True
        if self.session.connection.transport_authenticated:
            return True
        headers = self.session.transport_info.get("headers")
        value = headers.get("Authorization") if headers is not None else None
        if not value:
            return False
        scheme, _, given = str(value).partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())

    # ---------------------------------------------------------------- run

    async def run(self) -> None:
        self._install_tap()
        try:
            await self.session.wait_closed()
        finally:
            for term in list(self.terms.values()):
                term.hangup("connection closed")

    def flush(self) -> None:
        """Hand what the core queued to the transport; stop reading PTYs
        while the transport is over its high-water mark."""
        session = self.session
        self._sync_channels()
        session.flush()
        if session.writing_paused and self._writable_task is None:
            for term in self.terms.values():
                if term.pty is not None:
                    term.pty.pause_reading()
            self._writable_task = asyncio.get_running_loop().create_task(self._await_writable())

    def pause_input(self, term: TermSession) -> None:
        self._input_paused.add(term)
        self.update_reading()

    def resume_input(self, term: TermSession) -> None:
        if term in self._input_paused:
            self._input_paused.discard(term)
            self.update_reading()

    def update_reading(self) -> None:
        """Stop reading the connection while a program leaves too much input
        unread -- unless some PTY waits for credit: its WINDOW_ACKs are in
        that same byte stream, behind the input (a program like `cat` that
        echoes would deadlock). Input then buffers, up to INPUT_LIMIT."""
        want = bool(self._input_paused) and not any(
            term.pty is not None and term.pty.credit == 0 for term in self.terms.values()
        )
        if want == self._reading_paused or self.session.sink is None:
            return
        self._reading_paused = want
        if want:
            self.session.sink.pause_reading()
        else:
            self.session.sink.resume_reading()

    async def _await_writable(self) -> None:
        try:
            await self.session.wait_writable()
        except Exception:
            return
        finally:
            self._writable_task = None
        for term in list(self.terms.values()):
            if term.pty is not None:
                term.pty.resume_reading()

    # -------------------------------------------------------- event tap

    def _install_tap(self) -> None:
        """Take the terminal channels' events ahead of the asyncio layer (a
        batch of only those, a keystroke, leaves it nothing but the flush)."""
        tap = ChannelTap(self.session, _claims, self._feed, after=self._sync_channels)
        tap.install()
        # The asyncio layer told the sink about the channels granted in HELLO.
        self._channels.update(tap.channels)
        self.flush()

    def _sync_channels(self) -> None:
        """Tell the transport about terminal channels opened or closed: the
        asyncio layer never sees them, and per-channel transports (QUIC
        streams, DataChannels) must create a stream before its first frame."""
        channels = self.session.connection.channels
        if channels.keys() == self._last_ids:
            return
        self._last_ids = set(channels)
        known = self._channels
        sink = self.session.sink
        opened_hook = getattr(sink, "channel_opened", None)
        closed_hook = getattr(sink, "channel_closed", None)
        for cid in [cid for cid in known if cid not in channels]:
            info = known.pop(cid)
            if closed_hook is not None:
                closed_hook(info)
        for cid, info in channels.items():
            if cid not in known and parse_name(info.name) is not None:
                known[cid] = info
                if opened_hook is not None:
                    opened_hook(info)

    def _feed(self, event: openmux.Event) -> None:
        try:
            results = self.server.handle_event(event)
        except openmux.LocalProtocolError as exc:
            # A batch can hold a channel's opening and its closing: the core
            # already forgot the channel the protocol would answer on.
            log.debug("terminal event %s on a closed channel: %s", type(event).__name__, exc)
            return
        except Exception:  # a bug on our side must not kill the connection's loop
            log.exception("terminal protocol failed on %r", type(event).__name__)
            return
        for result in results:
            try:
                self._on_terminal_event(result)
            except Exception:
                log.exception("handling %r failed", result)

    # ------------------------------------------------ terminal events

    def _on_terminal_event(self, event: ev.TerminalEvent) -> None:
        kind = type(event)
        if kind is ev.PtyInput:
            assert isinstance(event, ev.PtyInput)
            term = self.terms.get(event.session)
            if term is not None and not event.compressed:
                term.write(event.data)
        elif kind is ev.WindowAcked:
            assert isinstance(event, ev.WindowAcked)
            term = self.terms.get(event.session)
            if term is not None:
                term.update_credit()
        elif isinstance(event, ev.SessionOpened):
            if self.refuse:
                self.server.send_error(
                    event.session,
                    ErrorCode.UNAVAILABLE,
                    f"server limit: {self.daemon.config.max_connections} connections",
                    fatal=True,
                )
                self.flush()
                asyncio.get_running_loop().call_later(
                    0.5, lambda: asyncio.ensure_future(self.session.close())
                )
        elif isinstance(event, ev.PtyRequested):
            self._on_pty_requested(event)
        elif isinstance(event, ev.EnvSet):
            term = self.terms.get(event.session)
            if term is not None:
                term.env.update(event.env)
        elif isinstance(event, ev.ShellRequested):
            self._start(event.session, None, None)
        elif isinstance(event, ev.ExecRequested):
            self._start(event.session, event.command, event.argv)
        elif isinstance(event, ev.PtyReady):
            term = self.terms.get(event.session)
            if term is not None:
                term.on_pty_ready(event.channel_id)
        elif isinstance(event, ev.WindowResized):
            term = self.terms.get(event.session)
            if term is not None:
                term.resize(event.rows, event.cols, event.pixel_width, event.pixel_height)
        elif isinstance(event, ev.SignalRequested):
            term = self.terms.get(event.session)
            if term is not None:
                term.signal(event.number)
        elif isinstance(event, ev.InputClosed):
            term = self.terms.get(event.session)
            if term is not None:
                term.send_eof()
        elif isinstance(event, ev.SessionClosed):
            term = self.terms.get(event.session)
            if term is not None:
                term.hangup(event.reason or "session closed")
        elif isinstance(event, ev.AuthResult):
            if not event.ok:
                log.info("auth refused: %s (%s)", self.peer, event.reason or event.method)
        elif isinstance(event, ev.ErrorSent):
            log.debug("%s: sent ERROR %d %s", self.peer, event.code, event.message)

    def _on_pty_requested(self, event: ev.PtyRequested) -> None:
        key = event.session
        config = self.daemon.config
        if event.request.attach is not None:
            self.server.refuse_pty(key, "attach is not supported yet", ErrorCode.UNKNOWN)
            return
        if len(self.daemon.sessions) >= config.max_sessions:
            log.info("refused a PTY to %s: %d sessions", self.peer, config.max_sessions)
            self.server.refuse_pty(key, f"server limit: {config.max_sessions} sessions")
            return
        term = TermSession(self, key, event.request)
        self.terms[key] = term
        self.daemon.sessions.add(term)
        self.server.grant_pty(key)

    def _start(self, key: str, command: str | None, argv: tuple[str, ...] | None) -> None:
        term = self.terms.get(key)
        if term is None:
            return
        shell = self.daemon.config.shell or login_shell()
        if argv:
            term.start(list(argv), None, " ".join(argv)[:200])
        elif command is not None:
            term.start([shell, "-c", command], shell, command[:200])
        else:
            name = os.path.basename(shell)
            term.start(["-" + name], shell, f"login shell {shell}")
