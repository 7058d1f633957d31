"""User-space instructions per keystroke echo in the `vroom term` client,
counted by valgrind (callgrind): repeatable under any load, unlike time.

The client runs under `valgrind --tool=callgrind --instr-atstart=no` on a
PTY (as bench/terminal_keycpu.py: one byte into `stty raw -echo; cat`, wait
for its echo); collection is switched on (`callgrind_control -i on`) after
50 keys of warm-up, around KEYS keys, and the total is divided by KEYS.
The kernel's share (syscalls) is not in these figures. Both drivers in one
run: the default (asyncio-free, `vroom_terminal.termloop`) and the asyncio
one (`VROOM_ASYNCIO=1`), over TCP and WebSocket. Also the instructions of
a whole `vroom term URL -- true` (`terminal_run_instr_*`: start-up, the
session, exit), what session set-up costs in CPU whatever the load. And
vroomd's side of the same keystrokes (`terminal_key_instr_vroomd_*`): a
second vroomd runs under callgrind, the client natively; its counters are
zeroed before and dumped after each transport's keys.
The client's busy-poll after a keystroke (termloop) is switched off
(`VROOM_BUSY_POLL_US=0`): how often it spins depends on time, not code.

Run: .venv/bin/python bench/terminal_keyinstr.py [keys]    (needs valgrind)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _terminal import ECHO_REMOTE, VROOMD, OnPty, Vroomd, emit, one_key, ready, servers

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def instructions(url: str, env: dict[str, str], out: Path) -> float:
    argv = [
        "valgrind", "-q", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out}", sys.executable, "-m", "vroom_terminal.cli",
        "term", "-t", url, "--", ECHO_REMOTE,
    ]  # fmt: skip
    child = OnPty(argv, env)
    ready(child)
    pid = str(child.proc.pid)
    for i in range(50):
        one_key(child.master, bytes([97 + i % 26]))
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    time.sleep(0.5)
    for i in range(KEYS):
        one_key(child.master, bytes([97 + i % 26]))
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
    child.close()
    text = out.read_text(errors="replace")
    match = re.search(r"^totals: (\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no totals in {out}")
    return int(match.group(1)) / KEYS


def vroomd_instructions(tmp: Path) -> dict[str, float]:
    """vroomd's instructions per keystroke echo, over TCP and WebSocket."""
    out = tmp / "vroomd.out"
    command = [
        "valgrind", "-q", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out}", sys.executable, VROOMD,
    ]  # fmt: skip
    vroomd = Vroomd(command=command)
    counts: dict[str, float] = {}
    try:
        pid = str(vroomd.proc.pid)
        for n, scheme in enumerate(("tcp", "ws"), 1):
            env = {**vroomd.env(), "VROOM_BUSY_POLL_US": "0"}
            argv = [sys.executable, "-m", "vroom_terminal.cli", "term", "-t", vroomd.url(scheme),
                    "--", ECHO_REMOTE]  # fmt: skip
            child = OnPty(argv, env)
            try:
                ready(child)
                for i in range(50):
                    one_key(child.master, bytes([97 + i % 26]))
                for control in (["-z"], ["-i", "on"]):
                    subprocess.run(["callgrind_control", *control, pid], check=True,
                                   capture_output=True)  # fmt: skip
                for i in range(KEYS):
                    one_key(child.master, bytes([97 + i % 26]))
                for control in (["-i", "off"], ["-d"]):
                    subprocess.run(["callgrind_control", *control, pid], check=True,
                                   capture_output=True)  # fmt: skip
            finally:
                child.close()
            dump = Path(f"{out}.{n}")
            match = re.search(r"^totals: (\d+)", dump.read_text(errors="replace"), re.M)
            if match is None:
                raise RuntimeError(f"no totals in {dump}")
            counts[scheme] = int(match.group(1)) / KEYS
    finally:
        vroomd.stop()
    return counts


def startup(url: str, env: dict[str, str], out: Path) -> int:
    """Instructions of a whole `vroom term URL -- true`: start-up, session, exit."""
    argv = [
        "valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "vroom_terminal.cli", "term", url, "--", "true",
    ]  # fmt: skip
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL, timeout=300)
    match = re.search(r"^totals: (\d+)", out.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"no totals in {out}")
    return int(match.group(1))


def main() -> None:
    with servers() as (vroomd, _sshd), tempfile.TemporaryDirectory() as tmp:
        for driver, extra in (("polled", {}), ("asyncio", {"VROOM_ASYNCIO": "1"})):
            for scheme in ("tcp", "ws"):
                env = {**vroomd.env(), **extra, "VROOM_BUSY_POLL_US": "0"}
                out = Path(tmp) / f"{driver}-{scheme}.out"
                count = instructions(vroomd.url(scheme), env, out)
                emit(f"terminal_key_instr_client_{scheme}_{driver}", count, "instructions")
                total = startup(vroomd.url(scheme), env, Path(tmp) / f"start-{driver}-{scheme}")
                emit(f"terminal_run_instr_client_{scheme}_{driver}", total, "instructions")
        for scheme, count in vroomd_instructions(Path(tmp)).items():
            emit(f"terminal_key_instr_vroomd_{scheme}", count, "instructions")


if __name__ == "__main__":
    os.environ.pop("VROOM_ASYNCIO", None)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        # `nox -s bench` runs every script: say why there is no figure, not a traceback.
        note = "# terminal_keyinstr: needs valgrind (apt-get install valgrind); skipped"
        print(note, file=sys.stderr)
        sys.exit(0)
    main()
