"""Fuzzing the QUIC binding's decoders: the per-stream splitter against the
core's FrameReader, and random datagrams / stream bytes sent to a live server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openmux.aio as aio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux import CloseCode, ControlType, FrameReader, decode_message, encode_frame
from openmux.aio.quic import StreamSplitter

from .conftest import echo_handler
from .raw import channel, hello, raw_peer

LIMIT = 4096


def chunked(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        yield data[start:cut]
        start = cut
    yield data[start:]


@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=12))
@settings(max_examples=400)
def test_splitter_agrees_with_the_core_reader(data: bytes, cuts: list[int]) -> None:
    splitter, reader = StreamSplitter(LIMIT), FrameReader(LIMIT)
    mine: list[bytes] = []
    for chunk in chunked(data, cuts):
        if chunk:
            mine.extend(splitter.feed(chunk))
    expected = reader.feed(data)
    assert [decode_message(frame) for frame in mine] == expected
    assert type(splitter.error) is type(reader.error)
    assert sum(map(len, mine)) <= len(data)


frames_strategy = st.lists(
    st.tuples(
        st.integers(0, 254),
        st.integers(0, 255),
        st.binary(max_size=300),
        st.sampled_from([0, 2, 6]),
    ),
    max_size=20,
)


@given(frames=frames_strategy, cuts=st.lists(st.integers(0, 8000), max_size=30))
@settings(max_examples=300)
def test_valid_frames_come_out_whole_whatever_the_cuts(
    frames: list[tuple[int, int, bytes, int]], cuts: list[int]
) -> None:
    encoded = [encode_frame(c, t, p, f) for c, t, p, f in frames]
    splitter = StreamSplitter(LIMIT)
    out: list[bytes] = []
    for chunk in chunked(b"".join(encoded), cuts):
        if chunk:
            out.extend(splitter.feed(chunk))
    assert out == encoded
    assert splitter.error is None


def test_declared_length_is_checked_before_buffering() -> None:
    splitter = StreamSplitter(LIMIT)
    header = b"\x01\x01\x01\x00" + (10**9).to_bytes(4, "big")
    assert splitter.feed(header) == []
    assert splitter.error is not None and splitter.error.code == CloseCode.MESSAGE_TOO_LARGE
    assert splitter.feed(b"x" * 100) == []  # stopped: nothing more is kept


# ------------------------------------------------------- against a live server

OUTCOMES = {CloseCode.PROTOCOL_ERROR, CloseCode.MESSAGE_TOO_LARGE, CloseCode.INVALID_MESSAGE}


class LiveServer:
    """One server for all examples; each example is a fresh raw QUIC client."""

    def __init__(self, cert: tuple[str, str]) -> None:
        self.cert = cert
        self.runner = asyncio.Runner()
        self.server: aio.Server | None = None

    def __enter__(self) -> LiveServer:
        async def start() -> aio.Server:
            return await aio.serve(
                echo_handler,
                ["quic://127.0.0.1:0"],
                certfile=self.cert[0],
                keyfile=self.cert[1],
                close_timeout=0.05,
            )

        self.errors: list[dict[str, Any]] = []
        self.runner.get_loop().set_exception_handler(lambda _, ctx: self.errors.append(ctx))
        self.server = self.runner.run(start())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self.server is not None
            self.server.close()
            await self.server.wait_closed()

        self.runner.run(stop())
        self.runner.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.url("quic").rsplit(":", 1)[1])

    def exchange(self, stream_bytes: bytes, datagrams: list[bytes]) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            async with raw_peer(self.port, self.cert[0]) as peer:
                peer.send(0, hello(channels=[channel("r"), channel("u", False, False)]))
                welcome = await peer.welcome()
                entries = {e["name"]: e for e in welcome["channels"]}
                sid = entries["r"]["streamId"]
                await peer.wait_for(lambda: peer.frames(sid))
                if stream_bytes:
                    peer.send(sid, stream_bytes)
                for datagram in datagrams:
                    peer.send_datagram(datagram)
                # a marker: once its echo is back, everything before was handled
                peer.send(sid, encode_frame(entries["r"]["id"], 0xEE, b"marker"))
                try:
                    async with asyncio.timeout(2):
                        await peer.wait_for(
                            lambda: (
                                peer.control(ControlType.CLOSE)
                                or peer.terminated
                                or any(f[1] == 0xEE for f in peer.frames(sid))
                            )
                        )
                except TimeoutError:
                    pass
                return {"closes": peer.control(ControlType.CLOSE)}

        return self.runner.run(run())


@pytest.fixture(scope="module")
def live(cert: tuple[str, str]) -> Iterator[LiveServer]:
    with LiveServer(cert) as server:
        yield server


@given(
    stream_bytes=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda c, t, f, p: bytes([c, t, f, 0]) + len(p).to_bytes(2, "big") + p,
            st.sampled_from([0, 1, 2, 3, 255]),
            st.integers(0, 255),
            st.integers(0, 255),
            st.binary(max_size=50),
        ),
    ),
    datagrams=st.lists(st.binary(max_size=80), max_size=3),
)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_live_server_answers_any_bytes_with_a_close_code_or_carries_on(
    live: LiveServer, stream_bytes: bytes, datagrams: list[bytes]
) -> None:
    result = live.exchange(stream_bytes, datagrams)
    assert not live.errors, live.errors
    for close in result["closes"]:
        assert close["code"] in OUTCOMES, json.dumps(close)
