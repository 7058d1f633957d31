"""Keystroke echo latency: one byte at a time into `stty raw -echo; cat`,
read back, 2,000 keystrokes; p50 and p99 in microseconds.

- bare: `cat` on a local PTY (the kernel's round trip);
- vroom term (WebSocket, TCP) on a client PTY, vs `ssh -tt` on a client PTY.

Run: .venv/bin/python bench/terminal_latency.py [keystrokes]
"""

from __future__ import annotations

import os
import select
import sys
import time

from _terminal import VROOM, OnPty, emit, servers

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
REMOTE = "stty raw -echo; echo READY; exec cat"


def echo_latency(child: OnPty) -> tuple[float, float]:
    child.read_until(b"READY")
    time.sleep(0.2)
    # swallow whatever followed READY (the line end)
    while select.select([child.master], [], [], 0.1)[0]:
        os.read(child.master, 65536)
    fd = child.master
    samples: list[float] = []
    for i in range(KEYS + 50):
        key = bytes([97 + i % 26])
        start = time.perf_counter_ns()
        os.write(fd, key)
        got = b""
        while not got:
            select.select([fd], [], [])
            got = os.read(fd, 64)
        elapsed = time.perf_counter_ns() - start
        if got != key:
            raise RuntimeError(f"sent {key!r}, got {got!r}")
        if i >= 50:  # warm-up
            samples.append(elapsed / 1000)
    child.close()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def main() -> None:
    with servers() as (vroomd, sshd):
        p50, p99 = echo_latency(OnPty(["sh", "-c", REMOTE]))
        emit("terminal_echo_bare_pty_p50", p50, "us")
        emit("terminal_echo_bare_pty_p99", p99, "us")
        results = {}
        for scheme in ("ws", "tcp"):
            argv = [VROOM, "term", "-t", vroomd.url(scheme), "--", REMOTE]
            results[scheme] = echo_latency(OnPty(argv, vroomd.env()))
            emit(f"terminal_echo_vroom_term_{scheme}_p50", results[scheme][0], "us")
            emit(f"terminal_echo_vroom_term_{scheme}_p99", results[scheme][1], "us")
        if sshd is not None:
            ssh = echo_latency(OnPty(sshd.argv(REMOTE)))
            emit("terminal_echo_ssh_tt_p50", ssh[0], "us")
            emit("terminal_echo_ssh_tt_p99", ssh[1], "us")
            for scheme, (p50, _) in results.items():
                emit(f"terminal_echo_vroom_term_{scheme}_p50_vs_ssh", p50 / ssh[0], "x")


if __name__ == "__main__":
    main()
