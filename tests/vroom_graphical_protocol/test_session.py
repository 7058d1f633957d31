"""A real client/server pair over two openmux.Connection objects: handshake,
modes with channel open/close, refusals, input, commands."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import openmux
import pytest
from vroom_graphical import (
    BadMessage,
    ButtonInput,
    ChatReceived,
    ClipboardReceived,
    CommandReceived,
    CursorReceived,
    GraphicalClient,
    GraphicalServer,
    HandshakeDone,
    HandshakeFailed,
    InputReady,
    KeyDown,
    KeyUp,
    LocalProtocolError,
    ModeChanged,
    Modifiers,
    MouseButton,
    MouseDown,
    MouseMove,
    MouseMoveRel,
    MouseUp,
    NavigateRequested,
    NotificationReceived,
    PasteReceived,
    PointerInput,
    Resized,
    Scroll,
    SessionClosed,
    State,
    StateReceived,
    TouchEnd,
    TouchMove,
    TouchStart,
    VideoClosed,
    VideoFrame,
    VideoOpened,
    Viewport,
    control_spec,
    video_spec,
)
from vroom_graphical.errors import ErrorCode

from .pair import Pair, of


def notifications(pair: Pair) -> list[Any]:
    return [e.notification for e in of(pair.client_events, NotificationReceived)]


def control_payloads_to_client(pair: Pair) -> list[bytes]:
    """Payloads of frames the server sent on the graphical control channel (id 1)."""
    return [f[6:] for f in pair.s2c_frames if f[0] == 1]


# ------------------------------------------------------------------ handshake


def test_handshake_cbor_preferred() -> None:
    p = Pair()
    (done,) = of(p.server_events, HandshakeDone)
    assert done.encoding == "cbor"
    assert done.mode == "view"
    assert done.viewport == Viewport(1280, 720)
    assert done.handshake.viewport == Viewport(800, 600)
    (cdone,) = of(p.client_events, HandshakeDone)
    assert cdone.encoding == "cbor"
    assert p.client.ready and p.client.viewport == Viewport(1280, 720)
    # the client's VROOM_HANDSHAKE is JSON on the wire, the reply CBOR
    hello = next(f for f in p.c2s_frames if f[0] == 1 and f[1] == 0x80)
    assert json.loads(hello[6:])["control_encoding"] == ["cbor", "json"]
    reply, first_state = control_payloads_to_client(p)[:2]
    assert cbor2.loads(reply)["control_encoding"] == "cbor"
    # connection flow step 6: the server sends STATE carrying the mode
    assert cbor2.loads(first_state) == {"state": "idle", "mode": "view"}
    assert of(p.client_events, StateReceived)[0].state.mode == "view"


def test_handshake_json_when_asked() -> None:
    p = Pair(client={"encodings": ["json"]})
    assert of(p.server_events, HandshakeDone)[0].encoding == "json"
    assert json.loads(control_payloads_to_client(p)[0])["control_encoding"] == "json"
    p.client.chat("hello")
    assert of(p.pump()[0], ChatReceived)[0].text == "hello"


def test_server_picks_first_client_encoding_it_supports() -> None:
    p = Pair(server={"encodings": ["json"]})
    assert p.client.encoding == "json"


def test_control_channel_opened_after_welcome() -> None:
    p = Pair(hello_channels=[])
    assert p.client.ready
    assert any(isinstance(e, openmux.ChannelOpened) and e.request_id for e in p.client_mux_events)


def test_capabilities_are_intersected() -> None:
    p = Pair(
        server={"capabilities": ["pointer", "command"]},
        client={"capabilities": ["command", "keyboard", "pointer"]},
    )
    assert of(p.server_events, HandshakeDone)[0].capabilities == ("command", "pointer")
    assert p.client.capabilities == ("command", "pointer")


def test_viewport_policy_follows_the_client() -> None:
    p = Pair(server={"viewport": lambda v: Viewport(v.width, v.height)})
    assert p.client.viewport == Viewport(800, 600)


def _bad_handshake(pair: Pair, body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    cid = pair.client_channel("vroom.graphical.control")
    pair.cmux.send_message(cid, 0x80, json.dumps(body).encode())
    return pair.pump()


HELLO = {"version": "0.1.0", "capabilities": [], "viewport": {"width": 10, "height": 10}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (HELLO | {"control_encoding": ["msgpack"]}, ErrorCode.UNSUPPORTED_ENCODING),
        (HELLO | {"version": "1.0.0"}, ErrorCode.VERSION_MISMATCH),
        ({"version": "0.1.0", "capabilities": []}, ErrorCode.BAD_MESSAGE),
    ],
)
def test_bad_handshake_is_refused_and_closes_control(body: dict[str, Any], code: int) -> None:
    p = Pair(start=False)
    p.client._hello_sent = True  # we send our own VROOM_HANDSHAKE
    p.pump()
    server_events, client_events = _bad_handshake(p, body)
    (failed,) = of(server_events, HandshakeFailed)
    assert failed.code == code
    # the refusal is a JSON NOTIFICATION error (nothing agreed yet), then CLOSE_CHANNEL
    note = json.loads(control_payloads_to_client(p)[-1])
    assert note["type"] == "error" and note["code"] == code
    assert of(client_events, HandshakeFailed)[0].code == code
    assert of(client_events, SessionClosed)
    assert p.smux.channels == {} and p.cmux.channels == {}
    assert p.server.sessions == {}


def test_client_refuses_a_bad_server_reply() -> None:
    p = Pair(serve=False)
    sid = next(iter(p.smux.channels))
    body = {
        "version": "0.1.0",
        "control_encoding": "xml",
        "capabilities": [],
        "viewport": {"width": 1, "height": 1},
    }
    events = p.inject_to_client(sid, 0x80, json.dumps(body).encode())
    assert of(events, HandshakeFailed)[0].code == ErrorCode.UNSUPPORTED_ENCODING
    assert p.cmux.channels == {}
    p = Pair(serve=False)
    body |= {"control_encoding": "json", "version": "2.0.0"}
    events = p.inject_to_client(sid, 0x80, json.dumps(body).encode())
    assert of(events, HandshakeFailed)[0].code == ErrorCode.VERSION_MISMATCH


def test_client_before_handshake() -> None:
    p = Pair(serve=False)
    sid = next(iter(p.smux.channels))
    events = p.inject_to_client(sid, 0x91, b'{"state":"idle"}')
    assert of(events, BadMessage)[0].code == ErrorCode.WRONG_STATE
    events = p.inject_to_client(sid, 0x92, b'{"type":"error","text":"no","code":505}')
    assert of(events, HandshakeFailed)[0].code == 505
    with pytest.raises(LocalProtocolError, match="closed"):
        p.client.chat("x")


def test_messages_before_handshake_get_a_json_error() -> None:
    p = Pair(start=False)
    p.client._hello_sent = True
    p.pump()
    cid = p.client_channel("vroom.graphical.control")
    events = p.inject_to_server(cid, 0x85, json.dumps({"id": "c1", "action": "back"}).encode())
    assert of(events, BadMessage)[0].code == ErrorCode.WRONG_STATE
    note = json.loads(control_payloads_to_client(p)[-1])
    assert note == {
        "ref": "c1",
        "type": "error",
        "text": "COMMAND before VROOM_HANDSHAKE",
        "code": 409,
    }
    p.inject_to_server(cid, 0x85, cbor2.dumps({"id": 7, "action": "back"}))
    assert json.loads(control_payloads_to_client(p)[-1])["ref"] == 7
    p.inject_to_server(cid, 0x77, b"junk")
    assert "0x77 before" in json.loads(control_payloads_to_client(p)[-1])["text"]
    # the session is still usable: a good handshake now succeeds
    payload = json.dumps(p.client.hello.to_body()).encode()
    events = p.inject_to_server(cid, 0x80, payload)
    assert of(events, HandshakeDone)
    # the client took the first error, arriving before any reply, as a refusal
    assert of(p.client_events, HandshakeFailed)[0].code == ErrorCode.WRONG_STATE


def test_second_handshake_is_refused() -> None:
    p = Pair()
    cid = p.client_channel("vroom.graphical.control")
    events = p.inject_to_server(cid, 0x80, cbor2.dumps(p.client.hello.to_body()))
    assert of(events, BadMessage)[0].code == ErrorCode.WRONG_STATE
    assert p.client.ready


# ------------------------------------------------------------------ modes


def test_interact_opens_and_leaving_closes_input_channels() -> None:
    p = Pair()
    p.client.set_mode("interact")
    server_events, client_events = p.pump()
    assert of(server_events, ModeChanged) == [ModeChanged("interact", "view")]
    assert [type(e) for e in client_events] == [ModeChanged, StateReceived, InputReady]
    names = {c.name: c for c in p.smux.channels.values()}
    assert set(names) == {"vroom.graphical.control", "pointer", "button"}
    pointer, button = names["pointer"], names["button"]
    assert (pointer.reliable, pointer.ordered, pointer.max_retransmits) == (False, False, 0)
    assert (button.reliable, button.ordered) == (True, True)
    assert p.client.input_ready and p.server.mode() == "interact"

    p.client.set_mode("voice")
    assert not p.client.input_ready  # closed at once, not after the ack
    server_events, client_events = p.pump()
    assert of(server_events, ModeChanged) == [ModeChanged("voice", "interact")]
    assert of(client_events, ModeChanged) == [ModeChanged("voice", "interact")]
    assert {c.name for c in p.smux.channels.values()} == {"vroom.graphical.control"}
    assert {c.name for c in p.cmux.channels.values()} == {"vroom.graphical.control"}
    with pytest.raises(LocalProtocolError, match="interact"):
        p.client.mouse_move(1, 1)


def test_mode_is_acknowledged_by_state_carrying_mode() -> None:
    p = Pair()
    p.client.set_mode("voice")
    assert p.client.mode == "view"  # not until the server's STATE says so
    p.pump()
    assert p.client.mode == "voice"
    assert cbor2.loads(control_payloads_to_client(p)[-1])["mode"] == "voice"


def test_handshake_in_interact_opens_input_after_first_state() -> None:
    p = Pair(client={"mode": "interact"})
    assert p.client.input_ready
    assert of(p.client_events, InputReady)


def test_pointer_and_button_rejected_outside_interact() -> None:
    p = Pair()
    p.cmux.open_channel("pointer", reliable=False, ordered=False, max_retransmits=0)
    p.cmux.open_channel("button")
    p.pump()
    rejected = of(p.client_mux_events, openmux.ChannelRejected)
    assert [(r.name, r.code) for r in rejected] == [("pointer", 4000), ("button", 4000)]
    assert "interact" in rejected[0].reason


def test_pointer_rejected_before_handshake() -> None:
    p = Pair(start=False)
    p.client._hello_sent = True
    p.pump()
    p.cmux.open_channel("pointer")
    p.pump()
    assert of(p.client_mux_events, openmux.ChannelRejected)[0].code == 4000


def test_input_outside_interact_is_dropped() -> None:
    # an application policy that accepts everything: the server still drops input
    p = Pair(policy=lambda spec: None)
    p.cmux.open_channel("pointer", reliable=False, ordered=False)
    p.pump()
    pid = p.client_channel("pointer")
    events = p.inject_to_server(pid, 0x01, MouseMove(1, 2).pack())
    assert events == []
    assert p.server.dropped_input == 1


def test_input_in_flight_after_leaving_interact_is_dropped() -> None:
    p = Pair(client={"mode": "interact"})
    pid = p.client_channel("pointer")
    cid = p.client_channel("vroom.graphical.control")
    p.cmux.send_message(cid, 0x81, cbor2.dumps({"mode": "view"}))
    p.cmux.send_message(pid, 0x01, MouseMove(5, 5).pack())
    server_events, _ = p.pump()
    assert not of(server_events, PointerInput)
    assert p.server.dropped_input == 1


# ------------------------------------------------------------------ input


def test_every_input_is_decoded() -> None:
    p = Pair(client={"mode": "interact"})
    c = p.client
    c.mouse_move(512, 300)
    c.mouse_move_rel(-3, 4)
    c.scroll(0, 120)
    c.mouse_down(10, 20, MouseButton.RIGHT)
    c.mouse_up(10, 20, 2)
    c.key_down("A", "KeyA", Modifiers.SHIFT)
    c.key_up("a", "KeyA", Modifiers.CTRL | Modifiers.ALT | Modifiers.META | Modifiers.CAPS_LOCK)
    c.touch_start(1, 5, 6, 128)
    c.touch_move(1, 7, 8)
    c.touch_end(1)
    server_events, _ = p.pump()
    pointer = [e.input for e in of(server_events, PointerInput)]
    button = [e.input for e in of(server_events, ButtonInput)]
    assert pointer == [MouseMove(512, 300), MouseMoveRel(-3, 4), Scroll(0, 120)]
    assert button == [
        MouseDown(10, 20, MouseButton.RIGHT),
        MouseUp(10, 20, MouseButton.RIGHT),
        KeyDown("A", "KeyA", Modifiers.SHIFT),
        KeyUp("a", "KeyA", Modifiers(0x1E)),
        TouchStart(1, 5, 6, 128),
        TouchMove(1, 7, 8, 255),
        TouchEnd(1),
    ]
    assert button[3].modifiers == 0x1E
    move = next(f for f in p.c2s_frames if f[1] == 0x01 and f[0] == p.client_channel("pointer"))
    assert len(move) == 10 and move[1:] == bytes.fromhex("01 00 00 00 04 02 00 01 2c")


def test_client_input_range_errors_are_local() -> None:
    p = Pair(client={"mode": "interact"})
    for call in (
        lambda: p.client.mouse_move(70000, 0),
        lambda: p.client.mouse_down(0, 0, 7),
        lambda: p.client.key_down("a", "", 0x20),
        lambda: p.client.key_down("a", "", 300),
        lambda: p.client.touch_end(256),
    ):
        with pytest.raises(LocalProtocolError):
            call()


@pytest.mark.parametrize(
    ("channel", "type_", "payload", "code"),
    [
        ("pointer", 0x10, "0000000000", ErrorCode.BAD_MESSAGE),  # MOUSE_DOWN on pointer
        ("button", 0x01, "00000000", ErrorCode.BAD_MESSAGE),  # MOUSE_MOVE on button
        ("pointer", 0x01, "000000", ErrorCode.BAD_MESSAGE),
        ("button", 0x12, "0161000020", ErrorCode.BAD_MESSAGE),  # reserved modifier bit
        ("button", 0x10, "0000000009", ErrorCode.BAD_MESSAGE),  # button 9
        ("button", 0x42, "", ErrorCode.UNKNOWN),
        ("button", 0x12, "01" * 600, ErrorCode.TOO_LARGE),
    ],
)
def test_bad_input_gets_a_notification(channel: str, type_: int, payload: str, code: int) -> None:
    p = Pair(client={"mode": "interact"})
    events = p.inject_to_server(p.client_channel(channel), type_, bytes.fromhex(payload))
    assert of(events, BadMessage)[0].code == code
    assert notifications(p)[-1].code == code


def test_input_needs_its_capability() -> None:
    p = Pair(client={"mode": "interact", "capabilities": ["pointer", "keyboard"]})
    p.client.touch_start(1, 1, 1)
    server_events, _ = p.pump()
    assert not of(server_events, ButtonInput)
    assert of(server_events, BadMessage)[0].code == ErrorCode.FORBIDDEN
    assert "touch capability" in notifications(p)[-1].text


# ------------------------------------------------------------------ commands


def test_command_gets_exactly_one_final_notification() -> None:
    p = Pair(client={"mode": "voice"})
    cid = p.client.command("click", selector="#go")
    assert cid in p.client.pending
    (cmd,) = of(p.pump()[0], CommandReceived)
    assert (cmd.id, cmd.action, dict(cmd.args)) == (cid, "click", {"selector": "#go"})
    assert p.server.pending_commands() == [cmd.ticket]
    p.server.send_notification("clicking", type="info", ref=cid)  # progress is allowed
    p.server.reply(cmd, data={"clicked": True})
    with pytest.raises(LocalProtocolError, match="answered already"):
        p.server.reply(cmd)
    with pytest.raises(LocalProtocolError, match="answered already"):
        p.server.send_notification("again", type="success", ref=cid)
    _, client_events = p.pump()
    notes = of(client_events, NotificationReceived)
    assert [(n.notification.type, n.completes) for n in notes] == [
        ("info", False),
        ("success", True),
    ]
    assert notes[1].notification.data == {"clicked": True}
    assert p.client.pending == set() and p.server.pending_commands() == []


def test_send_notification_can_finish_a_command() -> None:
    p = Pair(client={"mode": "voice"})
    cid = p.client.command("back", id="b1")
    p.pump()
    p.server.send_notification("no history", type="error", ref="b1", code=500)
    _, client_events = p.pump()
    assert of(client_events, NotificationReceived)[0].completes
    assert cid == "b1" and p.server.pending_commands() == []


def test_command_without_id_still_gets_one_notification() -> None:
    p = Pair(client={"mode": "voice"})
    cp = p.client_channel("vroom.graphical.control")
    (cmd,) = of(p.inject_to_server(cp, 0x85, cbor2.dumps({"action": "refresh"})), CommandReceived)
    assert cmd.id is None
    p.server.reply(cmd, ok=False, text="refresh failed")
    _, client_events = p.pump()
    note = of(client_events, NotificationReceived)[0].notification
    assert (note.ref, note.type, note.code) == (None, "error", ErrorCode.INTERNAL)


@pytest.mark.parametrize(
    ("mode", "action", "args", "code"),
    [
        ("view", "click", {"selector": "a"}, ErrorCode.WRONG_STATE),
        ("voice", "evaluate", {"expression": "1+1"}, ErrorCode.FORBIDDEN),
        ("interact", "navigate", {"url": "file:///etc/passwd"}, ErrorCode.FORBIDDEN),
        ("interact", "navigate", {"url": "javascript:alert(1)"}, ErrorCode.FORBIDDEN),
        ("voice", "teleport", {}, ErrorCode.UNKNOWN),
        ("voice", "click", {}, ErrorCode.BAD_MESSAGE),
    ],
)
def test_refused_commands_get_their_one_error(
    mode: str, action: str, args: dict[str, Any], code: int
) -> None:
    p = Pair(client={"mode": mode})
    cp = p.client_channel("vroom.graphical.control")
    events = p.inject_to_server(cp, 0x85, cbor2.dumps({"id": "x1", "action": action} | args))
    assert not of(events, CommandReceived)
    (note,) = notifications(p)
    assert (note.ref, note.type, note.code) == ("x1", "error", code)


def test_evaluate_allowed_when_configured() -> None:
    p = Pair(
        client={"mode": "voice"},
        server={"allow_evaluate": True, "allowed_schemes": ["http", "https", "data"]},
    )
    p.client.command("evaluate", expression="1+1")
    p.client.command("navigate", url="data:text/html,hi")
    p.client.command("navigate", url="example.com")
    cmds = of(p.pump()[0], CommandReceived)
    assert [c.action for c in cmds] == ["evaluate", "navigate", "navigate"]
    assert cmds[2].args["url"] == "https://example.com"


def test_command_needs_its_capability() -> None:
    p = Pair(client={"mode": "voice", "capabilities": ["pointer"]})
    cp = p.client_channel("vroom.graphical.control")
    p.inject_to_server(cp, 0x85, cbor2.dumps({"id": 1, "action": "back"}))
    assert notifications(p)[0].code == ErrorCode.FORBIDDEN


def test_duplicate_pending_id_is_refused() -> None:
    p = Pair(client={"mode": "voice"})
    p.client.command("back", id="same")
    p.pump()
    with pytest.raises(LocalProtocolError, match="pending"):
        p.client.command("back", id="same")
    cp = p.client_channel("vroom.graphical.control")
    events = p.inject_to_server(cp, 0x85, cbor2.dumps({"id": "same", "action": "forward"}))
    assert of(events, BadMessage)[0].code == ErrorCode.WRONG_STATE
    assert len(p.server.pending_commands()) == 1


def test_many_commands_each_answered_once() -> None:
    p = Pair(client={"mode": "voice"})
    cp = p.client_channel("vroom.graphical.control")
    bodies = [
        {"id": 1, "action": "click", "selector": "a"},
        {"id": 2, "action": "evaluate", "expression": "x"},
        {"id": 3, "action": "nope"},
        {"id": 4, "action": "screenshot"},
        {"id": 5, "action": "type"},
        {"id": 6, "action": "natural", "text": "open the docs"},
        {"id": 7, "action": "navigate", "url": "chrome://settings"},
    ]
    for body in bodies:
        p.cmux.send_message(cp, 0x85, cbor2.dumps(body))
    for cmd in of(p.pump()[0], CommandReceived):
        p.server.reply(
            cmd,
            data={"mime": "image/png", "bytes": b"\x89PNG"} if cmd.action == "screenshot" else None,
        )
    p.pump()
    finals = [n.ref for n in notifications(p) if n.is_final]
    assert sorted(finals) == [1, 2, 3, 4, 5, 6, 7]
    shot = next(n for n in notifications(p) if n.ref == 4)
    assert shot.data == {"mime": "image/png", "bytes": b"\x89PNG"}


# ------------------------------------------------------------------ other control messages


def test_navigate() -> None:
    p = Pair()
    p.client.navigate("https://example.com")
    server_events, _ = p.pump()
    assert not of(server_events, NavigateRequested)
    note = notifications(p)[-1]
    assert (note.ref, note.code) == (None, ErrorCode.WRONG_STATE)
    p.client.set_mode("voice")
    p.client.navigate("localhost:8000", new_tab=True)
    p.client.navigate("file:///etc/shadow")
    server_events, _ = p.pump()
    assert of(server_events, NavigateRequested) == [
        NavigateRequested("http://localhost:8000", True)
    ]
    note = notifications(p)[-1]
    assert (note.ref, note.code, note.type) == (None, ErrorCode.FORBIDDEN, "error")


def test_paste_only_in_interact() -> None:
    p = Pair(client={"mode": "voice"})
    p.client.paste("hello")
    assert not of(p.pump()[0], PasteReceived)
    assert notifications(p)[-1].code == ErrorCode.WRONG_STATE
    p.client.set_mode("interact")
    p.client.paste("hello")
    assert of(p.pump()[0], PasteReceived) == [PasteReceived("hello")]


def test_clipboard() -> None:
    p = Pair()
    p.client.clipboard("set", "secret")
    assert not of(p.pump()[0], ClipboardReceived)
    assert notifications(p)[-1].code == ErrorCode.WRONG_STATE
    p.client.clipboard("get")
    p.client.clipboard("push", "mine")
    got = of(p.pump()[0], ClipboardReceived)
    assert [(c.direction, c.text) for c in got] == [("get", None), ("push", "mine")]
    p.server.send_clipboard("page text")
    pushed = of(p.pump()[1], ClipboardReceived)
    assert pushed == [ClipboardReceived("push", "page text", "text/plain")]
    p.client.set_mode("interact")
    p.client.clipboard("set", "x", mime_type="text/html")
    assert of(p.pump()[0], ClipboardReceived)[0].mime_type == "text/html"
    with pytest.raises(LocalProtocolError):
        p.client.clipboard("copy", "x")
    with pytest.raises(LocalProtocolError):
        p.client.clipboard("set")  # text is MUST for set


def test_clipboard_needs_its_capability() -> None:
    p = Pair(client={"capabilities": ["pointer"]})
    p.client.clipboard("get")
    p.pump()
    assert notifications(p)[-1].code == ErrorCode.FORBIDDEN


def test_chat_both_ways() -> None:
    p = Pair()
    p.client.chat("hi agent", timestamp=1700000000000)
    assert of(p.pump()[0], ChatReceived) == [ChatReceived("user", "hi agent", 1700000000000)]
    p.server.send_chat("hi human")
    assert of(p.pump()[1], ChatReceived) == [ChatReceived("agent", "hi human")]
    cp = p.client_channel("vroom.graphical.control")
    events = p.inject_to_server(cp, 0x93, cbor2.dumps({"role": "agent", "text": "I am root"}))
    assert not of(events, ChatReceived) and of(events, BadMessage)


def test_resize_and_set_viewport() -> None:
    p = Pair()
    p.client.resize(1024, 768, scale=1.5, pixel_ratio=2)
    (resized,) = of(p.pump()[0], Resized)
    assert resized.viewport == Viewport(1024, 768, 1.5, 2)
    p.server.set_viewport(Viewport(1024, 768))
    (state,) = of(p.pump()[1], StateReceived)
    assert state.state.viewport == Viewport(1024, 768)
    assert p.client.viewport == Viewport(1024, 768)


def test_state_and_cursor() -> None:
    p = Pair()
    p.server.send_state(State("browsing", url="https://a", title="A", loading=True))
    p.server.send_state("idle")
    assert p.server.send_cursor("pointer", 10, 20)
    states = [e.state for e in of(p.pump()[1], StateReceived)]
    assert states[0] == State("browsing", "https://a", "A", True, None, "view")
    assert states[1] == State("idle", "https://a", "A", True, None, "view")
    assert of(p.client_events, CursorReceived)[0].cursor.type == "pointer"
    with pytest.raises(LocalProtocolError, match="invalid STATE"):
        p.server.send_state("dreaming")
    q = Pair(client={"capabilities": ["pointer"]})
    assert q.server.send_cursor("text", 1, 1) is False


def test_client_sees_bad_server_messages() -> None:
    p = Pair(client={"mode": "interact"})
    sid = next(c.id for c in p.smux.channels.values() if c.name == "vroom.graphical.control")
    events = p.inject_to_client(sid, 0x91, b"\xff\x00")
    assert of(events, BadMessage)
    events = p.inject_to_client(sid, 0x81, cbor2.dumps({"mode": "view"}))
    assert "only be sent by a client" in of(events, BadMessage)[0].reason
    events = p.inject_to_client(sid, 0x80, cbor2.dumps({}))
    assert of(events, BadMessage)
    pid = next(c.id for c in p.smux.channels.values() if c.name == "pointer")
    assert of(p.inject_to_client(pid, 0x01, b"\0\0\0\0"), BadMessage)


# ------------------------------------------------------------------ video


def test_video_frames() -> None:
    p = Pair(client={"video": True}, hello_channels=[control_spec(), video_spec()])
    assert of(p.server_events, VideoOpened) and of(p.client_events, VideoOpened)
    jpeg = b"\xff\xd8" + bytes(200_000) + b"\xff\xd9"
    assert p.server.send_video_frame(jpeg)
    _, client_events = p.pump()
    assert of(client_events, VideoFrame) == [VideoFrame(jpeg)]
    video_id = next(c.id for c in p.smux.channels.values() if c.name == "video")
    frames = [f for f in p.s2c_frames if f[0] == video_id]
    assert len(frames) == 4 and all(f[1] == 0x01 for f in frames)  # fragmented by the core
    with pytest.raises(LocalProtocolError, match="JPEG"):
        p.server.send_video_frame(b"GIF89a")
    p.client.close()
    server_events, _ = p.pump()
    assert of(server_events, VideoClosed) and of(server_events, SessionClosed)
    assert p.server.send_video_frame(jpeg) is False


def test_video_opened_by_open_channel() -> None:
    p = Pair(client={"video": True})
    assert p.client.video_open and p.server.video_open()
    vid = p.client_channel("video")
    assert of(p.inject_to_server(vid, 0x01, b"x"), BadMessage)
    sid = next(c.id for c in p.smux.channels.values() if c.name == "video")
    assert of(p.inject_to_client(sid, 0x02, b"\xff\xd8"), BadMessage)


# ------------------------------------------------------------------ sessions and lifecycle


def test_two_sessions_on_one_connection() -> None:
    p = Pair(sessions=("", "#2"))
    done = of(p.server_events, HandshakeDone)
    assert sorted(d.session for d in done) == ["", "#2"]
    second = p.clients["#2"]
    second.set_mode("interact")
    p.pump()
    names = {c.name for c in p.smux.channels.values()}
    assert names == {
        "vroom.graphical.control",
        "vroom.graphical.control#2",
        "pointer#2",
        "button#2",
    }
    assert p.server.mode("#2") == "interact" and p.server.mode("") == "view"
    second.mouse_move(3, 4)
    (ev,) = of(p.pump()[0], PointerInput)
    assert ev.session == "#2"
    p.cmux.open_channel("pointer")  # the first session is still in view
    p.pump()
    assert of(p.client_mux_events, openmux.ChannelRejected)[-1].name == "pointer"
    p.server.send_chat("to two", session="#2")
    chats = of(p.pump()[1], ChatReceived)
    assert [(c.text, c.session) for c in chats] == [("to two", "#2")]
    with pytest.raises(LocalProtocolError, match="no graphical session"):
        p.server.send_chat("x", session="#3")
    with pytest.raises(ValueError):
        p.server.send_chat("x", session="2")


def test_server_and_client_made_after_the_mux_handshake() -> None:
    smux = openmux.Connection(openmux.Config(is_client=False, ping_interval=0), mode="message")
    cmux = openmux.Connection(
        openmux.Config(is_client=True, channels=[control_spec()], ping_interval=0),
        mode="message",
    )
    smux.initiate(0)
    cmux.initiate(0)
    for frame in cmux.messages_to_send():
        smux.receive_message(frame, 0)
    for frame in smux.messages_to_send():
        cmux.receive_message(frame, 0)
    server = GraphicalServer(smux)
    client = GraphicalClient(cmux, viewport=Viewport(100, 100))
    for _ in range(3):
        for frame in cmux.messages_to_send():
            for ev in smux.receive_message(frame, 0):
                server.handle_event(ev)
        for frame in smux.messages_to_send():
            for ev in cmux.receive_message(frame, 0):
                client.handle_event(ev)
    assert client.ready and server.sessions[""].handshake is not None


def test_connection_end_closes_sessions() -> None:
    p = Pair(sessions=("", "#2"))
    p.cmux.close(1000, "bye", 0)
    server_events, client_events = p.pump()
    assert sorted(e.session for e in of(server_events, SessionClosed)) == ["", "#2"]
    assert len(of(client_events, SessionClosed)) == 2
    assert p.server.sessions == {}
    with pytest.raises(LocalProtocolError):
        p.client.chat("x")


def test_server_closes_a_session() -> None:
    p = Pair(client={"mode": "interact"})
    p.server.close_session("", "agent going away")
    _, client_events = p.pump()
    assert of(client_events, SessionClosed)[0].reason == "agent going away"
    assert p.cmux.channels == {}
    with pytest.raises(LocalProtocolError):
        p.server.send_state("idle")


def test_not_ready_yet() -> None:
    p = Pair(start=False)
    with pytest.raises(LocalProtocolError, match="not done"):
        p.client.chat("x")
    assert not p.client.ready and not p.client.input_ready


def test_unrelated_channels_are_ignored() -> None:
    p = Pair(policy=lambda spec: None)
    p.cmux.open_channel("vroom.terminal.control")
    server_events, client_events = p.pump()
    assert server_events == [] and client_events == []
    tid = p.client_channel("vroom.terminal.control")
    assert p.inject_to_server(tid, 0x01, b"{}") == []


def test_input_channels_asked_for_in_hello_are_not_granted() -> None:
    from vroom_graphical import button_spec, pointer_spec

    p = Pair(hello_channels=[control_spec(), pointer_spec(), button_spec()])
    welcome = next(e for e in p.client_mux_events if isinstance(e, openmux.HandshakeCompleted))
    assert [c.name for c in welcome.channels] == ["vroom.graphical.control"]
    assert p.client.ready


def test_channel_policy_and_names() -> None:
    from openmux import DEFER, ChannelSpec
    from vroom_graphical import Role, channel_name, channel_policy, parse_name

    assert channel_policy(ChannelSpec("pointer#3")) == DEFER
    assert channel_policy(ChannelSpec("button")) == DEFER
    assert channel_policy(ChannelSpec("vroom.graphical.control#2")) is None
    assert channel_policy(ChannelSpec("video")) is None
    assert channel_policy(ChannelSpec("vroom.terminal.control")) == 1003
    assert parse_name("pointer#0") is None and parse_name("pointer#x") is None
    assert parse_name("video#12") == (Role.VIDEO, "#12")
    assert channel_name(Role.BUTTON, "#2") == "button#2"
