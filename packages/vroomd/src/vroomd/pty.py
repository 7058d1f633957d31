"""One real PTY and the process on it, driven by an asyncio loop.

A `PtySession` owns the master side of a PTY and the child running on the
slave. It knows nothing of connections: output goes to whatever `on_output`
is set to, so the session can outlive the connection that created it (the
reconnect/attach layer swaps the sinks). The rules it keeps:

- the child runs in its own session with the PTY as controlling terminal, so
  job control, SIGWINCH and hang-up behave as under sshd;
- reading the master stops while `pause_reading()` is in force: that is how
  the credit window reaches the kernel, which then blocks the child's writes;
- when the main process exits, output is drained until EOF on the master (every
  holder of the slave gone) or `drain_timeout`, then `on_exit` is called once,
  after the last `on_output`: EXIT_STATUS must follow every output byte;
- a raw session (`raw=True`, for pipes: byte-exact, no echo, no CR/LF
  rewriting) reads its stdin from a pipe so that an end of input can exist;
  its output still goes through the raw PTY, its controlling terminal;
- the child is always reaped (pidfd), and `hangup()` closes the master, which
  hangs up the terminal (SIGHUP to the session), escalating to SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import spawn

log = logging.getLogger("vroomd.pty")

READ_CHUNK = 65536
"""Most bytes read from the master in one readable callback (until EAGAIN)
and handed on as one message.

A Linux PTY returns at most ~4 KiB per read(), and a reader that keeps up
with a busy program finds ~1 KiB each time it wakes: one callback rarely
reads more than once. What makes bulk output cost few messages is COALESCE."""

COALESCE = 16384
"""Output gathered across reads while it streams, before it is sent as one
message (`PtySession._on_readable`)."""
STREAM_GAP = 0.0002
"""A read this soon after the previous one is part of a stream (seconds)."""
HOLD = 0.001
"""Longest a streaming read waits for more to join it (seconds; uvloop's
timers count whole milliseconds)."""

_WINSZ = struct.Struct("HHHH")
_monotonic = time.monotonic
_PTY_BUFFER = 4095
"""What one read() of a busy PTY master returns on Linux (N_TTY_BUF_SIZE - 1)."""


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How the main process ended, in EXIT_STATUS terms."""

    code: int | None
    signal: str | None
    core_dumped: bool = False

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(None, signal_name(os.WTERMSIG(status)), os.WCOREDUMP(status))
        return cls(os.WEXITSTATUS(status), None, False)

    def to_wire(self) -> dict[str, object]:
        return {"code": self.code, "signal": self.signal, "core_dumped": self.core_dumped}

    def __str__(self) -> str:
        if self.signal is not None:
            return f"signal {self.signal}" + (" (core dumped)" if self.core_dumped else "")
        return f"exit {self.code}"


def signal_name(number: int) -> str:
    """SIGTERM -> "TERM" (as SSH's exit-signal); unknown numbers as digits."""
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def make_raw(attrs: list[Any]) -> list[Any]:
    """cfmakeraw(3) on a tcgetattr() list (tty.cfmakeraw is 3.12+)."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
        | termios.INPCK
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


def set_winsize(fd: int, rows: int, cols: int, pixel_width: int = 0, pixel_height: int = 0) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSZ.pack(rows, cols, pixel_width, pixel_height))


def get_winsize(fd: int) -> tuple[int, int, int, int]:
    """(rows, cols, pixel_width, pixel_height) of a terminal."""
    packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * _WINSZ.size)
    rows, cols, pw, ph = _WINSZ.unpack(packed)
    return rows, cols, pw, ph


def _take_controlling_tty() -> None:
    # Runs in the child after setsid(): stdout is the slave, make it our ctty.
    fcntl.ioctl(1, termios.TIOCSCTTY, 0)


class PtySession:
    """A child process on a fresh PTY. Create, set the callbacks, `start()`.

    `on_output(data)` receives every byte the child writes, in order;
    `on_exit(status)` is called once, after the drain. Both run on the loop.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | None = None,
        rows: int = 24,
        cols: int = 80,
        pixel_width: int = 0,
        pixel_height: int = 0,
        raw: bool = False,
        executable: str | None = None,
        drain_timeout: float = 2.0,
        kill_timeout: float = 5.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not argv:
            raise ValueError("argv must not be empty")
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.raw = raw
        self.executable = executable
        self.drain_timeout = drain_timeout
        self.kill_timeout = kill_timeout
        self._size = (rows, cols, pixel_width, pixel_height)
        self._loop = loop
        self.on_output: Callable[[bytes], None] = lambda data: None
        self.on_exit: Callable[[ExitStatus], None] = lambda status: None
        self.on_input_drained: Callable[[], None] = lambda: None
        """Called when queued input was all written (back-pressure release)."""
        self.pid: int | None = None
        self.master: int | None = None
        self._pidfd: int | None = None
        self.status: ExitStatus | None = None
        """Set when the main process was reaped."""
        self.finished = False
        """True once `on_exit` was called (output fully drained)."""
        self.bytes_out = 0
        """Bytes read from the PTY (the child's output)."""
        self.bytes_in = 0
        """Bytes written to the PTY (input to the child)."""
        self.started_at = 0.0
        self._reading = False
        self._paused = False
        self.credit: int | None = None
        """Output bytes we may still read (the flow-control credit); None: no limit."""
        self.chunk = READ_CHUNK
        """Most bytes handed to one `on_output` call (the mux message size)."""
        self._held: list[bytes] = []
        self._held_size = 0
        self._hold_timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        self.coalesce = COALESCE
        """Bytes of streaming output gathered into one message; 0: none."""
        self._eof_seen = False
        self._drain_deadline: asyncio.TimerHandle | None = None
        self._drain_expired = False
        self._in_buffer = bytearray()
        self._writing = False
        self._stdin_read: int | None = None
        self._stdin: int | None = None
        """Raw mode: the write end of the child's stdin pipe (else input goes
        to the master)."""
        self._eof_requested = False
        self._kill_handle: asyncio.TimerHandle | None = None
        self._hung_up = False
        self._waiters: list[asyncio.Future[ExitStatus]] = []

    # ------------------------------------------------------------ lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def start(self) -> None:
        """Open the PTY and spawn the child. Raises OSError when either fails
        (the caller answers PTY_RESPONSE ok:false / 503)."""
        loop = self.loop
        master, slave = os.openpty()
        try:
            rows, cols, pw, ph = self._size
            set_winsize(master, rows, cols, pw, ph)
            if self.raw:
                termios.tcsetattr(slave, termios.TCSANOW, make_raw(termios.tcgetattr(slave)))
                self._stdin_read, self._stdin = os.pipe()
                os.set_blocking(self._stdin, False)
            if spawn.available():  # vfork: no copy of the daemon (see spawn.py)
                pid = spawn.spawn_on_pty(
                    self.argv,
                    executable=self.executable,
                    env=self.env,
                    cwd=self.cwd,
                    tty=os.ttyname(slave),
                    stdin=self._stdin_read if self.raw else None,
                )
            else:
                proc = subprocess.Popen(
                    self.argv,
                    executable=self.executable,
                    stdin=self._stdin_read if self.raw else slave,
                    stdout=slave,
                    stderr=slave,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=_take_controlling_tty,
                    close_fds=True,
                )
                # Not used for waiting: the pidfd reader reaps.
                proc.returncode = 0  # keeps Popen.__del__ from warning or reaping
                pid = proc.pid
        except subprocess.SubprocessError as exc:
            self._close_after_failure(master, slave)
            raise OSError(f"cannot start {self.argv[0]!r} on a PTY: {exc}") from exc
        except BaseException:
            self._close_after_failure(master, slave)
            raise
        os.close(slave)
        if self._stdin_read is not None:
            os.close(self._stdin_read)
            self._stdin_read = None
        self.pid = pid
        self.master = master
        os.set_blocking(master, False)
        self.started_at = time.monotonic()
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError:  # pragma: no cover - pre-5.3 kernels
            self._pidfd = None
            loop.call_later(0.05, self._poll_child)
        else:
            loop.add_reader(self._pidfd, self._on_child_event)
        self._start_reading()

    def _close_after_failure(self, master: int, slave: int) -> None:
        os.close(master)
        os.close(slave)
        for fd in (self._stdin_read, self._stdin):
            if fd is not None:
                os.close(fd)
        self._stdin = self._stdin_read = None

    # ---------------------------------------------------------------- output

    def pause_reading(self) -> None:
        """Stop reading the master (e.g. the transport is over its high-water mark)."""
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        self._paused = False
        self._unblocked()

    def add_credit(self, size: int) -> None:
        """Allow `size` more output bytes (WINDOW_ACKs came back)."""
        if self.credit is not None:
            self.credit += size
            self._unblocked()

    def set_credit(self, credit: int | None) -> None:
        """Most output bytes to hand on from now on; None: no limit. What was
        read and is still gathered (`_flush_held`) counts against it."""
        self.credit = credit if credit is None else credit - self._held_size
        if self._blocked:
            self._stop_reading()
        else:
            self._unblocked()

    @property
    def paused(self) -> bool:
        return self._blocked

    @property
    def _blocked(self) -> bool:
        return self._paused or (self.credit is not None and self.credit <= 0)

    def _unblocked(self) -> None:
        if self._blocked:
            return
        if self._drain_expired and self.status is not None:
            self._final_read_and_finish()
            return
        self._start_reading()

    def _start_reading(self) -> None:
        if self._reading or self._blocked or self._eof_seen or self.master is None:
            return
        self.loop.add_reader(self.master, self._on_readable)
        self._reading = True

    def _stop_reading(self) -> None:
        if self._reading and self.master is not None:
            self.loop.remove_reader(self.master)
        self._reading = False

    def _budget(self, limit: int) -> int:
        return limit if self.credit is None else max(0, min(limit, self.credit))

    def _read_some(self, limit: int) -> tuple[bytes, bool]:
        """Read until EAGAIN or `limit` bytes; (data, eof)."""
        assert self.master is not None
        chunks: list[bytes] = []
        total = 0
        eof = False
        while total < limit:
            try:
                chunk = os.read(self.master, limit - total)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EIO:  # every slave fd closed: EOF
                    eof = True
                    break
                raise
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            total += len(chunk)
            if len(chunk) < _PTY_BUFFER:
                # The line discipline had less than a buffer-full: it is
                # (almost surely) empty now. Not asking again saves a read()
                # that would fail with EAGAIN: one syscall per keystroke echo.
                break
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return data, eof

    def _emit(self, data: bytes) -> None:
        self.bytes_out += len(data)
        if self.credit is not None:
            self.credit -= len(data)
        self.on_output(data)

    def _on_readable(self) -> None:
        # `_budget`, `_emit` and `_blocked` inline: this runs per keystroke echo.
        credit = self.credit
        limit = self.chunk
        if credit is not None and credit < limit:
            limit = credit if credit > 0 else 0
        try:
            data, eof = self._read_some(limit)
        except OSError as exc:
            log.warning("pty read failed: %s", exc)
            data, eof = b"", True
        if data:
            size = len(data)
            self.bytes_out += size
            if credit is not None:
                self.credit = credit = credit - size
            coalesce = self.coalesce
            if coalesce:
                # Output that streams (this read came right after the last
                # one) is gathered into messages of up to `coalesce` bytes:
                # a busy PTY hands over ~1 KiB a read, and a message per
                # read costs a send here and a wake-up in the client. The
                # first read after a pause (a keystroke's echo) goes at once.
                now = _monotonic()
                last, self._last_read = self._last_read, now
                if self._held or now - last < STREAM_GAP:
                    if self._held_size + size > self.chunk:
                        self._flush_held()  # one message stays within `chunk`
                    self._held.append(data)
                    self._held_size += size
                    if self._held_size >= coalesce or eof:
                        self._flush_held()
                    elif self._hold_timer is None:
                        self._hold_timer = self.loop.call_later(HOLD, self._flush_held)
                    data = b""
            if data:
                self.on_output(data)
        if eof:
            self._eof_seen = True
            self._stop_reading()
            self._maybe_finish()
        elif self._paused or (self.credit is not None and self.credit <= 0):
            self._stop_reading()
            self._flush_held()

    def _flush_held(self) -> None:
        """Hand on the gathered output (see `_on_readable`), as one message."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        held = self._held
        if not held:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        self._held_size = 0
        self.on_output(data)

    # ----------------------------------------------------------------- input

    def write(self, data: bytes) -> None:
        """Queue input for the child; written as the PTY (or pipe) accepts it."""
        fd = self._stdin if self.raw else self.master
        if fd is None or self._hung_up or self._eof_requested or not data:
            return
        if not self._in_buffer:
            # Nothing queued ahead (a keystroke, nearly always): straight to
            # the PTY, without going through the buffer.
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                n = 0
            except OSError as exc:  # the child is gone: input has nowhere to go
                log.debug("pty write failed: %s", exc)
                return
            self.bytes_in += n
            if n == len(data):
                return
            data = data[n:]
        self._in_buffer += data
        self._flush_input()

    @property
    def _input_fd(self) -> int | None:
        return self._stdin if self.raw else self.master

    @property
    def input_pending(self) -> int:
        """Input bytes not yet accepted by the PTY (for back-pressure)."""
        return len(self._in_buffer)

    def _flush_input(self) -> None:
        fd = self._input_fd
        if fd is None:
            return
        while self._in_buffer:
            try:
                n = os.write(fd, self._in_buffer)
            except BlockingIOError:
                break
            except OSError as exc:  # the child is gone: input has nowhere to go
                log.debug("pty write failed: %s", exc)
                self._in_buffer.clear()
                break
            self.bytes_in += n
            del self._in_buffer[:n]
        if self._in_buffer and not self._writing:
            self.loop.add_writer(fd, self._flush_input)
            self._writing = True
        elif not self._in_buffer:
            if self._writing:
                self.loop.remove_writer(fd)
                self._writing = False
                self.on_input_drained()
            if self._eof_requested:
                self._deliver_eof()

    def send_eof(self) -> None:
        """End of input: once every queued byte is written, the child's next
        read() returns 0.

        A raw PTY has no EOF character (and a read() begun with VMIN 1 swallows
        VEOF even after ICANON is switched back on), so a raw session's stdin
        is a pipe, closed here; output still goes through the raw PTY, which
        stays the controlling terminal. A cooked PTY gets VEOF, like a ^D
        typed at the start of a line.
        """
        if self._eof_requested or self._input_fd is None or self._hung_up:
            return
        self._eof_requested = True
        if not self._in_buffer:
            self._deliver_eof()

    def _deliver_eof(self) -> None:
        if self.raw:
            self._close_stdin()
            return
        if self.master is None:
            return
        try:
            veof = termios.tcgetattr(self.master)[6][termios.VEOF]
        except termios.error:
            veof = b"\x04"
        eof_byte = veof if isinstance(veof, bytes) else bytes([veof])
        try:
            os.write(self.master, eof_byte)
        except OSError:
            pass

    def _close_stdin(self) -> None:
        fd, self._stdin = self._stdin, None
        if fd is None:
            return
        if self._writing and self.raw:
            self.loop.remove_writer(fd)
            self._writing = False
        os.close(fd)

    # --------------------------------------------------------- control plane

    def resize(self, rows: int, cols: int, pixel_width: int = 0, pixel_height: int = 0) -> None:
        """TIOCSWINSZ; the kernel sends SIGWINCH to the foreground group."""
        self._size = (rows, cols, pixel_width, pixel_height)
        if self.master is not None and not self._hung_up:
            set_winsize(self.master, rows, cols, pixel_width, pixel_height)

    def send_signal(self, signum: int) -> None:
        """To the PTY's foreground process group, as a key press would.

        OpenSSH signals the session's process group instead; the foreground
        group is what Ctrl-C reaches, so `SIGNAL INT` means what a user expects
        while a job runs under the shell. Falls back to the main process.
        """
        if self.master is None or self.status is not None:
            return
        try:
            pgrp = os.tcgetpgrp(self.master)
        except OSError:
            pgrp = 0
        try:
            if pgrp > 0:
                os.killpg(pgrp, signum)
            elif self.pid is not None:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def foreground_pgrp(self) -> int | None:
        if self.master is None:
            return None
        try:
            return os.tcgetpgrp(self.master)
        except OSError:
            return None

    # ------------------------------------------------------------ exit, reap

    def _on_child_event(self) -> None:
        self._reap()

    def _poll_child(self) -> None:  # pragma: no cover - pre-pidfd kernels
        if not self._reap():
            self.loop.call_later(0.05, self._poll_child)

    def _reap(self) -> bool:
        if self.pid is None or self.status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: no status to report
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return False
        if self._pidfd is not None:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.status = ExitStatus.from_wait_status(status)
        if self._kill_handle is not None:
            self._kill_handle.cancel()
            self._kill_handle = None
        if self._eof_seen or self._hung_up:
            self._maybe_finish()
        else:
            self._drain_deadline = self.loop.call_later(self.drain_timeout, self._drain_timed_out)
            self._start_reading()
        return True

    def _drain_timed_out(self) -> None:
        self._drain_deadline = None
        self._drain_expired = True
        if not self._blocked:
            self._final_read_and_finish()

    def _final_read_and_finish(self) -> None:
        # Someone (a background job) still holds the slave: take what is
        # there now, and stop.
        self._flush_held()
        if self.master is not None and not self._eof_seen:
            with contextlib.suppress(OSError):
                data, _ = self._read_some(self._budget(self.chunk))
                if data:
                    self._emit(data)
        self._eof_seen = True
        self._stop_reading()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished or self.status is None or not (self._eof_seen or self._hung_up):
            return
        self._flush_held()  # every byte of output before the exit status
        self.finished = True
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
            self._drain_deadline = None
        self._stop_reading()
        try:
            self.on_exit(self.status)
        finally:
            self._close_master()
            self._close_stdin()
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(self.status)
            self._waiters.clear()

    def hangup(self) -> None:
        """The connection is gone (or the session is over): close the master,
        which sends SIGHUP to the terminal's session; SIGKILL the child's group
        if it still lives after `kill_timeout`. The child is reaped either way."""
        if self._hung_up:
            return
        self._hung_up = True
        self._in_buffer.clear()
        if self._hold_timer is not None:  # nobody to hand output to any more
            self._hold_timer.cancel()
            self._hold_timer = None
        self._held.clear()
        self._held_size = 0
        self._close_stdin()
        pid = self.pid
        if self.status is None and pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGHUP)
            self._kill_handle = self.loop.call_later(self.kill_timeout, self._kill)
        self._close_master()
        if self.status is not None:
            self._maybe_finish()

    def _kill(self) -> None:
        self._kill_handle = None
        if self.status is None and self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _close_master(self) -> None:
        master, self.master = self.master, None
        if master is None:
            return
        self._stop_reading_fd(master)
        os.close(master)

    def _stop_reading_fd(self, fd: int) -> None:
        if self._reading:
            self.loop.remove_reader(fd)
            self._reading = False
        if self._writing and not self.raw:
            self.loop.remove_writer(fd)
            self._writing = False

    async def wait(self) -> ExitStatus:
        """Until `on_exit` has run (for tests and tools)."""
        if self.finished:
            assert self.status is not None
            return self.status
        waiter: asyncio.Future[ExitStatus] = self.loop.create_future()
        self._waiters.append(waiter)
        return await waiter
