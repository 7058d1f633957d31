"""OpenMux core, send side: frame encoding speed on one core.

    .venv/bin/python bench/openmux_encode.py [--runs N]

Figures, one line each (`name value unit`), best of `--runs` runs:

- small frames (the 4-byte MOUSE_MOVE payload `02 00 01 2c` on channel 1):
  `encode_header` alone, `encode_frame`, and `Connection.send_message` on an
  open channel followed by one `data_to_send()` per 1000 messages (what a
  stream transport does when it flushes once per event-loop turn).
- 64 KiB frames (payload 65535 bytes, 256 distinct payloads so the copies
  are not served from a warm cache): payload GB/s through `encode_frame` and
  through `Connection.send_message` + `data_to_send()` (flushed every 4
  messages, a 256 KiB write).

Goals (issue 3): >= 1,000,000 small frames/s, >= 1 GB/s for 64 KiB frames.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from openmux import ChannelSpec, Config, Connection
from openmux.frame import encode_frame, encode_header

PAYLOAD = bytes.fromhex("0200012c")
SMALL_COUNT = 100_000
FLUSH_EVERY = 1000
BIG_PAYLOAD = bytes(range(256)) * 255 + bytes(255)
BIG_COUNT = 256
BIG_FLUSH = 4


def best(fn: Callable[[], int], runs: int) -> tuple[float, int]:
    fn()  # warm-up
    times = []
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return min(times), count


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.0f} {unit}" if value >= 100 else f"{name} {value:.2f} {unit}")


def open_client(spec: ChannelSpec) -> tuple[Connection, int]:
    client = Connection(Config(is_client=True, channels=[spec]))
    server = Connection(Config(is_client=False))
    client.initiate(0.0)
    server.initiate(0.0)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    (channel_id,) = client.channels
    return client, channel_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="best of N runs (default 7)")
    runs = parser.parse_args().runs
    assert encode_frame(1, 1, PAYLOAD) == bytes.fromhex("01010000000402 00012c".replace(" ", ""))

    def run_header() -> int:
        enc = encode_header
        for _ in range(SMALL_COUNT):
            enc(1, 1, 4)
        return SMALL_COUNT

    def run_frame() -> int:
        enc = encode_frame
        payload = PAYLOAD
        for _ in range(SMALL_COUNT):
            enc(1, 1, payload)
        return SMALL_COUNT

    def run_send(payloads: list[bytes], flush_every: int, spec: ChannelSpec) -> int:
        client, channel_id = open_client(spec)
        send = client.send_message
        flush = client.data_to_send
        total = 0
        for i in range(0, len(payloads), flush_every):
            for payload in payloads[i : i + flush_every]:
                send(channel_id, 1, payload)
            total += len(flush())
        assert total == sum(len(p) + 6 for p in payloads), total
        return len(payloads)

    pointer = ChannelSpec("pointer", reliable=False, ordered=False)
    t, n = best(run_header, runs)
    report("openmux_encode_small_encode_header", n / t, "frames/s")
    t, n = best(run_frame, runs)
    report("openmux_encode_small_encode_frame", n / t, "frames/s")
    smalls = [PAYLOAD] * SMALL_COUNT
    t, n = best(lambda: run_send(smalls, FLUSH_EVERY, pointer), runs)
    report("openmux_encode_small_connection", n / t, "frames/s")

    # Distinct payloads (16 MiB in all), so the copies are not served from a warm cache.
    bigs = [bytes([i]) + BIG_PAYLOAD[1:] for i in range(BIG_COUNT)]

    def run_big_frame() -> int:
        enc = encode_frame
        for payload in bigs:
            enc(1, 1, payload)
        return BIG_COUNT

    t, n = best(run_big_frame, runs)
    report("openmux_encode_64k_encode_frame", n * len(BIG_PAYLOAD) / t / 1e9, "GB/s")
    t, n = best(lambda: run_send(bigs, BIG_FLUSH, ChannelSpec("bulk")), runs)
    report("openmux_encode_64k_connection", n * len(BIG_PAYLOAD) / t / 1e9, "GB/s")


if __name__ == "__main__":
    main()
