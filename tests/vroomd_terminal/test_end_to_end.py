"""The whole stack with real programs: vroomd on real sockets, real PTYs,
`vroom term` as a subprocess (on a real PTY via pexpect where a user's
terminal matters) or the client API. Run over WebSocket and TCP, and the
`vroom term` checks with both of its drivers: the asyncio-free default
("polled") and asyncio (`VROOM_ASYNCIO=1`, what quic:// and proxies use)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pyte
import pytest
from vterm_support import VROOM, ApiClient, VroomdProcess

SCHEMES = ["ws", "tcp"]
DRIVERS = ["polled", "asyncio"]
PROMPT = r"[#$] $"


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def vroom_env(vroomd: VroomdProcess, driver: str = "polled", **extra: str) -> dict[str, str]:
    env = {**os.environ, "VROOM_TOKEN": vroomd.token, "TERM": "xterm-256color", **extra}
    env.pop("VROOMD_TEST_SECRET", None)
    env.pop("VROOM_ASYNCIO", None)
    if driver == "asyncio":
        env["VROOM_ASYNCIO"] = "1"
    return env


def run_vroom(
    vroomd: VroomdProcess,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [VROOM, "term", *args],
        input=input,
        capture_output=True,
        env=env or vroom_env(vroomd),
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def spawn_interactive(vroomd: VroomdProcess, url: str, *extra: str, rows: int = 24,
                      cols: int = 80, driver: str = "polled") -> pexpect.spawn:  # fmt: skip
    child = pexpect.spawn(
        VROOM, ["term", *extra, url], env=vroom_env(vroomd, driver), dimensions=(rows, cols),
        timeout=30,
    )  # fmt: skip
    return child


# ------------------------------------------------------------------ shell


@pytest.mark.parametrize("scheme", SCHEMES)
def test_prompt_appears_and_the_shell_works(vroomd: VroomdProcess, scheme: str,
                                            driver: str) -> None:  # fmt: skip
    child = spawn_interactive(vroomd, vroomd.url(scheme), driver=driver)
    child.expect(PROMPT)
    child.send("echo $((6*7))-$TERM\r")
    child.expect("42-xterm-256color")
    child.expect(PROMPT)
    child.send("exit 3\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


@pytest.mark.parametrize("scheme", SCHEMES)
def test_resize_reaches_stty(vroomd: VroomdProcess, scheme: str, driver: str) -> None:
    child = spawn_interactive(vroomd, vroomd.url(scheme), rows=30, cols=100, driver=driver)
    child.expect(PROMPT)
    child.send("stty size\r")
    child.expect("30 100")
    child.expect(PROMPT)
    child.setwinsize(40, 132)  # SIGWINCH to vroom term -> WINDOW_RESIZE
    child.send("stty size\r")
    child.expect("40 132")
    child.send("exit 5\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5


def test_ctrl_c_byte_interrupts_sleep(vroomd: VroomdProcess) -> None:
    child = spawn_interactive(vroomd, vroomd.url("ws"))
    child.expect(PROMPT)
    child.send("sleep 100\r")
    child.expect("sleep 100")
    child.send("\x03")
    child.expect(PROMPT)
    child.send("echo after-$?\r")
    child.expect("after-130")
    child.send("exit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # the same on a PTY for a command (-t): the command dies of SIGINT
    child = pexpect.spawn(VROOM, ["term", "-t", vroomd.url("tcp"), "--", "echo go; sleep 100"],
                          env=vroom_env(vroomd), timeout=30)  # fmt: skip
    child.expect("go")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


def test_local_terminal_restored(vroomd: VroomdProcess, tmp_path: Path) -> None:
    """vroom term puts the local terminal in raw mode and restores it."""
    script = tmp_path / "check.sh"
    script.write_text(
        f'stty -g > {tmp_path}/before\n'
        f'"{VROOM}" term -t "$1" -- "exit 7"\n'
        f'echo "rc=$?"\n'
        f'stty -g > {tmp_path}/after\n'
    )  # fmt: skip
    child = pexpect.spawn("sh", [str(script), vroomd.url("ws")], env=vroom_env(vroomd),
                          timeout=30)  # fmt: skip
    child.expect("rc=7")
    child.expect(pexpect.EOF)
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()


def test_less_is_drawn_correctly(vroomd: VroomdProcess, tmp_path: Path) -> None:
    text = tmp_path / "numbers.txt"
    text.write_text("".join(f"line {i:04d} of the file\n" for i in range(1, 500)))
    screen = pyte.Screen(80, 24)
    stream = pyte.ByteStream(screen)
    child = spawn_interactive(vroomd, vroomd.url("ws"), "-t", rows=24, cols=80)
    child.expect(PROMPT)
    child.send(f"less {text}\r")

    def pump_until(predicate: object) -> None:
        for _ in range(200):
            if predicate():  # type: ignore[operator]
                return
            try:
                stream.feed(child.read_nonblocking(65536, timeout=0.2))
            except pexpect.TIMEOUT:
                continue
        raise AssertionError("\n".join(screen.display))

    pump_until(lambda: screen.display[0].startswith("line 0001 of the file")
               and screen.display[22].startswith("line 0023 of the file"))  # fmt: skip
    child.send(" ")  # next page
    pump_until(lambda: screen.display[0].startswith("line 0024 of the file"))
    assert screen.display[22].startswith("line 0046 of the file")
    child.send("q")
    pump_until(lambda: any(row.rstrip().endswith(("#", "$")) for row in screen.display))
    child.send("exit\r")
    child.expect(pexpect.EOF)


# ------------------------------------------------------------------- exec


@pytest.mark.parametrize("scheme", SCHEMES)
def test_exit_codes_and_signals(vroomd: VroomdProcess, scheme: str, driver: str) -> None:
    url = vroomd.url(scheme)
    for command, code in [("true", 0), ("false", 1), ("exit 42", 42), ("kill -KILL $$", 137),
                          ("kill -TERM $$", 143)]:  # fmt: skip
        result = run_vroom(vroomd, url, "--", command, env=vroom_env(vroomd, driver))
        assert (result.returncode, result.stderr) == (code, b""), command


@pytest.mark.parametrize("scheme", SCHEMES)
def test_all_256_byte_values_through_cat(vroomd: VroomdProcess, scheme: str,
                                         driver: str) -> None:  # fmt: skip
    payload = bytes(range(256)) * 512 + b"\r\n\x04\x03\x1a\x7f\x00" + bytes(range(255, -1, -1))
    result = run_vroom(vroomd, vroomd.url(scheme), "--", "cat", input=payload,
                       env=vroom_env(vroomd, driver))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload
    assert result.stderr == b""


def test_printf_of_all_bytes(vroomd: VroomdProcess) -> None:
    escapes = "".join(f"\\{b:03o}" for b in range(256))
    result = run_vroom(vroomd, vroomd.url("ws"), "--", f"printf '{escapes}'")
    assert result.returncode == 0
    assert result.stdout == bytes(range(256))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_stdin_eof_reaches_the_command(vroomd: VroomdProcess, scheme: str, driver: str,
                                       tmp_path: Path) -> None:  # fmt: skip
    env = vroom_env(vroomd, driver)
    url = vroomd.url(scheme)
    result = run_vroom(vroomd, url, "--", "wc -c; echo end", input=b"x" * 100_000, env=env)
    assert (result.returncode, result.stdout.split()) == (0, [b"100000", b"end"])
    # a regular file and /dev/null on stdin (poll() reports them always readable)
    path = tmp_path / "in"
    path.write_bytes(b"abc\n" * 5000)
    with path.open("rb") as fp:
        out = subprocess.run([VROOM, "term", url, "--", "sha1sum"], stdin=fp,
                             capture_output=True, env=env, timeout=60)  # fmt: skip
    assert out.stdout.split()[0].decode() == hashlib.sha1(b"abc\n" * 5000).hexdigest()
    empty = run_vroom(vroomd, url, "--", "cat", env=env)  # stdin is /dev/null
    assert empty.returncode == 0 and empty.stdout == b""


@pytest.mark.parametrize("scheme", SCHEMES)
def test_50_megabytes_in_order_with_a_slow_reader(vroomd: VroomdProcess, scheme: str,
                                                  driver: str) -> None:  # fmt: skip
    size = 50 * 1024 * 1024
    reader = (
        "import hashlib, sys, time\n"
        "h = hashlib.sha256(); n = 0\n"
        "while True:\n"
        "    chunk = sys.stdin.buffer.read(1 << 20)\n"
        "    if not chunk: break\n"
        "    h.update(chunk); n += len(chunk)\n"
        "    if n < 8 << 20: time.sleep(0.02)\n"  # slow at first: the window fills
        "print(n, h.hexdigest())\n"
    )
    env = vroom_env(vroomd, driver)
    with subprocess.Popen([VROOM, "term", vroomd.url(scheme), "--", f"yes | head -c {size}"],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env) as vroom, \
         subprocess.Popen([sys.executable, "-c", reader], stdin=vroom.stdout,
                          stdout=subprocess.PIPE) as check:  # fmt: skip
        assert vroom.stdout is not None
        vroom.stdout.close()
        out, _ = check.communicate(timeout=120)
        assert vroom.wait(60) == 0
    expected = hashlib.sha256(b"y\n" * (size // 2)).hexdigest()
    assert out.decode().split() == [str(size), expected]


def test_env_allow_list(vroomd: VroomdProcess) -> None:
    result = run_vroom(
        vroomd, "-e", "LANG=C.UTF-8", "-e", "LC_TIME=C", "-e", "FOO=bar", "-e", "LD_PRELOAD=x",
        vroomd.url("ws"), "--",
        'echo "[$LANG|$LC_TIME|${FOO-unset}|${LD_PRELOAD-unset}|${VROOMD_TEST_SECRET-unset}]"',
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.strip() == b"[C.UTF-8|C|unset|unset|unset]"
    assert b"FOO" in result.stderr and b"LD_PRELOAD" in result.stderr


def test_wrong_token_refused(vroomd: VroomdProcess, driver: str) -> None:
    env = vroom_env(vroomd, driver, VROOM_TOKEN="not-the-token")
    for scheme in SCHEMES:
        url = vroomd.url(scheme)
        result = run_vroom(vroomd, url, "--", "true", env=env)
        assert result.returncode == 255
        assert result.stderr == f"vroom: {url}: authentication refused\n".encode()


def test_cannot_connect_is_one_line() -> None:
    result = subprocess.run([VROOM, "term", "tcp://127.0.0.1:1", "--", "true"],
                            capture_output=True, timeout=30)  # fmt: skip
    assert result.returncode == 255
    assert result.stderr == b"vroom: cannot connect to tcp://127.0.0.1:1: Connection refused\n"


# -------------------------------------------------------------- client API


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_signal_interrupts_sleep(vroomd: VroomdProcess, scheme: str) -> None:
    api = await ApiClient.connect(vroomd.url(scheme), vroomd.token)
    api.open(command="echo ready; exec sleep 100")
    await api.wait_output("", b"ready")
    api.client.signal("INT")
    api.flush()
    state = await api.wait_exit()
    assert state.exit == (None, "INT", False)
    await api.close()


async def test_two_sessions_on_one_connection(vroomd: VroomdProcess) -> None:
    api = await ApiClient.connect(vroomd.url("ws"), vroomd.token)
    one = api.open("", command="for i in 1 2 3; do echo one-$i; done; exit 3")
    two = api.open("#2", command="for i in 1 2 3; do echo two-$i; done; exit 4")
    await api.wait_exit("")
    await api.wait_exit("#2")
    assert one.exit == (3, None, False) and two.exit == (4, None, False)
    assert one.output == b"one-1\r\none-2\r\none-3\r\n"
    assert two.output == b"two-1\r\ntwo-2\r\ntwo-3\r\n"
    await api.close()


async def test_out_of_state_messages_get_409(vroomd: VroomdProcess) -> None:
    from vroom_terminal.codec import MessageType
    from vroom_terminal.messages import ShellRequest, encode_message

    api = await ApiClient.connect(vroomd.url("ws"), vroomd.token)
    state = api.open(command="exit 0", start=False)
    await api.until("", lambda s: s.ready)
    sess = api.client.sessions[""]
    # EXEC once is fine; a SHELL after it is out of state (the command waits
    # for a line, so the session is surely live when the SHELL arrives)
    api.client.exec("read line; exit 0")
    api.flush()
    mtype, tlv = encode_message(ShellRequest(), sess.encoding)
    api.session.connection.send_message(sess.control_id, mtype, tlv)
    api.flush()
    await api.until("", lambda s: s.errors)
    assert state.errors[0][0] == 409 and not state.errors[0][2], state.events
    await api.until("", lambda s: s.ready and api.client.sessions[""].pty_id is not None)
    api.send(b"\n")
    await api.wait_exit()
    assert state.exit == (0, None, False), state.events
    assert mtype == MessageType.SHELL_REQUEST & 0xFF
    await api.close()


async def test_flow_control_window_is_never_exceeded(vroomd: VroomdProcess) -> None:
    window = 64 * 1024
    api = await ApiClient.connect(vroomd.url("tcp"), vroomd.token, window=window)
    state = api.open(command="head -c 1000000 /dev/zero; exit 5", raw=True)
    state.auto_ack = False
    await api.until("", lambda s: len(s.output) >= window)
    for _ in range(5):  # the server now waits for acknowledgements
        await api.session.ping()
    assert len(state.output) == window
    state.auto_ack = True
    api.client.ack(len(state.output))
    api.flush()
    await api.wait_exit()
    assert len(state.output) == 1_000_000 and state.exit == (5, None, False)
    await api.close()


async def test_connection_close_hangs_up_the_session(vroomd: VroomdProcess) -> None:
    import asyncio

    api = await ApiClient.connect(vroomd.url("ws"), vroomd.token)
    state = api.open(command="echo pid=$$; exec sleep 100")
    await api.wait_output("", b"\r\n")
    pid = int(bytes(state.output).split(b"pid=")[1].split()[0])
    assert os.path.exists(f"/proc/{pid}")
    await api.close()
    async with asyncio.timeout(20):
        while os.path.exists(f"/proc/{pid}"):
            await asyncio.sleep(0.05)
    # logged before the SIGHUP, but read from vroomd's stderr by a thread
    # that a loaded machine may leave behind: wait for it
    vroomd.wait_for(r"hanging up")


def test_limits_answer_503(tmp_path: Path) -> None:
    """Over --max-sessions / --max-connections the client gets 503, never a hang."""
    proc = VroomdProcess(
        ["--listen", "tcp://127.0.0.1:0", "--max-sessions", "1", "--max-connections", "2"],
        tmp_path / "state",
    )
    try:
        url = proc.url("tcp")
        env = {**os.environ, "VROOM_TOKEN": proc.token}
        first = subprocess.Popen(
            [VROOM, "term", url, "--", "echo up; exec sleep 60"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert first.stdout is not None
        assert first.stdout.readline() == b"up\n"
        second = subprocess.run([VROOM, "term", url, "--", "true"], capture_output=True,
                                env=env, timeout=30)  # fmt: skip
        assert second.returncode == 255
        assert b"server limit: 1 sessions" in second.stderr
        # a second connection (idle, OpenMux only) is fine; the third is refused
        code = (
            "import asyncio, openmux.aio\n"
            "async def main():\n"
            f"    session = await openmux.aio.connect({url!r})\n"
            "    print('connected', flush=True)\n"
            "    await asyncio.sleep(60)\n"
            "asyncio.run(main())\n"
        )
        holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"connected\n"
        third = subprocess.run([VROOM, "term", url, "--", "true"], capture_output=True,
                               env=env, timeout=30)  # fmt: skip
        holder.kill()
        holder.wait()
        first.kill()
        first.wait()
        assert third.returncode == 255
        assert b"server limit: 2 connections" in third.stderr, third.stderr
    finally:
        proc.stop()
