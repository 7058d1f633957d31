"""What is specific to one transport, or to the server object / session API."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

import openmux.aio as aio
import pytest
from openmux import (
    MAGIC,
    ChannelSpec,
    CloseCode,
    ControlType,
    LocalProtocolError,
    decode_message,
    encode_frame,
)
from openmux.aio.ws import path_allowed
from websockets.asyncio.client import connect as ws_connect

from .endpoints import PEER, client_ssl, server_ssl
from .peer import handler as peer_handler
from .peer import policy as peer_policy
from .test_conformance import hello

pytestmark = pytest.mark.timeout(60)
PATIENCE = 30.0


async def raw_ws(url: str, items: list[bytes | str], **kwargs: Any) -> tuple[list[Any], int | None]:
    frames = []
    async with ws_connect(url, compression=None, **kwargs) as ws:
        for item in items:
            await ws.send(item)
        try:
            async with asyncio.timeout(PATIENCE):
                async for message in ws:
                    assert isinstance(message, bytes)
                    frames.append(decode_message(message))
        except Exception:
            pass
        return frames, ws.close_code


def bodies(frames: list[Any], type_: int) -> list[dict[str, Any]]:
    return [json.loads(f[3]) for f in frames if f[0] == 0 and f[1] == type_]


# ------------------------------------------------------------------ WebSocket


async def test_ws_text_message_is_close_1002_then_ws_1000() -> None:
    async with await aio.serve(peer_handler, "ws://127.0.0.1:0/omux", close_timeout=0.1) as srv:
        frames, ws_code = await raw_ws(srv.url("ws"), [hello(), "not a frame"])
        assert bodies(frames, ControlType.WELCOME)
        assert bodies(frames, ControlType.CLOSE)[0]["code"] == 1002
        assert ws_code == 1000


async def test_ws_bearer_token_in_the_upgrade() -> None:
    async with await aio.serve(peer_handler, "ws://127.0.0.1:0/omux", token="secret") as srv:
        url = srv.url("ws")
        # header only: the upgrade authenticates, HELLO carries no auth
        bye = encode_frame(0, ControlType.CLOSE, b'{"code":1000}')
        frames, _ = await raw_ws(
            url, [hello(), bye], additional_headers={"Authorization": "Bearer secret"}
        )
        assert bodies(frames, ControlType.WELCOME)
        # a bad header: HTTP 401, no WebSocket at all
        with pytest.raises(aio.HandshakeError) as refused:
            await aio.connect(url, token="wrong", auth_header=True)
        assert refused.value.code == CloseCode.AUTH_FAILED
        # both present: both must be valid
        frames, _ = await raw_ws(
            url,
            [hello(auth={"type": "token", "token": "wrong"})],
            additional_headers={"Authorization": "Bearer secret"},
        )
        assert bodies(frames, ControlType.CLOSE)[0]["code"] == 4000
        # the client sends both when asked
        session = await aio.connect(url, token="secret", auth_header=True, channels=["ctl"])
        info = await ctl_info(session)
        assert info["transport_authenticated"] is True
        await session.close()


async def ctl_info(session: aio.Session) -> dict[str, Any]:
    ctl = session.channel("ctl")
    await ctl.send(2, b'{"op": "info"}')
    return dict(json.loads((await ctl.recv()).data))


async def test_ws_paths() -> None:
    assert path_allowed("/omux") and path_allowed("/omux/vroom") and path_allowed("/vroom")
    assert not path_allowed("/other")
    async with await aio.serve(peer_handler, "ws://127.0.0.1:0/omux") as srv:
        base = srv.url("ws").rsplit("/", 1)[0]
        for path in ("/omux", "/omux/vroom", "/vroom", "/omux?x=1"):
            session = await aio.connect(base + path, channels=["echo"])
            await session.close()
        with pytest.raises(aio.TransportError):
            await aio.connect(base + "/elsewhere")


async def test_ws_close_codes() -> None:
    srv = await aio.serve(peer_handler, ["ws://127.0.0.1:0/omux"])
    session = await aio.connect(srv.url("ws"))
    await session.close()
    assert session.sink.ws.close_code == 1000  # type: ignore[union-attr]
    session = await aio.connect(srv.url("ws"))
    srv.close()  # going away
    await asyncio.wait_for(session.wait_closed(), PATIENCE)
    assert session.close_code == CloseCode.GOING_AWAY and session.closed_by_peer
    await asyncio.wait_for(srv.wait_closed(), PATIENCE)
    await asyncio.wait_for(session.sink.task, PATIENCE)  # type: ignore[union-attr]
    assert session.sink.ws.close_code == 1001  # type: ignore[union-attr]


# ------------------------------------------------------------- server object


async def test_one_server_on_several_transports() -> None:
    seen: list[str] = []

    async def handler(session: aio.Session) -> None:
        seen.append(str(session.transport_info.get("path") or "stream"))
        await peer_handler(session)

    urls = ["tcp://127.0.0.1:0", "ws://127.0.0.1:0/omux", "tls://127.0.0.1:0"]
    async with await aio.serve(handler, urls, token="t", ssl=server_ssl()) as srv:
        assert len(srv.urls) == 3 and not any(u.endswith(":0") for u in srv.urls)
        assert srv.url("tcp").startswith("tcp://127.0.0.1:")
        with pytest.raises(KeyError):
            srv.url("quic")
        sessions = []
        for url in srv.urls:
            with pytest.raises(aio.HandshakeError):
                await aio.connect(url, token="bad", ssl=client_ssl())
            session = await aio.connect(url, token="t", ssl=client_ssl(), channels=["echo"])
            await session.channel("echo").send(1, url.encode())
            assert (await session.channel("echo").recv()).data == url.encode()
            sessions.append(session)
        assert len(srv.sessions) == 3
    for session in sessions:  # the server closed them: going away
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert session.close_code == CloseCode.GOING_AWAY
    assert sorted(seen) == ["/omux", "stream", "stream"]


async def test_serve_rejects_unknown_scheme_and_cleans_up() -> None:
    with pytest.raises(ValueError, match="scheme"):
        await aio.serve(peer_handler, ["tcp://127.0.0.1:0", "gopher://127.0.0.1:0"])
    with pytest.raises(ValueError, match="ssl"):
        await aio.serve(peer_handler, "tls://127.0.0.1:0")
    with pytest.raises(ValueError, match="ssl"):
        await aio.serve(peer_handler, "wss://127.0.0.1:0")
    with pytest.raises(ValueError, match="client-only"):
        await aio.serve(peer_handler, "stdio:cat")
    with pytest.raises(ValueError):
        await aio.connect("gopher://x")


async def test_handler_outcomes() -> None:
    async def quits(session: aio.Session) -> None:
        return None

    async def fails(session: aio.Session) -> None:
        raise RuntimeError("boom")

    async with await aio.serve(quits, "tcp://127.0.0.1:0") as srv:
        session = await aio.connect(srv.url("tcp"))
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert (session.close_code, session.closed_by_peer) == (1000, True)
    async with await aio.serve(fails, "tcp://127.0.0.1:0") as srv:
        session = await aio.connect(srv.url("tcp"))
        await asyncio.wait_for(session.wait_closed(), PATIENCE)
        assert (session.close_code, session.close_reason) == (1001, "handler error")


async def test_hello_timeout() -> None:
    async with await aio.serve(
        peer_handler, "tcp://127.0.0.1:0", hello_timeout=0.1, close_timeout=0.1
    ) as srv:
        host, port = srv.url("tcp")[6:].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(MAGIC)
        data = await asyncio.wait_for(reader.read(), PATIENCE)
        writer.close()
        assert data.startswith(MAGIC) and b'"code":4007' in data


# ---------------------------------------------------------- channel policies


async def test_async_channel_policy() -> None:
    asked: list[str] = []

    async def policy(spec: ChannelSpec) -> int | None:
        asked.append(spec.name)
        await asyncio.sleep(0.01)
        if spec.name == "explode":
            raise RuntimeError("policy bug")
        return 4004 if spec.name.startswith("no") else None

    async with await aio.serve(peer_handler, "tcp://127.0.0.1:0", channel_policy=policy) as srv:
        session = await aio.connect(srv.url("tcp"), channels=["no-in-hello"])
        assert "no-in-hello" in session.channels  # HELLO channels cannot wait: granted
        channel = await session.open_channel("yes")
        await channel.send(1, b"ok")
        assert (await channel.recv()).data == b"ok"
        with pytest.raises(aio.ChannelRejectedError) as rejected:
            await session.open_channel("nope")
        assert rejected.value.code == 4004 and rejected.value.name == "nope"
        with pytest.raises(aio.ChannelRejectedError) as rejected:
            await session.open_channel("explode")
        assert rejected.value.code == CloseCode.UNSUPPORTED
        assert asked == ["yes", "nope", "explode"]
        with pytest.raises(LocalProtocolError):
            await session.open_channel("yes")  # already open
        await session.close()


async def test_sync_policy_that_defers_is_refused() -> None:
    def policy(spec: ChannelSpec) -> str | None:
        return "defer" if spec.name == "later" else None

    async with await aio.serve(peer_handler, "tcp://127.0.0.1:0", channel_policy=policy) as srv:
        session = await aio.connect(srv.url("tcp"))
        with pytest.raises(aio.ChannelRejectedError) as rejected:
            await session.open_channel("later")
        assert rejected.value.code == CloseCode.UNSUPPORTED
        await session.close()


# ------------------------------------------------------------ session API


async def test_session_api_after_close() -> None:
    async with await aio.serve(peer_handler, "tcp://127.0.0.1:0") as srv:
        async with await aio.connect(srv.url("tcp"), channels=["echo"]) as session:
            echo = session.channel("echo")
            assert repr(echo).startswith("<openmux.aio.Channel 'echo'")
            assert "client open" in repr(session)
            assert echo.reliable and echo.ordered and echo.metadata is None
            await session.wait_handshake()
            accept = asyncio.get_running_loop().create_task(session.accept())
            await asyncio.sleep(0)
        assert session.close_code == 1000
        with pytest.raises(aio.SessionClosedError):
            await accept
        with pytest.raises(aio.SessionClosedError):
            await session.ping()
        with pytest.raises(aio.SessionClosedError):
            await session.open_channel("x")
        with pytest.raises(aio.ChannelClosedError):
            await echo.recv()
        with pytest.raises((aio.ChannelClosedError, aio.SessionClosedError)):
            await echo.send(1, b"x")
        await echo.close()  # idempotent
        await session.close()  # idempotent


async def test_close_before_connection_made() -> None:
    session = aio.Session(aio.Options(), is_client=True, mode="stream")
    await session.close(1000, "never started")
    assert session.close_code == 1000


async def test_options_split_transport_specific_keywords() -> None:
    options = aio.Options.from_kwargs(token="t", ice_hosts=["127.0.0.1"], extra={"x": 1})
    assert options.token == "t" and options.extra == {"ice_hosts": ["127.0.0.1"], "x": 1}
    assert options.specs() == []
    assert aio.Options(channels=["a"]).specs() == [ChannelSpec("a")]
    assert aio.Options(token="t").check_bearer("t") and not aio.Options(token="t").check_bearer("u")
    assert aio.Options().check_bearer("anything")
    assert aio.Options(authenticate=lambda auth: bool(auth and auth["token"] == "k")).check_bearer(
        "k"
    )


# ------------------------------------------------------------------ stdio


async def test_stdio_url_and_child_exit() -> None:
    script = "import sys; print('bye', file=sys.stderr)"
    # a child that speaks no OpenMux and exits: the handshake fails, no hang
    with pytest.raises((aio.HandshakeError, TimeoutError)):
        await aio.connect(f"stdio:{sys.executable} -c {json.dumps(script)}", timeout=2)
    session = await aio.connect(f"stdio://{sys.executable} {PEER}", channels=["echo"])
    await session.channel("echo").send(1, b"via url")
    assert (await session.channel("echo").recv()).data == b"via url"
    process = session.transport_info["process"]
    await asyncio.wait_for(session.close(), PATIENCE)  # waits for the child's exit
    assert process.get_returncode() == 0
    with pytest.raises(aio.TransportError):
        await aio.connect("stdio:/nonexistent/command")
    with pytest.raises(ValueError):
        await aio.connect("stdio:")


async def test_stdio_child_that_ignores_eof_is_killed() -> None:
    script = (
        "import asyncio, openmux.aio as aio, signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "async def h(s):\n    await asyncio.sleep(3600)\n"
        "async def main():\n    await aio.serve_stdio(h)\n    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    session = await aio.connect_stdio([sys.executable, "-c", script], close_timeout=0.1)
    process = session.transport_info["process"]
    await asyncio.wait_for(session.close(), PATIENCE)  # waits for the kill
    assert process.get_returncode() is not None


# ---------------------------------------------------------------- fallback


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_fallback_chain_ends_on_websocket() -> None:
    from openmux.aio.fallback import chain

    assert chain("vroom://h:8080/vroom", aio.Options()) == [
        "quic://h:4433/vroom",
        "webrtc+http://h:8080/vroom",
        "ws://h:8080/vroom",
    ]
    assert chain("vroom+tls://h", aio.Options())[2] == "wss://h:443/omux"
    async with await aio.serve(
        peer_handler, "ws://127.0.0.1:0/omux", channel_policy=peer_policy
    ) as srv:
        port = srv.url("ws").split(":")[2].split("/")[0]
        session = await aio.connect(
            f"vroom://127.0.0.1:{port}",
            quic_port=closed_udp_port(),
            attempt_timeout=1.5,
            channels=["echo"],
        )
        assert session.transport_info["url"].startswith("ws://")
        await session.channel("echo").send(1, b"fell back")
        assert (await session.channel("echo").recv()).data == b"fell back"
        await session.close()
    # nothing listens anywhere: a clear error naming every attempt
    with pytest.raises(aio.TransportError, match="fallback"):
        await aio.connect("vroom://127.0.0.1:9", quic_port=closed_udp_port(), attempt_timeout=1)


async def test_handler_cancelled_when_the_session_ends() -> None:
    cancelled = asyncio.Event()

    async def handler(session: aio.Session) -> None:
        try:
            await asyncio.sleep(3600)  # not watching the session at all
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with await aio.serve(handler, "tcp://127.0.0.1:0") as srv:
        session = await aio.connect(srv.url("tcp"))
        await session.close()
        await asyncio.wait_for(cancelled.wait(), PATIENCE)
        assert not srv.sessions or all(not s.is_open for s in srv.sessions)
