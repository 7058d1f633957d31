"""`python -m openmux.demo`: two real processes over a real TCP socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from openmux import demo

DEMO = [sys.executable, "-m", "openmux.demo"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((demo.HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((demo.HOST, 0))
        return int(sock.getsockname()[1])


def assert_exchange(stdout: str) -> None:
    lines = stdout.splitlines()

    def has(prefix: str) -> None:
        assert any(line.startswith(prefix) for line in lines), (prefix, stdout)

    has("server: listening on 127.0.0.1:")
    has("client: connected to 127.0.0.1:")
    has("server: handshake completed: token accepted")
    has("client: handshake completed: version 0.1.0")
    has("server: channel 'greeting' opened with id 1")
    has("client: channel 'greeting' opened with id 1")
    has("client: sent 'hello, openmux' on channel 1")
    has("server: received 'hello, openmux' on channel 1; echoing 'HELLO, OPENMUX'")
    has("client: received 'HELLO, OPENMUX' on channel 1")
    has("server: connection closed by the client: code 1000")
    has("client: connection closed (the server answered our CLOSE): code 1000")
    has("client: done")
    assert lines[-1] == "server: done"
    # Per process, the steps come in protocol order.
    client = [line for line in lines if line.startswith("client:")]
    order = ["connected", "handshake", "asked", "channel", "sent", "received", "closing"]
    assert [line.split()[1] for line in client[: len(order)]] == order


def test_demo_end_to_end() -> None:
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert_exchange(proc.stdout)


def test_help() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m openmux.demo")
    for word in ("--client PORT", "--port PORT", "greeting", "CLOSE 1000", demo.TOKEN_ENV):
        assert word in proc.stdout


def test_port_in_use_is_one_line(busy_port: int) -> None:
    proc = run("--port", str(busy_port))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"openmux.demo: cannot listen on 127.0.0.1:{busy_port}: " + (
        f"{os.strerror(98)}\n"
    )


def test_client_without_server(closed_port: int) -> None:
    proc = run("--client", str(closed_port))
    assert proc.returncode == 1
    assert proc.stderr == f"openmux.demo: cannot connect to 127.0.0.1:{closed_port}: " + (
        "Connection refused\n"
    )


@pytest.mark.parametrize("args", [["--port", "70000"], ["--client", "0"], ["--bogus"]])
def test_bad_arguments(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage:")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--port", "-1"], ["--client", "65536"]])
def test_bad_ports_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo.main(args)
    assert exit_info.value.code == 2
    assert "is not a TCP port" in capsys.readouterr().err


def test_demo_imports_only_the_stdlib() -> None:
    code = (
        "import sys, openmux.demo\n"
        "mods = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(mods - set(sys.stdlib_module_names) - {'openmux', '__main__'}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        check=True,
    )
    assert proc.stdout.strip() == "[]"


# In-process runs of the same code paths (the child is still a real process).


def test_main_in_process(capfd: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    assert_exchange(capfd.readouterr().out)


def test_main_port_in_use_in_process(busy_port: int, capfd: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--port", str(busy_port)]) == 1
    assert capfd.readouterr().err.startswith("openmux.demo: cannot listen on")


def test_main_client_without_server(closed_port: int, capfd: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--client", str(closed_port)]) == 1
    assert "Connection refused" in capfd.readouterr().err


async def test_client_and_server_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    server = demo.DemoServer("sesame")
    listener = await asyncio.start_server(server.handle, demo.HOST, 0)
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        assert await demo.client(port, "sesame") is True
        assert await server.done is True
        # One demo, one client: a second connection is closed at once.
        reader, writer = await asyncio.open_connection(demo.HOST, port)
        assert await reader.read() == b""
        writer.close()
    out = capsys.readouterr().out
    assert "client: received 'HELLO, OPENMUX' on channel 1" in out


async def test_wrong_token_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    server = demo.DemoServer("sesame")
    listener = await asyncio.start_server(server.handle, demo.HOST, 0)
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        assert await demo.client(port, "wrong") is False
        assert await server.done is False
    out = capsys.readouterr().out
    assert "client: connection closed by the server: code 4000" in out


def test_child_failure_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A client that cannot authenticate exits 1; the parent says so in one line.
    real_exec = asyncio.create_subprocess_exec

    async def wrong_token_child(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        return await real_exec(*args, env={**env, demo.TOKEN_ENV: "wrong"})

    monkeypatch.setattr(asyncio, "create_subprocess_exec", wrong_token_child)
    assert demo.main([]) == 1
    err = capfd.readouterr().err
    assert err.endswith("openmux.demo: the client process failed (exit status 1)\n"), err


async def test_no_spawn_serves_a_client_started_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(demo.TOKEN_ENV, raising=False)
    ports: asyncio.Queue[int] = asyncio.Queue()
    server = asyncio.create_task(demo.serve(0, spawn=False, on_listening=ports.put_nowait))
    port = await ports.get()
    out = capsys.readouterr().out
    assert f"server: listening on 127.0.0.1:{port}; waiting for a client" in out
    token = out.split(f"{demo.TOKEN_ENV}=")[1].split()[0]  # the hint to run the client
    assert await demo.client(port, token) is True
    assert await server is True
