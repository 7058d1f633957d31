"""`Session.messages_received` (several frames of one read, one batch) and the
WebSocket sink's batching: whatever arrives, grouped anyhow, a session ends
exactly as one fed a message at a time; over a real websockets connection
on 127.0.0.1, bulk output cut at any size (frames kept across reads) comes
out whole and in order, on both sides."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import struct
from collections.abc import Callable, Sequence

import openmux.aio as aio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux import Event, MessageReceived, encode_frame

from .test_fast_path import FAST, OTHER, PATIENCE, Recorder, _logging_server, _messages

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

pytestmark = pytest.mark.timeout(120)


async def _run(messages: list[bytes], cuts: list[int], fast: bool, batched: bool) -> object:
    session, sink, log = _logging_server("message", fast, batch_hello=True)
    if batched:
        for a, b in itertools.pairwise([0, *cuts, len(messages)]):
            session.messages_received(messages[a:b])
    else:
        for message in messages:
            session.message_received(message)
    return log, b"".join(sink.out), sink.closed, session.close_code, session.connection.state


def _ws_frame(payload: bytes, masked: bool = True, opcode: int = 2) -> bytes:
    """A final WebSocket frame (masked as a client's)."""
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((0x80 | opcode, bit | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, bit | 126)) + struct.pack("!H", size)
    else:
        head = bytes((0x80 | opcode, bit | 127)) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    key = bytes(random.randbytes(4))
    return head + key + apply_mask(payload, key)


@settings(max_examples=200, deadline=None)
@given(_messages(), st.data())
def test_batches_equal_one_message_at_a_time(messages: list[bytes], data: st.DataObject) -> None:
    """With and without a fast handler: fast frames until the first that is
    not, then the rest of the batch as the general path takes it."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(messages)), max_size=4)))
    for fast in (False, True):
        one = asyncio.run(_run(messages, cuts, fast, batched=False))
        assert asyncio.run(_run(messages, cuts, fast, batched=True)) == one


def _output(rng: random.Random, channel: int) -> tuple[list[bytes], bytes]:
    """Bulk output as a server sends it: OpenMux frames of every size up to
    64 KiB (16-bit WebSocket lengths), each in one unmasked WebSocket frame."""
    payloads = [
        rng.randbytes(rng.choice([1, 100, 125, 126, 4095, 4096, 20000, 65535 - 6, 65535]))
        for _ in range(40)
    ]
    wire = b"".join(_ws_frame(encode_frame(channel, 0, p), masked=False) for p in payloads)
    return payloads, wire


def feed_cut_anyhow(
    feed: Callable[[bytes], object], wire: bytes, rng: random.Random, sizes: Sequence[int]
) -> None:
    """`wire` to `feed` in reads of sizes drawn from `sizes`: frames and
    their headers cut across reads, as a transport may hand them over."""
    pos = 0
    while pos < len(wire):
        size = rng.choice(sizes)
        feed(wire[pos : pos + size])
        pos += size


@pytest.mark.parametrize("seed", range(3))
async def test_websocket_client_bulk_output_cut_anyhow(seed: int) -> None:
    """websockets' client with the sink's fast receive: reads cut at random
    sizes (frames and headers across reads, a WebSocket ping among them),
    every payload whole and in order, websockets' parser only for the ping."""

    async def handler(session: aio.Session) -> None:
        await asyncio.sleep(PATIENCE)

    server = await aio.serve(handler, "ws://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=[FAST, OTHER])
        ws = client.sink.ws  # type: ignore[union-attr]
        assert not inspect.ismethod(ws.data_received)  # the fast receive is installed
        got: list[bytes] = []
        batches: list[int] = []

        def tap(events: list[Event]) -> list[Event]:
            batches.append(len(events))
            got.extend(bytes(e.data) for e in events if type(e) is MessageReceived)
            return [e for e in events if type(e) is not MessageReceived]

        client.add_event_tap(tap)
        channel = client.channel(FAST).info.id
        rng = random.Random(seed)
        payloads, wire = _output(rng, channel)
        half = len(payloads) // 2
        middle = sum(len(_ws_frame(encode_frame(channel, 0, p), False)) for p in payloads[:half])
        wire = wire[:middle] + _ws_frame(b"ping", False, opcode=9) + wire[middle:]
        feed_cut_anyhow(ws.data_received, wire, rng, [1, 2, 3, 7, 100, 4096, 10000, 70000, 300000])
        for _ in range(1000):
            if len(got) >= len(payloads):
                break
            await asyncio.sleep(0.001)
        assert got == payloads
        assert max(batches) > 1  # several frames of a read in one batch
        assert client.is_open
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_websocket_eof_inside_a_kept_frame() -> None:
    """The peer's EOF in the middle of a frame the sink kept: websockets sees
    the cut frame and ends the connection as it always did."""

    async def handler(session: aio.Session) -> None:
        await asyncio.sleep(PATIENCE)

    server = await aio.serve(handler, "ws://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=[FAST])
        ws = client.sink.ws  # type: ignore[union-attr]
        frame = _ws_frame(encode_frame(client.channel(FAST).info.id, 0, b"x" * 5000), masked=False)
        ws.data_received(frame[:3000])
        ws.eof_received()
        ws.transport.close()
        await asyncio.wait_for(client.wait_closed(), PATIENCE)
        assert client.close_code == 1001
    finally:
        server.close()
        await server.wait_closed()


async def test_websocket_server_batches_masked_frames() -> None:
    """vroomd's side: a client's masked frames, several per read and cut
    across reads, reach the session whole and in order."""
    recorded: asyncio.Future[Recorder] = asyncio.get_running_loop().create_future()

    async def handler(session: aio.Session) -> None:
        recorded.set_result(Recorder(session, fast_types=()))
        await asyncio.sleep(PATIENCE)

    server = await aio.serve(handler, "ws://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=[FAST, OTHER])
        recorder = await asyncio.wait_for(recorded, PATIENCE)
        ws = recorder.session.sink.ws  # type: ignore[union-attr]
        rng = random.Random(7)
        sizes = [0, 1, 119, 120, 3000, 4096, 30000]
        expected = [(FAST, 1, rng.randbytes(rng.choice(sizes))) for _ in range(30)]
        wire = b"".join(_ws_frame(encode_frame(recorder.ids[FAST], 1, p)) for _, _, p in expected)
        for pos in range(0, len(wire), 5000):
            ws.data_received(wire[pos : pos + 5000])
        for _ in range(1000):
            if len(recorder.log) >= len(expected):
                break
            await asyncio.sleep(0.001)
        assert recorder.log == expected
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_websocket_reading_paused_by_a_batch_with_a_kept_frame() -> None:
    """A batch puts the session over its read limit while a frame is kept:
    the kept bytes and the rest go through websockets (which holds them while
    reading is paused); every message still arrives, in order, a 64-bit
    WebSocket length (a 64 KiB OpenMux frame) included."""

    async def handler(session: aio.Session) -> None:
        await asyncio.sleep(PATIENCE)

    server = await aio.serve(handler, "ws://127.0.0.1:0")
    try:
        client = await aio.connect(server.urls[0], channels=[FAST], read_limit=1000)
        ws = client.sink.ws  # type: ignore[union-attr]
        channel = client.channel(FAST)
        payloads = [bytes([i]) * 800 for i in range(3)] + [b"k" * 3000, b"L" * 65535, b"z"]
        wire = b"".join(_ws_frame(encode_frame(channel.id, 0, p), False) for p in payloads)
        first = 3 * 806 + 2 + 1000  # three frames and a cut fourth
        ws.data_received(wire[:first])
        assert client._read_paused
        ws.data_received(wire[first:])
        got = [(await asyncio.wait_for(channel.recv(), PATIENCE)).data for _ in payloads]
        assert got == payloads
        assert client.is_open
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
