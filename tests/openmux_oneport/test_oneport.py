"""One port for WebSocket sessions, WebRTC signaling, `/openmux.js` and the
application's GET routes (`serve(..., webrtc=True)`, aio/ws.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from http import HTTPStatus
from pathlib import Path
from typing import Any

import openmux.aio as aio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux.aio import _http, webrtc
from openmux.aio import ws as ws_module
from openmux.aio.static import CONTENT_TYPE, script
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response

LOOPBACK = ["127.0.0.1"]
PATIENCE = 20.0  # hang protection only, never asserted on


async def echo_handler(session: aio.Session) -> None:
    async def echo(channel: aio.Channel) -> None:
        async for kind, data in channel:
            try:
                await channel.send(kind, data)
            except aio.ChannelClosedError:
                return

    tasks = [asyncio.create_task(echo(c)) for c in list(session.channels.values())]
    try:
        await session.wait_closed()
    finally:
        for task in tasks:
            task.cancel()


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def raw_http(port: int, data: bytes, eof: bool = False) -> bytes:
    """Send raw bytes (then EOF if asked), return all the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), PATIENCE)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def echo_once(url: str, **kwargs: Any) -> aio.Session:
    session = await aio.connect(url, channels=["echo"], ice_hosts=LOOPBACK, **kwargs)
    await session.channel("echo").send(1, b"one port")
    assert (await asyncio.wait_for(session.channel("echo").recv(), PATIENCE)).data == b"one port"
    return session


def serve(urls: str | list[str], **options: Any) -> Any:
    options.setdefault("ice_hosts", LOOPBACK)
    options.setdefault("channel_policy", lambda spec: None)
    return aio.serve(echo_handler, urls, **options)


# ------------------------------------------------------------ both sessions


async def test_webrtc_option_serves_both_transports_on_the_ws_port() -> None:
    async with await serve("ws://127.0.0.1:0/omux", webrtc=True) as server:
        (listener,) = server.listeners
        ws_url, rtc_url = server.url("ws"), server.url("webrtc+http")
        assert port_of(ws_url) == port_of(rtc_url)
        assert rtc_url == f"webrtc+http://127.0.0.1:{port_of(ws_url)}"
        rtc = await echo_once(rtc_url)
        assert rtc.transport_info["transport"] == "webrtc"
        plain = await echo_once(ws_url)
        # the same handler got both, and the WebSocket's transport now calls
        # websockets directly: nothing of ours sits in its data path
        assert len(server.sessions) == 2
        (ws_side,) = [s for s in server.sessions if s.transport_info.get("transport") is None]
        connection = ws_side.sink.ws
        assert isinstance(connection, ServerConnection)
        assert connection.transport.get_protocol() is connection
        # the signaling also answers under the OpenMux paths (vroom://h:p/omux/vroom)
        sub = await echo_once(rtc_url + "/omux/vroom")
        for session in (rtc, plain, sub):
            await session.close()
        assert isinstance(listener, ws_module.WebSocketListener)
        assert isinstance(listener.signaling, webrtc.WebRTCListener)


async def test_webrtc_url_on_the_port_of_a_ws_url_shares_it() -> None:
    port = free_port()
    urls = [f"webrtc+http://127.0.0.1:{port}/rtc", f"ws://127.0.0.1:{port}/omux"]
    assert aio._shared_ports(urls) == [(urls[1], {"webrtc_bases": ["/rtc"]})]
    # port 0 means two free ports, a different host or scheme is not the same listener
    apart = [
        "ws://127.0.0.1:0",
        "webrtc+http://127.0.0.1:0",
        "webrtc+http://127.0.0.2:80",
        "webrtc+https://127.0.0.1:80",
        "ws://127.0.0.1:80",
    ]
    assert [url for url, _ in aio._shared_ports(apart)] == apart
    async with await serve(urls) as server:
        assert len(server.listeners) == 1
        assert server.urls == [f"ws://127.0.0.1:{port}/omux", f"webrtc+http://127.0.0.1:{port}/rtc"]
        for url in (server.url("webrtc+http"), f"webrtc+http://127.0.0.1:{port}", server.url("ws")):
            await (await echo_once(url)).close()


async def test_wss_and_https_signaling_share_a_port(tmp_path: Path) -> None:
    from openmux.aio import quic

    cert, key = quic.write_self_signed_certificate(tmp_path)
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ssl.load_cert_chain(cert, key)
    client_ssl = ssl.create_default_context(cafile=cert)
    async with await serve("wss://127.0.0.1:0", webrtc=True, ssl=server_ssl) as server:
        assert port_of(server.url("wss")) == port_of(server.url("webrtc+https"))
        for url in (server.url("webrtc+https"), server.url("wss")):
            await (await echo_once(url, ssl=client_ssl)).close()
        base = server.url("webrtc+https").replace("webrtc+", "")
        assert await _http.request("GET", base + "/openmux.js", ssl=client_ssl) == (200, script())


async def test_bearer_auth_is_the_same_on_both() -> None:
    async with await serve("ws://127.0.0.1:0", webrtc=True, token="secret") as server:
        rtc_url, ws_url = server.url("webrtc+http"), server.url("ws")
        base = rtc_url.replace("webrtc+", "")
        offer = json.dumps({"type": "offer", "sdp": "v=0"}).encode()
        status, _ = await _http.request(
            "POST", base + "/offer", offer, headers={"Authorization": "Bearer wrong"}
        )
        assert status == HTTPStatus.UNAUTHORIZED
        for url in (rtc_url, ws_url):
            with pytest.raises(aio.HandshakeError) as refused:
                await aio.connect(url, token="wrong", auth_header=True, ice_hosts=LOOPBACK)
            assert refused.value.code == 4000
            session = await echo_once(url, token="secret", auth_header=True)
            assert any(s.connection.transport_authenticated for s in server.sessions)
            await session.close()


# ------------------------------------------------------------ the fallback


async def test_vroom_url_reaches_webrtc_when_quic_is_closed() -> None:
    async with await serve("ws://127.0.0.1:0/omux", webrtc=True) as server:
        port = port_of(server.url("ws"))
        for path in ("", "/omux/vroom"):
            session = await echo_once(
                f"vroom://127.0.0.1:{port}{path}", quic_port=closed_udp_port(), attempt_timeout=5
            )
            assert session.transport_info["url"] == f"webrtc+http://127.0.0.1:{port}{path}"
            assert session.transport_info["transport"] == "webrtc"
            await session.close()


async def test_vroom_url_falls_back_to_websocket_when_webrtc_is_refused() -> None:
    async with await serve("ws://127.0.0.1:0/omux") as server:  # no signaling on the port
        port = port_of(server.url("ws"))
        offer = b"POST /offer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
        assert status_of(await raw_http(port, offer)) == HTTPStatus.NOT_FOUND
        post = b"POST /omux HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        assert status_of(await raw_http(port, post)) == HTTPStatus.METHOD_NOT_ALLOWED
        head = await raw_http(port, b"HEAD /openmux.js HTTP/1.1\r\n\r\n")
        assert status_of(head) == HTTPStatus.OK and head.endswith(b"\r\n\r\n")
        session = await echo_once(
            f"vroom://127.0.0.1:{port}", quic_port=closed_udp_port(), attempt_timeout=5
        )
        assert session.transport_info["url"] == f"ws://127.0.0.1:{port}/omux"
        await session.close()


# ------------------------------------------------------------ plain HTTP


def page(request: Request) -> Response | None:
    """An application's GET routes, as vroomd's browser page has them."""
    path = request.path.split("?", 1)[0]
    if path == "/openmux.js" and "mine" in request.path:
        body = b"the application's own"
    elif path == "/":
        body = b"<!doctype html>"
    else:
        return None
    headers = Headers({"Content-Type": "text/html", "Content-Length": str(len(body))})
    return Response(200, "OK", headers, body)


@pytest.mark.parametrize("webrtc_on", [True, False])
async def test_http_handler_and_the_browser_module(webrtc_on: bool) -> None:
    async with await serve("ws://127.0.0.1:0", webrtc=webrtc_on, http_handler=page) as server:
        base = f"http://127.0.0.1:{port_of(server.url('ws'))}"
        assert await _http.request("GET", base + "/") == (200, b"<!doctype html>")
        assert await _http.request("GET", base + "/openmux.js?mine") == (
            200,
            b"the application's own",
        )
        for path in ("/openmux.js", "/omux/openmux.js", "/omux/vroom/openmux.js"):
            assert await _http.request("GET", base + path) == (200, script())
        response = await raw_http(port_of(base), b"GET /openmux.js HTTP/1.1\r\nHost: x\r\n\r\n")
        assert f"Content-Type: {CONTENT_TYPE}".encode() in response
        status, body = await _http.request("GET", base + "/elsewhere")
        assert status == HTTPStatus.NOT_FOUND and b"not an OpenMux endpoint" in body
        # a plain GET of the WebSocket endpoint: websockets' own answer
        assert (await _http.request("GET", base + "/omux"))[0] == HTTPStatus.UPGRADE_REQUIRED
        with pytest.raises(InvalidStatus):
            async with ws_connect(base.replace("http", "ws") + "/elsewhere"):
                pass


async def test_signaling_errors_on_the_shared_port() -> None:
    async with await serve("ws://127.0.0.1:0", webrtc=True) as server:
        port = port_of(server.url("ws"))
        big = _http.MAX_BODY + 1
        cases = [
            (b"POST /offer HTTP/1.1\r\nContent-Length: 8\r\n\r\nnot json", 400),
            (b"POST /offer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400),
            (b'POST /candidate HTTP/1.1\r\nContent-Length: 11\r\n\r\n{"id": "x"}', 404),
            (b"POST /nothing HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404),
            (b"POST /omux HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
            (b"PUT /offer HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
            (b"POST /openmux.js HTTP/1.1\r\n\r\n", 405),
            (f"POST /offer HTTP/1.1\r\nContent-Length: {big}\r\n\r\n".encode(), 413),
            (b"POST /offer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            (b"POST /offer HTTP/1.1\r\nX: " + b"a" * _http.MAX_HEADER + b"\r\n\r\n", 431),
            (b"\x00\x01\x02\x03\r\n\r\n", 400),
            (b"POST /offer HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 400),  # then EOF
            (b"HEAD /openmux.js HTTP/1.1\r\n\r\n", 200),
        ]
        for request, status in cases:
            response = await raw_http(port, request, eof=True)
            assert status_of(response) == status, (request[:40], response[:80])
        assert (await raw_http(port, b"GE", eof=True)) == b""  # nothing was asked
        assert not server.sessions


async def test_a_stalled_request_head_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "READ_TIMEOUT", 0.2)
    async with await serve("ws://127.0.0.1:0", webrtc=True) as server:
        port = port_of(server.url("ws"))
        assert await raw_http(port, b"GE") == b""  # no EOF: the dispatcher's timer ends it
        # a request that did get through still works
        await (await echo_once(server.url("ws"))).close()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda method, path, headers: (
                f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(h + b"\r\n" for h in headers)
            ),
            st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "G", "GETX", ""]),
            st.sampled_from(["/", "/offer", "/omux", "/openmux.js", "*", "/omux/x/candidate"]),
            st.lists(
                st.one_of(
                    st.binary(max_size=30),
                    st.sampled_from(
                        [
                            b"",
                            b"Upgrade: websocket",
                            b"Connection: Upgrade",
                            b"Content-Length: 3",
                            b"Content-Length: 99999999",
                            b"Sec-WebSocket-Version: 13",
                        ]
                    ),
                ),
                max_size=5,
            ),
        ),
    )
)
def test_any_bytes_get_an_http_answer_or_a_close(data: bytes) -> None:
    """Whatever arrives on the shared port: an HTTP status line or a close, never a hang."""

    async def exchange() -> bytes:
        async with await serve("ws://127.0.0.1:0", webrtc=True, http_handler=page) as server:
            return await raw_http(port_of(server.url("ws")), data, eof=True)

    response = asyncio.run(exchange())
    if response:
        assert response.startswith(b"HTTP/1.1 ")
        assert 100 <= status_of(response) < 600


def test_under_uvloop(tmp_path: Path) -> None:
    """vroomd runs on uvloop when installed: its transports are not asyncio's
    (no asyncio.Transport base, TLS of its own), the hand-off must work there too."""
    uvloop = pytest.importorskip("uvloop")
    from openmux.aio import quic

    cert, key = quic.write_self_signed_certificate(tmp_path)
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ssl.load_cert_chain(cert, key)
    client_ssl = ssl.create_default_context(cafile=cert)

    async def scenario() -> None:
        for scheme, tls in (("ws", None), ("wss", server_ssl)):
            async with await serve(
                f"{scheme}://127.0.0.1:0", webrtc=True, ssl=tls, http_handler=page
            ) as server:
                client = {"ssl": client_ssl} if tls else {}
                for url in server.urls:
                    await (await echo_once(url, **client)).close()
                base = server.url(scheme).replace("ws", "http", 1).rsplit("/", 1)[0]
                assert await _http.request("GET", base + "/", **client) == (200, b"<!doctype html>")
                status, _ = await _http.request("POST", base + "/omux", b"{}", **client)
                assert status == HTTPStatus.METHOD_NOT_ALLOWED

    uvloop.run(scenario())
