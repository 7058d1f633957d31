"""`vroom term` without asyncio: one poll() loop over stdin, the socket and
the signals, on `openmux.polled` (tcp://, ws://, tls://, wss://).

Why: importing asyncio (and ssl, subprocess, concurrent.futures, inspect,
which it drags in) was ~40 ms of a start that should feel instant, and an
event loop turn with its callbacks was part of every keystroke. A terminal
and one socket need none of it: a keystroke is now poll, read, send; its
echo poll, recv, write. Everything but the loop (the protocol's answers,
the fast paths, the messages, the exit status) is `cli.TermCore`, shared
with the asyncio driver, which keeps every other transport.

Why `select.poll` and not `selectors`: poll takes any file descriptor (a
regular file or /dev/null on stdin is simply always readable, where epoll
refuses it) and costs no objects per wake-up. Signals reach the loop
through `signal.set_wakeup_fd` on a pipe; until the session is open a
SIGTERM/SIGHUP interrupts the (blocking, bounded) connect at once.

Why the loop busy-polls after a keystroke: when the echo comes back within
a fraction of a millisecond (loopback, a LAN), going to sleep in poll()
and being woken again costs more than the wait itself, 15-30 us a
wake-up on a virtual machine, more if the CPU dozed off meanwhile. So
after sending a small read of stdin the loop asks poll() with no timeout,
again and again, for up to `busy_poll` seconds (0.5 ms by default). It
learns how long echoes take (`EchoClock`) and stops spinning when they
take longer than that, as over any real distance, where a wake-up is
noise: the spin costs at most 0.5 ms of CPU per keystroke, and none when
it cannot pay. Each turn of the spin yields the CPU (sched_yield): vroomd,
the remote program or the kernel's tty worker may be waiting for this very
CPU to carry the echo, and without yielding 1-2 % of echoes waited for the
spin to run out (p99 ~800 us against ~300 us). VROOM_BUSY_POLL_US=0 turns
it off.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any

from openmux.polled import READ_SIZE, SMALL_READ

from .cli import Failure, TermCore, connect_failure

_IN = select.POLLIN
_OUT = select.POLLOUT
_NVAL = select.POLLNVAL

BUSY_POLL = 0.0005
"""Seconds of busy-polling for the echo of a keystroke (module docstring)."""
KEYSTROKE = 64
"""A read of stdin shorter than this is typing (a key, an escape sequence)."""
_LONGEST_SAMPLE = 0.01


def _no_yield() -> None:
    """Where the OS has no sched_yield (not Linux): spin without it."""


_sched_yield = getattr(os, "sched_yield", _no_yield)


def busy_poll_from_env(environ: Any = os.environ) -> float:
    """`VROOM_BUSY_POLL_US` in seconds; BUSY_POLL when unset or not a number."""
    value = environ.get("VROOM_BUSY_POLL_US")
    if value is None:
        return BUSY_POLL
    try:
        return max(0.0, min(float(value), 10_000.0)) / 1e6
    except ValueError:
        return BUSY_POLL


class EchoClock:
    """How long the answer to a keystroke takes to arrive, smoothed (1/8
    weight to each new sample, as TCP's SRTT): busy-polling pays only while
    it stays under the budget. A sample is capped (a key that gets no
    answer, a password, must not keep the spin off for a minute) and a
    quiet session is sampled too, so the spin comes back when echoes do."""

    __slots__ = ("budget", "estimate")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.estimate = 0.0

    def spin_for(self) -> float:
        """Seconds to busy-poll after a keystroke now: the budget, or 0."""
        return self.budget if self.estimate <= self.budget else 0.0

    def sample(self, elapsed: float) -> None:
        if elapsed > _LONGEST_SAMPLE:
            elapsed = _LONGEST_SAMPLE
        self.estimate += (elapsed - self.estimate) / 8


class PolledTermClient(TermCore):
    """One `vroom term` run over `openmux.polled`; `run()` returns the exit status."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._reading = False
        self._connected = False
        self._wake = -1
        self.busy_poll = busy_poll_from_env()

    def _start_stdin(self) -> None:
        self._reading = not self._stdin_eof
        self.session.changed = True

    def _stop_stdin(self) -> None:
        self._reading = False
        if self.session is not None:
            self.session.changed = True

    def run(self) -> int:
        """Connect, run the session, close; raises `Failure` (exit 255) or
        `openmux.polled.HandOver` (before anything was done: use asyncio)."""
        from openmux.polled import HandOver, PolledClient

        session: PolledClient | None = None
        restore = self._install_signals()
        try:
            try:
                ssl_context = None
                if self.url.split("://", 1)[0].lower() in ("tls", "wss"):
                    import ssl

                    ssl_context = ssl.create_default_context(cafile=self._cafile())
                session = PolledClient(self.url, timeout=self.timeout, ping_interval=30.0,
                                       ssl_context=ssl_context)  # fmt: skip
                session.connect()
            except (HandOver, Failure):
                raise
            except Exception as exc:
                raise connect_failure(self.url, self.timeout, exc) from None
            self._connected = True
            self._begin(session)
            session.start(self._handle_events)
            try:
                self._loop(session)
            except OSError as exc:  # stdin or stdout: the socket's end the session inside
                raise Failure(f"local I/O error: {exc.strerror or exc}") from None
        finally:
            self._stop_stdin()
            try:
                if session is not None and self._connected:
                    session.shutdown(2.0)
                elif session is not None:
                    session.abort()
            finally:
                restore()
        return self._result()

    # -- signals

    def _install_signals(self) -> Any:
        """Handlers for `_signals()`, woken through a pipe; returns the undo."""
        signums = self._signals()

        def handler(signum: int, frame: object) -> None:
            if not self._connected and signum != signal.SIGWINCH:
                raise Failure(f"interrupted by {signal.Signals(signum).name}")

        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        try:
            old_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread (a test): no signals then
            os.close(read)
            os.close(write)
            return lambda: None
        self._wake = read
        previous = {signum: signal.signal(signum, handler) for signum in signums}

        def restore() -> None:
            for signum, old in previous.items():
                signal.signal(signum, old)
            signal.set_wakeup_fd(old_fd)
            os.close(read)
            os.close(write)
            self._wake = -1

        return restore

    def _on_wake(self) -> None:
        try:
            data = os.read(self._wake, 512)
        except OSError:
            return
        wanted = self._signals()
        for signum in data:
            if signum in wanted and not self.done:
                self._on_signal(signum)

    # -- the loop

    def _loop(self, session: Any) -> None:
        """Until `_finish`. Kept lean (locals, no helper calls on the way of
        a keystroke): every bytecode here runs twice per keystroke echo."""
        poller = select.poll()
        poll, register, unregister = poller.poll, poller.register, poller.unregister
        sock_fd = session.sock.fileno()
        stdin, wake = self.stdin, self._wake
        if wake >= 0:
            register(wake, _IN)
        read, monotonic = os.read, time.monotonic
        pollin, pollout, small, large = _IN, _OUT, SMALL_READ, READ_SIZE
        sock_out = False  # polling the socket for writing too
        stdin_on = False
        register(sock_fd, _IN)
        timer: float | None = None
        timeout: float | None = None  # for poll(), in ms
        clock = True  # compute `timeout` anew from the clock
        stdin_size = SMALL_READ
        echo = EchoClock(self.busy_poll)
        keyed = 0.0  # when the last keystroke went out, until its answer
        spin_until = 0.0
        sched_yield = _sched_yield
        while not self.done:
            if session.changed:
                session.changed = False
                if bool(session.pending) is not sock_out:
                    sock_out = not sock_out
                    register(sock_fd, _IN | _OUT if sock_out else _IN)
                if (self._reading and not session.writing_paused) is not stdin_on:
                    stdin_on = not stdin_on
                    if stdin_on:
                        register(stdin, _IN)
                    else:
                        unregister(stdin)
                timer = session.next_timer()
                clock = True
            if clock and timer is not None:
                # Not after the socket's fast reads: in OPEN they only move
                # the keepalive later, so the last timeout still ends at or
                # before it (an early wake-up asks the core again). After
                # stdin, the clock: typing must not postpone the keepalive.
                left = timer - monotonic()
                if left <= 0:
                    session.on_timer(monotonic())
                    continue
                timeout = left * 1000 + 1
            clock = False
            if spin_until:
                ready = poll(0)
                while not ready and monotonic() < spin_until:
                    sched_yield()  # the echo's path may be queued on this CPU
                    ready = poll(0)
                spin_until = 0.0
                if not ready:
                    ready = poll(timeout if timer is not None else None)
            else:
                ready = poll(timeout if timer is not None else None)
            if not ready:
                session.on_timer(monotonic())  # due, or early: it says again
                clock = True
                continue
            for fd, events in ready:
                if fd == sock_fd:
                    if keyed:
                        echo.sample(monotonic() - keyed)
                        keyed = 0.0
                    if events == pollin:  # the echo
                        session.on_readable()
                        continue
                    if events & pollout:
                        session.on_writable()
                    if events & ~pollout:
                        session.on_readable()
                elif fd == stdin:
                    clock = True
                    if not stdin_on or self.done:
                        continue
                    if events & _NVAL:
                        self._send_input(b"")  # no stdin at all: end of input
                        continue
                    try:
                        data = read(stdin, stdin_size)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    size = len(data)
                    if size == stdin_size:  # as openmux.polled's reads
                        if stdin_size < large:
                            stdin_size <<= 4
                    elif stdin_size > small and size < stdin_size >> 4:
                        stdin_size = small
                    fast = self._fast_input
                    if not (size and fast is not None and fast(data)):
                        self._send_input(data)
                    if 0 < size < KEYSTROKE and echo.budget:
                        keyed = monotonic()
                        spin = echo.spin_for()
                        spin_until = keyed + spin if spin else 0.0
                elif fd == wake:
                    self._on_wake()
                    clock = True
            if session.lost and not self.done:
                self._fail_closed(1001, "")


__all__ = ["BUSY_POLL", "EchoClock", "PolledTermClient", "busy_poll_from_env"]
