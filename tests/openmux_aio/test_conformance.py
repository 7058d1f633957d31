"""One conformance suite, run over every transport of `conftest.TRANSPORTS`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
from typing import Any

import openmux.aio as aio
import pytest
from openmux import ChannelSpec, CloseCode, ControlType, encode_frame

from .endpoints import Endpoint
from .peer import CMD, REPLY

pytestmark = pytest.mark.timeout(120)

# Hang protection only (never asserted on): how long a test waits for something
# that must happen.
PATIENCE = 30.0


def client_policy(spec: ChannelSpec) -> int | None:
    return 4000 if spec.name.startswith("deny") else None


async def ctl(channel: aio.Channel, op: str, **args: Any) -> dict[str, Any]:
    await channel.send(CMD, json.dumps({"op": op, **args}).encode())
    while True:
        message = await channel.recv()
        if message.type == REPLY:
            reply: dict[str, Any] = json.loads(message.data)
            return reply


async def test_handshake_and_channels_granted_in_hello(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls() as ep:
        session = await ep.connect(
            channels=["echo", ChannelSpec("ctl"), ChannelSpec("deny-me")], application="test/1"
        )
        assert session.is_open
        assert session.handshake is not None
        assert set(session.channels) == {"echo", "ctl"}  # deny-me omitted from WELCOME
        with pytest.raises(KeyError):
            session.channel("deny-me")
        echo = session.channel("echo")
        await echo.send(7, b"hello")
        assert await echo.recv() == aio.Message(7, b"hello")
        info = await ctl(session.channel("ctl"), "info")
        assert info["hello"]["application"] == "test/1"
        assert "auth" not in info["hello"]
        await session.close()
        assert session.close_code == CloseCode.NORMAL
        assert not session.closed_by_peer


@pytest.mark.parametrize("token", ["secret", None, "wrong"])
async def test_token_auth(endpoint_cls: type[Endpoint], token: str | None) -> None:
    async with endpoint_cls(token="secret") as ep:
        if token == "secret":
            session = await ep.connect(token=token, channels=["echo"])
            await session.channel("echo").send(1, b"x")
            assert (await session.channel("echo").recv()).data == b"x"
            await session.close()
        else:
            with pytest.raises(aio.HandshakeError) as info:
                await ep.connect(token=token, channels=["echo"])
            assert info.value.code == CloseCode.AUTH_FAILED


async def test_dynamic_channels_both_ways(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls() as ep:
        session = await ep.connect(channels=["ctl"], channel_policy=client_policy)
        control = session.channel("ctl")
        # client opens, server acks; both directions carry data
        dyn = await session.open_channel("dyn", reliable=True, ordered=True)
        assert session.channel("dyn") is dyn
        await dyn.send(1, b"abc")
        assert await dyn.recv() == aio.Message(1, b"abc")
        # client opens, server rejects with its code
        with pytest.raises(aio.ChannelRejectedError) as rejected:
            await session.open_channel("deny-this")
        assert rejected.value.code == 4000
        # server opens, client accepts it
        reply = await ctl(control, "open", name="from-server")
        assert reply["ok"]
        incoming = await asyncio.wait_for(session.accept(), PATIENCE)
        assert incoming.name == "from-server" and incoming.id == reply["id"]
        await incoming.send(2, b"both ways")
        assert await incoming.recv() == aio.Message(2, b"both ways")
        # server opens, client's policy rejects it with a code
        reply = await ctl(control, "open", name="deny-server")
        assert reply == {"ok": False, "code": 4000}
        # client closes a channel: the server forgets it
        await dyn.close()
        with pytest.raises(aio.ChannelClosedError):
            await dyn.send(1, b"late")
        with pytest.raises(aio.ChannelClosedError):
            await dyn.recv()
        assert "dyn" not in (await ctl(control, "channels"))["channels"]
        # server closes a channel: iteration on the client ends
        assert (await ctl(control, "close", name="from-server"))["ok"]
        received = [m async for m in incoming]
        assert received == [] and incoming.closed
        assert "from-server" not in session.channels
        # the name is free again
        again = await session.open_channel("dyn")
        await again.send(1, b"again")
        assert (await again.recv()).data == b"again"
        await session.close()


async def test_ten_mib_message_fragmented_byte_exact(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls() as ep:
        session = await ep.connect(channels=["bulk"])
        assert session.connection.max_message_size == 65535
        payload = os.urandom(10 * 1024 * 1024)
        bulk = session.channel("bulk")
        sender = asyncio.get_running_loop().create_task(bulk.send(9, payload))
        message = await asyncio.wait_for(bulk.recv(), PATIENCE)
        await sender
        assert message.type == 9
        assert len(message.data) == len(payload)
        assert hashlib.sha256(message.data).digest() == hashlib.sha256(payload).digest()
        await session.close()


async def test_ten_thousand_small_messages_in_order(endpoint_cls: type[Endpoint]) -> None:
    count = 10_000
    async with endpoint_cls() as ep:
        session = await ep.connect(channels=["echo"])
        echo = session.channel("echo")

        async def send_all() -> None:
            for seq in range(count):
                await echo.send(1, struct.pack(">I", seq) + b"....")

        sender = asyncio.get_running_loop().create_task(send_all())
        for expected in range(count):
            message = await asyncio.wait_for(echo.recv(), PATIENCE)
            assert struct.unpack(">I", message.data[:4])[0] == expected
        await sender
        await session.close()


async def test_ping_reports_rtt(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls() as ep:
        session = await ep.connect()
        rtt = await asyncio.wait_for(session.ping(), PATIENCE)
        assert rtt >= 0
        assert session.rtt == rtt
        await session.close()


async def test_keepalive_keeps_an_idle_session_open(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls(ping_interval=0.05, ping_timeout=2) as ep:
        session = await ep.connect(channels=["echo"])
        assert session.connection.ping_interval == 0.05  # the server's value wins
        for _ in range(3):  # idle across several ping intervals
            await asyncio.sleep(0.1)
        assert session.is_open
        await session.channel("echo").send(1, b"still here")
        assert (await session.channel("echo").recv()).data == b"still here"
        await session.close()


async def test_silent_peer_detected_by_ping_timeout(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls(ping_interval=0.2, ping_timeout=0.5) as ep:
        session = await ep.connect(channels=["echo"])
        await ep.cut()
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert session.close_code == CloseCode.GOING_AWAY
        assert session.close_reason == "ping timeout"
        with pytest.raises(aio.SessionClosedError):
            await session.ping()


async def test_killed_peer_detected(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls(ping_interval=0.2, ping_timeout=0.5) as ep:
        session = await ep.connect(channels=["echo"])
        echo = session.channel("echo")
        await ep.kill()
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert session.close_code == CloseCode.GOING_AWAY
        assert session.closed_by_peer or session.close_reason == "ping timeout"
        with pytest.raises(aio.ChannelClosedError):
            await echo.recv()
        with pytest.raises(aio.SessionClosedError):
            await session.open_channel("more")


async def test_slow_reader_makes_the_sender_wait(endpoint_cls: type[Endpoint]) -> None:
    """The peer floods 32 MiB; we do not read for a while. Memory stays bounded on
    both sides (the sender waited), and every message then arrives in order."""
    count, size = 512, 64 * 1024
    write_limit = 256 * 1024
    async with endpoint_cls(write_limit=write_limit) as ep:
        read_limit = 512 * 1024
        # what we may hold unread: the limit, plus the transport read (asyncio
        # reads up to 256 KiB) during which the limit was crossed
        bound = read_limit + 256 * 1024 + size + 64
        session = await ep.connect(channels=["ctl", "flood"], read_limit=read_limit)
        control, flood = session.channel("ctl"), session.channel("flood")
        await control.send(
            CMD, json.dumps({"op": "flood", "name": "flood", "count": count, "size": size}).encode()
        )
        await asyncio.sleep(1.0)  # the slow reader: reads nothing for a while
        assert session._unread <= bound
        for expected in range(count):
            message = await asyncio.wait_for(flood.recv(), PATIENCE)
            assert len(message.data) == size
            assert struct.unpack(">I", message.data[:4])[0] == expected
            assert session._unread <= bound
        report = json.loads((await asyncio.wait_for(control.recv(), PATIENCE)).data)
        assert report["op"] == "flood-done"
        assert report["waited"] is True
        assert report["max_buffer"] <= write_limit + size + 64
        await session.close()


def hello(**fields: Any) -> bytes:
    body = {"version": [0, 1, 0], **fields}
    return encode_frame(0, ControlType.HELLO, json.dumps(body).encode())


BAD_FRAMES = {
    # name: (frames after a valid HELLO, expected CLOSE code, expected ERROR code)
    "reserved-byte": ([b"\x01\x01\x00\x07\x00\x00"], 1002, None),
    "reserved-flag-bits": ([b"\x00\x10\x08\x00\x00\x00"], 1002, None),
    "channel-255": ([b"\xff\x01\x00\x00\x00\x00"], 1002, None),
    "too-large": ([b"\x00\x10\x01\x00" + struct.pack(">I", 70000) + b"\0" * 70000], 4005, 4005),
    "second-hello": ([hello()], 1002, None),
    "bad-ping-length": ([encode_frame(0, ControlType.PING, b"\0\0")], 1002, None),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_bad_frames_from_a_raw_client(endpoint_cls: type[Endpoint], case: str) -> None:
    frames, close_code, error_code = BAD_FRAMES[case]
    async with endpoint_cls(close_timeout=0.1) as ep:
        try:
            result = await ep.raw_exchange([hello(), *frames])
        except NotImplementedError:
            pytest.skip(f"{ep.name} has no raw client")
        assert result.control(ControlType.WELCOME)
        closes = result.control(ControlType.CLOSE)
        assert closes and closes[0]["code"] == close_code
        if error_code is not None:
            assert result.control(ControlType.ERROR)[0]["code"] == error_code
        if result.ws_close_code is not None:
            assert result.ws_close_code == 1000


async def test_raw_client_before_handshake(endpoint_cls: type[Endpoint]) -> None:
    async with endpoint_cls(token="secret", close_timeout=0.1) as ep:
        try:
            not_hello = await ep.raw_exchange([encode_frame(0, ControlType.PING, b"\0" * 4)])
            bad_auth = await ep.raw_exchange([hello(auth={"type": "token", "token": "nope"})])
            no_token = await ep.raw_exchange([hello(auth={"type": "token"})])
            unknown_channel = await ep.raw_exchange(
                [
                    hello(auth={"type": "token", "token": "secret"}),
                    encode_frame(9, 1, b"x"),
                    encode_frame(0, ControlType.CLOSE, b'{"code":1000}'),
                ]
            )
        except NotImplementedError:
            pytest.skip(f"{ep.name} has no raw client")
        assert not_hello.control(ControlType.CLOSE)[0]["code"] == 1002
        assert bad_auth.control(ControlType.CLOSE)[0]["code"] == 4000
        assert not bad_auth.control(ControlType.WELCOME)
        assert no_token.control(ControlType.CLOSE)[0]["code"] == 4000
        assert unknown_channel.control(ControlType.ERROR)[0]["code"] == 4003


async def test_garbage_stream_closed_without_a_frame(endpoint_cls: type[Endpoint]) -> None:
    if not endpoint_cls.stream:
        pytest.skip("message transport: no stream start to get wrong")
    async with endpoint_cls() as ep:
        try:
            result = await ep.raw_exchange([b"GET / HTTP/1.1\r\n\r\n"], magic=False)
        except NotImplementedError:
            pytest.skip(f"{ep.name} has no raw client")
        assert result.frames == []
