"""A real TerminalClient and TerminalServer over two openmux.Connection objects."""

from __future__ import annotations

import hmac

import openmux
import pytest
from vroom_terminal import (
    AuthResult,
    CapabilityOffer,
    Encoding,
    EnvSet,
    ErrorReceived,
    ErrorSent,
    ExecRequested,
    ExitStatusReceived,
    ExtensionsOffer,
    HelloCompleted,
    InputClosed,
    KittyKeyboardOffer,
    KittyOffer,
    LocalProtocolError,
    Negotiated,
    PtyGranted,
    PtyInput,
    PtyOutput,
    PtyReady,
    PtyRefused,
    PtyRequested,
    ServerCapabilities,
    SessionActive,
    SessionClosed,
    SessionOpened,
    ShellRequested,
    SignalRequested,
    State,
    WindowAcked,
    WindowResized,
)

from .helpers import TermPair, of_type, offer


def _token_auth(request: object) -> bool:
    token = getattr(request, "token", None) or ""
    return hmac.compare_digest(token.encode(), b"s3cret")


def _ready(pair: TermPair, session: str = "", **pty: object) -> None:
    """Open a session up to SessionActive with a shell."""
    pair.client.open_session(session)
    pair.pump()
    pair.client.request_pty(session=session, **pty)  # type: ignore[arg-type]
    pair.pump()
    pair.server.grant_pty(session)
    pair.pump()
    pair.client.shell(session=session)
    pair.pump()
    assert pair.server.state(session) is State.SESSION_ACTIVE
    assert pair.client.state(session) is State.SESSION_ACTIVE


@pytest.mark.parametrize("encoding", [Encoding.CBOR, Encoding.JSON])
@pytest.mark.parametrize("mode", ["message", "stream"])
def test_full_flow(encoding: Encoding, mode: str) -> None:
    pair = TermPair(
        client_kwargs={"encodings": (encoding,), "offer": offer(window=4096)},
        server_kwargs={"authenticate": _token_auth},
        mode=mode,  # type: ignore[arg-type]
    )
    pair.client.open_session()
    c, s = pair.pump()
    assert of_type(c, HelloCompleted) == [HelloCompleted("", encoding)]
    assert of_type(s, SessionOpened) and of_type(s, Negotiated)
    [neg] = of_type(c, Negotiated)
    assert neg.select.auth.required and neg.select.auth.methods == ("token",)
    assert neg.select.extensions.flow_control == 4096
    assert pair.client.state() is State.AUTHENTICATING

    pair.client.authenticate(token="s3cret")
    c, s = pair.pump()
    assert of_type(c, AuthResult)[0].ok and of_type(s, AuthResult)[0].ok
    assert pair.server.state() is State.PTY_REQUEST

    pair.client.set_env({"LANG": "C.UTF-8", "LC_ALL": "C", "PATH": "/evil", "LD_PRELOAD": "x"})
    c, s = pair.pump()
    assert of_type(s, EnvSet)[0].env == {"LANG": "C.UTF-8", "LC_ALL": "C"}
    [err] = of_type(c, ErrorReceived)
    assert (err.code, err.fatal, err.names) == (403, False, ("PATH", "LD_PRELOAD"))
    assert "PATH" in err.message and "LD_PRELOAD" in err.message

    pair.client.request_pty("xterm-kitty", 40, 120, 1200, 800, modes={"raw": True})
    c, s = pair.pump()
    [req] = of_type(s, PtyRequested)
    assert (req.request.term, req.request.rows, req.request.cols) == ("xterm-kitty", 40, 120)
    assert req.request.raw
    pair.server.grant_pty("", session_id="abc")
    c, s = pair.pump()
    assert of_type(c, PtyGranted)[0].response.channel == "vroom.terminal.pty"
    assert of_type(c, PtyReady) and of_type(s, PtyReady)
    assert pair.server.state() is State.PTY_ALLOCATED

    pair.client.exec(["printf", "%s", "hi"])
    c, s = pair.pump()
    assert of_type(s, ExecRequested) == [ExecRequested("", None, ("printf", "%s", "hi"))]
    assert of_type(s, SessionActive)

    pair.client.send_input(bytes(range(256)))
    pair.client.resize(50, 132, 1320, 1000)
    pair.client.signal("SIGINT")
    pair.client.send_eof()
    c, s = pair.pump()
    assert b"".join(e.data for e in of_type(s, PtyInput)) == bytes(range(256))
    assert of_type(s, WindowResized) == [WindowResized("", 50, 132, 1320, 1000)]
    assert of_type(s, SignalRequested) == [SignalRequested("", 2, "INT")]
    assert of_type(s, InputClosed)

    # flow control: 4096-byte window, the client acks every 2048 consumed
    blob = bytes(range(256)) * 40  # 10240 bytes
    sent = pair.server.send_output("", blob)
    assert sent == 4096 and pair.server.send_credit("") == 0
    assert pair.server.send_output("", blob[sent:]) == 0
    c, s = pair.pump()
    got = b"".join(e.data for e in of_type(c, PtyOutput))
    pair.client.ack(1000)
    assert pair.pump() == ([], [])  # below ack_every: no WINDOW_ACK yet
    pair.client.ack(len(got) - 1000)
    c, s = pair.pump()
    assert of_type(s, WindowAcked) == [WindowAcked("", 4096, 4096)]
    while sent < len(blob):
        n = pair.server.send_output("", blob[sent:])
        assert n > 0
        sent += n
        c, _ = pair.pump()
        for e in of_type(c, PtyOutput):
            got += e.data
            pair.client.ack(len(e.data))
        pair.pump()
    assert got == blob

    pair.server.send_exit_status("", signal=15, core_dumped=True)
    c, s = pair.pump()
    assert of_type(c, ExitStatusReceived) == [ExitStatusReceived("", None, "TERM", True)]
    assert of_type(c, SessionClosed) and of_type(s, SessionClosed)
    assert pair.client.state() is State.DISCONNECTED
    assert pair.server.state() is State.DISCONNECTED
    _no_mux_errors(pair)
    assert not pair.pair.client.channels and not pair.pair.server.channels


def _no_mux_errors(pair: TermPair) -> None:
    """No crossing CLOSE_CHANNELs or other mux-level complaints."""
    mux_events = pair.pair.client_events + pair.pair.server_events
    assert not [e for e in mux_events if isinstance(e, openmux.ErrorReceived)]


def test_auth_failure_closes_the_control_channel() -> None:
    pair = TermPair(server_kwargs={"authenticate": _token_auth})
    pair.client.open_session()
    pair.pump()
    pair.client.authenticate(token="wrong")
    c, s = pair.pump()
    assert not of_type(c, AuthResult)[0].ok
    [err] = of_type(c, ErrorReceived)
    assert (err.code, err.fatal) == (401, True)
    assert of_type(c, SessionClosed) and of_type(s, SessionClosed)
    assert pair.client.state() is State.DISCONNECTED is pair.server.state()


def test_password_auth_and_unoffered_method() -> None:
    seen = []

    def check(request: object) -> bool:
        seen.append(request)
        return getattr(request, "password", None) == "pw"

    pair = TermPair(server_kwargs={"authenticate": check, "auth_methods": ("password",)})
    pair.client.open_session()
    pair.pump()
    pair.client.authenticate(username="ann", password="pw")
    c, s = pair.pump()
    assert of_type(s, AuthResult) == [AuthResult("", True, "password", "ann")]
    assert "pw" not in repr(seen[0])  # secrets never in reprs

    pair2 = TermPair(server_kwargs={"authenticate": check, "auth_methods": ("password",)})
    pair2.client.open_session()
    pair2.pump()
    pair2.client.authenticate(token="pw")
    c, _ = pair2.pump()
    assert [e.code for e in of_type(c, ErrorReceived)] == [401]


def test_authenticated_mux_needs_no_terminal_auth() -> None:
    pair = TermPair(
        server_kwargs={"authenticate": _token_auth},
        client_config={"token": "t"},
        server_config={"token": "t"},
    )
    pair.client.open_session()
    c, _ = pair.pump()
    [neg] = of_type(c, Negotiated)
    assert neg.select.auth.required is False and neg.select.auth.methods == ()
    assert pair.client.state() is State.PTY_REQUEST
    # AUTH_REQUEST now is out of state: the client API refuses it locally ...
    with pytest.raises(LocalProtocolError):
        pair.client.authenticate(token="s3cret")


def test_pty_refused() -> None:
    pair = TermPair()
    pair.client.open_session()
    pair.pump()
    pair.client.request_pty()
    pair.pump()
    pair.server.refuse_pty("", "too many sessions")
    c, _s = pair.pump()
    assert of_type(c, PtyRefused) == [PtyRefused("", "too many sessions")]
    assert [(e.code, e.fatal) for e in of_type(c, ErrorReceived)] == [(503, True)]
    assert of_type(c, SessionClosed)
    assert pair.client.state() is State.DISCONNECTED is pair.server.state()
    _no_mux_errors(pair)


def test_capabilities_resolved_over_the_wire() -> None:
    client_offer = CapabilityOffer(
        kitty=KittyOffer(KittyKeyboardOffer((1, 2, 3), 2), graphics=True, sixel=False),
        mouse=("kitty", "sgr", "bogus"),
        features=("hyperlinks", "bracketed_paste"),
        extensions=ExtensionsOffer(reconnect=True, zstd_compression=True, flow_control=1 << 30),
    )
    pair = TermPair(
        client_kwargs={"offer": client_offer},
        server_kwargs={"capabilities": ServerCapabilities(zstd_compression=True)},
    )
    pair.client.open_session()
    c, _ = pair.pump()
    sel = of_type(c, Negotiated)[0].select
    assert sel.kitty.keyboard_level == 2 and sel.kitty.graphics and not sel.kitty.sixel
    assert sel.mouse == ("kitty", "sgr") and sel.features == ("hyperlinks", "bracketed_paste")
    assert sel.extensions.zstd_compression and not sel.extensions.reconnect
    assert sel.extensions.flow_control == 4 * 1024 * 1024  # capped by the server


def test_zstd_frames_pass_through() -> None:
    pair = TermPair(
        client_kwargs={"offer": offer(window=100, zstd_compression=True)},
        server_kwargs={"capabilities": ServerCapabilities(zstd_compression=True)},
    )
    _ready(pair)
    assert pair.server.send_compressed("", b"\x28\xb5\x2f\xfd" + b"z" * 60)
    assert not pair.server.send_compressed("", b"y" * 50)  # does not fit the credit left
    c, _ = pair.pump()
    [out] = of_type(c, PtyOutput)
    assert out.compressed and out.data.startswith(b"\x28\xb5\x2f\xfd")
    with pytest.raises(LocalProtocolError):
        pair.server.send_compressed("", b"x" * 101)  # never fits


def test_two_sessions_kept_apart() -> None:
    pair = TermPair()
    _ready(pair, "")
    _ready(pair, "#2")
    pair.server.send_output("", b"one")
    pair.server.send_output("#2", b"two")
    pair.client.send_input(b"a", session="#2")
    pair.client.send_input(b"b", session="")
    c, s = pair.pump()
    assert {(e.session, e.data) for e in of_type(c, PtyOutput)} == {("", b"one"), ("#2", b"two")}
    assert {(e.session, e.data) for e in of_type(s, PtyInput)} == {("#2", b"a"), ("", b"b")}
    pair.server.send_exit_status("#2", 42)
    c, s = pair.pump()
    assert of_type(c, ExitStatusReceived) == [ExitStatusReceived("#2", 42, None, False)]
    assert pair.client.state("#2") is State.DISCONNECTED
    assert pair.client.state("") is State.SESSION_ACTIVE is pair.server.state("")
    # the suffix is reusable once the session is gone
    pair.client.open_session("#2")
    pair.pump()
    assert pair.server.state("#2") is State.PTY_REQUEST


def test_exit_status_waits_for_every_announced_byte() -> None:
    pair = TermPair()
    _ready(pair)
    pair.server.send_output("", b"last words")
    pair.server.send_exit_status("", 0)
    # deliver the control channel first, as QUIC/WebRTC may: hold the pty message back
    frames = pair.pair.server.messages_to_send()
    pty_id = pair.server.sessions[""].pty_id
    held = [f for f in frames if f[0] == pty_id]
    events = []
    for frame in [f for f in frames if f[0] != pty_id] + held:
        for mux_event in pair.pair.client.receive_message(frame, 0.0):
            events.extend(pair.client.handle_event(mux_event))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["PtyOutput", "ExitStatusReceived", "SessionClosed"]


def test_client_closes_session() -> None:
    pair = TermPair()
    _ready(pair)
    pair.client.close_session()
    _c, s = pair.pump()
    assert of_type(s, SessionClosed) and s[-1].by_peer
    assert pair.server.state() is State.DISCONNECTED
    _no_mux_errors(pair)
    assert not pair.pair.client.channels and not pair.pair.server.channels


def test_connection_lost_closes_every_session() -> None:
    pair = TermPair()
    _ready(pair)
    _ready(pair, "#3")
    events = []
    for e in pair.pair.server.connection_lost(0.0):
        events.extend(pair.server.handle_event(e))
    assert sorted(e.session for e in of_type(events, SessionClosed)) == ["", "#3"]


def test_local_misuse_raises() -> None:
    pair = TermPair(client_kwargs={"offer": None})
    with pytest.raises(LocalProtocolError):
        pair.client.shell()
    pair.client.open_session()
    with pytest.raises(LocalProtocolError):
        pair.client.open_session()
    _c, _ = pair.pump()
    assert pair.client.state() is State.HELLO_EXCHANGE  # no preset offer: the app offers
    with pytest.raises(LocalProtocolError):
        pair.client.request_pty()
    pair.client.offer(CapabilityOffer())
    pair.pump()
    with pytest.raises(LocalProtocolError):
        pair.client.send_input(b"x")
    with pytest.raises(LocalProtocolError):
        pair.client.signal("NOPE")
    with pytest.raises(LocalProtocolError):
        pair.server.grant_pty("")
    with pytest.raises(LocalProtocolError):
        pair.server.send_output("", b"x")
    with pytest.raises(LocalProtocolError):
        pair.server.send_exit_status("", 0)
    with pytest.raises(LocalProtocolError):
        pair.client.authenticate(token="x", password="y")


def test_no_flow_control_means_no_credit_limit() -> None:
    pair = TermPair(client_kwargs={"offer": offer(window=None)})
    _ready(pair)
    assert pair.server.send_credit("") is None
    assert pair.server.send_output("", b"x" * 100_000) == 100_000
    c, _ = pair.pump()
    assert sum(len(e.data) for e in of_type(c, PtyOutput)) == 100_000
    pair.client.ack(100_000)  # harmless, sends nothing
    assert pair.pump() == ([], [])


def test_shell_before_pty_channel_opens() -> None:
    pair = TermPair()
    pair.client.open_session()
    pair.pump()
    pair.client.request_pty()
    pair.pump()
    pair.server.grant_pty("")
    # deliver only the PTY_RESPONSE: the client asks for the pty channel and sends SHELL at once
    for e in pair.pair.to_client():
        pair.client.handle_event(e)
    pair.client.shell()
    _c, s = pair.pump()
    kinds = [type(e) for e in s]
    assert ShellRequested in kinds and SessionActive in kinds
    assert kinds.index(SessionActive) > kinds.index(ShellRequested)
    assert pair.server.state() is State.SESSION_ACTIVE


def test_window_overrun_is_reported_not_lost() -> None:
    pair = TermPair(client_kwargs={"offer": offer(window=10)})
    _ready(pair)
    sess = pair.server.sessions[""]
    sess.send_window.window = 1000  # a server that ignores the window it granted
    pair.server.send_output("", b"x" * 50)
    c, s = pair.pump()
    assert sum(len(e.data) for e in of_type(c, PtyOutput)) == 50
    assert [e.code for e in of_type(c, ErrorSent)] == [400]
    assert [e.code for e in of_type(s, ErrorReceived)] == [400]


def test_peer_closing_only_the_pty_channel_ends_the_session() -> None:
    pair = TermPair()
    _ready(pair)
    pair.pair.client.close_channel(pair.client.sessions[""].pty_id or 0)
    _, s = pair.pump()
    assert of_type(s, SessionClosed)
    assert pair.server.state() is State.DISCONNECTED
    assert pair.client.state() is State.DISCONNECTED  # the server closed the control channel
    assert not pair.pair.client.channels and not pair.pair.server.channels
    _no_mux_errors(pair)
