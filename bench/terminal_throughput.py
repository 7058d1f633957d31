"""Bulk PTY output, `head -c 200M /dev/zero | base64` (~270 MB), drained by:

- a bare local PTY read by this process (the kernel tty layer's limit);
- `script -q -e -c CMD /dev/null` on a PTY: two PTYs joined by a C relay, the
  limit for any client that itself runs on a PTY;
- `vroom term -t URL -- CMD` on a PTY (WebSocket and TCP), vs `ssh -tt`;
- the client API with no PTY of its own (as a browser page), vs the bare PTY.

Each figure is MB/s (10^6 bytes) from the first output byte to the last,
best of RUNS rounds (every path once a round).
Run: RUNS=3 .venv/bin/python bench/terminal_throughput.py [MiB]
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable

from _terminal import VROOM, CountingClient, OnPty, emit, servers

SIZE_MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 200
RUNS = int(os.environ.get("RUNS", "2"))
CMD = f"head -c {SIZE_MIB}M /dev/zero | base64"
EXPECTED = (SIZE_MIB * 1024 * 1024 + 2) // 3 * 4
EXPECTED += -(-EXPECTED // 76) * 2  # "\r\n" after every 76 columns


def on_pty(argv: list[str], env: dict[str, str] | None = None) -> float:
    child = OnPty(argv, env)
    total, first, end = child.drain()
    child.close()
    if abs(total - EXPECTED) > 4096:
        raise RuntimeError(f"{argv[0]}: {total} bytes, expected {EXPECTED}")
    return total / (end - first) / 1e6


def api(url: str, token: str) -> float:
    total, first, end = asyncio.run(CountingClient(url, token, CMD).run())
    if abs(total - EXPECTED) > 4096:
        raise RuntimeError(f"client API: {total} bytes, expected {EXPECTED}")
    return total / (end - first) / 1e6


def main() -> None:
    with servers() as (vroomd, sshd):
        paths: dict[str, Callable[[], float]] = {
            "bare_pty": lambda: on_pty(["sh", "-c", CMD]),
            "two_pty_c_relay": lambda: on_pty(["script", "-q", "-e", "-c", CMD, "/dev/null"]),
        }
        for scheme in ("ws", "tcp"):
            argv = [VROOM, "term", "-t", vroomd.url(scheme), "--", CMD]
            paths[f"vroom_term_{scheme}"] = functools.partial(on_pty, argv, vroomd.env())
        if sshd is not None:
            paths["ssh_tt"] = functools.partial(on_pty, sshd.argv(CMD))
        for scheme in ("ws", "tcp"):
            paths[f"client_api_{scheme}"] = functools.partial(api, vroomd.url(scheme), vroomd.token)
        # Round by round, every path once a round, best of RUNS: a load that
        # comes and goes falls on every path alike, not on the ones measured
        # while it lasted.
        best = dict.fromkeys(paths, 0.0)
        for _ in range(RUNS):
            for name, measure in paths.items():
                best[name] = max(best[name], measure())
        bare, relay = best["bare_pty"], best["two_pty_c_relay"]
        emit("terminal_drain_bare_pty", bare, "MB/s")
        emit("terminal_drain_two_pty_c_relay", relay, "MB/s")
        for scheme in ("ws", "tcp"):
            rate = best[f"vroom_term_{scheme}"]
            emit(f"terminal_drain_vroom_term_{scheme}", rate, "MB/s")
            emit(f"terminal_drain_vroom_term_{scheme}_vs_relay", rate / relay, "x")
        if "ssh_tt" in best:
            emit("terminal_drain_ssh_tt", best["ssh_tt"], "MB/s")
            emit("terminal_drain_ssh_tt_vs_relay", best["ssh_tt"] / relay, "x")
        for scheme in ("ws", "tcp"):
            rate = best[f"client_api_{scheme}"]
            emit(f"terminal_drain_client_api_{scheme}", rate, "MB/s")
            emit(f"terminal_drain_client_api_{scheme}_vs_bare", rate / bare, "x")


if __name__ == "__main__":
    main()
