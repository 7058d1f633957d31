"""Shared helpers of bench/transport_*.py: a server in a child process, bulk
throughput and round trips over an `openmux.aio` session.

The server runs in its own process so that client and server do not share
one event loop (or one core): `python bench/_transport.py serve URL...` prints
its bound URLs as one JSON line, then serves until stdin closes.
Channels: `sink` counts bytes and answers a type-2 message with the count
(type 3); `echo` sends every message back.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import openmux.aio as aio

MESSAGE = 64 * 1024
SMALL = 16
BULK_BYTES = int(os.environ.get("BENCH_BULK_MB", "512")) * 1024 * 1024
RTT_SECONDS = float(os.environ.get("BENCH_RTT_SECONDS", "2"))


async def handler(session: aio.Session) -> None:
    async def serve(channel: aio.Channel) -> None:
        if channel.name == "sink":
            received = 0
            async for message in channel:
                if message.type == 2:
                    await channel.send(3, str(received).encode())
                    received = 0
                else:
                    received += len(message.data)
        else:
            async for message in channel:
                await channel.send(message.type, message.data)

    tasks = [asyncio.create_task(serve(c)) for c in session.channels.values()]
    await session.wait_closed()
    for task in tasks:
        task.cancel()


async def _serve_main(urls: list[str], kwargs: dict[str, Any]) -> None:
    server = await aio.serve(handler, urls, max_message_size=0, **kwargs)
    print(json.dumps(server.urls), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()


@asynccontextmanager
async def server_process(
    urls: list[str], module: str = __file__, extra: list[str] | None = None
) -> AsyncIterator[list[str]]:
    """Start a server child; yields its bound URLs."""
    process = subprocess.Popen(
        [sys.executable, module, "serve", *(extra or []), *urls],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    line = await asyncio.get_running_loop().run_in_executor(None, process.stdout.readline)
    try:
        yield list(json.loads(line))
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


async def bulk(session: aio.Session, total: int = BULK_BYTES, size: int = MESSAGE) -> float:
    """One-way throughput on the `sink` channel in MB/s (10^6 bytes/s)."""
    sink = session.channel("sink")
    payload = os.urandom(size)
    count = total // size
    await sink.send(1, payload)  # warm up
    await sink.send(2)
    await sink.recv()
    start = time.perf_counter()
    for _ in range(count):
        await sink.send(1, payload)
    await sink.send(2)
    reply = await sink.recv()
    elapsed = time.perf_counter() - start
    assert int(reply.data) == count * size, reply
    return count * size / elapsed / 1e6


async def echo_throughput(
    session: aio.Session, total: int = BULK_BYTES // 2, size: int = MESSAGE
) -> float:
    """Echo throughput on the `echo` channel in MB/s (bytes sent one way)."""
    echo = session.channel("echo")
    payload = os.urandom(size)
    count = total // size
    return await _echo(lambda: echo.send(1, payload), lambda: echo.recv(), count, size)


async def _echo(
    send: Callable[[], Coroutine[Any, Any, Any]],
    recv: Callable[[], Coroutine[Any, Any, Any]],
    count: int,
    size: int,
) -> float:
    async def sender() -> None:
        for _ in range(count):
            await send()

    start = time.perf_counter()
    task = asyncio.create_task(sender())
    for _ in range(count):
        await recv()
    await task
    return count * size / (time.perf_counter() - start) / 1e6


async def round_trips(session: aio.Session, seconds: float = RTT_SECONDS) -> float:
    """Small-message round trips per second on the `echo` channel."""
    echo = session.channel("echo")
    payload = b"x" * SMALL
    return await _rtt(lambda: echo.send(1, payload), lambda: echo.recv(), seconds)


async def _rtt(
    send: Callable[[], Coroutine[Any, Any, Any]],
    recv: Callable[[], Coroutine[Any, Any, Any]],
    seconds: float,
) -> float:
    for _ in range(100):
        await send()
        await recv()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            await send()
            await recv()
        done += 100
    return done / (time.perf_counter() - start)


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.1f} {unit}", flush=True)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "serve":
    asyncio.run(_serve_main(sys.argv[2:], {}))
