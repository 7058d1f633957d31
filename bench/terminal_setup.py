"""Session setup: from the client's process start to the first byte of the
remote login shell's prompt, on a client PTY. `vroom term URL` (WebSocket,
TCP) vs `ssh -tt`; median of RUNS. The client's own start-up counts.

Anchor `terminal_setup_login_shell`: the same login shell started locally on
a PTY (environment as vroomd builds it), process start to its first byte:
the part both remote figures pay and neither can shorten (this machine's
~/.bashrc runs `pyenv init`). `*_overhead_vs_ssh` compares what remains.

`terminal_setup_stock_*`: the same figures for a local user with Debian's
stock dotfiles (`useradd -m` copies /etc/skel), as on the fresh machine the
goal refers to: a second vroomd runs as that user, ssh logs in as that user
to the same sshd. Needs root (the user is created once, BENCH_STOCK_USER,
default `vroombench`, and left in place); otherwise skipped with a note.
The user's vroomd runs this interpreter from a hard-linked copy of its
prefix when the user cannot reach the original (pyenv's lives under /root).

Run: .venv/bin/python bench/terminal_setup.py
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _terminal import VROOM, OnPty, Vroomd, emit, servers

RUNS = int(os.environ.get("RUNS", "10"))
STOCK_USER = os.environ.get("BENCH_STOCK_USER", "vroombench")


def first_byte(
    argv: list[str],
    env: dict[str, str] | None = None,
    *,
    user: str | None = None,
    cwd: str | None = None,
) -> float:
    times = []
    for _ in range(RUNS):
        child = OnPty(argv, env, user=user, cwd=cwd)
        ready, _, _ = select.select([child.master], [], [], 30)
        if not ready:
            raise RuntimeError(f"{argv[0]}: no output")
        times.append(time.perf_counter() - child.started)
        os.read(child.master, 65536)
        child.close()
    return statistics.median(times) * 1000


def login_shell(user: str | None = None) -> float:
    entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
    shell = entry.pw_shell or "/bin/sh"
    env = {
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "SHELL": shell,
        "PATH": (
            "/usr/local/bin:/usr/bin:/bin"  # as vroomd gives a user other than root
            if entry.pw_uid
            else "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ),
        "TERM": "xterm-256color",
    }
    if user is None:
        return first_byte([shell, "-l"], env)
    return first_byte([shell, "-l"], env, user=user, cwd=entry.pw_dir)


def stock_user() -> str | None:
    """The local user with stock dotfiles, created on first use; None (and a
    note) when this process cannot create or switch to it."""
    if os.geteuid() != 0:
        print("# terminal_setup_stock_*: skipped (needs root to add a user)", file=sys.stderr)
        return None
    try:
        entry = pwd.getpwnam(STOCK_USER)
    except KeyError:
        useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
        if useradd is None:
            print("# terminal_setup_stock_*: skipped (no useradd)", file=sys.stderr)
            return None
        # `*`, not useradd's locked `!`: sshd without PAM refuses a locked account.
        comment = "VROOM benchmark user (stock dotfiles)"
        made = subprocess.run(
            [useradd, "-m", "-s", "/bin/bash", "-p", "*", "-c", comment, STOCK_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            why = made.stderr.strip().replace("\n", " ")
            print(f"# terminal_setup_stock_*: skipped (useradd: {why})", file=sys.stderr)
            return None
        entry = pwd.getpwnam(STOCK_USER)
    for name in (".bashrc", ".profile"):
        skel, home = Path("/etc/skel") / name, Path(entry.pw_dir) / name
        if skel.exists() and (not home.exists() or home.read_bytes() != skel.read_bytes()):
            print(f"# {STOCK_USER}: {home} is not /etc/skel's", file=sys.stderr)
    return STOCK_USER


@contextlib.contextmanager
def python_for(user: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """A command running this interpreter with this venv's packages as `user`,
    and the environment it needs. The same binary and files: when `user`
    cannot reach them (pyenv under a closed /root), a hard-linked copy of the
    prefix whose site-packages is a link to this venv's."""
    code = "import sys; from vroomd.cli import main; sys.exit(main())"
    entry = pwd.getpwnam(user)
    ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    try:
        reachable = not subprocess.run(
            [sys.executable, "-c", "import vroomd.cli"],
            cwd="/",
            capture_output=True,
            check=False,
            **ids,  # type: ignore[arg-type]
        ).returncode
    except OSError:  # cannot even execute it
        reachable = False
    if reachable:
        yield [sys.executable, "-c", code], {}
        return
    base = Path(sys.base_prefix)
    exe = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_path("stdlib"))
    copy = Path(tempfile.mkdtemp(prefix="vroomd-bench-python-"))
    try:
        os.chmod(copy, 0o755)

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        (copy / "bin").mkdir()
        link(str(exe), str(copy / "bin" / exe.name))
        (copy / "lib").mkdir()
        for lib in (base / "lib").glob("libpython*.so*"):
            link(str(lib), str(copy / "lib" / lib.name))
        shutil.copytree(
            stdlib,
            copy / stdlib.relative_to(base),
            symlinks=True,
            ignore=shutil.ignore_patterns("site-packages"),
            copy_function=link,
        )
        (copy / stdlib.relative_to(base) / "site-packages").symlink_to(
            sysconfig.get_path("purelib")
        )
        env = {"LD_LIBRARY_PATH": str(copy / "lib")}  # the binary's RUNPATH is under /root
        yield [str(copy / "bin" / exe.name), "-c", code], env
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def lingering(uid: int, wait: float = 5.0) -> list[int]:
    """Processes of `uid` still there after `wait` s (a session's sshd ends
    a little after the client that hung up); the bench leaves none behind."""
    deadline = time.monotonic() + wait
    while True:
        pids = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and entry.stat().st_uid == uid:
                    status = (entry / "status").read_text()
                    if "\nState:\tZ" not in status:
                        pids.append(int(entry.name))
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def stock(sshd_argv: list[str] | None, user: str) -> None:
    entry = pwd.getpwnam(user)
    with python_for(user) as (command, extra):
        env = {
            **os.environ,
            "HOME": entry.pw_dir,
            "USER": user,
            "LOGNAME": user,
            **extra,
        }
        vroomd = Vroomd(user=user, command=command, env=env)
        try:
            results = {}
            for scheme in ("ws", "tcp"):
                url = vroomd.url(scheme)
                results[scheme] = first_byte([VROOM, "term", url], vroomd.env())
                emit(f"terminal_setup_stock_vroom_term_{scheme}", results[scheme], "ms")
        finally:
            vroomd.stop()
    shell = login_shell(user)
    emit("terminal_setup_stock_login_shell", shell, "ms")
    if sshd_argv is None:
        return
    ssh = first_byte(sshd_argv)
    emit("terminal_setup_stock_ssh", ssh, "ms")
    left = lingering(entry.pw_uid)
    if left:
        print(f"# {user}: processes still running: {left}", file=sys.stderr)
    compare("terminal_setup_stock", results, shell, ssh)


def compare(prefix: str, results: dict[str, float], shell: float, ssh: float) -> None:
    """`vroom term`'s setup against ssh's: raw, and net of the login shell both pay."""
    for scheme, value in results.items():
        emit(f"{prefix}_vroom_term_{scheme}_vs_ssh", value / ssh, "x")
    if ssh - shell < 0.05 * ssh:
        # A load burst made the shell alone nearly as slow as ssh: no ratio to speak of.
        note = f"# {prefix}: shell {shell:.0f} ms vs ssh {ssh:.0f} ms: no overhead ratio"
        print(note, file=sys.stderr)
        return
    for scheme, value in results.items():
        emit(f"{prefix}_vroom_term_{scheme}_overhead_vs_ssh", (value - shell) / (ssh - shell), "x")


def main() -> None:
    user = stock_user()
    with servers(ssh_guest=user) as (vroomd, sshd):
        results = {}
        for scheme in ("ws", "tcp"):
            results[scheme] = first_byte([VROOM, "term", vroomd.url(scheme)], vroomd.env())
            emit(f"terminal_setup_vroom_term_{scheme}", results[scheme], "ms")
        shell = login_shell()
        emit("terminal_setup_login_shell", shell, "ms")
        if sshd is not None:
            ssh = first_byte(sshd.argv())
            emit("terminal_setup_ssh", ssh, "ms")
            compare("terminal_setup", results, shell, ssh)
        if user is not None:
            stock(sshd.argv(user=user) if sshd is not None else None, user)


if __name__ == "__main__":
    main()
