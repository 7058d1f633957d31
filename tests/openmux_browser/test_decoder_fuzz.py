"""openmux.js's frame decoder fuzzed with hypothesis, differentially against the core's.

Each example runs `decodeFrame()` in Chromium and `openmux.decode_message()`
here: both must accept the same messages with the same fields, and refuse
the others with the same code (1002, or 4005 for a declared length over the
limit). The page is served by Playwright routing (no socket at all).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux import FrameError, MessageTooLarge, decode_message
from openmux.aio.static import script

from .test_browser import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium"),
]

ORIGIN = "http://openmux.invalid"
PAGE = (
    '<!doctype html><script type="module">import * as omux from "/openmux.js";'
    "window.omux = omux;</script>"
)
DECODE = """([bytes, limit]) => {
  try {
    const f = omux.decodeFrame(new Uint8Array(bytes), limit);
    return {ok: true, frame: [f.channel, f.type, f.flags, Array.from(f.payload)]};
  } catch (e) {
    return {ok: false, code: e.code, name: e.name};
  }
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()

        def route(route: Any) -> None:
            if route.request.url.endswith("/openmux.js"):
                route.fulfill(status=200, content_type="text/javascript", body=script())
            else:
                route.fulfill(status=200, content_type="text/html", body=PAGE)

        page.route(f"{ORIGIN}/**", route)
        page.goto(f"{ORIGIN}/")
        page.wait_for_function("window.omux !== undefined")
        yield page
        browser.close()


def python_decode(data: bytes, limit: int) -> dict[str, Any]:
    try:
        channel, type_, flags, payload = decode_message(data, limit)
    except MessageTooLarge:
        return {"ok": False, "code": 4005}
    except FrameError:
        return {"ok": False, "code": 1002}
    return {"ok": True, "frame": [channel, type_, flags, list(payload)]}


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Mostly near-valid frames (the interesting edge), sometimes raw noise."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=40))
    channel = draw(st.sampled_from([0, 1, 7, 254, 255]))
    type_ = draw(st.integers(0, 255))
    flags = draw(st.sampled_from([0, 1, 2, 4, 6, 3, 7, 8, 0x80]))
    reserved = draw(st.sampled_from([0, 0, 0, 1]))
    payload = draw(st.binary(max_size=32))
    declared = len(payload) + draw(st.sampled_from([0, 0, 0, -1, 1, 70000]))
    declared = max(declared, 0)
    if flags & 1:
        header = struct.pack(">BBBBI", channel, type_, flags, reserved, declared & 0xFFFFFFFF)
    else:
        header = struct.pack(">BBBBH", channel, type_, flags, reserved, declared & 0xFFFF)
    return header + payload


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=messages(), limit=st.sampled_from([0, 16, 65535]))
def test_js_decoder_agrees_with_the_core(page: Any, data: bytes, limit: int) -> None:
    js = page.evaluate(DECODE, [list(data), limit])
    py = python_decode(data, limit)
    if py["ok"]:
        assert js == py
    else:
        assert not js["ok"] and js["code"] == py["code"], (data.hex(), js, py)


def test_js_encoder_round_trips(page: Any) -> None:
    """encodeFrame() picks EXTENDED_LENGTH above 65535 bytes, like the core."""
    out = page.evaluate(
        """() => [0, 5, 65535, 65536].map((n) => {
            const f = omux.encodeFrame(3, 9, new Uint8Array(n), 2);
            return Array.from(f.subarray(0, 8));
        })"""
    )
    from openmux import encode_frame

    for n, head in zip([0, 5, 65535, 65536], out, strict=True):
        assert head == list(encode_frame(3, 9, bytes(n), 2)[:8])[: len(head)]
