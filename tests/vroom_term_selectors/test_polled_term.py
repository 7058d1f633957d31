"""`vroom term` on its asyncio-free driver (vroom_terminal.termloop over
openmux.polled), end to end against a real vroomd on 127.0.0.1, over TCP
and WebSocket: what only this driver has to get right (no asyncio imported,
signals through the wake-up pipe, stdin paused while the socket is backed
up, the hand-over to asyncio, keepalive and TCP_NODELAY) and its one-line
failures. What both drivers must do alike (prompt, resize, exit statuses,
byte-exact pipes, end of input, 50 MB under flow control, a wrong token)
is tests/vroomd_terminal/test_end_to_end.py, run with each driver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from vterm_support import VROOM, CatPipes, VroomdProcess, count_fast_bytes

SCHEMES = ["tcp", "ws"]
PROMPT = r"[#$] $"
PYTHON = sys.executable


def vroom_env(vroomd: VroomdProcess, **extra: str) -> dict[str, str]:
    env = {**os.environ, "VROOM_TOKEN": vroomd.token, "TERM": "xterm-256color", **extra}
    env.pop("VROOMD_TEST_SECRET", None)
    env.pop("VROOM_ASYNCIO", None)
    return env


def run_vroom(vroomd: VroomdProcess, *args: str, input: bytes | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    return subprocess.run(
        [VROOM, "term", *args],
        input=input,
        capture_output=True,
        env=env or vroom_env(vroomd),
        timeout=60,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


# ------------------------------------------------------------- no asyncio


@pytest.mark.parametrize("scheme", SCHEMES)
def test_no_asyncio_is_imported(vroomd: VroomdProcess, scheme: str, tmp_path: Path) -> None:
    """A whole session, then sys.modules: the point of this driver."""
    report = tmp_path / "modules"
    code = (
        "import sys\n"
        "from vroom_terminal.cli import main\n"
        f"code = main(['term', {vroomd.url(scheme)!r}, '--', 'echo', 'hello'])\n"
        f"open({str(report)!r}, 'w').write(' '.join(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, timeout=60,
                            env=vroom_env(vroomd), stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"
    modules = report.read_text().split()
    assert "vroom_terminal.termloop" in modules
    assert "asyncio" not in modules
    assert "openmux.aio" not in modules


def test_a_proxy_in_the_environment_goes_to_asyncio(vroomd: VroomdProcess, tmp_path: Path) -> None:
    """ws:// with a `*_proxy` variable set: websockets' client, on asyncio, decides."""
    report = tmp_path / "modules"
    code = (
        "import sys\n"
        "from vroom_terminal.cli import main\n"
        f"code = main(['term', {vroomd.url('ws')!r}, '--', 'echo', 'proxied'])\n"
        f"open({str(report)!r}, 'w').write(' '.join(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    env = vroom_env(vroomd, http_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1")
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, timeout=60, env=env,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    assert (result.returncode, result.stdout) == (0, b"proxied\n"), result.stderr
    modules = report.read_text().split()
    assert "asyncio" in modules and "vroom_terminal.termloop" not in modules


def test_importtime_shows_no_asyncio(vroomd: VroomdProcess) -> None:
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "vroom_terminal.cli", "term", vroomd.url("tcp"),
         "--", "true"],
        capture_output=True, timeout=60, env=vroom_env(vroomd), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.decode().splitlines()
                if line.startswith("import time:")]  # fmt: skip
    assert "openmux.polled" in imported
    assert "asyncio" not in imported and "ssl" not in imported


def test_asyncio_driver_on_request(vroomd: VroomdProcess) -> None:
    """VROOM_ASYNCIO=1 keeps the old driver reachable (benchmarks compare them)."""
    result = run_vroom(vroomd, vroomd.url("tcp"), "--", "echo", "ok",
                       env=vroom_env(vroomd, VROOM_ASYNCIO="1"))  # fmt: skip
    assert (result.returncode, result.stdout) == (0, b"ok\n")


# ------------------------------------------------------------ interactive


def test_sigterm_restores_the_terminal(vroomd: VroomdProcess, tmp_path: Path) -> None:
    """SIGTERM to vroom term: one line, 255, and the local terminal as it was."""
    script = tmp_path / "check.sh"
    script.write_text(
        f"stty -g > {tmp_path}/before\n"
        f'"{VROOM}" term -t "$1" -- "echo started; sleep 60" &\n'
        "pid=$!\n"
        f"while ! grep -q started {tmp_path}/out 2>/dev/null; do sleep 0.05; done\n"
        'kill -TERM "$pid"; wait "$pid"; echo "rc=$?"\n'
        f"stty -g > {tmp_path}/after\n"
    )
    child = pexpect.spawn("sh", [str(script), vroomd.url("tcp")], env=vroom_env(vroomd),
                          timeout=30, logfile=None)  # fmt: skip
    child.logfile_read = (tmp_path / "out").open("wb", buffering=0)
    try:
        child.expect("interrupted by SIGTERM")
        child.expect("rc=255")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()


# --------------------------------------------------------------- pipes


def test_env_and_forced_tty(vroomd: VroomdProcess) -> None:
    result = run_vroom(vroomd, "-e", "LC_TIME=C", "-e", "FOO=bar", "-t", vroomd.url("tcp"), "--",
                       'echo "[$LC_TIME|${FOO-unset}]"; test -t 0 && echo tty')  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.split() == [b"[C|unset]", b"tty"]
    assert b"FOO" in result.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_flow_control_with_a_slow_reader(vroomd: VroomdProcess, scheme: str) -> None:
    """3.4 MB of output (over three 1 MiB windows) into a reader that takes
    small bites: every byte, in order; the server only sent on credit."""
    expected = b"".join(b"%d\n" % i for i in range(1, 500001))
    proc = subprocess.Popen([VROOM, "term", vroomd.url(scheme), "--", "seq 1 500000"],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=vroom_env(vroomd))  # fmt: skip
    assert proc.stdout is not None
    received = bytearray()
    bites = 0
    while chunk := proc.stdout.read(4096 if bites % 8 else 512):
        received += chunk
        bites += 1
        if bites % 64 == 0:
            threading.Event().wait(0.002)  # slow: the credit must stall the server
    assert proc.wait(60) == 0
    assert bytes(received) == expected


@pytest.mark.parametrize("scheme", SCHEMES)
def test_input_while_the_socket_is_backed_up(vroomd: VroomdProcess, scheme: str) -> None:
    """4 MiB of input to a program that reads it only after a pause: the
    client stops reading stdin while its send buffer is full, and loses nothing."""
    data = os.urandom(4 * 1024 * 1024)
    result = run_vroom(vroomd, vroomd.url(scheme), "--", "sleep 1; sha256sum", input=data)
    import hashlib

    assert result.returncode == 0
    assert result.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


# -------------------------------------------------------------- failures


def test_stdout_closed_early(vroomd: VroomdProcess) -> None:
    """`vroom term ... | head -1`: one line and 255 once stdout is gone, no traceback."""
    proc = subprocess.Popen([VROOM, "term", vroomd.url("tcp"), "--", "seq 1 2000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=vroom_env(vroomd))  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10) == b"1\n2\n3\n4\n5\n"
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(60) == 255
    assert err == b"vroom: local I/O error: Broken pipe\n"


@pytest.mark.parametrize("scheme", [*SCHEMES, "tls", "wss"])
def test_connection_refused(scheme: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    url = f"{scheme}://127.0.0.1:{port}"
    result = subprocess.run([VROOM, "term", url, "--", "true"], capture_output=True,
                            timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 255
    assert result.stderr == f"vroom: cannot connect to {url}: Connection refused\n".encode()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for sock in held:
        sock.close()
    listener.close()


@pytest.mark.parametrize("scheme", [*SCHEMES, "tls", "wss"])
def test_handshake_timeout(silent_server: int, scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{silent_server}"
    result = subprocess.run(
        [VROOM, "term", "--connect-timeout", "0.5", url, "--", "true"],
        capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 255
    assert result.stderr == f"vroom: cannot connect to {url}: no answer within 0.5 s\n".encode()


def test_server_limit_and_refusals_are_one_line(vroomd: VroomdProcess) -> None:
    """An upgrade refused with another HTTP status: one line, 255."""
    url = vroomd.url("ws").replace("/omux", "/not-here")
    result = run_vroom(vroomd, url, "--", "true")
    assert result.returncode == 255
    assert result.stderr.count(b"\n") == 1 and result.stderr.startswith(b"vroom: ")


def test_websocket_redirect_goes_to_the_asyncio_driver(vroomd: VroomdProcess) -> None:
    """A 3xx upgrade answer: handed over before anything was sent; websockets follows it."""
    target = vroomd.url("ws")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    stop = threading.Event()

    def answer() -> None:  # each client that asks: ours, then openmux.aio's two
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\n"
                             "Content-Length: 0\r\n\r\n".encode())  # fmt: skip

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        result = run_vroom(vroomd, f"ws://127.0.0.1:{port}/omux", "--", "echo", "moved")
    finally:
        stop.set()
        thread.join(10)
        listener.close()
    assert (result.returncode, result.stdout) == (0, b"moved\n"), result.stderr


# ------------------------------------------------------- in this process


@pytest.mark.parametrize("scheme", SCHEMES)
def test_credit_bookkeeping_in_process(
    vroomd: VroomdProcess, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver in this process, on pipes: 3 MiB in small writes through a
    raw `cat`; every byte back in order, the credit agrees with what arrived,
    part of it through the fast path."""
    from openmux.polled import PolledClient
    from vroom_terminal.termloop import PolledTermClient

    fast_taken = count_fast_bytes(monkeypatch, PolledClient)
    with CatPipes(f"polled-{scheme}") as pipes:
        client = PolledTermClient(
            vroomd.url(scheme), token=vroomd.token, command=["cat"], interactive=False,
            env={}, stdin=pipes.stdin, stdout=pipes.stdout,
        )  # fmt: skip
        code = client.run()
    assert code == 0
    pipes.check(client)
    assert fast_taken[0] > 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_polled_client_keepalive_and_nodelay(vroomd: VroomdProcess, scheme: str) -> None:
    """openmux.polled on its own: TCP_NODELAY set before the first byte, and
    the core's keepalive timer driven by a poll loop (PING out, PONG back)."""
    import _socket
    import select
    import time

    from openmux import PongReceived
    from openmux.polled import PolledClient

    client = PolledClient(vroomd.url(scheme), timeout=10)
    client.connect()
    try:
        assert client.sock is not None
        assert client.sock.getsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY)
        seen: list[object] = []
        client.start(seen.extend)
        timer = client.next_timer()  # the keepalive (vroomd's pingInterval, 30 s)
        assert timer is not None
        client.on_timer(timer)  # its moment (the core takes `now` as given): PING
        poller = select.poll()
        poller.register(client.fd, select.POLLIN)
        deadline = time.monotonic() + 20
        while not any(isinstance(e, PongReceived) for e in seen):
            assert time.monotonic() < deadline, seen
            if poller.poll(100):
                client.on_readable()
        assert not client.lost
        assert client.next_timer() is not None
    finally:
        client.shutdown(2.0)
    assert client.lost and client.sock is None


# ------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VroomdProcess, Path]]:
    """vroomd on tls:// and wss:// with its self-signed certificate, found by
    `vroom term` in vroomd's state dir (XDG_STATE_HOME), as the token."""
    xdg = tmp_path_factory.mktemp("xdg")
    proc = VroomdProcess(
        ["--listen", "tls://127.0.0.1:0", "--listen", "wss://127.0.0.1:0"], xdg / "vroomd"
    )
    proc.wait_for("ready; connect with")
    yield proc, xdg
    proc.stop()


@pytest.mark.parametrize("scheme", ["tls", "wss"])
def test_tls_without_asyncio(secure: tuple[VroomdProcess, Path], scheme: str,
                             tmp_path: Path) -> None:  # fmt: skip
    proc, xdg = secure
    env = {k: v for k, v in os.environ.items() if k not in ("VROOM_TOKEN", "VROOM_ASYNCIO")}
    env["XDG_STATE_HOME"] = str(xdg)
    report = tmp_path / "modules"
    data = bytes(range(256)) * 256
    code = (
        "import sys\n"
        "from vroom_terminal.cli import main\n"
        f"code = main(['term', {proc.url(scheme)!r}, '--', 'cat; exit 7'])\n"
        f"open({str(report)!r}, 'w').write(' '.join(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([PYTHON, "-c", code], input=data, capture_output=True,
                            timeout=60, env=env)  # fmt: skip
    assert result.returncode == 7, result.stderr
    assert result.stdout == data
    modules = report.read_text().split()
    assert "vroom_terminal.termloop" in modules and "asyncio" not in modules
