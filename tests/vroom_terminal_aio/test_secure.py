"""The same client over the encrypted transports: quic://, tls://, wss://."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import vroom_terminal.aio as vt
from vterm_support import VroomdProcess


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def secure_vroomd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VroomdProcess]:
    """vroomd with its self-signed certificate on quic://, tls:// and wss://."""
    proc = VroomdProcess(
        [
            "--listen",
            f"quic://127.0.0.1:{_udp_port()}",
            "--listen",
            "tls://127.0.0.1:0",
            "--listen",
            "wss://127.0.0.1:0",
        ],
        tmp_path_factory.mktemp("secure") / "state",
    )
    proc.wait_for("ready; connect with")
    yield proc
    proc.stop()


@pytest.mark.parametrize("scheme", ["quic", "tls", "wss"])
async def test_run_and_bulk_output(secure_vroomd: VroomdProcess, scheme: str) -> None:
    cert = str(secure_vroomd.state_dir / "cert.pem")
    options: dict[str, Any] = (
        {"cafile": cert} if scheme == "quic" else {"ssl": ssl.create_default_context(cafile=cert)}
    )
    payload = bytes(range(256)) * 100
    async with vt.connect(secure_vroomd.url(scheme), token=secure_vroomd.token, **options) as conn:
        result = await conn.run("cat", input=payload)
        assert (result.exit_status, result.stdout) == (0, payload)
        received = bytearray()
        process = await conn.create_process("seq 1 200000", raw=True, on_output=received.extend)
        assert (await process.wait()).exit_status == 0
    assert bytes(received) == b"".join(b"%d\n" % i for i in range(1, 200001))
