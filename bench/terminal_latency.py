"""Keystroke echo latency: one byte at a time into `stty raw -echo; cat`,
read back, 2,000 keystrokes per path, the paths interleaved key by key;
p50 and p99 in microseconds.

- bare: `cat` on a local PTY (the kernel's round trip);
- vroom term (WebSocket, TCP) on a client PTY, vs `ssh -tt` on a client PTY.

Run: .venv/bin/python bench/terminal_latency.py [keystrokes]
"""

from __future__ import annotations

import sys

from _terminal import ECHO_REMOTE, VROOM, OnPty, emit, one_key, ready, servers

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
REMOTE = ECHO_REMOTE


def interleaved(children: dict[str, OnPty]) -> dict[str, tuple[float, float]]:
    """Every path gets keystroke i before any gets i + 1, the order rotating
    each time: a load that comes and goes on this shared machine then falls
    on all of them alike instead of on whichever was measured at the time."""
    names = list(children)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(KEYS + 50):
        key = bytes([97 + i % 26])
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = one_key(children[name].master, key)
            if i >= 50:  # warm-up
                samples[name].append(elapsed)
    result = {}
    for name, values in samples.items():
        children[name].close()
        values.sort()
        result[name] = (values[len(values) // 2], values[int(len(values) * 0.99)])
    return result


def main() -> None:
    with servers() as (vroomd, sshd):
        children = {"bare_pty": ready(OnPty(["sh", "-c", REMOTE]))}
        for scheme in ("ws", "tcp"):
            argv = [VROOM, "term", "-t", vroomd.url(scheme), "--", REMOTE]
            children[f"vroom_term_{scheme}"] = ready(OnPty(argv, vroomd.env()))
        if sshd is not None:
            children["ssh_tt"] = ready(OnPty(sshd.argv(REMOTE)))
        results = interleaved(children)
        for name, (p50, p99) in results.items():
            emit(f"terminal_echo_{name}_p50", p50, "us")
            emit(f"terminal_echo_{name}_p99", p99, "us")
        if "ssh_tt" in results:
            for scheme in ("ws", "tcp"):
                ratio = results[f"vroom_term_{scheme}"][0] / results["ssh_tt"][0]
                emit(f"terminal_echo_vroom_term_{scheme}_p50_vs_ssh", ratio, "x")


if __name__ == "__main__":
    main()
