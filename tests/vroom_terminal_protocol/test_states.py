"""Every (state, message type) pair, on both sides, against a hand-driven raw peer.

For each state a side can be in, every control message type (and every pty
channel type) is sent; the table says whether it is accepted. Rejected
ones must be answered ERROR 409 with the state unchanged (ERROR itself is
never answered).
"""

from __future__ import annotations

from typing import Any

import pytest
from openmux import ChannelRequested
from vroom_terminal import (
    AuthInfo,
    AuthRequest,
    AuthResponse,
    CapabilityOffer,
    CapabilityOfferMessage,
    CapabilitySelect,
    CapabilitySelectMessage,
    ClientHello,
    Encoding,
    Error,
    ErrorSent,
    ExecRequest,
    ExitStatus,
    ExtensionsSelect,
    MessageType,
    PtyRequest,
    PtyResponse,
    PtyType,
    ServerHello,
    SetEnv,
    ShellRequest,
    Signal,
    State,
    TerminalClient,
    TerminalServer,
    WindowResize,
    channel_policy,
    control_spec,
    encode_window_ack,
    pty_spec,
)
from vroom_terminal.states import CLIENT_PTY_TABLE, CLIENT_TABLE, SERVER_PTY_TABLE, SERVER_TABLE

from .helpers import RawPeer

SELECT_NOAUTH = CapabilitySelect(AuthInfo(False), extensions=ExtensionsSelect(flow_control=4096))
SELECT_AUTH = CapabilitySelect(AuthInfo(True, ("token",)),
                               extensions=ExtensionsSelect(flow_control=4096))  # fmt: skip

CANONICAL: dict[MessageType, Any] = {
    MessageType.HELLO: None,  # side-dependent, see below
    MessageType.CAPABILITY_OFFER: CapabilityOfferMessage(CapabilityOffer()),
    MessageType.CAPABILITY_SELECT: CapabilitySelectMessage(SELECT_NOAUTH),
    MessageType.AUTH_REQUEST: AuthRequest("token", token="good"),
    MessageType.AUTH_RESPONSE: AuthResponse(True),
    MessageType.PTY_REQUEST: PtyRequest("xterm", 24, 80),
    MessageType.PTY_RESPONSE: PtyResponse(True, "vroom.terminal.pty"),
    MessageType.WINDOW_RESIZE: WindowResize(30, 100, 800, 600),
    MessageType.SIGNAL: Signal(2),
    MessageType.SET_ENV: SetEnv({"LANG": "C.UTF-8"}),
    MessageType.SHELL_REQUEST: ShellRequest(),
    MessageType.EXEC_REQUEST: ExecRequest(command="true"),
    MessageType.EXIT_STATUS: ExitStatus(0, None, False),
    MessageType.ERROR: Error(500, "test", False),
}


def canonical(message_type: MessageType, to_server: bool) -> Any:
    if message_type is MessageType.HELLO:
        return ClientHello() if to_server else ServerHello("cbor")
    return CANONICAL[message_type]


# ------------------------------------------------------------------ server


def _server() -> RawPeer:
    return RawPeer(
        "server",
        lambda mux: TerminalServer(
            mux, authenticate=lambda r: r.token == "good", auth_methods=("token", "password")
        ),
        server_policy=channel_policy,
    )


def _server_to(target: str) -> RawPeer:
    """A server driven to a named situation by a hand-written client."""
    peer = _server()
    peer.open(control_spec())
    if target == "ControlOpen":
        return peer
    peer.send(ClientHello(("cbor",)))
    peer.encoding = Encoding.CBOR
    if target == "HelloExchange":
        return peer
    if target == "CapabilityNegotiation":  # transient on a server: forced to test the table
        peer.endpoint.sessions[""].state = State.CAPABILITY_NEGOTIATION
        return peer
    peer.send(CapabilityOfferMessage(CapabilityOffer()))
    if target == "Authenticating":
        return peer
    peer.send(AuthRequest("token", token="good"))
    if target == "PTYRequest":
        return peer
    peer.send(PtyRequest("xterm", 24, 80))
    if target == "PTYRequest+pending":
        return peer
    peer.endpoint.grant_pty("")
    peer.pump()
    if target == "PTYAllocated+nochannel":
        return peer
    if target == "PTYAllocated+started":  # SHELL accepted, pty channel not open yet
        peer.send(ShellRequest())
        return peer
    peer.open(pty_spec())
    if target == "PTYAllocated":
        return peer
    peer.send(ShellRequest())
    if target == "SessionActive":
        return peer
    peer.endpoint.send_exit_status("", 0)
    peer.pump()
    assert target == "Closing"
    return peer


SERVER_SITUATIONS = {
    "ControlOpen": (State.CONTROL_OPEN, set()),
    "HelloExchange": (State.HELLO_EXCHANGE, set()),
    "CapabilityNegotiation": (State.CAPABILITY_NEGOTIATION, set()),
    "Authenticating": (State.AUTHENTICATING, set()),
    "PTYRequest": (State.PTY_REQUEST, set()),
    "PTYRequest+pending": (State.PTY_REQUEST, {MessageType.PTY_REQUEST}),
    "PTYAllocated+nochannel": (State.PTY_ALLOCATED, set()),
    "PTYAllocated+started": (
        State.PTY_ALLOCATED,
        {MessageType.SET_ENV, MessageType.SHELL_REQUEST, MessageType.EXEC_REQUEST},
    ),
    "PTYAllocated": (State.PTY_ALLOCATED, set()),
    "SessionActive": (State.SESSION_ACTIVE, set()),
    "Closing": (State.CLOSING, set()),
}


M = MessageType
# Written from VROOM-TERMINAL.md §3/§6, independently of vroom_terminal.states.
SERVER_EXPECTED = {
    State.CONTROL_OPEN: {M.HELLO},
    State.HELLO_EXCHANGE: {M.CAPABILITY_OFFER},
    State.CAPABILITY_NEGOTIATION: set(),
    State.AUTHENTICATING: {M.AUTH_REQUEST},
    State.PTY_REQUEST: {M.SET_ENV, M.PTY_REQUEST},
    State.PTY_ALLOCATED: {M.SET_ENV, M.SHELL_REQUEST, M.EXEC_REQUEST, M.WINDOW_RESIZE, M.SIGNAL},
    State.SESSION_ACTIVE: {M.WINDOW_RESIZE, M.SIGNAL},
    State.CLOSING: {M.WINDOW_RESIZE, M.SIGNAL},  # accepted and dropped
}
CLIENT_EXPECTED = {
    State.CONTROL_OPEN: {M.HELLO},
    State.HELLO_EXCHANGE: set(),
    State.CAPABILITY_NEGOTIATION: {M.CAPABILITY_SELECT},
    State.AUTHENTICATING: {M.AUTH_RESPONSE},
    State.PTY_REQUEST: {M.PTY_RESPONSE},
    State.PTY_ALLOCATED: {M.EXIT_STATUS},
    State.SESSION_ACTIVE: {M.EXIT_STATUS},
    State.CLOSING: set(),
}


def _allowed(expected: dict[State, set[MessageType]], state: State, type_: MessageType) -> bool:
    return type_ is M.ERROR or type_ in expected[state]


@pytest.mark.parametrize(
    ("table", "expected"), [(SERVER_TABLE, SERVER_EXPECTED), (CLIENT_TABLE, CLIENT_EXPECTED)]
)
def test_tables_match_the_spec(table: Any, expected: dict[State, set[MessageType]]) -> None:
    for state in set(State) - {State.DISCONNECTED}:
        for type_ in MessageType:
            assert ((state, type_) in table) == _allowed(expected, state, type_), (state, type_)
    assert not any(state is State.DISCONNECTED for state, _ in table)


def test_every_server_state_is_covered() -> None:
    covered = {state for state, _ in SERVER_SITUATIONS.values()}
    assert covered == set(State) - {State.DISCONNECTED}


@pytest.mark.parametrize("situation", list(SERVER_SITUATIONS))
@pytest.mark.parametrize("message_type", list(MessageType))
def test_server_state_message(situation: str, message_type: MessageType) -> None:
    state, guarded = SERVER_SITUATIONS[situation]
    peer = _server_to(situation)
    assert peer.endpoint.state("") is state
    peer.clear()
    allowed = _allowed(SERVER_EXPECTED, state, message_type) and message_type not in guarded
    events = peer.send(canonical(message_type, to_server=True))
    errors = [e for e in events if isinstance(e, ErrorSent)]
    if allowed:
        assert not [e for e in errors if e.code == 409], errors
    elif message_type is MessageType.ERROR:
        assert not errors
        assert peer.endpoint.state("") is state
    else:
        assert [(e.code, e.fatal) for e in errors] == [(409, False)]
        assert peer.endpoint.state("") is state
        [answer] = peer.received()
        assert isinstance(answer, Error) and answer.code == 409 and not answer.fatal


@pytest.mark.parametrize("situation", ["PTYAllocated", "SessionActive", "Closing"])
@pytest.mark.parametrize("pty_type", [*PtyType, 0x04, 0xFF])
def test_server_state_pty_message(situation: str, pty_type: int) -> None:
    state, _ = SERVER_SITUATIONS[situation]
    peer = _server_to(situation)
    peer.clear()
    payload = {PtyType.WINDOW_ACK: encode_window_ack(0), PtyType.EOF: b""}.get(pty_type, b"x")
    # zstd is not negotiated here: 0x02 is refused 400 where the state allows it
    events = peer.send_raw(pty_type, payload, channel=peer.pty)
    codes = [e.code for e in events if isinstance(e, ErrorSent)]
    # Every known type is accepted while the PTY lives and dropped in Closing;
    # an ACK of 0 is valid (it acknowledges nothing).
    if pty_type not in set(PtyType):
        assert codes == [404]
    elif pty_type == PtyType.ZSTD_DATA and state is not State.CLOSING:
        assert codes == [400]
    else:
        assert codes == []
    assert peer.endpoint.state("") is state


def test_server_out_of_state_wins_over_bad_payload() -> None:
    peer = _server_to("HelloExchange")
    peer.clear()
    # PTY_REQUEST with a missing MUST key, out of state: 409, not 400
    events = peer.send_raw(0x20, bytes.fromhex("0000002000000001") + b"\xa0")
    assert [e.code for e in events if isinstance(e, ErrorSent)] == [409]
    # the same in state: 400, state unchanged
    peer = _server_to("PTYRequest")
    events = peer.send_raw(0x20, bytes.fromhex("0000002000000001") + b"\xa0")
    assert [e.code for e in events if isinstance(e, ErrorSent)] == [400]
    assert peer.endpoint.state("") is State.PTY_REQUEST


def test_pty_channel_refused_before_pty_response() -> None:
    peer = _server_to("PTYRequest+pending")
    peer.clear()
    peer.open(pty_spec())
    assert peer.pty is None
    assert any(getattr(e, "code", None) == 4000 for e in peer.raw_events)
    assert any(isinstance(e, ChannelRequested) for e in peer.pair.server_events)


# ------------------------------------------------------------------ client


def _client() -> RawPeer:
    return RawPeer("client", lambda mux: TerminalClient(mux, offer=None))


def _client_to(target: str) -> RawPeer:
    peer = _client()
    client: TerminalClient = peer.endpoint
    client.open_session()
    peer.pump()
    if target == "ControlOpen":
        return peer
    peer.send(ServerHello("cbor"))
    peer.encoding = Encoding.CBOR
    if target == "HelloExchange":
        return peer
    client.offer(CapabilityOffer())
    peer.pump()
    if target == "CapabilityNegotiation":
        return peer
    if target.startswith("Authenticating"):
        peer.send(CapabilitySelectMessage(SELECT_AUTH))
        if target == "Authenticating+pending":
            client.authenticate(token="good")
            peer.pump()
        return peer
    peer.send(CapabilitySelectMessage(SELECT_NOAUTH))
    if target == "PTYRequest":
        return peer
    client.request_pty("xterm", 24, 80)
    peer.pump()
    if target == "PTYRequest+pending":
        return peer
    peer.send(PtyResponse(True, "vroom.terminal.pty"))
    if target == "PTYAllocated":
        return peer
    client.shell()
    peer.pump()
    if target == "SessionActive":
        return peer
    peer.send(ExitStatus(0, None, False, output_bytes=10))  # 10 bytes still to come
    assert target == "Closing"
    return peer


CLIENT_SITUATIONS: dict[str, tuple[State, set[MessageType]]] = {
    "ControlOpen": (State.CONTROL_OPEN, set()),
    "HelloExchange": (State.HELLO_EXCHANGE, set()),
    "CapabilityNegotiation": (State.CAPABILITY_NEGOTIATION, set()),
    "Authenticating": (State.AUTHENTICATING, {MessageType.AUTH_RESPONSE}),
    "Authenticating+pending": (State.AUTHENTICATING, set()),
    "PTYRequest": (State.PTY_REQUEST, {MessageType.PTY_RESPONSE}),
    "PTYRequest+pending": (State.PTY_REQUEST, set()),
    "PTYAllocated": (State.PTY_ALLOCATED, {MessageType.EXIT_STATUS}),
    "SessionActive": (State.SESSION_ACTIVE, set()),
    "Closing": (State.CLOSING, set()),
}


def test_every_client_state_is_covered() -> None:
    covered = {state for state, _ in CLIENT_SITUATIONS.values()}
    assert covered == set(State) - {State.DISCONNECTED}


@pytest.mark.parametrize("situation", list(CLIENT_SITUATIONS))
@pytest.mark.parametrize("message_type", list(MessageType))
def test_client_state_message(situation: str, message_type: MessageType) -> None:
    state, guarded = CLIENT_SITUATIONS[situation]
    peer = _client_to(situation)
    assert peer.endpoint.state("") is state
    peer.clear()
    allowed = _allowed(CLIENT_EXPECTED, state, message_type) and message_type not in guarded
    events = peer.send(canonical(message_type, to_server=False))
    errors = [e for e in events if isinstance(e, ErrorSent)]
    if allowed:
        assert not [e for e in errors if e.code == 409], errors
    elif message_type is MessageType.ERROR:
        assert not errors
    else:
        assert [(e.code, e.fatal) for e in errors] == [(409, False)]
        assert peer.endpoint.state("") is state


@pytest.mark.parametrize("situation", ["SessionActive", "Closing"])
@pytest.mark.parametrize("pty_type", [*PtyType, 0x09])
def test_client_state_pty_message(situation: str, pty_type: int) -> None:
    _state, _ = CLIENT_SITUATIONS[situation]
    peer = _client_to(situation)
    peer.clear()
    events = peer.send_raw(pty_type, b"\x00" * 8, channel=peer.pty)
    codes = [e.code for e in events if isinstance(e, ErrorSent)]
    if pty_type not in set(PtyType):
        assert codes == [404]
    elif pty_type not in (PtyType.DATA, PtyType.ZSTD_DATA):  # ACK and EOF are C->S only
        assert codes == [409]
    elif pty_type == PtyType.ZSTD_DATA:
        assert codes == [400]
    else:
        assert codes == []


def test_pty_tables_match_the_spec() -> None:
    live = (State.PTY_ALLOCATED, State.SESSION_ACTIVE)
    assert {k for k, v in SERVER_PTY_TABLE.items() if v != "drop"} == {
        (s, t) for s in live for t in PtyType
    }
    assert {k for k, v in SERVER_PTY_TABLE.items() if v == "drop"} == {
        (State.CLOSING, t) for t in PtyType
    }
    assert set(CLIENT_PTY_TABLE) == {
        (s, t) for s in (*live, State.CLOSING) for t in (PtyType.DATA, PtyType.ZSTD_DATA)
    }
