"""Bulk PTY output, `head -c 200M /dev/zero | base64` (~270 MB), drained by:

- a bare local PTY read by this process (the kernel tty layer's limit);
- `script -q -e -c CMD /dev/null` on a PTY: two PTYs joined by a C relay, the
  limit for any client that itself runs on a PTY;
- `vroom term -t URL -- CMD` on a PTY (WebSocket and TCP), vs `ssh -tt`;
- the client API with no PTY of its own (as a browser page), vs the bare PTY.

Each figure is MB/s (10^6 bytes) from the first output byte to the last,
best of RUNS. Run: .venv/bin/python bench/terminal_throughput.py [MiB]
"""

from __future__ import annotations

import asyncio
import os
import sys

from _terminal import VROOM, CountingClient, OnPty, emit, servers

SIZE_MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 200
RUNS = int(os.environ.get("RUNS", "2"))
CMD = f"head -c {SIZE_MIB}M /dev/zero | base64"
EXPECTED = (SIZE_MIB * 1024 * 1024 + 2) // 3 * 4
EXPECTED += -(-EXPECTED // 76) * 2  # "\r\n" after every 76 columns


def on_pty(argv: list[str], env: dict[str, str] | None = None) -> float:
    best = 0.0
    for _ in range(RUNS):
        child = OnPty(argv, env)
        total, first, end = child.drain()
        child.close()
        if abs(total - EXPECTED) > 4096:
            raise RuntimeError(f"{argv[0]}: {total} bytes, expected {EXPECTED}")
        best = max(best, total / (end - first) / 1e6)
    return best


def api(url: str, token: str) -> float:
    best = 0.0
    for _ in range(RUNS):
        total, first, end = asyncio.run(CountingClient(url, token, CMD).run())
        if abs(total - EXPECTED) > 4096:
            raise RuntimeError(f"client API: {total} bytes, expected {EXPECTED}")
        best = max(best, total / (end - first) / 1e6)
    return best


def main() -> None:
    with servers() as (vroomd, sshd):
        bare = on_pty(["sh", "-c", CMD])
        emit("terminal_drain_bare_pty", bare, "MB/s")
        relay = on_pty(["script", "-q", "-e", "-c", CMD, "/dev/null"])
        emit("terminal_drain_two_pty_c_relay", relay, "MB/s")
        for scheme in ("ws", "tcp"):
            rate = on_pty([VROOM, "term", "-t", vroomd.url(scheme), "--", CMD], vroomd.env())
            emit(f"terminal_drain_vroom_term_{scheme}", rate, "MB/s")
            emit(f"terminal_drain_vroom_term_{scheme}_vs_relay", rate / relay, "x")
        if sshd is not None:
            ssh = on_pty(sshd.argv(CMD))
            emit("terminal_drain_ssh_tt", ssh, "MB/s")
            emit("terminal_drain_ssh_tt_vs_relay", ssh / relay, "x")
        for scheme in ("ws", "tcp"):
            rate = api(vroomd.url(scheme), vroomd.token)
            emit(f"terminal_drain_client_api_{scheme}", rate, "MB/s")
            emit(f"terminal_drain_client_api_{scheme}_vs_bare", rate / bare, "x")


if __name__ == "__main__":
    main()
