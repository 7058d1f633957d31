"""`vroom term` against a server that never answers: one line on stderr, exit 255."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from .test_client import SilentServer

pytestmark = pytest.mark.timeout(60)
VROOM = str(Path(sys.executable).parent / "vroom")


async def vroom_term(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        VROOM,
        "term",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert out == b""
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.parametrize("scheme", ["tcp", "ws"])
async def test_vroom_term_connect_timeout(scheme: str) -> None:
    async with SilentServer() as port:
        url = f"{scheme}://127.0.0.1:{port}"
        status, err = await vroom_term("--connect-timeout", "0.5", url, "true")
    assert status == 255
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot connect to {url}" in err and "no answer within 0.5 s" in err


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
async def test_vroom_term_bad_connect_timeout(value: str) -> None:
    status, err = await vroom_term("--connect-timeout", value, "tcp://127.0.0.1:9", "true")
    assert status == 255
    assert err.count("\n") == 1 and "--connect-timeout must be" in err
