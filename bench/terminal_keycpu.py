"""CPU time per keystroke echo, per process: what latency costs under load.

Wall-clock echo latency on a shared 2-core box mostly measures how long a
process waits for a core, which depends on everyone else; the CPU each side
spends per keystroke does not, and it is what decides that wait. Same
keystrokes as bench/terminal_latency.py (one byte into `stty raw -echo;
cat`, wait for its echo), but the figure is the CPU time (`/proc/PID/
schedstat`, all threads) of `vroom term` and of vroomd over the keys,
divided by their number; `ssh -tt`'s client for comparison (sshd forks a
process per session, not measured).

`BENCH_ASYNCIO=1` also measures `vroom term`'s asyncio driver
(`VROOM_ASYNCIO=1`; the default for tcp:// and ws:// has no asyncio) in
the same rounds, as `*_tcp_asyncio` / `*_ws_asyncio`.

Run: .venv/bin/python bench/terminal_keycpu.py [keystrokes] [rounds]
(medians over the rounds; a session over each transport first as warm-up:
the first sessions a fresh vroomd serves cost it more, whichever the
transport; the order of the transports alternates from round to round)
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Any

from _terminal import ECHO_REMOTE, VROOM, OnPty, emit, one_key, ready, servers

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
REMOTE = ECHO_REMOTE
PATHS = ["tcp", "ws"] + (["tcp_asyncio", "ws_asyncio"] if os.environ.get("BENCH_ASYNCIO") else [])


def client(vroomd: Any, path: str) -> OnPty:
    scheme, _, driver = path.partition("_")
    env = vroomd.env()
    env.pop("VROOM_ASYNCIO", None)
    if driver:
        env["VROOM_ASYNCIO"] = "1"
    return OnPty([VROOM, "term", "-t", vroomd.url(scheme), "--", REMOTE], env)


def cpu_ns(pid: int) -> int:
    """On-CPU time of every thread of `pid`, in ns."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def keys(child: OnPty, count: int) -> list[float]:
    return [one_key(child.master, bytes([97 + i % 26])) for i in range(count)]


def measure(child: OnPty, pids: list[int], count: int = KEYS) -> tuple[list[float], float]:
    ready(child)
    keys(child, 50)  # warm-up
    before = [cpu_ns(pid) for pid in pids]
    samples = keys(child, count)
    after = [cpu_ns(pid) for pid in pids]
    child.close()
    samples.sort()
    return [(a - b) / count / 1000 for a, b in zip(after, before, strict=True)], samples[
        len(samples) // 2
    ]


def main() -> None:
    results: dict[str, list[tuple[list[float], float]]] = {}
    with servers() as (vroomd, sshd):
        for path in PATHS:  # warm-up, not counted
            child = client(vroomd, path)
            measure(child, [child.proc.pid], 300)
        for round_ in range(ROUNDS):
            for scheme in PATHS if round_ % 2 == 0 else PATHS[::-1]:
                child = client(vroomd, scheme)
                results.setdefault(scheme, []).append(
                    measure(child, [child.proc.pid, vroomd.proc.pid])
                )
            if sshd is not None:
                child = OnPty(sshd.argv(REMOTE))
                results.setdefault("ssh", []).append(measure(child, [child.proc.pid]))
    for scheme in PATHS:
        runs = results[scheme]
        emit(
            f"terminal_key_cpu_client_{scheme}",
            statistics.median(r[0][0] for r in runs),
            "us",
        )
        emit(
            f"terminal_key_cpu_vroomd_{scheme}",
            statistics.median(r[0][1] for r in runs),
            "us",
        )
        emit(f"terminal_key_echo_p50_{scheme}", statistics.median(r[1] for r in runs), "us")
    if "ssh" in results:
        runs = results["ssh"]
        emit("terminal_key_cpu_client_ssh", statistics.median(r[0][0] for r in runs), "us")
        emit("terminal_key_echo_p50_ssh", statistics.median(r[1] for r in runs), "us")


if __name__ == "__main__":
    main()
