"""PtySession on real PTYs: spawn, I/O, resize, signals, raw mode, EOF, drain, reap."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from vroomd.pty import ExitStatus, PtySession, signal_name

ENV = {"PATH": os.defpath + ":/usr/local/bin", "TERM": "xterm-256color", "LANG": "C.UTF-8"}


class Collector:
    def __init__(self, session: PtySession) -> None:
        self.data = bytearray()
        self.changed = asyncio.Event()
        self.exited: list[ExitStatus] = []
        self.out_at_exit = -1
        session.on_output = self._out
        session.on_exit = self._exit

    def _out(self, data: bytes) -> None:
        assert not self.exited, "output after on_exit"
        self.data += data
        self.changed.set()

    def _exit(self, status: ExitStatus) -> None:
        self.exited.append(status)
        self.out_at_exit = len(self.data)
        self.changed.set()

    async def until(self, needle: bytes) -> None:
        while needle not in self.data:
            self.changed.clear()
            if self.exited:
                raise AssertionError(f"exited before {needle!r}: {bytes(self.data)!r}")
            await self.changed.wait()


def spawn(argv: list[str], **kw: object) -> tuple[PtySession, Collector]:
    session = PtySession(argv, env=ENV, cwd="/", **kw)  # type: ignore[arg-type]
    collector = Collector(session)
    session.start()
    return session, collector


async def test_echo_and_exit_code() -> None:
    for code in (0, 1, 42):
        session, out = spawn(["sh", "-c", f"echo hello; exit {code}"])
        status = await session.wait()
        assert status == ExitStatus(code, None, False)
        assert out.data == b"hello\r\n"
        assert out.exited == [status]
        assert session.master is None


async def test_death_by_signal() -> None:
    session, _ = spawn(["sh", "-c", "kill -TERM $$"])
    status = await session.wait()
    assert status.code is None and status.signal == "TERM"
    assert str(status) == "signal TERM"


def test_signal_names() -> None:
    assert signal_name(signal.SIGKILL) == "KILL"
    assert signal_name(signal.SIGINT) == "INT"
    assert signal_name(200) == "200"


async def test_controlling_terminal_and_own_session() -> None:
    session, out = spawn(
        [
            sys.executable,
            "-c",
            "import os; print(os.getsid(0) == os.getpid(), os.tcgetpgrp(0) == os.getpgrp(), "
            "os.ttyname(0))",
        ]
    )
    await session.wait()
    text = out.data.decode()
    assert text.startswith("True True /dev/pts/"), text


async def test_resize_reaches_child_with_pixels() -> None:
    script = (
        "import fcntl, signal, struct, termios\n"
        "def show():\n"
        "    r = struct.unpack('HHHH', fcntl.ioctl(0, termios.TIOCGWINSZ, b'\\0' * 8))\n"
        "    print('size', *r, flush=True)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGWINCH])\n"
        "show()\n"
        "signal.sigwait([signal.SIGWINCH])\n"
        "show()\n"
    )
    session, out = spawn([sys.executable, "-c", script], rows=24, cols=80)
    await out.until(b"size 24 80 0 0")
    session.resize(50, 132, 1320, 1000)
    await out.until(b"size 50 132 1320 1000")
    assert (await session.wait()).code == 0


async def test_raw_mode_output_is_byte_exact() -> None:
    session, out = spawn(
        [sys.executable, "-c", "import os; os.write(1, bytes(range(256)) + b'\\n')"], raw=True
    )
    assert (await session.wait()).code == 0
    assert bytes(out.data) == bytes(range(256)) + b"\n"


async def test_raw_mode_keeps_the_pty_as_controlling_terminal() -> None:
    session, out = spawn(["sh", "-c", "test -t 1 && tty </dev/tty && exit 5"], raw=True)
    status = await session.wait()
    assert status.code == 5, out.data
    assert out.data == b"/dev/tty\n"  # opening /dev/tty works only with a ctty


async def test_raw_mode_is_byte_exact_and_eof_ends_input() -> None:
    payload = bytes(range(256)) * 64 + b"\r\n\n\x04\x03\x1a\x7f"
    session, out = spawn(["cat"], raw=True)
    session.write(payload)
    session.send_eof()
    status = await session.wait()
    assert status.code == 0
    assert bytes(out.data) == payload


async def test_eof_in_cooked_mode() -> None:
    session, out = spawn(["sh", "-c", "stty -echo; echo go; wc -c"])
    await out.until(b"go")
    session.write(b"abc\n")
    session.send_eof()
    status = await session.wait()
    assert status.code == 0
    assert out.data.split()[-1] == b"4"


async def test_signal_goes_to_foreground_group() -> None:
    session, out = spawn(["sh", "-c", "echo ready; exec sleep 100"])
    await out.until(b"ready")
    # exec replaced sh; the foreground group is the session's own group
    assert session.foreground_pgrp() == session.pid
    session.send_signal(signal.SIGINT)
    status = await session.wait()
    assert status.signal == "INT"


async def test_ctrl_c_byte_interrupts() -> None:
    session, out = spawn(["sh", "-c", "echo ready; exec sleep 100"])
    await out.until(b"ready")
    session.write(b"\x03")
    status = await session.wait()
    assert status.signal == "INT"


async def test_bulk_output_drained_before_exit_status() -> None:
    session, out = spawn(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; exit 7"], raw=True)
    status = await session.wait()
    assert status.code == 7
    assert out.out_at_exit == 3_000_000 == len(out.data) == session.bytes_out
    assert out.data.count(b"x") == 3_000_000


async def test_pause_blocks_the_child_and_resume_completes() -> None:
    session, out = spawn(["sh", "-c", "head -c 2000000 /dev/zero; echo; echo end"], raw=True)
    session.pause_reading()
    for _ in range(20):
        await asyncio.sleep(0.01)
    # the kernel buffers at most a few tens of KiB, then the child blocks
    assert len(out.data) < 1_000_000
    assert session.status is None
    session.resume_reading()
    status = await session.wait()
    assert status.code == 0
    assert len(out.data) == 2_000_000 + len(b"\nend\n")


async def test_drain_stops_after_timeout_when_a_background_job_holds_the_pty() -> None:
    session, out = spawn(["sh", "-c", "sleep 30 & echo bye"], drain_timeout=0.2, raw=True)
    status = await session.wait()
    assert status.code == 0
    assert b"bye" in out.data


async def test_hangup_sends_sighup_and_reaps() -> None:
    session, out = spawn(["sh", "-c", "echo ready; exec sleep 100"])
    await out.until(b"ready")
    session.hangup()
    status = await session.wait()
    assert status.signal == "HUP"
    with pytest.raises(ChildProcessError):
        os.waitpid(session.pid or -1, os.WNOHANG)


async def test_spawn_failure_raises_and_leaks_nothing() -> None:
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError):
        spawn(["/nonexistent/program"])
    assert len(os.listdir("/proc/self/fd")) == before


async def test_input_larger_than_the_pty_buffer() -> None:
    payload = os.urandom(300_000)
    session, out = spawn(["cat"], raw=True)
    session.write(payload)
    session.send_eof()
    await session.wait()
    assert bytes(out.data) == payload
    assert session.bytes_in == len(payload)


async def test_credit_bounds_what_is_read_and_chunk_bounds_each_message() -> None:
    session = PtySession(
        ["sh", "-c", "head -c 100000 /dev/zero; exit 3"], env=ENV, cwd="/", raw=True
    )
    sizes: list[int] = []
    session.on_output = lambda data: sizes.append(len(data))
    session.chunk = 3000
    session.set_credit(10_000)
    session.start()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert sum(sizes) == 10_000
    assert session.status is None or not session.finished
    session.add_credit(200_000)
    status = await session.wait()
    assert status.code == 3
    assert sum(sizes) == 100_000
    assert max(sizes) <= 3000


# ------------------------------------------------- streaming output gathered


@pytest.fixture
def always_streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read after the first counts as part of a stream and waits up to
    a minute for more: what the gathering does, without depending on timing."""
    import vroomd.pty

    monkeypatch.setattr(vroomd.pty, "STREAM_GAP", 60.0)
    monkeypatch.setattr(vroomd.pty, "HOLD", 60.0)


@pytest.mark.usefixtures("always_streaming")
async def test_streaming_output_is_gathered_within_chunk_and_kept_in_order() -> None:
    script = "import sys, time\nfor i in range(3000): print(i, flush=True); time.sleep(0) if i % 50 else time.sleep(0.001)"  # noqa: E501
    session = PtySession([sys.executable, "-c", script], env=ENV, cwd="/", raw=True)
    messages: list[bytes] = []
    session.on_output = messages.append
    session.chunk = 5000
    session.coalesce = 4096
    session.start()
    await session.wait()
    assert b"".join(messages) == b"".join(b"%d\n" % i for i in range(3000))
    assert max(map(len, messages)) <= 5000
    assert len(messages) < 3000  # one read per print() would be 3,000 messages


@pytest.mark.usefixtures("always_streaming")
async def test_gathered_output_comes_before_the_exit_status() -> None:
    session, out = spawn(["sh", "-c", "printf first; sleep 0.05; printf second; exit 4"],
                         raw=True)  # fmt: skip
    status = await session.wait()
    assert status.code == 4
    assert out.out_at_exit == len(b"firstsecond") and out.data == b"firstsecond"


async def test_gathered_output_waits_no_longer_than_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    import vroomd.pty

    monkeypatch.setattr(vroomd.pty, "STREAM_GAP", 60.0)
    monkeypatch.setattr(vroomd.pty, "HOLD", 0.01)
    session, out = spawn(["sh", "-c", "printf first; sleep 0.05; printf second; sleep 30"],
                         raw=True)  # fmt: skip
    try:
        await asyncio.wait_for(out.until(b"firstsecond"), 10)  # long before the exit
    finally:
        session.hangup()
        await session.wait()


async def test_running_out_of_credit_hands_on_what_was_gathered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vroomd.pty

    monkeypatch.setattr(vroomd.pty, "STREAM_GAP", 60.0)
    monkeypatch.setattr(vroomd.pty, "HOLD", 60.0)
    session = PtySession(["sh", "-c", "head -c 100000 /dev/zero"], env=ENV, cwd="/", raw=True)
    sizes: list[int] = []
    session.on_output = lambda data: sizes.append(len(data))
    session.set_credit(10_000)
    session.start()
    for _ in range(100):
        if sum(sizes) == 10_000:
            break
        await asyncio.sleep(0.01)
    assert sum(sizes) == 10_000  # all of the credit's worth, not held back
    session.add_credit(200_000)  # more than is left: the end of output is read too
    await session.wait()
    assert sum(sizes) == 100_000


async def test_a_new_credit_counts_what_is_gathered(monkeypatch: pytest.MonkeyPatch) -> None:
    """vroomd sets the credit anew from the flow-control window, which knows
    only what was handed on: bytes read and still gathered come off it (else
    they would be read twice over the window, and dropped)."""
    import vroomd.pty

    monkeypatch.setattr(vroomd.pty, "STREAM_GAP", 60.0)
    monkeypatch.setattr(vroomd.pty, "HOLD", 60.0)
    session, out = spawn(["sh", "-c", "printf first; sleep 0.05; printf second; sleep 30"],
                         raw=True)  # fmt: skip
    try:
        await asyncio.wait_for(out.until(b"first"), 10)
        for _ in range(500):
            if session._held_size:
                break
            await asyncio.sleep(0.01)
        assert session._held_size == len(b"second")
        session.set_credit(1000)
        assert session.credit == 1000 - len(b"second")
    finally:
        session.hangup()
        await session.wait()
