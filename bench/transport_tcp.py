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
    best: dict[str, float] = {}
    async with server_process(["tcp://127.0.0.1:0"]) as urls:
        for _ in range(3):  # keep the best of three: the machine is shared and noisy
            for label, size in (("", 65535), ("_unfragmented", 0)):
                session = await aio.connect(
                    urls[0], channels=["sink", "echo"], max_message_size=size
                )
                name = f"openmux_tcp_bulk_64k{label}"
                best[name] = max(best.get(name, 0.0), await bulk(session))
                await session.close()
            session = await aio.connect(urls[0], channels=["sink", "echo"])
            rate = await round_trips(session)
            best["openmux_tcp_round_trips"] = max(best.get("openmux_tcp_round_trips", 0.0), rate)
            await session.close()
    for name, value in best.items():
        report(name, value, "round-trips/s" if name.endswith("trips") else "MB/s")


if __name__ == "__main__":
    asyncio.run(main())
