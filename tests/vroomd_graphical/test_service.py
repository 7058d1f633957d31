"""vroomd's graphical service driven by a Python VROOM-Graphical client over a
real WebSocket, against the real agent Chromium (Playwright) in vroomd."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest
from vroom_graphical import (
    ChannelRefused,
    ChatReceived,
    ClipboardReceived,
    CursorReceived,
    HandshakeFailed,
    KeyDown,
    KeyUp,
    Modifiers,
    NotificationReceived,
    StateReceived,
    VideoFrame,
    as_bytes,
)
from vroom_graphical.channels import Role

from .conftest import Vroomd, needs_chromium, settle
from .gclient import Peer

pytestmark = [
    needs_chromium,
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]


def decode_jpeg(data: bytes) -> tuple[int, int, Any]:
    """(width, height, pixel(x, y) -> (r, g, b)) of one JPEG, decoded by FFmpeg."""
    codec = av.CodecContext.create("mjpeg", "r")
    frame = codec.decode(av.Packet(data))[0].reformat(format="rgb24")
    plane = frame.planes[0]
    pixels, stride = bytes(plane), plane.line_size

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        i = y * stride + x * 3
        return pixels[i], pixels[i + 1], pixels[i + 2]

    return frame.width, frame.height, pixel


def near(rgb: tuple[int, int, int], want: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(rgb, want, strict=True))


async def open_page(peer: Peer, url: str) -> None:
    note = await peer.command("navigate", url=url)
    assert note.type == "success", note.text
    await peer.wait_for(StateReceived, lambda e: e.state.url == url and e.state.loading is False)


async def interact(vroomd: Vroomd, pages: str, **kwargs: Any) -> Peer:
    peer = await Peer.connect(vroomd.url(), **kwargs)
    await peer.set_mode("interact")
    await open_page(peer, f"{pages}/agent.html")
    return peer


async def test_handshake_and_video_frames_show_the_page(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url(), viewport=(800, 600), video=True)
    try:
        hello = peer.client.handshake
        assert hello is not None
        assert (hello.viewport.width, hello.viewport.height) == (800, 600)
        assert peer.client.encoding == "cbor"
        await peer.set_mode("voice")
        start = len(peer.events)
        await open_page(peer, f"{pages}/agent.html")

        def red_frame(e: VideoFrame) -> bool:
            width, height, pixel = decode_jpeg(e.jpeg)
            return (width, height) == (800, 600) and near(pixel(100, 50), (255, 0, 0))

        frame = await peer.wait_for(VideoFrame, red_frame, start=start)
        _, _, pixel = decode_jpeg(frame.jpeg)
        assert near(pixel(100, 150), (0, 255, 0))  # the green block below it
        assert near(pixel(400, 245), (0, 0, 255))  # the blue pad
    finally:
        await peer.close()


async def test_state_reports_url_title_and_history(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url())
    try:
        await peer.set_mode("voice")
        await open_page(peer, f"{pages}/agent.html")
        state = await peer.wait_for(StateReceived, lambda e: e.state.title == "Agent test page")
        assert state.state.browser is not None and state.state.browser.can_go_back
        await open_page(peer, f"{pages}/second.html")
        note = await peer.command("back")
        assert note.type == "success", note.text
        back = await peer.wait_for(
            StateReceived,
            lambda e: (
                e.state.url == f"{pages}/agent.html"
                and e.state.browser is not None
                and e.state.browser.can_go_forward
            ),
        )
        assert back.state.mode == "voice"
        assert back.state.state in ("idle", "browsing")
    finally:
        await peer.close()


async def test_click_at_position_and_double_click(vroomd: Vroomd, pages: str) -> None:
    peer = await interact(vroomd, pages)
    try:
        # No MOUSE_MOVE at all: the press carries its position.
        peer.do(peer.client.mouse_down, 500, 60)
        peer.do(peer.client.mouse_up, 500, 60)
        await peer.barrier()
        clicks = await vroomd.agent("events.filter(e => e.type === 'click')")
        assert [c["id"] for c in clicks] == ["b2"]
        assert (clicks[0]["x"], clicks[0]["y"]) == (500, 60)
        for _ in range(2):
            peer.do(peer.client.mouse_down, 350, 60)
            peer.do(peer.client.mouse_up, 350, 60)
        await peer.barrier()
        assert await vroomd.agent("events.filter(e => e.type === 'dblclick').length") == 1
        # A right click with Shift held: button and modifier reach the page.
        peer.do(peer.client.key_down, "Shift", "ShiftLeft", Modifiers.SHIFT)
        peer.do(peer.client.mouse_down, 10, 10, 2)
        peer.do(peer.client.mouse_up, 10, 10, 2)
        peer.do(peer.client.key_up, "Shift", "ShiftLeft", 0)
        await peer.barrier()
        downs = await vroomd.agent("events.filter(e => e.type === 'mousedown')")
        assert downs[-1] == {"type": "mousedown", "x": 10, "y": 10, "button": 2, "shift": True}
    finally:
        await peer.close()


async def test_keys_with_modifiers_reach_the_focused_input(vroomd: Vroomd, pages: str) -> None:
    peer = await interact(vroomd, pages)
    try:
        peer.do(peer.client.mouse_down, 300, 135)
        peer.do(peer.client.mouse_up, 300, 135)
        shift = Modifiers.SHIFT
        for key, code, mods in [
            ("Shift", "ShiftLeft", shift),
            ("H", "KeyH", shift),
            ("Shift", "ShiftLeft", 0),
            ("i", "KeyI", 0),
        ]:
            if key == "Shift" and not mods:
                peer.do(peer.client.send_input, KeyUp(key, code, Modifiers(mods)))
            else:
                peer.do(peer.client.send_input, KeyDown(key, code, Modifiers(mods)))
                if key != "Shift":
                    peer.do(peer.client.send_input, KeyUp(key, code, Modifiers(mods)))
        await peer.barrier()
        assert await vroomd.agent("document.getElementById('field').value") == "Hi"
        # Ctrl+A then a key replaces the selection: Ctrl reaches the page as a modifier.
        peer.do(peer.client.key_down, "Control", "ControlLeft", Modifiers.CTRL)
        peer.do(peer.client.key_down, "a", "KeyA", Modifiers.CTRL)
        peer.do(peer.client.key_up, "a", "KeyA", Modifiers.CTRL)
        peer.do(peer.client.key_up, "Control", "ControlLeft", 0)
        peer.do(peer.client.key_down, "x", "KeyX", 0)
        peer.do(peer.client.key_up, "x", "KeyX", 0)
        # A modifier the client says is held, with no KEY_DOWN of its own
        # (pressed while the client window had no focus): pressed for it.
        peer.do(peer.client.key_down, "Y", "KeyY", Modifiers.SHIFT)
        peer.do(peer.client.key_up, "Y", "KeyY", 0)
        await peer.barrier()
        assert await vroomd.agent("document.getElementById('field').value") == "xY"
        keys = await vroomd.agent("events.filter(e => e.type === 'keydown').map(e => e.key)")
        assert keys[-1] == "Y"
        # PASTE types at the focus, in order with the keys.
        peer.do(peer.client.paste, " pasted ✓")
        await peer.barrier()
        assert await vroomd.agent("document.getElementById('field').value") == "xY pasted ✓"
    finally:
        await peer.close()


async def test_scroll_and_touch_reach_the_page(vroomd: Vroomd, pages: str) -> None:
    peer = await interact(vroomd, pages)
    try:
        peer.do(peer.client.mouse_move, 100, 400)
        peer.do(peer.client.scroll, 0, 250)
        await peer.barrier()
        assert await settle(lambda: vroomd.agent("scrollY === 250"))
        peer.do(peer.client.scroll, 0, -250)
        await peer.barrier()
        assert await settle(lambda: vroomd.agent("scrollY === 0"))
        peer.do(peer.client.touch_start, 0, 350, 200, 255)
        peer.do(peer.client.touch_start, 1, 450, 300, 128)
        peer.do(peer.client.touch_move, 0, 360, 210, 255)
        peer.do(peer.client.touch_end, 0)
        peer.do(peer.client.touch_end, 1)
        await peer.barrier()
        # The page's touch listeners are on the document, so passive: Chromium
        # acknowledges the CDP touch events before the page has run them, and
        # a read right after can see the sequence only in part. Wait for its end.
        events = await settle(
            lambda: vroomd.agent(
                "(() => { const t = events.filter(e => e.type.startsWith('touch'));"
                " return t.some(e => e.type === 'touchend' && e.touches === 0) && t; })()"
            )
        )
        kinds = [(e["type"], e["touches"]) for e in events]
        assert kinds == [
            ("touchstart", 1),
            ("touchstart", 2),
            ("touchmove", 2),
            ("touchend", 1),
            ("touchend", 0),
        ]
        assert events[0]["points"][0][:2] == [350, 200]
        assert events[1]["points"][0][:2] == [450, 300]
        assert abs(events[1]["points"][0][3] - 128 / 255) < 0.01
        assert events[2]["points"][0][:2] == [360, 210]
    finally:
        await peer.close()


async def test_view_mode_refuses_input_channels_and_input(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url())
    try:
        await peer.set_mode("voice")
        await open_page(peer, f"{pages}/agent.html")
        await peer.set_mode("view")
        # A client that opens pointer/button in view mode anyway: CHANNEL_REJECT 4000.
        start = len(peer.events)
        peer.do(peer.client._open, Role.POINTER)
        refused = await peer.wait_for(ChannelRefused, start=start)
        assert refused.code == 4000 and refused.name == "pointer"
        # COMMAND in view mode: one error NOTIFICATION, nothing done.
        note = await peer.command("click", selector="#b1")
        assert note.type == "error" and note.code == 409
        await peer.barrier()
        assert await vroomd.agent("events.length") == 0
    finally:
        await peer.close()


async def test_every_command_gets_one_final_notification(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url())
    try:
        await peer.set_mode("voice")
        url = f"{pages}/agent.html"
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("navigate", {"url": url}, "success"),
            ("click", {"selector": "#b1"}, "success"),
            ("type", {"selector": "#field", "text": "typed"}, "success"),
            ("scroll", {"direction": "down", "amount": 120}, "success"),
            ("select", {"selector": "#sel", "values": ["b"]}, "success"),
            ("hover", {"selector": "#hoverme"}, "success"),
            ("wait", {"selector": "#text", "state": "visible"}, "success"),
            ("screenshot", {}, "success"),
            ("evaluate", {"expression": "1 + 1"}, "error"),
            ("navigate", {"url": f"{pages}/second.html"}, "success"),
            ("wait", {"selector": "#later", "state": "visible"}, "success"),
            ("back", {}, "success"),
            ("forward", {}, "success"),
            ("forward", {}, "error"),
            ("refresh", {}, "success"),
            ("click", {"selector": "#missing", "timeout": 300}, "error"),
            ("natural", {"text": "go back then click One"}, "success"),
            ("natural", {"text": "sing a song"}, "error"),
            ("navigate", {"url": "file:///etc/passwd"}, "error"),
        ]
        for action, args, outcome in cases:
            note = await peer.command(action, **args)
            assert note.type == outcome, (action, args, note.text)
            assert len(peer.finals(note.ref)) == 1, (action, args)
        await peer.barrier()
        await asyncio.sleep(0.2)  # a second final answer would have arrived by now
        refs = [
            e.notification.ref
            for e in peer.events
            if isinstance(e, NotificationReceived) and e.completes
        ]
        assert len(refs) == len(cases) == len(set(refs))
        assert not peer.client.pending
    finally:
        await peer.close()


async def test_command_results_and_refusals(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url())
    try:
        await peer.set_mode("voice")
        await open_page(peer, f"{pages}/agent.html")
        shot = await peer.command("screenshot")
        assert shot.data["mime"] == "image/png"
        assert as_bytes(shot.data["bytes"]).startswith(b"\x89PNG\r\n\x1a\n")
        selected = await peer.command("select", selector="#sel", values=["b"])
        assert selected.data == ["b"]
        assert await vroomd.agent("document.getElementById('sel').value") == "b"
        typed = await peer.command("type", selector="#field", text="hello")
        assert typed.type == "success"
        assert await vroomd.agent("document.getElementById('field').value") == "hello"
        await peer.command("hover", selector="#hoverme")
        assert await vroomd.agent("events.some(e => e.type === 'hover')")
        evaluate = await peer.command("evaluate", expression="document.title")
        assert evaluate.type == "error" and evaluate.code == 403
        refused = await peer.command("navigate", url="file:///etc/passwd")
        assert refused.type == "error" and refused.code == 403
        timed_out = await peer.command("wait", selector="#never", state="attached", timeout=200)
        assert timed_out.type == "error" and timed_out.code == 504
        # NAVIGATE (no id) to a refused scheme: an error NOTIFICATION without ref.
        start = len(peer.events)
        peer.do(peer.client.navigate, "chrome://settings")
        note = await peer.wait_for(NotificationReceived, start=start)
        assert note.notification.type == "error" and note.notification.ref is None
        assert note.notification.code == 403
        natural = await peer.command("natural", text="type Ada into Name then press Enter")
        assert natural.type == "success", natural.text
        assert await vroomd.agent("document.getElementById('field').value") == "Ada"
    finally:
        await peer.close()


async def test_evaluate_allowed_when_configured(pages: str) -> None:
    from vroomd.graphical import GraphicalConfig

    from .conftest import start_vroomd

    server = await start_vroomd(
        GraphicalConfig(allow_evaluate=True, allowed_schemes=("http", "data"))
    )
    try:
        peer = await Peer.connect(server.url())
        await peer.set_mode("voice")
        await open_page(peer, f"{pages}/agent.html")
        note = await peer.command("evaluate", expression="({n: 1 + 1, t: document.title, x: NaN})")
        assert note.type == "success"
        assert note.data == {"n": 2, "t": "Agent test page", "x": "nan"}
        ok = await peer.command("navigate", url="data:text/html,<title>d</title>")
        assert ok.type == "success", ok.text
        await peer.close()
    finally:
        await server.daemon.close()


async def test_clipboard_round_trip_and_page_copy(vroomd: Vroomd, pages: str) -> None:
    peer = await interact(vroomd, pages)
    try:
        start = len(peer.events)
        peer.do(peer.client.clipboard, "set", "from the person ✓")
        peer.do(peer.client.clipboard, "get")
        push = await peer.wait_for(ClipboardReceived, start=start)
        assert push.direction == "push" and push.text == "from the person ✓"
        # Ctrl+V in the page pastes what CLIPBOARD set put there.
        peer.do(peer.client.mouse_down, 300, 135)
        peer.do(peer.client.mouse_up, 300, 135)
        for message in (
            KeyDown("Control", "ControlLeft", Modifiers.CTRL),
            KeyDown("v", "KeyV", Modifiers.CTRL),
            KeyUp("v", "KeyV", Modifiers.CTRL),
            KeyUp("Control", "ControlLeft", Modifiers.NONE),
        ):
            peer.do(peer.client.send_input, message)
        await peer.barrier()
        value = await vroomd.agent("document.getElementById('field').value")
        assert value == "from the person ✓"
        # A copy in the agent's page is pushed to the client.
        start = len(peer.events)
        for message in (
            KeyDown("Control", "ControlLeft", Modifiers.CTRL),
            KeyDown("a", "KeyA", Modifiers.CTRL),
            KeyUp("a", "KeyA", Modifiers.CTRL),
            KeyDown("c", "KeyC", Modifiers.CTRL),
            KeyUp("c", "KeyC", Modifiers.CTRL),
            KeyUp("Control", "ControlLeft", Modifiers.NONE),
        ):
            peer.do(peer.client.send_input, message)
        push = await peer.wait_for(ClipboardReceived, start=start)
        assert push.text == "from the person ✓"
        # Over the cap: refused with 413, the clipboard unchanged.
        start = len(peer.events)
        peer.do(peer.client.clipboard, "set", "x" * (vroomd.hub.config.clipboard_limit + 1))
        note = await peer.wait_for(NotificationReceived, start=start)
        assert note.notification.type == "error" and note.notification.code == 413
    finally:
        await peer.close()


async def test_clipboards_of_two_connections_stay_apart(vroomd: Vroomd, pages: str) -> None:
    """Chromium has one clipboard; each connection still only sees its own."""

    async def paste_into_field(peer: Peer) -> None:
        peer.do(peer.client.mouse_down, 300, 135)
        peer.do(peer.client.mouse_up, 300, 135)
        for message in (
            KeyDown("Control", "ControlLeft", Modifiers.CTRL),
            KeyDown("v", "KeyV", Modifiers.CTRL),
            KeyUp("v", "KeyV", Modifiers.CTRL),
            KeyUp("Control", "ControlLeft", Modifiers.NONE),
        ):
            peer.do(peer.client.send_input, message)
        await peer.barrier()

    async def get(peer: Peer) -> str | None:
        start = len(peer.events)
        peer.do(peer.client.clipboard, "get")
        return (await peer.wait_for(ClipboardReceived, start=start)).text

    alice = await interact(vroomd, pages)
    bob = await interact(vroomd, pages)
    try:
        alice.do(alice.client.clipboard, "set", "alice's secret")
        assert await get(alice) == "alice's secret"
        assert await get(bob) == ""
        bob_screen = next(s for s in vroomd.screens() if s.owner is not _owner(vroomd, alice))
        # Bob's page claims a copy it never made: nothing of Alice's is pushed.
        start = len(bob.events)
        await bob_screen.page.evaluate("window.__vroomd('copy')")
        await bob.barrier()
        await asyncio.sleep(0.3)
        assert not [e for e in bob.events[start:] if isinstance(e, ClipboardReceived)]
        await paste_into_field(bob)
        await bob_screen.idle()
        assert await bob_screen.page.evaluate("document.getElementById('field').value") == ""
        # Alice still pastes her own text.
        await paste_into_field(alice)
        alice_screen = next(s for s in vroomd.screens() if s is not bob_screen)
        await alice_screen.idle()
        value = await alice_screen.page.evaluate("document.getElementById('field').value")
        assert value == "alice's secret"
        # The agent's pages cannot read the clipboard themselves.
        denied = await alice_screen.page.evaluate(
            "navigator.clipboard.readText().then(() => 'read', (e) => e.name)"
        )
        assert denied == "NotAllowedError"
    finally:
        await alice.close()
        await bob.close()


def _owner(vroomd: Vroomd, peer: Peer) -> Any:
    port = peer.session.sink.ws.local_address[1]  # type: ignore[union-attr]
    for service in vroomd.hub.services:
        peername = service.session.transport_info.get("peername")
        if peername and peername[1] == port:
            return service
    raise AssertionError("no service for that client")


async def test_chat_both_ways(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url())
    try:
        start = len(peer.events)
        peer.do(peer.client.chat, "go to example.org")
        answer = await peer.wait_for(ChatReceived, lambda e: e.role == "agent", start=start)
        assert "view mode" in answer.text
        await peer.set_mode("voice")
        start = len(peer.events)
        peer.do(peer.client.chat, f"open {pages}/second.html")
        answer = await peer.wait_for(ChatReceived, lambda e: e.role == "agent", start=start)
        assert answer.text.startswith("Done: loaded"), answer.text
        await peer.wait_for(StateReceived, lambda e: e.state.title == "Second page")
        start = len(peer.events)
        peer.do(peer.client.chat, "hello there")
        answer = await peer.wait_for(ChatReceived, lambda e: e.role == "agent", start=start)
        assert "I understand" in answer.text
    finally:
        await peer.close()


async def _cursor_after_move(peer: Peer, x: int, y: int, kind: str) -> CursorReceived:
    """Move to (x, y) once; the CURSOR the agent reports there.

    One move is enough: the agent reports the cursor under every position it
    sends to the page (a coalesced move included), once the page has it.
    """
    start = len(peer.events)
    peer.do(peer.client.mouse_move, x, y)
    try:
        return await peer.wait_for(
            CursorReceived,
            lambda e: e.cursor.type == kind and (e.cursor.x, e.cursor.y) == (x, y),
            start=start,
        )
    except TimeoutError:
        seen = [e.cursor for e in peer.events if isinstance(e, CursorReceived)][-3:]
        raise AssertionError(
            f"no {kind!r} cursor reported at ({x}, {y}); last reports: {seen}"
        ) from None


async def test_cursor_follows_the_page(vroomd: Vroomd, pages: str) -> None:
    peer = await interact(vroomd, pages)
    try:
        cursor = await _cursor_after_move(peer, 300, 135, "text")
        assert (cursor.cursor.x, cursor.cursor.y) == (300, 135)
        await _cursor_after_move(peer, 50, 300, "crosshair")
        await _cursor_after_move(peer, 40, 225, "pointer")
    finally:
        await peer.close()


async def test_cursor_is_reported_where_a_coalesced_move_stops(vroomd: Vroomd, pages: str) -> None:
    """Moves that arrive while one is in flight wait behind it (the newest
    wins) and are sent when Chromium acknowledges it. The cursor must follow
    that later move too: a pointer that stops right after a quick move has
    to show the cursor of where it stopped, not of where it passed."""
    peer = await interact(vroomd, pages)
    try:
        start = len(peer.events)
        peer.client.mouse_move(300, 135)  # sent at once: the text field
        peer.client.mouse_move(50, 300)  # waits for it: the crosshair box
        peer.flush()
        await peer.wait_for(
            CursorReceived,
            lambda e: (e.cursor.type, e.cursor.x, e.cursor.y) == ("crosshair", 50, 300),
            start=start,
        )
    finally:
        await peer.close()


async def test_idle_waits_for_the_input_being_dispatched(vroomd: Vroomd, pages: str) -> None:
    """`Screen.idle()` (what tests and benchmarks read the page after) returns
    only once the last input's CDP call has completed, not once the queue is
    empty: the worker takes an input off the queue before dispatching it."""
    peer = await interact(vroomd, pages)
    try:
        screen = vroomd.screen()
        spy = _CallsInFlight(screen.input.cdp)
        screen.input.cdp = spy
        for _ in range(10):
            peer.do(peer.client.mouse_down, 10, 10)
            peer.do(peer.client.mouse_up, 10, 10)
            peer.do(peer.client.touch_start, 0, 350, 200)
            peer.do(peer.client.touch_end, 0)
            await peer.barrier()
            await screen.idle()
            assert spy.in_flight == 0
        assert spy.calls >= 40
    finally:
        await peer.close()


class _CallsInFlight:
    """The page's real CDP session, counting the calls not yet answered."""

    def __init__(self, cdp: Any) -> None:
        self.cdp = cdp
        self.calls = 0
        self.in_flight = 0

    async def send(self, method: str, params: Any = None) -> Any:
        self.calls += 1
        self.in_flight += 1
        try:
            return await self.cdp.send(method, params)
        finally:
            self.in_flight -= 1


async def test_resize_follows_the_client(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url(), viewport=(800, 600))
    try:
        start = len(peer.events)
        peer.do(peer.client.resize, 640, 480)
        state = await peer.wait_for(
            StateReceived, lambda e: e.state.viewport is not None, start=start
        )
        assert state.state.viewport is not None
        assert (state.state.viewport.width, state.state.viewport.height) == (640, 480)
        assert await vroomd.agent("[innerWidth, innerHeight]") == [640, 480]
        # Clamped into the server's bounds.
        peer.do(peer.client.resize, 5000, 50)
        await peer.wait_for(
            StateReceived,
            lambda e: e.state.viewport is not None and e.state.viewport.width == 1920,
            start=start,
        )
        assert await vroomd.agent("[innerWidth, innerHeight]") == [1920, 150]
    finally:
        await peer.close()


async def test_authentication(vroomd: Vroomd) -> None:
    for url in (vroomd.url(token=None), vroomd.url(token="wrong")):
        peer = await Peer.connect(url, handshake=False)
        failed = await peer.wait_for(HandshakeFailed)
        assert failed.code == 4000
        assert vroomd.hub.viewers == 0
        await peer.close()
    bearer = await Peer.connect(
        vroomd.url(token=None), token=vroomd.daemon.config.token, auth_header=True
    )
    assert bearer.client.ready
    await bearer.close()


async def test_terminal_and_graphical_on_one_connection(vroomd: Vroomd, pages: str) -> None:
    """One connection, one port: a shell in a real PTY and the agent's browser at once."""
    import openmux
    from vroom_terminal import events as tev
    from vroom_terminal.channels import parse_name as terminal_name
    from vroom_terminal.client import TerminalClient

    peer = await Peer.connect(vroomd.url())
    session = peer.session
    term = TerminalClient(session.connection)
    output = bytearray()
    exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    def on_terminal(event: Any) -> None:
        if isinstance(event, tev.Negotiated):
            term.authenticate(token=vroomd.daemon.config.token)
        elif isinstance(event, tev.AuthResult):
            assert event.ok
            term.request_pty(rows=10, cols=60)
        elif isinstance(event, tev.PtyGranted):
            term.exec("echo graphical-and-terminal")
        elif isinstance(event, tev.PtyOutput):
            output.extend(event.data)
            term.ack(len(event.data))
        elif isinstance(event, tev.ExitStatusReceived) and not exited.done():
            exited.set_result(event.code)

    def ours(event: Any) -> bool:
        if isinstance(event, openmux.MessageReceived):
            channel = session.connection.channels.get(event.channel_id)
            return channel is not None and terminal_name(channel.name) is not None
        if isinstance(event, openmux.ChannelOpened | openmux.ChannelClosed):
            return terminal_name(event.channel.name) is not None
        return False

    def tap(events: list[Any]) -> list[Any]:
        # after the peer's graphical tap: what it passed on
        rest = []
        for event in events:
            if ours(event):
                for result in term.handle_event(event):
                    on_terminal(result)
            else:
                rest.append(event)
        return rest

    session.add_event_tap(tap)
    try:
        peer.do(term.open_session)
        await peer.set_mode("voice")
        note = await peer.command("navigate", url=f"{pages}/second.html")
        assert note.type == "success"
        async with asyncio.timeout(20):
            assert await exited == 0
        assert b"graphical-and-terminal" in output
        shot = await peer.command("screenshot")
        assert shot.type == "success"
    finally:
        await peer.close()


async def test_connect_disconnect_cycles_leak_nothing(vroomd: Vroomd, pages: str) -> None:
    async def one() -> None:
        peer = await Peer.connect(vroomd.url(), video=True)
        await peer.set_mode("interact")
        peer.do(peer.client.mouse_move, 10, 10)
        await peer.wait_for(VideoFrame)
        await peer.close()

    await one()  # the browser is up; count from here
    await settle(lambda: _async(vroomd.hub.viewers == 0 and not vroomd.hub.services))
    browser = vroomd.hub.browser._browser
    contexts = len(browser.contexts)
    tasks = len(asyncio.all_tasks())
    for _ in range(12):
        await one()
    await settle(lambda: _async(vroomd.hub.viewers == 0 and not vroomd.hub.services))
    await settle(lambda: _async(len(browser.contexts) <= contexts))
    await settle(lambda: _async(len(asyncio.all_tasks()) <= tasks))
    assert vroomd.hub.browser.launches == 1


async def test_when_chromium_dies_sessions_end_clearly_and_the_next_starts_it(
    pages: str,
) -> None:
    from vroom_graphical import SessionClosed

    from .conftest import start_vroomd

    server = await start_vroomd()
    try:
        peer = await Peer.connect(server.url())
        await peer.set_mode("voice")
        await open_page(peer, f"{pages}/agent.html")
        start = len(peer.events)
        await server.hub.browser._browser.close()  # as if it crashed
        note = await peer.wait_for(NotificationReceived, start=start)
        assert note.notification.type == "error" and "browser stopped" in note.notification.text
        await peer.wait_for(SessionClosed, start=start)
        await peer.close()
        again = await Peer.connect(server.url())
        await again.set_mode("voice")
        await open_page(again, f"{pages}/second.html")
        assert server.hub.browser.launches == 2
        await again.close()
    finally:
        await server.daemon.close()


async def test_slow_client_gets_newest_frames_not_a_queue(vroomd: Vroomd, pages: str) -> None:
    peer = await Peer.connect(vroomd.url(), viewport=(1280, 720), video=True)
    try:
        await peer.set_mode("voice")
        await open_page(peer, f"{pages}/anim.html")
        await peer.wait_for(VideoFrame)
        screen = vroomd.screen()
        service = next(iter(vroomd.hub.services))
        server_session = service.session
        peer.session.sink.pause_reading()  # the client stops reading
        sizes = []
        for _ in range(30):
            await asyncio.sleep(0.1)
            sizes.append(server_session.write_buffer_size() or 0)
        slot = next(iter(screen.slots))
        assert slot.dropped > 10  # frames were dropped, not queued
        # At most one frame beyond the transport's high-water mark ever waits.
        assert max(sizes) <= server_session.options.write_limit + 512 * 1024
        assert screen.screencast.frames > 20  # Chromium kept producing
        peer.session.sink.resume_reading()
        start = len(peer.events)
        await peer.wait_for(VideoFrame, start=start)
    finally:
        await peer.close()


async def _async(value: Any) -> Any:
    return value
