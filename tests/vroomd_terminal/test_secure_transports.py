"""vroomd over TLS and QUIC with its self-signed certificate, and `vroom term`
finding the token and the certificate in vroomd's state dir by itself (the
README's two-terminal flow on one machine)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from vterm_support import VROOM, VroomdProcess

SCHEMES = ["tls", "quic", "tcp", "wss"]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VroomdProcess, Path]]:
    xdg = tmp_path_factory.mktemp("xdg")
    proc = VroomdProcess(
        ["--listen", "tls://127.0.0.1:0", "--listen", "quic://127.0.0.1:0",
         "--listen", "tcp://127.0.0.1:0", "--listen", "wss://127.0.0.1:0"],
        xdg / "vroomd",
    )  # fmt: skip
    proc.wait_for("ready; connect with")
    yield proc, xdg
    proc.stop()


def client_env(xdg: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VROOM_TOKEN"}
    env["XDG_STATE_HOME"] = str(xdg)
    return env


@pytest.mark.parametrize("scheme", SCHEMES)
def test_exec_with_default_token_and_certificate(
    secure: tuple[VroomdProcess, Path], scheme: str
) -> None:
    proc, xdg = secure
    assert "made a self-signed certificate" in proc.output
    result = subprocess.run([VROOM, "term", proc.url(scheme), "--", "echo ok; exit 9"],
                            capture_output=True, env=client_env(xdg), timeout=60)  # fmt: skip
    assert (result.returncode, result.stdout) == (9, b"ok\n"), result.stderr


@pytest.mark.parametrize("scheme", SCHEMES)
def test_big_input_and_output_at_once(secure: tuple[VroomdProcess, Path], scheme: str) -> None:
    """`cat` of 8 MiB: input and WINDOW_ACKs share one stream; reading input
    must never stop while the PTY waits for credit (deadlock regression)."""
    proc, xdg = secure
    payload = os.urandom(8 * 1024 * 1024)
    result = subprocess.run([VROOM, "term", proc.url(scheme), "--", "cat"], input=payload,
                            capture_output=True, env=client_env(xdg), timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload


def test_untrusted_certificate_is_one_line(secure: tuple[VroomdProcess, Path],
                                           tmp_path: Path) -> None:  # fmt: skip
    proc, _ = secure
    env = client_env(tmp_path)  # no vroomd state here: the certificate is unknown
    env["VROOM_TOKEN"] = proc.token
    result = subprocess.run([VROOM, "term", proc.url("tls"), "--", "true"],
                            capture_output=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 255
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "certificate" in lines[0], lines
