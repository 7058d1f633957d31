"""Helpers for the vroomd/vroom term tests: a real `vroomd` process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

VENV_BIN = Path(sys.executable).parent
VROOMD = str(VENV_BIN / "vroomd")
VROOM = str(VENV_BIN / "vroom")


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked (server) WebSocket frame with the shortest length
    encoding: what the client tests play from a raw server, and what
    openmux.websocket, a client's framing, never builds."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 0x10000:
        return bytes((first, 126)) + struct.pack("!H", size) + payload
    return bytes((first, 127)) + struct.pack("!Q", size) + payload


@pytest.fixture(scope="module")
def vroomd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VroomdProcess]:
    """vroomd on ws:// and tcp:// (ports chosen by the kernel), token auth on.
    Its own environment holds a secret that must never reach a session.
    A fixture here, not in conftest.py, so that the conftests of other
    folders take it by a plain import (`vroomd = vterm_support.vroomd`)."""
    env = dict(os.environ, VROOMD_TEST_SECRET="leaked")
    proc = VroomdProcess(
        ["--listen", "ws://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0"],
        tmp_path_factory.mktemp("vroomd") / "state",
        env,
    )
    proc.wait_for("ready; connect with")
    yield proc
    proc.stop()


class VroomdProcess:
    """`vroomd` as a subprocess; stderr is collected by a thread."""

    def __init__(self, args: list[str], state_dir: Path, env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [VROOMD, "--state-dir", str(state_dir), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
            text=True,
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if "<EOF>" in self.lines:
                    raise AssertionError(f"vroomd ended without {pattern!r}: {self.lines}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in vroomd output: {self.lines}")
                self._cond.wait(left)

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def url(self, scheme: str) -> str:
        self.wait_for(r"ready; connect with")
        for line in self.lines:
            match = re.search(r"listening on (\S+)", line)
            if match and match.group(1).startswith(scheme + "://"):
                return match.group(1)
        raise AssertionError(f"no {scheme} listener: {self.lines}")

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(5)
        return self.proc.returncode


# ------------------------------------------------------------ client API


class ApiSession:
    """Output, exit status and errors of one terminal session, as seen by a client."""

    def __init__(self, key: str) -> None:
        import asyncio

        self.key = key
        self.output = bytearray()
        self.exit: tuple[int | None, str | None, bool] | None = None
        self.errors: list[tuple[int, str, bool]] = []
        self.events: list[object] = []
        self.changed = asyncio.Event()
        self.ready = False
        self.auto_ack = True


class ApiClient:
    """A VROOM-Terminal client on openmux.aio, driving TerminalClient directly
    (what a browser page does), for tests that need the protocol's details."""

    def __init__(self, session: object, *, window: int | None = 1024 * 1024) -> None:
        from vroom_terminal.capabilities import CapabilityOffer, ExtensionsOffer
        from vroom_terminal.client import TerminalClient

        self.session = session
        self.client = TerminalClient(
            session.connection,  # type: ignore[attr-defined]
            offer=CapabilityOffer(extensions=ExtensionsOffer(flow_control=window)),
        )
        self.sessions: dict[str, ApiSession] = {}
        self.token: str | None = None
        self.plans: dict[str, dict[str, object]] = {}

        from openmux import MessageReceived

        def tap(events: list[object]) -> list[object]:
            self._processing = True  # the asyncio layer flushes after the tap,
            try:  # once it registered channels with the transport (QUIC streams)
                for event in events:
                    for result in self.client.handle_event(event):  # type: ignore[arg-type]
                        self._on(result)
            finally:
                self._processing = False
            # the rest (pongs, the end of the connection) to the asyncio layer
            return [e for e in events if type(e) is not MessageReceived]

        session.add_event_tap(tap)  # type: ignore[attr-defined]

    @classmethod
    async def connect(cls, url: str, token: str | None, **kw: object) -> ApiClient:
        import openmux.aio

        session = await openmux.aio.connect(url, timeout=10)
        client = cls(session, **kw)  # type: ignore[arg-type]
        client.token = token
        return client

    _processing = False

    def flush(self) -> None:
        if not self._processing:
            self.session.flush()  # type: ignore[attr-defined]

    def open(
        self,
        key: str = "",
        *,
        command: str | list[str] | None = None,
        raw: bool = False,
        rows: int = 24,
        cols: int = 80,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> ApiSession:
        state = ApiSession(key)
        self.sessions[key] = state
        self.plans[key] = {"command": command, "raw": raw, "rows": rows, "cols": cols,
                           "env": env, "start": start}  # fmt: skip
        self.client.open_session(key)
        self.flush()
        return state

    def _on(self, event: object) -> None:
        from vroom_terminal import events as ev

        key = getattr(event, "session", "")
        state = self.sessions.get(key)
        if state is None:
            return
        state.events.append(event)
        plan = self.plans[key]
        client = self.client
        if isinstance(event, ev.PtyOutput):
            state.output += event.data
            if state.auto_ack:
                client.ack(len(event.data), session=key)
        elif isinstance(event, ev.Negotiated):
            if event.select.auth.required:
                client.authenticate(token=self.token or "", session=key)
            else:
                self._pty(key, plan)
        elif isinstance(event, ev.AuthResult) and event.ok:
            self._pty(key, plan)
        elif isinstance(event, ev.PtyGranted):
            if plan["env"]:
                client.set_env(plan["env"], session=key)  # type: ignore[arg-type]
            if plan["start"]:
                command = plan["command"]
                if command is None:
                    client.shell(session=key)
                else:
                    client.exec(command, session=key)  # type: ignore[arg-type]
        elif isinstance(event, ev.PtyReady):
            state.ready = True
        elif isinstance(event, ev.ExitStatusReceived):
            state.exit = (event.code, event.signal, event.core_dumped)
        elif isinstance(event, ev.ErrorReceived):
            state.errors.append((event.code, event.message, event.fatal))
        self.flush()
        state.changed.set()

    def _pty(self, key: str, plan: dict[str, object]) -> None:
        modes = {"raw": True} if plan["raw"] else None
        self.client.request_pty("xterm-256color", plan["rows"], plan["cols"], 0, 0, modes,  # type: ignore[arg-type]
                                session=key)  # fmt: skip

    async def until(self, key: str, predicate: object, timeout: float = 30.0) -> ApiSession:
        import asyncio

        state = self.sessions[key]
        async with asyncio.timeout(timeout):
            while not predicate(state):  # type: ignore[operator]
                state.changed.clear()
                await state.changed.wait()
        return state

    async def wait_output(self, key: str, needle: bytes, timeout: float = 30.0) -> ApiSession:
        return await self.until(key, lambda s: needle in s.output, timeout)

    async def wait_exit(self, key: str = "", timeout: float = 30.0) -> ApiSession:
        return await self.until(key, lambda s: s.exit is not None, timeout)

    def send(self, data: bytes, key: str = "") -> None:
        self.client.send_input(data, session=key)
        self.flush()

    async def close(self) -> None:
        await self.session.close()  # type: ignore[attr-defined]


def count_fast_bytes(monkeypatch: Any, owner: type) -> list[int]:
    """Wrap `owner.set_fast_handler` so that the bytes its handlers take are
    counted in the returned one-element list."""
    taken = [0]
    original = owner.set_fast_handler  # type: ignore[attr-defined]

    def counting(self: object, channel_id: int, handler: Any) -> None:
        def counted(type_: int, data: bytes) -> bool:
            took: bool = handler(type_, data)
            taken[0] += len(data) if took else 0
            return took

        original(self, channel_id, counted if handler is not None else None)

    monkeypatch.setattr(owner, "set_fast_handler", counting)
    return taken


class CatPipes:
    """3 MiB of random bytes, written in small pieces into a pipe that a
    `vroom term` client in this process reads as its stdin; its stdout, a
    pipe drained by a thread. `with CatPipes(seed) as pipes:` runs the
    feeding and draining threads around the client's run; `check(client)`
    then asserts every byte came back in order and the client's credit
    bookkeeping agrees with what arrived."""

    def __init__(self, seed: str, *, nonblocking_stdin: bool = False) -> None:
        import random

        self.stdin, self._in_write = os.pipe()
        self._out_read, self.stdout = os.pipe()
        if nonblocking_stdin:
            os.set_blocking(self.stdin, False)
        self._rng = random.Random(seed)
        self.payload = self._rng.randbytes(3 * 1024 * 1024)
        self.received = bytearray()
        self._threads = [
            threading.Thread(target=self._feed),
            threading.Thread(target=self._drain),
        ]

    def _feed(self) -> None:
        pos, payload = 0, self.payload
        while pos < len(payload):
            pos += os.write(self._in_write, payload[pos : pos + self._rng.randint(1, 4096)])
        os.close(self._in_write)

    def _drain(self) -> None:
        while chunk := os.read(self._out_read, 65536):
            self.received.extend(chunk)

    def __enter__(self) -> CatPipes:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.stdout)
        for thread in self._threads:
            thread.join(30)
        os.close(self.stdin)
        os.close(self._out_read)

    def check(self, client: Any) -> None:
        assert bytes(self.received) == self.payload
        assert client.client is not None
        window = client.client.sessions[""].ack_window
        assert window.received == window.consumed == len(self.payload)
        assert window.consumed - window.acked < window.ack_every


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))
