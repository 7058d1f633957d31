"""Session setup: from the client's process start to the first byte of the
remote login shell's prompt, on a client PTY. `vroom term URL` (WebSocket,
TCP) vs `ssh -tt`; median of RUNS. The client's own start-up counts.

Run: .venv/bin/python bench/terminal_setup.py
"""

from __future__ import annotations

import os
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


def main() -> None:
    with servers() as (vroomd, sshd):
        results = {}
        for scheme in ("ws", "tcp"):
            results[scheme] = first_byte([VROOM, "term", vroomd.url(scheme)], vroomd.env())
            emit(f"terminal_setup_vroom_term_{scheme}", results[scheme], "ms")
        if sshd is not None:
            ssh = first_byte(sshd.argv())
            emit("terminal_setup_ssh", ssh, "ms")
            for scheme, value in results.items():
                emit(f"terminal_setup_vroom_term_{scheme}_vs_ssh", value / ssh, "x")


if __name__ == "__main__":
    main()
