"""The `vroomd` command line: defaults, token, refusals, clear one-line errors."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from vroomd.cli import connect_line, is_loopback, normalize_listen
from vterm_support import VROOMD, VroomdProcess


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VROOMD, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_help_lists_every_option() -> None:
    result = run("--help")
    assert result.returncode == 0
    for option in ("--listen", "--token-file", "--state-dir", "--no-auth", "--max-sessions",
                   "--max-connections", "--log-level", "vroom term"):  # fmt: skip
        assert option in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:80", "unsupported scheme"),
        ("127.0.0.1:8022", "expected scheme://host"),
        ("ws://127.0.0.1:99999", "bad port"),
        ("ws://127.0.0.1:8022/other", "WebSocket path"),
        ("tcp://:2222", "no host"),
    ],
)
def test_bad_listen_url_is_one_line(url: str, message: str, tmp_path: Path) -> None:
    result = run("--state-dir", str(tmp_path), "--listen", url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_no_auth_refused_on_a_public_address(tmp_path: Path) -> None:
    result = run("--state-dir", str(tmp_path), "--no-auth", "--listen", "tcp://0.0.0.0:0")
    assert result.returncode == 2
    assert "only allowed on loopback" in result.stderr
    assert not (tmp_path / "token").exists()


def test_missing_token_file(tmp_path: Path) -> None:
    result = run("--state-dir", str(tmp_path), "--token-file", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.startswith("vroomd: --token-file") and "No such file" in result.stderr


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("--state-dir", str(tmp_path), "--listen", f"tcp://127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on tcp://127.0.0.1:{port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_first_start_generates_a_private_token_and_prints_it_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = VroomdProcess(["--listen", "ws://127.0.0.1:0"], state)
    try:
        first.wait_for("ready; connect with:  vroom term ws://127.0.0.1:")
    finally:
        assert first.stop() == 0
    token = (state / "token").read_text().strip()
    assert len(token) >= 40
    assert stat.S_IMODE(os.stat(state / "token").st_mode) == 0o600
    assert token in first.output
    second = VroomdProcess(["--listen", "ws://127.0.0.1:0"], state)
    try:
        second.wait_for("ready")
    finally:
        second.stop()
    assert token not in second.output
    assert (state / "token").read_text().strip() == token


def test_listen_url_helpers() -> None:
    assert normalize_listen("ws://127.0.0.1") == "ws://127.0.0.1:8022"
    assert normalize_listen("tcp://localhost") == "tcp://localhost:2222"
    assert normalize_listen("ws://[::1]:9/omux/vroom") == "ws://[::1]:9/omux/vroom"
    assert is_loopback("ws://127.0.0.5:1") and is_loopback("tcp://[::1]:2")
    assert is_loopback("tcp://localhost:2") and not is_loopback("tcp://0.0.0.0:2")
    assert connect_line("ws://0.0.0.0:8022/omux") == "vroom term ws://127.0.0.1:8022/omux"
