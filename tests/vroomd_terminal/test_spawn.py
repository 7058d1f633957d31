"""vroomd starts session programs with posix_spawn (vroomd/spawn.py) where
glibc allows, else with subprocess + preexec_fn: the child must not be able
to tell which. Both paths run here on real PTYs and report the same state."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest
from test_pty import ENV, Collector
from vroomd import spawn
from vroomd.pty import PtySession

PROBE = r"""
import os
fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))
print('sid', os.getsid(0) == os.getpid(), 'fg', os.tcgetpgrp(1) == os.getpgrp())
print('tty', os.ttyname(1), 'stdin-tty', os.isatty(0))
print('cwd', os.getcwd(), '')
print('fds', fds[:3], len(fds))
print('env', sorted(k for k in os.environ if k in ('PATH', 'TERM', 'LANG', 'VROOM_X')))
"""


@pytest.fixture(params=["posix_spawn", "subprocess"])
def spawn_path(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "posix_spawn" and not spawn.available():
        pytest.skip("no glibc >= 2.34 here")
    saved = spawn._libc
    if request.param == "subprocess":
        spawn._libc = False
    try:
        yield str(request.param)
    finally:
        spawn._libc = saved


async def probe(raw: bool, tmp_path: object) -> str:
    session = PtySession(
        # grep inherits what the spawned shell got (Python itself ignores SIGPIPE)
        ["sh", "-c", 'grep SigIgn /proc/self/status; exec "$0" -c "$1"', sys.executable, PROBE],
        env={**ENV, "VROOM_X": "1"},
        cwd=str(tmp_path),
        raw=raw,
    )
    out = Collector(session)
    session.start()
    if raw:
        session.send_eof()
    status = await session.wait()
    assert status.code == 0, bytes(out.data)
    return bytes(out.data).decode().replace("\r\n", "\n")


@pytest.mark.parametrize("raw", [False, True])
async def test_the_child_sees_the_same_either_way(
    spawn_path: str, raw: bool, tmp_path: object
) -> None:
    text = await probe(raw, tmp_path)
    assert "sid True fg True" in text
    assert "tty /dev/pts/" in text
    assert f"stdin-tty {not raw}" in text
    assert f"cwd {tmp_path} " in text
    assert "fds [0, 1, 2] 4" in text  # 0-2 and the directory being listed
    ignored = int(text.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))
    assert "env ['LANG', 'PATH', 'TERM', 'VROOM_X']" in text


async def test_login_shell_argv0_and_path_search(spawn_path: str) -> None:
    # vroomd starts a login shell as argv ["-sh"] with executable=the shell
    session = PtySession(["-sh"], executable="sh", env=ENV, cwd="/")
    out = Collector(session)
    session.start()
    session.write(b'echo "zero=$0"; exit 3\n')
    status = await session.wait()
    assert status.code == 3
    assert b"zero=-sh" in out.data


async def test_missing_program_is_an_oserror(spawn_path: str) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for argv in (["/nonexistent/program"], ["no-such-program-here"]):
        with pytest.raises(OSError):
            PtySession(argv, env=ENV, cwd="/").start()
    with pytest.raises(OSError):
        PtySession(["sh"], env=ENV, cwd="/nonexistent-dir").start()
    assert len(os.listdir("/proc/self/fd")) == before
