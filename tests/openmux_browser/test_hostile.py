"""openmux.js against a scripted WebSocket server that breaks the protocol.

The server answers HELLO with a WELCOME (or a broken one), sends the case's
messages, and records what the browser sends back: the client must answer
each violation with the code OPENMUX.md gives (1002, 4005, 4003, 4001, 4006)
and end the session, or shrug off what is not fatal.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from openmux import ControlType, Flags, decode_message, encode_frame
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .test_browser import CHROMIUM, browser, open_page, page_server  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium"),
]


def control(type_: int, body: Any) -> bytes:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return encode_frame(0, type_, payload)


WELCOME = control(
    ControlType.WELCOME,
    {
        "version": [0, 1, 0],
        "maxMessageSize": 65535,
        "pingInterval": 0,
        "channels": [{"name": "u", "id": 1}, {"name": "echo", "id": 2}],
    },
)
CLOSE_1000 = control(ControlType.CLOSE, {"code": 1000})
FRAG, FRAG_END = int(Flags.FRAGMENT), int(Flags.FRAGMENT | Flags.FRAGMENT_END)

# name: (WELCOME to send, messages after it, client options, expected close code)
CASES: dict[str, tuple[bytes, list[bytes | str], dict[str, Any], int]] = {
    "reserved-byte": (WELCOME, [b"\x02\x01\x00\x07\x00\x00"], {}, 1002),
    "reserved-flags": (WELCOME, [b"\x02\x01\x10\x00\x00\x00"], {}, 1002),
    "channel-255": (WELCOME, [b"\xff\x01\x00\x00\x00\x00"], {}, 1002),
    "too-large": (
        WELCOME,
        [b"\x02\x01\x01\x00" + struct.pack(">I", 70000) + bytes(70000)],
        {},
        4005,
    ),
    "fragment-on-unreliable": (WELCOME, [encode_frame(1, 1, b"x", FRAG)], {}, 1002),
    "interleaved-fragments": (
        WELCOME,
        [encode_frame(2, 1, b"a", FRAG), encode_frame(2, 1, b"b")],
        {},
        1002,
    ),
    "reassembly-over-limit": (
        WELCOME,
        [encode_frame(2, 1, bytes(60), FRAG), encode_frame(2, 1, bytes(60), FRAG_END)],
        {"maxReassembly": 100},
        4005,
    ),
    "text-message": (WELCOME, ["not a frame"], {}, 1002),
    "bad-ping-length": (WELCOME, [encode_frame(0, ControlType.PING, b"\0\0")], {}, 1002),
    "second-welcome": (WELCOME, [WELCOME], {}, 1002),
    "not-open-channel": (
        WELCOME,
        [
            encode_frame(9, 1, b"x"),
            encode_frame(0, ControlType.PING, b"\x01\x02\x03\x04"),
            control(
                ControlType.OPEN_CHANNEL,
                {"requestId": 5, "name": "x", "reliable": True, "ordered": True},
            ),
            control(ControlType.ERROR, {"code": 4104, "reason": "just saying"}),
            CLOSE_1000,
        ],
        {},
        1000,
    ),
    "error-before-welcome": (
        control(ControlType.ERROR, {"code": 4104}),
        [WELCOME, CLOSE_1000],
        {},
        1000,
    ),
    "version-mismatch": (control(ControlType.WELCOME, {"version": [1, 0, 0]}), [], {}, 4006),
    "welcome-not-json": (control(ControlType.WELCOME, b"{nope"), [], {}, 4001),
}


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:  # noqa: F811
    pages = await page_server()
    origin = f"http://127.0.0.1:{pages.sockets[0].getsockname()[1]}"
    messages: list[str] = []
    page = await open_page(browser, origin, messages)
    yield page
    await page.close()
    pages.close()


@pytest.mark.parametrize("case", sorted(CASES))
async def test_client_answers_violations(page: Any, case: str) -> None:
    welcome, script, options, expected = CASES[case]
    received: list[Any] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        try:
            received.append(decode_message(await ws.recv()))  # HELLO
            await ws.send(welcome)
            for item in script:
                await ws.send(item)
            async for message in ws:
                assert isinstance(message, bytes)
                received.append(decode_message(message))
        except ConnectionClosed:
            pass
        finally:
            done.set()

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        out = await page.evaluate(
            "([url, options]) => window.run('hostile', url, options)",
            [f"ws://127.0.0.1:{port}", options],
        )
        await asyncio.wait_for(done.wait(), 10)

    hello = received[0]
    assert hello[:2] == (0, ControlType.HELLO)
    sent = [(f[1], json.loads(f[3]) if f[1] != ControlType.PONG else f[3]) for f in received[1:]]
    closes = [body for type_, body in sent if type_ == ControlType.CLOSE]
    assert closes and closes[0]["code"] == expected, sent
    if case in ("version-mismatch", "welcome-not-json"):
        assert out == {"connectError": ["HandshakeError", expected]}
        return
    assert out["closed"]["code"] == expected
    if case == "too-large":
        assert sent[0] == (ControlType.ERROR, {"code": 4005, "reason": sent[0][1]["reason"]})
    if case == "not-open-channel":
        # nothing fatal: ERROR 4003, PONG echoing our stamp, CHANNEL_REJECT 4001
        # for an OPEN_CHANNEL without id; our ERROR reached the app; CLOSE echoed
        assert sent[0][0] == ControlType.ERROR and sent[0][1]["code"] == 4003
        assert sent[1][0] == ControlType.PONG and sent[1][1][:4] == b"\x01\x02\x03\x04"
        assert sent[2][0] == ControlType.CHANNEL_REJECT
        assert sent[2][1]["requestId"] == 5 and sent[2][1]["code"] == 4001
        assert out["errors"] == [4104]
        assert out["closed"] == {"code": 1000, "reason": "", "byPeer": True}
