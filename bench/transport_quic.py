"""QUIC on loopback: bare aioquic beside OpenMux over QUIC, measured the same way.

    .venv/bin/python bench/transport_quic.py

The server runs in a child process (one core each side, as two real peers
would); the client in this one. Figures, one line each (`name value unit`):

- bulk: one stream (bare) / one reliable channel (OpenMux) carrying 64 KiB
  messages, the sender waiting while more than 256 KiB is unacknowledged (the
  session's default write high-water mark); MB/s from the first byte sent to
  the server's report that it received everything.
- round trips: a 32-byte message echoed by the server, one at a time.
- OpenMux only: the same round trip over an unreliable channel (QUIC datagrams).

Each figure is the best of `--runs` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived
from openmux.aio import quic as omux_quic

CHUNK = 64 * 1024
SMALL = 32
HIGH_WATER = 256 * 1024
LOW_WATER = HIGH_WATER // 4
ALPN = ["bench"]


# ----------------------------------------------------------------- bare aioquic


class BareServer(QuicConnectionProtocol):
    """First byte of a stream picks the mode: b"B" counts bytes until FIN, b"E" echoes."""

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
            data = data[1:]
            self._counts[sid] = 0
        if mode == b"B":
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
        self.waiter: asyncio.Future[None] | None = None
        self.drained: asyncio.Event = asyncio.Event()
        self.bulk_stream: int | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self.received.setdefault(event.stream_id, bytearray()).extend(event.data)
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)
        if self.bulk_stream is not None and self.unacked(self.bulk_stream) <= LOW_WATER:
            self.drained.set()

    def unacked(self, sid: int) -> int:
        return omux_quic.stream_buffered(self._quic, sid)

    async def wait_data(self, sid: int, size: int) -> bytes:
        buf = self.received.setdefault(sid, bytearray())
        while len(buf) < size:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        out = bytes(buf[:size])
        del buf[:size]
        return out


async def bare_bulk(client: BareClient, total: int) -> float:
    quic = client._quic
    sid = quic.get_next_available_stream_id()
    client.bulk_stream = sid
    chunk = b"x" * CHUNK
    start = time.perf_counter()
    quic.send_stream_data(sid, b"B")
    for _ in range(total // CHUNK):
        if client.unacked(sid) > HIGH_WATER:
            client.drained.clear()
            client.transmit()
            await client.drained.wait()
        quic.send_stream_data(sid, chunk)
        client._transmit_soon()
    quic.send_stream_data(sid, b"", end_stream=True)
    client.transmit()
    count = len(str(total // CHUNK * CHUNK))
    reply = await client.wait_data(sid, count)
    elapsed = time.perf_counter() - start
    assert int(reply) == total // CHUNK * CHUNK, reply
    client.bulk_stream = None
    return total / elapsed / 1e6


async def bare_rtt(client: BareClient, count: int) -> float:
    quic = client._quic
    sid = quic.get_next_available_stream_id()
    message = b"y" * SMALL
    quic.send_stream_data(sid, b"E")
    start = time.perf_counter()
    for _ in range(count):
        quic.send_stream_data(sid, message)
        client.transmit()
        await client.wait_data(sid, SMALL)
    return count / (time.perf_counter() - start)


def client_configuration(cafile: str) -> QuicConfiguration:
    config = omux_quic.quic_configuration(is_client=True, alpn=ALPN)
    config.load_verify_locations(cafile)
    return config


async def run_bare(port: int, cafile: str, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    async with connect(
        "127.0.0.1", port, configuration=client_configuration(cafile), create_protocol=BareClient
    ) as proto:
        client = proto
        assert isinstance(client, BareClient)
        results["quic_bare_bulk_64k"] = max(
            [await bare_bulk(client, args.megabytes << 20) for _ in range(args.runs)]
        )
        results["quic_bare_roundtrips"] = max(
            [await bare_rtt(client, args.roundtrips) for _ in range(args.runs)]
        )
    return results


# ------------------------------------------------------------------- OpenMux


async def openmux_handler(session: Any) -> None:
    async def bulk(channel: Any) -> None:
        received = 0
        async for kind, data in channel:
            if kind == 1:
                received += len(data)
            else:
                await channel.send(2, str(received).encode())
                received = 0

    async def echo(channel: Any) -> None:
        async for kind, data in channel:
            await channel.send(kind, data)

    await asyncio.gather(
        bulk(session.channel("bulk")),
        echo(session.channel("echo")),
        echo(session.channel("dgram")),
    )


async def openmux_bulk(session: Any, total: int) -> float:
    channel = session.channel("bulk")
    chunk = b"x" * CHUNK
    start = time.perf_counter()
    for _ in range(total // CHUNK):
        await channel.send(1, chunk)
    await channel.send(2, b"")
    _, reply = await channel.recv()
    elapsed = time.perf_counter() - start
    assert int(reply) == total // CHUNK * CHUNK, reply
    return total / elapsed / 1e6


async def openmux_rtt(session: Any, name: str, count: int) -> float:
    channel = session.channel(name)
    message = b"y" * SMALL
    start = time.perf_counter()
    for _ in range(count):
        await channel.send(1, message)
        await channel.recv()
    return count / (time.perf_counter() - start)


async def run_openmux(port: int, cafile: str, args: argparse.Namespace) -> dict[str, float]:
    import openmux
    import openmux.aio

    channels = [
        openmux.ChannelSpec("bulk"),
        openmux.ChannelSpec("echo"),
        openmux.ChannelSpec("dgram", reliable=False, ordered=False),
    ]
    session = await openmux.aio.connect(
        f"quic://127.0.0.1:{port}", channels=channels, cafile=cafile, ping_interval=0
    )
    results: dict[str, float] = {}
    async with session:
        results["quic_openmux_bulk_64k"] = max(
            [await openmux_bulk(session, args.megabytes << 20) for _ in range(args.runs)]
        )
        results["quic_openmux_roundtrips"] = max(
            [await openmux_rtt(session, "echo", args.roundtrips) for _ in range(args.runs)]
        )
        results["quic_openmux_datagram_roundtrips"] = max(
            [await openmux_rtt(session, "dgram", args.roundtrips) for _ in range(args.runs)]
        )
    return results


# -------------------------------------------------------------------- driver


async def server_main(certfile: str, keyfile: str, with_openmux: bool) -> None:
    config = omux_quic.quic_configuration(is_client=False, alpn=ALPN)
    config.load_cert_chain(certfile, keyfile)
    bare = await serve("127.0.0.1", 0, configuration=config, create_protocol=BareServer)
    ports = [str(bare._transport.get_extra_info("sockname")[1])]  # type: ignore[union-attr]
    if with_openmux:
        import openmux.aio

        server = await openmux.aio.serve(
            openmux_handler,
            ["quic://127.0.0.1:0"],
            certfile=certfile,
            keyfile=keyfile,
            ping_interval=0,
        )
        ports.append(server.url("quic").rsplit(":", 1)[1])
    print(" ".join(ports), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def client_main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = omux_quic.write_self_signed_certificate(tmp)
        cmd = [sys.executable, os.path.abspath(__file__), "--serve", certfile, keyfile]
        if args.bare_only:
            cmd.append("--bare-only")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            ports = [int(p) for p in proc.stdout.readline().split()]
            results = await run_bare(ports[0], certfile, args)
            if not args.bare_only:
                results.update(await run_openmux(ports[1], certfile, args))
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
    units = {"bulk": "MB/s", "roundtrips": "rt/s"}
    for name, value in results.items():
        unit = units["bulk" if "bulk" in name else "roundtrips"]
        print(f"{name} {value:.1f} {unit}")
    if not args.bare_only:
        print(
            "quic_openmux_bulk_ratio "
            f"{results['quic_openmux_bulk_64k'] / results['quic_bare_bulk_64k']:.2f} x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=64, help="bulk transfer size")
    parser.add_argument("--roundtrips", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bare-only", action="store_true")
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(server_main(args.serve[0], args.serve[1], not args.bare_only))
    else:
        asyncio.run(client_main(args))


if __name__ == "__main__":
    main()
