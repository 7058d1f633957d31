"""The client API's CPU per MB of bulk output, load-insensitive.

`head -c N M /dev/zero | base64` on a vroomd, drained by `CountingClient`
(bench/_terminal.py, what terminal_throughput.py's `client_api_*` figures
use) in this process; the figure is this process's CPU time
(`time.process_time`, user + system, all of it the client's: vroomd and
the producer run in other processes) over the whole run, connection and
handshake included, divided by the MB (10^6 bytes) received. Wall-clock
rates on a shared 2-core box move with the load; CPU per MB hardly does,
and it is what decides the client's share of the two cores. Median of RUNS.
It still moves with how many bytes each wake-up finds (a client that keeps
up better reads more often, fewer bytes each time), so the script also
measures the receive path alone on a fixed shape: 4 KiB pty DATA frames
(what vroomd sends a busy PTY's output in) fed to the running session's
transport protocol 16 frames a read, no socket wait, `on_output` counting
the bytes; with the fast path (`_fast`) and with it off (`_general`: the
event tap, `TerminalClient.handle_event`, `PtyOutput`, `ack`; what the
client did before). No flow control there (fed bytes were never sent by
vroomd, so no WINDOW_ACK may go back): the general path's ack then costs a
call but sends nothing, as 31 of 32 frames do with the default window.
`_tcp_cut`: the same over TCP in 64 KiB reads, which end inside frames, as
a client that falls behind reads: after a read that ended inside a frame,
the core's `receive_fast` hands the whole next read to the general path
(it offers only reads that start on a frame boundary), so most frames
go the general way there.

Run: RUNS=3 .venv/bin/python bench/terminal_client_cpu.py [MiB]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Any

from _terminal import CLIENT_OPTIONS, CountingClient, Vroomd, compile_packages, emit

SIZE_MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 50
RUNS = int(os.environ.get("RUNS", "3"))
CMD = f"head -c {SIZE_MIB}M /dev/zero | base64"


def once(url: str, token: str) -> float:
    start = time.process_time()
    total, _first, _end = asyncio.run(CountingClient(url, token, CMD).run())
    used = time.process_time() - start
    if total < SIZE_MIB * 1024 * 1024:
        raise RuntimeError(f"client API: only {total} bytes")
    return used * 1e3 / (total / 1e6)


FRAME = 4096
PER_READ = 16
FRAMES = 20000


def _ws(frame: bytes) -> bytes:
    size = len(frame)
    head = bytes((0x82, size)) if size < 126 else bytes((0x82, 126, size >> 8, size & 0xFF))
    return head + frame


async def fed(url: str, token: str, scheme: str, fast: bool, read: int = 0) -> float:
    """CPU µs per 4 KiB output frame of the client's receive path (docstring)."""
    import vroom_terminal.aio
    from openmux import encode_frame

    got = [0]

    def count(data: bytes) -> None:
        got[0] += len(data)

    async with vroom_terminal.aio.connect(url, token=token, window=None, **CLIENT_OPTIONS) as conn:
        if not fast:
            conn._install_fast_path = lambda *args: None  # type: ignore[method-assign]
        process = await conn.create_process("sleep 600", on_output=count)
        channel = conn.client.sessions[process.key].pty_id
        assert channel is not None
        sink: Any = conn.session.sink
        proto = sink.ws if scheme == "ws" else sink
        frame = encode_frame(channel, 0, b"A" * FRAME)
        stream = (_ws(frame) if scheme == "ws" else frame) * FRAMES
        read = read or len(stream) // FRAMES * PER_READ
        chunks = [stream[i : i + read] for i in range(0, len(stream), read)]
        receive = proto.data_received
        start = time.process_time()
        for chunk in chunks:
            receive(chunk)
        used = time.process_time() - start
        process.close()
    if got[0] != FRAMES * FRAME:
        raise RuntimeError(f"fed {FRAMES * FRAME} bytes, counted {got[0]}")
    return used / FRAMES * 1e6


def main() -> None:
    compile_packages()
    vroomd = Vroomd()
    try:
        for scheme in ("ws", "tcp"):
            figures = [once(vroomd.url(scheme), vroomd.token) for _ in range(RUNS)]
            emit(f"terminal_client_api_cpu_{scheme}", statistics.median(figures), "ms/MB")
        for scheme in ("ws", "tcp"):
            for fast in (True, False):
                url = vroomd.url(scheme)
                runs = [asyncio.run(fed(url, vroomd.token, scheme, fast)) for _ in range(RUNS)]
                name = f"terminal_client_api_receive_{scheme}_{'fast' if fast else 'general'}"
                emit(name, min(runs), "us/frame")
        for fast in (True, False):  # TCP reads that end inside frames: see the docstring
            url = vroomd.url("tcp")
            runs = [asyncio.run(fed(url, vroomd.token, "tcp", fast, 65536)) for _ in range(RUNS)]
            name = f"terminal_client_api_receive_tcp_cut_{'fast' if fast else 'general'}"
            emit(name, min(runs), "us/frame")
    finally:
        vroomd.stop()


if __name__ == "__main__":
    main()
