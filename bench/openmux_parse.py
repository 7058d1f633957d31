"""OpenMux core, receive side: stream-mode parsing speed on one core.

    .venv/bin/python bench/openmux_parse.py [--runs N]

Figures, one line each (`name value unit`), best of `--runs` runs:

- small frames: a stream of 10-byte pointer frames (MOUSE_MOVE
  `01 01 00 00 00 04 02 00 01 2c`), delivered in 64 KiB reads as a TCP socket
  would (so frames straddle read boundaries), and as one big buffer;
  measured at the `FrameReader.feed` level and at the `Connection.receive_data`
  level (one `MessageReceived` per frame, on an open unreliable channel);
  and one frame per `Connection.receive_message` call (message mode).
- 64 KiB frames (payload 65535 bytes, the largest standard frame) delivered
  in 256 KiB reads: payload GB/s through `FrameReader.feed` and
  `Connection.receive_data`; plus `decode_message` (message mode, one frame per
  WebSocket message).

Goals (issue 3): >= 1,000,000 small frames/s, >= 1 GB/s for 64 KiB frames.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from openmux import ChannelSpec, Config, Connection, MessageReceived
from openmux.frame import FrameReader, decode_message, encode_frame

MOUSE_MOVE = bytes.fromhex("01010000000402 00012c".replace(" ", ""))
assert len(MOUSE_MOVE) == 10
SMALL_COUNT = 100_000
READ_SIZE = 64 * 1024
BIG_PAYLOAD = 65535
BIG_COUNT = 256
BIG_READ = 256 * 1024


def best(fn: Callable[[], int], runs: int) -> tuple[float, int]:
    """Best wall time of `runs` calls of `fn` (which returns its unit count)."""
    fn()  # warm-up
    times = []
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return min(times), count


def reads(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def open_pair() -> tuple[Connection, Connection, int]:
    """A client and a server over the handshake, with a 'pointer' channel open."""
    client = Connection(
        Config(is_client=True, channels=[ChannelSpec("pointer", reliable=False, ordered=False)])
    )
    server = Connection(Config(is_client=False))
    client.initiate(0.0)
    server.initiate(0.0)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    (channel_id,) = server.channels
    return client, server, channel_id


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.0f} {unit}" if value >= 100 else f"{name} {value:.2f} {unit}")


def bench_reader(chunks: list[bytes], runs: int, limit: int = 65535) -> tuple[float, int]:
    def run() -> int:
        reader = FrameReader(limit)
        feed = reader.feed
        n = 0
        for chunk in chunks:
            n += len(feed(chunk))
        assert reader.error is None and reader.buffered == 0
        return n

    return best(run, runs)


def bench_connection(chunks: list[bytes], runs: int) -> tuple[float, int]:
    def run() -> int:
        _client, server, _channel_id = open_pair()
        receive = server.receive_data
        n = 0
        for chunk in chunks:
            n += len(receive(chunk, 1.0))
        return n

    # Check once that the events are what we claim to count.
    _c, server, channel_id = open_pair()
    events = server.receive_data(chunks[0], 1.0)
    assert events and all(
        type(e) is MessageReceived and e.channel_id == channel_id for e in events
    ), events[:3]
    return best(run, runs)


def bench_message_mode(runs: int) -> tuple[float, int]:
    """`receive_message` per frame, as a WebSocket or DataChannel transport does."""

    def run() -> int:
        client = Connection(
            Config(is_client=True, channels=[ChannelSpec("pointer", False, False)]), "message"
        )
        server = Connection(Config(is_client=False), "message")
        client.initiate(0.0)
        server.initiate(0.0)
        for message in client.messages_to_send():
            server.receive_message(message, 0.0)
        receive = server.receive_message
        n = 0
        for _ in range(SMALL_COUNT):
            n += len(receive(MOUSE_MOVE, 1.0))
        assert n == SMALL_COUNT
        return n

    return best(run, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="best of N runs (default 7)")
    runs = parser.parse_args().runs

    small = MOUSE_MOVE * SMALL_COUNT
    small_reads = reads(small, READ_SIZE)
    t, n = bench_reader(small_reads, runs)
    report("openmux_parse_small_reader_64k_reads", n / t, "frames/s")
    t, n = bench_reader([small], runs)
    report("openmux_parse_small_reader_one_buffer", n / t, "frames/s")
    t, n = bench_connection(small_reads, runs)
    report("openmux_parse_small_connection_64k_reads", n / t, "frames/s")
    t, n = bench_message_mode(runs)
    report("openmux_parse_small_connection_message_mode", n / t, "frames/s")

    big_frame = encode_frame(1, 1, bytes(range(256)) * 255 + bytes(255))
    assert len(big_frame) == 6 + BIG_PAYLOAD
    big = big_frame * BIG_COUNT
    big_reads = reads(big, BIG_READ)
    t, n = bench_reader(big_reads, runs)
    report("openmux_parse_64k_reader", n * BIG_PAYLOAD / t / 1e9, "GB/s")
    t, n = bench_connection_big(big_reads, runs)
    report("openmux_parse_64k_connection", n * BIG_PAYLOAD / t / 1e9, "GB/s")

    def run_decode() -> int:
        for _ in range(BIG_COUNT):
            decode_message(big_frame, 65535)
        return BIG_COUNT

    t, n = best(run_decode, runs)
    report("openmux_parse_64k_decode_message", n * BIG_PAYLOAD / t / 1e9, "GB/s")


def bench_connection_big(chunks: list[bytes], runs: int) -> tuple[float, int]:
    """As `bench_connection`, on a reliable channel (64 KiB frames)."""

    def pair() -> Connection:
        client = Connection(Config(is_client=True, channels=[ChannelSpec("bulk")]))
        server = Connection(Config(is_client=False))
        client.initiate(0.0)
        server.initiate(0.0)
        server.receive_data(client.data_to_send(), 0.0)
        client.receive_data(server.data_to_send(), 0.0)
        return server

    def run() -> int:
        receive = pair().receive_data
        n = 0
        for chunk in chunks:
            for event in receive(chunk, 1.0):
                assert len(event.data) == BIG_PAYLOAD  # type: ignore[attr-defined]
                n += 1
        return n

    return best(run, runs)


if __name__ == "__main__":
    main()
