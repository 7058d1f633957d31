"""Flow control: output is acknowledged as it is consumed, so a slow reader
holds vroomd back within the window, and nothing is lost or reordered."""

from __future__ import annotations

import asyncio
from typing import Any

import vroom_terminal.aio as vt

SIZE = 20 * 1024 * 1024
WINDOW = 256 * 1024
ACK_EVERY = 64 * 1024


def _connect(url: str, vroomd: object) -> Any:
    """A connection with the small window these tests watch vroomd keep to."""
    return vt.connect(url, token=vroomd.token, window=WINDOW, ack_every=ACK_EVERY)  # type: ignore[attr-defined]


async def test_a_slow_reader_gets_everything_in_order(url: str, vroomd: object) -> None:
    async with _connect(url, vroomd) as conn:
        process = await conn.create_process(f"yes | head -c {SIZE}", raw=True)
        window = conn.client.sessions[process.key].ack_window
        # Not reading: vroomd stops at the window (the program blocks on its PTY).
        while window.received < WINDOW:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert window.received == WINDOW and window.acked == 0
        got = 0
        pieces = 0
        while chunk := await process.stdout.read(65536):
            # every byte where it belongs: "y\n" repeated
            assert chunk == _expected(got, len(chunk))
            got += len(chunk)
            pieces += 1
            if pieces % 64 == 0:
                await asyncio.sleep(0.005)  # a slow consumer, now and then
            # cumulative WINDOW_ACKs, never ahead of reading (a session that is
            # over forgets its window: what is read after that counts no more)
            assert window.acked <= window.consumed <= got
            assert window.received - window.acked <= WINDOW
        result = await process.wait()
    assert got == SIZE
    assert result.exit_status == 0
    assert window.consumed - window.acked < ACK_EVERY


def _expected(offset: int, size: int) -> bytes:
    start = offset % 2
    return (b"y\n" * (size // 2 + 2))[start : start + size]


async def test_callback_mode_gets_everything_in_order(url: str, vroomd: object) -> None:
    received = bytearray()
    async with _connect(url, vroomd) as conn:
        process = await conn.create_process("seq 1 300000", raw=True, on_output=received.extend)
        result = await process.wait()
        window = conn.client.sessions.get(process.key)
    assert result.exit_status == 0 and result.stdout == b""
    assert bytes(received) == b"".join(b"%d\n" % i for i in range(1, 300001))
    assert window is None  # forgotten once over (no growth on a long-lived connection)


async def test_a_failing_callback_fails_the_process(url: str, vroomd: object) -> None:
    def broken(data: bytes) -> None:
        raise ValueError("consumer broke")

    async with vt.connect(url, token=vroomd.token) as conn:  # type: ignore[attr-defined]
        process = await conn.create_process("yes", raw=True, on_output=broken)
        try:
            await process.wait()
        except ValueError as exc:
            assert str(exc) == "consumer broke"
        else:
            raise AssertionError("wait() did not raise")
        assert (await conn.run("exit 4")).exit_status == 4
