"""The signaling HTTP server of a `webrtc+http://` listener, and the small HTTP layer under it."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

import openmux.aio as aio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux.aio import _http, webrtc
from openmux.aio.static import CONTENT_TYPE, script, static_path

from .helpers import LOOPBACK, RawPeer, echo_handler, http_base, listener_of, webrtc_server


async def raw_http(port: int, data: bytes) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def post(base: str, path: str, body: Any, **kwargs: Any) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await _http.request("POST", base + path, data, **kwargs)


# ------------------------------------------------------------- the module


async def test_serves_the_browser_module() -> None:
    async with webrtc_server(url="webrtc+http://127.0.0.1:0/rtc") as server:
        base = http_base(server)
        assert base.endswith("/rtc")
        root = base.rsplit("/rtc", 1)[0]
        for url in (root + "/openmux.js", base + "/openmux.js"):
            status, body = await _http.request("GET", url)
            assert status == HTTPStatus.OK and body == script()
        assert (static_path() / "openmux.js").read_bytes() == script()
        port = int(root.rsplit(":", 1)[1])
        head = await raw_http(port, b"HEAD /openmux.js HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(head) == 200 and head.endswith(b"\r\n\r\n")
        assert f"Content-Type: {CONTENT_TYPE}".encode() in head
        status, _ = await post(root, "/openmux.js", {})
        assert status == HTTPStatus.METHOD_NOT_ALLOWED


async def test_routes_and_bad_bodies() -> None:
    async with webrtc_server() as server:
        base = http_base(server)
        assert (await _http.request("GET", base + "/nothing"))[0] == HTTPStatus.NOT_FOUND
        assert (await _http.request("GET", base + "/offer"))[0] == HTTPStatus.METHOD_NOT_ALLOWED
        for body in (b"not json", b"[1, 2]", b"\xff\xfe"):
            assert (await post(base, "/offer", body))[0] == HTTPStatus.BAD_REQUEST
        assert (await post(base, "/offer", {"type": "answer", "sdp": "x"}))[0] == 400
        assert (await post(base, "/offer", {"type": "offer", "sdp": 5}))[0] == 400
        status, text = await post(base, "/offer", {"type": "offer", "sdp": "v=0\r\nnonsense"})
        assert status == HTTPStatus.BAD_REQUEST and b"no DataChannels" in text
        broken = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:nonsense\r\n"
        status, text = await post(base, "/offer", {"type": "offer", "sdp": broken})
        assert status == HTTPStatus.BAD_REQUEST and b"unusable offer" in text
        with_app = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        for candidates in ([{"candidate": 7}], 5):
            status, _ = await post(
                base, "/offer", {"type": "offer", "sdp": with_app, "candidates": candidates}
            )
            assert status == HTTPStatus.BAD_REQUEST
        assert not listener_of(server).peers


async def test_cors_only_for_configured_origins() -> None:
    async with webrtc_server(cors_origins="http://127.0.0.1:1") as server:
        port = int(http_base(server).rsplit(":", 1)[1])
        preflight = (
            b"OPTIONS /offer HTTP/1.1\r\nHost: x\r\nOrigin: http://127.0.0.1:1\r\n"
            b"Access-Control-Request-Method: POST\r\n\r\n"
        )
        answer = await raw_http(port, preflight)
        assert status_of(answer) == HTTPStatus.NO_CONTENT
        assert b"Access-Control-Allow-Origin: http://127.0.0.1:1\r\n" in answer
        assert b"Access-Control-Allow-Headers: Authorization, Content-Type" in answer
        other = await raw_http(port, preflight.replace(b"127.0.0.1:1", b"evil.invalid"))
        assert b"Access-Control-Allow-Origin" not in other


async def test_bearer_on_the_offer() -> None:
    seen: list[aio.Session] = []

    async def handler(session: aio.Session) -> None:
        seen.append(session)
        await echo_handler(session)

    async with webrtc_server(handler, token="secret") as server:
        base = http_base(server)
        for bad in ("Bearer wrong", "Bearer ", "Basic c2VjcmV0"):
            status, _ = await post(base, "/offer", {}, headers={"Authorization": bad})
            assert status == HTTPStatus.UNAUTHORIZED
        url = server.urls[0]
        # a good Bearer header authenticates the connection: HELLO needs no token
        good = await aio.connect(url, token="secret", auth_header=True, ice_hosts=LOOPBACK)
        await good.close()
        assert seen[-1].connection.transport_authenticated
        # a bad one is refused before any WebRTC
        with pytest.raises(aio.HandshakeError) as refused:
            await aio.connect(url, token="wrong", auth_header=True, ice_hosts=LOOPBACK)
        assert refused.value.code == 4000
        # no header: the token in HELLO decides
        with pytest.raises(aio.HandshakeError) as refused:
            await aio.connect(url, token="wrong", ice_hosts=LOOPBACK)
        assert refused.value.code == 4000


async def test_trickled_candidates() -> None:
    async with webrtc_server() as server:
        base = http_base(server)
        peer = RawPeer()
        try:
            await peer.connect(base)
            key = peer.answer["id"]
            assert peer.answer["candidates"] == [] and peer.answer["type"] == "answer"
            candidate = {
                "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            }
            unreachable = {
                **candidate,
                "candidate": candidate["candidate"].replace("127.0.0.1", "192.0.2.99"),
            }
            ok = await post(base, "/candidate", {"id": key, **candidate})
            assert ok[0] == HTTPStatus.NO_CONTENT
            batch = {"id": key, "candidates": [unreachable, {"candidate": ""}]}
            assert (await post(base, "/candidate", batch))[0] == HTTPStatus.NO_CONTENT
            assert (await post(base, "/candidate", {"id": "nope"}))[0] == HTTPStatus.NOT_FOUND
            bad = {"id": key, "candidate": "candidate:garbage"}
            assert (await post(base, "/candidate", bad))[0] == HTTPStatus.BAD_REQUEST
        finally:
            await peer.close()


async def test_pending_offers_are_bounded_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webrtc, "MAX_PENDING", 1)
    # no ICE address at all: the control DataChannel can never open
    async with webrtc_server(ice_hosts=[], timeout=0.3) as server:
        listener = listener_of(server)
        first, second = RawPeer(), RawPeer()
        try:
            with webrtc.ice_hosts(LOOPBACK):
                await first.pc.setLocalDescription(await first.pc.createOffer())
            offer = {
                "sdp": first.pc.localDescription.sdp,
                "type": "offer",
                "candidates": [
                    {
                        "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host",
                        "sdpMid": "0",
                    },
                    {
                        "candidate": "candidate:2 1 udp 2122260223 192.0.2.9 9 typ host",
                        "sdpMid": "0",
                    },
                ],
            }
            base = http_base(server)
            assert (await post(base, "/offer", offer))[0] == HTTPStatus.OK
            assert (await post(base, "/offer", offer))[0] == HTTPStatus.SERVICE_UNAVAILABLE
            for _ in range(100):  # expires after `timeout`
                if not listener.peers:
                    break
                await asyncio.sleep(0.05)
            assert not listener.peers
            assert (await post(base, "/offer", offer))[0] == HTTPStatus.OK
        finally:
            await first.close()
            await second.close()


async def test_https_signaling(tmp_path: Any) -> None:
    import ssl

    from openmux.aio import quic

    cert, key = quic.write_self_signed_certificate(tmp_path)
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ssl.load_cert_chain(cert, key)
    with pytest.raises(ValueError, match="ssl"):
        await aio.serve(echo_handler, ["webrtc+https://127.0.0.1:0"])
    async with webrtc_server(url="webrtc+https://127.0.0.1:0", ssl=server_ssl) as server:
        url = server.urls[0]
        assert url.startswith("webrtc+https://")
        client_ssl = ssl.create_default_context(cafile=cert)
        session = await aio.connect(url, channels=["echo"], ssl=client_ssl, ice_hosts=LOOPBACK)
        await session.channel("echo").send(1, b"over https signaling")
        assert (await session.channel("echo").recv()).data == b"over https signaling"
        await session.close()


# ---------------------------------------------------------- the HTTP layer


@pytest.fixture
async def http_echo() -> Any:
    async def handler(request: _http.Request) -> _http.Response:
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        if request.path == "/plain":
            return _http.Response.text(299)
        return _http.Response.json(
            {
                "method": request.method,
                "query": request.query,
                "size": len(request.body),
                "bearer": request.bearer(),
            }
        )

    server = await _http.start_server(
        handler, "127.0.0.1", 0, max_header=1024, max_body=2048, read_timeout=0.3
    )
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 2000 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nContent-Length: 4096\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET * HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n", 408),  # never finished: read_timeout
        (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 408),
        (b"GET /boom HTTP/1.1\r\n\r\n", 500),
        (b"GET /plain HTTP/1.1\r\n\r\n", 299),
    ],
)
async def test_http_server_refuses_bad_requests(
    http_echo: int, request_bytes: bytes, status: int
) -> None:
    assert status_of(await raw_http(http_echo, request_bytes)) == status


async def test_http_request_and_response(http_echo: int) -> None:
    base = f"http://127.0.0.1:{http_echo}"
    status, body = await _http.request(
        "POST", base + "/x?a=1", b"{}", headers={"Authorization": "Bearer tok"}
    )
    assert status == 200
    assert json.loads(body) == {"method": "POST", "query": "a=1", "size": 2, "bearer": "tok"}
    with pytest.raises(ConnectionError):
        await _http.request("GET", base + "/", max_body=10)


async def test_http_client_reads_to_eof_and_limits() -> None:
    replies = [
        b"HTTP/1.1 200 OK\r\n\r\nuntil eof",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100,
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    ]

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(replies.pop(0))
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        assert await _http.request("GET", base) == (200, b"until eof")
        with pytest.raises(ConnectionError, match="over 50"):
            await _http.request("GET", base, max_body=50)
        with pytest.raises(ConnectionError, match="malformed"):
            await _http.request("GET", base)
        with pytest.raises(ConnectionError, match="over 50"):
            await _http.request("GET", base, max_body=50)
    finally:
        server.close()
        await server.wait_closed()


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda method, path, headers, body: (
                f"{method} {path} HTTP/1.1\r\n".encode()
                + b"".join(h + b"\r\n" for h in headers)
                + b"\r\n"
                + body
            ),
            st.sampled_from(["GET", "POST", "OPTIONS", "", "G ET"]),
            st.sampled_from(["/", "/offer", "*", "/a?b=c", ""]),
            st.lists(
                st.one_of(
                    st.binary(max_size=40),
                    st.sampled_from(
                        [
                            b"Content-Length: 5",
                            b"Content-Length: 99999999",
                            b"Content-Length: x",
                            b"Transfer-Encoding: chunked",
                        ]
                    ),
                ),
                max_size=4,
            ),
            st.binary(max_size=20),
        ),
    )
)
def test_request_parser_fuzz(data: bytes) -> None:
    """Any bytes: a Request within the limits, or _BadRequest; never anything else."""

    async def parse() -> None:
        reader = asyncio.StreamReader(limit=256)
        reader.feed_data(data)
        reader.feed_eof()
        try:
            request = await _http._read_request(reader, max_header=256, max_body=64)
        except _http._BadRequest as exc:
            assert 400 <= exc.status < 600
        else:
            assert len(request.body) <= 64 and request.path.startswith("/")

    asyncio.run(parse())
