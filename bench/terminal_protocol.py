"""VROOM-Terminal, sans-IO cost on one core (no transport, no PTY).

    .venv/bin/python bench/terminal_protocol.py [--runs N]

Figures, one line each (`name value unit`), best of `--runs` runs:

- `terminal_output_throughput`: PTY output through both state machines and
  both OpenMux cores in one process: `send_output` of 64 KiB chunks (1 MiB
  window), frames carried to the client, `handle_event` → `PtyOutput`,
  `ack()` → WINDOW_ACK back to the server. The protocol's share of the
  bulk-output goals (>= 0.9x a bare PTY, about 45-50 MB/s here).
- `terminal_keystroke`: one input byte from `send_input` to the server's
  `PtyInput` event (the protocol's share of keystroke echo latency).
- `terminal_decode_pty_request_cbor` / `_json`: a PTY_REQUEST through the TLV
  split, the CBOR pre-scan + cbor2 (or json), and the schema.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import openmux
import openmux.testing
from vroom_terminal import (
    Encoding,
    PtyOutput,
    PtyRequest,
    TerminalClient,
    TerminalServer,
    channel_policy,
    decode_message,
    encode_message,
)


def best(fn: Callable[[], int], runs: int) -> float:
    """Best time per unit, in seconds."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        times.append((time.perf_counter() - t0) / count)
    return min(times)


def active_pair() -> tuple[openmux.testing.Pair, TerminalClient, TerminalServer]:
    pair = openmux.testing.Pair(
        openmux.Config(is_client=True, ping_interval=0),
        openmux.Config(is_client=False, channel_policy=channel_policy, ping_interval=0),
        handshake=False,
    )
    client = TerminalClient(pair.client)
    server = TerminalServer(pair.server)

    def pump() -> None:
        while True:
            s = pair.to_server()
            for e in s:
                server.handle_event(e)
            c = pair.to_client()
            for e in c:
                client.handle_event(e)
            if not s and not c and not pair._queued():
                return

    pump()
    client.open_session()
    pump()
    client.request_pty()
    pump()
    server.grant_pty("")
    pump()
    client.shell()
    pump()
    return pair, client, server


def output_throughput(total: int = 64 * 1024 * 1024, chunk: int = 64 * 1024) -> Callable[[], int]:
    pair, client, server = active_pair()
    data = b"x" * chunk
    server_mux, client_mux = pair.server, pair.client

    def run() -> int:
        sent = 0
        while sent < total:
            sent += server.send_output("", data)
            for frame in server_mux.messages_to_send():
                for event in client_mux.receive_message(frame, 0.0):
                    for tev in client.handle_event(event):
                        if isinstance(tev, PtyOutput):
                            client.ack(len(tev.data))
            for frame in client_mux.messages_to_send():
                for event in server_mux.receive_message(frame, 0.0):
                    server.handle_event(event)
        return sent

    return run


def keystroke(n: int = 20_000) -> Callable[[], int]:
    pair, client, server = active_pair()
    server_mux, client_mux = pair.server, pair.client

    def run() -> int:
        for _ in range(n):
            client.send_input(b"a")
            for frame in client_mux.messages_to_send():
                for event in server_mux.receive_message(frame, 0.0):
                    server.handle_event(event)
        return n

    return run


def decode(encoding: Encoding, n: int = 20_000) -> Callable[[], int]:
    mux_type, data = encode_message(PtyRequest("xterm-256color", 50, 132, 1320, 1000), encoding)

    def run() -> int:
        for _ in range(n):
            decode_message(mux_type, data, encoding, from_server=False)
        return n

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    per_byte = best(output_throughput(), runs)
    print(f"terminal_output_throughput {1 / per_byte / 1e6:.0f} MB/s")
    print(f"terminal_keystroke {best(keystroke(), runs) * 1e6:.2f} us")
    print(f"terminal_decode_pty_request_cbor {best(decode(Encoding.CBOR), runs) * 1e6:.2f} us")
    print(f"terminal_decode_pty_request_json {best(decode(Encoding.JSON), runs) * 1e6:.2f} us")


if __name__ == "__main__":
    main()
