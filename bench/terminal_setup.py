"""Session setup: from the client's process start to the first byte of the
remote login shell's prompt, on a client PTY. `vroom term URL` (WebSocket,
TCP) vs `ssh -tt`; median of RUNS. The client's own start-up counts.

Anchor `terminal_setup_login_shell`: the same login shell started locally on
a PTY (environment as vroomd builds it), process start to its first byte:
the part both remote figures pay and neither can shorten (this machine's
~/.bashrc runs `pyenv init`). `*_overhead_vs_ssh` compares what remains.

Run: .venv/bin/python bench/terminal_setup.py
"""

from __future__ import annotations

import os
import pwd
import select
import statistics
import time

from _terminal import VROOM, OnPty, emit, servers

RUNS = int(os.environ.get("RUNS", "10"))


def first_byte(argv: list[str], env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(RUNS):
        child = OnPty(argv, env)
        ready, _, _ = select.select([child.master], [], [], 30)
        if not ready:
            raise RuntimeError(f"{argv[0]}: no output")
        times.append(time.perf_counter() - child.started)
        os.read(child.master, 65536)
        child.close()
    return statistics.median(times) * 1000


def login_shell() -> float:
    entry = pwd.getpwuid(os.getuid())
    shell = entry.pw_shell or "/bin/sh"
    env = {
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "SHELL": shell,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM": "xterm-256color",
    }
    return first_byte([shell, "-l"], env)


def main() -> None:
    with servers() as (vroomd, sshd):
        results = {}
        for scheme in ("ws", "tcp"):
            results[scheme] = first_byte([VROOM, "term", vroomd.url(scheme)], vroomd.env())
            emit(f"terminal_setup_vroom_term_{scheme}", results[scheme], "ms")
        shell = login_shell()
        emit("terminal_setup_login_shell", shell, "ms")
        if sshd is not None:
            ssh = first_byte(sshd.argv())
            emit("terminal_setup_ssh", ssh, "ms")
            for scheme, value in results.items():
                emit(f"terminal_setup_vroom_term_{scheme}_vs_ssh", value / ssh, "x")
            for scheme, value in results.items():
                emit(
                    f"terminal_setup_vroom_term_{scheme}_overhead_vs_ssh",
                    (value - shell) / max(ssh - shell, 1e-3),
                    "x",
                )


if __name__ == "__main__":
    main()
