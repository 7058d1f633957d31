"""Every failure is one clear exception, and no wait hangs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import vroom_terminal.aio as vt
from vroom_terminal.errors import ErrorCode, TerminalError
from vterm_support import VroomdProcess


async def test_wrong_token(url: str) -> None:
    async with vt.connect(url, token="not-the-token") as conn:
        with pytest.raises(vt.AuthError) as info:
            await conn.run("true")
    assert info.value.code == ErrorCode.AUTH_FAILED == 401
    assert "authentication refused" in str(info.value)


async def test_no_token(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VROOM_TOKEN", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # no local vroomd token file
    async with vt.connect(url) as conn:
        with pytest.raises(vt.AuthError, match="requires a token"):
            await conn.create_process("true")


async def test_token_from_the_environment(
    url: str, vroomd: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VROOM_TOKEN", vroomd.token)  # type: ignore[attr-defined]
    async with vt.connect(url) as conn:
        assert (await conn.run("exit 0")).exit_status == 0


async def test_nothing_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(vt.ConnectError) as info:
        await vt.connect(f"tcp://127.0.0.1:{port}", token="x", timeout=5)
    assert isinstance(info.value, TerminalError)
    assert "cannot connect" in str(info.value)


async def test_closing_the_connection_ends_every_wait(url: str, vroomd: object) -> None:
    conn = await vt.connect(url, token=vroomd.token)  # type: ignore[attr-defined]
    process = await conn.create_process(["sleep", "100"])
    waiting = asyncio.ensure_future(process.wait())
    reading = asyncio.ensure_future(process.stdout.read())
    await asyncio.sleep(0)
    await conn.close()
    for task in (waiting, reading):
        with pytest.raises(vt.ConnectionLost):
            await task
    assert conn.is_closed
    with pytest.raises(vt.ConnectionLost):
        await conn.create_process("true")


@pytest.fixture(scope="module")
def small_vroomd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VroomdProcess]:
    """One session and one connection at most: the refusals."""
    proc = VroomdProcess(
        ["--listen", "tcp://127.0.0.1:0", "--max-sessions", "1", "--max-connections", "1"],
        tmp_path_factory.mktemp("small") / "state",
    )
    proc.wait_for("ready; connect with")
    yield proc
    proc.stop()


async def test_limits(small_vroomd: VroomdProcess) -> None:
    url, token = small_vroomd.url("tcp"), small_vroomd.token
    async with vt.connect(url, token=token) as conn:
        first = await conn.create_process(["sleep", "100"])
        with pytest.raises(vt.PtyRefusedError, match="server limit") as pty:
            await conn.create_process("true")
        assert pty.value.code == 503
        async with vt.connect(url, token=token) as other:
            with pytest.raises(vt.ServerBusyError, match="server limit") as busy:
                await other.create_process("true")
        assert busy.value.code == 503
        assert first.is_running
        first.kill()
        assert (await first.wait()).exit_signal == "KILL"


async def test_start_timeout_is_a_timeout_error(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            await conn.create_process("true", timeout=0)
        assert (await conn.run("exit 6")).exit_status == 6
