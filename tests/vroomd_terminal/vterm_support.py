"""Helpers for the vroomd/vroom term tests: a real `vroomd` process on 127.0.0.1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
VROOMD = str(VENV_BIN / "vroomd")
VROOM = str(VENV_BIN / "vroom")


class VroomdProcess:
    """`vroomd` as a subprocess; stderr is collected by a thread."""

    def __init__(self, args: list[str], state_dir: Path, env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [VROOMD, "--state-dir", str(state_dir), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
            text=True,
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if "<EOF>" in self.lines:
                    raise AssertionError(f"vroomd ended without {pattern!r}: {self.lines}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in vroomd output: {self.lines}")
                self._cond.wait(left)

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def url(self, scheme: str) -> str:
        self.wait_for(r"ready; connect with")
        for line in self.lines:
            match = re.search(r"listening on (\S+)", line)
            if match and match.group(1).startswith(scheme + "://"):
                return match.group(1)
        raise AssertionError(f"no {scheme} listener: {self.lines}")

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(5)
        return self.proc.returncode
