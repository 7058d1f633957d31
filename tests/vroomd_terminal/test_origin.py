"""A tokenless vroomd refuses WebSocket upgrades from other sites' pages."""

from __future__ import annotations

import asyncio

import openmux
import pytest
import websockets
from vroomd.daemon import Daemon, DaemonConfig
from vroomd.origin import foreign_origin


def _info(origin: str | None, host: str = "127.0.0.1:8022") -> dict[str, object]:
    headers = websockets.Headers({"Host": host})
    if origin is not None:
        headers["Origin"] = origin
    return {"headers": headers}


@pytest.mark.parametrize(
    ("origin", "refused"),
    [
        (None, False),
        ("http://127.0.0.1:8022", False),
        ("http://127.0.0.1:8023", True),
        ("https://evil.example", True),
        ("null", True),
    ],
)
def test_foreign_origin_rules(origin: str | None, refused: bool) -> None:
    assert (foreign_origin(_info(origin)) is not None) is refused


def test_non_http_transports_have_no_origin() -> None:
    assert foreign_origin({"peername": ("127.0.0.1", 5)}) is None


async def _outcome(url: str, origin: str | None) -> str:
    """'open' if a terminal control channel opens, else the close code."""
    conn = openmux.Connection(openmux.Config(is_client=True), mode="message")
    conn.initiate(0.0)
    async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]
        for frame in conn.messages_to_send():
            await ws.send(frame)
        while True:
            message = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(message, bytes)
            for event in conn.receive_message(message, 0.0):
                if isinstance(event, openmux.HandshakeCompleted):
                    conn.open_channel("vroom.terminal.control")
                elif isinstance(event, openmux.ChannelOpened):
                    return "open"
                elif isinstance(event, openmux.ConnectionTerminated):
                    return str(event.code)
            for frame in conn.messages_to_send():
                await ws.send(frame)


async def test_tokenless_daemon_refuses_other_sites() -> None:
    daemon = Daemon(DaemonConfig(token=None))
    try:
        (url, *_) = await daemon.listen("ws://127.0.0.1:0/omux")
        port = url.split(":")[2].split("/")[0]
        assert await _outcome(url, None) == "open"
        assert await _outcome(url, f"http://127.0.0.1:{port}") == "open"
        assert await _outcome(url, "https://evil.example") == "4000"
        assert await _outcome(url, "null") == "4000"
    finally:
        await daemon.close()
