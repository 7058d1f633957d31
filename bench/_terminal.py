"""Shared parts of the terminal benchmarks: a vroomd, an sshd, programs on PTYs.

Everything runs on 127.0.0.1 in temporary directories: vroomd with its own
state dir, OpenSSH's sshd with its own config (`UsePAM no`) and a key made
for the run. The "client PTY" measurements run the client (vroom term, ssh,
script) on a PTY whose master this process reads, as a terminal would.

A bench running as root may also run a vroomd, a program on a PTY, and an
ssh login as another local user (`user=`, `guest=`): terminal_setup.py uses
that to measure a stock login shell instead of this machine's own dotfiles.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _proc import free_port

BIN = Path(sys.executable).parent
VROOMD = str(BIN / "vroomd")
VROOM = str(BIN / "vroom")
CLIENT_OPTIONS: dict[str, str] = (
    {"ws_client": os.environ["BENCH_WS_CLIENT"]} if os.environ.get("BENCH_WS_CLIENT") else {}
)
"""`openmux.aio.connect` options of the client-API figures: BENCH_WS_CLIENT=builtin
measures OpenMux's own WebSocket client (what `vroom term` uses) instead of websockets'."""


def compile_packages() -> None:
    """Write the packages' bytecode, as installing a wheel does: this
    environment sets PYTHONDONTWRITEBYTECODE, so without this every client
    start would compile its modules from source."""
    import compileall

    root = Path(__file__).resolve().parent.parent / "packages"
    for package in ("openmux", "vroom-terminal", "vroomd"):
        compileall.compile_dir(str(root / package / "src"), quiet=1)


def _ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class OnPty:
    """A program on a fresh PTY (rows x cols); we hold the master."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        rows: int = 24,
        cols: int = 80,
        *,
        user: str | None = None,
        cwd: str | None = None,
    ) -> None:
        master, slave = os.openpty()
        ids = _ids(user)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_ctty,
            close_fds=True,
            cwd=cwd,
            **ids,
        )
        os.close(slave)
        self.master = master

    def drain(self) -> tuple[int, float, float]:
        """Read until EOF: (bytes, time of the first byte, time of the end)."""
        total = 0
        first = 0.0
        read = os.read
        fd = self.master
        while True:
            try:
                chunk = read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if not total:
                first = time.perf_counter()
            total += len(chunk)
        return total, first, time.perf_counter()

    def read_until(self, needle: bytes, timeout: float = 30.0) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout
        import select

        while needle not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {needle!r} in {buf[-300:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    raise TimeoutError(f"EOF before {needle!r}: {buf[-300:]!r}") from None
                if not chunk:
                    raise TimeoutError(f"EOF before {needle!r}")
                buf += chunk
        return buf

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.master)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGHUP)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _ids(user: str | None) -> dict[str, Any]:
    """Popen's arguments that run a child as `user` (its own group, no others)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


# ---------------------------------------------------------------- vroomd


class Vroomd:
    """`user`: run as that local user (needs root), so its sessions get that
    user's login shell and home; `command` replaces the `vroomd` script (an
    interpreter that user can reach), `env` the inherited environment."""

    def __init__(
        self,
        *extra: str,
        user: str | None = None,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vroomd-bench-"))
        ids = _ids(user)
        if ids:
            os.chown(self.dir, ids["user"], ids["group"])
        self.ws_port = free_port()
        self.tcp_port = free_port()
        self.log = open(self.dir / "log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *(command or [VROOMD]),
                "--state-dir",
                str(self.dir / "state"),
                "--listen",
                f"ws://127.0.0.1:{self.ws_port}",
                "--listen",
                f"tcp://127.0.0.1:{self.tcp_port}",
                "--log-level",
                "warning",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=env,
            **ids,
        )
        deadline = time.monotonic() + 30
        while b"ready" not in (self.dir / "log").read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError((self.dir / "log").read_text())
            time.sleep(0.05)
        self.token = (self.dir / "state" / "token").read_text().strip()

    def url(self, scheme: str) -> str:
        return (
            f"ws://127.0.0.1:{self.ws_port}"
            if scheme == "ws"
            else (f"tcp://127.0.0.1:{self.tcp_port}")
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, "VROOM_TOKEN": self.token, "TERM": "xterm-256color"}

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) if match else 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ sshd


class Sshd:
    """OpenSSH on 127.0.0.1 with a config and keys of its own (UsePAM no).

    `guest`: another local user may log in with the run's key too (`argv(user=)`);
    sshd reads authorized keys as the user, so that user gets a copy of the
    public key in a directory it can read (the run's directory stays closed)."""

    def __init__(self, guest: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sshd-bench-"))
        self.port = free_port()
        d = self.dir
        for name in ("host", "user"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
            )
        (d / "authorized_keys").write_text((d / "user.pub").read_text())
        os.chmod(d / "authorized_keys", 0o600)
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nUsePAM no\nStrictModes no\n"
            f"PermitRootLogin yes\nPasswordAuthentication no\nPidFile {d / 'sshd.pid'}\n"
            "PrintMotd no\nPrintLastLog no\nUseDNS no\nSubsystem sftp internal-sftp\n"
        )
        if guest is not None:
            pwd.getpwnam(guest)  # KeyError if there is no such user
            os.chmod(d, 0o711)
            (d / "guest").mkdir(mode=0o755)
            (d / "guest" / "authorized_keys").write_text((d / "user.pub").read_text())
            os.chmod(d / "guest" / "authorized_keys", 0o644)
            with open(d / "sshd_config", "a") as config:
                config.write(
                    f"Match User {guest}\n  AuthorizedKeysFile {d / 'guest' / 'authorized_keys'}\n"
                )
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen(
            [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(d / "log", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError((d / "log").read_text()) from None
                time.sleep(0.05)
        user = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name
        self.target = f"{user}@127.0.0.1"

    def argv(self, *remote: str, tty: bool = True, user: str | None = None) -> list[str]:
        return [
            "ssh",
            *(["-tt"] if tty else []),
            "-F",
            "/dev/null",
            "-i",
            str(self.dir / "user"),
            "-p",
            str(self.port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            f"{user}@127.0.0.1" if user else self.target,
            *remote,
        ]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def servers(
    *vroomd_args: str, ssh_guest: str | None = None
) -> Iterator[tuple[Vroomd, Sshd | None]]:
    compile_packages()
    vroomd = Vroomd(*vroomd_args)
    sshd: Sshd | None = None
    try:
        try:
            sshd = Sshd(ssh_guest)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            print(f"# sshd unavailable: {exc}", file=sys.stderr)
        yield vroomd, sshd
    finally:
        vroomd.stop()
        if sshd is not None:
            sshd.stop()


def emit(name: str, value: float, unit: str) -> None:
    text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    print(f"{name} {text} {unit}", flush=True)


# ------------------------------------------------------------ client API


class CountingClient:
    """A client with no PTY of its own (as a browser page), on the public
    client API (`vroom_terminal.aio`, callback mode): counts output bytes,
    each chunk acknowledged once counted; returns when the program exits."""

    def __init__(self, url: str, token: str, command: str, *, raw: bool = False) -> None:
        self.url, self.token, self.command, self.raw = url, token, command, raw
        self.total = 0
        self.first = 0.0
        self.chunks: list[bytes] = []
        self.keep = False

    def _on_output(self, data: bytes) -> None:
        if not self.total:
            self.first = time.perf_counter()
        self.total += len(data)
        if self.keep:
            self.chunks.append(data)

    async def run(self) -> tuple[int, float, float]:
        import vroom_terminal.aio

        async with vroom_terminal.aio.connect(self.url, token=self.token, **CLIENT_OPTIONS) as conn:
            process = await conn.create_process(
                self.command, raw=self.raw, on_output=self._on_output
            )
            try:
                await process.wait()
            except vroom_terminal.aio.ClientError:
                pass  # the session ended without an exit status: what arrived counts
            end = time.perf_counter()
        return self.total, self.first, end


ECHO_REMOTE = "stty raw -echo; echo READY; exec cat"
"""What the keystroke benches run: a raw, silent `cat` that echoes each byte."""


def ready(child: OnPty) -> OnPty:
    """Wait for ECHO_REMOTE's READY and swallow what followed it (the line end)."""
    child.read_until(b"READY")
    time.sleep(0.2)
    while select.select([child.master], [], [], 0.1)[0]:
        os.read(child.master, 65536)
    return child


def one_key(fd: int, key: bytes) -> float:
    """Write one byte to a PTY master and wait for its echo; microseconds."""
    start = time.perf_counter_ns()
    os.write(fd, key)
    got = b""
    while not got:
        select.select([fd], [], [])
        got = os.read(fd, 64)
    elapsed = time.perf_counter_ns() - start
    if got != key:
        raise RuntimeError(f"sent {key!r}, got {got!r}")
    return elapsed / 1000
