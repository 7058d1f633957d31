"""`conn.run()`: a command's output, exact, and how it ended."""

from __future__ import annotations

import sys

import pytest
import vroom_terminal.aio as vt

ALL_BYTES = bytes(range(256))
PRINT_ALL = f"{sys.executable} -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 3)'"


async def test_all_256_byte_values_arrive_exactly(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        result = await conn.run(PRINT_ALL, raw=True)
    assert result.stdout == ALL_BYTES * 3
    assert (result.exit_status, result.exit_signal, result.returncode) == (0, None, 0)


async def test_input_comes_back_exactly_through_cat(url: str, vroomd: object) -> None:
    payload = ALL_BYTES * 40
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        result = await conn.run("cat", input=payload)
    assert result.stdout == payload
    assert result.exit_status == 0


@pytest.mark.parametrize("code", [0, 1, 42])
async def test_exit_status(url: str, vroomd: object, code: int) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        result = await conn.run(f"echo out; exit {code}")
    assert result.stdout == b"out\n"
    assert (result.exit_status, result.exit_signal, result.returncode) == (code, None, code)


async def test_death_by_signal(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        result = await conn.run("kill -TERM $$")
    assert (result.exit_status, result.exit_signal, result.returncode) == (None, "TERM", -15)


async def test_check_raises_process_error(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        with pytest.raises(vt.ProcessError) as info:
            await conn.run(["sh", "-c", "printf partial; exit 3"], check=True)
    result = info.value.result
    assert isinstance(result, vt.CompletedProcess)
    assert (result.exit_status, result.stdout) == (3, b"partial")


async def test_a_pty_like_a_terminal_unless_raw(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        cooked = await conn.run("printf 'a\\nb'", raw=False)
        raw = await conn.run("printf 'a\\nb'")
        tty = await conn.run("tty -s && echo yes", raw=False)
    assert cooked.stdout == b"a\r\nb"
    assert raw.stdout == b"a\nb"
    assert tty.stdout == b"yes\r\n"
