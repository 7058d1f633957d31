"""`conn.create_process()`: stdin, stdout's reading API, resize, signals,
several processes on one connection."""

from __future__ import annotations

import asyncio

import pytest
import vroom_terminal.aio as vt


async def test_stdin_to_cat_and_write_eof(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        process = await conn.create_process("cat", raw=True)
        assert process.is_running
        process.stdin.write(b"hello ")
        process.stdin.write("wörld")
        await process.stdin.drain()
        assert await process.stdout.readexactly(6) == b"hello "
        process.stdin.write_eof()
        assert process.stdin.is_closing()
        assert await process.stdout.read() == "wörld".encode()
        assert process.stdout.at_eof()
        result = await process.wait()
    assert result.exit_status == 0 and result.stdout == b""
    with pytest.raises(BrokenPipeError):
        process.stdin.write(b"late")


async def test_stdout_reading_api(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        process = await conn.create_process("printf 'one\\ntwo\\nthree--four\\nend'", raw=True)
        assert await process.stdout.readline() == b"one\n"
        assert [line async for line in _first(process.stdout, 1)] == [b"two\n"]
        assert await process.stdout.readuntil(b"--") == b"three--"
        assert await process.stdout.read(2) == b"fo"
        assert await process.stdout.readuntil(b"\n") == b"ur\n"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await process.stdout.readexactly(10)
        assert info.value.partial == b"end"
        assert await process.stdout.read() == b""
        assert (await process.wait()).exit_status == 0


async def _first(reader: vt.OutputReader, count: int):  # type: ignore[no-untyped-def]
    async for line in reader:
        yield line
        count -= 1
        if not count:
            return


async def test_term_size_and_resize_seen_by_stty(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        process = await conn.create_process("stty size; read line; stty size", term_size=(90, 30))
        assert await process.stdout.readline() == b"30 90\r\n"
        process.change_terminal_size(132, 43)
        process.stdin.write(b"go\n")
        assert await process.stdout.readline() == b"go\r\n"  # the terminal's echo
        assert await process.stdout.readline() == b"43 132\r\n"
        assert (await process.wait()).exit_status == 0


async def test_a_raw_pty_is_the_controlling_terminal(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        process = await conn.create_process(
            "stty size </dev/tty; read line; stty size </dev/tty", term_size=(90, 30), raw=True
        )
        assert await process.stdout.readline() == b"30 90\n"
        process.change_terminal_size(100, 50, 800, 600)
        process.stdin.write(b"go\n")
        assert await process.stdout.readline() == b"50 100\n"
        assert (await process.wait()).exit_status == 0


async def test_term_type_and_env(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        result = await conn.run(
            'printf "%s %s" "$TERM" "$LANG"', term_type="vt100", env={"LANG": "C.UTF-8"}
        )
    assert result.stdout == b"vt100 C.UTF-8"


async def test_a_signal_interrupts_sleep(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        process = await conn.create_process(["sleep", "100"])
        process.send_signal("INT")
        result = await process.wait()
    assert (result.exit_status, result.exit_signal, result.returncode) == (None, "INT", -2)


async def test_terminate_and_kill(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        first = await conn.create_process(["sleep", "100"])
        second = await conn.create_process(["sleep", "100"])
        first.terminate()
        second.kill()
        assert (await first.wait()).exit_signal == "TERM"
        assert (await second.wait()).exit_signal == "KILL"


async def test_two_processes_on_one_connection_stay_apart(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        one = await conn.create_process("cat", raw=True)
        two = await conn.create_process("cat; exit 7", raw=True)
        assert (one.key, two.key) == ("", "#2")
        one.stdin.write(b"first\n")
        two.stdin.write(b"second\n")
        assert await two.stdout.readline() == b"second\n"
        assert await one.stdout.readline() == b"first\n"
        two.stdin.write_eof()
        assert (await two.wait()).exit_status == 7
        assert one.is_running
        one.stdin.write(b"still here")
        one.stdin.write_eof()
        result = await one.wait()
    assert (result.exit_status, result.stdout) == (0, b"still here")


async def test_close_hangs_up(url: str, vroomd: object) -> None:
    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        async with await conn.create_process(["sleep", "100"]) as process:
            pass
        result = await process.wait()
        assert result.exit_status is None and not process.is_running
        with pytest.raises(BrokenPipeError):
            process.send_signal("INT")
        # the connection carries on
        assert (await conn.run("exit 5")).exit_status == 5
