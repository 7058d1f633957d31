"""The WebRTC binding rules (OPENMUX.md §3) between real aiortc peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
from http import HTTPStatus
from typing import Any

import openmux.aio as aio
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from openmux import ChannelSpec, CloseCode, ControlType, encode_frame
from openmux.aio import _http, webrtc
from openmux.aio.session import Options

from .helpers import (
    LOOPBACK,
    PATIENCE,
    RawPeer,
    echo_handler,
    http_base,
    listener_of,
    raw_peer,
    webrtc_server,
)


def sink_of(session: aio.Session) -> webrtc.DataChannelSink:
    assert isinstance(session.sink, webrtc.DataChannelSink)
    return session.sink


def recording(sessions: list[aio.Session]) -> Any:
    async def handler(session: aio.Session) -> None:
        sessions.append(session)
        await echo_handler(session)

    return handler


async def connect(server: aio.Server, **options: Any) -> aio.Session:
    return await aio.connect(server.urls[0], ice_hosts=LOOPBACK, **options)


def parameters(dc: Any) -> tuple[str, str, bool, int | None, int | None]:
    return dc.label, dc.protocol, dc.ordered, dc.maxRetransmits, dc.maxPacketLifeTime


SPECS = [
    ChannelSpec("reliable"),
    ChannelSpec("unordered", reliable=True, ordered=False),
    ChannelSpec("lossy", reliable=False, ordered=False),
    ChannelSpec("retry3", reliable=False, ordered=True, max_retransmits=3),
    ChannelSpec("lifetime", reliable=False, ordered=False, max_packet_lifetime=100),
]
EXPECTED = {
    "reliable": ("omux/reliable", "openmux/0.1", True, None, None),
    "unordered": ("omux/unordered", "openmux/0.1", False, None, None),
    "lossy": ("omux/lossy", "openmux/0.1", False, 0, None),
    "retry3": ("omux/retry3", "openmux/0.1", True, 3, None),
    "lifetime": ("omux/lifetime", "openmux/0.1", False, None, 100),
}


async def test_one_datachannel_per_channel_with_its_reliability() -> None:
    sessions: list[aio.Session] = []
    async with webrtc_server(recording(sessions)) as server:
        session = await connect(server, channels=SPECS)
        for spec in SPECS:  # a round trip each: both ends have the DataChannel bound
            channel = session.channel(spec.name)
            await channel.send(1, spec.name.encode())
            assert (await asyncio.wait_for(channel.recv(), PATIENCE)).data == spec.name.encode()
        dynamic = await session.open_channel("late", reliable=False, ordered=False)
        await dynamic.send(2, b"late")
        assert (await asyncio.wait_for(dynamic.recv(), PATIENCE)).data == b"late"
        expected = {**EXPECTED, "late": ("omux/late", "openmux/0.1", False, 0, None)}
        for side in (session, sessions[0]):
            dcs = sink_of(side).datachannels
            control = dcs.pop(0)
            assert (control.label, control.protocol, control.negotiated, control.id) == (
                "omux/control",
                "openmux/0.1",
                True,
                0,
            )
            by_name = {side.connection.channels[i].name: parameters(dc) for i, dc in dcs.items()}
            assert by_name == expected
        await session.close()
        assert session.close_code == CloseCode.NORMAL


async def test_frames_wait_for_the_datachannel_then_flow_in_order() -> None:
    """The server writes 1 MiB on a granted channel the moment the handshake is
    done, before the client's DataChannel for it can exist: the frames are held
    (the sender waits past the high-water mark), then delivered in order."""
    count = 16

    async def pusher(session: aio.Session) -> None:
        push = session.channel("push")
        for seq in range(count):
            await push.send(1, seq.to_bytes(4, "big") + bytes(64 * 1024 - 4))
        await session.wait_closed()

    async with webrtc_server(pusher) as server:
        session = await connect(server, channels=["push"])
        push = session.channel("push")
        for seq in range(count):
            message = await asyncio.wait_for(push.recv(), PATIENCE)
            assert int.from_bytes(message.data[:4], "big") == seq
        await session.close()


async def test_server_opened_channel_gets_its_datachannel_from_the_server() -> None:
    async def opener(session: aio.Session) -> None:
        channel = await session.open_channel("from-server", reliable=False, ordered=False)
        await channel.send(5, b"first")
        await session.wait_closed()

    async with webrtc_server(opener) as server:
        session = await connect(server)
        channel = await asyncio.wait_for(session.accept(), PATIENCE)
        assert (await asyncio.wait_for(channel.recv(), PATIENCE)).data == b"first"
        dc = sink_of(session).datachannels[channel.id]
        assert parameters(dc) == ("omux/from-server", "openmux/0.1", False, 0, None)
        await session.close()


async def test_a_datachannel_closing_alone_closes_its_channel() -> None:
    sessions: list[aio.Session] = []
    async with webrtc_server(recording(sessions)) as server:
        session = await connect(server, channels=["doomed", "echo"])
        doomed = session.channel("doomed")
        await doomed.send(1, b"x")
        await asyncio.wait_for(doomed.recv(), PATIENCE)
        sink_of(session).datachannels[doomed.id].close()  # not through OpenMux
        assert [m async for m in doomed] == []  # iteration ends: the channel closed
        peer = sessions[0]
        for _ in range(200):
            if "doomed" not in peer.channels:
                break
            await asyncio.sleep(0.01)
        assert "doomed" not in peer.channels
        assert session.is_open and peer.is_open  # only the channel went
        await asyncio.wait_for(session.ping(), PATIENCE)
        echo = session.channel("echo")
        await echo.send(1, b"still fine")
        assert (await asyncio.wait_for(echo.recv(), PATIENCE)).data == b"still fine"
        await session.close()


async def test_control_datachannel_closing_ends_the_session() -> None:
    sessions: list[aio.Session] = []
    async with webrtc_server(recording(sessions)) as server:
        session = await connect(server, channels=["echo"])
        sink_of(session).control.close()
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        await asyncio.wait_for(sessions[0].wait_closed(), PATIENCE)
        assert session.close_code == CloseCode.GOING_AWAY
        assert sessions[0].close_code == CloseCode.GOING_AWAY


async def test_raw_peer_datachannels_protocols_and_labels() -> None:
    async with webrtc_server() as server, raw_peer(server) as peer:
        hello = {
            "version": [0, 1, 0],
            "channels": [{"name": "x", "reliable": True, "ordered": True}],
        }
        peer.control.send(encode_frame(0, ControlType.HELLO, json.dumps(hello).encode()))
        _, welcome = await peer.next(ControlType.WELCOME)
        (entry,) = json.loads(welcome[3])["channels"]
        channel_id = entry["id"]
        refused = {
            "wrong protocol": peer.pc.createDataChannel("omux/x", protocol="chat"),
            "not a channel": peer.pc.createDataChannel("omux/nope", protocol="openmux/0.1"),
            "not omux": peer.pc.createDataChannel("x", protocol="openmux/0.1"),
            "control label": peer.pc.createDataChannel("omux/control", protocol="openmux/0.1"),
        }
        closed = {name: asyncio.Event() for name in refused}
        for name, dc in refused.items():
            dc.on("close", closed[name].set)
        await asyncio.sleep(0.2)  # let the refusals happen before the real one binds
        accepted = peer.pc.createDataChannel("omux/x", protocol="xumux/0.1")  # upstream's name
        peer.watch(accepted)
        opened = asyncio.Event()
        accepted.on("open", opened.set)
        await asyncio.wait_for(opened.wait(), PATIENCE)
        duplicate = peer.pc.createDataChannel("omux/x", protocol="openmux/0.1")
        duplicate_closed = asyncio.Event()
        duplicate.on("close", duplicate_closed.set)
        accepted.send(encode_frame(channel_id, 7, b"via xumux/0.1"))
        label, frame = await peer.next()
        assert label == "omux/x" and frame == (channel_id, 7, 0, b"via xumux/0.1")
        for event in closed.values():
            await asyncio.wait_for(event.wait(), PATIENCE)
        await asyncio.wait_for(duplicate_closed.wait(), PATIENCE)
        # tolerant routing: a frame for a channel that is not open, on omux/control
        peer.control.send(encode_frame(9, 1, b"?"))
        _, error = await peer.next(ControlType.ERROR)
        assert json.loads(error[3])["code"] == CloseCode.CHANNEL_NOT_FOUND
        # a text message is a protocol error
        peer.control.send("text")
        _, close = await peer.next(ControlType.CLOSE)
        assert json.loads(close[3])["code"] == CloseCode.PROTOCOL_ERROR


async def test_max_message_size_fits_one_sctp_message() -> None:
    async with webrtc_server(max_message_size=0) as server:
        session = await connect(server, channels=["echo"], max_message_size=0)
        # aiortc advertises 256 KiB: both sides announce what fits a frame in it
        assert session.connection.max_message_size == 262144 - 8
        echo = session.channel("echo")
        payload = bytes(range(256)) * 800  # 200 KiB in one frame
        await echo.send(1, payload)
        assert (await asyncio.wait_for(echo.recv(), PATIENCE)).data == payload
        await session.close()


def test_fit_options() -> None:
    options = Options(max_message_size=65535)
    assert (
        webrtc._fit_options(options, "v=0\r\na=max-message-size:1000\r\n").max_message_size == 992
    )
    assert webrtc._fit_options(options, "v=0\r\n").max_message_size == 65536 - 8
    assert webrtc._fit_options(options, "a=max-message-size:0\r\n") is options
    assert webrtc._fit_options(options, "a=max-message-size:262144\r\n") is options
    unlimited = Options(max_message_size=0)
    assert webrtc._fit_options(unlimited, "a=max-message-size:262144").max_message_size == 262136


async def test_ice_hosts_pins_the_host_candidates() -> None:
    async def candidates(hosts: list[str] | None) -> list[str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("probe")
        with webrtc.ice_hosts(hosts):
            await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) ", sdp)

    assert await candidates(LOOPBACK) == ["127.0.0.1"]
    assert "127.0.0.1" not in await candidates(None)  # aioice's own choice: no loopback
    assert await candidates([]) == []
    hook = webrtc.aioice.ice.get_host_addresses
    with webrtc.ice_hosts(["127.0.0.1", "::1"]):
        assert hook(True, False) == ["127.0.0.1"]
        assert hook(False, True) == ["::1"]
    assert webrtc._hosts(Options(extra={"ice_hosts": "127.0.0.1"})) == ["127.0.0.1"]
    assert webrtc._hosts(Options()) is None


def test_candidate_parsing_and_reachability() -> None:
    text = "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host"
    parsed = webrtc._candidate({"candidate": text, "sdpMid": "0"})
    assert parsed is not None and (parsed.ip, parsed.port, parsed.sdpMid) == (
        "127.0.0.1",
        5000,
        "0",
    )
    bare = webrtc._candidate({"candidate": text[len("candidate:") :]})
    assert bare is not None and bare.sdpMLineIndex == 0
    assert webrtc._candidate({"candidate": None}) is None
    assert webrtc._candidate({"candidate": ""}) is None
    for bad in ([], {"candidate": 5}, {"candidate": "candidate:1 2"}, {"candidate": "x" * 2000}):
        with pytest.raises(ValueError):
            webrtc._candidate(bad)
    far = webrtc._candidate({"candidate": text.replace("127.0.0.1", "192.0.2.9")})
    assert not webrtc._reachable(far, LOOPBACK)
    assert webrtc._reachable(far, None) and webrtc._reachable(far, ["192.0.2.2"])
    assert webrtc._reachable(None, LOOPBACK)
    sdp = f"v=0\r\na={text}\r\na={text.replace('127.0.0.1', '192.0.2.9')}\r\n"
    assert webrtc._reachable_sdp(sdp, LOOPBACK) == f"v=0\r\na={text}\r\n"
    assert webrtc._reachable_sdp(sdp, ["0.0.0.0"]) == sdp
    assert webrtc._reachable_sdp(sdp, ["not an address"]) == sdp


async def test_answer_candidates_given_apart_from_the_sdp() -> None:
    """A signaling server may send its candidates in `candidates` (trickle style):
    a stub moves them out of the real server's answer SDP."""
    async with webrtc_server() as server:
        upstream = http_base(server)

        async def stub(request: _http.Request) -> _http.Response:
            status, body = await _http.request("POST", upstream + "/offer", request.body)
            answer = json.loads(body)
            lines = answer["sdp"].split("\r\n")
            answer["candidates"] = [
                {"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0}
                for line in lines
                if line.startswith("a=candidate:")
            ] + [
                {"candidate": "candidate:1 1 udp 1 192.0.2.9 9 typ host", "sdpMid": "0"},
                {"candidate": ""},  # end of candidates
            ]
            answer["sdp"] = "\r\n".join(
                line
                for line in lines
                if not line.startswith(("a=candidate:", "a=end-of-candidates"))
            )
            return _http.Response.json(answer, status)

        proxy = await _http.start_server(stub, "127.0.0.1", 0)
        port = proxy.sockets[0].getsockname()[1]
        try:
            session = await aio.connect(
                f"webrtc+http://127.0.0.1:{port}", channels=["echo"], ice_hosts=LOOPBACK
            )
            await session.channel("echo").send(1, b"trickled")
            assert (await session.channel("echo").recv()).data == b"trickled"
            await session.close()
        finally:
            proxy.close()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ((500, b"oops"), aio.TransportError),
        ((404, b""), aio.TransportError),
        ((200, b"not json"), aio.TransportError),
        ((200, b'{"sdp": 1, "type": "answer"}'), aio.TransportError),
        ((200, b'{"sdp": "v=0", "type": "offer"}'), aio.TransportError),
        ((200, b'{"sdp": "v=0", "type": "answer", "candidates": [7]}'), aio.TransportError),
        ((403, b""), aio.HandshakeError),
    ],
)
async def test_client_refuses_bad_signaling(reply: tuple[int, bytes], error: type) -> None:
    async def stub(request: _http.Request) -> _http.Response:
        return _http.Response(reply[0], reply[1], "application/json")

    server = await _http.start_server(stub, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(error):
            await aio.connect(f"webrtc+http://127.0.0.1:{port}", ice_hosts=LOOPBACK)
    finally:
        server.close()


async def test_client_gives_up_when_ice_fails() -> None:
    async with webrtc_server(ice_hosts=[]) as server:
        # the answer has no candidate and says so (end-of-candidates): ICE fails at once
        with pytest.raises(aio.TransportError, match="before omux/control opened"):
            await aio.connect(server.urls[0], ice_hosts=LOOPBACK, timeout=5)
        listener = listener_of(server)
        (sink,) = listener.peers.values()  # offered, never opened
    await asyncio.wait_for(sink.lost, PATIENCE)  # the server closing dropped it
    assert not listener.peers


async def test_refused_connection_is_an_oserror() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        await aio.connect(f"webrtc+http://127.0.0.1:{port}", ice_hosts=LOOPBACK)


async def test_listener_close_drops_pending_peers() -> None:
    async with webrtc_server(ice_hosts=[]) as server:
        listener = listener_of(server)
        peer = RawPeer()
        try:
            with webrtc.ice_hosts(LOOPBACK):
                await peer.pc.setLocalDescription(await peer.pc.createOffer())
            offer = {"sdp": peer.pc.localDescription.sdp, "type": "offer"}
            status, _ = await _http.request(
                "POST", http_base(server) + "/offer", json.dumps(offer).encode()
            )
            assert status == HTTPStatus.OK
            (sink,) = listener.peers.values()
            server.close()
            await asyncio.wait_for(sink.lost, PATIENCE)
            assert not listener.peers
        finally:
            await peer.close()
