"""QUIC on loopback: bare aioquic beside OpenMux over QUIC, measured the same way.

    .venv/bin/python bench/transport_quic.py

The server runs in a child process (one core each side, as two real peers
would), the client in this one; both use `openmux.aio.quic.quic_configuration`
(same windows, same datagram setting) and a self-signed certificate made for
the run. The child serves OpenMux at `quic://127.0.0.1:<port>` (channels `sink`
and `echo` of _transport.py, plus an unreliable `dgram` echo on QUIC
datagrams) and, on a second port, a bare aioquic server whose streams count
bytes (first byte b"S"; FIN asks for the count) or echo (first byte b"E").
Figures (`name value unit` lines):

- bulk: 64 KiB messages one way on one reliable channel / one stream, the
  sender waiting while more than 256 KiB is unacknowledged (the session's
  default write high-water mark, applied by hand to bare aioquic); MB/s
  (10^6 bytes/s) from the first byte to the server's count of everything.
- round trips: a 16-byte message echoed by the server, one at a time, for
  `BENCH_RTT_SECONDS` (default 2); OpenMux also over a datagram channel.

aioquic is pure Python (packet protection aside), so the figures are small;
the interesting one is the ratio. Each figure is the best of two alternated
runs. `BENCH_QUIC_MB` sets the bulk volume (default 32).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openmux.aio as aio
from _transport import (
    MESSAGE,
    RTT_SECONDS,
    SMALL,
    _rtt,
    bulk,
    handler,
    report,
    round_trips,
    server_process,
)
from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic.events import QuicEvent, StreamDataReceived
from openmux import ChannelSpec
from openmux.aio import quic

BULK_BYTES = int(os.environ.get("BENCH_QUIC_MB", "32")) * 1024 * 1024
HIGH_WATER = 256 * 1024
LOW_WATER = HIGH_WATER // 4
DATAGRAM_PATIENCE = 1.0  # a lost datagram is counted, not waited for


# ------------------------------------------------------------- bare aioquic


class BareServer(QuicConnectionProtocol):
    """First byte of a stream picks the mode: b"S" counts until FIN, b"E" echoes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._modes: dict[int, bytes] = {}
        self._counts: dict[int, int] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if not isinstance(event, StreamDataReceived):
            return
        sid, data = event.stream_id, event.data
        mode = self._modes.get(sid)
        if mode is None and data:
            mode = self._modes[sid] = data[:1]
            self._counts[sid] = 0
            data = data[1:]
        if mode == b"S":
            self._counts[sid] += len(data)
            if event.end_stream:
                self._quic.send_stream_data(sid, str(self._counts[sid]).encode(), True)
                self.transmit()
        elif mode == b"E" and data:
            self._quic.send_stream_data(sid, data)
            self.transmit()


class BareClient(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: dict[int, bytearray] = {}
        self.data_waiter: asyncio.Future[None] | None = None
        self.drained = asyncio.Event()
        self.bulk_stream: int | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self.received.setdefault(event.stream_id, bytearray()).extend(event.data)
            if self.data_waiter is not None and not self.data_waiter.done():
                self.data_waiter.set_result(None)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)
        sid = self.bulk_stream
        if sid is not None and quic.stream_buffered(self._quic, sid) <= LOW_WATER:
            self.drained.set()

    async def read(self, sid: int, size: int) -> bytes:
        buf = self.received.setdefault(sid, bytearray())
        while len(buf) < size:
            self.data_waiter = asyncio.get_running_loop().create_future()
            await self.data_waiter
        out = bytes(buf[:size])
        del buf[:size]
        return out


async def bare_bulk(client: BareClient, total: int = BULK_BYTES) -> float:
    q = client._quic
    payload = os.urandom(MESSAGE)
    count = total // MESSAGE
    sid = q.get_next_available_stream_id()
    client.bulk_stream = sid
    start = time.perf_counter()
    q.send_stream_data(sid, b"S")
    for _ in range(count):
        if quic.stream_buffered(q, sid) > HIGH_WATER:
            client.drained.clear()
            client.transmit()
            await client.drained.wait()
        q.send_stream_data(sid, payload)
        client._transmit_soon()
    q.send_stream_data(sid, b"", end_stream=True)
    client.transmit()
    reply = await client.read(sid, len(str(count * MESSAGE)))
    elapsed = time.perf_counter() - start
    assert int(reply) == count * MESSAGE, reply
    client.bulk_stream = None
    return count * MESSAGE / elapsed / 1e6


async def bare_round_trips(client: BareClient) -> float:
    q = client._quic
    sid = q.get_next_available_stream_id()
    payload = b"x" * SMALL
    q.send_stream_data(sid, b"E")

    async def send() -> None:
        q.send_stream_data(sid, payload)
        client.transmit()

    return await _rtt(send, lambda: client.read(sid, SMALL), RTT_SECONDS)


async def bare_figures(port: int, cafile: str) -> tuple[float, float]:
    config = quic.quic_configuration(is_client=True)
    config.load_verify_locations(cafile)
    async with quic_connect(
        "127.0.0.1", port, configuration=config, create_protocol=BareClient
    ) as client:
        assert isinstance(client, BareClient)
        return await bare_bulk(client), await bare_round_trips(client)


# ----------------------------------------------------------------- OpenMux


async def datagram_round_trips(session: aio.Session) -> tuple[float, int]:
    """Round trips on the unreliable `dgram` channel; a lost one is counted."""
    dgram = session.channel("dgram")
    payload = b"x" * SMALL
    lost = 0

    async def recv() -> None:
        nonlocal lost
        try:
            await asyncio.wait_for(dgram.recv(), DATAGRAM_PATIENCE)
        except TimeoutError:
            lost += 1

    rate = await _rtt(lambda: dgram.send(1, payload), recv, RTT_SECONDS)
    return rate, lost


async def openmux_figures(url: str, cafile: str) -> tuple[float, float, float, int]:
    channels = ["sink", "echo", ChannelSpec("dgram", reliable=False, ordered=False)]
    session = await aio.connect(url, channels=channels, cafile=cafile, ping_interval=0)
    async with session:
        assert session.channel("dgram").id in session.sink._datagram_channels  # type: ignore[union-attr]
        rate = await bulk(session, BULK_BYTES)
        rtt = await round_trips(session)
        dgram_rtt, lost = await datagram_round_trips(session)
    return rate, rtt, dgram_rtt, lost


# ------------------------------------------------------------------ driver


async def serve_main(certfile: str, keyfile: str) -> None:
    config = quic.quic_configuration(is_client=False)
    config.load_cert_chain(certfile, keyfile)
    bare = await quic_serve("127.0.0.1", 0, configuration=config, create_protocol=BareServer)
    bare_port = bare._transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    server = await aio.serve(
        handler,
        ["quic://127.0.0.1:0"],
        certfile=certfile,
        keyfile=keyfile,
        max_message_size=0,
        ping_interval=0,
    )
    print(json.dumps([*server.urls, f"bare://127.0.0.1:{bare_port}"]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()
    bare.close()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = quic.write_self_signed_certificate(tmp)
        async with server_process([], __file__, [certfile, keyfile]) as urls:
            omux_url, bare_url = urls
            bare_port = int(bare_url.rsplit(":", 1)[1])
            best: dict[str, float] = {}
            lost = 0
            for _ in range(2):
                bare_bulk_rate, bare_rtt = await bare_figures(bare_port, certfile)
                omux_bulk, omux_rtt, dgram_rtt, dgram_lost = await openmux_figures(
                    omux_url, certfile
                )
                lost += dgram_lost
                for name, value in (
                    ("bare_bulk", bare_bulk_rate),
                    ("bare_rtt", bare_rtt),
                    ("omux_bulk", omux_bulk),
                    ("omux_rtt", omux_rtt),
                    ("dgram_rtt", dgram_rtt),
                ):
                    best[name] = max(best.get(name, 0.0), value)
    report("openmux_quic_bulk_64k", best["omux_bulk"], "MB/s")
    report("bare_aioquic_bulk_64k", best["bare_bulk"], "MB/s")
    report("openmux_quic_round_trips", best["omux_rtt"], "round-trips/s")
    report("bare_aioquic_round_trips", best["bare_rtt"], "round-trips/s")
    report("openmux_quic_datagram_round_trips", best["dgram_rtt"], "round-trips/s")
    print(f"openmux_quic_vs_bare_bulk {best['omux_bulk'] / best['bare_bulk']:.2f} x")
    print(f"openmux_quic_vs_bare_rtt {best['omux_rtt'] / best['bare_rtt']:.2f} x")
    print(f"openmux_quic_datagrams_lost {lost} datagrams")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve_main(sys.argv[2], sys.argv[3]))
    else:
        asyncio.run(main())
