"""CPU per received frame of a client session's receive path, per transport.

Bulk output as a server sends it (OpenMux frames of SIZE bytes on an open
channel, each in one WebSocket message over ws://) is fed to a real, open
client session's transport protocol in reads of READ bytes
(`protocol.data_received`, as the event loop would): TCP, WebSocket through
websockets' client (the default for ws://) and OpenMux's own WebSocket
client (`ws_client="builtin"`). No socket wait in the measured part, so the
figure is the receive path's own CPU (transport, core, session, a tap that
counts the bytes), best of RUNS. For counts that no load on the machine
changes, run it under `valgrind --tool=callgrind` with RUNS=1 and MB=10,
then MB=0, and divide the difference by the frames (10^7 / SIZE each).

Run: .venv/bin/python bench/openmux_client_receive.py [MB]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import openmux.aio as aio
from openmux import Event, MessageReceived, encode_frame

MB = float(sys.argv[1]) if len(sys.argv) > 1 else 20
RUNS = int(os.environ.get("RUNS", "3"))
SHAPES = [(1024, 8192, "1k"), (4096, 8192, "4k"), (65000, 65536, "64k")]


def _ws(frame: bytes) -> bytes:
    size = len(frame)
    head = bytes((0x82, size)) if size < 126 else bytes((0x82, 126, size >> 8, size & 0xFF))
    return head + frame


def _feed(proto: Any, chunks: list[bytes]) -> float:
    receive = proto.data_received
    start = time.process_time()
    for chunk in chunks:
        receive(chunk)
    return time.process_time() - start


async def measure(url: str, transport: str, size: int, read: int) -> float:
    options = {"ws_client": "builtin"} if transport == "ws_builtin" else {}
    session = await aio.connect(url, channels=["out"], **options)
    got = [0]

    def tap(events: list[Event]) -> list[Event]:
        got[0] += sum(len(e.data) for e in events if type(e) is MessageReceived)
        return [e for e in events if type(e) is not MessageReceived]

    session.add_event_tap(tap)
    proto = session.sink.ws if transport == "ws" else session.sink  # type: ignore[union-attr]
    frame = encode_frame(session.connection.channels[1].id, 0, b"A" * size)
    unit = frame if transport == "tcp" else _ws(frame)
    count = max(1, int(MB * 1e6 / size))
    stream = unit * count
    chunks = [stream[i : i + read] for i in range(0, len(stream), read)]
    seconds = _feed(proto, chunks)
    if got[0] != count * size:
        raise RuntimeError(f"{transport}: {got[0]} bytes, expected {count * size}")
    await session.close()
    return seconds / count * 1e6


async def main() -> None:
    async def handler(session: aio.Session) -> None:
        await session.wait_closed()

    server = await aio.serve(handler, ["tcp://127.0.0.1:0", "ws://127.0.0.1:0/omux"])
    urls = {url.split(":", 1)[0]: url for url in server.urls}
    try:
        for size, read, label in SHAPES:
            for transport in ("tcp", "ws", "ws_builtin"):
                url = urls["tcp" if transport == "tcp" else "ws"]
                best = min([await measure(url, transport, size, read) for _ in range(RUNS)])
                print(f"openmux_client_receive_{transport}_{label} {best:.3g} us/frame", flush=True)
    finally:
        server.close()
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
