"""Two real Chromiums: the agent's (driven by vroomd through Playwright) and the
person's (Playwright loads vroomd's page over WebSocket and uses it like a person).

vroomd here renders the agent at most 640x400 while the person's window offers
more, so the page shows the agent's screen scaled up (1.375x) and every input
position goes through the scaling rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
import pytest_asyncio
from vroomd.graphical import GraphicalConfig

from .conftest import TOKEN, Vroomd, needs_chromium, settle, start_vroomd

pytestmark = [
    needs_chromium,
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]

AGENT = (640, 400)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def vroomd() -> AsyncIterator[Vroomd]:
    server = await start_vroomd(GraphicalConfig(max_viewport=AGENT))
    yield server
    await server.daemon.close()


class Person:
    """The person's page, and where the agent's picture is on it."""

    def __init__(self, page: Any, vroomd: Vroomd) -> None:
        self.page = page
        self.vroomd = vroomd

    async def rect(self) -> dict[str, float]:
        return await self.page.evaluate(
            "(() => { const r = document.getElementById('screen').getBoundingClientRect();"
            " return {left: r.left, top: r.top, width: r.width, height: r.height}; })()"
        )

    async def at(self, ax: float, ay: float) -> tuple[float, float]:
        """Where agent pixel (ax, ay) is on the person's screen (its centre)."""
        r = await self.rect()
        return (
            r["left"] + (ax + 0.5) * r["width"] / AGENT[0],
            r["top"] + (ay + 0.5) * r["height"] / AGENT[1],
        )

    async def mode(self, mode: str) -> None:
        await self.page.click(f"[data-mode={mode}]")
        await self.page.wait_for_function(
            "m => window.vroom.client.mode === m"
            " && (m !== 'interact' || window.vroom.client.inputReady)",
            arg=mode,
        )

    async def open(self, url: str) -> None:
        await self.page.fill("#url", url)
        await self.page.press("#url", "Enter")
        await self.page.wait_for_function(
            "u => { const s = window.vroom.client.state; return s && s.url === u && !s.loading; }",
            arg=url,
        )

    async def roundtrip(self) -> None:
        """Everything the page sent so far has reached vroomd (a PING answered)."""
        await self.page.evaluate("window.vroom.client.session.ping()")

    async def frames(self) -> int:
        return int(await self.page.evaluate("window.vroom.stats.decoded"))


@pytest_asyncio.fixture(loop_scope="module")
async def you(person: Any, vroomd: Vroomd, pages: str) -> AsyncIterator[Person]:
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the
    # page's CSP forbids; test_the_page_runs_under_its_csp runs without it.
    context = await person.new_context(
        viewport={"width": 1200, "height": 800},
        has_touch=True,
        device_scale_factor=1,
        bypass_csp=True,
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{vroomd.port}/?transport=ws#token={TOKEN}")
    await page.wait_for_function("window.vroom.client && window.vroom.client.handshake")
    await page.wait_for_function("window.vroom.stats.decoded > 0")
    who = Person(page, vroomd)
    await who.mode("interact")
    await who.open(f"{pages}/agent.html")
    yield who
    await context.close()
    await settle(lambda: _async(not vroomd.hub.services))


async def _async(value: Any) -> Any:
    return value


def png_pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    codec = av.CodecContext.create("png", "r")
    frame = codec.decode(av.Packet(png))[0].reformat(format="rgb24")
    plane = frame.planes[0]
    data = bytes(plane)
    i = y * plane.line_size + x * 3
    return data[i], data[i + 1], data[i + 2]


def near(rgb: tuple[int, int, int], want: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(rgb, want, strict=True))


async def test_the_page_shows_the_agents_screen_scaled(you: Person) -> None:
    assert (await you.page.evaluate("window.vroom.client.agent")) == {
        "width": AGENT[0],
        "height": AGENT[1],
    }
    rect = await you.rect()
    assert rect["width"] / AGENT[0] == pytest.approx(rect["height"] / AGENT[1], rel=0.01)
    assert rect["width"] > AGENT[0]  # scaled up to the window

    async def shows(ax: int, ay: int, colour: tuple[int, int, int]) -> bool:
        x, y = await you.at(ax, ay)
        return near(png_pixel(await you.page.screenshot(), int(x), int(y)), colour)

    assert await settle(lambda: shows(100, 50, (255, 0, 0)))  # the red block
    assert await shows(100, 150, (0, 255, 0))  # green under it
    assert await shows(400, 245, (0, 0, 255))  # the blue pad
    state = await you.page.evaluate("window.vroom.client.state")
    assert state["title"] == "Agent test page"
    assert await you.page.text_content("#title") == "Agent test page"
    assert "idle" in (await you.page.text_content("#agent-state") or "")


async def test_a_click_lands_on_the_agents_button(you: Person, vroomd: Vroomd) -> None:
    x, y = await you.at(510, 60)  # the centre of "Two" in agent pixels
    await you.page.mouse.click(x, y)
    await you.roundtrip()
    clicks = await settle(lambda: vroomd.agent("events.filter(e => e.type === 'click')"))
    assert [c["id"] for c in clicks] == ["b2"]
    assert abs(clicks[0]["x"] - 510) <= 1 and abs(clicks[0]["y"] - 60) <= 1


async def test_typing_with_modifiers(you: Person, vroomd: Vroomd) -> None:
    x, y = await you.at(370, 135)  # the input
    await you.page.mouse.click(x, y)
    keyboard = you.page.keyboard
    await keyboard.down("Shift")  # the person holds Shift for the capital
    await keyboard.press("KeyH")
    await keyboard.up("Shift")
    await keyboard.type("ello World")
    await you.roundtrip()
    assert await vroomd.agent("document.getElementById('field').value") == "Hello World"
    await you.page.keyboard.press("Control+a")  # not the person's page: the agent's
    await you.page.keyboard.type("x")
    await you.roundtrip()
    assert await vroomd.agent("document.getElementById('field').value") == "x"
    assert await you.page.evaluate("document.activeElement.id") == "screen"
    keys = await vroomd.agent("events.filter(e => e.type === 'keydown' && e.key === 'H')")
    assert keys[0]["shift"] is True and keys[0]["code"] == "KeyH"


async def test_paste_and_copy_cross_the_clipboards(you: Person, vroomd: Vroomd) -> None:
    x, y = await you.at(370, 135)
    await you.page.mouse.click(x, y)
    await you.page.evaluate("navigator.clipboard.writeText('from my clipboard ✓')")
    await you.page.keyboard.press("Control+v")
    await you.roundtrip()
    assert await settle(
        lambda: vroomd.agent("document.getElementById('field').value === 'from my clipboard ✓'")
    )
    # Copy in the agent's page: the person's page gets the text (and its clipboard).
    await you.page.keyboard.press("Control+a")
    await you.page.keyboard.press("Control+c")
    await you.page.wait_for_function("window.vroom.clipboard === 'from my clipboard ✓'")


async def test_scroll_and_touch_reach_the_agent(you: Person, vroomd: Vroomd) -> None:
    x, y = await you.at(100, 300)
    await you.page.mouse.move(x, y)
    await you.page.mouse.wheel(0, 275)  # 275 client px = 200 agent px at 1.375x
    await you.roundtrip()
    assert await settle(lambda: vroomd.agent("scrollY === 200"))
    await you.page.mouse.wheel(0, -275)
    await you.roundtrip()
    assert await settle(lambda: vroomd.agent("scrollY === 0"))
    # A finger on the person's touch screen, on the agent's blue pad.
    cdp = await you.page.context.new_cdp_session(you.page)
    sx, sy = await you.at(350, 200)
    ex, ey = await you.at(380, 230)
    for kind, points in [
        ("touchStart", [{"x": sx, "y": sy, "id": 1}]),
        ("touchMove", [{"x": ex, "y": ey, "id": 1}]),
        ("touchEnd", []),
    ]:
        await cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
    await you.roundtrip()
    events = await settle(
        lambda: vroomd.agent(
            "(() => { const t = events.filter(e => e.type.startsWith('touch'));"
            " return t.some(e => e.type === 'touchend') && t; })()"
        )
    )
    assert [e["type"] for e in events] == ["touchstart", "touchmove", "touchend"]
    assert events[0]["points"][0][:2] == [350, 200]
    assert events[1]["points"][0][:2] == [380, 230]


async def test_view_mode_input_has_no_effect(you: Person, vroomd: Vroomd) -> None:
    await you.mode("view")
    x, y = await you.at(360, 60)  # "One"
    await you.page.mouse.click(x, y)
    await you.page.keyboard.type("no")
    await you.page.mouse.wheel(0, 200)
    await you.roundtrip()
    await you.page.fill("#commandinput", "/screenshot")  # voice/interact only: refused
    await you.page.press("#commandinput", "Enter")
    await you.page.wait_for_function(
        "[...document.querySelectorAll('#notes li.error')]"
        ".some(li => li.textContent.includes('view'))"
    )
    assert await vroomd.agent("events.length") == 0
    assert await vroomd.agent("scrollY") == 0
    # Back in interact the same click works.
    await you.mode("interact")
    await you.page.mouse.click(x, y)
    await you.roundtrip()
    assert await settle(lambda: vroomd.agent("events.some(e => e.id === 'b1')"))


async def test_chat_commands_notifications_and_state(you: Person, pages: str) -> None:
    page = you.page
    await you.mode("voice")
    await page.fill("#chatinput", f"go to {pages}/second.html")
    await page.press("#chatinput", "Enter")
    await page.wait_for_function(
        "[...document.querySelectorAll('#chat li.agent')]"
        ".some(li => li.textContent.startsWith('Done'))"
    )
    await page.wait_for_function("document.getElementById('title').textContent === 'Second page'")
    assert await page.is_enabled("#back")
    await page.click("#back")
    await page.wait_for_function(
        "document.getElementById('title').textContent === 'Agent test page'"
    )
    await page.fill("#commandinput", "/screenshot")
    await page.press("#commandinput", "Enter")
    await page.wait_for_selector("#notes li.success img")
    await page.fill("#commandinput", "/evaluate 1+1")
    await page.press("#commandinput", "Enter")
    await page.wait_for_function(
        "[...document.querySelectorAll('#notes li.error')]"
        ".some(li => li.textContent.includes('evaluate'))"
    )
    await page.fill("#url", "file:///etc/passwd")
    await page.press("#url", "Enter")
    await page.wait_for_function(
        "[...document.querySelectorAll('#notes li.error')]"
        ".some(li => li.textContent.includes('file:'))"
    )


async def test_the_page_runs_under_its_csp_and_refuses_a_wrong_token(
    person: Any, vroomd: Vroomd
) -> None:
    context = await person.new_context()
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    async def connected() -> bool:
        return bool(
            await page.evaluate(
                "!!(window.vroom && window.vroom.client && window.vroom.client.handshake)"
            )
        )

    try:
        await page.goto(f"http://127.0.0.1:{vroomd.port}/?transport=ws#token=wrong")
        await page.wait_for_selector("#tokenform", state="visible")
        assert vroomd.hub.viewers == 0
        assert "token" not in page.url  # the fragment was taken out of the address bar
        # The token form: the right token connects.
        await page.fill("#token", TOKEN)
        await page.click("#tokenform button")
        assert await settle(connected)
        assert await settle(lambda: page.evaluate("window.vroom.stats.decoded > 0"))
        assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p]
    finally:
        await context.close()
