"""OpenMux over TCP on loopback: bulk throughput (64 KiB messages) and round trips.

    .venv/bin/python bench/transport_tcp.py

Server in a child process. Prints `name value unit` lines: bulk MB/s with the
default maxMessageSize (65535: each 64 KiB message is two fragments) and with
maxMessageSize 0 (unlimited, one frame per message), then round trips/s.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openmux.aio as aio
from _transport import bulk, report, round_trips, server_process


async def main() -> None:
    async with server_process(["tcp://127.0.0.1:0"]) as urls:
        for label, size in (("", 65535), ("_unfragmented", 0)):
            session = await aio.connect(urls[0], channels=["sink", "echo"], max_message_size=size)
            report(f"openmux_tcp_bulk_64k{label}", await bulk(session), "MB/s")
            await session.close()
        session = await aio.connect(urls[0], channels=["sink", "echo"])
        report("openmux_tcp_round_trips", await round_trips(session), "round-trips/s")
        await session.close()


if __name__ == "__main__":
    asyncio.run(main())
