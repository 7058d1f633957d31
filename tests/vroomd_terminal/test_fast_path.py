"""The keystroke fast paths end to end (vroom term -> vroomd -> PTY -> back):
byte-exact echo one key at a time and in bursts on a real local PTY, and
megabytes through `cat` with the flow-control credit still right after
thousands of fast-path frames (a credit counted wrong either stalls the
session or draws an ERROR). Over WebSocket and TCP."""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import select
import struct
import subprocess
import termios
import threading
import time

import pytest
from vterm_support import VROOM, CatPipes, VroomdProcess, count_fast_bytes

SCHEMES = ["ws", "tcp"]
REMOTE = "stty raw -echo; echo READY; exec cat"

pytestmark = pytest.mark.timeout(120)


def _ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class OnPty:
    """`vroom term` on a fresh PTY whose master we hold, as a terminal would."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env,
            start_new_session=True, preexec_fn=_ctty, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.master = master

    def read(self, count: int, timeout: float = 30.0) -> bytes:
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(got)} of {count} bytes: {got[-100:]!r}"
            if select.select([self.master], [], [], left)[0]:
                got += os.read(self.master, count - len(got))
        return got

    def read_until(self, needle: bytes, timeout: float = 30.0) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout
        while needle not in buf:
            left = deadline - time.monotonic()
            assert left > 0, f"no {needle!r} in {buf[-300:]!r}"
            if select.select([self.master], [], [], left)[0]:
                buf += os.read(self.master, 65536)
        return buf

    def close(self) -> None:
        os.close(self.master)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _env(vroomd: VroomdProcess) -> dict[str, str]:
    env = {**os.environ, "VROOM_TOKEN": vroomd.token, "TERM": "xterm-256color"}
    env.pop("VROOMD_TEST_SECRET", None)
    return env


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keystrokes_echo_byte_exact_then_bursts(vroomd: VroomdProcess, scheme: str) -> None:
    child = OnPty([VROOM, "term", "-t", vroomd.url(scheme), "--", REMOTE], _env(vroomd))
    try:
        child.read_until(b"READY\n")  # the remote PTY is raw already: no CR
        # One key at a time, every byte value: each echo before the next key.
        for value in list(range(256)) * 2:
            os.write(child.master, bytes([value]))
            assert child.read(1) == bytes([value])
        # Bursts of 1..64 bytes written while the echo flows back: 2 MiB,
        # past the 1 MiB credit window and many WINDOW_ACKs (every 128 KiB).
        rng = random.Random(scheme)
        payload = rng.randbytes(2 * 1024 * 1024)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                pos = 0
                while pos < len(payload):
                    step = rng.randint(1, 64)
                    pos += os.write(child.master, payload[pos : pos + step])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        echoed = child.read(len(payload), timeout=90)
        thread.join(30)
        assert not errors
        assert echoed == payload
        # Still interactive afterwards: the credit was counted right.
        os.write(child.master, b"\x00")
        assert child.read(1) == b"\x00"
    finally:
        child.close()


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_credit_after_many_fast_frames(
    vroomd: VroomdProcess, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `vroom term` client in this process, on pipes: 3 MiB in small
    writes through a raw `cat`. Every byte comes back in order, and the
    client's credit bookkeeping agrees with what arrived, part of it through
    the fast path."""
    import openmux.aio
    from vroom_terminal.cli import TermClient

    fast_taken = count_fast_bytes(monkeypatch, openmux.aio.Session)
    with CatPipes(f"credit-{scheme}", nonblocking_stdin=True) as pipes:
        client = TermClient(
            vroomd.url(scheme), token=vroomd.token, command=["cat"], interactive=False,
            env={}, stdin=pipes.stdin, stdout=pipes.stdout,
        )  # fmt: skip
        code = await asyncio.wait_for(client.run(), 90)
    assert code == 0
    pipes.check(client)
    # Some came the fast way (how much depends on how TCP cuts the frames:
    # a read ending inside a frame sends the next ones the general way).
    assert fast_taken[0] > 0
